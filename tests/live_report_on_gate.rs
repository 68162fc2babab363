//! LEAKTRACKER_REPORT_ON=int with LEAKTRACKER_EXIT_CODE: SIGINT writes the exit report and
//! a leak gives the gate's exit code; without a leak the process ends by SIGINT.

mod common;
mod live_common;
use common::*;
use live_common::*;

use std::os::unix::process::ExitStatusExt;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn child(leak: bool) {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    if leak {
        std::mem::forget(conn);
    } else {
        drop(conn);
    }
    println!("ready");
    wait_for_parent();
    println!("not killed");
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(r == "leak");
    }
    for (role, want_code, want_signal) in
        [("leak", Some(5), None), ("clean", None, Some(libc::SIGINT))]
    {
        let mut c = spawn_self(
            role,
            &[
                ("LEAKTRACKER_REPORT_ON", "int"),
                ("LEAKTRACKER_EXIT_CODE", "5"),
            ],
        );
        c.expect_line("ready");
        c.signal(libc::SIGINT);
        let status = c.wait_open();
        let o = c.finish();
        let (out, err) = text(&o);
        assert_eq!(status.code(), want_code, "{role}: {status:?}\n{out}\n{err}");
        assert_eq!(status.signal(), want_signal, "{role}: {status:?}");
        assert!(!out.contains("not killed"), "{out}");
        // The report went to stderr (an exit code without a path).
        if role == "leak" {
            assert!(err.contains("connection-1"), "{err}");
        } else {
            assert!(err.contains("no leaks"), "{err}");
        }
    }
}
