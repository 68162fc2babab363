//! `TrackingAllocator` wrapping another `GlobalAlloc`: a counting allocator over `System`.
//! Every call is forwarded exactly once, to the same method (alloc_zeroed stays
//! alloc_zeroed, realloc stays realloc), tagging adds no inner call (the tables' memory
//! does not come from the global allocator), and the records are right — also when the
//! inner allocator fails.

mod common;
use common::counts;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts calls per method on the calling thread (const thread-locals without destructors
/// never allocate) and in total; refuses any request of `REFUSED` bytes.
struct Counting {
    total: AtomicUsize,
}

const REFUSED: usize = 777_777;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Calls {
    alloc: usize,
    zeroed: usize,
    realloc: usize,
    dealloc: usize,
}

thread_local! {
    static CALLS: Cell<Calls> = const {
        Cell::new(Calls { alloc: 0, zeroed: 0, realloc: 0, dealloc: 0 })
    };
}

fn bump(f: impl FnOnce(&mut Calls)) {
    CALLS.with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

fn calls() -> Calls {
    CALLS.with(Cell::get)
}

fn since(before: Calls) -> Calls {
    let now = calls();
    Calls {
        alloc: now.alloc - before.alloc,
        zeroed: now.zeroed - before.zeroed,
        realloc: now.realloc - before.realloc,
        dealloc: now.dealloc - before.dealloc,
    }
}

// SAFETY: forwards to `System`, whose guarantees carry over; refusing returns null, which
// `GlobalAlloc` allows.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.total.fetch_add(1, Ordering::Relaxed);
        bump(|c| c.alloc += 1);
        if layout.size() == REFUSED {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.total.fetch_add(1, Ordering::Relaxed);
        bump(|c| c.zeroed += 1);
        if layout.size() == REFUSED {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.total.fetch_add(1, Ordering::Relaxed);
        bump(|c| c.realloc += 1);
        if new_size == REFUSED {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.total.fetch_add(1, Ordering::Relaxed);
        bump(|c| c.dealloc += 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: TrackingAllocator<Counting> = TrackingAllocator::new(Counting {
    total: AtomicUsize::new(0),
});

fn one(f: impl FnOnce(&mut Calls)) -> Calls {
    let mut c = Calls::default();
    f(&mut c);
    c
}

#[test]
fn main() {
    assert!(leaktracker::is_installed());
    let tracker = LeakTracker::new();
    let baseline = stats().records;
    let total_before = ALLOC.inner().total.load(Ordering::Relaxed);

    let l64 = Layout::from_size_align(64, 8).unwrap();
    let guard = tracker.scope("inner", "counting");
    let warm = black_box(Box::new(0u8)); // the scope's first block
    drop(warm);

    // alloc: one inner alloc, recorded.
    let c0 = calls();
    // SAFETY: non-zero size.
    let p = unsafe { std::alloc::alloc(l64) };
    assert_eq!(since(c0), one(|c| c.alloc = 1));
    assert!(!p.is_null());

    // alloc_zeroed: one inner alloc_zeroed, recorded.
    let c0 = calls();
    // SAFETY: non-zero size.
    let z = unsafe { std::alloc::alloc_zeroed(l64) };
    assert_eq!(since(c0), one(|c| c.zeroed = 1));
    // SAFETY: `z` is live with 64 zeroed bytes.
    assert!(unsafe { std::slice::from_raw_parts(z, 64) }
        .iter()
        .all(|&b| b == 0));

    // realloc: one inner realloc, the record follows with the new size.
    let c0 = calls();
    // SAFETY: `p` is live with `l64`.
    let p = unsafe { std::alloc::realloc(p, l64, 100_000) };
    assert_eq!(since(c0), one(|c| c.realloc = 1));
    assert!(!p.is_null());
    assert_eq!(counts(&tracker), [("inner".into(), 2, 100_064)]);

    // A refused alloc and alloc_zeroed: forwarded, null returned, nothing recorded.
    let refused = Layout::from_size_align(REFUSED, 8).unwrap();
    let c0 = calls();
    // SAFETY: non-zero size.
    let n1 = unsafe { std::alloc::alloc(refused) };
    // SAFETY: non-zero size.
    let n2 = unsafe { std::alloc::alloc_zeroed(refused) };
    assert!(n1.is_null() && n2.is_null());
    assert_eq!(
        since(c0),
        one(|c| {
            c.alloc = 1;
            c.zeroed = 1;
        })
    );
    assert_eq!(counts(&tracker), [("inner".into(), 2, 100_064)]);

    // A refused realloc: the old block stays valid and keeps its record and size.
    let l100k = Layout::from_size_align(100_000, 8).unwrap();
    let c0 = calls();
    // SAFETY: `p` is live with `l100k`.
    let q = unsafe { std::alloc::realloc(p, l100k, REFUSED) };
    assert_eq!(since(c0), one(|c| c.realloc = 1));
    assert!(q.is_null());
    assert_eq!(counts(&tracker), [("inner".into(), 2, 100_064)]);
    drop(guard);

    // dealloc: one inner dealloc each; the records leave.
    let c0 = calls();
    // SAFETY: `p` is still live with `l100k` (the failed realloc left it alone).
    unsafe { std::alloc::dealloc(p, l100k) };
    assert_eq!(since(c0), one(|c| c.dealloc = 1));
    assert_eq!(counts(&tracker), [("inner".into(), 1, 64)]);
    let c0 = calls();
    // SAFETY: `z` is live with `l64`.
    unsafe { std::alloc::dealloc(z, l64) };
    assert_eq!(since(c0), one(|c| c.dealloc = 1));
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);

    // Untagged calls are forwarded the same way.
    let c0 = calls();
    let mut v = black_box(Vec::<u8>::with_capacity(10));
    v.extend(std::iter::repeat_n(1, 10_000)); // a few reallocs
    let reallocs = since(c0).realloc;
    drop(v);
    let d = since(c0);
    assert_eq!((d.alloc, d.zeroed, d.dealloc), (1, 0, 1));
    assert!(reallocs >= 1 && d.realloc == reallocs);

    // Tagging many blocks adds no inner call: the record table's memory is the OS's.
    let mut many: Vec<Box<u64>> = Vec::with_capacity(20_000);
    let guard = tracker.scope("many", "counting");
    let c0 = calls();
    for i in 0..20_000 {
        many.push(black_box(Box::new(i)));
    }
    let d = since(c0);
    drop(guard);
    assert_eq!(d, one(|c| c.alloc = 20_000));
    assert_eq!(counts(&tracker), [("many".into(), 20_000, 160_000)]);
    drop(many);
    assert!(tracker.live().is_empty());
    assert_eq!(stats().records, baseline);
    assert!(ALLOC.inner().total.load(Ordering::Relaxed) > total_before + 40_000);
}
