//! leaktracker with every allocation of the workload tagged: a scope is open on each
//! worker thread for its whole run. Run with `LEAKTRACKER_BACKTRACE=1` or `=sample:64`
//! for the backtrace rows; the line says `backtraces=...`, the setting in force, so
//! `scripts/bench.sh` can tell when the variable is not read yet.

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn on_thread(f: &mut dyn FnMut()) {
    let _scope = TRACKER.scope("bench-worker", "bench");
    f()
}

fn info() -> String {
    let s = leaktracker::stats();
    // The table never shrinks: non-zero bytes show that the run recorded blocks.
    format!(
        "records={} table_bytes={} dropped={} backtraces={:?}",
        s.records,
        s.table_bytes,
        s.dropped_records,
        leaktracker::backtraces()
    )
}

fn main() {
    leaktracker_bench::bench_main("lt-tagged", leaktracker_bench::Hooks { on_thread, info });
}
