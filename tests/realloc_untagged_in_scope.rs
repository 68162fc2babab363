//! A block keeps its lack of a tag: allocated outside a scope, grown inside one, it stays
//! untagged. And a block tagged by one scope, grown inside another, stays the first's.

mod common;
use common::counts;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    let mut outside: Vec<u32> = Vec::with_capacity(4);
    let mut outside_str = String::with_capacity(2);
    let first;
    {
        let _g = tracker.scope("grower", "scope");
        for i in 0..10_000 {
            outside.push(black_box(i));
            outside_str.push('z');
        }
        assert!(tracker.live().is_empty(), "{:?}", tracker.live());
        assert_eq!(stats().records, baseline);
        first = black_box(Box::new(5u8));
        assert_eq!(counts(&tracker), [("grower".into(), 1, 1)]);
        outside.shrink_to_fit();
        outside_str.shrink_to(100);
        assert_eq!(counts(&tracker), [("grower".into(), 1, 1)]);
    }
    assert_eq!(outside.len(), 10_000);

    // Tagged by scope A, grown in scope B (and outside any scope): stays A's.
    let mut a_vec: Vec<u8>;
    {
        let _a = tracker.scope("A", "scope");
        a_vec = black_box(Vec::with_capacity(8));
        a_vec.push(1);
    }
    {
        let _b = tracker.scope("B", "scope");
        a_vec.extend(std::iter::repeat_n(2, 4000));
        let _tmp = black_box(Box::new(0u16)); // B exists while it lives
        assert_eq!(
            counts(&tracker),
            [
                ("grower".into(), 1, 1),
                ("A".into(), 1, a_vec.capacity()),
                ("B".into(), 1, 2)
            ]
        );
    }
    a_vec.extend(std::iter::repeat_n(3, 40_000));
    assert_eq!(counts(&tracker)[1], ("A".into(), 1, a_vec.capacity()));
    assert_eq!(stats().records, baseline + 2);

    drop((outside, outside_str, first, a_vec));
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
