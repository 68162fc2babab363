//! A thread spawned inside a scope and still running at exit: std's bookkeeping for it is
//! tagged and cannot be kept out; the report lists it and says that a thread was still
//! running, and how to avoid it.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let o = run_fixture(
        &exe,
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
