//! Verdict scenario: the first units of a kind fill a shared map and then take the
//! longest, so they end last. A tokio multi-thread runtime with 2 workers runs 120 jobs,
//! each under `instrument` (`("job-N", "job")`). Each job adds to a global map of counters
//! created before the jobs run, keyed by its class (`class-{N % 8}`): the first job of
//! each class allocates that key, which the map keeps for the rest of the process. Jobs
//! 1–8 (one per class) then wait 300 ms on a slow backend; the others finish at once. So
//! the eight key holders end after every other job: by the order in which units ended
//! their keys look like retention at the end of the run, by the order in which they
//! started, they are the first units' warm-up — which they are.
//!
//! - `correct`: no leak, status 0, the keys judged not a leak.
//! - `planted`: every 10th job also keeps its 5555-byte body in a global map (created
//!   empty): exactly job-10, job-20, ... job-120, each 1 block, 5555 B.

mod common;
mod verdict_common;

use leaktracker::LeakTracker;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;
use verdict_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const JOBS: usize = 120;
const BODY: usize = 5555;

/// Counters per job class, created before the jobs run; the jobs add the keys.
static COUNTS: LazyLock<Mutex<HashMap<String, u64>>> =
    LazyLock::new(|| Mutex::new(HashMap::with_capacity(64)));
/// Where `planted` keeps every 10th job's body. Created empty.
static KEPT: LazyLock<Mutex<HashMap<usize, Vec<u8>>>> =
    LazyLock::new(|| Mutex::new(HashMap::with_capacity(64)));

async fn job(i: usize, planted: bool) -> usize {
    let body = black_box(vec![i as u8; BODY]);
    *COUNTS
        .lock()
        .unwrap()
        .entry(format!("class-{}", i % 8))
        .or_insert(0) += 1;
    if i <= 8 {
        // The slow backend: the first job of each class ends after all the others.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::task::yield_now().await;
    let n = body.len();
    if planted && i.is_multiple_of(10) {
        KEPT.lock().unwrap().insert(i, body);
    }
    n
}

fn program(mode: &str) {
    let tracker = LeakTracker::global();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let planted = mode == "planted";
    rt.block_on(async {
        LazyLock::force(&COUNTS);
        LazyLock::force(&KEPT);
        let handles: Vec<_> = (1..=JOBS)
            .map(|i| tokio::spawn(tracker.instrument(job(i, planted), format!("job-{i}"), "job")))
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        println!("{JOBS} jobs: {total} bytes seen");
    });
    drop(rt);
}

#[test]
fn main() {
    if let Some(mode) = child_mode() {
        program(&mode);
        return;
    }
    let t = Duration::from_secs(120);
    all_halves(vec![
        correct_half(t, assert_correct),
        planted_half(
            "planted",
            t,
            expect_each(
                (10..=JOBS).step_by(10).map(|i| format!("job-{i}")),
                "job",
                BODY as u64,
            ),
        ),
    ]);
}
