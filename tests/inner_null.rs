//! The inner allocator returns null: `TrackingAllocator` returns null too and records
//! nothing; a failed `realloc` leaves the old block and its record as they were.

mod common;
use common::counts;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use leaktracker::{stats, LeakTracker, Trackable, TrackingAllocator};

/// `System`, except that it fails on purpose on the threads that ask it to.
struct Failing;

thread_local! {
    // Const-initialised and without a destructor: readable from the allocator at any time.
    static FAIL: Cell<bool> = const { Cell::new(false) };
}

fn failing() -> bool {
    FAIL.with(Cell::get)
}

// SAFETY: forwards to `System` unchanged, or returns null, which `GlobalAlloc` allows for
// every allocating method.
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if failing() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if failing() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract; every block came from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if failing() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller upholds `realloc`'s contract; the block came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: TrackingAllocator<Failing> = TrackingAllocator::new(Failing);

/// Runs `f` with the inner allocator failing on this thread.
fn with_failures<R>(f: impl FnOnce() -> R) -> R {
    FAIL.with(|c| c.set(true));
    let r = f();
    FAIL.with(|c| c.set(false));
    r
}

/// A raw block of the global allocator, trackable.
struct Raw {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: `ptr` is a live block of the global allocator of `layout.size()` bytes, owned by
// this value (freed only by its `Drop`).
unsafe impl Trackable for Raw {
    fn heap_block(&self) -> Option<(std::ptr::NonNull<u8>, usize)> {
        std::ptr::NonNull::new(self.ptr).map(|p| (p, self.layout.size()))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: allocated with `self.layout` by the global allocator, freed once.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

#[test]
fn main() {
    assert!(leaktracker::is_installed());
    let t = LeakTracker::new();
    let base = stats();
    let layout = Layout::from_size_align(64, 8).unwrap();

    let s = t.scope("scope", "null");
    let kept = Raw {
        // SAFETY: non-zero size.
        ptr: unsafe { std::alloc::alloc(layout) },
        layout,
    };
    assert!(!kept.ptr.is_null());
    assert_eq!(counts(&t), vec![("scope".into(), 1, 64)]);

    // alloc and alloc_zeroed inside the scope: null, nothing recorded.
    let (a, z) = with_failures(|| {
        // SAFETY: non-zero size.
        let a = unsafe { std::alloc::alloc(black_box(layout)) };
        // SAFETY: non-zero size.
        let z = unsafe { std::alloc::alloc_zeroed(black_box(layout)) };
        (a, z)
    });
    assert!(a.is_null() && z.is_null());
    assert_eq!(counts(&t), vec![("scope".into(), 1, 64)]);
    assert_eq!(stats().records, base.records + 1);
    assert_eq!(stats().dropped_records, base.dropped_records);

    // Fallible collection APIs see the failure and the tag stays as it was.
    let mut v: Vec<u8> = Vec::new();
    let r = with_failures(|| v.try_reserve_exact(100));
    assert!(r.is_err());
    assert_eq!(v.capacity(), 0);
    assert_eq!(counts(&t), vec![("scope".into(), 1, 64)]);

    // realloc of a recorded block fails: null, the old block keeps its record and size.
    let mut grown = kept;
    // SAFETY: `grown.ptr` is live with `grown.layout`; 4096 is a valid new size.
    let p = with_failures(|| unsafe { std::alloc::realloc(grown.ptr, grown.layout, 4096) });
    assert!(p.is_null());
    assert_eq!(counts(&t), vec![("scope".into(), 1, 64)]);
    assert_eq!(stats().records, base.records + 1);
    // The old block is intact and still ours: untrack finds its record.
    // SAFETY: the block is live, 64 bytes.
    unsafe { grown.ptr.write_bytes(0xAB, 64) };
    // A shrinking realloc may fail too (the inner allocator is free to say no).
    // SAFETY: as above, 16 is a valid new size.
    let p = with_failures(|| unsafe { std::alloc::realloc(grown.ptr, grown.layout, 16) });
    assert!(p.is_null());
    assert_eq!(counts(&t), vec![("scope".into(), 1, 64)]);
    // Once the inner allocator works again, the same realloc moves the record.
    // SAFETY: as above.
    let p = unsafe { std::alloc::realloc(grown.ptr, grown.layout, 4096) };
    assert!(!p.is_null());
    // The old address was freed by realloc: update in place (no drop of the old value).
    grown.ptr = p;
    grown.layout = Layout::from_size_align(4096, 8).unwrap();
    assert_eq!(counts(&t), vec![("scope".into(), 1, 4096)]);
    // SAFETY: the first 64 bytes were copied by realloc.
    assert!((0..64).all(|i| unsafe { *grown.ptr.add(i) } == 0xAB));

    // A tracked (not scoped) block whose realloc fails keeps its own record too.
    drop(s);
    let mut obj = black_box(vec![1u32; 10]);
    t.track(&obj, "obj", "null").unwrap();
    let r = with_failures(|| obj.try_reserve_exact(1000));
    assert!(r.is_err());
    assert_eq!(
        counts(&t),
        vec![("scope".into(), 1, 4096), ("obj".into(), 1, 40)]
    );
    obj.reserve_exact(1000 - 10);
    assert_eq!(obj.capacity(), 1000);
    assert_eq!(
        counts(&t),
        vec![("scope".into(), 1, 4096), ("obj".into(), 1, 4000)]
    );

    // An untagged block whose realloc fails stays untagged, outside or inside a scope.
    let mut plain = black_box(vec![0u8; 10]);
    {
        let _s = t.scope("other", "null");
        let r = with_failures(|| plain.try_reserve_exact(1 << 20));
        assert!(r.is_err());
        plain.reserve_exact(100);
    }
    assert!(!t.untrack(&plain));
    assert_eq!(stats().records, base.records + 2);

    assert!(t.untrack(&grown));
    assert!(t.untrack(&obj));
    assert!(t.live().is_empty());
    drop((grown, obj, plain, v));
    assert_eq!(stats().records, base.records);
    assert_eq!(stats().dropped_records, base.dropped_records);
}
