//! Walkthrough 9: `clear` on 10 tracked objects gives 0 live while the objects live on,
//! can still be used and are freed normally.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    let mut objs: Vec<Vec<u16>> = (0..10).map(|i| black_box(vec![i as u16; 50])).collect();
    for (i, o) in objs.iter().enumerate() {
        tracker.track(o, format!("obj-{i}"), "item").unwrap();
    }
    assert_eq!(tracker.live().len(), 10);
    assert_eq!(stats().records, baseline + 10);

    tracker.clear();
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
    assert!(tracker
        .live_older_than(std::time::Duration::ZERO)
        .is_empty());

    // The objects are untouched and still work: read, write, grow.
    for (i, o) in objs.iter_mut().enumerate() {
        assert_eq!(o.len(), 50);
        assert!(o.iter().all(|&x| x == i as u16));
        o.push(7);
        o.extend(std::iter::repeat_n(8, 500));
    }
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);

    // Untrack after clear: nothing to remove.
    assert!(!tracker.untrack(&objs[0]));

    // The tracker is still usable after `clear`.
    tracker.track(&objs[3], "again", "item").unwrap();
    let live = tracker.live();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].name.as_str(), live[0].bytes),
        ("again", objs[3].capacity() * 2)
    );

    drop(objs);
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
