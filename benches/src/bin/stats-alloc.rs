//! Peer: `stats_alloc`, global counters of allocations and bytes.
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn info() -> String {
    let s = INSTRUMENTED_SYSTEM.stats();
    format!(
        "allocations={} deallocations={}",
        s.allocations, s.deallocations
    )
}

fn main() {
    leaktracker_bench::bench_main(
        "stats-alloc",
        leaktracker_bench::Hooks {
            on_thread: |f| f(),
            info,
        },
    );
}
