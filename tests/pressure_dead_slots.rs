//! Under memory pressure, new resources reuse dead slots before giving up, and the ones
//! that still cannot be made are counted (`Stats::dropped_resources`) and named in reports.
//!
//! The child re-run of this binary serves its heap from a bump arena in its own `.bss`,
//! then limits its address space (`RLIMIT_AS`) to what it has mapped plus 128 KiB: the
//! heap keeps working, but the registry cannot map another chunk of resource slots
//! (256 KiB). It first leaves 20,000 dead, unreclaimed resource slots behind (20,000 scopes
//! whose blocks were freed), then opens 20,000 new scopes under the limit: each must tag
//! its block. Then it opens scopes until no slot is left, and those must be counted.

mod common;
use common::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use leaktracker::{stats, LeakReport, LeakTracker, TrackingAllocator};

/// Bytes of the arena (it never frees: the reports at the end, which judge every one of
/// the ~40,000 resources several times, need room too).
const ARENA: usize = 256 << 20;

#[repr(C, align(4096))]
struct Space(UnsafeCell<[u8; ARENA]>);

// SAFETY: every byte of the arena is handed out at most once while in use (a bump pointer
// advanced with compare-exchange; `map_filter_leaves` moves it back only over blocks it
// freed at once, on the one thread running), so no two users share a byte through it.
unsafe impl Sync for Space {}

static SPACE: Space = Space(UnsafeCell::new([0; ARENA]));
/// Offset of the next free byte of the arena.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Set in the child: new blocks come from the arena.
static ARENA_ON: AtomicBool = AtomicBool::new(false);

/// System until `ARENA_ON`, then a bump arena that never frees (and never maps memory).
struct Arena;

fn in_arena(ptr: *mut u8) -> bool {
    let start = SPACE.0.get() as usize;
    (start..start + ARENA).contains(&(ptr as usize))
}

// SAFETY: arena blocks are distinct ranges of `SPACE`, aligned as asked and never reused;
// every other block comes from and goes back to `System`.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !ARENA_ON.load(Ordering::Relaxed) {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc(layout) };
        }
        let align = layout.align().max(16);
        let start = SPACE.0.get() as usize;
        let mut cur = NEXT.load(Ordering::Relaxed);
        loop {
            let at = (start + cur).next_multiple_of(align) - start;
            let end = at + layout.size().max(1);
            if end > ARENA {
                return std::ptr::null_mut();
            }
            match NEXT.compare_exchange(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                // SAFETY: `at < end <= ARENA`: inside `SPACE`.
                Ok(_) => return unsafe { SPACE.0.get().cast::<u8>().add(at) },
                Err(now) => cur = now,
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !in_arena(ptr) {
            // SAFETY: not an arena block, so `System` returned it with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOC: TrackingAllocator<Arena> = TrackingAllocator::new(Arena);

/// This process's mapped address space in bytes (`VmSize`).
fn vm_size() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kb: u64 = line["VmSize:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb << 10
}

fn limit_address_space(bytes: u64) {
    let r = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: `r` is a valid rlimit; setrlimit has no other preconditions.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &r) }, 0);
}

const N: usize = 20_000;

/// The dealloc filter maps a leaf (8 MiB) for each 128 MiB window of the address space on
/// the window's first tagged block. The arena spans two or three windows, wherever the
/// loader put `.bss`: one tagged block at the start of each window after the current
/// position, freed at once, maps them all now, before the limit. (Without it, the run
/// failed when the blocks of the later phases crossed into a new window: their leaf could
/// not be mapped under the limit, and they were dropped.) The bump pointer is put back,
/// so those freed bytes are handed out again later.
fn map_filter_leaves() {
    const WINDOW: usize = 128 << 20;
    let start = SPACE.0.get() as usize;
    let saved = NEXT.load(Ordering::Relaxed);
    let mut w = (start + saved).next_multiple_of(WINDOW);
    while w + 64 < start + ARENA {
        NEXT.store(w - start, Ordering::Relaxed);
        drop(black_box(Box::new([0u8; 32])));
        w += WINDOW;
    }
    NEXT.store(saved, Ordering::Relaxed);
}

fn child() {
    ARENA_ON.store(true, Ordering::Relaxed);
    let t = LeakTracker::new();

    // Record-table shards grow to hold 100,000 records spread over every shard, so that
    // later phases need no table memory (only resource slots are short of it).
    {
        let mut warm: Vec<Box<[u8; 32]>> = Vec::with_capacity(100_000);
        let _s = t.scope("warm-up", "warm-up");
        for i in 0..100_000u32 {
            warm.push(black_box(Box::new([i as u8; 32])));
        }
        assert_eq!(stats().records, 100_000);
        map_filter_leaves();
    }
    assert_eq!(stats().records, 0);

    // 20,000 scopes whose blocks are then freed: dead slots, not reclaimed yet.
    let mut kept: Vec<Box<[u8; 32]>> = Vec::with_capacity(N);
    for i in 0..N {
        let _s = t.scope("first", "dead");
        kept.push(black_box(Box::new([i as u8; 32])));
    }
    assert_eq!(stats().records, N);
    drop(kept);
    assert_eq!(stats().records, 0);
    assert!(stats().resources >= N, "{:?}", stats());

    // From here on the OS maps nothing new.
    let before = stats();
    limit_address_space(vm_size() + (128 << 10));
    assert!(
        leaktracker::is_installed(),
        "allocation works under the limit"
    );

    // 20,000 new scopes: each tags its block, in a dead slot reclaimed for it.
    let mut second: Vec<Box<[u8; 32]>> = Vec::with_capacity(N);
    for i in 0..N {
        let _s = t.scope("second", "reused");
        second.push(black_box(Box::new([i as u8; 32])));
    }
    let after = stats();
    assert_eq!(after.records, N, "{before:?} -> {after:?}");
    assert_eq!(after.dropped_records, before.dropped_records);
    assert_eq!(after.dropped_resources, 0, "{after:?}");
    let live = t.live();
    assert_eq!(live.len(), N);
    assert!(live
        .iter()
        .all(|i| i.name == "second" && i.allocations == 1 && i.bytes == 32));
    drop(live);

    // Scopes until no slot is left (no dead one to reclaim, no memory for more): the
    // rest tag nothing, and are counted.
    let mut third: Vec<Box<[u8; 32]>> = Vec::with_capacity(N);
    let mut tagged = 0;
    while third.len() < N && stats().dropped_resources < 100 {
        let records = stats().records;
        let _s = t.scope("third", "full");
        third.push(black_box(Box::new([7u8; 32])));
        tagged += stats().records - records;
    }
    let end = stats();
    assert_eq!(end.dropped_resources, 100, "{end:?}");
    assert_eq!(end.records, N + tagged, "{end:?}");
    assert_eq!(third.len(), tagged + 100, "every block is served");
    assert!(third.iter().all(|b| b[31] == 7));

    // Every report says so.
    let report = LeakReport::of(&t);
    let text = report.to_string();
    let note = "100 resource(s) could not be created";
    assert!(
        text.contains(note),
        "{}",
        &text[text.len().saturating_sub(2000)..]
    );
    assert!(report.notes().iter().any(|n| n.contains(note)));
    assert!(LeakReport::of_all().to_string().contains(note));
    println!("child done: tagged {tagged} more, then 100 counted");
}

#[test]
fn main() {
    if role().as_deref() == Some("child") {
        return child();
    }
    let o = run_self("child", &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{:?}\n{out}\n{err}", o.status);
    assert!(out.contains("child done"), "{out}\n{err}");
}
