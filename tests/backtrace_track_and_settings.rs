//! Backtraces switched on for one tracker only: its `track` calls record the stack of the
//! call; another tracker's blocks, and scopes of a tracker without the setting, get none.
//! The depth setting cuts the frames.

use leaktracker::report::LeakReport;
use leaktracker::{backtraces, set_backtrace_depth, Backtraces, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[inline(never)]
fn register_connection(t: &LeakTracker, buf: &Vec<u8>) {
    t.track(buf, "conn-1", "database").unwrap();
}

#[inline(never)]
fn deeper(n: usize, t: &LeakTracker) -> Box<u64> {
    if n == 0 {
        let _s = t.scope("deep", "recursion");
        black_box(Box::new(5u64))
    } else {
        black_box(deeper(n - 1, t))
    }
}

#[test]
fn main() {
    assert_eq!(backtraces(), Backtraces::Off, "off by default");
    let with = LeakTracker::new();
    with.set_backtraces(Some(Backtraces::All));
    let without = LeakTracker::new();

    let a = black_box(vec![1u8; 64]);
    register_connection(&with, &a);
    let b = black_box(vec![2u8; 32]);
    without.track(&b, "conn-2", "database").unwrap();
    let kept = {
        let _s = without.scope("plain", "scope");
        black_box(Box::new(1u32))
    };

    let r = LeakReport::of(&with);
    assert_eq!(r.leaks().len(), 1);
    let frames = r.leaks()[0].backtrace().expect("track call captured");
    assert!(
        !frames[0].contains("LeakTracker::track") && frames[0].contains("register_connection"),
        "the first frame is the caller of track: {frames:#?}"
    );
    assert_eq!(r.leaks()[0].stacks.len(), 1);
    assert_eq!(r.leaks()[0].stacks[0].blocks, 1);
    assert_eq!(r.leaks()[0].stacks[0].bytes, 64);

    let r2 = LeakReport::of(&without);
    assert_eq!(r2.leaks().len(), 2);
    assert!(
        r2.leaks().iter().all(|e| e.stacks.is_empty()),
        "no capture without the setting"
    );

    // Depth: only 3 frames kept (counted after leaktracker's own frames).
    set_backtrace_depth(3);
    let deep = deeper(20, &with);
    let r3 = LeakReport::of(&with);
    let e = r3.leaks().iter().find(|e| e.name == "deep").unwrap();
    let frames = e.backtrace().unwrap();
    assert_eq!(frames.len(), 3, "{frames:#?}");
    assert!(frames.iter().all(|f| f.contains("deeper")), "{frames:#?}");

    // Untracking forgets the block's stack too; re-tracking captures the new call site.
    assert!(with.untrack(&a));
    assert_eq!(LeakReport::of(&with).leaks().len(), 1);
    drop((a, b, kept, deep));
    assert!(LeakReport::of(&with).is_empty());
    assert!(LeakReport::of(&without).is_empty());
}
