//! Verdict scenario: a tokio multi-thread runtime with 2 workers runs 200 jobs, each under
//! `instrument` (`("task-N", "job")`). The jobs use channels and maps created outside them:
//! a bounded mpsc to a consumer task, a global unbounded mpsc (its sender in a static, as an
//! event bus) to a collector task, broadcast, watch, `Notify` and a global stats map; and
//! inside them oneshot, `JoinSet`, `yield_now`, `spawn_blocking` and `time::sleep`. The
//! runtime is dropped before `main` returns, as `#[tokio::main]` does.
//!
//! - `correct`: no leak, status 0, and what was judged not a leak summarised.
//! - `planted`: every 10th job keeps its 7777-byte body in a global map (created empty):
//!   exactly task-10, task-20, ... task-200, each 1 block, 7777 B.

mod common;
mod verdict_common;

use leaktracker::LeakTracker;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};
use tokio::task::JoinSet;
use verdict_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const JOBS: usize = 200;
/// Each job's body: a distinctive size, so a planted one is recognised exactly.
const BODY: usize = 7777;

/// A job's event, sent on the global bus.
#[derive(Debug)]
struct Event {
    job: usize,
    what: String,
}

/// The global event bus: its sender lives in a static, so the channel (and the blocks it
/// grew while jobs sent on it) lives until the process ends.
static EVENTS: OnceLock<mpsc::UnboundedSender<Event>> = OnceLock::new();
/// Counters per job class, created before the jobs run; the jobs add the keys.
static STATS: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);
/// Where `planted` keeps every 10th job's body. Created empty.
static KEPT: LazyLock<Mutex<HashMap<usize, Vec<u8>>>> = LazyLock::new(Default::default);

/// What the jobs share, all created outside them.
#[derive(Clone)]
struct Shared {
    work: mpsc::Sender<Vec<u8>>,
    news: broadcast::Sender<usize>,
    progress: watch::Sender<usize>,
    seen: watch::Receiver<usize>,
    notify: Arc<Notify>,
    planted: bool,
}

async fn job(i: usize, s: Shared) -> usize {
    let body = black_box(vec![i as u8; BODY]);
    // Bounded mpsc: a slice of the body to the consumer.
    s.work.send(body[..64].to_vec()).await.unwrap();
    // Unbounded mpsc: the global bus.
    EVENTS
        .get()
        .unwrap()
        .send(Event {
            job: i,
            what: format!("task-{i} started"),
        })
        .unwrap();
    // oneshot + spawn_blocking: a checksum computed off the workers.
    let (tx, rx) = oneshot::channel();
    let copy = body.clone();
    let blocking = tokio::task::spawn_blocking(move || {
        let sum: usize = copy.iter().map(|b| *b as usize).sum();
        let _ = tx.send(sum);
    });
    let sum = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the checksum in time")
        .unwrap();
    blocking.await.unwrap();
    // JoinSet: three sub-tasks that sleep a little.
    let mut set = JoinSet::new();
    for k in 0..3usize {
        set.spawn(async move {
            tokio::time::sleep(Duration::from_millis(1 + (k as u64))).await;
            vec![k as u8; 100 + k].len()
        });
    }
    let mut subs = 0;
    while let Some(r) = set.join_next().await {
        subs += r.unwrap();
    }
    tokio::task::yield_now().await;
    // broadcast, watch, Notify.
    let _ = s.news.send(i);
    s.progress.send_modify(|p| *p += 1);
    let mut seen = s.seen.clone();
    let progress = *seen.borrow_and_update();
    s.notify.notify_one();
    tokio::time::sleep(Duration::from_millis((i % 3) as u64)).await;
    // The global stats map: a key per job class.
    *STATS
        .lock()
        .unwrap()
        .entry(format!("class-{}", i % 8))
        .or_insert(0) += 1;
    tokio::task::yield_now().await;
    EVENTS
        .get()
        .unwrap()
        .send(Event {
            job: i,
            what: format!("task-{i} done after {progress}"),
        })
        .unwrap();
    if s.planted && i.is_multiple_of(10) {
        KEPT.lock().unwrap().insert(i, body);
    } else {
        drop(body);
    }
    sum + subs
}

fn program(mode: &str) {
    let tracker = LeakTracker::global();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        LazyLock::force(&STATS);
        LazyLock::force(&KEPT);
        let (work, mut work_rx) = mpsc::channel::<Vec<u8>>(16);
        let consumer = tokio::spawn(async move {
            let mut n = 0;
            while let Some(v) = work_rx.recv().await {
                n += v.len();
            }
            n
        });
        let (events, mut events_rx) = mpsc::unbounded_channel::<Event>();
        EVENTS.set(events).unwrap();
        // Runs until the runtime is dropped (the bus's sender never drops).
        tokio::spawn(async move {
            let mut last = 0;
            while let Some(e) = events_rx.recv().await {
                last = e.job + e.what.len();
            }
            last
        });
        let (news, mut news_rx) = broadcast::channel::<usize>(64);
        let listener = tokio::spawn(async move {
            let mut n = 0;
            loop {
                match news_rx.recv().await {
                    Ok(_) => n += 1,
                    Err(broadcast::error::RecvError::Lagged(k)) => n += k as usize,
                    Err(broadcast::error::RecvError::Closed) => break n,
                }
            }
        });
        let (progress, seen) = watch::channel(0usize);
        let notify = Arc::new(Notify::new());
        let waiter = {
            let notify = notify.clone();
            tokio::spawn(async move {
                loop {
                    notify.notified().await;
                }
            })
        };
        let shared = Shared {
            work,
            news,
            progress,
            seen,
            notify,
            planted: mode == "planted",
        };
        let handles: Vec<_> = (1..=JOBS)
            .map(|i| {
                tokio::spawn(tracker.instrument(job(i, shared.clone()), format!("task-{i}"), "job"))
            })
            .collect();
        drop(shared);
        let all = async {
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            total
        };
        let total = tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("the jobs finish in time");
        let consumed = tokio::time::timeout(Duration::from_secs(10), consumer)
            .await
            .expect("the consumer ends")
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(10), listener)
            .await
            .expect("the listener ends")
            .unwrap();
        waiter.abort();
        println!("{JOBS} jobs: total {total}, consumed {consumed}, heard {heard}");
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
                (10..=JOBS).step_by(10).map(|i| format!("task-{i}")),
                "job",
                BODY as u64,
            ),
        ),
    ]);
}
