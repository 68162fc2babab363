//! A block tagged by a scope belongs to the scope's tracker: `untrack` on that tracker
//! removes it from the scope's resource; any other tracker's `untrack` does nothing.

mod common;
use common::counts;

use leaktracker::{stats, untrack_resource, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let other = LeakTracker::new();
    let baseline = stats().records;

    let guard = tracker.scope("job", "batch");
    let a = black_box(vec![0u8; 100]);
    let b = black_box(String::from("some text of 24 bytes!!"));
    let c = black_box(Box::new([0u64; 4]));
    drop(guard);
    assert_eq!(counts(&tracker), [("job".to_string(), 3, 155)]);

    assert!(!other.untrack(&b));
    assert!(!untrack_resource(&b));
    assert!(tracker.untrack(&b));
    assert!(!tracker.untrack(&b));
    assert_eq!(counts(&tracker), [("job".to_string(), 2, 132)]);
    assert_eq!(stats().records, baseline + 2);
    assert_eq!(b, "some text of 24 bytes!!");
    drop(b); // untagged now: no change
    assert_eq!(counts(&tracker), [("job".to_string(), 2, 132)]);

    // Untracking every block of a still-open scope: not listed; it goes on tagging.
    let guard = tracker.scope("open", "batch");
    let d = black_box(Box::new(1u32));
    assert_eq!(counts(&tracker)[1], ("open".to_string(), 1, 4));
    assert!(tracker.untrack(&d));
    assert_eq!(counts(&tracker).len(), 1);
    let e = black_box(Box::new(2u16));
    assert_eq!(counts(&tracker)[1], ("open".to_string(), 1, 2));
    drop(guard);

    assert!(tracker.untrack(&a));
    assert!(tracker.untrack(&c));
    assert!(tracker.untrack(&e));
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
    assert_eq!((a.len(), c[3], *d, *e), (100, 0, 1, 2));
}
