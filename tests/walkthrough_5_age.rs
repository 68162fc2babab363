//! Walkthrough 5: after a 1 s sleep every tracked object is older than 1 s, and one
//! tracked after the sleep is not.

use leaktracker::{LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::time::{Duration, SystemTime};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let old: Vec<Box<[u8; 32]>> = (0..3).map(|_| black_box(Box::new([0u8; 32]))).collect();
    for (i, b) in old.iter().enumerate() {
        tracker.track(b, format!("old-{i}"), "request").unwrap();
    }
    let before_sleep = SystemTime::now();
    assert!(tracker.live_older_than(Duration::from_secs(1)).is_empty());

    std::thread::sleep(Duration::from_secs(1));

    let fresh = black_box(vec![1u8; 16]);
    tracker.track(&fresh, "fresh", "request").unwrap();

    let live = tracker.live();
    assert_eq!(live.len(), 4);
    for info in &live[..3] {
        assert!(info.age() > Duration::from_secs(1), "{info}");
        assert!(info.created_at <= before_sleep);
    }
    assert!(live[3].age() < Duration::from_secs(1), "{}", live[3]);
    assert!(live[3].created_at >= before_sleep);

    let older = tracker.live_older_than(Duration::from_secs(1));
    let names: Vec<_> = older.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["old-0", "old-1", "old-2"]);
    // Zero age threshold: everything.
    assert_eq!(tracker.live_older_than(Duration::ZERO).len(), 4);

    drop(old);
    assert!(tracker.live_older_than(Duration::from_secs(1)).is_empty());
    assert_eq!(tracker.live().len(), 1);
    drop(fresh);
    assert!(tracker.live().is_empty());
}
