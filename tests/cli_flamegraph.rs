//! `leaktracker flamegraph REPORT.json` draws the leaked bytes of a report made with
//! backtraces as an SVG flame graph; `LEAKTRACKER_REPORT=*.folded` writes the folded
//! stacks it is drawn from; a report without leaks draws nothing and says so.
//!
//! The reports are made by this test binary, re-run as a child in a role: `leak` leaks a
//! tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block made in a
//! scope ("session-7", "session"), both allocated in this file's `leak`; `none` tracks a
//! block and frees it.

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

/// Leaks a tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block
/// made in a scope ("session-7", "session").
fn leak() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    let _scope = TRACKER.scope("session-7", "session");
    black_box(Box::leak(black_box(Box::new([1u8; 64]))));
}

fn child(role: &str) {
    match role {
        "none" => track_and_free(),
        "leak" => leak(),
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let tool = cli();
    let dir = temp_dir("cli_flamegraph");
    let json = dir.join("leaks.json");
    let folded = dir.join("leaks.folded");

    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", json.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", folded.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));

    // The folded file: one line per stack, kind;name first, bytes last, summing to the
    // child's 164 leaked bytes (connection-1: 100 B, session-7: 64 B).
    let f = std::fs::read_to_string(&folded).unwrap();
    let mut total = 0;
    for line in f.lines() {
        let (stack, bytes) = line.rsplit_once(' ').expect(line);
        total += bytes.parse::<usize>().expect(line);
        assert!(
            stack.starts_with("database;connection-1;") || stack.starts_with("session;session-7;"),
            "{f}"
        );
        assert!(
            stack.contains(";cli_flamegraph::child;cli_flamegraph::leak"),
            "user frames present: {f}"
        );
    }
    assert_eq!(total, 164, "{f}");

    let o = command(&tool, &[])
        .arg("flamegraph")
        .arg(&json)
        .output()
        .unwrap();
    let (svg, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert!(svg.contains("Leaked bytes"));
    assert!(svg.contains("connection-1") && svg.contains("session-7"));
    assert!(
        svg.contains("164 bytes"),
        "the root counts every leaked byte"
    );

    // No leaks: nothing to draw, exit 1 with one line.
    let clean = dir.join("clean.json");
    let o = run_self("none", &[("LEAKTRACKER_REPORT", clean.to_str().unwrap())]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = command(&tool, &[])
        .arg("flamegraph")
        .arg(&clean)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.is_empty());
    assert!(err.contains("no leaks, no flame graph"), "{err}");
}
