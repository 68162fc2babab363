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

pub(crate) mod output;
mod pprof;
pub(crate) mod text;

#[allow(deprecated)]
pub use crate::allow::AllowPattern;
pub use crate::allow::{IgnorePattern, PatternError, PatternMatch};
pub use crate::entry::{ReportEntry, StackGroup, Totals};

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::guard::Reentrancy;
use crate::report::text::{allow_list_line, by_kind, plural, totals_text};
use crate::resource::{self, Snapshot, TrackerId};
use crate::settings::{BacktraceSetting, EnvDuration};
use crate::units::{Age, Bytes};
use crate::verdict::{self, Candidate, NotLeakGroup, SiteFacts, Verdict};
use crate::LeakTracker;

/// Version of the JSON report schema.
pub const JSON_VERSION: u32 = 1;

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
    /// The process's command-line arguments (the program first), when known.
    args: Vec<String>,
    min_age: Duration,
    patterns: Vec<IgnorePattern>,
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
    /// Set on a report read back with [`from_json`](Self::from_json): what it counted but
    /// did not list, kept when it is filtered again.
    read_back: Option<Box<ReadBack>>,
    /// Live-process fields: labels, when it was made, sequence number and trigger.
    live: LiveFields,
}

/// The counts of a report read back from JSON that its listed entries cannot give again:
/// the resources it did not list are not in the file, only their counts.
#[derive(Clone, Debug, Default)]
struct ReadBack {
    /// The entries as the file lists them (judged when it was made).
    entries: Vec<ReportEntry>,
    /// The file's not-leak groups.
    not_leaks: Vec<NotLeakGroup>,
    matches: Vec<PatternMatch>,
    allowed: Totals,
    younger: Totals,
    min_age: Duration,
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
    pub(crate) fn set_snapshot(&mut self, _r: &Reentrancy, seq: u64, trigger: &str) {
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
    pub fn of_all() -> LeakReport {
        Self::from_registry(&Reentrancy::enter(), None)
    }

    /// The former name of [`of_all`](Self::of_all).
    #[deprecated(
        since = "0.1.1",
        note = "renamed `of_all` (beside `of(&tracker)`): `capture` means taking a stack"
    )]
    pub fn capture() -> LeakReport {
        Self::of_all()
    }

    /// The live resources of `tracker`.
    pub fn of(tracker: &LeakTracker) -> LeakReport {
        Self::from_registry(&Reentrancy::enter(), Some(tracker.id()))
    }

    /// The live resources of every tracker, configured by `configure` before they are
    /// judged and filtered (once).
    pub(crate) fn capture_with(
        g: &Reentrancy,
        configure: impl FnOnce(&mut LeakReport),
    ) -> LeakReport {
        let mut r = Self::unjudged(g, None);
        configure(&mut r);
        r.refilter(g);
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
        patterns: impl IntoIterator<Item = IgnorePattern>,
        _r: &Reentrancy,
    ) {
        self.min_age = min_age;
        self.patterns.extend(patterns);
    }

    fn from_registry(g: &Reentrancy, tracker: Option<TrackerId>) -> LeakReport {
        let mut r = Self::unjudged(g, tracker);
        r.refilter(g);
        r
    }

    fn unjudged(g: &Reentrancy, tracker: Option<TrackerId>) -> LeakReport {
        let snaps = resource::snapshot(g, tracker);
        let now = Instant::now();
        let mut stacks = if crate::stack::ever_on() {
            let ids: Vec<_> = snaps.iter().map(|s| s.id).collect();
            crate::stack::resolve_groups(g, crate::records::stack_groups(g, &ids))
        } else {
            Default::default()
        };
        let blocks = snaps.iter().map(|s| s.blocks).sum();
        let stack_notes = crate::stack::report_notes(&stacks, blocks);
        let candidates: Vec<Candidate> = snaps
            .into_iter()
            .map(|s: Snapshot| {
                let mut groups = Vec::new();
                let mut sites = Vec::new();
                for g in stacks.remove(&s.id).unwrap_or_default() {
                    groups.push(StackGroup::new(g.blocks, g.bytes, g.frames));
                    sites.push(SiteFacts {
                        frame_ips: g.frame_ips,
                        grew: g.grew,
                        last_seq: g.last_seq,
                        captured: g.captured,
                        stack: g.stack,
                    });
                }
                if groups.is_empty() {
                    groups.push(StackGroup::new(s.blocks, s.bytes, Vec::new()));
                    sites.push(SiteFacts::default());
                }
                Candidate {
                    age: s.created.age_at(now),
                    created_at: s.created.wall,
                    name: s.name,
                    kind: s.kind,
                    origin: s.origin,
                    // A unit is open until its guard, future or span ends it (a scope
                    // ended out of order is still held by the next one, but it ended).
                    open: if s.origin.is_unit() {
                        s.ended == 0
                    } else {
                        s.open
                    },
                    ordinal: s.ended,
                    kind_units: s.kind_ended,
                    groups,
                    sites,
                }
            })
            .collect();
        let mut r = LeakReport {
            pid: std::process::id(),
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            args: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
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
            backtraces: BacktraceSetting(crate::backtraces()).to_string(),
            notes: stack_notes,
            read_back: None,
            live: LiveFields {
                labels: output::labels(g),
                time_unix_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, millis),
                seq: 0,
                trigger: String::new(),
            },
        };
        let lost = crate::stats().dropped_resources;
        if lost > 0 {
            r.add_note(format!("{lost} resource(s) could not be created (no memory for the resource registry): the scopes, tasks and track calls behind them tagged nothing, so their blocks are missing from these counts"));
        }
        r
    }

    /// Lists only resources older than `age` (the others are counted as "younger").
    #[must_use]
    pub fn min_age(mut self, age: Duration) -> LeakReport {
        self.min_age = age;
        self.refilter(&Reentrancy::enter());
        self
    }

    /// Adds an allow-list pattern: resources it matches are not listed.
    #[must_use]
    pub fn ignore(mut self, pattern: IgnorePattern) -> LeakReport {
        let r = Reentrancy::enter();
        self.patterns.push(pattern);
        self.refilter(&r);
        self
    }

    /// Judges with `verdict` (default [`Verdict::Default`]; [`Verdict::Strict`] lists every
    /// live tagged block). A report [read back](Self::from_json) keeps the judgement it was
    /// made with (the file holds what was listed, not every block): this changes nothing
    /// there, and [`verdict_used`](Self::verdict_used) still tells the file's.
    #[must_use]
    pub fn verdict(mut self, verdict: Verdict) -> LeakReport {
        if !self.is_read_back() {
            self.verdict = verdict;
        }
        self.refilter(&Reentrancy::enter());
        self
    }

    /// Judges as at exit: a unit still open (a task still pending, a scope not ended, a
    /// span not closed) never finished, and is listed as a leak. Without this (a report of
    /// a live process) open units are work in progress. Like [`verdict`](Self::verdict),
    /// it changes nothing on a report read back.
    #[must_use]
    pub fn at_exit(mut self, at_exit: bool) -> LeakReport {
        if !self.is_read_back() {
            self.at_exit = at_exit;
        }
        self.refilter(&Reentrancy::enter());
        self
    }

    /// Lists every block group judged not a leak (not only one summary line per reason
    /// and site).
    #[must_use]
    pub fn show_all(mut self, show_all: bool) -> LeakReport {
        self.show_all = show_all;
        self.refilter(&Reentrancy::enter());
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

    /// Whether this report was read back with [`from_json`](Self::from_json), rather than
    /// made from the live resources of this process. Filters still apply to one read back
    /// (name and kind patterns to its entries, `frame:` patterns to their stacks, a larger
    /// minimum age); the judgement is the one it was made with.
    pub fn is_read_back(&self) -> bool {
        self.read_back.is_some()
    }

    /// Adds patterns, as [`ignore`](Self::ignore) does one.
    #[must_use]
    pub fn ignore_all(mut self, patterns: impl IntoIterator<Item = IgnorePattern>) -> LeakReport {
        let r = Reentrancy::enter();
        self.patterns.extend(patterns);
        self.refilter(&r);
        self
    }

    /// The former name of [`ignore_all`](Self::ignore_all).
    #[deprecated(since = "0.1.1", note = "renamed `ignore_all`, beside `ignore`")]
    #[must_use]
    pub fn allow_list(self, patterns: impl IntoIterator<Item = IgnorePattern>) -> LeakReport {
        self.ignore_all(patterns)
    }

    fn refilter(&mut self, _r: &Reentrancy) {
        let mut counts = vec![0usize; self.patterns.len()];
        let frame_patterns: Vec<&IgnorePattern> = self
            .patterns
            .iter()
            .filter(|p| p.is_frame_pattern())
            .collect();
        let judged = match (&self.candidates, &self.read_back) {
            (Some(candidates), _) => Some(verdict::judge(
                candidates,
                self.verdict,
                self.at_exit,
                &frame_patterns,
                self.show_all,
            )),
            // Read back: judged when it was made; only frame patterns act on its stacks.
            (None, Some(b)) => Some(verdict::filter_read_back(
                &b.entries,
                &b.not_leaks,
                &frame_patterns,
                self.show_all,
            )),
            (None, None) => None,
        };
        if let Some(judged) = judged {
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
        // A report read back starts from what it counted but did not list; its entries
        // are all older than its own minimum age, which stays the floor.
        let (mut matches, mut allowed, mut younger, floor) = match &self.read_back {
            Some(b) => (b.matches.clone(), b.allowed, b.younger, b.min_age),
            None => (
                Vec::new(),
                Totals::default(),
                Totals::default(),
                Duration::ZERO,
            ),
        };
        self.min_age = self.min_age.max(floor);
        let by_age = self.min_age > floor;
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
            } else if by_age && e.age <= self.min_age {
                younger.add(e);
            } else {
                leaks.push(e.clone());
            }
        }
        matches.extend(
            self.patterns
                .iter()
                .zip(counts)
                .map(|(p, matched)| PatternMatch {
                    pattern: p.to_string(),
                    matched,
                }),
        );
        self.matches = matches;
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

    /// Resources not listed because an [`ignore`](Self::ignore) pattern matched them.
    pub fn ignored(&self) -> Totals {
        self.allowed
    }

    /// The former name of [`ignored`](Self::ignored).
    #[deprecated(since = "0.1.1", note = "renamed `ignored`, after `ignore`")]
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

    /// The command-line arguments of that process, the program first (empty when not
    /// known, as in reports of older versions).
    pub fn args(&self) -> &[String] {
        &self.args
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
            args: self.args.clone(),
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
    /// A report read back lists what the file lists. Filtered again, it keeps what the
    /// file counted without listing: the allow-list's match counts, the allowed and the
    /// younger totals. Its minimum age can only grow ([`min_age`](Self::min_age) below the
    /// file's keeps the file's: the younger resources are not in the file), and new
    /// allow-list patterns are counted over the listed resources only.
    ///
    /// # Errors
    /// When `json` is not such a report: a [`ParseReportError`], whose message is the
    /// JSON decoder's, with the line and column (the text this function gave when it
    /// returned the decoder's error type).
    pub fn from_json(json: &str) -> Result<LeakReport, ParseReportError> {
        let r = Reentrancy::enter();
        let j: JsonReport = serde_json::from_str(json).map_err(ParseReportError::new)?;
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
                    created_at: UNIX_EPOCH
                        .checked_add(Duration::from_millis(l.created_unix_ms))
                        .unwrap_or(UNIX_EPOCH),
                    age: Duration::from_millis(l.age_ms),
                    allocations: l.allocations,
                    bytes: l.bytes,
                    stacks,
                    origin: l.origin,
                    verdict: l.verdict,
                }
            })
            .collect();
        // Patterns are kept as match counts only (what they matched is not in the file).
        let min_age = Duration::from_millis(j.min_age_ms);
        let read_back = ReadBack {
            entries: leaks,
            not_leaks: j.not_leaks,
            matches: j.allow_list,
            allowed: j.allowed,
            younger: j.younger,
            min_age,
        };
        // What it lists, its groups and counts come from `read_back`, by `refilter`, as
        // each later filter makes them again.
        let mut report = LeakReport {
            pid: j.pid,
            exe: j.exe,
            args: j.args,
            min_age,
            patterns: Vec::new(),
            candidates: None,
            verdict: j.verdict.parse().unwrap_or_default(),
            at_exit: false,
            show_all: false,
            not_leaks: Vec::new(),
            all: Vec::new(),
            leaks: Vec::new(),
            matches: Vec::new(),
            allowed: Totals::default(),
            younger: Totals::default(),
            dropped_records: j.dropped_records,
            allocator_installed: j.allocator_installed,
            backtraces: j.backtraces,
            notes: j.notes,
            read_back: Some(Box::new(read_back)),
            live: LiveFields {
                labels: j.labels.into_iter().collect(),
                time_unix_ms: j.time_unix_ms,
                seq: j.seq,
                trigger: j.trigger,
            },
        };
        report.refilter(&r);
        Ok(report)
    }

    // -----------------------------------------------------------------------------------
    // Files

    /// Writes the report to `path`: a gzipped pprof heap profile when the path ends in
    /// `.pb.gz` (see [`to_pprof`](Self::to_pprof)), JSON when the path ends in `.json`, folded stacks (for
    /// flame-graph tools, see [`to_folded`](Self::to_folded)) when it ends in `.folded`,
    /// text otherwise. What happens depends on what is at the path:
    ///
    /// | at the path | what happens |
    /// | --- | --- |
    /// | nothing, or a regular file | written whole or not at all: an unnamed temporary file (`O_TMPFILE`, Linux) or a hidden `.NAME.tmp-PID-N` in the same directory, then linked or renamed into place; no temporary file survives a SIGINT, SIGTERM, SIGHUP or SIGQUIT that ends the process meanwhile |
    /// | a symbolic link | followed (up to 40 links) to its target, which is handled by this table; the link stays |
    /// | `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N` | written in place to that open descriptor (at its current offset), streamed |
    /// | a character device (`/dev/null`, a terminal), a FIFO | opened and written in place, streamed; a FIFO gets 5 s for a reader to open it |
    /// | a directory, a socket, a block device | an error, and nothing changes |
    ///
    /// # Errors
    /// When the path is refused (see above), or the file cannot be created, written,
    /// linked or renamed.
    pub fn write_to(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let r = Reentrancy::enter();
        let path = path.as_ref();
        // The format is the one the caller's name asks for, wherever a link points.
        let format = path.extension().and_then(|e| e.to_str());
        let pprof = path.to_str().is_some_and(|p| p.ends_with(".pb.gz"));
        let write = |f: &mut std::fs::File| -> io::Result<()> {
            if pprof {
                return crate::report::pprof::write_gzipped(
                    &r,
                    self,
                    io::BufWriter::with_capacity(1 << 16, f),
                );
            }
            match format {
                // Streamed into the file: a large report is not built as one String first.
                Some("json") => {
                    let mut w = io::BufWriter::with_capacity(1 << 16, f);
                    self.write_json(&mut w)?;
                    w.flush()
                }
                Some("folded") => f.write_all(self.to_folded().as_bytes()),
                _ => f.write_all(self.to_string().as_bytes()),
            }
        };
        match destination(path)? {
            Destination::Replace(target) => write_atomic_with(&r, &target, write),
            Destination::InPlace(mut file) => write(&mut file),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Where a report goes, by what is at its path.
#[derive(Debug)]
enum Destination {
    /// Nothing or a regular file: replaced whole (temporary file, then link or rename).
    Replace(PathBuf),
    /// A character device, a FIFO or an open descriptor of this process: written in place.
    InPlace(std::fs::File),
}

/// Symbolic links followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// How long a report waits for a reader of a FIFO.
const FIFO_WAIT: Duration = Duration::from_secs(5);

/// Decides where a report for `path` goes: follows symbolic links, opens what is written
/// in place, refuses what a report must not replace.
fn destination(path: &Path) -> io::Result<Destination> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut p = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        // Before looking at the file system: `/dev/stdout` is a link to `/proc/self/fd/1`,
        // itself a link to whatever descriptor 1 is (a regular file when output is
        // redirected, which must be appended to, not replaced).
        if let Some(fd) = own_descriptor(&p) {
            return dup_descriptor(fd).map(Destination::InPlace);
        }
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::Replace(p)),
            Err(e) => return Err(e),
        };
        let t = meta.file_type();
        if t.is_symlink() {
            let target = std::fs::read_link(&p)?;
            p = match p.parent() {
                Some(dir) if target.is_relative() => dir.join(target),
                _ => target,
            };
            continue;
        }
        if t.is_file() {
            return Ok(Destination::Replace(p));
        }
        if t.is_char_device() {
            return std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(&p)
                .map(Destination::InPlace);
        }
        if t.is_fifo() {
            return open_fifo(&p).map(Destination::InPlace);
        }
        let what = if t.is_dir() {
            "a directory"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() {
            "a block device"
        } else {
            "not a regular file"
        };
        let msg = if p == path {
            format!("it is {what}")
        } else {
            format!("it leads to {}, {what}", p.display())
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{msg} (a report goes to a regular file, a character device or a FIFO)"),
        ));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("more than {MAX_LINKS} symbolic links"),
    ))
}

/// The descriptor a path names when it is one of this process's own: `/dev/stdout`,
/// `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`.
fn own_descriptor(p: &Path) -> Option<libc::c_int> {
    let s = p.to_str()?;
    match s {
        "/dev/stdout" => Some(1),
        "/dev/stderr" => Some(2),
        _ => {
            let n = s
                .strip_prefix("/dev/fd/")
                .or_else(|| s.strip_prefix("/proc/self/fd/"))?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse().ok()
        }
    }
}

/// A file of our own for descriptor `fd` (a duplicate: closing it leaves `fd` open).
fn dup_descriptor(fd: libc::c_int) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    if fd == 1 {
        // What the program printed goes first.
        let _ = io::stdout().flush();
    }
    // SAFETY: F_DUPFD_CLOEXEC on any integer is safe: it fails with EBADF when `fd` is not
    // open, and otherwise returns a new descriptor that nothing else owns.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("descriptor {fd} is not open: {e}"),
        ));
    }
    // SAFETY: `dup` was just returned by fcntl and is owned by nothing else.
    Ok(unsafe { std::fs::File::from_raw_fd(dup) })
}

/// Opens a FIFO for writing, waiting up to [`FIFO_WAIT`] for a reader (a plain open would
/// wait for ever, and the process with it, at exit).
fn open_fifo(p: &Path) -> io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + FIFO_WAIT;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
        {
            Ok(f) => {
                let fd = f.as_raw_fd();
                // SAFETY: `fd` is open (owned by `f`); F_GETFL/F_SETFL only change its
                // status flags: back to blocking writes, so a full pipe waits.
                unsafe {
                    let flags = libc::fcntl(fd, libc::F_GETFL);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
                    }
                }
                return Ok(f);
            }
            // ENXIO: no reader yet.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "it is a FIFO and no process opened it for reading within {}",
                            Age(FIFO_WAIT)
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether [`write_atomic_with`] skips `O_TMPFILE` (tests of the named fallback).
static NAMED_TEMPORARY_FILES: AtomicBool = AtomicBool::new(false);

/// Makes reports use a named temporary file even where an unnamed one (`O_TMPFILE`) is
/// available: for tests of that fallback. Not part of the stable API.
#[doc(hidden)]
pub fn use_named_temporary_files(on: bool) {
    NAMED_TEMPORARY_FILES.store(on, Ordering::Relaxed);
}

/// Writes `path` through a temporary file in the same directory, then a link or a rename:
/// a reader sees the old file or the whole new one, never a part of it. `write` fills the
/// temporary file (a second time when the unnamed one could not be linked and a named one
/// is tried).
pub(crate) fn write_atomic_with(
    _r: &Reentrancy,
    path: &Path,
    mut write: impl FnMut(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
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
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !NAMED_TEMPORARY_FILES.load(Ordering::Relaxed) {
        if let Some(result) = write_unnamed(&dir, path, &tmp, &mut write) {
            return result;
        }
    }
    // A named temporary file, removed if a signal ends the process before the rename.
    let _armed = cleanup::arm(&tmp);
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

/// Writes into an unnamed file of `dir` (`O_TMPFILE`: invisible, and gone with the
/// process, until linked), then links it as `path` (nothing there) or as `tmp` and renames
/// that over `path`. `None` when this cannot be done here (no `O_TMPFILE` on this file
/// system, no `/proc` to link through): nothing was made visible, use a named file.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn write_unnamed(
    dir: &Path,
    path: &Path,
    tmp: &Path,
    write: &mut impl FnMut(&mut std::fs::File) -> io::Result<()>,
) -> Option<io::Result<()>> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let dir_c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let path_c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let tmp_c = CString::new(tmp.as_os_str().as_bytes()).ok()?;
    // SAFETY: `dir_c` is a NUL-terminated path; open has no other preconditions.
    let fd = unsafe {
        libc::open(
            dir_c.as_ptr(),
            libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
            0o666 as libc::c_uint,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by open and is owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    if let Err(e) = write(&mut file) {
        return Some(Err(e)); // the unnamed file goes away with `file`
    }
    let proc_path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let link = |to: &CString| -> io::Result<()> {
        // SAFETY: both paths are NUL-terminated; linkat has no other preconditions.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                proc_path.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(e);
        }
        // No /proc: linking the descriptor itself needs CAP_DAC_READ_SEARCH.
        // SAFETY: `file` is open; the empty path is NUL-terminated; AT_EMPTY_PATH makes
        // linkat link that descriptor.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    match link(&path_c) {
        // Nothing was at the path: it appeared whole, in one step.
        Ok(()) => return Some(Ok(())),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        // Not linkable here (or the directory is gone, read-only, full): the named file
        // says why, if it fails too.
        Err(_) => return None,
    }
    // A file is there: link under the temporary name, rename over it. Only this short
    // window has a visible temporary file, removed if a signal ends the process in it.
    let _armed = cleanup::arm(tmp);
    if let Err(e) = link(&tmp_c) {
        return Some(Err(e));
    }
    drop(file);
    let result = std::fs::rename(tmp, path);
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    Some(result)
}

/// Removing a named temporary file when a signal ends the process while it exists.
///
/// While armed, SIGHUP, SIGINT, SIGQUIT and SIGTERM go to a handler that, when the
/// disposition it replaced was the default (the signal ends the process), removes the file
/// and lets the signal end the process as it would have; when it was a handler, calls that
/// handler (the process goes on, and so does the write); when it was "ignore", ignores
/// it. Disarming puts the replaced dispositions back. One file at a time: writes wait for
/// each other while armed. SIGKILL cannot be caught: only `O_TMPFILE` helps there.
mod cleanup {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard, PoisonError};

    const SIGNALS: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM];

    /// The armed path (a `CString` turned into a raw pointer); taken by whoever swaps it
    /// out first: the handler (which then owns it until the process ends) or `disarm`.
    static PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
    /// The replaced handlers, for the signal handler to hand signals on (atomics: it may
    /// read them on any thread at any time).
    static PREV_HANDLER: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
    static PREV_SIGINFO: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
    static LOCK: Mutex<()> = Mutex::new(());

    /// Armed until dropped.
    pub(super) struct Armed {
        _lock: MutexGuard<'static, ()>,
        prev: [libc::sigaction; 4],
    }

    /// Arms removal of `tmp`; `None` (nothing armed) when the path has a NUL byte, which
    /// no file can have anyway.
    pub(super) fn arm(tmp: &Path) -> Option<Armed> {
        let c = CString::new(tmp.as_os_str().as_bytes()).ok()?;
        let lock = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: sigaction is plain data; all-zero is a valid (empty) value.
        let mut prev: [libc::sigaction; 4] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = on_signal as *const () as usize;
        act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `act.sa_mask` is a live sigset_t; these calls only fill it.
        unsafe {
            libc::sigemptyset(&mut act.sa_mask);
            for s in SIGNALS {
                libc::sigaddset(&mut act.sa_mask, s);
            }
        }
        for (i, &s) in SIGNALS.iter().enumerate() {
            // SAFETY: a null new action only reads the current one into `prev[i]`.
            unsafe { libc::sigaction(s, std::ptr::null(), &mut prev[i]) };
            PREV_HANDLER[i].store(prev[i].sa_sigaction, Ordering::SeqCst);
            PREV_SIGINFO[i].store(prev[i].sa_flags & libc::SA_SIGINFO != 0, Ordering::SeqCst);
        }
        PATH.store(c.into_raw(), Ordering::SeqCst);
        for s in SIGNALS {
            // SAFETY: `act` is a valid action whose handler is async-signal-safe.
            unsafe { libc::sigaction(s, &act, std::ptr::null_mut()) };
        }
        Some(Armed { _lock: lock, prev })
    }

    impl Drop for Armed {
        fn drop(&mut self) {
            for (i, &s) in SIGNALS.iter().enumerate() {
                // SAFETY: `prev[i]` is the action sigaction gave us for this signal.
                unsafe { libc::sigaction(s, &self.prev[i], std::ptr::null_mut()) };
            }
            let p = PATH.swap(std::ptr::null_mut(), Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: `p` came from `CString::into_raw` in `arm`, and the swap made it
                // ours alone (a handler that took it would have left null).
                drop(unsafe { CString::from_raw(p) });
            }
        }
    }

    extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // Async-signal-safe only: atomics, unlink, sigaction, raise.
        let Some(i) = SIGNALS.iter().position(|&s| s == sig) else {
            return;
        };
        let prev = PREV_HANDLER[i].load(Ordering::SeqCst);
        if prev == libc::SIG_DFL {
            let p = PATH.swap(std::ptr::null_mut(), Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: `p` is a NUL-terminated path from `arm`, ours after the swap and
                // never freed (the process is ending).
                unsafe { libc::unlink(p) };
            }
            // SAFETY: all-zero with SIG_DFL is the default action; the signal is blocked
            // while this handler runs, so the raised one is delivered when it returns
            // and ends the process as the signal would have.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
                libc::raise(sig);
            }
        } else if prev == libc::SIG_IGN {
        } else if PREV_SIGINFO[i].load(Ordering::SeqCst) {
            // SAFETY: the replaced action had SA_SIGINFO, so `prev` is such a handler.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev) };
            f(sig, info, ctx);
        } else {
            // SAFETY: the replaced action was a plain handler.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
            f(sig);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Text

/// `s` made safe to print on a terminal, one line: control characters (C0, DEL, C1:
/// newlines, tabs, the escape that starts terminal sequences) and the characters that
/// reorder or break lines (bidirectional overrides and isolates, line and paragraph
/// separators) become `\n`, `\r`, `\t` or `\u{…}`; everything else is kept, backslashes
/// included. Borrowed when nothing needs escaping.
///
/// The text report escapes every name, kind, frame, pattern and note with it; JSON keeps
/// the exact strings.
///
/// ```
/// use leaktracker::report::escape_text;
/// assert_eq!(escape_text("conn-1"), "conn-1");
/// assert_eq!(escape_text("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
/// ```
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let _r = Reentrancy::enter();
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                use fmt::Write as _;
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
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
            write!(f, "{} leaked", totals_text(totals))?;
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

        let width = self
            .leaks
            .iter()
            .map(|e| escape_text(&e.name).chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        // Grouped by kind; a kind's place is that of its oldest resource.
        for (kind, entries) in by_kind(&self.leaks) {
            let mut t = Totals::default();
            for e in &entries {
                t.add(e);
            }
            writeln!(f)?;
            writeln!(f, "kind {}: {}", escape_text(kind), totals_text(t))?;
            for e in entries {
                let age = format!("age {}", Age(e.age));
                let blocks = plural(e.allocations, "block", "blocks");
                writeln!(
                    f,
                    "  {:<width$}  {age:<12}  {blocks:>10}  {:>10}",
                    escape_text(&e.name),
                    Bytes(e.bytes).to_string(),
                )?;
                if !e.verdict.is_empty() && e.origin != "object" {
                    writeln!(f, "      why: {}", escape_text(&e.verdict))?;
                }
                for g in &e.stacks {
                    writeln!(
                        f,
                        "      {}, {}, allocated at:",
                        plural(g.blocks, "block", "blocks"),
                        Bytes(g.bytes)
                    )?;
                    for frame in g.frames.iter().take(TEXT_FRAMES) {
                        writeln!(f, "          {}", escape_text(frame))?;
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
            writeln!(f, "totals: {}", totals_text(totals))?;
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
        if let Some(line) =
            allow_list_line(self.matches.iter().map(|m| (m.pattern.as_str(), m.matched)))
        {
            writeln!(f, "{line}")?;
        }
        if totals.is_saturated() || self.younger.is_saturated() || self.allowed.is_saturated() {
            writeln!(
                f,
                "warning: some totals stopped at their maximum ({}): the real sums are larger \
                 (the counts in this report cannot all be real)",
                usize::MAX
            )?;
        }
        if self.dropped_records > 0 {
            writeln!(
                f,
                "warning: {} records dropped (the record table was full): the blocks behind them are missing from these counts",
                self.dropped_records
            )?;
        }
        for note in &self.notes {
            writeln!(f, "note: {}", escape_text(note))?;
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
                escape_text(&g.reason),
                plural(g.blocks, "block", "blocks"),
                Bytes(g.bytes),
                plural(g.resources, "resource", "resources"),
            );
            if !g.examples.is_empty() {
                line.push_str(&format!(" ({})", escape_text(&g.examples.join(", "))));
            }
            if let Some(site) = &g.site {
                line.push_str(&format!(", at {}", escape_text(site)));
            }
            writeln!(f, "{line}")?;
            for e in &g.entries {
                writeln!(
                    f,
                    "      {} ({}): {}, {}",
                    escape_text(&e.name),
                    escape_text(&e.kind),
                    plural(e.blocks, "block", "blocks"),
                    Bytes(e.bytes)
                )?;
                for frame in &e.frames {
                    writeln!(f, "          {}", escape_text(frame))?;
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
// Reading JSON back

/// Why [`LeakReport::from_json`] could not read a report.
///
/// Its message is the JSON decoder's, with the line and column: the same text as when
/// `from_json` returned the decoder's error type. That error (a `serde_json::Error`) stays
/// reachable without being part of this crate's API: [`get_ref`](Self::get_ref) and
/// [`into_inner`](Self::into_inner) give it as a `dyn Error`, to downcast. (It is not also
/// the [`source`](std::error::Error::source): the message already says what it says.)
///
/// ```
/// use leaktracker::report::{ParseReportError, ReportErrorKind};
/// use leaktracker::LeakReport;
/// let e: ParseReportError = LeakReport::from_json("{\"version\": 1}").unwrap_err();
/// assert_eq!(e.kind(), ReportErrorKind::NotAReport);
/// assert_eq!((e.line(), e.column()), (1, 14));
/// assert!(e.to_string().starts_with("missing field `pid`"));
/// let e = LeakReport::from_json("{\"version\": ").unwrap_err();
/// assert_eq!(e.kind(), ReportErrorKind::Truncated);
/// let decoder = e.get_ref().downcast_ref::<serde_json::Error>().unwrap();
/// assert!(decoder.is_eof());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ParseReportError {
    kind: ReportErrorKind,
    inner: serde_json::Error,
}

/// What kind of text [`LeakReport::from_json`] was given instead of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportErrorKind {
    /// Not JSON.
    Syntax,
    /// JSON cut short (a truncated file).
    Truncated,
    /// JSON, but not a leaktracker report: a field is missing or has the wrong type.
    NotAReport,
}

impl ParseReportError {
    fn new(inner: serde_json::Error) -> ParseReportError {
        let kind = match inner.classify() {
            serde_json::error::Category::Eof => ReportErrorKind::Truncated,
            serde_json::error::Category::Data => ReportErrorKind::NotAReport,
            _ => ReportErrorKind::Syntax,
        };
        ParseReportError { kind, inner }
    }

    /// What was wrong with the text.
    pub fn kind(&self) -> ReportErrorKind {
        self.kind
    }

    /// The line (from 1) where reading stopped.
    pub fn line(&self) -> usize {
        self.inner.line()
    }

    /// The column (from 1) where reading stopped.
    pub fn column(&self) -> usize {
        self.inner.column()
    }

    /// The JSON decoder's error (downcast it to `serde_json::Error` for its own methods).
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &self.inner
    }

    /// The JSON decoder's error, owned.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(self.inner)
    }
}

impl fmt::Display for ParseReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for ParseReportError {}

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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    args: Vec<String>,
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
    s.parse().ok().map(|EnvDuration(d)| d)
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
    fn patterns() {
        let p: IgnorePattern = "kind:cache".parse().unwrap();
        assert!(p.matches("x", "cache"));
        assert!(!p.matches("cache", "db"));
        assert_eq!(p.to_string(), "kind:cache");
        assert!("cache".parse::<IgnorePattern>().is_err());
        assert!("Kind:cache".parse::<IgnorePattern>().is_err());
        let e = "oops".parse::<IgnorePattern>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`oops` is not an allow-list pattern (expected `kind:GLOB`, `name:GLOB` or `frame:GLOB`)"
        );
        let f: IgnorePattern = "frame:regex_automata::*".parse().unwrap();
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
