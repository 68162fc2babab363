//! No deadlock between capture and resolution: two threads allocate with backtraces on
//! (capturing, taking table locks) while a third resolves reports over and over (taking
//! the backtrace crate's lock and allocating heavily). A watchdog aborts the process if it
//! hangs, so a deadlock fails the test instead of stalling CI.

use leaktracker::report::LeakReport;
use leaktracker::{set_backtraces, Backtraces, LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

#[inline(never)]
fn work(round: usize) -> Vec<Vec<u8>> {
    (0..16)
        .map(|i| black_box(vec![i as u8; 8 + (round * 7 + i) % 200]))
        .collect()
}

#[test]
fn main() {
    set_backtraces(Backtraces::All);
    let done = Arc::new(AtomicBool::new(false));
    {
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() > Duration::from_secs(120) {
                    eprintln!("deadlock: capture and resolution did not finish in 120 s");
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Sized up front: a buffer first grown inside a scope would be tagged.
                let mut kept = Vec::with_capacity(16);
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) || round < 200 {
                    let _s = TRACKER.scope(format!("worker-{t}"), "worker");
                    kept.push(work(round));
                    if kept.len() > 8 {
                        kept.remove(0);
                    }
                    round += 1;
                }
                (round, kept)
            })
        })
        .collect();
    let mut reports = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline || reports < 5 {
        let r = LeakReport::of(&TRACKER);
        assert!(r.leaks().iter().all(|e| e.kind == "worker"));
        let _ = black_box(r.to_string());
        reports += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut live_blocks = 0;
    let mut kept = Vec::new();
    for w in workers {
        let (rounds, k) = w.join().unwrap();
        assert!(rounds >= 200);
        live_blocks += k.len() * 17; // 16 vecs + the Vec holding them, per round kept
        kept.push(k);
    }
    // Every kept block, whatever the verdict makes of the rounds: this checks stacks.
    let r = LeakReport::of(&TRACKER).verdict(leaktracker::Verdict::Strict);
    let total: usize = r.leaks().iter().map(|e| e.allocations).sum();
    assert_eq!(total, live_blocks);
    for e in r.leaks() {
        let with_stack: usize = e.stacks.iter().map(|g| g.blocks).sum();
        assert_eq!(with_stack, e.allocations, "every block has its stack");
    }
    drop(kept);
    assert!(LeakReport::of(&TRACKER).is_empty());
    done.store(true, Ordering::Relaxed);
    assert!(reports >= 5);
}
