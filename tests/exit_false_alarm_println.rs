//! The first `println!` of a process, inside a scope, allocates stdout's buffer: it is
//! allocated at start-up instead, so neither a report made before exit nor the exit
//! report lists anything. (std frees that buffer at exit anyway; and were it allocated in
//! the scope, the verdict would judge it one-time: std makes it in a `OnceLock`.) The
//! same program with a planted leak in a second scope reports exactly that leak.
//!
//! This test has no libtest harness (`harness = false` in `Cargo.toml`): libtest writes
//! `running 1 test` to stdout before any test runs, so in a harness's child stdout's
//! buffer would already be there and the child's `println!` could never be the process's
//! first. Run by cargo, its `main` re-runs itself as a child with `LT_TEST_ROLE=println`
//! (or `println_leak`), whose `main` prints nothing before the scope.

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(planted: bool) {
    {
        let _scope = TRACKER.scope("printing", "io");
        println!("hello from inside a scope");
    }
    if planted {
        let _scope = TRACKER.scope("planted", "io");
        std::hint::black_box(Box::leak(std::hint::black_box(Box::new([5u8; 40]))));
    }
    // std frees stdout's buffer at exit: look before that too.
    let live = leaktracker::LeakReport::of_all();
    eprintln!("live after the first println: {}", live.leaks().len());
}

fn main() {
    match role().as_deref() {
        Some("println") => return child(false),
        Some("println_leak") => return child(true),
        _ => {}
    }
    let run = |role: &str| {
        let exe = std::env::current_exe().unwrap();
        command(
            &exe,
            &[
                ("LEAKTRACKER_REPORT", "stderr"),
                ("LEAKTRACKER_EXIT_CODE", "9"),
            ],
        )
        .env(ROLE, role)
        .output()
        .unwrap()
    };

    // The correct program: nothing listed, status 0.
    let o = run("println");
    let (out, err) = text(&o);
    assert_eq!(out, "hello from inside a scope\n");
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with("live after the first println: 0\n"),
        "{err}"
    );
    assert!(err.trim_end().ends_with("): no leaks"), "{err}");

    // With a planted leak: exactly that one, and the exit code.
    let o = run("println_leak");
    let (out, err) = text(&o);
    assert_eq!(out, "hello from inside a scope\n");
    assert_eq!(o.status.code(), Some(9), "{err}");
    assert!(
        err.starts_with("live after the first println: 1\n"),
        "{err}"
    );
    assert!(err.contains("1 resource, 1 block, 40 B leaked"), "{err}");
    assert!(err.contains("planted"), "{err}");
    assert!(!err.contains("printing"), "{err}");
    println!("exit_false_alarm_println: ok");
}
