//! Scale: the time of `LeakTracker::live()` with 1,000 resources holding 10,000, 100,000
//! and 1,000,000 tagged blocks. `live()` aggregates per resource, so its time must not
//! grow with the number of blocks.
//!
//! Usage: `scale-live [RESOURCES] [BLOCKS...]` (default 1000 and 10000 100000 1000000).

use std::alloc::{alloc, dealloc, Layout};
use std::time::Instant;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

const BLOCK: Layout = match Layout::from_size_align(16, 8) {
    Ok(l) => l,
    Err(_) => panic!("layout"),
};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let resources = args.first().copied().unwrap_or(1_000);
    let sizes = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![10_000, 100_000, 1_000_000]
    };
    for blocks in sizes {
        let per = blocks / resources;
        // Allocated before any scope opens: the holder itself is not tagged.
        let mut ptrs: Vec<*mut u8> = Vec::with_capacity(per * resources);
        let start = Instant::now();
        for r in 0..resources {
            let name = format!("resource-{r}");
            let _scope = TRACKER.scope(name, "scale");
            for _ in 0..per {
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { alloc(BLOCK) };
                assert!(!p.is_null());
                ptrs.push(p);
            }
        }
        let build_ns = start.elapsed().as_nanos();
        let mut times = Vec::new();
        let mut listed = (0, 0);
        for _ in 0..21 {
            let t = Instant::now();
            let live = TRACKER.live();
            times.push(t.elapsed().as_nanos());
            listed = (
                live.len(),
                live.iter().map(|l| l.allocations).sum::<usize>(),
            );
        }
        times.sort_unstable();
        assert_eq!(
            listed,
            (resources, per * resources),
            "live() lists every resource and block"
        );
        let st = leaktracker::stats();
        println!(
            "scale-live resources={resources} blocks={} live_us_median={:.1} live_us_min={:.1} \
             records={} table_bytes={} build_ns_per_block={:.1} maxrss_kb={}",
            per * resources,
            times[times.len() / 2] as f64 / 1e3,
            times[0] as f64 / 1e3,
            st.records,
            st.table_bytes,
            build_ns as f64 / (per * resources) as f64,
            leaktracker_bench::max_rss_kb(),
        );
        for p in ptrs {
            // SAFETY: allocated above with `BLOCK`, freed once.
            unsafe { dealloc(p, BLOCK) };
        }
        assert!(TRACKER.live().is_empty());
    }
}
