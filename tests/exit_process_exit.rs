//! The exit report runs on `std::process::exit`; a non-zero status is kept.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let env = [
        ("LEAKTRACKER_REPORT", "stderr"),
        ("LEAKTRACKER_EXIT_CODE", "8"),
    ];
    let o = run_fixture(&exe, "exit0", &env);
    let (_, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(8),
        "exit(0) with leaks becomes 8: {err}"
    );
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");

    let o = run_fixture(&exe, "exit3", &env);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "exit(3) is kept: {err}");
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");
}
