//! A thread-local first filled inside a scope on the main thread: its destructor runs
//! before the exit report, so the report lists nothing.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let o = run_fixture(
        &exe,
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
