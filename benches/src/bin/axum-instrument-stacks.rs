//! The axum service benchmark, every request under `LeakTracker::instrument`, with a stack
//! captured for every tagged block as a report or gate captures them by default (a
//! `LEAKTRACKER_REPORT` or `LEAKTRACKER_EXIT_CODE` without `LEAKTRACKER_BACKTRACE`: every
//! block, the largest depth), set here in code so that no exit report is made.

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

/// The depth `ExitReport` sets for the verdict's stacks (the crate's largest).
const VERDICT_DEPTH: usize = 128;

fn main() {
    leaktracker::set_backtraces(leaktracker::Backtraces::All);
    leaktracker::set_backtrace_depth(VERDICT_DEPTH);
    leaktracker_bench::service::service_main(
        "axum-instrument-stacks",
        leaktracker_bench::service::Tagging::Instrument,
        leaktracker_bench::service::lt_info,
    );
}
