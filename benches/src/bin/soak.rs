//! Soak (issue 6): minutes of mixed tagged and untagged load on two threads, with a
//! `live()` and `stats()` report every second, to show that the table's memory and the
//! resource slots stay bounded by what is live.
//!
//! Usage: `soak [--secs N] [--quick]` (default 120 s; `--quick`: 10 s).

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

include!("../soak_body.rs");
