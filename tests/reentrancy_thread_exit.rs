//! A scope alive while its thread exits and the thread-local destructors run: a guard
//! leaked with `mem::forget`, and a guard kept in a thread-local. Destructors that
//! allocate (and even open scopes) work, and the counts stay exact.

mod common;
use common::counts_sorted;

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Mutex;

use leaktracker::{LeakTracker, ScopeGuard, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static T: LeakTracker = LeakTracker::new();
/// Blocks kept by the destructors (capacity reserved up front: pushing never reallocates).
static FROM_DTORS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A thread-local value whose destructor allocates, frees, opens a scope and keeps a block.
struct AllocOnDrop(u8);

impl Drop for AllocOnDrop {
    fn drop(&mut self) {
        let v = black_box(vec![self.0; 77]);
        let s = black_box(format!("dtor {}", v.len()));
        drop((v, s));
        let _ = T.live();
        let kept = {
            let _s = T.scope(format!("in-dtor-{}", self.0), "thread-exit");
            black_box(vec![self.0; 55])
        };
        FROM_DTORS.lock().unwrap().push(kept);
    }
}

thread_local! {
    static DTOR: AllocOnDrop = const { AllocOnDrop(0) };
    static GUARD: RefCell<Option<ScopeGuard<'static>>> = const { RefCell::new(None) };
    static LATE: RefCell<Option<AllocOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn main() {
    assert!(leaktracker::is_installed());
    FROM_DTORS.lock().unwrap().reserve(16);
    let base_records = leaktracker::stats().records;
    let _ = T.live();
    let base_resources = leaktracker::stats().resources;

    // 1. A guard leaked with `mem::forget`: the thread ends tagged.
    let keep1 = std::thread::spawn(|| {
        DTOR.with(|_| {}); // registers its destructor before the scope
        let g = T.scope("forgotten", "thread-exit");
        let keep = black_box(vec![1u8; 123]);
        LATE.with(|l| *l.borrow_mut() = Some(AllocOnDrop(1)));
        std::mem::forget(g);
        keep
    })
    .join()
    .unwrap();
    assert_eq!(
        counts_sorted(&T),
        vec![
            ("forgotten".into(), 1, 123),
            ("in-dtor-0".into(), 1, 55),
            ("in-dtor-1".into(), 1, 55),
        ]
    );

    // 2. A guard kept in a thread-local: dropped by the thread's TLS destructors.
    let keep2 = std::thread::spawn(|| {
        GUARD.with(|g| *g.borrow_mut() = Some(T.scope("tls-guard", "thread-exit")));
        LATE.with(|l| *l.borrow_mut() = Some(AllocOnDrop(2)));
        DTOR.with(|_| {});
        black_box(vec![2u8; 321])
    })
    .join()
    .unwrap();
    assert_eq!(
        counts_sorted(&T),
        vec![
            ("forgotten".into(), 1, 123),
            ("in-dtor-0".into(), 1, 55), // two scopes of the same name:
            ("in-dtor-0".into(), 1, 55), // two resources
            ("in-dtor-1".into(), 1, 55),
            ("in-dtor-2".into(), 1, 55),
            ("tls-guard".into(), 1, 321),
        ]
    );
    assert_eq!(leaktracker::stats().records, base_records + 6);

    // 3. Many threads at once, each ending inside a scope.
    let handles: Vec<_> = (0..8u8)
        .map(|i| {
            std::thread::spawn(move || {
                LATE.with(|l| *l.borrow_mut() = Some(AllocOnDrop(10 + i)));
                GUARD.with(|g| *g.borrow_mut() = Some(T.scope(format!("many-{i}"), "x")));
                black_box(vec![i; 10])
            })
        })
        .collect();
    let many: Vec<Vec<u8>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(leaktracker::stats().records, base_records + 6 + 16);

    drop((keep1, keep2, many));
    FROM_DTORS.lock().unwrap().clear();
    assert!(T.live().is_empty());
    assert_eq!(leaktracker::stats().records, base_records);
    // Every resource was released except the forgotten scope's (its guard never dropped).
    assert_eq!(leaktracker::stats().resources, base_resources + 1);
}
