//! A panic in `main`: the report is still made, and std's status 101 is kept.
//!
//! This test has no libtest harness (`harness = false` in `Cargo.toml`): its `fn main` is
//! a real program's. Run by cargo, it re-runs itself as a child with `LT_TEST_ROLE=panic`;
//! the child's `main` leaks a tracked `Vec` of 100 bytes ("connection-1", "database") and
//! a 64-byte block made in a scope ("session-7", "session"), then panics with "boom in
//! main". The panic unwinds out of the main thread's `main` (not a test thread's closure
//! that a harness catches, the path of `tests/exit_process_exit.rs`): std's runtime turns
//! it into status 101, and leaktracker's panic hook records the main thread's panic, for
//! where `exit`'s status cannot be known.

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn main() {
    if role().as_deref() == Some("panic") {
        leak_pair(&TRACKER);
        panic!("boom in main");
    }
    let exe = std::env::current_exe().unwrap();
    let o = command(
        &exe,
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "8"),
        ],
    )
    .env(ROLE, "panic")
    .output()
    .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert_eq!(out, "");
    assert!(err.contains("panicked at"), "{err}");
    assert!(err.contains("boom in main"), "{err}");
    let report = err.find("leaktracker report (pid ").expect("a report");
    assert!(
        report > err.find("boom in main").unwrap(),
        "the report comes after the panic message"
    );
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");
    println!("exit_panic_in_main: ok");
}
