//! What is a leak, and what is one-time or amortised retention.
//!
//! A report starts from every live tagged block. Real programs keep process-lifetime
//! state that was allocated lazily during their first unit of work — `OnceLock`,
//! `LazyLock`, `thread_local!` first use, a static `Regex` and its per-thread caches,
//! runtime and channel buffers, span storage, a shared collection's capacity — and inside a
//! scope, task or span all of it is tagged. The rule this module applies:
//!
//! **a leak is memory retained per unit of work** (per request, task, session, test), or a
//! tracked object that is still alive. One-time and amortised retention is not.
//!
//! The blocks of each resource are judged by allocation site (their stack, when stacks are
//! captured), in this order:
//!
//! 1. A tracked object ([`LeakTracker::track`](crate::LeakTracker::track)) still alive is a
//!    leak: the user named it, nothing is second-guessed.
//! 2. A site matching a user `frame:GLOB` allow-list pattern is not listed.
//! 3. A site inside a one-time initialiser (any frame: std's `Once`, `OnceLock`,
//!    `LazyLock`, thread-local first use, `once_cell`, `lazy_static`, tracing callsite
//!    registration, regex's per-thread cache pool, the Prometheus exporter's metric
//!    descriptions), or allocated by a library for its own
//!    long-lived buffers (the allocating frame: tokio's channel blocks, deferred wakers,
//!    blocking pool and drivers; tracing-subscriber's span storage; crossbeam's epoch
//!    garbage and deque buffers) is one-time or amortised ([`DEFAULT_RULES`]).
//! 4. A unit still open: at exit it never finished — a leak ("task leak"); in a report of a
//!    live process it is in progress, not a leak.
//! 5. Growth across units of one kind: a site retained by a single unit of many where a
//!    collection grew (a shared `Vec`'s or map's capacity, grown by whichever unit needed
//!    it) or only by the first units
//!    of a kind and then never again (warm-up) is not a leak; a site retained by units
//!    throughout the run is a per-unit leak. A kind with fewer than [`MIN_UNITS`] units
//!    gives no such evidence: what it retains is a leak. Units are ordered by when they
//!    ended; and a site where a few units keep only a stack's initial fill (the first
//!    blocks made there, as many made after them and freed: see `initial_fills`) is
//!    warm-up however late those units ended. In a report of a live process, a site held
//!    only by the most recent units (every older unit released its blocks there) is a
//!    buffer passed on from unit to unit — a keep-alive connection's header map — not
//!    growth.
//!
//! Nothing is hidden silently: every block judged not a leak is counted in a summary group
//! (reason, site, resources, blocks, bytes) shown by the text and JSON reports, in full
//! with `LEAKTRACKER_VERDICT=show-all`; `LEAKTRACKER_VERDICT=strict` reports every live
//! tagged block as a leak.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub(crate) use crate::allow::frame_matches;
use crate::allow::{frame_matches_named, frame_name, IgnorePattern};
use crate::entry::{ReportEntry, StackGroup};
use crate::resource::Origin;
use crate::stack::StackId;

/// Fewer units of a kind than this give no evidence of warm-up: what they retain is a leak.
pub const MIN_UNITS: u64 = 8;

/// Frames (innermost first) that name an allocation site when units are compared.
const SITE_FRAMES: usize = 6;

/// How a report judges what is a leak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// One-time and amortised retention is not a leak (see the module docs).
    #[default]
    Default,
    /// Every live tagged block is a leak.
    Strict,
}

impl FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Verdict, String> {
        match s {
            "default" => Ok(Verdict::Default),
            "strict" => Ok(Verdict::Strict),
            _ => Err(format!(
                "`{}` is not a verdict (expected `default`, `strict` or `show-all`)",
                s.escape_debug()
            )),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Default => "default",
            Verdict::Strict => "strict",
        })
    }
}

/// Where a rule looks for its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Any frame of the stack: everything allocated inside that function (and what it
    /// calls) is judged by the rule — for initialisers, which run once whatever they call.
    Anywhere,
    /// The allocating frame: the innermost frame once the standard library's and generic
    /// collections' frames are skipped — for libraries allocating their own buffers.
    Allocator,
}

/// One default rule: frame patterns (function names, or source files for builds whose
/// debug info names inlined functions without their path) and why blocks allocated there
/// are not leaks.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    patterns: &'static [&'static str],
    reach: Reach,
    /// `one-time` or `amortised`.
    class: &'static str,
    why: &'static str,
}

impl Rule {
    /// The frame patterns (`*` matches any run of characters), matched against
    /// `function at file:line`.
    pub fn patterns(&self) -> &'static [&'static str] {
        self.patterns
    }

    /// Why blocks allocated there are not leaks.
    pub fn reason(&self) -> &'static str {
        self.why
    }

    fn matches_named(&self, frame: &str, name: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| frame_matches_named(p, frame, name))
    }
}

const fn anywhere(patterns: &'static [&'static str], why: &'static str) -> Rule {
    Rule {
        patterns,
        reach: Reach::Anywhere,
        class: "one-time",
        why,
    }
}

const fn allocator(patterns: &'static [&'static str], why: &'static str) -> Rule {
    Rule {
        patterns,
        reach: Reach::Allocator,
        class: "amortised",
        why,
    }
}

const fn inside(patterns: &'static [&'static str], why: &'static str) -> Rule {
    Rule {
        patterns,
        reach: Reach::Anywhere,
        class: "amortised",
        why,
    }
}

const STD_ONCE: &str =
    "one-time initialisation (std Once: OnceLock, LazyLock, lazy_static, call_once)";

/// The default rules, shipped for std, tokio, tracing, tracing-subscriber, regex,
/// crossbeam, once_cell and lazy_static. Frames are matched as `function at file:line`.
pub const DEFAULT_RULES: &[Rule] = &[
    anywhere(
        &[
            "std::sys::sync::once::*",
            "std::sync::once::Once::call_once*",
            "std::sync::poison::once::Once::call_once*",
            "std::sync::once_lock::OnceLock<*>::initialize*",
            "std::sync::lazy_lock::LazyLock<*>::force*",
            "* at */library/std/src/sys/sync/once/*",
            "* at */library/std/src/sync/once.rs:*",
            "* at */library/std/src/sync/poison/once.rs:*",
            "* at */library/std/src/sync/once_lock.rs:*",
            "* at */library/std/src/sync/lazy_lock.rs:*",
        ],
        STD_ONCE,
    ),
    anywhere(
        &[
            "std::sys::thread_local::*",
            "* at */library/std/src/sys/thread_local/*",
        ],
        "thread-local first use (kept until the thread exits)",
    ),
    anywhere(
        &[
            "core::cell::once::OnceCell<*>::try_init*",
            "core::cell::lazy::LazyCell<*>::really_init*",
            "* at */library/core/src/cell/once.rs:*",
            "* at */library/core/src/cell/lazy.rs:*",
        ],
        "one-time initialisation (OnceCell, LazyCell)",
    ),
    anywhere(
        &["once_cell::*", "* at */once_cell-*/src/*"],
        "one-time initialisation (once_cell)",
    ),
    anywhere(
        &["lazy_static::*", "* at */lazy_static-*/src/*"],
        "one-time initialisation (lazy_static)",
    ),
    anywhere(
        &[
            "std::thread::current::*",
            "* at */library/std/src/thread/current.rs:*",
        ],
        "the thread's handle, made once per thread",
    ),
    anywhere(
        &[
            "tracing_core::callsite::*",
            "* at */tracing-core-*/src/callsite.rs:*",
        ],
        "tracing callsite registration (once per callsite)",
    ),
    anywhere(
        &[
            // The descriptions are committed on the first render, from whichever request
            // scrapes first; without debug info the commit is inlined into the render.
            "metrics_exporter_prometheus::recorder::Inner::commit_outstanding_description_writes*",
            "metrics_exporter_prometheus::recorder::Inner::render_to_write*",
        ],
        "a metrics recorder's metric descriptions (once per metric name, on the first render)",
    ),
    anywhere(
        &[
            "regex_automata::util::pool::*",
            "* at */regex-automata-*/src/util/pool.rs:*",
        ],
        "regex's pool of per-thread match caches",
    ),
    inside(
        &[
            "regex_automata::hybrid::*",
            "* at */regex-automata-*/src/hybrid/*",
        ],
        "regex's lazy DFA cache (grows to a bound, reused by later searches)",
    ),
    allocator(
        &["tokio::sync::mpsc::*", "* at */tokio-*/src/sync/mpsc/*"],
        "tokio mpsc channel blocks (kept and reused by the channel)",
    ),
    allocator(
        &[
            "tokio::runtime::scheduler::*",
            "* at */tokio-*/src/runtime/scheduler/*",
        ],
        "tokio scheduler buffers (deferred wakers, run queues)",
    ),
    allocator(
        &[
            "tokio::runtime::blocking::*",
            "* at */tokio-*/src/runtime/blocking/*",
        ],
        "tokio's blocking thread pool (threads kept for reuse)",
    ),
    allocator(
        &["tokio::runtime::io::*", "* at */tokio-*/src/runtime/io/*"],
        "tokio's I/O driver (registrations kept for reuse)",
    ),
    allocator(
        &[
            "tokio::runtime::time::*",
            "* at */tokio-*/src/runtime/time/*",
        ],
        "tokio's timer wheel",
    ),
    allocator(
        &["sharded_slab::*", "* at */sharded-slab-*/src/*"],
        "tracing-subscriber's span storage (pages reused for later spans)",
    ),
    allocator(
        &[
            "tracing_subscriber::registry::*",
            "* at */tracing-subscriber-*/src/registry/*",
        ],
        "tracing-subscriber's span registry and extension maps (reused for later spans)",
    ),
    allocator(
        &[
            "tracing_subscriber::fmt::*",
            "* at */tracing-subscriber-*/src/fmt/*",
        ],
        "tracing-subscriber fmt layer's per-thread buffers",
    ),
    allocator(
        &["crossbeam_epoch::*", "* at */crossbeam-epoch-*/src/*"],
        "crossbeam-epoch garbage awaiting reclamation",
    ),
    allocator(
        &["crossbeam_deque::*", "* at */crossbeam-deque-*/src/*"],
        "crossbeam-deque buffers (kept by the deque)",
    ),
    allocator(
        &["crossbeam_channel::*", "* at */crossbeam-channel-*/src/*"],
        "crossbeam-channel blocks (kept by the channel)",
    ),
    allocator(
        &["std::io::stdio::*", "* at */library/std/src/io/stdio.rs:*"],
        "standard stream buffers",
    ),
];

/// Frames skipped when looking for the allocating frame: the standard library's and
/// generic collections' machinery (`Vec::push`, `HashMap::insert`, `format!`, …).
const CONTAINER_PREFIXES: &[&str] = &[
    // The allocator's own frames, where a build keeps some of them in a stack (a
    // release-built leaktracker without debug info: see the backtrace notes).
    "leaktracker::alloc::",
    "<leaktracker::alloc::",
    "alloc::",
    "<alloc::",
    "core::",
    "<core::",
    "std::collections::",
    "<std::collections::",
    "std::alloc::",
    "std::io::impls::",
    "<std::io::",
    "hashbrown::",
    "<hashbrown::",
    "smallvec::",
    "<smallvec::",
    "indexmap::",
    "<indexmap::",
    "bytes::",
    "<bytes::",
    "slab::",
    "<slab::",
];
const CONTAINER_FILES: &[&str] = &[
    "/library/alloc/src/",
    "/library/core/src/",
    "/library/std/src/collections/",
    "/hashbrown-",
    "/smallvec-",
    "/indexmap-",
    "/bytes-",
    "/slab-",
];

fn is_container(frame: &str) -> bool {
    let name = frame_name(frame);
    CONTAINER_PREFIXES.iter().any(|p| name.starts_with(p))
        || CONTAINER_FILES.iter().any(|d| frame.contains(d))
        || (name.starts_with('<')
            && (name.contains(" as alloc::") || name.contains(" as core::fmt::")))
}

/// Whether the block was allocated by a collection growing (its container frames, above
/// the allocating one, include a `grow`, `reserve` or `resize`): a shared `Vec`'s or map's
/// capacity, grown by whichever unit needed it — not an object a unit made.
fn grows_a_collection(frames: &[String]) -> bool {
    frames.iter().take_while(|f| is_container(f)).any(|f| {
        let name = frame_name(f);
        name.contains("grow") || name.contains("reserve") || name.contains("resize")
    })
}

/// The allocating frame: the innermost one that is not container machinery.
pub(crate) fn allocating_frame(frames: &[String]) -> Option<&str> {
    frames
        .iter()
        .map(String::as_str)
        .find(|f| !is_container(f))
        .or_else(|| frames.first().map(String::as_str))
}

/// The first default rule that explains a block group allocated at `frames`.
#[cfg(test)]
pub(crate) fn default_rule(frames: &[String]) -> Option<&'static Rule> {
    RuleCache::default().rule_of(frames)
}

/// The default rules matched frame by frame, each distinct frame once: the stacks of a
/// report share most of their frames (an executor's, a runtime's), and matching is dozens
/// of globs per frame.
#[derive(Default)]
pub(crate) struct RuleCache<'f> {
    /// The index of the first `Anywhere` rule the frame matches (`DEFAULT_RULES.len()`:
    /// none), and of the first `Allocator` rule.
    by_frame: HashMap<&'f str, (usize, usize)>,
}

impl<'f> RuleCache<'f> {
    fn first_rules(&mut self, frame: &'f str) -> (usize, usize) {
        *self.by_frame.entry(frame).or_insert_with(|| {
            let name = frame_name(frame);
            let first = |reach: Reach| {
                DEFAULT_RULES
                    .iter()
                    .position(|r| r.reach == reach && r.matches_named(frame, name))
                    .unwrap_or(DEFAULT_RULES.len())
            };
            (first(Reach::Anywhere), first(Reach::Allocator))
        })
    }

    /// The first rule (in `DEFAULT_RULES` order) that an `Anywhere` rule's frame or the
    /// allocating frame for an `Allocator` rule satisfies.
    pub(crate) fn rule_of(&mut self, frames: &'f [String]) -> Option<&'static Rule> {
        if frames.is_empty() {
            return None;
        }
        let mut best = frames
            .iter()
            .map(|f| self.first_rules(f).0)
            .min()
            .unwrap_or(DEFAULT_RULES.len());
        if let Some(f) = allocating_frame(frames) {
            best = best.min(self.first_rules(f).1);
        }
        DEFAULT_RULES.get(best)
    }
}

// ---------------------------------------------------------------------------------------
// Input: resources as captured

/// One resource as captured, before it is judged.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) created_at: SystemTime,
    pub(crate) age: Duration,
    pub(crate) origin: Origin,
    pub(crate) open: bool,
    /// Its place among the ended units of its kind (1 = the first to end): retention is
    /// settled when a unit ends, so "the first units" are the first to end, whatever
    /// order they were created in (200 tasks spawned at once end in any order).
    pub(crate) ordinal: u64,
    /// Units of its kind ended so far.
    pub(crate) kind_units: u64,
    /// Its blocks by allocation stack (one group with no frames when there are no stacks).
    pub(crate) groups: Vec<StackGroup>,
    /// For each group, what the stack table knows beyond the frames' text.
    pub(crate) sites: Vec<SiteFacts>,
}

/// What the stack table knows of one group's allocation site beyond its frames' text.
#[derive(Clone, Debug, Default)]
pub(crate) struct SiteFacts {
    /// The return address of each frame (empty when unknown).
    pub(crate) frame_ips: Vec<usize>,
    /// Whether a collection grew to make the block, in the allocation machinery that
    /// resolution drops from the frames (`Vec::push`, `reserve`, a map's resize).
    pub(crate) grew: bool,
    /// The latest place of the group's blocks among the blocks captured at their stack
    /// (1 = the first; 0 without a stack).
    pub(crate) last_seq: u32,
    /// How many blocks were captured at that stack so far.
    pub(crate) captured: u32,
    /// The group's stack in the stack table.
    pub(crate) stack: Option<StackId>,
}

impl Candidate {
    /// The allocation site of group `gi`: its frames up to a few past the allocating frame
    /// (the container machinery above it — a hash table's resize, `Vec::push` — is the
    /// same for every map and vector, so the frames after it tell sites apart). A frame without a source location (a build
    /// without line tables) is told apart by its return address: two call sites in one
    /// function are two sites.
    fn site(&self, gi: usize) -> String {
        let frames = &self.groups[gi].frames;
        let ips = self
            .sites
            .get(gi)
            .map(|s| s.frame_ips.as_slice())
            .unwrap_or(&[]);
        // The container frames stay in the key too: the same call site always has the
        // same ones, and without debug info user code inlined into a `core::` shim is only
        // told apart by its return address there.
        let start = frames.iter().position(|f| !is_container(f)).unwrap_or(0);
        // An instrumented task's frames end at its wrapper's poll: the callers are the
        // executor's, and which of its paths polled the task (tokio's LIFO slot or its
        // queue: two call sites, two return addresses) says nothing of where in the task
        // the block was allocated.
        let end = frames
            .iter()
            .position(|f| is_task_boundary(f))
            .map_or(usize::MAX, |i| i + 1);
        let mut key = String::new();
        for (i, f) in frames
            .iter()
            .enumerate()
            .take((start + SITE_FRAMES).min(end))
        {
            key.push_str(f);
            if !f.contains(" at ") {
                if let Some(ip) = ips.get(i) {
                    key.push_str(&format!(" @{ip:#x}"));
                }
            }
            key.push('\n');
        }
        key
    }
}

/// The poll of leaktracker's task wrapper (`LeakTracker::instrument`), by its name in any
/// build (debug info or symbol table).
fn is_task_boundary(frame: &str) -> bool {
    let name = frame.split(" at ").next().unwrap_or(frame);
    name.starts_with("<leaktracker::tracker::Instrumented<") && name.contains(">::poll")
}

// ---------------------------------------------------------------------------------------
// Output: what was judged not a leak

/// Blocks judged not a leak, for one reason at one site, summed over resources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NotLeakGroup {
    /// `one-time`, `amortised`, `warm-up`, `single-unit`, `recycled` (live reports only),
    /// `in-progress` (live reports only) or `allow-list`.
    pub class: String,
    /// Why, in words.
    pub reason: String,
    /// The allocation site (the allocating frame), when stacks were captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Resources with blocks in this group.
    pub resources: usize,
    /// Blocks.
    pub blocks: usize,
    /// Their requested sizes, added up.
    pub bytes: usize,
    /// A few of the resources' names.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Every block group of this verdict (with `LEAKTRACKER_VERDICT=show-all`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<NotLeakEntry>,
}

/// One resource's blocks inside a [`NotLeakGroup`] (listed in full with `show-all`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NotLeakEntry {
    /// The resource's name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Blocks.
    pub blocks: usize,
    /// Bytes.
    pub bytes: usize,
    /// The allocation stack, innermost first (empty without stacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<String>,
}

/// Fewer blocks than this captured at a stack say nothing of which came first.
const FILL_MIN_CAPTURES: u32 = 16;

/// The stacks whose live blocks are their initial fill: every block still live there is
/// among the first made at the stack (the live ones are at least half of the blocks made
/// there up to the last live one), and at least as many were made there after the last
/// live one, all freed since. The first arrivals filled something shared, then the work
/// went on without keeping more. A leak in every unit, or in every tenth, of units that
/// ran at once is not: its kept blocks are spread among the freed ones. Counted over every
/// candidate's live groups.
fn initial_fills(candidates: &[Candidate]) -> std::collections::HashSet<StackId> {
    // Stack -> (live blocks, latest place of one, blocks captured there).
    let mut by: HashMap<StackId, (u64, u32, u32)> = HashMap::new();
    for c in candidates {
        for (g, s) in c.groups.iter().zip(&c.sites) {
            let Some(id) = s.stack else { continue };
            let e = by.entry(id).or_default();
            e.0 += g.blocks as u64;
            e.1 = e.1.max(s.last_seq);
            e.2 = e.2.max(s.captured);
        }
    }
    by.into_iter()
        .filter(|&(_, (live, last, made))| {
            made >= FILL_MIN_CAPTURES
                && last > 0
                && u64::from(last) * 2 <= u64::from(made)
                && u64::from(last) <= live.saturating_mul(2)
        })
        .map(|(id, _)| id)
        .collect()
}

/// The units of one kind that retain blocks at one site.
struct Retaining {
    /// Their ordinals (places among the ended units of the kind), in candidate order.
    ordinals: Vec<u64>,
    /// Whether every block group they retain there is at a stack's initial fill (see
    /// [`initial_fills`]).
    early: bool,
    /// The distinct stacks of those groups.
    stacks: std::collections::HashSet<StackId>,
}

/// The result of judging a set of candidates.
pub(crate) struct Judged {
    /// The leaks, one entry per resource with at least one leaked block group.
    pub(crate) leaks: Vec<ReportEntry>,
    pub(crate) not_leaks: Vec<NotLeakGroup>,
    /// For each user frame pattern (in the order given), the resources it matched.
    pub(crate) frame_matches: Vec<usize>,
}

/// Why one block group is not a leak.
struct Why {
    class: &'static str,
    reason: String,
    /// Groups with the same key are summed into one summary line.
    key: String,
    site: Option<String>,
}

impl Why {
    /// A group a user `frame:` pattern matched (`site`: the group's allocating frame).
    fn allow_listed(p: &IgnorePattern, site: Option<String>) -> Why {
        Why {
            class: "allow-list",
            reason: format!("matched by the allow-list pattern {p}"),
            key: format!("allow-list\0{p}"),
            site,
        }
    }
}

/// The not-leak summary groups being added up: one per [`Why::key`], each resource
/// counted once per group, every block group listed with `show_all`.
struct NotLeakSums {
    groups: Vec<NotLeakGroup>,
    /// The last resource counted in each group.
    last_seen: Vec<usize>,
    index: HashMap<String, usize>,
    show_all: bool,
}

impl NotLeakSums {
    /// Starts from `groups` (a report's own, kept as they are; no key reaches them).
    fn new(groups: Vec<NotLeakGroup>, show_all: bool) -> NotLeakSums {
        NotLeakSums {
            last_seen: vec![usize::MAX; groups.len()],
            groups,
            index: HashMap::new(),
            show_all,
        }
    }

    /// Adds block group `g` of resource number `res` (`name`, `kind`), judged not a leak.
    fn add(&mut self, why: Why, res: usize, name: &str, kind: &str, g: &StackGroup) {
        let groups = &mut self.groups;
        let last_seen = &mut self.last_seen;
        let i = *self.index.entry(why.key).or_insert_with(|| {
            groups.push(NotLeakGroup {
                class: why.class.to_string(),
                reason: why.reason,
                site: why.site,
                ..NotLeakGroup::default()
            });
            last_seen.push(usize::MAX);
            groups.len() - 1
        });
        let ng = &mut groups[i];
        if last_seen[i] != res {
            last_seen[i] = res;
            ng.resources += 1;
            if ng.examples.len() < 3 {
                ng.examples.push(name.to_string());
            }
        }
        ng.blocks = ng.blocks.saturating_add(g.blocks);
        ng.bytes = ng.bytes.saturating_add(g.bytes);
        if self.show_all {
            ng.entries.push(NotLeakEntry {
                name: name.to_string(),
                kind: kind.to_string(),
                blocks: g.blocks,
                bytes: g.bytes,
                frames: g.frames.clone(),
            });
        }
    }

    /// The groups, largest first.
    fn finish(mut self) -> Vec<NotLeakGroup> {
        self.groups
            .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.blocks.cmp(&a.blocks)));
        self.groups
    }
}

/// Judges `candidates`. `frame_patterns` are the user's `frame:GLOB` allow-list entries;
/// `at_exit` makes open units leaks (they never finished) rather than work in progress.
pub(crate) fn judge(
    candidates: &[Candidate],
    verdict: Verdict,
    at_exit: bool,
    frame_patterns: &[&IgnorePattern],
    show_all: bool,
) -> Judged {
    let mut frame_matches = vec![0usize; frame_patterns.len()];
    // Units of each (kind, site) that retain blocks there.
    let mut retaining: HashMap<(&str, String), Retaining> = HashMap::new();
    // Per kind: the ended units of the later half that still hold any block — about how
    // many buffers are being handed on at once (one per keep-alive connection).
    let mut late_holders: HashMap<&str, u64> = HashMap::new();
    if verdict == Verdict::Default {
        let fills = initial_fills(candidates);
        for c in candidates.iter().filter(|c| c.origin.is_unit() && !c.open) {
            if c.ordinal.saturating_mul(2) > c.kind_units {
                *late_holders.entry(&c.kind).or_default() += 1;
            }
            for (gi, _) in c.groups.iter().enumerate() {
                let stack = c.sites.get(gi).and_then(|s| s.stack);
                let r = retaining.entry((&c.kind, c.site(gi))).or_insert(Retaining {
                    ordinals: Vec::new(),
                    early: true,
                    stacks: Default::default(),
                });
                r.early &= stack.is_some_and(|id| fills.contains(&id));
                r.stacks.extend(stack);
                if r.ordinals.last() != Some(&c.ordinal) {
                    r.ordinals.push(c.ordinal);
                }
            }
        }
    }
    let mut leaks = Vec::new();
    let mut sums = NotLeakSums::new(Vec::new(), show_all);
    // Each distinct frame matched against the default rules once: many resources (one
    // per request) share a few hundred stacks, and those stacks most of their frames.
    let mut rule_cache = RuleCache::default();
    for (ci, c) in candidates.iter().enumerate() {
        let mut kept = Vec::new();
        let mut verdicts: Vec<String> = Vec::new();
        let mut matched_patterns = vec![false; frame_patterns.len()];
        for (gi, g) in c.groups.iter().enumerate() {
            let why = judge_group(
                c,
                gi,
                verdict,
                at_exit,
                frame_patterns,
                &mut matched_patterns,
                &mut rule_cache,
                &retaining,
                late_holders.get(c.kind.as_str()).copied().unwrap_or(0),
                c.site(gi),
            );
            match why {
                Ok(leak_reason) => {
                    if !verdicts.contains(&leak_reason) {
                        verdicts.push(leak_reason);
                    }
                    kept.push(g.clone());
                }
                Err(why) => sums.add(why, ci, &c.name, &c.kind, g),
            }
        }
        for (n, m) in frame_matches.iter_mut().zip(&matched_patterns) {
            *n += usize::from(*m);
        }
        if kept.is_empty() {
            continue;
        }
        let (blocks, bytes) = kept.iter().fold((0usize, 0usize), |(a, b), g| {
            (a.saturating_add(g.blocks), b.saturating_add(g.bytes))
        });
        kept.retain(|g| !g.frames.is_empty());
        leaks.push(ReportEntry {
            name: c.name.clone(),
            kind: c.kind.clone(),
            created_at: c.created_at,
            age: c.age,
            allocations: blocks,
            bytes,
            stacks: kept,
            origin: origin_unit(c.origin).to_string(),
            verdict: verdicts.join("; "),
        });
    }
    Judged {
        leaks,
        not_leaks: sums.finish(),
        frame_matches,
    }
}

/// Applies the user's `frame:GLOB` patterns to the entries of a report read back from
/// JSON, which were judged when the report was made: a stack group with a frame a pattern
/// matches leaves its entry for an `allow-list` group, as in [`judge`]; an entry left with
/// no block is not listed. Blocks without a stack stay with their entry (no frame can
/// match them). `not_leaks` are the file's groups, kept first.
pub(crate) fn filter_read_back(
    entries: &[ReportEntry],
    not_leaks: &[NotLeakGroup],
    frame_patterns: &[&IgnorePattern],
    show_all: bool,
) -> Judged {
    let mut frame_matches = vec![0usize; frame_patterns.len()];
    if frame_patterns.is_empty() {
        return Judged {
            leaks: entries.to_vec(),
            not_leaks: not_leaks.to_vec(),
            frame_matches,
        };
    }
    let mut sums = NotLeakSums::new(not_leaks.to_vec(), show_all);
    let mut leaks = Vec::with_capacity(entries.len());
    for (ei, e) in entries.iter().enumerate() {
        let mut kept = Vec::with_capacity(e.stacks.len());
        let (mut blocks, mut bytes) = (e.allocations, e.bytes);
        let mut matched = vec![false; frame_patterns.len()];
        for g in &e.stacks {
            let Some(pi) = frame_patterns
                .iter()
                .position(|p| g.frames.iter().any(|f| p.matches_frame(f)))
            else {
                kept.push(g.clone());
                continue;
            };
            matched[pi] = true;
            blocks = blocks.saturating_sub(g.blocks);
            bytes = bytes.saturating_sub(g.bytes);
            let site = allocating_frame(&g.frames).map(str::to_string);
            sums.add(
                Why::allow_listed(frame_patterns[pi], site),
                ei,
                &e.name,
                &e.kind,
                g,
            );
        }
        for (n, m) in frame_matches.iter_mut().zip(&matched) {
            *n += usize::from(*m);
        }
        if blocks == 0 && kept.is_empty() {
            continue;
        }
        let ignored = e.stacks.len() - kept.len();
        let mut e = e.clone();
        if ignored > 0 {
            // The entry's verdict was written for all its groups, and a group's own reason
            // is not in the file: say which part of the entry it no longer describes.
            let by: Vec<String> = frame_patterns
                .iter()
                .zip(&matched)
                .filter(|(_, m)| **m)
                .map(|(p, _)| p.to_string())
                .collect();
            e.verdict = format!(
                "{} ({ignored} of its {} stack groups since ignored by {}; this verdict was \
                 given before)",
                e.verdict,
                e.stacks.len(),
                by.join(", ")
            );
        }
        e.allocations = blocks;
        e.bytes = bytes;
        e.stacks = kept;
        leaks.push(e);
    }
    Judged {
        leaks,
        not_leaks: sums.finish(),
        frame_matches,
    }
}

fn origin_unit(o: Origin) -> &'static str {
    match o {
        Origin::Object => "object",
        Origin::Scope => "scope",
        Origin::Task => "task",
        Origin::Span => "span",
    }
}

/// `Ok(why it is a leak)` or `Err(why it is not)`.
#[allow(clippy::too_many_arguments)]
fn judge_group<'c>(
    c: &'c Candidate,
    gi: usize,
    verdict: Verdict,
    at_exit: bool,
    frame_patterns: &[&IgnorePattern],
    matched_patterns: &mut [bool],
    rule_cache: &mut RuleCache<'c>,
    retaining: &HashMap<(&str, String), Retaining>,
    late_holders: u64,
    key: String,
) -> Result<String, Why> {
    let g = &c.groups[gi];
    let site = allocating_frame(&g.frames).map(str::to_string);
    for (p, m) in frame_patterns.iter().zip(matched_patterns.iter_mut()) {
        if g.frames.iter().any(|f| p.matches_frame(f)) {
            *m = true;
            return Err(Why::allow_listed(p, site));
        }
    }
    if verdict == Verdict::Strict {
        return Ok("live tagged blocks (strict verdict)".to_string());
    }
    if !c.origin.is_unit() {
        return Ok("tracked object still alive".to_string());
    }
    if let Some(rule) = rule_cache.rule_of(&g.frames) {
        return Err(Why {
            class: rule.class,
            reason: rule.why.to_string(),
            key: format!("rule\0{}", rule.why),
            site,
        });
    }
    let unit = origin_unit(c.origin);
    if c.open {
        if at_exit {
            return Ok(match c.origin {
                Origin::Task => "task never finished (still pending at exit)".to_string(),
                Origin::Span => "span never closed".to_string(),
                _ => "scope still open at exit".to_string(),
            });
        }
        return Err(Why {
            class: "in-progress",
            reason: format!("{unit}s still open (in progress)"),
            key: format!("open\0{unit}"),
            site: None,
        });
    }
    let n = c.kind_units;
    if n < MIN_UNITS {
        return Ok(format!(
            "retained after its {unit} ended ({n} {unit}{} of kind {}: too few to tell warm-up from a leak)",
            if n == 1 { "" } else { "s" },
            c.kind
        ));
    }
    let held = retaining.get(&(c.kind.as_str(), key.clone()));
    let ordinals = held.map_or(&[][..], |r| r.ordinals.as_slice());
    let m = ordinals.len() as u64;
    let last = ordinals.iter().copied().max().unwrap_or(c.ordinal);
    let site_key = format!("{}\0{}", c.kind, key);
    let grew = c.sites.get(gi).is_some_and(|s| s.grew) || grows_a_collection(&g.frames);
    if m <= 1 && grew {
        return Err(Why {
            class: "single-unit",
            reason: format!(
                "retained by 1 of {n} {} units where a collection grew (a shared Vec's or map's \
                 capacity, grown by whichever unit needed it)",
                c.kind
            ),
            key: format!("single\0{site_key}"),
            site,
        });
    }
    if m <= 1 {
        return Ok(format!(
            "retained after its {unit} ended (the only one of {n} {} units to keep a block \
             allocated here)",
            c.kind
        ));
    }
    if last.saturating_mul(2) <= n {
        return Err(Why {
            class: "warm-up",
            reason: format!(
                "warm-up: retained only by {m} of the first {last} {} units, by none of the {} after",
                c.kind,
                n - last
            ),
            key: format!("warm\0{site_key}"),
            site,
        });
    }
    // The units that keep blocks here ended late, but what they keep was allocated early:
    // among the first half of the blocks made at this stack, every later one freed (the
    // first units of each class filled a shared map, then waited on something slow). Only
    // where units share stacks (a stack of each unit's own orders that unit's blocks, not
    // the run's), and only for a few of the kind's units (what most units keep is theirs).
    if m.saturating_mul(2) <= n
        && held.is_some_and(|r| r.early && r.stacks.len() < r.ordinals.len())
    {
        return Err(Why {
            class: "warm-up",
            reason: format!(
                "warm-up: retained by {m} of {n} {} units, the first blocks allocated here \
                 (as many were allocated here after them, all freed)",
                c.kind
            ),
            key: format!("warm-early\0{site_key}"),
            site,
        });
    }
    // The most recent units: the last 2m, the last sixteenth of the run (connections go
    // idle at different times), or twice as many as the units of the later half that hold
    // anything at all (as many buffers as connections are handed on at once, each at the
    // site of its connection's last request), whichever is more.
    let recent = m
        .saturating_mul(2)
        .max(n / 16)
        .max(late_holders.saturating_mul(2))
        .min(n / 2);
    // Holders among the most recent units; at most one in four may be older (a
    // connection gone idle early keeps its last buffer as long as the busy ones do).
    let inside = ordinals
        .iter()
        .filter(|&&o| o > n.saturating_sub(recent))
        .count() as u64;
    if !at_exit && m.saturating_mul(4) <= n && inside.saturating_mul(4) >= m.saturating_mul(3) {
        // In a live process: the most recent units hold blocks here, the older ones (all
        // but a few) released their own. A buffer handed from unit to unit (a keep-alive
        // connection's header map, kept for its next request) — not growth. If it grows
        // after all, a later snapshot shows it (and the exit report judges without this).
        return Err(Why {
            class: "recycled",
            reason: if inside == m {
                format!(
                    "held only by the {m} most recent of {n} {} units, every older one released \
                     its blocks here (a buffer passed on from unit to unit)",
                    c.kind
                )
            } else {
                format!(
                    "held by {inside} of the {recent} most recent of {n} {} units and {} older \
                     one{}, every other one released its blocks here (a buffer passed on from \
                     unit to unit; an idle connection keeps its last one)",
                    c.kind,
                    m - inside,
                    if m - inside == 1 { "" } else { "s" }
                )
            },
            key: format!("recycled\0{site_key}"),
            site,
        });
    }
    Ok(format!(
        "retained after its {unit} ended, at a site {m} of {n} {} units retain",
        c.kind
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The rules matched stack by stack, in order, as `RuleCache` must agree with.
    fn rule_by_stack(frames: &[String]) -> Option<&'static Rule> {
        let alloc = allocating_frame(frames);
        DEFAULT_RULES.iter().find(|r| match r.reach {
            Reach::Anywhere => frames.iter().any(|f| r.matches_named(f, frame_name(f))),
            Reach::Allocator => alloc.is_some_and(|f| r.matches_named(f, frame_name(f))),
        })
    }

    #[test]
    fn rules_reach() {
        // (stack, the rule expected: `Some(why)`, `Some("")` for any, `None` for none)
        let cases: &[(&[&str], Option<&str>)] = &[
            // An initialiser anywhere on the stack explains the block.
            (
                &[
                    "{closure#0} at src/main.rs:22",
                    "<std::sys::sync::once::futex::Once>::call at futex.rs:178",
                    "main at src/main.rs:22",
                ],
                Some(STD_ONCE),
            ),
            (
                &[
                    "regex_automata::nfa::thompson::compiler::Compiler::c at src/x.rs:1",
                    "regex::regex::string::Regex::new at src/y.rs:2",
                    "std::sync::once_lock::OnceLock<T>::initialize::{{closure}} at once_lock.rs:3",
                    "std::sys::sync::once::futex::Once::call at futex.rs:4",
                    "cli::main at src/main.rs:9",
                ],
                Some(STD_ONCE),
            ),
            // A library's own buffer: only when it is the allocating frame.
            (
                &[
                    "alloc::alloc::exchange_malloc",
                    "tokio::sync::mpsc::list::Tx<T>::find_block at list.rs:5",
                    "service::handler::{{closure}} at src/main.rs:3",
                ],
                Some(""),
            ),
            // User code run by tokio's scheduler is not tokio's buffer.
            (
                &[
                    "<alloc::vec::Vec<T> as core::clone::Clone>::clone",
                    "service::handler::{{closure}} at src/main.rs:3",
                    "tokio::runtime::scheduler::multi_thread::worker::Context::run_task",
                ],
                None,
            ),
            (&[], None),
        ];
        // One cache for every case, as the verdict shares one across a report's stacks.
        let stacks: Vec<Vec<String>> = cases.iter().map(|(f, _)| frames(f)).collect();
        let mut cache = RuleCache::default();
        for (stack, (_, want)) in stacks.iter().zip(cases) {
            let got = cache.rule_of(stack);
            match want {
                None => assert!(got.is_none(), "{stack:?}: {:?}", got.map(|r| r.why)),
                Some("") => assert!(got.is_some(), "{stack:?}"),
                Some(why) => assert_eq!(got.map(|r| r.why), Some(*why), "{stack:?}"),
            }
            assert_eq!(
                got.map(|r| r.why),
                rule_by_stack(stack).map(|r| r.why),
                "{stack:?}"
            );
            assert_eq!(default_rule(stack).map(|r| r.why), got.map(|r| r.why));
        }
        // Every pair of the cases' frames, as a stack: the first rule in order wins,
        // whichever frame matched it first.
        let all: Vec<String> = stacks.concat();
        let pairs: Vec<Vec<String>> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| vec![a.clone(), b.clone()]))
            .collect();
        let mut cache = RuleCache::default();
        for stack in &pairs {
            assert_eq!(
                cache.rule_of(stack).map(|r| r.why),
                rule_by_stack(stack).map(|r| r.why),
                "{stack:?}"
            );
        }
    }

    fn unit(name: &str, ordinal: u64, units: u64, frames: &[&str]) -> Candidate {
        Candidate {
            name: name.to_string(),
            kind: "request".to_string(),
            created_at: SystemTime::UNIX_EPOCH,
            age: Duration::from_secs(1),
            origin: Origin::Task,
            open: false,
            ordinal,
            kind_units: units,
            groups: vec![StackGroup::new(1, 100, super::tests::frames(frames))],
            sites: vec![SiteFacts::default()],
        }
    }

    fn leaked(cands: &[Candidate], at_exit: bool) -> Vec<String> {
        judge(cands, Verdict::Default, at_exit, &[], false)
            .leaks
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    const BODY: &[&str] = &[
        "svc::handler at src/main.rs:10",
        "svc::serve at src/main.rs:40",
    ];
    const CACHE: &[&str] = &[
        "hashbrown::raw::RawTableInner::resize at map.rs:1",
        "svc::handler at src/main.rs:12",
        "svc::serve at src/main.rs:40",
    ];

    #[test]
    fn growth_across_units() {
        // Every 10th of 100 requests keeps its body: a per-unit leak, all ten listed.
        let leak: Vec<Candidate> = (1..=10)
            .map(|k| unit(&format!("request-{}", k * 10), k * 10, 100, BODY))
            .collect();
        assert_eq!(leaked(&leak, true).len(), 10);
        // The same site retained only by the first 30 of 100: warm-up.
        let warm: Vec<Candidate> = (1..=10)
            .map(|k| unit(&format!("request-{}", k * 3), k * 3, 100, BODY))
            .collect();
        assert!(leaked(&warm, true).is_empty());
        // A shared map's table, grown last by request 77: one unit of many.
        let single = [unit("request-77", 77, 100, CACHE)];
        assert!(leaked(&single, true).is_empty());
        // One object kept by one unit of many (not a collection growing): listed.
        let once = [unit("request-7", 7, 100, BODY)];
        assert_eq!(leaked(&once, true), ["request-7"]);
        // Container frames do not make two sites one: the cache growth beside the leak
        // stays amortised while the bodies are listed.
        let mut both = leak.clone();
        both.push(unit("request-50", 50, 100, CACHE));
        let j = judge(&both, Verdict::Default, true, &[], false);
        assert_eq!(j.leaks.len(), 10);
        let r50 = j.leaks.iter().find(|e| e.name == "request-50").unwrap();
        assert_eq!(r50.allocations, 1);
        assert_eq!(j.not_leaks.len(), 1);
        assert_eq!(j.not_leaks[0].class, "single-unit");
        // Two maps' growth (deep container frames, then different callers) are two
        // sites, each retained by one unit: neither is listed.
        let deep = |line: u32| -> Vec<String> {
            let mut f: Vec<String> = (0..7)
                .map(|i| format!("hashbrown::raw::RawTableInner::resize{i} at raw.rs:{i}"))
                .collect();
            f.push(format!("svc::handler at src/main.rs:{line}"));
            f
        };
        let mut a = unit("request-20", 20, 100, &[]);
        a.groups[0].frames = deep(117);
        let mut b = unit("request-90", 90, 100, &[]);
        b.groups[0].frames = deep(120);
        assert!(leaked(&[a, b], true).is_empty());
        // Without line tables, two call sites in one function are told apart by their
        // return addresses: a stats key kept by early units is not the leak's site.
        let at = |name: &str, ordinal: u64, ip: usize| {
            let mut c = unit(name, ordinal, 100, &["svc::job::{{closure}}", "svc::run"]);
            c.sites = vec![SiteFacts {
                stack: None,
                last_seq: 0,
                captured: 0,
                frame_ips: vec![ip, 0x9000],
                grew: false,
            }];
            c
        };
        let mut mixed: Vec<Candidate> = (1..=10)
            .map(|k| at(&format!("r{}", k * 10), k * 10, 0x1111))
            .collect();
        mixed.extend((1..=4).map(|k| at(&format!("key{k}"), k, 0x2222)));
        let j = judge(&mixed, Verdict::Default, true, &[], false);
        assert_eq!(
            j.leaks.len(),
            10,
            "{:?}",
            j.leaks.iter().map(|e| &e.name).collect::<Vec<_>>()
        );
        assert!(j.leaks.iter().all(|e| e.name.starts_with('r')));
        // Held only by the latest units: recycled in a live report, listed at exit.
        let tail: Vec<Candidate> = (91..=100)
            .map(|k| unit(&format!("request-{k}"), k, 100, BODY))
            .collect();
        assert!(judge(&tail, Verdict::Default, false, &[], false)
            .leaks
            .is_empty());
        assert_eq!(leaked(&tail, true).len(), 10);
        // …but not a per-unit leak spread over the run, live or not.
        let j = judge(&leak, Verdict::Default, false, &[], false);
        assert_eq!(j.leaks.len(), 10);
        // 32 keep-alive connections each hold their last response, at the site of its
        // route: one route's 6 holders are spread over the last 24 of 300 units, beyond
        // the last 2m and n/16; the 32 holders of the later half widen the window.
        let route = |k: u64, f: &[&str]| unit(&format!("request-{k}"), k, 300, f);
        let mut conns: Vec<Candidate> = (277..=300).step_by(4).map(|k| route(k, BODY)).collect();
        conns.extend(
            (269..=300)
                .filter(|k| k % 4 != 1)
                .take(25)
                .map(|k| route(k, CACHE)),
        );
        let j = judge(&conns, Verdict::Default, false, &[], false);
        assert!(
            j.leaks.is_empty(),
            "{:?}",
            j.leaks
                .iter()
                .map(|e| (&e.name, &e.verdict))
                .collect::<Vec<_>>()
        );
        assert!(j.not_leaks.iter().any(|g| g.class == "recycled"));
        // A connection that went idle early keeps its last response as long: one holder
        // of seven far from the others.
        let mut idle = conns.clone();
        idle.push(route(30, BODY));
        let j = judge(&idle, Verdict::Default, false, &[], false);
        assert!(
            j.leaks.is_empty(),
            "{:?}",
            j.leaks
                .iter()
                .map(|e| (&e.name, &e.verdict))
                .collect::<Vec<_>>()
        );
        assert_eq!(leaked(&conns[..6], true).len(), 6, "listed at exit");
        // The window stays within the later half, and a leak of every 50th unit
        // beside those holders is still listed in a live report.
        let mut planted = conns.clone();
        let leak_frames: &[&str] = &[
            "svc::replay at src/main.rs:77",
            "svc::serve at src/main.rs:40",
        ];
        planted.extend((1..=6).map(|k| route(k * 50, leak_frames)));
        let live = judge(&planted, Verdict::Default, false, &[], false);
        let names: Vec<&str> = live.leaks.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "request-50",
                "request-100",
                "request-150",
                "request-200",
                "request-250",
                "request-300"
            ]
        );
        // Too few units to tell: listed.
        let few = [unit("request-1", 1, 3, BODY)];
        assert_eq!(leaked(&few, true), ["request-1"]);
        // Strict lists everything.
        let s = judge(&single, Verdict::Strict, true, &[], false);
        assert_eq!(s.leaks.len(), 1);
    }

    #[test]
    fn a_task_site_ends_at_its_wrapper() {
        // The same allocation in two tasks polled by different paths of the executor:
        // one site (the executor's return addresses are not part of it).
        let poll = "<leaktracker::tracker::Instrumented<F> as core::future::future::Future>::poll";
        let via = |name: &str, ordinal: u64, run_ip: usize| {
            let mut c = unit(
                name,
                ordinal,
                200,
                &[
                    poll,
                    "tokio::runtime::task::core::Core<T,S>::poll",
                    "tokio::runtime::scheduler::multi_thread::worker::Context::run",
                ],
            );
            c.sites = vec![SiteFacts {
                stack: None,
                last_seq: 0,
                captured: 0,
                frame_ips: vec![0x1000, 0x2000, run_ip],
                grew: false,
            }];
            c
        };
        let a = via("task-1", 1, 0x3000);
        let b = via("task-2", 2, 0x3333);
        assert_eq!(a.site(0), b.site(0));
        // Eight keys of a global map kept by the first eight units of 200: warm-up, whichever
        // path polled them.
        let keys: Vec<Candidate> = (1..=8)
            .map(|k| {
                via(
                    &format!("task-{k}"),
                    k,
                    if k == 3 { 0x3333 } else { 0x3000 },
                )
            })
            .collect();
        assert!(leaked(&keys, true).is_empty(), "{:?}", leaked(&keys, true));
        // Inside the task, two call sites stay two sites.
        let mut other = via("task-9", 9, 0x3000);
        other.sites[0].frame_ips[0] = 0x1111;
        assert_ne!(a.site(0), other.site(0));
    }

    #[test]
    fn initial_fill_of_late_units_is_warm_up() {
        // A unit whose one block is at place `seq` of the `made` blocks captured at stack
        // `stack`; ordinals 193-200 of 200: it ended last.
        let at = |k: u64, stack: u32, seq: u32, made: u32| {
            let mut c = unit(&format!("job-{k}"), 192 + k, 200, BODY);
            c.sites[0].stack = Some(StackId::for_test(stack));
            c.sites[0].last_seq = seq;
            c.sites[0].captured = made;
            c
        };
        // Eight keys of a shared map, made by the first unit of each class to get there,
        // at the executor's two polling paths (each counts its own: places 1-5 of 100 on
        // each, one duplicate in between, freed); their units then waited and ended last.
        let seqs = [1, 1, 3, 2, 4, 4, 5, 5];
        let keys: Vec<Candidate> = (1..=8u64)
            .map(|k| at(k, (k % 2) as u32, seqs[k as usize - 1], 100))
            .collect();
        assert!(leaked(&keys, true).is_empty(), "{:?}", leaked(&keys, true));
        let why = judge(&keys, Verdict::Default, true, &[], false).not_leaks;
        assert_eq!(why.len(), 1);
        assert_eq!(why[0].class, "warm-up");
        assert_eq!(why[0].blocks, 8);
        // The strict verdict lists them whatever their allocation order.
        assert_eq!(
            judge(&keys, Verdict::Strict, true, &[], false).leaks.len(),
            8
        );

        // Without the evidence, the end order judges, as before: leaks.
        // Kept blocks spread among freed ones (every tenth of 120 units that ran at once
        // keeps the first of its three reads): not an initial fill.
        let spread: Vec<Candidate> = (1..=8u64).map(|k| at(k, 0, 10 * k as u32, 360)).collect();
        assert_eq!(leaked(&spread, true).len(), 8);
        // Too few blocks made at the stack.
        let few: Vec<Candidate> = (1..=8u64).map(|k| at(k, 0, k as u32, 15)).collect();
        assert_eq!(leaked(&few, true).len(), 8);
        // Fewer made after the last kept one than before it.
        let late: Vec<Candidate> = (1..=8u64).map(|k| at(k, 0, 4 + k as u32, 20)).collect();
        assert_eq!(leaked(&late, true).len(), 8);
        // Each unit at a stack of its own: its blocks' order says nothing of the run's.
        let own: Vec<Candidate> = (1..=8u64).map(|k| at(k, 100 + k as u32, 1, 200)).collect();
        assert_eq!(leaked(&own, true).len(), 8);
        // One group at the site off its stack's fill is enough to judge the site as before.
        let mut mixed = keys.clone();
        mixed[3].sites[0].stack = Some(StackId::for_test(7));
        mixed[3].sites[0].last_seq = 150;
        assert_eq!(leaked(&mixed, true).len(), 8);
        // Most of the kind's units keep a block there: theirs, whatever the order (16
        // workers started together, each keeping the first of its three reads).
        let most: Vec<Candidate> = (1..=16u64)
            .map(|k| {
                let mut c = at(k, 0, k as u32, 48);
                c.ordinal = k;
                c.kind_units = 16;
                c
            })
            .collect();
        assert_eq!(leaked(&most, true).len(), 16);
    }

    #[test]
    fn open_units_and_objects() {
        let mut open = unit("request-1", 1, 100, BODY);
        open.open = true;
        // At exit an open unit never finished; in a live report it is in progress.
        assert_eq!(leaked(std::slice::from_ref(&open), true), ["request-1"]);
        let live = judge(
            std::slice::from_ref(&open),
            Verdict::Default,
            false,
            &[],
            false,
        );
        assert!(live.leaks.is_empty());
        assert_eq!(live.not_leaks[0].class, "in-progress");
        // A tracked object is a leak whatever its frames.
        let mut obj = unit(
            "conn-1",
            1,
            100,
            &["std::sys::sync::once::futex::Once::call"],
        );
        obj.origin = Origin::Object;
        assert_eq!(leaked(&[obj], false), ["conn-1"]);
        // A user frame pattern takes a site out, and is counted.
        let p: IgnorePattern = "frame:svc::handler*".parse().unwrap();
        let j = judge(
            &[unit("request-1", 1, 3, BODY)],
            Verdict::Default,
            true,
            &[&p],
            false,
        );
        assert!(j.leaks.is_empty());
        assert_eq!(j.frame_matches, [1]);
        assert_eq!(j.not_leaks[0].class, "allow-list");
    }

    #[test]
    fn verdict_names() {
        assert_eq!("strict".parse::<Verdict>(), Ok(Verdict::Strict));
        assert!("lenient".parse::<Verdict>().is_err());
        assert_eq!(Verdict::Default.to_string(), "default");
    }
}
