//! A panic in `main`: the report is still made, and std's status 101 is kept.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let o = run_fixture(
        &exe,
        "panic",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "8"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(err.contains("panicked at"), "{err}");
    assert!(err.contains("boom in main"), "{err}");
    let report = err.find("leaktracker report (pid ").expect("a report");
    assert!(
        report > err.find("boom in main").unwrap(),
        "the report comes after the panic message"
    );
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");
}
