//! Peer: `dhat` heap profiling (a backtrace and a record for every block); its profile is
//! written to /tmp when the profiler drops.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn info() -> String {
    let s = dhat::HeapStats::get();
    format!("total_blocks={} max_bytes={}", s.total_blocks, s.max_bytes)
}

fn main() {
    let file = format!("/tmp/leaktracker-bench-dhat-{}.json", std::process::id());
    let profiler = dhat::Profiler::builder().file_name(&file).build();
    leaktracker_bench::bench_main(
        "dhat",
        leaktracker_bench::Hooks {
            on_thread: |f| f(),
            info,
        },
    );
    drop(profiler);
    let _ = std::fs::remove_file(&file);
}
