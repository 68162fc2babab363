//! The record cap (`set_max_records`): records beyond it are dropped and counted, the
//! user's blocks are still served and usable, `live()` and `stats()` stay consistent, and
//! `track` says `TableFull` when the record cannot be taken.
//!
//! The cap is spread over the table's 64 shards (per shard: `ceil(n / 64)`, at least 1),
//! so which blocks get a record depends on their addresses; the assertions compare
//! `recorded + dropped` with what was attempted, and use `untrack` to find recorded blocks.

mod common;
use common::counts;

use std::hint::black_box;

use leaktracker::{set_max_records, stats, LeakTracker, TrackError, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

const SHARDS: usize = 64;

fn records() -> usize {
    stats().records
}

fn dropped() -> u64 {
    stats().dropped_records
}

#[test]
fn main() {
    assert!(leaktracker::is_installed());
    let t = LeakTracker::new();
    let other = LeakTracker::new();
    let base_records = records();
    let base_dropped = dropped();
    assert_eq!(base_records, 0);

    // ---- 1. One record per shard: fill every shard, count the rest as dropped.
    set_max_records(Some(SHARDS));
    const MAX_ATTEMPTS: usize = 100_000;
    let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(MAX_ATTEMPTS);
    {
        let _s = t.scope("capped", "cap");
        while blocks.len() < 2000 || (records() < SHARDS && blocks.len() < MAX_ATTEMPTS) {
            let i = blocks.len();
            blocks.push(black_box(vec![i as u8; 24]));
        }
    }
    let attempted = blocks.len();
    let recorded = records() - base_records;
    let dropped1 = dropped() - base_dropped;
    assert_eq!(recorded, SHARDS, "every shard holds exactly its cap of 1");
    assert_eq!(recorded as u64 + dropped1, attempted as u64);
    assert_eq!(counts(&t), vec![("capped".into(), recorded, 24 * recorded)]);
    // Every block is served and usable, recorded or not.
    for (i, b) in blocks.iter_mut().enumerate() {
        assert!(b.iter().all(|&x| x == i as u8));
        b.iter_mut().for_each(|x| *x = !(i as u8));
    }
    assert!(blocks
        .iter()
        .enumerate()
        .all(|(i, b)| b.iter().all(|&x| x == !(i as u8))));

    // ---- 2. A full table: `track` of a new block says TableFull and counts it.
    let fresh = black_box(vec![9u8; 100]);
    let d = dropped();
    assert_eq!(t.track(&fresh, "fresh", "cap"), Err(TrackError::TableFull));
    assert_eq!(dropped(), d + 1);
    assert_eq!(records() - base_records, SHARDS);
    assert_eq!(counts(&t), vec![("capped".into(), SHARDS, 24 * SHARDS)]);
    assert!(!t.untrack(&fresh));
    assert_eq!(fresh, vec![9u8; 100]);

    // Find the recorded blocks: `untrack` is true exactly for them.
    let recorded_idx: Vec<usize> = (0..blocks.len())
        .filter(|&i| t.untrack(&blocks[i]))
        .collect();
    assert_eq!(recorded_idx.len(), SHARDS);
    assert_eq!(records() - base_records, 0);
    assert!(t.live().is_empty());
    // Put them back with `track`: each goes to the shard slot it just left.
    for (k, &i) in recorded_idx.iter().enumerate() {
        t.track(&blocks[i], format!("obj-{k}"), "cap").unwrap();
    }
    assert_eq!(records() - base_records, SHARDS);
    let d = dropped();
    // Updating a recorded block in place, or moving it to another tracker, needs no new
    // record: it works in a full table.
    let first = recorded_idx[0];
    t.track(&blocks[first], "renamed", "cap").unwrap();
    other
        .track(&blocks[recorded_idx[1]], "moved", "cap")
        .unwrap();
    assert_eq!(dropped(), d);
    let want: Vec<(String, usize, usize)> = (0..SHARDS)
        .filter(|&k| k != 1)
        .map(|k| {
            let name = if k == 0 {
                "renamed".to_string()
            } else {
                format!("obj-{k}")
            };
            (name, 1, 24)
        })
        .collect();
    assert_eq!(counts(&t), want);
    assert_eq!(counts(&other), vec![("moved".into(), 1, 24)]);
    // A block that never got a record cannot be tracked while the table is full.
    let unrecorded = (0..blocks.len())
        .find(|i| !recorded_idx.contains(i))
        .unwrap();
    assert_eq!(
        t.track(&blocks[unrecorded], "late", "cap"),
        Err(TrackError::TableFull)
    );
    assert_eq!(dropped(), d + 1);

    // ---- 3. Realloc under the cap: a recorded block keeps its record or loses it (counted).
    let before_records = records();
    let before_dropped = dropped();
    for &i in &recorded_idx {
        blocks[i].reserve_exact(1000 - 24);
        assert_eq!(blocks[i].capacity(), 1000);
    }
    for b in blocks.iter_mut().take(500) {
        b.reserve_exact(2000);
    }
    let lost = (before_records - records()) as u64;
    assert_eq!(dropped() - before_dropped, lost);
    eprintln!("cap 64: {attempted} attempted, {dropped1} dropped; realloc lost {lost} of {SHARDS}");
    // Every remaining record has its new size; `untrack` finds exactly those.
    let live_t = t.live();
    let live_other = other.live();
    let listed: usize = live_t
        .iter()
        .chain(&live_other)
        .map(|i| i.allocations)
        .sum();
    assert_eq!(listed, records() - base_records);
    for i in live_t.iter().chain(&live_other) {
        assert_eq!(i.allocations, 1);
        assert!(i.bytes == 1000 || i.bytes == 2024, "{i}");
    }
    let still: usize = recorded_idx
        .iter()
        .filter(|&&i| t.untrack(&blocks[i]) || other.untrack(&blocks[i]))
        .count();
    assert_eq!(still, listed);
    assert_eq!(records(), base_records);
    assert!(t.live().is_empty() && other.live().is_empty());

    // ---- 4. No cap: every record is taken again.
    set_max_records(None);
    let d = dropped();
    let extra: Vec<Vec<u8>> = {
        let _s = t.scope("uncapped", "cap");
        (0..500).map(|i| black_box(vec![i as u8; 40])).collect()
    };
    // The 500 blocks and the outer `Vec` that holds them (made inside the scope).
    assert_eq!(records() - base_records, 501);
    assert_eq!(dropped(), d);
    assert_eq!(
        counts(&t),
        vec![(
            "uncapped".into(),
            501,
            500 * 40 + 500 * std::mem::size_of::<Vec<u8>>()
        )]
    );

    // ---- 5. A larger cap (10 per shard) over a table that already holds records.
    set_max_records(Some(SHARDS * 10 - 5)); // ceil(635 / 64) = 10 per shard
    let before = records();
    let d = dropped();
    let mut more: Vec<Vec<u8>> = Vec::with_capacity(3000);
    {
        let _s = t.scope("capped-10", "cap");
        for i in 0..3000 {
            more.push(black_box(vec![i as u8; 8]));
        }
    }
    let taken = records() - before;
    assert_eq!(taken as u64 + (dropped() - d), 3000);
    eprintln!("cap 10/shard: {taken} of 3000 taken");
    assert!(records() <= SHARDS * 10 + 501, "{}", records());
    let l = t.live();
    assert_eq!(l.len(), 2);
    assert_eq!(
        (l[1].name.as_str(), l[1].allocations, l[1].bytes),
        ("capped-10", taken, 8 * taken)
    );
    assert!(more.iter().enumerate().all(|(i, b)| b == &vec![i as u8; 8]));

    // ---- 6. Freeing everything leaves nothing, whether it was recorded or not.
    drop(blocks);
    drop(extra);
    drop(more);
    drop(fresh);
    assert!(t.live().is_empty());
    assert!(other.live().is_empty());
    assert_eq!(records(), base_records);
    set_max_records(None);
}
