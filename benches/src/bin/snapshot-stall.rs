//! The stall a live snapshot causes: 1,000 resources holding 100,000 (and 1,000,000)
//! tagged blocks; while the main thread makes a live report (`LeakReport::of_all()`
//! judged as live, written as JSON, the work of `LEAKTRACKER_SIGNAL`'s reporter thread),
//! two worker threads allocate and free, one tagged, one untagged, timing every
//! alloc+free. Printed: the snapshot's own time (capture, write) and each worker's
//! longest alloc+free during the snapshot beside its longest in an equally long quiet
//! window before it: the difference is the stall the snapshot causes.
//!
//! Usage: `snapshot-stall [BLOCKS...]` (default 100000 1000000); `LEAKTRACKER_BACKTRACE=1`
//! for stacks (reports then resolve them: the first snapshot pays the symbols).

use std::alloc::{alloc, dealloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leaktracker::{LeakReport, LeakTracker};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

const BLOCK: Layout = match Layout::from_size_align(16, 8) {
    Ok(l) => l,
    Err(_) => panic!("layout"),
};

struct Worker {
    max_ns: AtomicU64,
    ops: AtomicU64,
}

fn worker(w: Arc<Worker>, stop: Arc<AtomicBool>, tagged: bool) {
    let _scope = tagged.then(|| TRACKER.scope("worker", "bench-worker"));
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        // SAFETY: the layout has a non-zero size; the block is freed with it at once.
        unsafe {
            let p = alloc(BLOCK);
            std::hint::black_box(p);
            if !p.is_null() {
                dealloc(p, BLOCK);
            }
        }
        let ns = t.elapsed().as_nanos() as u64;
        w.max_ns.fetch_max(ns, Ordering::Relaxed);
        w.ops.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let sizes: Vec<usize> = {
        let a: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if a.is_empty() {
            vec![100_000, 1_000_000]
        } else {
            a
        }
    };
    let resources = 1_000;
    let dir = std::env::temp_dir().join(format!("snapshot-stall-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "backtraces: {:?}; 2 workers (tagged, untagged) alloc+free 16 B in a loop",
        leaktracker::backtraces()
    );
    for blocks in sizes {
        let per = blocks / resources;
        let mut ptrs: Vec<*mut u8> = Vec::with_capacity(per * resources);
        for r in 0..resources {
            let _scope = TRACKER.scope(format!("request-{r}"), "request");
            for _ in 0..per {
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { alloc(BLOCK) };
                assert!(!p.is_null());
                ptrs.push(p);
            }
        }
        println!("\n{blocks} live tagged blocks in {resources} resources");
        println!(
            "{:>8} {:>10} {:>10} {:>10}  {:>22}  {:>22}",
            "run", "capture", "write", "total", "tagged worker max", "untagged worker max"
        );
        for run in 0..5 {
            let stop = Arc::new(AtomicBool::new(false));
            let ws: Vec<Arc<Worker>> = (0..2)
                .map(|_| {
                    Arc::new(Worker {
                        max_ns: AtomicU64::new(0),
                        ops: AtomicU64::new(0),
                    })
                })
                .collect();
            let handles: Vec<_> = ws
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let (w, s) = (w.clone(), stop.clone());
                    std::thread::spawn(move || worker(w, s, i == 0))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(100));
            // The snapshot, timed; then a quiet window as long, for the baseline.
            for w in &ws {
                w.max_ns.store(0, Ordering::Relaxed);
            }
            let t = Instant::now();
            let report = LeakReport::of_all().at_exit(false);
            let captured = t.elapsed();
            report.write_to(dir.join("snap.json")).unwrap();
            let total = t.elapsed();
            let during: Vec<u64> = ws.iter().map(|w| w.max_ns.swap(0, Ordering::Relaxed)).collect();
            std::thread::sleep(total.max(Duration::from_millis(50)));
            let quiet: Vec<u64> = ws.iter().map(|w| w.max_ns.load(Ordering::Relaxed)).collect();
            stop.store(true, Ordering::Relaxed);
            for h in handles {
                h.join().unwrap();
            }
            let us = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
            let pair = |i: usize| {
                format!(
                    "{:.2} ms (quiet {:.2})",
                    during[i] as f64 / 1e6,
                    quiet[i] as f64 / 1e6
                )
            };
            println!(
                "{run:>8} {:>10} {:>10} {:>10}  {:>22}  {:>22}",
                us(captured),
                us(total - captured),
                us(total),
                pair(0),
                pair(1)
            );
            drop(report);
        }
        for p in ptrs {
            // SAFETY: allocated above with BLOCK.
            unsafe { dealloc(p, BLOCK) };
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
