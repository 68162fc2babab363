//! Allocations before `main`: an `.init_array` constructor allocates, opens a scope and
//! tracks a block before the Rust runtime has started; `main` finds them listed, exactly.

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use leaktracker::{LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static T: LeakTracker = LeakTracker::new();
static SCOPED: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());
static TRACKED: AtomicPtr<Vec<u8>> = AtomicPtr::new(std::ptr::null_mut());
/// 1 when the constructor ran to its end; 2 when `track` failed; 3 when not installed.
static STATUS: AtomicU32 = AtomicU32::new(0);

extern "C" fn before_main() {
    if !leaktracker::is_installed() {
        STATUS.store(3, Ordering::SeqCst);
        return;
    }
    let plain = black_box(vec![1u8; 10]);
    let scoped = {
        let _s = T.scope("before-main", "init");
        let mut v = black_box(vec![7u8; 99]);
        let tmp = black_box(vec![0u64; 9]);
        drop(tmp);
        v.push(8); // grows inside the scope
        v
    };
    let tracked = black_box(vec![5u8; 17]);
    if T.track(&tracked, "before-main-obj", "init").is_err() {
        STATUS.store(2, Ordering::SeqCst);
        return;
    }
    drop(plain);
    SCOPED.store(Box::into_raw(Box::new(scoped)), Ordering::SeqCst);
    TRACKED.store(Box::into_raw(Box::new(tracked)), Ordering::SeqCst);
    STATUS.store(1, Ordering::SeqCst);
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = before_main;

#[test]
fn main() {
    assert_eq!(STATUS.load(Ordering::SeqCst), 1);
    // SAFETY: both were made by `Box::into_raw` in the constructor and are taken once.
    let (scoped, tracked) = unsafe {
        (
            Box::from_raw(SCOPED.swap(std::ptr::null_mut(), Ordering::SeqCst)),
            Box::from_raw(TRACKED.swap(std::ptr::null_mut(), Ordering::SeqCst)),
        )
    };
    let cap = scoped.capacity();
    assert!(cap >= 100);
    let live: Vec<_> = T
        .live()
        .into_iter()
        .map(|i| (i.name, i.kind, i.allocations, i.bytes))
        .collect();
    assert_eq!(
        live,
        [
            ("before-main".into(), "init".into(), 1, cap),
            ("before-main-obj".into(), "init".into(), 1, 17),
        ]
    );
    assert_eq!(scoped[..99], [7u8; 99]);
    assert_eq!(scoped[99], 8);
    assert_eq!(*tracked, vec![5u8; 17]);
    drop((scoped, tracked));
    assert!(T.live().is_empty());
    assert_eq!(leaktracker::stats().records, 0);
}
