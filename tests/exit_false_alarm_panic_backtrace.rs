//! A panic with RUST_BACKTRACE=1 inside a scope: the hook symbolises a backtrace and
//! caches debug info for good; nothing a panic hook allocates is tagged, so the exit
//! report lists nothing. Also for a hook set by the program and protected again.
//!
//! The program under test is this test binary, re-run as a child in a role:
//! `panic_backtrace` panics inside a scope ("panicking", "panic") and catches the panic,
//! under std's default hook (the child runs with RUST_BACKTRACE set); `own_hook` first
//! sets a hook of its own that prints a backtrace it captures, calls
//! `leaktracker::protect_panic_hook`, then does the same.

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

/// Panics inside a scope ("panicking", "panic") and catches it.
fn panic_in_scope() {
    let _scope = TRACKER.scope("panicking", "panic");
    let r = std::panic::catch_unwind(|| panic!("expected panic"));
    assert!(r.is_err());
}

fn child(role: &str) {
    match role {
        "panic_backtrace" => panic_in_scope(),
        "own_hook" => {
            std::panic::set_hook(Box::new(|info| {
                let bt = std::backtrace::Backtrace::force_capture();
                eprintln!("own hook: {info}\nown hook backtrace:\n{bt}");
            }));
            leaktracker::protect_panic_hook();
            panic_in_scope();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    for bt in ["1", "full"] {
        let o = run_self(
            "panic_backtrace",
            &[
                ("LEAKTRACKER_REPORT", "stderr"),
                ("LEAKTRACKER_EXIT_CODE", "9"),
                ("RUST_BACKTRACE", bt),
            ],
        );
        let (_, err) = text(&o);
        assert!(err.contains("expected panic"), "{err}");
        assert!(
            err.contains("stack backtrace:"),
            "the backtrace was printed: {err}"
        );
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(err.trim_end().ends_with("): no leaks"), "{err}");
    }

    let o = run_self(
        "own_hook",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "9"),
        ],
    );
    let (_, err) = text(&o);
    assert!(err.contains("own hook: "), "{err}");
    assert!(err.contains("expected panic"), "{err}");
    assert!(
        err.contains("exit_false_alarm_panic_backtrace::panic_in_scope"),
        "the hook's backtrace was symbolised: {err}"
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.trim_end().ends_with("): no leaks"), "{err}");
}
