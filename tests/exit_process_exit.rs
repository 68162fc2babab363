//! The exit report runs on `std::process::exit`; a non-zero status is kept.
//!
//! The program under test is this test binary, re-run as a child in a role: `exit0` and
//! `exit3` leak a tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte
//! block made in a scope ("session-7", "session"), then call `std::process::exit(0)` and
//! `std::process::exit(3)` from the test.

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    let status = match role {
        "exit0" => 0,
        "exit3" => 3,
        other => panic!("unknown role {other}"),
    };
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    {
        let _scope = TRACKER.scope("session-7", "session");
        black_box(Box::leak(black_box(Box::new([1u8; 64]))));
    }
    std::process::exit(status);
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let env = [
        ("LEAKTRACKER_REPORT", "stderr"),
        ("LEAKTRACKER_EXIT_CODE", "8"),
    ];
    let o = run_self("exit0", &env);
    let (_, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(8),
        "exit(0) with leaks becomes 8: {err}"
    );
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");

    let o = run_self("exit3", &env);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "exit(3) is kept: {err}");
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");
}
