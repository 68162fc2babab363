//! `clear` while a scope is open: the scope's blocks so far are forgotten, the scope stays
//! open and goes on tagging new allocations; other trackers' scopes are untouched.

mod common;
use common::counts;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let other = LeakTracker::new();
    let baseline = stats().records;
    let mut kept: Vec<Box<[u8]>> = Vec::with_capacity(16);

    let outer = other.scope("other-scope", "x");
    kept.push(black_box(vec![1u8; 7].into_boxed_slice()));
    let guard = tracker.scope("open", "job");
    for n in [10, 20, 30] {
        kept.push(black_box(vec![2u8; n].into_boxed_slice()));
    }
    let tracked = black_box(vec![3u8; 5]);
    tracker.track(&tracked, "tracked", "obj").unwrap(); // moved out of the scope
    assert_eq!(
        counts(&tracker),
        [("open".into(), 3, 60), ("tracked".into(), 1, 5)]
    );

    tracker.clear();
    assert!(tracker.live().is_empty());
    assert_eq!(counts(&other), [("other-scope".into(), 1, 7)]);
    assert_eq!(stats().records, baseline + 1);

    // Still open: new allocations are tagged, old ones are not.
    for n in [40, 50] {
        kept.push(black_box(vec![4u8; n].into_boxed_slice()));
    }
    assert_eq!(counts(&tracker), [("open".into(), 2, 90)]);
    drop(guard);
    kept.push(black_box(vec![5u8; 3].into_boxed_slice())); // "other-scope" again
    drop(outer);
    assert_eq!(counts(&other), [("other-scope".into(), 2, 10)]);

    // The cleared blocks are intact and free normally.
    assert_eq!(kept[1].len(), 10);
    assert!(kept[3].iter().all(|&x| x == 2));
    kept.drain(1..4);
    drop(tracked);
    assert_eq!(counts(&tracker), [("open".into(), 2, 90)]);
    drop(kept);
    assert!(tracker.live().is_empty());
    assert!(other.live().is_empty());
    assert_eq!(stats().records, baseline);
}
