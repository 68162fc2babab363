//! Walkthrough 6: the global tracker (`LeakTracker::global()`, `track_resource`,
//! `untrack_resource`) is independent of local trackers, and `clear` on a local tracker
//! leaves it alone.

use leaktracker::{track_resource, untrack_resource, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn names(t: &LeakTracker) -> Vec<String> {
    t.live().into_iter().map(|i| i.name).collect()
}

#[test]
fn main() {
    let global = LeakTracker::global();
    assert!(std::ptr::eq(global, LeakTracker::global()));
    assert!(global.live().is_empty());

    let g1 = black_box(vec![1u8; 10]);
    let g2 = black_box(String::from("global two"));
    track_resource(&g1, "g1", "global").unwrap();
    global.track(&g2, "g2", "global").unwrap(); // same tracker, other door

    let local = LeakTracker::new();
    let l1 = black_box(Box::new(5u64));
    local.track(&l1, "l1", "local").unwrap();

    assert_eq!(names(global), ["g1", "g2"]);
    assert_eq!(names(&local), ["l1"]);

    // Each tracker only untracks its own blocks.
    assert!(!untrack_resource(&l1));
    assert!(!local.untrack(&g1));
    assert_eq!(names(global), ["g1", "g2"]);
    assert_eq!(names(&local), ["l1"]);

    // `clear` on a local tracker leaves the global one alone.
    local.clear();
    assert!(local.live().is_empty());
    assert_eq!(names(global), ["g1", "g2"]);

    // A second local tracker is independent of the first, too.
    let other = LeakTracker::new();
    other.track(&l1, "l1-again", "local").unwrap();
    assert_eq!(names(&other), ["l1-again"]);
    assert!(local.live().is_empty());
    drop(other); // dropping a tracker forgets its tags
    assert_eq!(names(global), ["g1", "g2"]);

    assert!(untrack_resource(&g2));
    assert!(!untrack_resource(&g2));
    assert_eq!(names(global), ["g1"]);
    assert_eq!(g2, "global two");

    drop(g1);
    assert!(global.live().is_empty());
    drop(l1);
    drop(g2);
}
