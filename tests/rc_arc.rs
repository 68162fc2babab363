//! `Rc` and `Arc` (also `Rc<str>`, `Arc<[u64]>`, `Rc<dyn Trait>` and an over-aligned `T`):
//! the block `Trackable` names is the one the allocator recorded (an `Rc` made inside a
//! scope is found by `untrack`, with the same size), and a tracked `Rc`/`Arc` leaves when
//! its last clone drops (its last `Weak` too: the block lives until then).

mod common;
use common::counts;

use leaktracker::{stats, LeakTracker, Trackable, TrackingAllocator};
use std::fmt::Debug;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[repr(align(64))]
#[derive(Debug)]
struct Aligned([u8; 100]);

/// Makes `make()` inside a fresh scope; checks that the scope recorded exactly one block of
/// the size `heap_block` reports, and that `untrack` finds it there.
fn made_in_scope<T: Trackable>(
    tracker: &LeakTracker,
    name: &'static str,
    make: impl FnOnce() -> T,
) -> T {
    let value = {
        let _g = tracker.scope(name, "rc");
        make()
    };
    let (_, size) = value.heap_block().expect("a heap block");
    assert_eq!(counts(tracker), [(name.to_string(), 1, size)], "{name}");
    assert!(
        tracker.untrack(&value),
        "{name}: untrack did not find the block"
    );
    assert!(tracker.live().is_empty(), "{name}");
    value
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    let rc_u64 = made_in_scope(&tracker, "Rc<u64>", || Rc::new(black_box(5u64)));
    assert_eq!(rc_u64.heap_block().unwrap().1, 24);
    let rc_u8 = made_in_scope(&tracker, "Rc<u8>", || Rc::new(black_box(1u8)));
    assert_eq!(rc_u8.heap_block().unwrap().1, 24);
    let rc_str: Rc<str> = made_in_scope(&tracker, "Rc<str>", || Rc::from(black_box("hello world")));
    assert_eq!(rc_str.heap_block().unwrap().1, 32);
    let arc_slice: Arc<[u64]> = made_in_scope(&tracker, "Arc<[u64]>", || {
        let v = vec![1u64, 2, 3];
        let a: Arc<[u64]> = Arc::from(&v[..]);
        drop(v);
        a
    });
    assert_eq!(arc_slice.heap_block().unwrap().1, 40);
    let rc_aligned = made_in_scope(&tracker, "Rc<Aligned>", || Rc::new(Aligned([7; 100])));
    assert_eq!(rc_aligned.heap_block().unwrap().1, 192);
    let arc_aligned = made_in_scope(&tracker, "Arc<Aligned>", || Arc::new(Aligned([8; 100])));
    assert_eq!(arc_aligned.heap_block().unwrap().1, 192);
    let rc_dyn: Rc<dyn Debug> = made_in_scope(&tracker, "Rc<dyn Debug>", || {
        Rc::new(Aligned([9; 100])) as Rc<dyn Debug>
    });
    assert_eq!(rc_dyn.heap_block().unwrap().1, 192);
    let arc_dyn: Arc<dyn Debug + Send + Sync> = made_in_scope(&tracker, "Arc<dyn Debug>", || {
        Arc::new(black_box(3u16)) as Arc<dyn Debug + Send + Sync>
    });
    assert_eq!(arc_dyn.heap_block().unwrap().1, 24);
    assert_eq!(rc_str.len() + arc_slice.len(), 14);
    assert_eq!((rc_aligned.0[99], arc_aligned.0[0]), (7, 8));
    drop((
        rc_u64,
        rc_u8,
        rc_str,
        arc_slice,
        rc_aligned,
        arc_aligned,
        rc_dyn,
        arc_dyn,
    ));

    // A tracked Rc leaves when its last clone drops, not before.
    let rc = Rc::new(black_box([3u32; 10]));
    tracker.track(&rc, "shared", "rc").unwrap();
    let clones: Vec<Rc<[u32; 10]>> = (0..3).map(|_| Rc::clone(&rc)).collect();
    // Every clone names the same block: tracking a clone updates in place.
    tracker.track(&clones[1], "shared-renamed", "rc").unwrap();
    assert_eq!(counts(&tracker), [("shared-renamed".into(), 1, 56)]);
    drop(rc);
    let mut clones = clones;
    clones.truncate(1);
    assert_eq!(counts(&tracker).len(), 1);
    // A Weak keeps the block (not the value) allocated: still listed until it drops.
    let weak = Rc::downgrade(&clones[0]);
    drop(clones);
    assert!(weak.upgrade().is_none());
    assert_eq!(counts(&tracker).len(), 1);
    drop(weak);
    assert!(tracker.live().is_empty());

    // A tracked Arc whose clones are dropped on other threads, the last one on whichever
    // thread finishes last.
    let arc: Arc<[u64]> = Arc::from(vec![1u64; 1000]);
    tracker.track(&arc, "shared-arc", "arc").unwrap();
    assert_eq!(counts(&tracker), [("shared-arc".into(), 1, 16 + 8000)]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let a = Arc::clone(&arc);
            s.spawn(move || {
                assert_eq!(a.iter().sum::<u64>(), 1000);
                drop(a);
            });
        }
        drop(arc);
    });
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
}
