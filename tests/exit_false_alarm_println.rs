//! The first `println!` of a process, inside a scope, allocates stdout's buffer: it is
//! allocated at start-up instead, so neither a report made before exit nor the exit
//! report lists anything. (std frees that buffer at exit anyway.)

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let o = run_fixture(
        &exe,
        "println",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "9"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(out, "hello from inside a scope\n");
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with("live after the first println: 0\n"),
        "{err}"
    );
    assert!(err.trim_end().ends_with("): no leaks"), "{err}");
}
