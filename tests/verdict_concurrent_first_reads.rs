//! Verdict scenario: a per-unit leak in units that run at once. 16 worker threads, each
//! in a scope (`("worker-N", "worker")`), read 3 chunks of 2000 bytes through one helper;
//! they wait for each other after their first read, so the 16 first chunks are the first
//! 16 blocks made at that stack. Kept blocks that are the first made at their stack are
//! what an initial fill looks like (the first arrivals filling a shared map); here every
//! unit keeps one, which is a leak per unit, whatever the order.
//!
//! - `correct`: every chunk is freed: no leak.
//! - `planted`: each worker keeps its first chunk in a global list: exactly worker-1 ...
//!   worker-16, each 1 block, 2000 B.

mod common;
mod verdict_common;

use leaktracker::LeakTracker;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::Duration;
use verdict_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const WORKERS: usize = 16;
const CHUNK: usize = 2000;

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn read_chunk(i: usize) -> Vec<u8> {
    black_box(vec![i as u8; CHUNK])
}

fn program(mode: &str) {
    let planted = mode == "planted";
    KEPT.lock().unwrap().reserve(WORKERS);
    let tracker = LeakTracker::global();
    let all_read_once = Barrier::new(WORKERS);
    std::thread::scope(|s| {
        for i in 1..=WORKERS {
            let all_read_once = &all_read_once;
            s.spawn(move || {
                let _unit = tracker.scope(format!("worker-{i}"), "worker");
                let mut first = None;
                for k in 0..3 {
                    let chunk = read_chunk(i);
                    if k == 0 {
                        first = Some(chunk);
                        all_read_once.wait();
                    } else {
                        black_box(chunk);
                    }
                }
                if planted {
                    KEPT.lock().unwrap().push(first.unwrap());
                }
            });
        }
    });
    println!("{WORKERS} workers done");
}

#[test]
fn main() {
    if let Some(mode) = child_mode() {
        program(&mode);
        return;
    }
    let t = Duration::from_secs(60);
    all_halves(vec![
        correct_half(t, assert_correct_retaining_nothing),
        planted_half(
            "planted",
            t,
            expect_each(
                (1..=WORKERS).map(|i| format!("worker-{i}")),
                "worker",
                CHUNK as u64,
            ),
        ),
    ]);
}
