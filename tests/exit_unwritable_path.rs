//! A report path that cannot be written: one warning line, then the report on stderr.
//!
//! The program under test is this test binary, re-run as a child in the role `leak`: it
//! leaks a tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block made
//! in a scope ("session-7", "session"), and passes.

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

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let dir = temp_dir("exit_unwritable");
    let path = dir.join("no-such-dir").join("r.json");
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_EXIT_CODE", "6"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(6), "{out}{err}");
    assert_eq!(child_stdout(&out), "", "the report is not on stdout: {out}");
    let mut lines = err.lines();
    let warning = lines.next().unwrap();
    assert!(
        warning.starts_with(&format!(
            "leaktracker: cannot write the leak report to {}: ",
            path.display()
        )),
        "{err}"
    );
    assert!(warning.ends_with("; here it is"), "{err}");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("leaktracker report (pid "),
        "{err}"
    );
    assert!(err.contains("2 resources, 2 blocks, 164 B leaked"), "{err}");
    assert!(err.contains("connection-1"), "{err}");
    assert_eq!(
        err.matches("leaktracker: ").count(),
        1,
        "one warning line: {err}"
    );
    assert!(!path.exists());
}
