//! `clear` racing tagged allocations with backtraces on: a block's stack is written with
//! its record, so the walk finds both or neither, and no stack entry outlives its record
//! (an orphan would lend its stack to the next block recorded at that address without
//! one). One thread allocates and leaks blocks under a scope while the main thread clears
//! the tracker in a loop; at the end, no record and no block stack is left.

use leaktracker::{stats, Backtraces, LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();
static STOP: AtomicBool = AtomicBool::new(false);

#[test]
fn no_block_stack_outlives_its_record() {
    TRACKER.set_backtraces(Some(Backtraces::All));
    let worker = std::thread::spawn(|| {
        let mut n = 0u64;
        while !STOP.load(SeqCst) && n < 2_000_000 {
            let _s = TRACKER.scope("worker", "job");
            for _ in 0..64 {
                let b = black_box(Box::new([n; 4]));
                if n.is_multiple_of(2) {
                    Box::leak(b);
                }
                n += 1;
            }
        }
        n
    });
    let start = Instant::now();
    let mut clears = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        TRACKER.clear();
        clears += 1;
    }
    STOP.store(true, SeqCst);
    let allocated = worker.join().unwrap();
    TRACKER.clear();
    let s = stats();
    assert!(allocated > 0 && clears > 0);
    assert_eq!(s.records, 0, "{allocated} blocks, {clears} clears");
    assert_eq!(
        s.blocks_with_stacks, 0,
        "block stacks left without records ({allocated} blocks, {clears} clears)"
    );
}
