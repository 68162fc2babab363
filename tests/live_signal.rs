//! LEAKTRACKER_SIGNAL=USR2: each delivery writes a live report (`%n` numbered) and the
//! process goes on; its exit report comes after, as before.

mod common;
mod live_common;
use common::*;
use live_common::*;

use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: leaktracker::LeakTracker = leaktracker::LeakTracker::new();

fn child() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    {
        // A request in progress while the snapshots are taken.
        let scope = TRACKER.scope("request-1", "request");
        let body = black_box(vec![1u8; 64]);
        println!("ready");
        let line = wait_for_parent();
        drop(scope);
        drop(body);
        println!("got {line}");
    }
}

#[test]
fn main() {
    if role().is_some() {
        return child();
    }
    let dir = temp_dir("live_signal");
    let template = dir.join("snap-%n.json");
    let mut c = spawn_self(
        "service",
        &[
            ("LEAKTRACKER_SIGNAL", "USR2"),
            ("LEAKTRACKER_REPORT", template.to_str().unwrap()),
        ],
    );
    c.expect_line("ready");

    c.signal(libc::SIGUSR2);
    let first = dir.join("snap-1.json");
    assert!(
        wait_for_file(&first, Duration::from_secs(60)),
        "no snapshot after SIGUSR2"
    );
    let j = read_json(&first);
    assert_eq!(j["trigger"], "signal", "{j:#}");
    assert_eq!(j["seq"], 1);
    assert!(j["time_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
    let leaks = j["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{j:#}");
    assert_eq!(leaks[0]["name"], "connection-1");
    assert_eq!(leaks[0]["bytes"], 100);
    // The open scope is work in progress in a live report, not a leak.
    let not_leaks = j["not_leaks"].as_array().unwrap();
    let in_progress: Vec<_> = not_leaks
        .iter()
        .filter(|g| g["class"] == "in-progress")
        .collect();
    assert_eq!(in_progress.len(), 1, "{j:#}");
    assert_eq!(in_progress[0]["bytes"], 64, "{j:#}");
    assert_eq!(in_progress[0]["examples"][0], "request-1", "{j:#}");

    // A second delivery, a second file; the process is still running.
    c.signal(libc::SIGUSR2);
    let second = dir.join("snap-2.json");
    assert!(
        wait_for_file(&second, Duration::from_secs(60)),
        "no snapshot after the second SIGUSR2"
    );
    assert_eq!(read_json(&second)["seq"], 2);
    assert!(c.child.try_wait().unwrap().is_none(), "the child ended");

    c.say("exit");
    let o = c.finish();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("got exit"), "{out}");
    assert_eq!(err, "", "no warning");
    // The exit report, numbered after the snapshots: at exit, as before.
    let exit = read_json(&dir.join("snap-3.json"));
    assert!(exit.get("trigger").is_none(), "{exit:#}");
    let leaks = exit["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{exit:#}");
    assert_eq!(leaks[0]["name"], "connection-1");
    assert_eq!(files(&dir, "snap-").len(), 3);
}
