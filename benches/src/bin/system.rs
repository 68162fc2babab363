//! Baseline: the system allocator, nothing else.
use std::alloc::System;

#[global_allocator]
static ALLOC: System = System;

fn main() {
    leaktracker_bench::bench_main("system", leaktracker_bench::Hooks::PLAIN);
}
