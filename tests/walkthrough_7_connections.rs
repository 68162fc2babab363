//! Walkthrough 7: a function that keeps 10 tracked connections shows 10 live; 0 after they
//! drop.

use leaktracker::{LeakTracker, Trackable, TrackingAllocator};
use std::hint::black_box;
use std::ptr::NonNull;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

struct Connection {
    id: usize,
    buffer: Vec<u8>,
}

// SAFETY: delegates to `buffer`, a `Vec<u8>` this connection owns.
unsafe impl Trackable for Connection {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        self.buffer.heap_block()
    }
}

fn open_connections(tracker: &LeakTracker, n: usize) -> Vec<Connection> {
    (0..n)
        .map(|id| {
            let c = Connection {
                id,
                buffer: black_box(vec![0u8; 1024 + id]),
            };
            tracker
                .track(&c, format!("conn-{id}"), "connection")
                .unwrap();
            c
        })
        .collect()
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let conns = open_connections(&tracker, 10);

    let live = tracker.live();
    assert_eq!(live.len(), 10);
    for (i, info) in live.iter().enumerate() {
        assert_eq!(info.name, format!("conn-{i}"));
        assert_eq!(info.kind, "connection");
        assert_eq!((info.allocations, info.bytes), (1, 1024 + i));
    }
    let total: usize = live.iter().map(|i| i.bytes).sum();
    assert_eq!(total, 10 * 1024 + 45);
    assert_eq!(conns.iter().map(|c| c.id).sum::<usize>(), 45);

    // Dropping half of them leaves the other half.
    let mut conns = conns;
    conns.retain(|c| c.id % 2 == 1);
    let live = tracker.live();
    assert_eq!(live.len(), 5);
    assert!(live
        .iter()
        .all(|i| i.name.ends_with(['1', '3', '5', '7', '9'])));

    drop(conns);
    assert!(tracker.live().is_empty());
}
