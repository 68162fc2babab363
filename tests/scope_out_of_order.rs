//! Scope guards dropped out of order: each guard, when dropped, restores the tag it
//! replaced (API.md), whatever order they drop in; no hold is lost or leaked on the way.
//!
//! Note the consequence that API.md's rule has: when an outer guard drops before an inner
//! one, the inner guard restores the outer scope's tag, which then stays the thread's tag
//! after every guard is gone.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

/// The name of the resource (of `tracker`) that tags this thread's allocations now, found
/// by allocating one probe block and seeing which resource gained it. Allocates nothing
/// else while the thread may be tagged (`live()` itself allocates untagged).
fn current_tag(tracker: &LeakTracker) -> Option<String> {
    let before = tracker.live();
    let probe = black_box(vec![0u8; 33]);
    let after = tracker.live();
    drop(probe);
    let mut gained = None;
    for info in after {
        let had = before
            .iter()
            .find(|b| b.name == info.name)
            .map_or(0, |b| b.allocations);
        if info.allocations == had + 1 {
            assert!(gained.is_none(), "two resources gained a block");
            gained = Some(info.name);
        } else {
            assert_eq!(info.allocations, had, "{}", info.name);
        }
    }
    gained
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    // Keep one block per scope so that every resource stays listed.
    let mut keep = Vec::with_capacity(16);

    // Outermost guard dropped last: B, C, then A.
    {
        let a = tracker.scope("a", "t");
        keep.push(black_box(Box::new(1u8)));
        let b = tracker.scope("b", "t");
        keep.push(black_box(Box::new(2u8)));
        let c = tracker.scope("c", "t");
        keep.push(black_box(Box::new(3u8)));
        assert_eq!(current_tag(&tracker).as_deref(), Some("c"));
        drop(b); // restores "a" (what b replaced)
        assert_eq!(current_tag(&tracker).as_deref(), Some("a"));
        drop(c); // restores "b" (what c replaced)
        assert_eq!(current_tag(&tracker).as_deref(), Some("b"));
        drop(a); // restores no tag
        assert_eq!(current_tag(&tracker), None);
    }
    let live = tracker.live();
    let names: Vec<_> = live
        .iter()
        .map(|i| (i.name.as_str(), i.allocations))
        .collect();
    assert_eq!(names, [("a", 1), ("b", 1), ("c", 1)]);

    // Outer guard dropped first: the inner guard then restores the outer scope's tag.
    {
        let outer = tracker.scope("outer", "t");
        let inner = tracker.scope("inner", "t");
        keep.push(black_box(Box::new(4u8)));
        drop(outer); // restores no tag while `inner` is still alive
        assert_eq!(current_tag(&tracker), None);
        drop(inner); // restores "outer", which it replaced
        assert_eq!(current_tag(&tracker).as_deref(), Some("outer"));
        // A new scope opened and closed in order restores "outer" again.
        let g = tracker.scope("later", "t");
        assert_eq!(current_tag(&tracker).as_deref(), Some("later"));
        drop(g);
        assert_eq!(current_tag(&tracker).as_deref(), Some("outer"));
    }
    assert_eq!(stats().records, baseline + 4);
    drop(keep);
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
