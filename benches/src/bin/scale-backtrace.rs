//! Backtraces (issue 4): the cost of capturing the allocation stack of a tagged block at
//! the default depth, and the time to make a report of 100,000 leaked blocks with
//! backtraces (resolution, JSON, text, the atomic file write).
//!
//! Capture cost: 200,000 tagged 16-byte allocations from a call depth of about 12 frames,
//! with the tracker's backtraces off and then on (`Backtraces::All`), median of 5 rounds
//! each; the difference per block is the capture's cost (a stack walk of raw instruction
//! pointers and the interning of the stack).
//!
//! Report: 100,000 blocks left live in 1,000 resources, allocated from 50 distinct stacks,
//! then `LeakReport::of` (which resolves each distinct frame once), `to_json`, `Display`
//! and `write_to` a `.json` file, each timed, twice (the first pays for loading debug info).
//!
//! Usage: `scale-backtrace`.

use std::alloc::{alloc, dealloc, Layout};
use std::hint::black_box;
use std::time::Instant;

use leaktracker::{Backtraces, LeakReport, LeakTracker};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

const LAYOUT: Layout = match Layout::from_size_align(16, 8) {
    Ok(l) => l,
    Err(_) => panic!("layout"),
};

/// Allocates one block `depth` frames further down the stack.
#[inline(never)]
fn alloc_at(depth: u32) -> *mut u8 {
    if depth == 0 {
        // SAFETY: non-zero size.
        let p = unsafe { alloc(LAYOUT) };
        assert!(!p.is_null());
        return black_box(p);
    }
    black_box(alloc_at(black_box(depth - 1)))
}

fn capture_round(n: usize) -> f64 {
    let mut ptrs = Vec::with_capacity(n);
    let t = Instant::now();
    {
        let _s = TRACKER.scope("capture", "bench");
        for _ in 0..n {
            ptrs.push(alloc_at(8));
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    for p in ptrs {
        // SAFETY: allocated by `alloc_at` with `LAYOUT`.
        unsafe { dealloc(p, LAYOUT) };
    }
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    const N: usize = 200_000;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        TRACKER.set_backtraces(Some(Backtraces::Off));
        off.push(capture_round(N));
        TRACKER.set_backtraces(Some(Backtraces::All));
        on.push(capture_round(N));
    }
    let (off, on) = (median(off), median(on));
    println!(
        "scale-backtrace capture: tagged_alloc_ns_off={off:.1} tagged_alloc_ns_on={on:.1} \
         capture_ns_per_block={:.1} stacks={}",
        on - off,
        leaktracker::stats().stacks
    );

    // 100,000 leaked blocks with backtraces, 1,000 resources, 50 distinct stacks.
    TRACKER.set_backtraces(Some(Backtraces::All));
    let mut leaked = Vec::with_capacity(100_000);
    for r in 0..1_000 {
        let _s = TRACKER.scope(format!("conn-{r}"), ["db", "cache", "session"][r % 3]);
        for k in 0..100 {
            leaked.push(alloc_at((k % 50) as u32));
        }
    }
    let path = std::env::temp_dir().join(format!("scale-backtrace-{}.json", std::process::id()));
    for round in ["cold", "warm"] {
        let t = Instant::now();
        let report = LeakReport::of(&TRACKER);
        let make = ms(t);
        let t = Instant::now();
        let json = report.to_json();
        let to_json = ms(t);
        let t = Instant::now();
        let text = report.to_string();
        let display = ms(t);
        let t = Instant::now();
        report.write_to(&path).expect("writing the report");
        let write = ms(t);
        let blocks: usize = report.leaks().iter().map(|e| e.allocations).sum();
        println!(
            "scale-backtrace report({round}): blocks={blocks} resources={} make_ms={make:.1} \
             to_json_ms={to_json:.1} display_ms={display:.1} write_to_ms={write:.1} total_ms={:.1} \
             json_bytes={} text_bytes={}",
            report.leaks().len(),
            make + to_json + display + write,
            json.len(),
            text.len()
        );
    }
    let _ = std::fs::remove_file(&path);
    for p in leaked {
        // SAFETY: allocated by `alloc_at` with `LAYOUT`.
        unsafe { dealloc(p, LAYOUT) };
    }
}
