//! Function names from the symbol table, for reports (never on the allocator path).
//!
//! Debug info gives an address's inlined frames and its file and line, but a build with
//! `debug = "line-tables-only"` names functions there without their paths (`{closure#0}`,
//! `main`), and a build without debug info names nothing. The symbol table holds the
//! linkage name of every function that was not inlined, in every such build; demangled,
//! it is the full path (`service::create_order::{{closure}}`). Resolution takes the
//! outermost function of each address from here, the inlined frames and lines from the
//! debug info.
//!
//! Each loaded object's file is mapped read-only once per resolution, its function symbols
//! sorted by address; the mapping goes when the resolution ends.

use std::collections::HashMap;

use object::{Object, ObjectSymbol, SymbolKind};

/// A function symbol: address in the file, size, offset and length of its name.
type Sym = (u64, u64, u32, u32);

/// One object's function symbols.
struct ObjectSymbols {
    /// Executable address range in this process, and the load bias.
    start: usize,
    end: usize,
    bias: usize,
    /// (address in the file, size, offset and length of the mangled name in `map`),
    /// sorted by address; names are demangled only when asked for.
    syms: Vec<Sym>,
    map: Option<Mapping>,
}

/// The symbol tables of the loaded objects, read on first use.
pub(super) struct SymbolTables {
    objects: Vec<ObjectSymbols>,
    loaded: bool,
}

struct Found {
    path: Vec<u8>,
    start: usize,
    end: usize,
    bias: usize,
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: `data` is the Vec passed below; `info` is valid for this call.
    let (out, info) = unsafe { (&mut *data.cast::<Vec<Found>>(), &*info) };
    if info.dlpi_phdr.is_null() {
        return 0;
    }
    let bias = info.dlpi_addr as usize;
    // SAFETY: the loader gives `dlpi_phnum` program headers at `dlpi_phdr`.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let (mut start, mut end) = (usize::MAX, 0);
    for ph in phdrs {
        if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 {
            let lo = bias.wrapping_add(ph.p_vaddr as usize);
            start = start.min(lo);
            end = end.max(lo.wrapping_add(ph.p_memsz as usize));
        }
    }
    let path = if info.dlpi_name.is_null() {
        Vec::new()
    } else {
        // SAFETY: the loader gives a NUL-terminated name.
        unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }
            .to_bytes()
            .to_vec()
    };
    if start < end {
        out.push(Found {
            path,
            start,
            end,
            bias,
        });
    }
    0
}

impl SymbolTables {
    pub(super) fn new() -> SymbolTables {
        SymbolTables {
            objects: Vec::new(),
            loaded: false,
        }
    }

    /// Reads the symbol tables of the objects that contain one of `ips`.
    pub(super) fn load_for(&mut self, ips: &[usize]) {
        if self.loaded {
            return;
        }
        self.loaded = true;
        let mut found: Vec<Found> = Vec::new();
        // SAFETY: `collect` matches the callback contract and only pushes to `found`.
        unsafe { libc::dl_iterate_phdr(Some(collect), std::ptr::addr_of_mut!(found).cast()) };
        for (i, f) in found.into_iter().enumerate() {
            if !ips.iter().any(|&ip| f.start < ip && ip <= f.end) {
                continue;
            }
            let path = if i == 0 || f.path.is_empty() {
                std::path::PathBuf::from("/proc/self/exe")
            } else {
                use std::os::unix::ffi::OsStrExt;
                std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&f.path))
            };
            let (syms, map) = match read_symbols(&path) {
                Some((s, m)) => (s, Some(m)),
                None => (Vec::new(), None),
            };
            self.objects.push(ObjectSymbols {
                start: f.start,
                end: f.end,
                bias: f.bias,
                syms,
                map,
            });
        }
    }

    /// The DWARF frames at each of the return addresses `ips` whose object has DWARF this
    /// process can read in place (see `dwarf`); the others get no entry.
    pub(super) fn dwarf_frames(&self, ips: &[usize]) -> HashMap<usize, super::dwarf::Answer> {
        let mut out = HashMap::new();
        for o in &self.objects {
            let Some(map) = o.map.as_ref() else { continue };
            let mut mine: Vec<(u64, usize)> = ips
                .iter()
                .filter(|&&ip| o.start < ip && ip <= o.end)
                .map(|&ip| ((ip - 1 - o.bias) as u64, ip))
                .collect();
            if mine.is_empty() {
                continue;
            }
            mine.sort_unstable();
            mine.dedup();
            let probes: Vec<u64> = mine.iter().map(|m| m.0).collect();
            let Some(mut answers) = super::dwarf::frames(map.bytes(), &probes) else {
                continue;
            };
            for (probe, ip) in mine {
                if let Some(a) = answers.remove(&probe) {
                    out.insert(ip, a);
                } else {
                    // The object has DWARF, and no unit holds this address: no frames
                    // beyond the symbol table's name.
                    out.insert(ip, super::dwarf::Answer::Frames(Vec::new()));
                }
            }
        }
        out
    }

    /// The demangled name (without hash) of the function that contains the return address
    /// `ip` (looked up at `ip - 1`).
    pub(super) fn function_of(&self, ip: usize) -> Option<String> {
        let probe = ip.checked_sub(1)?;
        let o = self
            .objects
            .iter()
            .find(|o| o.start <= probe && probe < o.end)?;
        let a = (probe - o.bias) as u64;
        let i = o.syms.partition_point(|s| s.0 <= a);
        let &(start, size, off, len) = o.syms.get(i.checked_sub(1)?)?;
        if a >= start + size.max(1) {
            return None;
        }
        let bytes = o.map.as_ref()?.bytes();
        let name = std::str::from_utf8(bytes.get(off as usize..(off + len) as usize)?).ok()?;
        Some(format!("{:#}", rustc_demangle::demangle(name)))
    }
}

/// The loader's (adds, subs) counters now.
pub(super) fn loader_counters() -> (u64, u64) {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the tuple below, `info` valid for this call.
        unsafe {
            let out = &mut *data.cast::<(u64, u64)>();
            *out = ((*info).dlpi_adds, (*info).dlpi_subs);
        }
        1
    }
    let mut out = (0u64, 0u64);
    // SAFETY: the callback only writes `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), std::ptr::addr_of_mut!(out).cast()) };
    out
}

/// The function symbols of one object file: `.symtab`, else `.dynsym`.
fn read_symbols(path: &std::path::Path) -> Option<(Vec<Sym>, Mapping)> {
    let map = Mapping::of_file(path)?;
    if u32::try_from(map.len).is_err() {
        return None;
    }
    let base = map.bytes().as_ptr() as usize;
    let mut syms = Vec::new();
    {
        let obj = object::File::parse(map.bytes()).ok()?;
        let mut add = |s: object::Symbol<'_, '_>| {
            if s.kind() == SymbolKind::Text && s.address() != 0 {
                if let Ok(name) = s.name_bytes() {
                    let off = (name.as_ptr() as usize - base) as u32;
                    syms.push((s.address(), s.size(), off, name.len() as u32));
                }
            }
        };
        let mut any = false;
        for s in obj.symbols() {
            any = true;
            add(s);
        }
        if !any {
            for s in obj.dynamic_symbols() {
                add(s);
            }
        }
    }
    syms.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
    syms.dedup_by_key(|s| s.0);
    Some((syms, map))
}

/// A read-only private mapping of a whole file.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// The whole of the file at `path`, if it can be opened and is not empty.
    fn of_file(path: &std::path::Path) -> Option<Mapping> {
        let file = std::fs::File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        Mapping::new(&file, len)
    }

    fn new(file: &std::fs::File, len: usize) -> Option<Mapping> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: maps `len` bytes of an open file read-only; checked for failure below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Mapping { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// The address ranges, in this process, of the executable's functions named
/// `__rust_begin_short_backtrace` (std's and libtest's markers; see `marker`), sorted.
/// Empty when the executable has no symbol table or cannot be read.
pub(super) fn marker_ranges() -> Vec<(usize, usize)> {
    let mut found: Vec<Found> = Vec::new();
    // SAFETY: `collect` matches the callback contract and only pushes to `found`.
    unsafe { libc::dl_iterate_phdr(Some(collect), std::ptr::addr_of_mut!(found).cast()) };
    // The first object the loader lists is the executable.
    let Some(exe) = found.first() else {
        return Vec::new();
    };
    let Some(map) = Mapping::of_file(std::path::Path::new("/proc/self/exe")) else {
        return Vec::new();
    };
    let Ok(obj) = object::File::parse(map.bytes()) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, usize)> = obj
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0 && s.size() != 0)
        .filter(|s| s.name_bytes().is_ok_and(is_marker_name))
        .map(|s| {
            let start = exe.bias.wrapping_add(s.address() as usize);
            (start, start.wrapping_add(s.size() as usize))
        })
        .filter(|&(start, end)| exe.start <= start && end <= exe.end)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a mangled symbol name is a `__rust_begin_short_backtrace`'s. The legacy scheme
/// puts the function's own name last, before the hash (`...28__rust_begin_short_backtrace
/// 17h<16 hex digits>E`), so most names are told by one comparison; a v0 name (`_R...`)
/// may carry generic arguments after it, and is searched.
fn is_marker_name(name: &[u8]) -> bool {
    const NAME: &[u8] = b"__rust_begin_short_backtrace";
    const HASH: usize = "17h0123456789abcdefE".len();
    if name.starts_with(b"_R") {
        return name.windows(NAME.len()).any(|w| w == NAME);
    }
    name.len() >= NAME.len() + HASH
        && &name[name.len() - HASH - NAME.len()..name.len() - HASH] == NAME
}

#[cfg(test)]
mod tests {
    use super::is_marker_name;

    #[test]
    fn marker_names_in_both_manglings() {
        // Legacy: the name last, before the hash.
        assert!(is_marker_name(
            b"_ZN3std3sys9backtrace28__rust_begin_short_backtrace17h0123456789abcdefE"
        ));
        assert!(is_marker_name(
            b"_ZN4test28__rust_begin_short_backtrace17hfedcba9876543210E"
        ));
        // v0: generic arguments may follow the name.
        assert!(is_marker_name(
            b"_RINvNtNtCsabc_3std3sys9backtrace28__rust_begin_short_backtraceFEuuEB6_"
        ));
        // Not a marker: a caller of it, a longer name, a short one.
        assert!(!is_marker_name(
            b"_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE"
        ));
        assert!(!is_marker_name(
            b"_ZN3std3sys9backtrace28__rust_begin_short_backtrace4call17h0123456789abcdefE"
        ));
        assert!(!is_marker_name(b"main"));
    }
}
