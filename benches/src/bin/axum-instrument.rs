//! The axum service benchmark, every request under `LeakTracker::instrument`, no stacks.

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn main() {
    leaktracker_bench::service::service_main(
        "axum-instrument",
        leaktracker_bench::service::Tagging::Instrument,
        leaktracker_bench::service::lt_info,
    );
}
