//! Walkthrough 3: `untrack` removes an object from `live()` while the object lives on.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    let mut cache = black_box(vec![9u64; 32]);
    let keep = black_box(Box::new(17u32));
    tracker.track(&cache, "cache-1", "cache").unwrap();
    tracker.track(&keep, "keep", "config").unwrap();
    assert_eq!(tracker.live().len(), 2);

    assert!(tracker.untrack(&cache));
    let live = tracker.live();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].name, "keep");
    assert_eq!(stats().records, baseline + 1);

    // The object is untouched and still usable.
    assert_eq!(cache.len(), 32);
    assert!(cache.iter().all(|&x| x == 9));
    cache.extend(0..1000); // grows (realloc) untagged: still not listed
    assert_eq!(cache.len(), 1032);
    assert_eq!(tracker.live().len(), 1);

    // A second untrack, or an untrack of something never tracked: false, no effect.
    assert!(!tracker.untrack(&cache));
    let other = black_box(vec![1u8; 8]);
    assert!(!tracker.untrack(&other));
    // Another tracker cannot untrack this tracker's object.
    let stranger = LeakTracker::new();
    assert!(!stranger.untrack(&keep));
    assert_eq!(tracker.live().len(), 1);

    assert!(tracker.untrack(&keep));
    assert!(tracker.live().is_empty());
    assert_eq!(*keep, 17);
    assert_eq!(stats().records, baseline);

    drop(cache);
    drop(keep);
    drop(other);
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
