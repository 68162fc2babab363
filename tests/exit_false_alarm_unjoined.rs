//! A thread spawned inside a scope and still running at exit: std's bookkeeping for it is
//! tagged and cannot be kept out; the report lists it and says that a thread was still
//! running, and how to avoid it.
//!
//! The program under test is this test binary, re-run as a child in the role `unjoined`:
//! inside a scope ("spawner", "threads") it spawns a thread that parks forever, waits
//! 50 ms and returns without joining it; the process exits with the thread running.

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::time::Duration;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "unjoined" => {
            let _scope = TRACKER.scope("spawner", "threads");
            std::thread::spawn(|| loop {
                std::thread::park();
            });
            std::thread::sleep(Duration::from_millis(50));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let o = run_self(
        "unjoined",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "9"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(9), "{err}");
    assert!(err.contains("kind threads: 1 resource"), "{err}");
    assert!(err.contains("spawner"), "{err}");
    assert!(
        err.contains(
            "note: 1 other thread was still running at exit: blocks they hold, and the bookkeeping of threads \
             spawned inside a scope, stay live until the threads end and are joined: join them before exit"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: std's one-time allocations made inside a scope"),
        "{err}"
    );
}
