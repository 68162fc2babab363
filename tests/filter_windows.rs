//! The dealloc filter has a counter per 16-byte granule of the whole address space (a
//! directory of 128 MiB windows, a leaf of counters per window): blocks 128 MiB apart, the
//! same granule of different windows, have counters of their own. (The filter before was
//! one 128 MiB window for the whole heap: there these blocks shared one byte counter, and
//! the 256th was refused.) 300 such live blocks are all recorded, freeing them leaves
//! nothing behind, and a record can be made there again afterwards. A block above the
//! address space the directory covers is served, not recorded (counted as dropped), and
//! its free goes to the inner allocator.
//!
//! The inner allocator hands out, on request, blocks 128 MiB apart in a reserved,
//! never-touched region, or at an address above 2^47 that no one touches.

use std::alloc::{alloc, dealloc, GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use leaktracker::{stats, LeakTracker, TrackingAllocator};

/// Distance between two blocks sharing a filter counter.
const STRIDE: usize = 128 << 20;
const BLOCKS: usize = 300;

/// A block address above the 47 bits the filter's directory covers (never dereferenced:
/// neither the tracker nor this test touches a block's memory).
const HIGH: usize = (1 << 47) + 0x1000;

thread_local! {
    // Per thread: the test harness's own thread allocates while the test runs, and must
    // not be handed a block of the inaccessible region (it would write to it).
    static ALIAS: Cell<bool> = const { Cell::new(false) };
    static HIGH_NEXT: Cell<bool> = const { Cell::new(false) };
}
static BASE: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `System`, except that while `ALIAS` is set on the calling thread it returns the next block of the region.
struct Aliasing;

// SAFETY: aliasing blocks are distinct, 16-aligned and `STRIDE` apart in a mapping that
// outlives them, so they satisfy every layout of at most 16 bytes and alignment 16 that
// the test asks for; the high block is handed out once, for a request whose memory is
// never touched; everything else goes to `System` unchanged.
unsafe impl GlobalAlloc for Aliasing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if HIGH_NEXT.with(|h| h.replace(false)) {
            return HIGH as *mut u8;
        }
        if ALIAS.with(Cell::get) {
            let k = NEXT.fetch_add(1, SeqCst);
            return (BASE.load(SeqCst) + k * STRIDE) as *mut u8;
        }
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let base = BASE.load(SeqCst);
        if base != 0 && (base..base + BLOCKS * STRIDE).contains(&(ptr as usize)) {
            return; // part of the region, which stays mapped
        }
        if ptr as usize == HIGH {
            return;
        }
        // SAFETY: every other block came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: TrackingAllocator<Aliasing> = TrackingAllocator::new(Aliasing);

fn reserve_region() {
    let len = BLOCKS * STRIDE;
    // SAFETY: an anonymous private mapping with no address hint; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len + STRIDE,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "reserving the region");
    // Start on a STRIDE boundary, so every block has the same low 27 bits.
    BASE.store((p as usize).next_multiple_of(STRIDE), SeqCst);
}

/// Allocates one aliasing block (tagged if a scope is open).
fn aliasing_block() -> *mut u8 {
    let layout = Layout::from_size_align(16, 16).unwrap();
    ALIAS.with(|a| a.set(true));
    // SAFETY: non-zero size.
    let p = unsafe { alloc(layout) };
    ALIAS.with(|a| a.set(false));
    p
}

#[test]
fn main() {
    reserve_region();
    let tracker = LeakTracker::new();
    let layout = Layout::from_size_align(16, 16).unwrap();
    let before = stats();

    let mut blocks: Vec<*mut u8> = Vec::with_capacity(BLOCKS);
    {
        let _s = tracker.scope("aliasing", "test");
        for _ in 0..BLOCKS {
            blocks.push(aliasing_block());
        }
    }
    assert!(blocks.iter().all(|p| !p.is_null()));
    let s = stats();
    assert_eq!(s.records - before.records, BLOCKS, "{s:?}");
    assert_eq!(s.dropped_records, before.dropped_records, "{s:?}");
    let live = tracker.live();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].allocations, live[0].bytes), (BLOCKS, BLOCKS * 16));

    // Free all: every record leaves the table; nothing stays behind.
    for p in blocks {
        // SAFETY: allocated above with `layout`.
        unsafe { dealloc(p, layout) };
    }
    assert_eq!(stats().records, before.records);
    assert!(tracker.live().is_empty());

    // The counters are back to zero: the same granules take records again.
    NEXT.store(0, SeqCst);
    let again = {
        let _s = tracker.scope("aliasing", "test");
        aliasing_block()
    };
    assert_eq!(stats().records, before.records + 1);
    assert_eq!(tracker.live()[0].allocations, 1);
    // SAFETY: allocated above with `layout`.
    unsafe { dealloc(again, layout) };
    assert_eq!(stats().records, before.records);
    assert!(tracker.live().is_empty());

    // Above the directory: served, counted as dropped, not listed; its free goes to the
    // inner allocator, and nothing stays behind.
    let high = {
        let _s = tracker.scope("high", "test");
        HIGH_NEXT.with(|h| h.set(true));
        // SAFETY: non-zero size.
        unsafe { alloc(layout) }
    };
    assert_eq!(high as usize, HIGH);
    let s = stats();
    assert_eq!(s.records, before.records, "{s:?}");
    assert_eq!(s.dropped_records, before.dropped_records + 1, "{s:?}");
    assert!(tracker.live().is_empty());
    // SAFETY: allocated above with `layout`.
    unsafe { dealloc(high, layout) };
    assert_eq!(stats().records, before.records);
}
