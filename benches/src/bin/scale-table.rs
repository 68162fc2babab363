//! Scale: the record table growing to 10,000,000 tagged blocks of 16 bytes: time per
//! tagged allocation (against the same allocations untagged), table memory per record,
//! RSS, at every million; 0 bytes of table per untagged block; and the cost of untagged
//! allocations freed while the table is full.
//!
//! Usage: `scale-table [BLOCKS]` (default 10000000).

use std::alloc::{alloc, dealloc, Layout};
use std::time::Instant;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

const BLOCK: Layout = match Layout::from_size_align(16, 8) {
    Ok(l) => l,
    Err(_) => panic!("layout"),
};

fn alloc_n(ptrs: &mut Vec<*mut u8>, n: usize) -> u128 {
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc(BLOCK) };
        assert!(!p.is_null());
        ptrs.push(p);
    }
    t.elapsed().as_nanos()
}

fn free_all(ptrs: &mut Vec<*mut u8>) -> u128 {
    let t = Instant::now();
    for p in ptrs.drain(..) {
        // SAFETY: allocated by `alloc_n` with `BLOCK`, freed once.
        unsafe { dealloc(p, BLOCK) };
    }
    t.elapsed().as_nanos()
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let step = (total / 10).max(1);
    // The holder is allocated outside any scope: untagged.
    let mut ptrs: Vec<*mut u8> = Vec::with_capacity(total);

    // Untagged: the same allocations, no scope. The table must not grow.
    let before = leaktracker::stats();
    let mut untagged_ns = Vec::new();
    while ptrs.len() < total {
        untagged_ns.push(alloc_n(&mut ptrs, step) as f64 / step as f64);
    }
    let after = leaktracker::stats();
    let untagged_free_ns = free_all(&mut ptrs) as f64 / total as f64;
    println!(
        "scale-table untagged blocks={total} ns_per_alloc={:.1} ns_per_free={untagged_free_ns:.1} \
         table_bytes_before={} table_bytes_after={} records_after={}",
        untagged_ns.iter().sum::<f64>() / untagged_ns.len() as f64,
        before.table_bytes,
        after.table_bytes,
        after.records,
    );

    // Tagged: one scope, growing to `total` records.
    let scope = TRACKER.scope("table-growth", "scale");
    let mut min_bpr = f64::MAX;
    let mut max_bpr = 0f64;
    let mut tagged_sum = 0f64;
    while ptrs.len() < total {
        let ns = alloc_n(&mut ptrs, step) as f64 / step as f64;
        tagged_sum += ns;
        let st = leaktracker::stats();
        let bpr = st.table_bytes as f64 / st.records as f64;
        min_bpr = min_bpr.min(bpr);
        max_bpr = max_bpr.max(bpr);
        println!(
            "scale-table tagged records={} ns_per_alloc={ns:.1} table_bytes={} bytes_per_record={bpr:.1} \
             dropped={} rss_kb={}",
            st.records,
            st.table_bytes,
            st.dropped_records,
            leaktracker_bench::rss_kb(),
        );
    }
    drop(scope);
    let st = leaktracker::stats();

    // Untagged blocks freed while the table is full of records: the dealloc filter has one
    // counter per address-hash bucket, so with many records live most buckets are non-zero
    // and untagged frees take the locked lookup.
    let mut others: Vec<*mut u8> = Vec::with_capacity(step);
    let busy_alloc_ns = alloc_n(&mut others, step) as f64 / step as f64;
    let busy_free_ns = free_all(&mut others) as f64 / step as f64;
    println!(
        "scale-table untagged-while-{total}-records-live ns_per_alloc={busy_alloc_ns:.1} \
         ns_per_free={busy_free_ns:.1} (no records live: {:.1} / {untagged_free_ns:.1})",
        untagged_ns.iter().sum::<f64>() / untagged_ns.len() as f64,
    );
    let tagged_free_ns = free_all(&mut ptrs) as f64 / total as f64;
    let end = leaktracker::stats();
    println!(
        "scale-table summary blocks={total} tagged_ns_per_alloc={:.1} untagged_ns_per_alloc={:.1} \
         tagged_ns_per_free={tagged_free_ns:.1} untagged_ns_per_free={untagged_free_ns:.1} \
         bytes_per_record_at_end={:.1} bytes_per_record_min={min_bpr:.1} bytes_per_record_max={max_bpr:.1} \
         records_after_free={} maxrss_kb={}",
        tagged_sum / 10.0,
        untagged_ns.iter().sum::<f64>() / untagged_ns.len() as f64,
        st.table_bytes as f64 / st.records.max(1) as f64,
        end.records,
        leaktracker_bench::max_rss_kb(),
    );
}
