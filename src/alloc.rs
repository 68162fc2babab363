//! `TrackingAllocator<A>`: the thin `GlobalAlloc` that forwards to `A` and records tagged
//! blocks.
//!
//! The untagged fast path is one thread-local read on `alloc` and one atomic load of the
//! filter on `dealloc`: no lock, no allocation, no system call. Everything else is out of
//! line. Nothing on these paths can panic or allocate through this allocator.

use std::alloc::{GlobalAlloc, Layout, System};

use crate::guard::{self, State};
use crate::records;
use crate::resource;
use crate::scope;

/// A global allocator that forwards every call to `inner` and records the blocks that
/// [`LeakTracker`](crate::LeakTracker) tags.
///
/// ```
/// #[global_allocator]
/// static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
/// # fn main() {}
/// ```
///
/// Wrapping another allocator works the same way:
/// `TrackingAllocator::new(mimalloc::MiMalloc)`.
#[derive(Debug, Default)]
pub struct TrackingAllocator<A: GlobalAlloc = System> {
    inner: A,
}

impl<A: GlobalAlloc> TrackingAllocator<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        TrackingAllocator { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

impl TrackingAllocator<System> {
    /// Wraps the system allocator.
    pub const fn system() -> TrackingAllocator<System> {
        TrackingAllocator { inner: System }
    }
}

/// The bookkeeping half of a flagged `alloc`: the thread has a tag, or a flag.
#[inline(always)]
fn on_alloc(st: State, ptr: *mut u8, size: usize) {
    if st.is_probing() {
        guard::mark_probe_seen();
    }
    if st.is_reentrant() {
        return;
    }
    if let Some(res) = scope::current_tag(st) {
        let stack = resource::hot(res).capture().stack_for(size);
        records::record(ptr, size, res, stack);
    }
}

// SAFETY: every method forwards to `self.inner` with the caller's arguments unchanged and
// returns its result unchanged, so `A`'s `GlobalAlloc` guarantees carry over; the
// bookkeeping around the calls never touches the user's blocks, never allocates through
// the global allocator (its memory comes from `mmap`) and never unwinds.
unsafe impl<A: GlobalAlloc> GlobalAlloc for TrackingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let st = guard::state();
        if st.is_plain() {
            // The untagged fast path: a tail call, no frame of our own.
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
            return unsafe { self.inner.alloc(layout) };
        }
        // SAFETY: as above.
        unsafe { self.alloc_flagged(st, layout, false) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let st = guard::state();
        if st.is_plain() {
            // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract for `layout`.
            return unsafe { self.inner.alloc_zeroed(layout) };
        }
        // SAFETY: as above.
        unsafe { self.alloc_flagged(st, layout, true) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if records::maybe_recorded(ptr) {
            // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
            return unsafe { self.dealloc_recorded(ptr, layout) };
        }
        // SAFETY: `ptr` was returned by `self.inner` with this `layout` (the caller's
        // `GlobalAlloc::dealloc` contract; every block we hand out comes from `inner`).
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A block keeps its tag, or its lack of one: an untagged block never becomes tagged.
        if !records::maybe_recorded(ptr) {
            // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
            return unsafe { self.inner.realloc(ptr, layout, new_size) };
        }
        // SAFETY: as above; the record moves with the block.
        unsafe { self.realloc_recorded(ptr, layout, new_size) }
    }
}

impl<A: GlobalAlloc> TrackingAllocator<A> {
    /// `alloc` / `alloc_zeroed` when the thread has a tag or a flag.
    ///
    /// # Safety
    /// * The caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_flagged(&self, st: State, layout: Layout, zeroed: bool) -> *mut u8 {
        // SAFETY: the caller upholds the contract.
        let ptr = unsafe {
            if zeroed {
                self.inner.alloc_zeroed(layout)
            } else {
                self.inner.alloc(layout)
            }
        };
        if !ptr.is_null() {
            on_alloc(st, ptr, layout.size());
        }
        ptr
    }

    /// `dealloc` of a block that may have a record: the record goes first, since after
    /// the inner free another thread may get the same address.
    ///
    /// # Safety
    /// * The caller upholds `GlobalAlloc::dealloc`'s contract.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_recorded(&self, ptr: *mut u8, layout: Layout) {
        records::forget(ptr);
        // SAFETY: `ptr` was returned by `self.inner` with this `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }
}

impl<A: GlobalAlloc> TrackingAllocator<A> {
    /// `realloc` of a block that may have a record: the record is taken out before the
    /// inner realloc (which frees the old address for other threads) and put back at the
    /// new address, or at the old one if the realloc failed.
    ///
    /// # Safety
    /// * The arguments must satisfy `GlobalAlloc::realloc`'s contract for `self.inner`.
    #[cold]
    #[inline(never)]
    unsafe fn realloc_recorded(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let taken = records::take(ptr);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if let Some(rec) = taken {
            if new.is_null() {
                let old_size = rec.size();
                records::put(ptr, rec, old_size);
            } else {
                records::put(new, rec, new_size);
            }
        }
        new
    }
}
