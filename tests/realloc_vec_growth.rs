//! Realloc keeps the tag: a tracked `Vec` grown by `push` to 10,000 elements stays tagged,
//! with its new size (bytes == capacity * size_of), its name, kind and creation time.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    let mut v: Vec<u64> = Vec::with_capacity(1);
    v.push(0);
    tracker.track(&v, "growing", "buffer").unwrap();
    let first = tracker.live().remove(0);
    assert_eq!(first.bytes, 8);

    let mut cap = v.capacity();
    let mut moves = 0;
    let mut addr = v.as_ptr();
    for i in 1..10_000u64 {
        v.push(black_box(i));
        if v.capacity() != cap {
            cap = v.capacity();
            if v.as_ptr() != addr {
                moves += 1;
                addr = v.as_ptr();
            }
            let live = tracker.live();
            assert_eq!(live.len(), 1);
            let info = &live[0];
            assert_eq!(
                (info.name.as_str(), info.kind.as_str()),
                ("growing", "buffer")
            );
            assert_eq!(info.created_at, first.created_at);
            assert_eq!(
                (info.allocations, info.bytes),
                (1, cap * 8),
                "at len {}",
                v.len()
            );
            assert_eq!(stats().records, baseline + 1);
        }
    }
    assert_eq!(v.len(), 10_000);
    assert!(
        moves > 0,
        "the block never moved: the test did not exercise a moving realloc"
    );
    let info = tracker.live().remove(0);
    assert_eq!((info.allocations, info.bytes), (1, v.capacity() * 8));
    assert!(v.iter().copied().eq(0..10_000));

    // The record follows the block: untrack finds it at the new address.
    assert!(tracker.untrack(&v));
    assert!(tracker.live().is_empty());
    tracker.track(&v, "growing", "buffer").unwrap();

    // Shrinking to fit keeps it too.
    v.truncate(1234);
    v.shrink_to_fit();
    let info = tracker.live().remove(0);
    assert_eq!((info.allocations, info.bytes), (1, 1234 * 8));

    // A String grows the same way.
    let mut s = String::with_capacity(1);
    s.push('x');
    tracker.track(&s, "text", "buffer").unwrap();
    for _ in 0..5000 {
        s.push_str("ab");
    }
    let live = tracker.live();
    assert_eq!(live.len(), 2);
    assert_eq!(
        (live[1].name.as_str(), live[1].bytes),
        ("text", s.capacity())
    );

    drop(v);
    drop(s);
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
