//! A tagged block shrunk (and grown again) keeps its tag with its new size; shrinking a
//! Vec to nothing frees the block and its record.

mod common;
use common::counts;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::alloc::{alloc, dealloc, realloc, Layout};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    // A tracked Vec shrunk step by step.
    let mut v: Vec<u32> = black_box(Vec::with_capacity(1000));
    v.extend(0..10);
    tracker.track(&v, "shrinking", "buffer").unwrap();
    assert_eq!(counts(&tracker), [("shrinking".into(), 1, 4000)]);
    v.shrink_to(100);
    assert_eq!(
        counts(&tracker),
        [("shrinking".into(), 1, v.capacity() * 4)]
    );
    assert_eq!(v.capacity(), 100);
    v.shrink_to_fit();
    assert_eq!(counts(&tracker), [("shrinking".into(), 1, 40)]);
    assert!(v.iter().copied().eq(0..10));
    v.clear();
    v.shrink_to_fit(); // capacity 0: the block is freed
    assert_eq!(v.capacity(), 0);
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);

    // Raw realloc of a scope's block: shrink, grow big (it moves), shrink again.
    let layout = Layout::from_size_align(4096, 8).unwrap();
    let p = {
        let _g = tracker.scope("raw", "scope");
        // SAFETY: non-zero size.
        unsafe { alloc(layout) }
    };
    assert!(!p.is_null());
    // SAFETY: `p` is live with `layout`.
    unsafe { p.write_bytes(0xAB, 4096) };
    assert_eq!(counts(&tracker), [("raw".into(), 1, 4096)]);
    // SAFETY: `p` was allocated with `layout`; the new size is non-zero.
    let p = unsafe { realloc(p, layout, 16) };
    assert!(!p.is_null());
    assert_eq!(counts(&tracker), [("raw".into(), 1, 16)]);
    let l16 = Layout::from_size_align(16, 8).unwrap();
    // SAFETY: `p` is live with `l16`; the new size is non-zero.
    let p = unsafe { realloc(p, l16, 1 << 20) };
    assert!(!p.is_null());
    assert_eq!(counts(&tracker), [("raw".into(), 1, 1 << 20)]);
    // SAFETY: the first 16 bytes were kept by both reallocs.
    assert!(unsafe { std::slice::from_raw_parts(p, 16) }
        .iter()
        .all(|&b| b == 0xAB));
    let big = Layout::from_size_align(1 << 20, 8).unwrap();
    // SAFETY: `p` is live with `big`; the new size is non-zero.
    let p = unsafe { realloc(p, big, 24) };
    assert_eq!(counts(&tracker), [("raw".into(), 1, 24)]);
    assert_eq!(stats().records, baseline + 1);
    // SAFETY: `p` is live with this layout.
    unsafe { dealloc(p, Layout::from_size_align(24, 8).unwrap()) };
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
