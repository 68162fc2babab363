//! LEAKTRACKER_EXIT_CODE: the status changes only when the exit report lists a leak.
//!
//! The program under test is this test binary, re-run as a child in a role: `none`
//! tracks a block and frees it (a correct program), `leak` leaks a tracked `Vec` of 100
//! bytes ("connection-1", "database") and a 64-byte block made in a scope ("session-7",
//! "session").

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "none" => track_and_free(),
        "leak" => {
            let conn = vec![7u8; 100];
            leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
            std::mem::forget(conn);
            let _scope = TRACKER.scope("session-7", "session");
            black_box(Box::leak(black_box(Box::new([1u8; 64]))));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let env = [
        ("LEAKTRACKER_REPORT", "stderr"),
        ("LEAKTRACKER_EXIT_CODE", "7"),
    ];

    // No leak: status 0, a one-line report.
    let o = run_self("none", &env);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.starts_with("leaktracker report (pid "), "{err}");
    assert!(err.trim_end().ends_with("): no leaks"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Leaks: the status becomes 7 and the report lists both.
    let o = run_self("leak", &env);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");
    assert!(err.contains("connection-1"), "{err}");
    assert!(err.contains("session-7"), "{err}");

    // Leaks without an exit code: reported, status stays 0.
    let o = run_self("leak", &[("LEAKTRACKER_REPORT", "stderr")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("connection-1"), "{err}");

    // An exit code alone: no report, one summary line (tests/harden_exit_code_alone.rs).
    let o = run_self("leak", &[("LEAKTRACKER_EXIT_CODE", "255")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(255), "{err}");
    assert!(!err.contains("session-7"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // No variable: no report, status 0.
    let o = run_self("leak", &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(child_stdout(&out), "", "{out}");
}
