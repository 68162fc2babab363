//! A pending instrumented future dropped with a scope open in it leaves no tag on the
//! dropping thread: what that thread keeps afterwards, until exit, is nobody's leak. The
//! child's exit report (with an exit code for leaks) shows only the blocks the task and its
//! scope really kept.

mod common;
use common::*;

use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: leaktracker::LeakTracker = leaktracker::LeakTracker::new();

/// What the child keeps until exit, allocated after the task is gone.
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

fn child(drop_on_other_thread: bool) {
    let waker = Waker::from(Arc::new(NoopWaker));
    let mut cx = Context::from_waker(&waker);
    let mut task = Box::pin(TRACKER.instrument(
        async {
            let _s = TRACKER.scope("request-scope", "scope");
            std::mem::forget(black_box(vec![1u8; 40]));
            std::future::poll_fn(|_| Poll::<()>::Pending).await;
        },
        "request",
        "task",
    ));
    assert!(task.as_mut().poll(&mut cx).is_pending());
    assert!(task.as_mut().poll(&mut cx).is_pending());
    if drop_on_other_thread {
        // A pending future may be dropped on any thread: keep the scope out of it by
        // wrapping the future (the scope is inside, so it is not `Send`; the thread only
        // borrows it for the drop).
        let task = std::sync::Mutex::new(Some(SendAnyway(task)));
        std::thread::scope(|s| {
            s.spawn(|| {
                drop(task.lock().unwrap().take());
                // This thread keeps 500 bytes until exit.
                KEPT.lock().unwrap().push(black_box(vec![2u8; 500]));
            });
        });
    } else {
        drop(task);
    }
    // The dropping thread keeps 1000 bytes until exit: untagged.
    KEPT.lock().unwrap().push(black_box(vec![3u8; 1000]));
}

/// Lets the test drop the future on another thread while this one waits (the future is
/// never used again here).
struct SendAnyway<T>(T);
// SAFETY: the value is only dropped by the other thread while the owning thread waits in
// `thread::scope`; nothing it holds is thread-bound except the scope guard, whose drop only
// touches the dropping thread's own tag state and the resource's atomic hold count.
unsafe impl<T> Send for SendAnyway<T> {}

#[test]
fn main() {
    match role().as_deref() {
        Some("same-thread") => return child(false),
        Some("other-thread") => return child(true),
        _ => {}
    }
    for role in ["same-thread", "other-thread"] {
        let dir = temp_dir(&format!("scope_await_dropped_exit-{role}"));
        let report = dir.join("r.json");
        let o = run_self(
            role,
            &[
                ("LEAKTRACKER_REPORT", report.to_str().unwrap()),
                ("LEAKTRACKER_EXIT_CODE", "3"),
            ],
        );
        let (out, err) = text(&o);
        // The scope's 40-byte block is a real leak; nothing else is.
        assert_eq!(o.status.code(), Some(3), "{role}: {out}{err}");
        let j = read_json(&report);
        let leaks: Vec<(String, u64, u64)> = j["leaks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["name"].as_str().unwrap().to_string(),
                    l["allocations"].as_u64().unwrap(),
                    l["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(leaks, [("request-scope".to_string(), 1, 40)], "{role}: {j}");
    }
}
