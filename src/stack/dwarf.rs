//! File, line and inlined frames from an object's DWARF, read only for the addresses a
//! report resolves (never on the allocator path).
//!
//! A general-purpose resolver (addr2line, through the `backtrace` crate) indexes every
//! compilation unit of an object before it answers the first address: the abbreviations
//! and line-program header of each unit stay in memory for the whole object, which on a
//! binary with a few thousand units is tens of megabytes and most of a second, however few
//! addresses are asked. Reports know all their addresses up front, so this reader goes the
//! other way round: it finds the units that hold one of them (from `.debug_aranges`, else
//! from each unit's root entry, parsed and dropped), and only in those units runs the line
//! program and walks the entries for the function and the inlined calls at each address.
//! Its cost follows the stacks resolved, not the debug info's size.
//!
//! The frames are addr2line's, as `backtrace` gives them: innermost first, each inlined
//! function with the location inside it, the function that was not inlined last, at the
//! call site of its outermost inlined callee. Names are the linkage name (demangled, no
//! hash) where the entry or its abstract origin has one, else `DW_AT_name`. Paths are
//! rendered as addr2line renders them (compilation directory, the file's directory, its
//! name).
//!
//! What it does not read — compressed debug sections, split DWARF (`.dwo`/`.dwp`), debug
//! info in a separate file — it says so (`None`), and the caller asks the `backtrace`
//! crate, which does.

use std::collections::HashMap;

use gimli::{AttributeValue, EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};

type R<'a> = EndianSlice<'a, RunTimeEndian>;
type Unit<'a> = gimli::Unit<R<'a>>;

/// One frame: the function's demangled name (if the DWARF names it) and `file:line`
/// (empty when unknown).
pub(super) type Frame = (Option<String>, String);

/// What the DWARF says about one address.
pub(super) enum Answer {
    /// Frames, innermost first. (An address no unit holds gets no answer at all.)
    Frames(Vec<Frame>),
    /// This object's DWARF for the address is somewhere this reader does not read.
    Elsewhere,
}

/// The frames at each of `probes` (addresses in the object file, sorted, each a return
/// address minus one), from the object whose whole file is `data`. `None` when the object
/// has no DWARF this reader can read: no `.debug_info`, or compressed sections.
pub(super) fn frames(data: &[u8], probes: &[u64]) -> Option<HashMap<u64, Answer>> {
    let obj = object::File::parse(data).ok()?;
    let endian = if obj.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let info = obj.section_by_name(".debug_info")?;
    if info.size() == 0 {
        return None;
    }
    let load = |id: gimli::SectionId| -> Result<R<'_>, ()> {
        let bytes = match obj.section_by_name(id.name()) {
            Some(s) => {
                let plain = matches!(
                    s.compressed_file_range().map(|r| r.format),
                    Ok(object::CompressionFormat::None)
                );
                if !plain {
                    return Err(());
                }
                s.data().map_err(|_| ())?
            }
            None => &[],
        };
        Ok(EndianSlice::new(bytes, endian))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    let mut reader = Reader {
        dwarf: &dwarf,
        others: HashMap::new(),
        starts: None,
    };
    Some(reader.frames(probes))
}

/// The DWARF of one object and the units read from it so far for names in other units.
struct Reader<'d, 'a> {
    dwarf: &'d gimli::Dwarf<R<'a>>,
    /// Units parsed to read a name another unit refers to, by `.debug_info` offset.
    others: HashMap<usize, Unit<'a>>,
    /// The `.debug_info` offset of every unit, read on the first reference across units.
    starts: Option<Vec<usize>>,
}

/// A function or inlined call around an address, outermost first.
struct Scope {
    /// The entry (in the unit being walked) that names it.
    entry: gimli::UnitOffset,
    /// Where it was called from, for an inlined call: (file index, line).
    call: Option<(u64, u32)>,
}

impl<'d, 'a> Reader<'d, 'a> {
    fn frames(&mut self, probes: &[u64]) -> HashMap<u64, Answer> {
        let mut out = HashMap::new();
        // The units holding the probes: unit offset -> the probes (indices) it holds.
        let mut hits: HashMap<usize, Vec<u64>> = HashMap::new();
        let mut found = vec![false; probes.len()];
        let listed = self.mark_from_aranges(probes, &mut hits, &mut found);
        if found.iter().any(|f| !f) {
            // Some units may have no `.debug_aranges` entry: read the root entry of those.
            self.mark_from_roots(probes, &listed, &mut hits, &mut found);
        }
        let mut units: Vec<_> = hits.into_iter().collect();
        units.sort_unstable_by_key(|u| u.0);
        for (offset, mut ps) in units {
            ps.sort_unstable();
            ps.dedup();
            match self.unit_frames(offset, &ps) {
                Some(mut per) => {
                    for p in ps {
                        if let Some(f) = per.remove(&p) {
                            out.entry(p).or_insert(Answer::Frames(f));
                        }
                    }
                }
                None => {
                    for p in ps {
                        out.entry(p).or_insert(Answer::Elsewhere);
                    }
                }
            }
        }
        out
    }

    /// Marks the probes each `.debug_aranges` set covers; returns the units listed there.
    fn mark_from_aranges(
        &self,
        probes: &[u64],
        hits: &mut HashMap<usize, Vec<u64>>,
        found: &mut [bool],
    ) -> Vec<usize> {
        let mut listed = Vec::new();
        let mut headers = self.dwarf.debug_aranges.headers();
        while let Ok(Some(h)) = headers.next() {
            let unit = h.debug_info_offset().0;
            listed.push(unit);
            let mut entries = h.entries();
            while let Ok(Some(e)) = entries.next() {
                let r = e.range();
                mark(probes, r.begin, r.end, unit, hits, found);
            }
        }
        listed.sort_unstable();
        listed
    }

    /// Marks the probes covered by the root entry of each unit not in `listed`.
    fn mark_from_roots(
        &self,
        probes: &[u64],
        listed: &[usize],
        hits: &mut HashMap<usize, Vec<u64>>,
        found: &mut [bool],
    ) {
        let mut headers = self.dwarf.units();
        while let Ok(Some(h)) = headers.next() {
            let Some(offset) = h.debug_info_offset() else {
                continue;
            };
            if listed.binary_search(&offset.0).is_ok() {
                continue;
            }
            if !matches!(
                h.type_(),
                gimli::UnitType::Compilation | gimli::UnitType::Skeleton(_)
            ) {
                continue;
            }
            let Ok(unit) = self.dwarf.unit(h) else {
                continue;
            };
            let Ok(mut ranges) = self.dwarf.unit_ranges(&unit) else {
                continue;
            };
            while let Ok(Some(r)) = ranges.next() {
                mark(probes, r.begin, r.end, offset.0, hits, found);
            }
        }
    }

    /// The frames at each probe of one unit; `None` for a split unit (its entries are in a
    /// `.dwo` file).
    fn unit_frames(&mut self, offset: usize, probes: &[u64]) -> Option<HashMap<u64, Vec<Frame>>> {
        let unit = self.unit_at(offset)?;
        if unit.dwo_id.is_some() {
            return None;
        }
        let files = self.files(&unit);
        let lines = self.lines(&unit, probes);
        // The scopes around each probe, outermost first.
        let mut scopes: HashMap<u64, Vec<Scope>> = HashMap::new();
        self.walk(&unit, probes, &mut scopes);
        let mut out = HashMap::new();
        for &p in probes {
            let here = lines
                .get(&p)
                .map(|&(file, line)| location(&files, file, line))
                .unwrap_or_default();
            let chain = scopes.remove(&p).unwrap_or_default();
            let mut frames = Vec::with_capacity(chain.len().max(1));
            if chain.is_empty() {
                frames.push((None, here));
            } else {
                let mut loc = here;
                for s in chain.iter().rev() {
                    let name = self.name_at(&unit, s.entry, 16);
                    frames.push((name, loc));
                    loc = s
                        .call
                        .map(|(file, line)| location(&files, file, line))
                        .unwrap_or_default();
                }
            }
            out.insert(p, frames);
        }
        Some(out)
    }

    /// Collects, for each probe, the subprogram and the inlined calls whose ranges hold it.
    /// Reads the entries in order, decoding the attributes of function entries only, and
    /// skips a function's subtree when no probe is inside it: most of a unit with full
    /// debug info is types, and most of its functions hold no probe.
    fn walk(&self, unit: &Unit<'a>, probes: &[u64], scopes: &mut HashMap<u64, Vec<Scope>>) {
        let Ok(mut entries) = unit.entries_raw(None) else {
            return;
        };
        // The function entries around the next one: (depth, the probes inside it).
        let mut open: Vec<(isize, Vec<u64>)> = Vec::new();
        // Inside a function entry that holds no probe: its depth.
        let mut skipping: Option<isize> = None;
        while !entries.is_empty() {
            let depth = entries.next_depth();
            let offset = entries.next_offset();
            let Ok(abbrev) = entries.read_abbreviation() else {
                return;
            };
            let Some(abbrev) = abbrev else {
                continue;
            };
            let tag = abbrev.tag();
            let is_fn = tag == gimli::DW_TAG_subprogram || tag == gimli::DW_TAG_inlined_subroutine;
            match skipping {
                Some(d) if depth > d => {
                    if entries.skip_attributes(abbrev.attributes()).is_err() {
                        return;
                    }
                    continue;
                }
                _ => skipping = None,
            }
            while open.last().is_some_and(|o| o.0 >= depth) {
                open.pop();
            }
            if !is_fn {
                if entries.skip_attributes(abbrev.attributes()).is_err() {
                    return;
                }
                continue;
            }
            let mut low = None;
            let mut high = None;
            let mut size = None;
            let mut ranges = None;
            let mut call_file = 0;
            let mut call_line = 0;
            for spec in abbrev.attributes() {
                let Ok(attr) = entries.read_attribute(*spec) else {
                    return;
                };
                match attr.name() {
                    gimli::DW_AT_low_pc => {
                        low = self.dwarf.attr_address(unit, attr.value()).ok().flatten();
                    }
                    gimli::DW_AT_high_pc => match attr.value() {
                        AttributeValue::Udata(v) => size = Some(v),
                        v => high = self.dwarf.attr_address(unit, v).ok().flatten(),
                    },
                    gimli::DW_AT_ranges => ranges = Some(attr.value()),
                    gimli::DW_AT_call_file => {
                        call_file = match attr.value() {
                            AttributeValue::FileIndex(f) => f,
                            v => v.udata_value().unwrap_or(0),
                        }
                    }
                    gimli::DW_AT_call_line => {
                        call_line = attr
                            .value()
                            .udata_value()
                            .and_then(|l| u32::try_from(l).ok())
                            .unwrap_or(0);
                    }
                    _ => {}
                }
            }
            let around: &[u64] = open.last().map_or(probes, |o| o.1.as_slice());
            let mut inside: Vec<u64> = Vec::new();
            let mut take = |begin: u64, end: u64| {
                let lo = around.partition_point(|&p| p < begin);
                let hi = around.partition_point(|&p| p < end);
                inside.extend_from_slice(&around[lo.min(hi)..hi]);
            };
            if let Some(list) = ranges.and_then(|v| self.dwarf.attr_ranges(unit, v).ok().flatten())
            {
                let mut list = list;
                while let Ok(Some(r)) = list.next() {
                    take(r.begin, r.end);
                }
            } else if let Some(begin) = low {
                match (high, size) {
                    (Some(end), _) => take(begin, end),
                    (None, Some(n)) => take(begin, begin.wrapping_add(n)),
                    (None, None) => {}
                }
            }
            if inside.is_empty() {
                if abbrev.has_children() {
                    skipping = Some(depth);
                }
                continue;
            }
            inside.sort_unstable();
            inside.dedup();
            let call = (tag == gimli::DW_TAG_inlined_subroutine).then_some((call_file, call_line));
            for &p in &inside {
                let chain = scopes.entry(p).or_default();
                // A subprogram starts a probe's chain afresh (a nested definition holding
                // the same address replaces its parent).
                if tag == gimli::DW_TAG_subprogram {
                    chain.clear();
                }
                chain.push(Scope {
                    entry: offset,
                    call,
                });
            }
            if abbrev.has_children() {
                open.push((depth, inside));
            }
        }
    }

    /// The line-table row (file index, line) of each probe.
    fn lines(&self, unit: &Unit<'a>, probes: &[u64]) -> HashMap<u64, (u64, u32)> {
        let mut out = HashMap::new();
        let Some(program) = unit.line_program.clone() else {
            return out;
        };
        let mut rows = program.rows();
        // The previous row of the current sequence: (address, file, line).
        let mut prev: Option<(u64, u64, u32)> = None;
        while let Ok(Some((_, row))) = rows.next_row() {
            let address = row.address();
            if let Some((start, file, line)) = prev {
                if address > start {
                    let lo = probes.partition_point(|&p| p < start);
                    let hi = probes.partition_point(|&p| p < address);
                    for &p in &probes[lo..hi] {
                        out.insert(p, (file, line));
                    }
                }
            }
            if row.end_sequence() {
                prev = None;
                continue;
            }
            let line = row
                .line()
                .map_or(0, |l| u32::try_from(l.get()).unwrap_or(0));
            prev = Some((address, row.file_index(), line));
        }
        out
    }

    /// The unit's file names by index, rendered as addr2line renders them.
    fn files(&self, unit: &Unit<'a>) -> Vec<String> {
        let mut files = Vec::new();
        let Some(program) = unit.line_program.as_ref() else {
            return files;
        };
        let header = program.header();
        let mut index = 0;
        loop {
            match header.file(index) {
                Some(file) => files.push(self.render_file(unit, file, header)),
                None if index == 0 => files.push(String::new()),
                None => break,
            }
            index += 1;
        }
        files
    }

    fn render_file(
        &self,
        unit: &Unit<'a>,
        file: &gimli::FileEntry<R<'a>>,
        header: &gimli::LineProgramHeader<R<'a>>,
    ) -> String {
        let mut path = unit
            .comp_dir
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file.directory_index() != 0 {
            if let Some(dir) = file.directory(header) {
                if let Ok(d) = self.dwarf.attr_string(unit, dir) {
                    path_push(&mut path, &d.to_string_lossy());
                }
            }
        }
        if let Ok(name) = self.dwarf.attr_string(unit, file.path_name()) {
            path_push(&mut path, &name.to_string_lossy());
        }
        path
    }

    /// The demangled name of the function entry at `offset` of `unit`: its linkage name,
    /// else its name, else its abstract origin's or specification's.
    fn name_at(
        &mut self,
        unit: &Unit<'a>,
        offset: gimli::UnitOffset,
        limit: u32,
    ) -> Option<String> {
        let raw = self.raw_name(unit, offset, limit)?;
        Some(format!("{:#}", rustc_demangle::demangle(&raw)))
    }

    fn raw_name(
        &mut self,
        unit: &Unit<'a>,
        offset: gimli::UnitOffset,
        limit: u32,
    ) -> Option<String> {
        if limit == 0 {
            return None;
        }
        let entry = unit.entry(offset).ok()?;
        let text = |v: AttributeValue<R<'a>>| {
            self.dwarf
                .attr_string(unit, v)
                .ok()
                .map(|s| s.to_string_lossy().into_owned())
        };
        for at in [gimli::DW_AT_linkage_name, gimli::DW_AT_MIPS_linkage_name] {
            if let Some(name) = entry.attr_value(at).and_then(text) {
                return Some(name);
            }
        }
        if let Some(name) = entry.attr_value(gimli::DW_AT_name).and_then(text) {
            return Some(name);
        }
        let next = entry
            .attr_value(gimli::DW_AT_abstract_origin)
            .or_else(|| entry.attr_value(gimli::DW_AT_specification))?;
        match next {
            AttributeValue::UnitRef(o) => self.raw_name(unit, o, limit - 1),
            AttributeValue::DebugInfoRef(o) => {
                let start = self.unit_start(o.0)?;
                if !self.others.contains_key(&start) {
                    let other = self.unit_at(start)?;
                    self.others.insert(start, other);
                }
                let other = self.others.remove(&start)?;
                let local = gimli::DebugInfoOffset(o.0).to_unit_offset(&other.header);
                let name = local.and_then(|l| self.raw_name(&other, l, limit - 1));
                self.others.insert(start, other);
                name
            }
            _ => None,
        }
    }

    /// The unit whose header is at `offset` in `.debug_info`, parsed (abbreviations and
    /// line-program header).
    fn unit_at(&self, offset: usize) -> Option<Unit<'a>> {
        let header = self
            .dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(offset))
            .ok()?;
        self.dwarf.unit(header).ok()
    }

    /// The `.debug_info` offset of the unit that contains `offset`.
    fn unit_start(&mut self, offset: usize) -> Option<usize> {
        let starts = self.starts.get_or_insert_with(|| {
            let mut v = Vec::new();
            let mut headers = self.dwarf.units();
            while let Ok(Some(h)) = headers.next() {
                if let Some(o) = h.debug_info_offset() {
                    v.push(o.0);
                }
            }
            v
        });
        let i = starts.partition_point(|&s| s <= offset);
        starts.get(i.checked_sub(1)?).copied()
    }
}

/// Adds `unit` to the units holding each probe in `[begin, end)`.
fn mark(
    probes: &[u64],
    begin: u64,
    end: u64,
    unit: usize,
    hits: &mut HashMap<usize, Vec<u64>>,
    found: &mut [bool],
) {
    if begin >= end {
        return;
    }
    let lo = probes.partition_point(|&p| p < begin);
    let hi = probes.partition_point(|&p| p < end);
    if lo < hi {
        hits.entry(unit)
            .or_default()
            .extend_from_slice(&probes[lo..hi]);
        for f in &mut found[lo..hi] {
            *f = true;
        }
    }
}

/// `file:line`, `file` when the line is unknown, empty when the file is.
fn location(files: &[String], file: u64, line: u32) -> String {
    let Some(name) = usize::try_from(file).ok().and_then(|i| files.get(i)) else {
        return String::new();
    };
    if name.is_empty() {
        return String::new();
    }
    if line == 0 {
        name.clone()
    } else {
        format!("{name}:{line}")
    }
}

/// Appends a path component as addr2line does (an absolute one replaces the path).
fn path_push(path: &mut String, p: &str) {
    let rooted = |s: &str| {
        s.starts_with('/') || s.starts_with('\\') || matches!(s.get(1..3), Some(":/" | ":\\"))
    };
    if rooted(p) {
        *path = p.to_string();
    } else {
        let sep = if path.starts_with('\\') || matches!(path.get(1..3), Some(":\\")) {
            '\\'
        } else {
            '/'
        };
        if !path.is_empty() && !path.ends_with(sep) {
            path.push(sep);
        }
        path.push_str(p);
    }
}
