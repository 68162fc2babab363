//! Walkthrough 2: dropping a tracked object removes it from `live()` — no call needed,
//! the allocator forgets the freed block by itself.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    let boxed = black_box(Box::new([3u8; 64]));
    let list = black_box(vec![1u32; 25]);
    let text = black_box(String::from("a session token"));
    tracker.track(&boxed, "box", "buffer").unwrap();
    tracker.track(&list, "list", "buffer").unwrap();
    tracker.track(&text, "text", "session").unwrap();
    assert_eq!(stats().records, baseline + 3);

    let names = |t: &LeakTracker| t.live().into_iter().map(|i| i.name).collect::<Vec<_>>();
    assert_eq!(names(&tracker), ["box", "list", "text"]);

    drop(list);
    assert_eq!(names(&tracker), ["box", "text"]);
    let live = tracker.live();
    assert_eq!((live[0].allocations, live[0].bytes), (1, 64));
    assert_eq!((live[1].allocations, live[1].bytes), (1, 15));

    drop(boxed);
    assert_eq!(names(&tracker), ["text"]);

    drop(text);
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);

    // Dropped inside a function, in a loop: each one leaves as it goes.
    for round in 0..3usize {
        let v = black_box(vec![round as u8; 10 + round]);
        tracker.track(&v, format!("round-{round}"), "loop").unwrap();
        let live = tracker.live();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].name, format!("round-{round}"));
        assert_eq!(live[0].bytes, 10 + round);
    }
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
