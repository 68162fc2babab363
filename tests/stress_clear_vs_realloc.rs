//! `clear` racing a realloc of one of the tracker's blocks on another thread: after
//! `clear` returns, the block must stay untagged (a realloc keeps a block's lack of a tag).
//!
//! A worker thread, in a scope of the tracker, allocates a block and reallocates it over
//! and over; the main thread calls `clear` and, once the worker has reallocated the same
//! block twice more, checks that the tracker lists nothing. A block that comes back means
//! `clear` missed a record taken out of the table for the realloc in flight.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::alloc::{alloc, dealloc, realloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

fn worker(tracker: &LeakTracker) {
    let _g = tracker.scope("worker", "realloc");
    while !STOP.load(SeqCst) {
        // A new block (tagged by the open scope) each generation: the generation is odd
        // while the block is being allocated, even once it is.
        GENERATION.fetch_add(1, SeqCst);
        let mut size = 16;
        // SAFETY: non-zero size.
        let mut p = unsafe { alloc(Layout::from_size_align(size, 8).unwrap()) };
        assert!(!p.is_null());
        GENERATION.fetch_add(1, SeqCst);
        for k in 0..200 {
            let new_size = if k % 2 == 0 { 200_000 } else { 16 };
            // SAFETY: `p` is live with `size`; `new_size` is non-zero.
            p = unsafe { realloc(p, Layout::from_size_align(size, 8).unwrap(), new_size) };
            assert!(!p.is_null());
            size = new_size;
            REALLOCS.fetch_add(1, SeqCst);
        }
        // SAFETY: `p` is live with `size`.
        unsafe { dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
    }
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    let mut resurrected = 0;
    let mut checks = 0;
    std::thread::scope(|s| {
        s.spawn(|| worker(&tracker));
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && resurrected == 0 {
            let g0 = GENERATION.load(SeqCst);
            if g0 % 2 == 1 {
                continue; // a block is being allocated right now
            }
            tracker.clear();
            let r0 = REALLOCS.load(SeqCst);
            while REALLOCS.load(SeqCst) < r0 + 2 {
                std::hint::spin_loop();
            }
            let live = tracker.live();
            if GENERATION.load(SeqCst) == g0 {
                checks += 1;
                if !live.is_empty() {
                    resurrected += 1;
                    eprintln!("after clear, still listed: {live:?}");
                }
            }
        }
        STOP.store(true, SeqCst);
    });
    assert!(checks > 0);
    assert_eq!(
        resurrected, 0,
        "a block came back after clear ({checks} checks)"
    );
    tracker.clear();
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
