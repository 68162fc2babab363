//! Leak reports: a snapshot of the live tagged resources, of one tracker or of all, at
//! any time; filtered by a minimum age and an allow-list; shown as text (grouped by kind,
//! oldest first) or JSON; written to a file atomically.
//!
//! Everything here runs under the reentrancy guard, so the report's own allocations (names
//! copied out of the registry, the text, the JSON) are never tagged, even when a report is
//! made inside a scope.
//!
//! # False alarms: std's one-time allocations
//!
//! std allocates a few things once, behind the program's back. Made inside a scope, they
//! are tagged and look like leaks. What leaktracker does about each:
//!
//! * **The first `println!`** allocates stdout's 1 KiB buffer for the life of the process.
//!   leaktracker allocates it at start-up (before `main`, untagged), so it never shows.
//!   In a test run by libtest *with output capture*, `println!` writes into the test's
//!   capture buffer instead; its first write allocates it, inside the scope if one is open.
//!   Print something before the scope (or [`LeakCheck`](crate::LeakCheck)) starts, or run
//!   the tests with `--nocapture`.
//! * **A panic with `RUST_BACKTRACE` set** symbolises a backtrace and keeps a debug-info
//!   cache (tens of MB) for good. leaktracker wraps the panic hook at start-up so nothing a
//!   panic hook allocates is tagged. A hook you set later with `std::panic::set_hook`
//!   replaces that wrapper: call [`protect_panic_hook`](crate::protect_panic_hook) after it
//!   ([`LeakCheck::start`](crate::LeakCheck::start) and [`ExitReport::install`](crate::ExitReport::install)
//!   do it for you).
//! * **Thread-locals** first filled inside a scope keep their contents until the thread
//!   exits. The main thread's thread-locals are destroyed before the exit report is made,
//!   so they never show there; other threads' do while those threads run, and every
//!   thread's do in a [`LeakCheck`](crate::LeakCheck). Touch them once before the scope
//!   starts.
//! * **Threads spawned inside a scope** keep some bookkeeping (the packet for the result,
//!   the thread handle) until they are joined. Join them before the scope ends and before
//!   exit, or spawn them outside the scope. An exit report says how many other threads were
//!   still running.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::guard::Reentrancy;
use crate::resource::{self, Origin, Snapshot};
use crate::units::{Age, Bytes};
use crate::verdict::{self, Candidate, NotLeakGroup, Verdict};
use crate::LeakTracker;

/// Version of the JSON report schema.
pub const JSON_VERSION: u32 = 1;

// ---------------------------------------------------------------------------------------
// Entries and stacks

/// Blocks of one resource allocated at the same place: their count, their bytes and the
/// backtrace frames (innermost first) of that place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StackGroup {
    /// Live blocks allocated here.
    pub blocks: usize,
    /// Their requested sizes, added up.
    pub bytes: usize,
    /// Resolved frames, innermost first, one readable string each.
    pub frames: Vec<String>,
}

impl StackGroup {
    /// A group of `blocks` blocks of `bytes` bytes allocated at `frames`.
    pub fn new(blocks: usize, bytes: usize, frames: Vec<String>) -> StackGroup {
        StackGroup {
            blocks,
            bytes,
            frames,
        }
    }
}

/// One live resource in a report.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReportEntry {
    /// The resource's name.
    pub name: String,
    /// The resource's kind.
    pub kind: String,
    /// When it was (last) tracked, on the wall clock.
    pub created_at: SystemTime,
    /// Its age when the report was made.
    pub age: Duration,
    /// Live tagged blocks.
    pub allocations: usize,
    /// Their requested sizes, added up.
    pub bytes: usize,
    /// Where its blocks were allocated, largest group first; empty when backtraces were
    /// not captured.
    pub stacks: Vec<StackGroup>,
    /// What tagged it: `object` (`track`), `scope`, `task` (`instrument`) or `span`.
    pub origin: String,
    /// Why the verdict lists it (see [`Verdict`]).
    pub verdict: String,
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Object => "object",
        Origin::Scope => "scope",
        Origin::Task => "task",
        Origin::Span => "span",
    }
}

impl ReportEntry {
    /// The leaked part of a judged candidate.
    pub(crate) fn judged(
        c: &Candidate,
        allocations: usize,
        bytes: usize,
        stacks: Vec<StackGroup>,
        verdict: String,
    ) -> ReportEntry {
        ReportEntry {
            name: c.name.clone(),
            kind: c.kind.clone(),
            created_at: c.created_at,
            age: c.age,
            allocations,
            bytes,
            stacks,
            origin: origin_name(c.origin).to_string(),
            verdict,
        }
    }

    /// The frames of the largest stack group (the JSON `"backtrace"`), if any.
    pub fn backtrace(&self) -> Option<&[String]> {
        self.stacks
            .iter()
            .max_by_key(|g| (g.bytes, g.blocks))
            .map(|g| g.frames.as_slice())
    }
}

/// Resources, blocks and bytes added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Totals {
    /// Number of resources.
    pub resources: usize,
    /// Live blocks.
    pub allocations: usize,
    /// Live bytes.
    pub bytes: usize,
}

impl Totals {
    fn add(&mut self, e: &ReportEntry) {
        self.resources += 1;
        self.allocations += e.allocations;
        self.bytes += e.bytes;
    }
}

// ---------------------------------------------------------------------------------------
// Allow-list patterns

/// What an allow-list pattern looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Kind,
    Name,
    /// A frame of a block's allocation stack (`function at file:line`).
    Frame,
}

/// One allow-list entry: `kind:GLOB`, `name:GLOB` or `frame:GLOB`, where `*` in `GLOB`
/// matches any run of characters (including none) and every other character matches
/// itself. `kind:` and `name:` match resources; `frame:` matches the blocks whose
/// allocation stack has a frame (`function at file:line`) matching it (it needs stacks:
/// `LEAKTRACKER_BACKTRACE`).
///
/// ```
/// use leaktracker::AllowPattern;
/// let p: AllowPattern = "name:global-*".parse().unwrap();
/// assert!(p.matches("global-cache", "cache"));
/// assert!(!p.matches("session-1", "cache"));
/// assert!("cache".parse::<AllowPattern>().is_err()); // no `kind:` / `name:`
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowPattern {
    field: Field,
    glob: String,
}

/// An allow-list pattern that is neither `kind:…` nor `name:…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pattern: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an allow-list pattern (expected `kind:GLOB`, `name:GLOB` or `frame:GLOB`)",
            self.pattern.escape_debug()
        )
    }
}

impl std::error::Error for PatternError {}

impl FromStr for AllowPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<AllowPattern, PatternError> {
        let _r = Reentrancy::enter();
        let (field, glob) = if let Some(g) = s.strip_prefix("kind:") {
            (Field::Kind, g)
        } else if let Some(g) = s.strip_prefix("name:") {
            (Field::Name, g)
        } else if let Some(g) = s.strip_prefix("frame:") {
            (Field::Frame, g)
        } else {
            return Err(PatternError {
                pattern: s.to_string(),
            });
        };
        Ok(AllowPattern {
            field,
            glob: glob.to_string(),
        })
    }
}

impl fmt::Display for AllowPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self.field {
            Field::Kind => "kind",
            Field::Name => "name",
            Field::Frame => "frame",
        };
        write!(f, "{field}:{}", self.glob)
    }
}

impl AllowPattern {
    /// Whether a resource with this name and kind matches (a `frame:` pattern matches
    /// blocks, not resources: never).
    pub fn matches(&self, name: &str, kind: &str) -> bool {
        let text = match self.field {
            Field::Kind => kind,
            Field::Name => name,
            Field::Frame => return false,
        };
        glob_match(self.glob.as_bytes(), text.as_bytes())
    }

    /// Whether this is a `frame:` pattern and `frame` (`function at file:line`, or just
    /// the function) matches it.
    pub fn matches_frame(&self, frame: &str) -> bool {
        self.field == Field::Frame && crate::verdict::frame_matches(&self.glob, frame)
    }

    /// Whether this pattern matches frames (`frame:`) rather than resources.
    pub fn is_frame_pattern(&self) -> bool {
        self.field == Field::Frame
    }
}

/// `*` matches any run of bytes; everything else matches itself. Linear backtracking on
/// the last star: O(pattern × text) at worst, no recursion, no allocation.
pub(crate) fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pat.len() && pat[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// How many resources one allow-list pattern matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PatternMatch {
    /// The pattern, as written.
    pub pattern: String,
    /// Live resources it matched (whatever their age).
    pub matched: usize,
}

// ---------------------------------------------------------------------------------------
// The report

/// A snapshot of live tagged resources, filtered and ready to show.
///
/// ```
/// # #[global_allocator]
/// # static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
/// use leaktracker::{LeakReport, LeakTracker};
/// # fn main() {
/// let tracker = LeakTracker::new();
/// let conn = vec![0u8; 100];
/// tracker.track(&conn, "connection-1", "database").unwrap();
/// let cache = vec![0u8; 10];
/// tracker.track(&cache, "global-cache", "cache").unwrap();
///
/// let report = LeakReport::of(&tracker).ignore("kind:cache".parse().unwrap());
/// assert_eq!(report.leaks().len(), 1);
/// assert_eq!(report.leaks()[0].name, "connection-1");
/// println!("{report}"); // grouped by kind, oldest first
/// let json = report.to_json();
/// assert!(json.contains("\"connection-1\""));
/// # }
/// ```
///
/// Filters: a resource matched by any allow-list pattern is not listed (each pattern's
/// match count is kept, over all live resources); of the rest, only those older than the
/// minimum age are listed.
#[derive(Clone, Debug)]
pub struct LeakReport {
    pid: u32,
    exe: Option<String>,
    min_age: Duration,
    patterns: Vec<AllowPattern>,
    /// Every captured resource as captured, oldest first, for the verdict to judge; `None`
    /// for a report read from JSON (judged when it was made).
    candidates: Option<Vec<Candidate>>,
    verdict: Verdict,
    /// Judged as at exit: open units never finished.
    at_exit: bool,
    show_all: bool,
    /// What the verdict judged not a leak.
    not_leaks: Vec<NotLeakGroup>,
    /// Every resource the verdict lists, oldest first (the filters pick from these).
    all: Vec<ReportEntry>,
    /// The listed ones, oldest first.
    leaks: Vec<ReportEntry>,
    matches: Vec<PatternMatch>,
    allowed: Totals,
    younger: Totals,
    dropped_records: u64,
    allocator_installed: bool,
    backtraces: String,
    notes: Vec<String>,
    /// Live-process fields: labels, when it was made, sequence number and trigger.
    live: LiveFields,
}

/// The fields of a report that say which process, host and moment it comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LiveFields {
    /// `LEAKTRACKER_LABELS`, in order.
    labels: Vec<(String, String)>,
    /// When the report was made (Unix milliseconds).
    time_unix_ms: u64,
    /// Its sequence number among the reports this process wrote (0: not counted).
    seq: u64,
    /// `signal` or `interval` for a snapshot; empty otherwise.
    trigger: String,
}

impl LeakReport {
    /// Marks the report as snapshot `seq` of a live process, made on `trigger`.
    pub(crate) fn set_snapshot(&mut self, seq: u64, trigger: &str) {
        let _r = Reentrancy::enter();
        self.live.seq = seq;
        self.live.trigger = trigger.to_string();
    }

    /// The labels of the process that made the report (`LEAKTRACKER_LABELS`), in order.
    pub fn labels(&self) -> &[(String, String)] {
        &self.live.labels
    }

    /// When the report was made, on the wall clock (Unix epoch for a report read from
    /// JSON that does not say).
    pub fn made_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.live.time_unix_ms)
    }

    /// What made it: `signal` or `interval` for a snapshot of a live process, `None` for
    /// an exit report or one made by code.
    pub fn trigger(&self) -> Option<&str> {
        Some(self.live.trigger.as_str()).filter(|t| !t.is_empty())
    }
}

impl LeakReport {
    /// The live resources of every tracker (the global one, private ones, scopes).
    pub fn capture() -> LeakReport {
        Self::from_registry(None)
    }

    /// The live resources of `tracker`.
    pub fn of(tracker: &LeakTracker) -> LeakReport {
        Self::from_registry(Some(tracker.id()))
    }

    /// The live resources of every tracker, configured by `configure` before they are
    /// judged and filtered (once).
    pub(crate) fn capture_with(configure: impl FnOnce(&mut LeakReport)) -> LeakReport {
        let mut r = Self::unjudged(None);
        configure(&mut r);
        r.refilter();
        r
    }

    /// Sets the verdict, whether it is made at exit, and `show_all` (call `refilter` after).
    pub(crate) fn set_verdict(&mut self, verdict: Verdict, at_exit: bool, show_all: bool) {
        self.verdict = verdict;
        self.at_exit = at_exit;
        self.show_all = show_all;
    }

    /// Sets the minimum age and adds allow-list patterns (call `refilter` after).
    pub(crate) fn set_filters(
        &mut self,
        min_age: Duration,
        patterns: impl IntoIterator<Item = AllowPattern>,
    ) {
        let _r = Reentrancy::enter();
        self.min_age = min_age;
        self.patterns.extend(patterns);
    }

    fn from_registry(tracker: Option<u64>) -> LeakReport {
        let mut r = Self::unjudged(tracker);
        r.refilter();
        r
    }

    fn unjudged(tracker: Option<u64>) -> LeakReport {
        let snaps = resource::snapshot(tracker);
        let now = Instant::now();
        let _r = Reentrancy::enter();
        let mut stacks = if crate::stack::ever_on() {
            let ids: Vec<u32> = snaps.iter().map(|s| s.id).collect();
            crate::stack::resolved_groups(&ids)
        } else {
            Default::default()
        };
        let candidates: Vec<Candidate> = snaps
            .into_iter()
            .map(|s: Snapshot| {
                let mut groups: Vec<StackGroup> = stacks
                    .remove(&s.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|g| StackGroup::new(g.blocks, g.bytes, g.frames))
                    .collect();
                if groups.is_empty() {
                    groups.push(StackGroup::new(s.blocks, s.bytes, Vec::new()));
                }
                Candidate {
                    age: s.created.age_at(now),
                    created_at: s.created.wall,
                    name: s.name,
                    kind: s.kind,
                    origin: s.origin,
                    open: s.open,
                    ordinal: s.ordinal,
                    kind_units: s.kind_units,
                    groups,
                }
            })
            .collect();
        LeakReport {
            pid: std::process::id(),
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            min_age: Duration::ZERO,
            patterns: Vec::new(),
            leaks: Vec::new(),
            candidates: Some(candidates),
            verdict: Verdict::Default,
            at_exit: false,
            show_all: false,
            not_leaks: Vec::new(),
            all: Vec::new(),
            matches: Vec::new(),
            allowed: Totals::default(),
            younger: Totals::default(),
            dropped_records: crate::stats().dropped_records,
            allocator_installed: crate::is_installed(),
            backtraces: crate::exit::backtrace_setting(crate::backtraces()),
            notes: Vec::new(),
            live: LiveFields {
                labels: crate::live::labels(),
                time_unix_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, millis),
                seq: 0,
                trigger: String::new(),
            },
        }
    }

    /// Lists only resources older than `age` (the others are counted as "younger").
    #[must_use]
    pub fn min_age(mut self, age: Duration) -> LeakReport {
        self.min_age = age;
        self.refilter();
        self
    }

    /// Adds an allow-list pattern: resources it matches are not listed.
    #[must_use]
    pub fn ignore(mut self, pattern: AllowPattern) -> LeakReport {
        let _r = Reentrancy::enter();
        self.patterns.push(pattern);
        self.refilter();
        self
    }

    /// Judges with `verdict` (default [`Verdict::Default`]; [`Verdict::Strict`] lists every
    /// live tagged block).
    #[must_use]
    pub fn verdict(mut self, verdict: Verdict) -> LeakReport {
        self.verdict = verdict;
        self.refilter();
        self
    }

    /// Judges as at exit: a unit still open (a task still pending, a scope not ended, a
    /// span not closed) never finished, and is listed as a leak. Without this (a report of
    /// a live process) open units are work in progress.
    #[must_use]
    pub fn at_exit(mut self, at_exit: bool) -> LeakReport {
        self.at_exit = at_exit;
        self.refilter();
        self
    }

    /// Lists every block group judged not a leak (not only one summary line per reason
    /// and site).
    #[must_use]
    pub fn show_all(mut self, show_all: bool) -> LeakReport {
        self.show_all = show_all;
        self.refilter();
        self
    }

    /// What the verdict judged not a leak: one group per reason and site, largest first.
    pub fn not_leaks(&self) -> &[NotLeakGroup] {
        &self.not_leaks
    }

    /// The blocks judged not a leak, added up (resources counted once per group).
    pub fn not_leak_totals(&self) -> Totals {
        let mut t = Totals::default();
        for g in &self.not_leaks {
            t.resources = t.resources.saturating_add(g.resources);
            t.allocations = t.allocations.saturating_add(g.blocks);
            t.bytes = t.bytes.saturating_add(g.bytes);
        }
        t
    }

    /// The verdict used.
    pub fn verdict_used(&self) -> Verdict {
        self.verdict
    }

    /// Adds allow-list patterns.
    #[must_use]
    pub fn allow_list(mut self, patterns: impl IntoIterator<Item = AllowPattern>) -> LeakReport {
        let _r = Reentrancy::enter();
        self.patterns.extend(patterns);
        self.refilter();
        self
    }

    fn refilter(&mut self) {
        let _r = Reentrancy::enter();
        let mut counts = vec![0usize; self.patterns.len()];
        if let Some(candidates) = &self.candidates {
            let frame_patterns: Vec<&AllowPattern> = self
                .patterns
                .iter()
                .filter(|p| p.is_frame_pattern())
                .collect();
            let judged = verdict::judge(
                candidates,
                self.verdict,
                self.at_exit,
                &frame_patterns,
                self.show_all,
            );
            self.all = judged.leaks;
            self.not_leaks = judged.not_leaks;
            let mut frame_counts = judged.frame_matches.into_iter();
            for (p, c) in self.patterns.iter().zip(counts.iter_mut()) {
                if p.is_frame_pattern() {
                    *c = frame_counts.next().unwrap_or(0);
                }
            }
        }
        let mut leaks = Vec::new();
        let mut allowed = Totals::default();
        let mut younger = Totals::default();
        for e in &self.all {
            let mut hit = false;
            for (p, c) in self.patterns.iter().zip(counts.iter_mut()) {
                if p.matches(&e.name, &e.kind) {
                    *c += 1;
                    hit = true;
                }
            }
            if hit {
                allowed.add(e);
            } else if e.age <= self.min_age && !self.min_age.is_zero() {
                younger.add(e);
            } else {
                leaks.push(e.clone());
            }
        }
        self.matches = self
            .patterns
            .iter()
            .zip(counts)
            .map(|(p, matched)| PatternMatch {
                pattern: p.to_string(),
                matched,
            })
            .collect();
        self.leaks = leaks;
        self.allowed = allowed;
        self.younger = younger;
    }

    /// Adds a line to the report's notes (shown after the totals).
    pub(crate) fn add_note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The listed resources, oldest first.
    pub fn leaks(&self) -> &[ReportEntry] {
        &self.leaks
    }

    /// Whether no resource is listed.
    pub fn is_empty(&self) -> bool {
        self.leaks.is_empty()
    }

    /// The listed resources added up.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for e in &self.leaks {
            t.add(e);
        }
        t
    }

    /// Resources not listed because the allow-list matched them.
    pub fn allowed(&self) -> Totals {
        self.allowed
    }

    /// Resources not listed because they were not older than the minimum age.
    pub fn younger(&self) -> Totals {
        self.younger
    }

    /// The minimum age.
    pub fn min_age_filter(&self) -> Duration {
        self.min_age
    }

    /// How many resources each allow-list pattern matched, in the order they were given.
    pub fn pattern_matches(&self) -> &[PatternMatch] {
        &self.matches
    }

    /// The allow-list patterns that matched nothing.
    pub fn unmatched_patterns(&self) -> impl Iterator<Item = &str> {
        self.matches
            .iter()
            .filter(|m| m.matched == 0)
            .map(|m| m.pattern.as_str())
    }

    /// Records the table could not take since start-up: those blocks are missing from
    /// the counts.
    pub fn dropped_records(&self) -> u64 {
        self.dropped_records
    }

    /// The process the report was made in.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The executable of that process, when known.
    pub fn exe(&self) -> Option<&str> {
        self.exe.as_deref()
    }

    /// Whether a `TrackingAllocator` was the global allocator of that process.
    pub fn allocator_installed(&self) -> bool {
        self.allocator_installed
    }

    /// Notes about what may explain some listed resources.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    // -----------------------------------------------------------------------------------
    // JSON

    fn to_json_report(&self) -> JsonReport {
        JsonReport {
            version: JSON_VERSION,
            pid: self.pid,
            exe: self.exe.clone(),
            min_age_ms: millis(self.min_age),
            totals: self.totals(),
            leaks: self
                .leaks
                .iter()
                .map(|e| JsonLeak {
                    name: e.name.clone(),
                    kind: e.kind.clone(),
                    age_ms: millis(e.age),
                    created_unix_ms: e.created_at.duration_since(UNIX_EPOCH).map_or(0, millis),
                    allocations: e.allocations,
                    bytes: e.bytes,
                    backtrace: e.backtrace().map(<[String]>::to_vec),
                    stacks: e.stacks.clone(),
                    origin: e.origin.clone(),
                    verdict: e.verdict.clone(),
                })
                .collect(),
            verdict: self.verdict.to_string(),
            not_leaks: self.not_leaks.clone(),
            not_leak_totals: self.not_leak_totals(),
            dropped_records: self.dropped_records,
            allow_list: self.matches.clone(),
            unmatched_patterns: self.unmatched_patterns().map(str::to_string).collect(),
            allowed: self.allowed,
            younger: self.younger,
            allocator_installed: self.allocator_installed,
            backtraces: self.backtraces.clone(),
            notes: self.notes.clone(),
            labels: self.live.labels.iter().cloned().collect(),
            time_unix_ms: self.live.time_unix_ms,
            seq: self.live.seq,
            trigger: self.live.trigger.clone(),
        }
    }

    /// The report as one pretty-printed JSON object (schema in the crate's API notes:
    /// `version`, `pid`, `min_age_ms`, `totals`, `leaks`, `dropped_records`,
    /// `allow_list`, `unmatched_patterns`, …).
    pub fn to_json(&self) -> String {
        let _r = Reentrancy::enter();
        let mut buf = Vec::new();
        match self.write_json(&mut buf) {
            // serde_json writes UTF-8 only.
            Ok(()) => String::from_utf8(buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
        }
    }

    /// Writes the JSON of [`to_json`](Self::to_json) to `w`, without building it in memory.
    fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, &self.to_json_report())?;
        w.write_all(b"\n")
    }

    /// Reads a report written by [`to_json`](Self::to_json) (fields it does not know are
    /// ignored; missing optional fields take their defaults).
    ///
    /// # Errors
    /// When `json` is not such a report.
    pub fn from_json(json: &str) -> Result<LeakReport, serde_json::Error> {
        let _r = Reentrancy::enter();
        let j: JsonReport = serde_json::from_str(json)?;
        let leaks: Vec<ReportEntry> = j
            .leaks
            .into_iter()
            .map(|l| {
                let mut stacks = l.stacks;
                if stacks.is_empty() {
                    if let Some(frames) = l.backtrace {
                        stacks.push(StackGroup::new(l.allocations, l.bytes, frames));
                    }
                }
                ReportEntry {
                    name: l.name,
                    kind: l.kind,
                    created_at: UNIX_EPOCH + Duration::from_millis(l.created_unix_ms),
                    age: Duration::from_millis(l.age_ms),
                    allocations: l.allocations,
                    bytes: l.bytes,
                    stacks,
                    origin: l.origin,
                    verdict: l.verdict,
                }
            })
            .collect();
        // Patterns are kept as match counts only: a report read back is not re-filtered.
        Ok(LeakReport {
            pid: j.pid,
            exe: j.exe,
            min_age: Duration::from_millis(j.min_age_ms),
            patterns: Vec::new(),
            candidates: None,
            verdict: j.verdict.parse().unwrap_or_default(),
            at_exit: false,
            show_all: false,
            not_leaks: j.not_leaks,
            all: leaks.clone(),
            leaks,
            matches: j.allow_list,
            allowed: j.allowed,
            younger: j.younger,
            dropped_records: j.dropped_records,
            allocator_installed: j.allocator_installed,
            backtraces: j.backtraces,
            notes: j.notes,
            live: LiveFields {
                labels: j.labels.into_iter().collect(),
                time_unix_ms: j.time_unix_ms,
                seq: j.seq,
                trigger: j.trigger,
            },
        })
    }

    // -----------------------------------------------------------------------------------
    // Files

    /// Writes the report to `path`, whole or not at all (a temporary file in the same
    /// directory, then a rename): a gzipped pprof heap profile when the path ends in
    /// `.pb.gz` (see [`to_pprof`](Self::to_pprof)), JSON when it ends in `.json`, folded stacks (for
    /// flame-graph tools, see [`to_folded`](Self::to_folded)) when it ends in `.folded`,
    /// text otherwise.
    ///
    /// # Errors
    /// When the temporary file cannot be created, written or renamed.
    pub fn write_to(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let _r = Reentrancy::enter();
        let path = path.as_ref();
        if path.to_str().is_some_and(|p| p.ends_with(".pb.gz")) {
            return write_atomic_with(path, |f| {
                crate::pprof::write_gzipped(self, io::BufWriter::with_capacity(1 << 16, f))
            });
        }
        let body = match path.extension().and_then(|e| e.to_str()) {
            // Streamed into the file: a large report is not built as one String first.
            Some("json") => {
                return write_atomic_with(path, |f| {
                    let mut w = io::BufWriter::with_capacity(1 << 16, f);
                    self.write_json(&mut w)?;
                    w.flush()
                })
            }
            Some("folded") => self.to_folded(),
            _ => self.to_string(),
        };
        write_atomic(path, body.as_bytes())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename:
/// a reader sees the old file or the whole new one, never a part of it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] with the contents written by `write` into the temporary file.
pub(crate) fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let _r = Reentrancy::enter();
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name in the path"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        write(&mut f)?;
        // No fsync: readers see the old file or the whole new one either way (rename),
        // and a report is read by whoever waits for this process, from the page cache.
        // Forcing it to disk made a large report (89 MB) take twice as long to write.
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------------------------------
// Text

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn describe(t: Totals) -> String {
    format!(
        "{}, {}, {}",
        plural(t.resources, "resource", "resources"),
        plural(t.allocations, "block", "blocks"),
        Bytes(t.bytes)
    )
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _r = Reentrancy::enter();
        let totals = self.totals();
        write!(f, "leaktracker report (pid {}): ", self.pid)?;
        if self.trigger().is_some() {
            write!(f, "snapshot {} of a live process: ", self.live.seq)?;
        }
        if self.leaks.is_empty() {
            write!(f, "no leaks")?;
        } else {
            write!(f, "{} leaked", describe(totals))?;
        }
        if !self.min_age.is_zero() {
            write!(f, " older than {}", Age(self.min_age))?;
        }
        writeln!(f)?;
        if !self.live.labels.is_empty() {
            let labels: Vec<String> = self
                .live
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(f, "labels: {}", labels.join(", "))?;
        }
        if !self.allocator_installed {
            writeln!(
                f,
                "warning: no TrackingAllocator is the global allocator of this process: nothing was tracked"
            )?;
        }

        // Group by kind; a kind's place is that of its oldest resource.
        let mut kinds: Vec<&str> = Vec::new();
        for e in &self.leaks {
            if !kinds.contains(&e.kind.as_str()) {
                kinds.push(&e.kind);
            }
        }
        let width = self
            .leaks
            .iter()
            .map(|e| e.name.chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        for kind in kinds {
            let mut t = Totals::default();
            for e in self.leaks.iter().filter(|e| e.kind == kind) {
                t.add(e);
            }
            writeln!(f)?;
            writeln!(f, "kind {kind}: {}", describe(t))?;
            for e in self.leaks.iter().filter(|e| e.kind == kind) {
                let age = format!("age {}", Age(e.age));
                let blocks = plural(e.allocations, "block", "blocks");
                writeln!(
                    f,
                    "  {:<width$}  {age:<12}  {blocks:>10}  {:>10}",
                    e.name,
                    Bytes(e.bytes).to_string(),
                )?;
                if !e.verdict.is_empty() && e.origin != "object" {
                    writeln!(f, "      why: {}", e.verdict)?;
                }
                for g in &e.stacks {
                    writeln!(
                        f,
                        "      {}, {}, allocated at:",
                        plural(g.blocks, "block", "blocks"),
                        Bytes(g.bytes)
                    )?;
                    for frame in g.frames.iter().take(TEXT_FRAMES) {
                        writeln!(f, "          {frame}")?;
                    }
                    if g.frames.len() > TEXT_FRAMES {
                        writeln!(
                            f,
                            "          … {} more frames (in the JSON report)",
                            g.frames.len() - TEXT_FRAMES
                        )?;
                    }
                }
            }
        }
        if !self.leaks.is_empty() {
            writeln!(f)?;
            writeln!(f, "totals: {}", describe(totals))?;
        }
        let mut not_listed = Vec::new();
        if self.younger.resources > 0 {
            not_listed.push(format!(
                "{} not older than {}",
                plural(self.younger.resources, "resource", "resources"),
                Age(self.min_age)
            ));
        }
        if self.allowed.resources > 0 {
            not_listed.push(format!(
                "{} matched by the allow-list",
                plural(self.allowed.resources, "resource", "resources")
            ));
        }
        if !not_listed.is_empty() {
            writeln!(f, "not listed: {}", not_listed.join("; "))?;
        }
        if !self.matches.is_empty() {
            let parts: Vec<String> = self
                .matches
                .iter()
                .map(|m| {
                    if m.matched == 0 {
                        format!("{} matched nothing", m.pattern)
                    } else {
                        format!("{} matched {}", m.pattern, m.matched)
                    }
                })
                .collect();
            writeln!(f, "allow-list: {}", parts.join("; "))?;
        }
        if self.dropped_records > 0 {
            writeln!(
                f,
                "warning: {} records dropped (the record table was full): the blocks behind them are missing from these counts",
                self.dropped_records
            )?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        self.write_not_leaks(f)?;
        for hint in self.hints() {
            writeln!(f, "hint: {hint}")?;
        }
        Ok(())
    }
}

/// Frames of a stack shown in the text report (the JSON report has them all).
const TEXT_FRAMES: usize = 32;

/// Summary lines shown in the text report when `show-all` is off.
const NOT_LEAK_LINES: usize = 12;

impl LeakReport {
    /// The "judged not a leak" part of the text report.
    fn write_not_leaks(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.not_leaks.is_empty() {
            return Ok(());
        }
        let t = self.not_leak_totals();
        writeln!(
            f,
            "judged not leaks: {} blocks, {} (LEAKTRACKER_VERDICT=show-all lists them, =strict reports them as leaks):",
            t.allocations,
            Bytes(t.bytes)
        )?;
        let shown = if self.show_all {
            self.not_leaks.len()
        } else {
            NOT_LEAK_LINES
        };
        for g in self.not_leaks.iter().take(shown) {
            let mut line = format!(
                "  {}: {}, {} in {}",
                g.reason,
                plural(g.blocks, "block", "blocks"),
                Bytes(g.bytes),
                plural(g.resources, "resource", "resources"),
            );
            if !g.examples.is_empty() {
                line.push_str(&format!(" ({})", g.examples.join(", ")));
            }
            if let Some(site) = &g.site {
                line.push_str(&format!(", at {site}"));
            }
            writeln!(f, "{line}")?;
            for e in &g.entries {
                writeln!(
                    f,
                    "      {} ({}): {}, {}",
                    e.name,
                    e.kind,
                    plural(e.blocks, "block", "blocks"),
                    Bytes(e.bytes)
                )?;
                for frame in &e.frames {
                    writeln!(f, "          {frame}")?;
                }
            }
        }
        if self.not_leaks.len() > shown {
            writeln!(
                f,
                "  … and {} more groups (LEAKTRACKER_VERDICT=show-all lists them)",
                self.not_leaks.len() - shown
            )?;
        }
        Ok(())
    }

    /// Hints that apply to this report (none when nothing is listed).
    fn hints(&self) -> Vec<String> {
        let mut hints = Vec::new();
        if self.leaks.is_empty() || self.verdict == Verdict::Strict {
            return hints;
        }
        let units_without_stacks = self
            .leaks
            .iter()
            .any(|e| e.origin != "object" && e.stacks.is_empty());
        if units_without_stacks && self.candidates.is_some() {
            hints.push(
                "std's one-time allocations made inside a scope, task or span (lazy statics, \
                 thread-local contents, libtest's output capture, threads not yet joined) cannot be \
                 told from leaks without allocation stacks: set LEAKTRACKER_BACKTRACE=1"
                    .to_string(),
            );
        }
        let spawned = self.leaks.iter().any(|e| {
            e.stacks.iter().any(|g| {
                g.frames
                    .iter()
                    .any(|f| verdict::frame_matches("std::thread::*spawn*", f))
            })
        });
        if spawned {
            hints.push(
                "std's one-time allocations made inside a scope include the bookkeeping of the \
                 threads spawned there (their handle and result packet): it stays live until each \
                 thread ends and is joined"
                    .to_string(),
            );
        }
        let few: Vec<&str> = self
            .leaks
            .iter()
            .filter(|e| e.verdict.contains("too few to tell"))
            .map(|e| e.kind.as_str())
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) {
                    v.push(k);
                }
                v
            });
        if !few.is_empty() {
            hints.push(format!(
                "kind {} has fewer than {} units: what its scopes, tasks or spans keep after they end \
                 is listed; frame:GLOB in LEAKTRACKER_IGNORE allows a known allocation site",
                few.join(", "),
                verdict::MIN_UNITS
            ));
        }
        hints
    }
}

// ---------------------------------------------------------------------------------------
// JSON schema

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
struct JsonReport {
    version: u32,
    pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exe: Option<String>,
    min_age_ms: u64,
    totals: Totals,
    leaks: Vec<JsonLeak>,
    #[serde(default)]
    dropped_records: u64,
    #[serde(default)]
    allow_list: Vec<PatternMatch>,
    #[serde(default)]
    unmatched_patterns: Vec<String>,
    #[serde(default)]
    allowed: Totals,
    #[serde(default)]
    younger: Totals,
    #[serde(default = "yes")]
    allocator_installed: bool,
    #[serde(default)]
    backtraces: String,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    not_leaks: Vec<NotLeakGroup>,
    #[serde(default)]
    not_leak_totals: Totals,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    time_unix_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    seq: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    trigger: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
struct JsonLeak {
    name: String,
    kind: String,
    age_ms: u64,
    #[serde(default)]
    created_unix_ms: u64,
    allocations: usize,
    bytes: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backtrace: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stacks: Vec<StackGroup>,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    verdict: String,
}

/// Parses a minimum age as `LEAKTRACKER_MIN_AGE` spells it: `0`, `250ms`, `5s`, `2m`, `1h`.
pub fn parse_age(s: &str) -> Option<Duration> {
    crate::exit::parse_duration(s)
}

/// Normalises a resource name for comparisons across runs: hex addresses (`0x…`) and the
/// numbers of default scope and task names (`scope-N`, `task-N`) vary from run to run.
pub fn normalize_name(name: &str) -> Cow<'_, str> {
    let _r = Reentrancy::enter();
    if !name.contains("0x") && !name.starts_with("scope-") && !name.starts_with("task-") {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0'
            && b.get(i + 1) == Some(&b'x')
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push_str("0x*");
            i += 2;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            continue;
        }
        let start = i;
        i += 1;
        while i < b.len() && !b[i].is_ascii() {
            i += 1;
        }
        out.push_str(&name[start..i]);
    }
    for prefix in ["scope-", "task-"] {
        if let Some(rest) = out.strip_prefix(prefix) {
            if !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit()) {
                return Cow::Owned(format!("{prefix}*"));
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"global-*", b"global-cache"));
        assert!(!glob_match(b"global-*", b"a-global-cache"));
        assert!(glob_match(b"*-cache", b"global-cache"));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"a**c", b"abc"));
        assert!(glob_match(b"*a*a*a*", b"aaa"));
        assert!(!glob_match(b"*a*a*a*a", b"aaa"));
    }

    #[test]
    fn patterns() {
        let p: AllowPattern = "kind:cache".parse().unwrap();
        assert!(p.matches("x", "cache"));
        assert!(!p.matches("cache", "db"));
        assert_eq!(p.to_string(), "kind:cache");
        assert!("cache".parse::<AllowPattern>().is_err());
        assert!("Kind:cache".parse::<AllowPattern>().is_err());
        let e = "oops".parse::<AllowPattern>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`oops` is not an allow-list pattern (expected `kind:GLOB`, `name:GLOB` or `frame:GLOB`)"
        );
        let f: AllowPattern = "frame:regex_automata::*".parse().unwrap();
        assert!(f.is_frame_pattern());
        assert!(!f.matches("regex_automata::x", "regex_automata::x"));
        assert!(f.matches_frame("regex_automata::util::pool::Pool::get at pool.rs:9"));
        assert!(!f.matches_frame("regex::Regex::new at string.rs:1"));
        assert_eq!(f.to_string(), "frame:regex_automata::*");
    }

    #[test]
    fn normalized_names() {
        assert_eq!(normalize_name("conn-1"), "conn-1");
        assert_eq!(normalize_name("obj-0x7f00ab12"), "obj-0x*");
        assert_eq!(normalize_name("scope-17"), "scope-*");
        assert_eq!(normalize_name("task-3"), "task-*");
        assert_eq!(normalize_name("scope-x"), "scope-x");
        assert_eq!(normalize_name("a0x"), "a0x");
        assert_eq!(normalize_name("é0x1fé"), "é0x*é");
    }
}
