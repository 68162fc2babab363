//! The axum service benchmark with leaktracker installed and no request tagged.

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn main() {
    leaktracker_bench::service::service_main(
        "axum-untagged",
        leaktracker_bench::service::Tagging::None,
        leaktracker_bench::service::lt_info,
    );
}
