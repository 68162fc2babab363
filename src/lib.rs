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
//! process-wide tracker; [`LeakTracker::instrument`] tags what a future allocates while it
//! is polled, on whatever thread polls it.
#![warn(missing_docs)]

mod alloc;
mod check;
mod clock;
mod exit;
pub mod folded;
mod fork;
mod guard;
mod lifetime;
mod os;
pub mod report;
mod resource;
mod stack;
mod sync;
mod table;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod tracker;
mod units;

pub use crate::alloc::TrackingAllocator;
pub use crate::check::LeakCheck;
pub use crate::exit::{protect_panic_hook, ExitReport};
pub use crate::report::{AllowPattern, LeakReport, PatternError, ReportEntry, StackGroup, Totals};
pub use crate::stack::{
    backtraces, set_backtrace_depth, set_backtraces, Backtraces,
    DEFAULT_DEPTH as DEFAULT_BACKTRACE_DEPTH,
};
#[cfg(feature = "tracing")]
pub use crate::tracing_layer::LeakLayer;
pub use crate::tracker::{
    is_installed, set_max_records, stats, track_resource, untrack_resource, Instrumented, LeakInfo,
    LeakTracker, ScopeGuard, Stats, TrackError, Trackable,
};
