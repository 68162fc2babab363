//! LEAKTRACKER_REPORT_ON=term in a program that installs its own SIGTERM handler after
//! start-up and, like signal-hook, calls the previous handler after its own: the
//! program keeps the signal (it shuts down its own way), and reports at its normal exit.

mod common;
mod live_common;
use common::*;
use live_common::*;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static STOP: AtomicBool = AtomicBool::new(false);
static PREV: AtomicUsize = AtomicUsize::new(0);

extern "C" fn own_handler(sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // Chain to the previous handler, as signal-hook does.
    let prev = PREV.load(Ordering::SeqCst);
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
        // SAFETY: `prev` is the handler sigaction returned for this signal, a plain
        // one-argument handler (installed without SA_SIGINFO).
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
        f(sig);
    }
}

fn child() {
    // SAFETY: all-zero sigactions are valid; the new handler is async-signal-safe.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        let mut old: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = own_handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut act.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGTERM, &act, &mut old), 0);
        PREV.store(old.sa_sigaction, Ordering::SeqCst);
    }
    assert_ne!(
        PREV.load(Ordering::SeqCst),
        libc::SIG_DFL,
        "leaktracker's handler was there"
    );
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    println!("ready");
    let start = Instant::now();
    while !STOP.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Give a wrongly chained report-and-die a chance to show.
    std::thread::sleep(Duration::from_millis(300));
    println!("shut down cleanly");
}

#[test]
fn main() {
    if role().is_some() {
        return child();
    }
    let dir = temp_dir("live_report_on_own_handler");
    let path = dir.join("exit-%n.json");
    let mut c = spawn_self(
        "service",
        &[
            ("LEAKTRACKER_REPORT_ON", "term"),
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
        ],
    );
    c.expect_line("ready");
    c.signal(libc::SIGTERM);
    let o = c.finish();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{:?}\n{out}\n{err}", o.status);
    assert!(out.contains("shut down cleanly"), "{out}");
    assert_eq!(err, "");
    // One report, the normal exit report.
    assert_eq!(files(&dir, "exit-"), [dir.join("exit-1.json")]);
    assert_eq!(
        read_json(&dir.join("exit-1.json"))["leaks"][0]["name"],
        "connection-1"
    );
}
