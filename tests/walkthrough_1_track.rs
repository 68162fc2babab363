//! Walkthrough 1: a tracked object is listed with its name, kind and creation time.

use leaktracker::{LeakTracker, TrackingAllocator};
use std::time::{Duration, SystemTime};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let before = SystemTime::now();
    let conn = vec![7u8; 100];
    tracker.track(&conn, "connection-1", "database").unwrap();
    let after = SystemTime::now();

    let live = tracker.live();
    assert_eq!(live.len(), 1);
    let info = &live[0];
    assert_eq!(info.name, "connection-1");
    assert_eq!(info.kind, "database");
    assert_eq!(info.allocations, 1);
    assert_eq!(info.bytes, 100);
    assert!(info.created_at >= before && info.created_at <= after);
    assert!(info.age() < Duration::from_secs(5));
    let line = info.to_string();
    assert!(line.starts_with("connection-1 (database): age "), "{line}");
    assert!(line.ends_with(", 1 allocation, 100 B"), "{line}");
    drop(conn);
    assert!(tracker.live().is_empty());
}
