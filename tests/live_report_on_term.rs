//! LEAKTRACKER_REPORT_ON=term: SIGTERM writes the exit report, then the process ends by
//! SIGTERM (the parent sees the signal status).

mod common;
mod live_common;
use common::*;
use live_common::*;

use std::os::unix::process::ExitStatusExt;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn child() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    println!("ready");
    let line = wait_for_parent();
    println!("not killed: {line}");
}

#[test]
fn main() {
    if role().is_some() {
        return child();
    }
    let dir = temp_dir("live_report_on_term");
    let path = dir.join("exit-%n.json");
    let mut c = spawn_self(
        "service",
        &[
            ("LEAKTRACKER_REPORT_ON", "term,int"),
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
        ],
    );
    c.expect_line("ready");
    c.signal(libc::SIGTERM);
    // Wait for the child to end by itself (stdin stays open).
    let status = c.wait_open();
    let o = c.finish();
    let (out, err) = text(&o);
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "{status:?}\n{out}\n{err}"
    );
    assert!(!out.contains("not killed"), "{out}");
    assert_eq!(err, "", "no warning");
    let j = read_json(&dir.join("exit-1.json"));
    assert!(j.get("trigger").is_none(), "the exit report: {j:#}");
    let leaks = j["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{j:#}");
    assert_eq!(leaks[0]["name"], "connection-1");
}
