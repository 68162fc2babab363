//! A thread-local first filled inside a scope, still alive when the process exits: `exit`
//! runs the calling thread's thread-local destructors before the exit report, so the
//! report lists nothing.
//!
//! The program under test is this test binary, re-run as a child in the role
//! `thread_local`: it fills a thread-local `Vec<u64>` (1000 items) inside a scope ("tls",
//! "tls"), prints how many leaks a report made then lists, and calls
//! `std::process::exit(0)` with the thread-local still alive. A program's `main` that
//! returns exits the same way on the main thread (`exit` after std's cleanup); the test's
//! `main` runs on a thread of libtest's, which would end (and destroy its thread-locals)
//! before the process exits if the child returned.

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::cell::RefCell;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

thread_local! {
    static CACHE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn child(role: &str) {
    match role {
        "thread_local" => {
            {
                let _scope = TRACKER.scope("tls", "tls");
                CACHE.with(|c| c.borrow_mut().extend(0..1000));
            }
            // Tagged while the thread lives; destroyed before the exit report.
            let live = leaktracker::LeakReport::of_all();
            eprintln!("live before exit: {}", live.leaks().len());
            std::process::exit(0);
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
        "thread_local",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "9"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with("live before exit: 1\n"),
        "tagged while alive: {err}"
    );
    assert!(err.trim_end().ends_with("): no leaks"), "{err}");
}
