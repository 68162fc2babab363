//! LEAKTRACKER_BACKTRACE: with backtraces, each leak shows where its blocks were
//! allocated, in the text report and in JSON (`backtrace` and `stacks`).
//!
//! The program under test is this test binary, re-run as a child in the role `leak`: its
//! function `leak` (called by `child`, called by the test `main`) leaks a tracked `Vec`
//! of 100 bytes ("connection-1", "database") and a 64-byte block made in a scope
//! ("session-7", "session").

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
        "leak" => leak(),
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let dir = temp_dir("exit_backtraces");
    let path = dir.join("r.json");
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["backtraces"], "1");
    let conn = &j["leaks"][0];
    assert_eq!(conn["name"], "connection-1");
    let bt: Vec<&str> = conn["backtrace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in ["leak", "child", "main"] {
        let at = format!("exit_backtraces::{f} at ");
        assert!(bt.iter().any(|l| l.starts_with(&at)), "{at}: {bt:#?}");
    }
    let stacks = conn["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 1);
    assert_eq!(stacks[0]["blocks"], 1);
    assert_eq!(stacks[0]["bytes"], 100);
    assert_eq!(stacks[0]["frames"], conn["backtrace"]);

    // Text: a group line, then the frames, indented.
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let at = err
        .find("      1 block, 100 B, allocated at:\n")
        .unwrap_or_else(|| panic!("{err}"));
    let frames: Vec<&str> = err[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("          "))
        .collect();
    assert!(
        frames
            .iter()
            .any(|f| f.trim_start().starts_with("exit_backtraces::leak at ")),
        "{err}"
    );
    assert!(
        err.contains("      1 block, 64 B, allocated at:\n"),
        "{err}"
    );

    // Without LEAKTRACKER_BACKTRACE a report still gets stacks: the verdict needs them.
    std::fs::remove_file(&path).unwrap();
    let o = run_self("leak", &[("LEAKTRACKER_REPORT", path.to_str().unwrap())]);
    assert!(o.status.success(), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["backtraces"], "1");
    assert!(j["leaks"][0].get("backtrace").is_some(), "{j}");

    // With backtraces off: no `backtrace`, no `stacks`, no frames.
    std::fs::remove_file(&path).unwrap();
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "0"),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["backtraces"], "0");
    assert_eq!(j["leaks"][0]["name"], "connection-1", "{j}");
    assert!(
        j["leaks"][0].get("backtrace").is_none() && j["leaks"][0].get("stacks").is_none(),
        "{j}"
    );

    // Sampling is accepted and reported as set.
    std::fs::remove_file(&path).unwrap();
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "sample:4"),
        ],
    );
    assert_eq!(text(&o).1, "");
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read_json(&path)["backtraces"], "sample:4");
}
