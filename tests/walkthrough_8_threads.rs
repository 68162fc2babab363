//! Walkthrough 8: 5 threads tracking 20 objects each give exactly 100 live, then 0.

use leaktracker::{LeakTracker, TrackingAllocator};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Barrier;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let all_tracked = Barrier::new(6);
    let checked = Barrier::new(6);

    std::thread::scope(|s| {
        for t in 0..5usize {
            let (tracker, all_tracked, checked) = (&tracker, &all_tracked, &checked);
            s.spawn(move || {
                let objs: Vec<Vec<u8>> =
                    (0..20).map(|i| black_box(vec![t as u8; 10 + i])).collect();
                for (i, o) in objs.iter().enumerate() {
                    tracker
                        .track(o, format!("t{t}-obj{i}"), format!("thread-{t}"))
                        .unwrap();
                }
                all_tracked.wait();
                checked.wait();
                drop(objs); // freed by the thread that made them
            });
        }
        all_tracked.wait();

        let live = tracker.live();
        assert_eq!(live.len(), 100);
        let names: HashSet<&str> = live.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names.len(), 100);
        for t in 0..5 {
            let mine: Vec<_> = live
                .iter()
                .filter(|i| i.kind == format!("thread-{t}"))
                .collect();
            assert_eq!(mine.len(), 20);
            // Within one thread, tracking order is kept.
            for (i, info) in mine.iter().enumerate() {
                assert_eq!(info.name, format!("t{t}-obj{i}"));
                assert_eq!((info.allocations, info.bytes), (1, 10 + i));
            }
        }
        assert_eq!(
            live.iter().map(|i| i.bytes).sum::<usize>(),
            5 * (20 * 10 + 190)
        );
        checked.wait();
    });

    assert!(tracker.live().is_empty());
}
