//! Walkthrough 4: five objects of three kinds are listed in tracking order and group
//! 2/2/1 by kind.

use leaktracker::{LeakTracker, TrackingAllocator};
use std::collections::BTreeMap;
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    // Kinds interleaved on purpose: the order is tracking order, not grouped.
    let plan = [
        ("db-primary", "database", 100usize),
        ("cache-users", "cache", 200),
        ("db-replica", "database", 300),
        ("session-42", "session", 400),
        ("cache-items", "cache", 500),
    ];
    let objects: Vec<Vec<u8>> = plan
        .iter()
        .map(|&(_, _, n)| black_box(vec![0u8; n]))
        .collect();
    for (obj, &(name, kind, _)) in objects.iter().zip(&plan) {
        tracker.track(obj, name, kind).unwrap();
    }

    let live = tracker.live();
    assert_eq!(live.len(), 5);
    for (info, &(name, kind, n)) in live.iter().zip(&plan) {
        assert_eq!(info.name, name);
        assert_eq!(info.kind, kind);
        assert_eq!((info.allocations, info.bytes), (1, n));
    }
    // Creation times follow the order too.
    assert!(live.windows(2).all(|w| w[0].created_at <= w[1].created_at));

    let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for info in &live {
        by_kind.entry(&info.kind).or_default().push(&info.name);
    }
    assert_eq!(by_kind.len(), 3);
    assert_eq!(by_kind["database"], ["db-primary", "db-replica"]);
    assert_eq!(by_kind["cache"], ["cache-users", "cache-items"]);
    assert_eq!(by_kind["session"], ["session-42"]);

    drop(objects);
    assert!(tracker.live().is_empty());
}
