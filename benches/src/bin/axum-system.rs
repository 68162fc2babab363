//! The axum service benchmark (see `leaktracker_bench::service`) on the system allocator.
use std::alloc::System;

#[global_allocator]
static ALLOC: System = System;

fn main() {
    leaktracker_bench::service::service_main(
        "axum-system",
        leaktracker_bench::service::Tagging::None,
        String::new,
    );
}
