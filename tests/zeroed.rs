//! `alloc_zeroed` inside a scope: the memory is zero and the block is recorded with its
//! size; `vec![0; n]` (which uses `alloc_zeroed`) too.

mod common;
use common::first_counts;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    // Dirty some memory first so that a non-zeroing allocator would be caught.
    for _ in 0..64 {
        let mut v = black_box(vec![0xFFu8; 64 << 10]);
        v[1] = 0xEE;
        drop(black_box(v));
    }

    let cases = [(1, 1), (100, 8), (4096, 4096), (1 << 20, 64), (3 << 20, 16)];
    let mut blocks = Vec::with_capacity(cases.len());
    {
        let _g = tracker.scope("zeroed", "raw");
        for (size, align) in cases {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size.
            let p = unsafe { alloc_zeroed(layout) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            blocks.push((p, layout));
        }
    }
    let total: usize = cases.iter().map(|c| c.0).sum();
    assert_eq!(first_counts(&tracker), (5, total));
    assert_eq!(stats().records, baseline + 5);
    for &(p, layout) in &blocks {
        // SAFETY: `p` is live with `layout.size()` initialised (zeroed) bytes.
        let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }
    for (p, layout) in blocks {
        // SAFETY: `p` is live with `layout`.
        unsafe { dealloc(p, layout) };
    }
    assert_eq!(first_counts(&tracker), (0, 0));

    let (a, b) = {
        let _g = tracker.scope("vec-zero", "vec");
        (black_box(vec![0u8; 50_000]), black_box(vec![0u64; 1000]))
    };
    assert!(a.iter().all(|&x| x == 0) && b.iter().all(|&x| x == 0));
    assert_eq!(first_counts(&tracker), (2, 58_000));
    drop((a, b));
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
