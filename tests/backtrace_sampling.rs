//! Sampled backtraces: about one small block in N gets a stack, large blocks always do.

use leaktracker::report::LeakReport;
use leaktracker::{set_backtraces, Backtraces, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[inline(never)]
#[allow(clippy::vec_box)] // one block per element is the point
fn small_blocks(n: usize) -> Vec<Box<[u8; 16]>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(black_box(Box::new([0u8; 16])));
    }
    v
}

#[inline(never)]
fn large_blocks(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| black_box(vec![0u8; 256 * 1024])).collect()
}

#[test]
fn main() {
    set_backtraces(Backtraces::Sample(64));
    let tracker = LeakTracker::new();
    let (small, large) = {
        let _s = tracker.scope("sampled", "bench");
        (small_blocks(20_000), large_blocks(8))
    };
    let r = LeakReport::of(&tracker);
    let e = &r.leaks()[0];
    assert_eq!(e.allocations, 20_000 + 1 + 8 + 1);
    let captured = |needle: &str| -> usize {
        e.stacks
            .iter()
            .filter(|g| g.frames.iter().any(|f| f.contains(needle)))
            .map(|g| g.blocks)
            .sum()
    };
    // 256 KiB blocks weigh 257 >= 64: always captured.
    assert_eq!(captured("large_blocks::{{closure}}"), 8, "{:#?}", e.stacks);
    // Small blocks: 20,000 / 64 = 312 expected; a generous band for the random draw.
    let small_captured = captured("small_blocks");
    assert!(
        (150..=500).contains(&small_captured),
        "about 1 in 64 small blocks: {small_captured}"
    );
    drop((small, large));
    assert!(LeakReport::of(&tracker).is_empty());
}
