//! LEAKTRACKER_SIGNAL names a signal the program already handles: one warning line, the
//! program's handler keeps the signal, no snapshot is written.

mod common;
mod live_common;
use common::*;
use live_common::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static SEEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn own_handler(_sig: libc::c_int) {
    SEEN.fetch_add(1, Ordering::SeqCst);
}

fn child(report: &str) {
    // SAFETY: an all-zero sigaction is valid; the handler only bumps an atomic.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = own_handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut act.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &act, std::ptr::null_mut()),
            0
        );
    }
    // The program configures leaktracker after installing its handler.
    std::env::set_var("LEAKTRACKER_SIGNAL", "USR2");
    std::env::set_var("LEAKTRACKER_REPORT", report);
    leaktracker::ExitReport::from_env().install();
    println!("ready");
    let start = Instant::now();
    while SEEN.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("handled {}", SEEN.load(Ordering::SeqCst));
}

#[test]
fn main() {
    let dir = temp_dir("live_signal_handled");
    let template = dir.join("snap-%n.json");
    if let Some(r) = role() {
        return child(&r);
    }
    let mut c = spawn_self(template.to_str().unwrap(), &[]);
    c.expect_line("ready");
    c.signal(libc::SIGUSR2);
    let o = c.finish();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("handled 1"), "{out}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        ["leaktracker: LEAKTRACKER_SIGNAL=USR2: the program already handles SIGUSR2; no snapshots on it (pick another signal)"]
    );
    // Only the exit report (number 1): no snapshot was written.
    let written = files(&dir, "snap-");
    assert_eq!(written, [dir.join("snap-1.json")], "{written:?}");
    assert!(read_json(&written[0]).get("trigger").is_none());
}
