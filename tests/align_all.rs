//! Every alignment from 1 to 4096, allocated with `std::alloc::alloc` inside a scope: each
//! block is aligned, recorded with its requested size, survives realloc, and is freed
//! exactly.

mod common;
use common::sole_counts;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::alloc::{alloc, dealloc, realloc, Layout};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    let mut blocks: Vec<(*mut u8, Layout)> = Vec::with_capacity(256);
    let mut expected_bytes = 0;

    {
        let _g = tracker.scope("aligned", "raw");
        for shift in 0..=12 {
            let align = 1usize << shift;
            for size in [1, align, 3 * align + 1, 5000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero size.
                let p = unsafe { alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "align {align}");
                // SAFETY: `p` is live with `layout.size()` bytes.
                unsafe { p.write_bytes(shift as u8, size) };
                blocks.push((p, layout));
                expected_bytes += size;
            }
        }
    }
    assert_eq!(sole_counts(&tracker), (blocks.len(), expected_bytes));
    assert_eq!(blocks.len(), 13 * 4);
    assert_eq!(stats().records, baseline + 52);

    // Grow every block (outside any scope): the records follow, alignment is kept.
    for (p, layout) in &mut blocks {
        let new_size = layout.size() * 2 + 7;
        // SAFETY: `*p` is live with `*layout`; `new_size` is non-zero and fits `isize`.
        let q = unsafe { realloc(*p, *layout, new_size) };
        assert!(!q.is_null());
        assert_eq!(q as usize % layout.align(), 0);
        // SAFETY: the first `layout.size()` bytes were copied.
        let kept = unsafe { std::slice::from_raw_parts(q, layout.size()) };
        assert!(kept
            .iter()
            .all(|&b| b == layout.align().trailing_zeros() as u8));
        expected_bytes += new_size - layout.size();
        *p = q;
        *layout = Layout::from_size_align(new_size, layout.align()).unwrap();
    }
    assert_eq!(sole_counts(&tracker), (52, expected_bytes));

    // Free them one by one: exact counts after each.
    let mut n = blocks.len();
    for (p, layout) in blocks.drain(..) {
        // SAFETY: `p` is live with `layout`.
        unsafe { dealloc(p, layout) };
        n -= 1;
        expected_bytes -= layout.size();
        assert_eq!(sole_counts(&tracker), (n, expected_bytes));
    }
    assert_eq!(stats().records, baseline);

    // Over-aligned Rust types in a scope, too.
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    #[repr(align(64))]
    struct Line(u8);
    let (page, line) = {
        let _g = tracker.scope("typed", "raw");
        (Box::new(Page([1; 4096])), Box::new(Line(2)))
    };
    assert_eq!(&*page as *const Page as usize % 4096, 0);
    assert_eq!(&*line as *const Line as usize % 64, 0);
    assert_eq!(sole_counts(&tracker), (2, 4096 + 64));
    assert_eq!(page.0[4095] + line.0, 3);
    drop((page, line));
    assert_eq!(sole_counts(&tracker), (0, 0));
}
