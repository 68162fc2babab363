//! Scale: the cost of *untagged* alloc/free pairs while many tagged blocks are live.
//!
//! A program that tags a large set of long-lived blocks (a cache, a pool) must not pay for
//! it on every other allocation: a free of an untagged block should be decided by the
//! lock-free filter without taking a shard lock. For 0, 10,000, 100,000 and 1,000,000
//! live tagged blocks (16–256 bytes, in 1,000 resources, allocated among untagged ones as
//! a real heap mixes them) this prints the median time of an untagged alloc/free pair of the same sizes, through
//! leaktracker and straight to `System` (same heap, same state), and their ratio.
//!
//! Usage: `scale-mixed [PAIRS] [TAGGED...]` (default 1000000 and 0 10000 100000 1000000).

use std::alloc::{alloc, dealloc, GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

use leaktracker::LeakTracker;
use leaktracker_bench::Rng;

/// Frees `p` through the global allocator, or straight to `System` with `direct`.
///
/// # Safety
/// `p` was allocated with `l` by the same route.
unsafe fn free(p: *mut u8, l: Layout, direct: bool) {
    // SAFETY: the caller's promise.
    unsafe {
        if direct {
            System.dealloc(p, l)
        } else {
            dealloc(p, l)
        }
    }
}

/// `pairs` alloc/free pairs of 16–256 bytes (the sizes of the tagged blocks, so the churn
/// reuses the heap they live in), with a ring of 1,000 live blocks.
///
/// With `direct`, the pairs call `System` straight, bypassing the global allocator: the
/// same heap in the same state, without leaktracker, as the baseline.
#[inline(never)]
fn small_churn(seed: u64, pairs: u64, direct: bool) -> u64 {
    let mut rng = Rng::new(seed);
    let mut ring: Vec<Option<(*mut u8, Layout)>> = vec![None; 1_000];
    let mut sum = 0u64;
    for _ in 0..pairs {
        let l = Layout::from_size_align(16 + rng.below(241) as usize, 8).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe {
            if direct {
                System.alloc(l)
            } else {
                alloc(l)
            }
        };
        assert!(!p.is_null());
        // SAFETY: `p` is a live block of at least 16 bytes.
        unsafe { p.write(l.size() as u8) };
        let slot = rng.below(1_000) as usize;
        if let Some((q, ql)) = ring[slot].replace((p, l)) {
            // SAFETY: `q` is live, allocated with `ql`, its first byte written.
            unsafe {
                sum = sum.wrapping_add(u64::from(q.read()));
                free(q, ql, direct);
            }
        }
    }
    for (q, ql) in ring.into_iter().flatten() {
        // SAFETY: as above.
        unsafe { free(q, ql, direct) };
    }
    sum
}

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pairs = args.first().copied().unwrap_or(1_000_000);
    let counts = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![0, 10_000, 100_000, 1_000_000]
    };
    for tagged in counts {
        let mut rng = Rng::new(tagged ^ 0x5eed);
        let resources = 1_000.min(tagged.max(1));
        let per = tagged / resources;
        // Tagged blocks interleaved with untagged ones of the same sizes, which are freed
        // again: the tagged ones end up spread over the heap the churn reuses.
        let mut held: Vec<(*mut u8, Layout)> = Vec::with_capacity(tagged as usize);
        let mut spacers: Vec<(*mut u8, Layout)> = Vec::with_capacity(tagged as usize);
        for r in 0..resources {
            let name = format!("cache-{r}");
            for _ in 0..per {
                let l = Layout::from_size_align(16 + rng.below(241) as usize, 8).unwrap();
                {
                    let _s = TRACKER.scope(name.clone(), "mixed");
                    // SAFETY: non-zero size.
                    let p = unsafe { alloc(l) };
                    assert!(!p.is_null());
                    held.push((p, l));
                }
                // SAFETY: non-zero size.
                let p = unsafe { alloc(l) };
                assert!(!p.is_null());
                spacers.push((p, l));
            }
        }
        for (p, l) in spacers {
            // SAFETY: allocated above with `l`.
            unsafe { dealloc(p, l) };
        }
        let live: usize = TRACKER.live().iter().map(|i| i.allocations).sum();
        assert_eq!(live as u64, per * resources);
        // Paired, alternating runs: through leaktracker, then straight to System.
        let (mut lt, mut sys) = (Vec::new(), Vec::new());
        for run in 0..5 {
            for (direct, out) in [(false, &mut lt), (true, &mut sys)] {
                let t = Instant::now();
                black_box(small_churn(run, pairs, direct));
                out.push(t.elapsed().as_nanos() as f64 / pairs as f64);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (lt, sys) = (median(&mut lt), median(&mut sys));
        println!(
            "scale-mixed tagged_live={} pair_ns_median={lt:.1} system_pair_ns_median={sys:.1} ratio={:.3} records={}",
            per * resources,
            lt / sys,
            leaktracker::stats().records
        );
        for (p, l) in held {
            // SAFETY: allocated above with `l`.
            unsafe { dealloc(p, l) };
        }
    }
}
