//! Backtraces (issue 11): the cost of one captured stack per unwinder, at call depths 8,
//! 32 and 64 (frames between the allocation and `main`'s caller, about), as the median
//! over 5 rounds of (tagged allocation with capture) - (tagged allocation without), per
//! block, 100,000 blocks a round.
//!
//! Usage: `capture-cost [tables|system|frame-pointers ...]` (default: tables system).
//! `CAPTURE_COST_N` (blocks a round, default 100,000), `CAPTURE_COST_ROUNDS` (default 5)
//! and `CAPTURE_COST_DEPTHS` (default `8,32,64`) make it small enough for callgrind.

use std::alloc::{alloc, dealloc, Layout};
use std::hint::black_box;
use std::time::Instant;

use leaktracker::{set_backtrace_depth, set_unwinder, Backtraces, LeakTracker, Unwinder};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

const LAYOUT: Layout = match Layout::from_size_align(16, 8) {
    Ok(l) => l,
    Err(_) => panic!("layout"),
};

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

fn round(n: usize, depth: u32) -> f64 {
    let mut ptrs = Vec::with_capacity(n);
    let t = Instant::now();
    {
        let _s = TRACKER.scope("capture", "bench");
        for _ in 0..n {
            ptrs.push(alloc_at(depth));
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let unwinders: Vec<&str> = if args.is_empty() {
        vec!["tables", "system"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    set_backtrace_depth(leaktracker::DEFAULT_BACKTRACE_DEPTH.max(72));
    let env = |k: &str| std::env::var(k).ok();
    let n: usize = env("CAPTURE_COST_N").and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rounds: usize = env("CAPTURE_COST_ROUNDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let depths: Vec<u32> = env("CAPTURE_COST_DEPTHS")
        .map(|v| v.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![8, 32, 64]);
    for u in unwinders {
        set_unwinder(match u {
            "system" => Unwinder::System,
            "frame-pointers" => Unwinder::FramePointers,
            _ => Unwinder::Tables,
        });
        for &depth in &depths {
            // `main` and the runtime below it add about 6 frames: the walk covers `depth`
            // frames of `alloc_at` plus those.
            let d = depth.saturating_sub(6);
            let (mut off, mut on) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                TRACKER.set_backtraces(Some(Backtraces::Off));
                off.push(round(n, d));
                TRACKER.set_backtraces(Some(Backtraces::All));
                on.push(round(n, d));
            }
            let (off, on) = (median(off), median(on));
            println!(
                "capture-cost unwinder={u} depth={depth} tagged_alloc_ns_off={off:.1} \
                 tagged_alloc_ns_on={on:.1} capture_ns={:.1}",
                on - off
            );
        }
    }
}
