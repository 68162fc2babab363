//! A scope tags only the thread that opened it: other threads allocating at the same
//! time stay untagged, and a scope on another thread does not tag this one.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::sync::Barrier;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    let opened = Barrier::new(2);
    let allocated = Barrier::new(2);
    let checked = Barrier::new(2);

    std::thread::scope(|s| {
        // The other thread allocates while our scope is open.
        let worker = s.spawn(|| {
            let mut v: Vec<Box<u64>> = Vec::with_capacity(1000);
            opened.wait();
            for i in 0..1000 {
                v.push(black_box(Box::new(i)));
            }
            allocated.wait();
            checked.wait();
            v
        });

        let guard = tracker.scope("main-only", "test");
        opened.wait();
        let mine = black_box(Box::new([1u8; 24]));
        allocated.wait();
        drop(guard);

        let live = tracker.live();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].allocations, live[0].bytes), (1, 24));
        assert_eq!(stats().records, baseline + 1);
        checked.wait();

        let v = worker.join().unwrap();
        assert_eq!(v.len(), 1000);
        drop(v);
        assert_eq!(tracker.live()[0].allocations, 1);
        drop(mine);
    });
    assert!(tracker.live().is_empty());

    // The other way round: a scope on another thread does not tag this thread.
    let opened = Barrier::new(2);
    let done = Barrier::new(2);
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let g = tracker.scope("worker-only", "test");
            opened.wait();
            let b = black_box(Box::new([2u8; 48]));
            done.wait();
            drop(g);
            b
        });
        opened.wait();
        let here: Vec<Box<u32>> = (0..500).map(|i| black_box(Box::new(i))).collect();
        done.wait();
        let b = worker.join().unwrap();
        let live = tracker.live();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].name, "worker-only");
        assert_eq!((live[0].allocations, live[0].bytes), (1, 48));
        drop(here);
        assert_eq!(tracker.live()[0].allocations, 1);
        drop(b);
    });
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
