//! A scope guard dropped while unwinding (caught by `catch_unwind`) restores the tag it
//! replaced: the outer scope resumes, and after it nothing is tagged.

mod common;
use common::counts;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    // 1. resume_unwind: no panic hook, no payload allocated inside the scopes.
    let payload: Box<dyn std::any::Any + Send> = Box::new(7u32);
    let outer = tracker.scope("outer", "request");
    let a = black_box(Box::new([0u8; 10]));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _inner = tracker.scope("inner", "handler");
        let leaked = black_box(Box::new([0u8; 20]));
        std::mem::forget(leaked); // stays tagged "inner"
        resume_unwind(payload);
    }));
    let b = black_box(Box::new([0u8; 30])); // "outer" again
    drop(outer);
    let c = black_box(Box::new([0u8; 40])); // untagged
    let err = r.unwrap_err();
    assert_eq!(err.downcast_ref::<u32>(), Some(&7));
    drop(err);
    assert_eq!(
        counts(&tracker),
        [("outer".to_string(), 2, 40), ("inner".to_string(), 1, 20)]
    );
    drop((a, b, c));
    assert_eq!(counts(&tracker), [("inner".to_string(), 1, 20)]);
    tracker.clear();
    assert_eq!(stats().records, baseline);

    // 2. A real `panic!`, nested two deep, with a silent hook (set outside the scopes).
    std::panic::set_hook(Box::new(|_| {}));
    let outer = tracker.scope("outer-2", "request");
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _mid = tracker.scope("mid", "handler");
        let _x = black_box(Box::new([0u8; 50])); // freed by the unwind
        catch_unwind(AssertUnwindSafe(|| {
            let _deep = tracker.scope("deep", "handler");
            let _y = black_box(Box::new([0u8; 60])); // freed by the unwind
            panic!("deep failure");
        }))
        .unwrap_err();
        let _z = black_box(Box::new([0u8; 70])); // "mid", freed by the unwind below
        panic!("mid failure {}", black_box(2));
    }));
    let d = black_box(Box::new([0u8; 80])); // "outer-2"
    drop(outer);
    let e = black_box(Box::new([0u8; 90])); // untagged
    let _ = std::panic::take_hook();

    let msg = r.unwrap_err();
    assert_eq!(
        msg.downcast_ref::<String>().map(String::as_str),
        Some("mid failure 2")
    );
    // The payload was allocated while "mid" was the tag; all else inside was freed
    // ("deep"'s payload was dropped by `unwrap_err()`).
    let live = counts(&tracker);
    assert_eq!(live[0], ("outer-2".to_string(), 1, 80));
    // The payload: a `Box<String>` (24 bytes) and the `String`'s buffer.
    let cap = msg.downcast_ref::<String>().unwrap().capacity();
    assert_eq!(live[1..], [("mid".to_string(), 2, 24 + cap)]);
    drop(msg);
    assert_eq!(counts(&tracker), [("outer-2".to_string(), 1, 80)]);
    drop(d);
    assert!(tracker.live().is_empty());
    drop(e);
    assert_eq!(stats().records, baseline);
}
