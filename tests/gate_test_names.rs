//! The gate names each leaking process by what it ran: a libtest binary asked for one test
//! (`BIN --exact a::leaks`, as `cargo nextest run` runs every test in a process of its own)
//! by the test's name and the binary's name without cargo's hash; any other program by its
//! name and arguments. The names come from the `args` the reports carry.
//!
//! The libtest binary is `SUITE`, built by the test: its test `a::leaks` leaks a tracked
//! 40-byte `Vec` ("lost-buffer", "buffer"), `a::clean` does nothing. The other program is
//! this test binary, re-run as a child in the role `leak` but with a test-name filter
//! instead of `--exact`: it leaks a tracked `Vec` of 100 bytes ("connection-1",
//! "database") and a 64-byte block made in a scope ("session-7", "session").

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "leak" => {
            leak_pair(&TRACKER);
        }
        other => panic!("unknown role {other}"),
    }
}

const SUITE: &str = r#"
#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

mod a {
    #[test]
    fn leaks() {
        let v = std::hint::black_box(vec![1u8; 40]);
        leaktracker::track_resource(&v, "lost-buffer", "buffer").unwrap();
        std::mem::forget(v);
    }

    #[test]
    fn clean() {}
}
"#;

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let built = build_fixture_with("suite", SUITE, &["--test"]);
    // Named as cargo names test binaries.
    let suite = built.with_file_name("suite-0123456789abcdef");
    std::fs::copy(&built, &suite).unwrap();
    let s = suite.to_str().unwrap();
    let tool = cli();
    let gate = |args: &[&str]| {
        let o = command(&tool, &[])
            .arg("gate")
            .arg("--")
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), text(&o).1)
    };

    // As nextest runs a test: one process per test.
    let (code, err) = gate(&[s, "--exact", "a::leaks", "--nocapture"]);
    assert_eq!(code, Some(1), "{err}");
    let heads: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("== process "))
        .collect();
    assert_eq!(heads.len(), 1, "{err}");
    assert!(heads[0].ends_with(": a::leaks in suite"), "{err}");
    // Older nextest and hand-written runs put the name first; libtest options with values
    // are not taken for test names.
    let (code, err) = gate(&[s, "a::leaks", "--exact", "--test-threads", "1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(": a::leaks in suite\n"), "{err}");
    // The clean test alone passes.
    let (code, err) = gate(&[s, "--exact", "a::clean"]);
    assert_eq!(code, Some(0), "{err}");

    // Any other program (here one not asked for a test with `--exact`): its name, without
    // cargo's hash, and its arguments.
    let me = std::env::current_exe().unwrap();
    let o = command(&tool, &[(ROLE, "leak")])
        .args(["gate", "--"])
        .arg(&me)
        .args(["main", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    let heads: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("== process "))
        .collect();
    assert_eq!(heads.len(), 1, "{err}");
    assert!(
        heads[0].ends_with(": gate_test_names main --nocapture --test-threads=1"),
        "{err}"
    );
}
