//! Blocks a scope tagged on one thread and freed on another leave the table at once (no
//! flush, no wait for either thread to exit).

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::sync::Barrier;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    let half_freed = Barrier::new(2);
    let checked = Barrier::new(2);

    // 1 Vec (10 pointers, 80 bytes) + 10 boxes of 8 bytes, all in the scope.
    let blocks: Vec<Box<u64>> = {
        let _g = tracker.scope("batch", "job");
        let mut v = Vec::with_capacity(10);
        for i in 0..10u64 {
            v.push(black_box(Box::new(i)));
        }
        v
    };
    let live = tracker.live();
    assert_eq!((live[0].allocations, live[0].bytes), (11, 160));

    std::thread::scope(|s| {
        s.spawn(|| {
            let mut blocks = blocks;
            blocks.truncate(5); // frees 5 boxes on this thread
                                // Seen at once, from this thread ...
            let live = tracker.live();
            assert_eq!((live[0].allocations, live[0].bytes), (6, 120));
            half_freed.wait();
            checked.wait();
            drop(blocks);
            // ... and after the rest: nothing.
            assert!(tracker.live().is_empty());
        });
        half_freed.wait();
        // ... and from the thread that made them, while the other one is still running.
        let live = tracker.live();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].allocations, live[0].bytes), (6, 120));
        assert_eq!(stats().records, baseline + 6);
        checked.wait();
    });
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);

    // The same from a thread that outlives the check: a long-lived worker frees blocks
    // the main thread tagged, one by one.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Option<Box<[u8; 100]>>>(0);
    let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel::<()>(0);
    std::thread::scope(|s| {
        s.spawn(move || {
            while let Some(b) = rx.recv().unwrap() {
                drop(b);
                ack_tx.send(()).unwrap();
            }
        });
        let boxes: Vec<Box<[u8; 100]>> = {
            let mut v = Vec::with_capacity(20);
            let g = tracker.scope("sent", "job");
            for _ in 0..20 {
                v.push(black_box(Box::new([0u8; 100])));
            }
            drop(g);
            v
        };
        assert_eq!(tracker.live()[0].allocations, 20);
        for (i, b) in boxes.into_iter().enumerate() {
            tx.send(Some(b)).unwrap();
            ack_rx.recv().unwrap();
            let live = tracker.live();
            let left = 19 - i;
            assert_eq!(live.iter().map(|l| l.allocations).sum::<usize>(), left);
            assert_eq!(live.iter().map(|l| l.bytes).sum::<usize>(), left * 100);
        }
        tx.send(None).unwrap();
    });
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
