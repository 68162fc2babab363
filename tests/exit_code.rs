//! LEAKTRACKER_EXIT_CODE: the status changes only when the exit report lists a leak.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let env = [
        ("LEAKTRACKER_REPORT", "stderr"),
        ("LEAKTRACKER_EXIT_CODE", "7"),
    ];

    // No leak: status 0, a one-line report.
    let o = run_fixture(&exe, "none", &env);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.starts_with("leaktracker report (pid "), "{err}");
    assert!(err.trim_end().ends_with("): no leaks"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Leaks: the status becomes 7 and the report lists both.
    let o = run_fixture(&exe, "leak", &env);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");
    assert!(err.contains("connection-1"), "{err}");
    assert!(err.contains("session-7"), "{err}");

    // Leaks without an exit code: reported, status stays 0.
    let o = run_fixture(&exe, "leak", &[("LEAKTRACKER_REPORT", "stderr")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("connection-1"), "{err}");

    // An exit code alone: no report, one summary line (tests/harden_exit_code_alone.rs).
    let o = run_fixture(&exe, "leak", &[("LEAKTRACKER_EXIT_CODE", "255")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(255), "{err}");
    assert!(!err.contains("session-7"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // No variable: no report, status 0.
    let o = run_fixture(&exe, "leak", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(out, "");
}
