//! LEAKTRACKER_REPORT=*.pb.gz and `leaktracker pprof`: gzipped pprof heap profiles that
//! a reader nobody here wrote (`go tool pprof`, Debian's golang-go) reads with the right
//! totals, functions and labels. Skips the reader's part, saying so, when `go` is absent.

mod common;
use common::*;

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: leaktracker::LeakTracker = leaktracker::LeakTracker::new();

#[inline(never)]
fn leak_connection() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
}

#[inline(never)]
fn leak_session() {
    let _scope = TRACKER.scope("session-7", "session");
    black_box(Box::leak(black_box(Box::new([1u8; 64]))));
}

fn child() {
    leak_connection();
    leak_session();
}

/// `go tool pprof ARGS FILE`, or `None` when go is not installed.
fn go_pprof(args: &[&str], file: &Path) -> Option<String> {
    let o = Command::new("go")
        .args(["tool", "pprof", "-symbolize=none"])
        .args(args)
        .arg(file)
        .output()
        .ok()?;
    let (out, err) = text(&o);
    assert!(o.status.success(), "go tool pprof {args:?}: {out}\n{err}");
    Some(out)
}

fn check_with_go(file: &Path) -> bool {
    let Some(space) = go_pprof(&["-top", "-sample_index=inuse_space"], file) else {
        println!("skipping the go tool pprof checks: `go` is not installed (apt-get install -y golang-go)");
        return false;
    };
    assert!(space.contains("of 164B total"), "{space}");
    assert!(space.contains("pprof_go::leak_connection"), "{space}");
    assert!(space.contains("pprof_go::leak_session"), "{space}");
    let objects = go_pprof(&["-top", "-sample_index=inuse_objects"], file).unwrap();
    assert!(objects.contains("of 2 total"), "{objects}");
    let tags = go_pprof(&["-tags"], file).unwrap();
    for want in [
        "name:",
        "connection-1",
        "session-7",
        "kind:",
        "database",
        "session",
        "service:",
        "api",
        "age:",
    ] {
        assert!(tags.contains(want), "{want} in\n{tags}");
    }
    // Filtering by a label works as on any heap profile.
    let db = go_pprof(&["-top", "-tagfocus=kind=database"], file).unwrap();
    assert!(db.contains("100B"), "{db}");
    assert!(!db.contains("leak_session"), "{db}");
    true
}

#[test]
fn main() {
    if role().is_some() {
        return child();
    }
    let dir = temp_dir("pprof_go");
    let env = |report: &str| {
        [
            ("LEAKTRACKER_REPORT", report.to_string()),
            ("LEAKTRACKER_BACKTRACE", "1".to_string()),
            ("LEAKTRACKER_LABELS", "service=api".to_string()),
        ]
    };

    // The exit report as a profile.
    let pb = dir.join("leaks.pb.gz");
    let e = env(pb.to_str().unwrap());
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = run_self("leak", &e);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let bytes = std::fs::read(&pb).unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "gzip");
    let read_by_go = check_with_go(&pb);

    // A JSON report turned into a profile by the command line.
    let json = dir.join("leaks.json");
    let e = env(json.to_str().unwrap());
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = run_self("leak", &e);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let from_json = dir.join("from-json.pb.gz");
    let o = Command::new(cli())
        .arg("pprof")
        .arg(&json)
        .stdout(std::fs::File::create(&from_json).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(&std::fs::read(&from_json).unwrap()[..2], [0x1f, 0x8b]);
    if read_by_go {
        check_with_go(&from_json);
    }
    // Bad input: a clear error, status 2.
    let o = Command::new(cli())
        .arg("pprof")
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("missing.json"), "{:?}", text(&o));
}
