//! Leaks made in a scope on another thread are in the exit report.
//!
//! The program under test is this test binary, re-run as a child in the role `thread`: it
//! spawns a thread that leaks a 48-byte boxed slice made in a scope ("worker-1",
//! "worker"), and joins it.

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "thread" => {
            std::thread::spawn(|| {
                let _scope = TRACKER.scope("worker-1", "worker");
                black_box(Box::leak(black_box(vec![3u8; 48]).into_boxed_slice()));
            })
            .join()
            .unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let dir = temp_dir("exit_other_threads");
    let path = dir.join("r.json");
    let o = run_self(
        "thread",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_EXIT_CODE", "2"),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let j = read_json(&path);
    let leaks = j["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{j}");
    assert_eq!(leaks[0]["name"], "worker-1");
    assert_eq!(leaks[0]["kind"], "worker");
    assert_eq!(leaks[0]["allocations"], 1);
    assert_eq!(leaks[0]["bytes"], 48);
}
