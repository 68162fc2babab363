//! `leaktracker gate -- sh -c "(sleep 0.5; ./leaky) & exit 0"`: the command returns before
//! its grandchild leaks; the gate waits for every process that inherited its pipe, says
//! what it waited for, and counts the grandchild's report. With a `--wait` bound shorter
//! than the grandchild's life, it stops waiting and says so, naming what still runs.
//!
//! The processes under the gate are this test binary, re-run as a child in a role: `none`
//! tracks a block and frees it; `leak` leaks a tracked `Vec` of 100 bytes ("connection-1",
//! "database") and a 64-byte block made in a scope ("session-7", "session").

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "none" => track_and_free(),
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
    let tool = cli();

    let script = format!("(sleep 0.5; {}) & exit 0", self_sh("leak"));
    let o = command(&tool, &[])
        .args(["gate", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The subshell, and its `sleep` once it has started it.
    assert!(
        err.contains("leaktracker gate: the command returned; waiting up to 10.0s (--wait) for "),
        "{err}"
    );
    assert!(err.contains(" (sh -c (sleep 0.5; "), "{err}");
    assert!(err.contains("leaktracker gate: waited "), "{err}");
    assert!(err.contains("1 process reported, 1 leaked\n"), "{err}");
    assert!(err.contains("connection-1"), "{err}");
    assert!(
        err.ends_with("leaktracker gate: FAILED: 1 process leaked 2 resources, 2 blocks, 164 B\n"),
        "{err}"
    );
    assert!(!err.contains("cannot write the leak report"), "{err}");

    // A bound shorter than the grandchild's life: the gate stops waiting and says what is
    // still running (the `sleep`).
    let script = format!("(sleep 3; {}) & exit 0", self_sh("none"));
    let o = command(&tool, &[])
        .args(["gate", "--wait", "200ms", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("leaktracker gate: warning: stopped waiting after "),
        "{err}"
    );
    assert!(err.contains(" (--wait): "), "{err}");
    assert!(err.contains(" (sh -c (sleep 3; "), "{err}");
    assert!(
        err.contains("still running; reports they write later are not counted\n"),
        "{err}"
    );

    // A command that leaves nothing running: no wait, nothing said about it.
    let o = command(&tool, &[(ROLE, "none")])
        .args(["gate", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(SELF_ARGS)
        .output()
        .unwrap();
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("wait"), "{err}");

    // A bad bound is a usage error.
    let o = command(&tool, &[])
        .args(["gate", "--wait", "soon", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.starts_with(
            "error: invalid value 'soon' for '--wait <DURATION>': not a duration (0, 250ms, 5s, 2m, 1h)\n"
        ),
        "{:?}",
        text(&o)
    );
}
