//! Allocations, scopes, `track` and `live()` in another `atexit` handler (after `main`)
//! work. The test re-runs its own binary as a child that registers the handlers, leaves
//! `main` normally (so `exit` runs them) and reports on stderr what they saw.

use std::hint::black_box;
use std::process::Command;

use leaktracker::{LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

const ROLE: &str = "LEAKTRACKER_TEST_ATEXIT_CHILD";

static T: LeakTracker = LeakTracker::new();

/// Writes straight to fd 2: after `main`, std's stdout is being torn down.
fn say(msg: &str) {
    // SAFETY: a valid buffer of `msg.len()` bytes.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

fn in_handler(which: &str) -> String {
    let plain = black_box(vec![0u8; 1000]);
    let scoped = {
        let _s = T.scope(format!("{which}-scope"), "atexit");
        let mut v = black_box(vec![1u8; 321]);
        v.extend_from_slice(&[2u8; 700]); // grows (realloc) inside the scope
        v
    };
    let obj = black_box(String::from("tracked at exit"));
    let tracked = T.track(&obj, format!("{which}-obj"), "atexit").is_ok();
    let live: Vec<String> = T
        .live()
        .iter()
        .filter(|i| i.name.starts_with(which))
        .map(|i| format!("{}={}/{}", i.name, i.allocations, i.bytes))
        .collect();
    drop((plain, scoped, obj));
    let after = T
        .live()
        .iter()
        .filter(|i| i.name.starts_with(which))
        .count();
    format!(
        "{which}: tracked={tracked} live=[{}] after={after}\n",
        live.join(",")
    )
}

extern "C" fn handler_first() {
    let r = std::panic::catch_unwind(|| in_handler("first"));
    say(&r.unwrap_or_else(|_| "first: panicked\n".into()));
}

extern "C" fn handler_second() {
    let r = std::panic::catch_unwind(|| in_handler("second"));
    say(&r.unwrap_or_else(|_| "second: panicked\n".into()));
}

#[test]
fn main() {
    if std::env::var_os(ROLE).is_some() {
        // A resource alive when the process exits, and two handlers (run last-in first).
        let leaked = {
            let _s = T.scope("main-scope", "atexit");
            black_box(vec![9u8; 64])
        };
        std::mem::forget(leaked);
        // SAFETY: the handlers are `extern "C"` functions that catch every panic.
        unsafe {
            assert_eq!(libc::atexit(handler_first), 0);
            assert_eq!(libc::atexit(handler_second), 0);
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "main", "--test-threads=1"])
        .env(ROLE, "1")
        .env_remove("LEAKTRACKER_REPORT")
        .env_remove("LEAKTRACKER_EXIT_CODE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("first:") || l.starts_with("second:"))
        .collect();
    assert_eq!(
        lines,
        [
            "second: tracked=true live=[second-scope=1/1021,second-obj=1/15] after=0",
            "first: tracked=true live=[first-scope=1/1021,first-obj=1/15] after=0",
        ],
        "{stderr}"
    );
}
