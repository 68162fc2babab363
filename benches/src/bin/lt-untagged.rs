//! leaktracker installed, nothing tagged: the cost every line of a program pays.

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn info() -> String {
    let s = leaktracker::stats();
    format!("records={} table_bytes={}", s.records, s.table_bytes)
}

fn main() {
    leaktracker_bench::bench_main(
        "lt-untagged",
        leaktracker_bench::Hooks {
            on_thread: |f| f(),
            info,
        },
    );
}
