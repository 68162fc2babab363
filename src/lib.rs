//! # leaktracker
//!
//! Which of *your* resources are still alive? `leaktracker` is a `#[global_allocator]`
//! wrapper that records the heap blocks your code **tags** — by a name and a kind, such as
//! `("connection-1", "database")` — with their creation time, and a [`LeakTracker`] to tag
//! blocks and list the ones still live. When a tagged block is freed, its entry disappears
//! by itself. Untagged allocations pay one thread-local read.
//!
//! ## Install the allocator
//!
//! ```
//! #[global_allocator]
//! static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
//! # fn main() {}
//! ```
//!
//! ## Tag one object, or everything a scope allocates
//!
//! ```
//! # #[global_allocator]
//! # static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
//! use leaktracker::LeakTracker;
//!
//! # fn main() {
//! let tracker = LeakTracker::new();
//!
//! let conn = vec![0u8; 4096];
//! tracker.track(&conn, "connection-1", "database").unwrap();
//!
//! let session = {
//!     let _scope = tracker.scope("session-7", "session");
//!     (String::from("user"), vec![1u64; 100])
//! };
//!
//! let live = tracker.live();
//! assert_eq!(live.len(), 2);
//! assert_eq!(live[0].name, "connection-1");
//! assert_eq!(live[1].allocations, 2); // the String and the Vec
//!
//! drop(conn);
//! drop(session);
//! assert!(tracker.live().is_empty()); // freed blocks leave by themselves
//! # }
//! ```
//!
//! [`LeakTracker::global`] with [`track_resource`] / [`untrack_resource`] is the
//! process-wide tracker. Your own types become trackable by delegating to the field that
//! owns their block (see [`Trackable`]).
//!
//! ## Async tasks
//!
//! [`LeakTracker::instrument`] tags what a future allocates while it is polled, on
//! whatever thread polls it, as one resource created when it is wrapped. No runtime is
//! assumed:
//!
//! ```
//! # #[global_allocator]
//! # static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
//! use std::future::Future;
//! use std::pin::pin;
//! use std::task::{Context, Poll, Waker};
//!
//! # fn main() {
//! static CACHE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
//! CACHE.lock().unwrap().reserve(8); // sized outside: growing it in the task would tag it
//! let tracker = leaktracker::LeakTracker::new();
//! let task = tracker.instrument(
//!     async {
//!         let body = vec![0u8; 1024];
//!         CACHE.lock().unwrap().push(body); // the leak: kept after the task ends
//!     },
//!     "request-4",
//!     "request",
//! );
//! let mut task = pin!(task);
//! assert!(task.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
//! let live = tracker.live();
//! assert_eq!(live[0].name, "request-4");
//! assert_eq!(live[0].bytes, 1024);
//! # CACHE.lock().unwrap().clear();
//! # }
//! ```
//!
//! With the `tracing` feature, `LeakLayer` makes a resource of every span.
//!
//! ## A leak assertion in a test
//!
//! [`LeakCheck`] tags what the test's thread allocates from `start` on, and
//! `assert_no_leaks` panics with the report of what is still live:
//!
//! ```
//! # #[global_allocator]
//! # static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
//! # fn main() {
//! let check = leaktracker::LeakCheck::start("builds_index");
//! let index: Vec<String> = (0..10).map(|i| format!("key-{i}")).collect();
//! assert_eq!(index.len(), 10);
//! drop(index);
//! check.assert_no_leaks();
//! # }
//! ```
//!
//! ## Reports, the exit report and the CI gate
//!
//! A [`LeakReport`] is a snapshot at any time, as text (grouped by kind), JSON, or folded
//! stacks, filtered by age and an allow-list:
//!
//! ```
//! # #[global_allocator]
//! # static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
//! use std::time::Duration;
//! # fn main() {
//! let tracker = leaktracker::LeakTracker::new();
//! let pool = vec![0u8; 512];
//! tracker.track(&pool, "pool-1", "pool").unwrap();
//! let report = leaktracker::LeakReport::of(&tracker)
//!     .ignore("kind:cache".parse().unwrap())
//!     .min_age(Duration::ZERO);
//! assert_eq!(report.totals().bytes, 512);
//! assert!(report.to_string().contains("pool-1"));
//! assert!(report.to_json().contains("\"name\": \"pool-1\""));
//! # }
//! ```
//!
//! At exit, the `LEAKTRACKER_*` variables (or [`ExitReport`] in code) write a report and
//! set a non-zero exit status when it lists leaks — the CI gate:
//!
//! ```sh
//! LEAKTRACKER_REPORT=stderr LEAKTRACKER_EXIT_CODE=3 LEAKTRACKER_MIN_AGE=100ms ./my-service
//! leaktracker gate --ignore kind:cache -- cargo test     # the `cli` feature's tool
//! ```
//!
//! ## Backtraces
//!
//! `LEAKTRACKER_BACKTRACE=1` (or [`set_backtraces`], or [`LeakTracker::set_backtraces`]
//! for one tracker) records where each tagged block was allocated: raw addresses on the
//! allocation path, resolved to `function at file:line` only when a report is made, and
//! grouped per resource by stack. `sample:N` captures about one block in N, large ones
//! first. `leaktracker flamegraph report.json > leaks.svg` draws them. A stack walk with
//! the system unwinder costs a few µs; in a build with `-C force-frame-pointers=yes`,
//! [`set_unwinder`]`(`[`Unwinder::FramePointers`]`)` (or `LEAKTRACKER_UNWIND=frame-pointers`)
//! walks the frame-pointer chain instead, about 40 times faster.
//!
//! ## What it costs
//!
//! An untagged `alloc` reads one thread-local word and tail-calls the inner allocator; an
//! untagged `dealloc` reads a lock-free filter (a directory entry and one counter; a null
//! pointer while nothing is tagged). A tagged block costs a 16-byte record in a sharded
//! table (memory from `mmap`, never from the allocator). The README has the benchmark
//! table against `System` and the other tracking allocators.
#![warn(missing_docs)]

mod alloc;
mod allow;
mod check;
mod cleared;
mod clock;
mod entry;
mod exit;
pub mod folded;
mod fork;
mod guard;
#[cfg(test)]
mod header_counts;
mod lifetime;
mod live;
#[cfg(feature = "metrics")]
pub mod metrics;
mod open_table;
mod os;
mod records;
pub mod report;
mod resource;
mod scope;
mod settings;
mod stack;
mod sync;
mod table;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod tracker;
pub mod trend;
mod units;
pub mod verdict;

/// The `check-invariants` feature: checks the record table (every record and stack word
/// in its shard, once; a stack only beside a record; the load factors; the dealloc
/// filter's counts) and every resource's counts against its records, and describes the
/// first invariant broken. Exact only while no other thread allocates, frees or tags:
/// call it where the program is quiet (a test's checkpoint). It allocates, untagged.
#[cfg(feature = "check-invariants")]
#[doc(hidden)]
pub fn check_invariants() -> Result<(), String> {
    let r = crate::guard::Reentrancy::enter();
    records::check_invariants(&r)
}

pub use crate::alloc::TrackingAllocator;
pub use crate::check::LeakCheck;
pub use crate::exit::{protect_panic_hook, ExitReport};
// The report's and the verdict's types are documented once, in their modules; the crate
// root names them too, for short paths.
#[allow(deprecated)]
#[doc(no_inline)]
pub use crate::report::AllowPattern;
#[doc(no_inline)]
pub use crate::report::{
    IgnorePattern, LeakReport, ParseReportError, PatternError, ReportEntry, StackGroup, Totals,
};
pub use crate::stack::{
    backtraces, set_backtrace_depth, set_unwinder, unwinder, Backtraces, Unwinder,
    DEFAULT_DEPTH as DEFAULT_BACKTRACE_DEPTH,
};
#[cfg(feature = "tracing")]
pub use crate::tracing_layer::LeakLayer;
pub use crate::tracker::{
    is_installed, set_backtraces, set_max_records, stats, track_resource, untrack_resource,
    Instrumented, LeakInfo, LeakTracker, ScopeGuard, Stats, TrackError, Trackable,
};
#[doc(no_inline)]
pub use crate::verdict::{NotLeakGroup, Verdict};

/// What the `leaktracker` command-line tool shows the way the text report does (counted
/// nouns, totals with their sizes, grouping by kind, the allow-list line). Not part of the
/// API: it may change in any release.
#[doc(hidden)]
pub mod __cli {
    pub use crate::report::text::{allow_list_line, by_kind, plural, totals_text};
}
