//! LeakCheck and std's one-time allocations: a `println!` to the real stdout, a
//! panic with RUST_BACKTRACE=1, and `thread::current()` do not fail a check; a thread
//! spawned and joined inside a check does not either. Thread-locals first filled inside a
//! check, threads not joined, and libtest's output capture buffer cannot be kept out: the
//! check fails with the hint, and the documented way around works.

mod common;
use common::*;
use leaktracker::{LeakCheck, TrackingAllocator};
use std::cell::RefCell;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

thread_local! {
    static CACHE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static WARM: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn failure(check: LeakCheck) -> String {
    let e = catch_unwind(AssertUnwindSafe(|| check.assert_no_leaks())).unwrap_err();
    e.downcast_ref::<String>().unwrap().clone()
}

// `writeln!(stderr())` on purpose: libtest captures `eprintln!`, not the stream itself.
#[allow(clippy::explicit_write)]
fn child(role: &str) {
    match role {
        // Run with --nocapture: a println! inside a check, straight to stdout. (Not the
        // process's first: libtest printed `running 1 test` before; the first one is
        // tests/exit_false_alarm_println.rs, a program without a harness.)
        "println" => {
            let check = LeakCheck::start("prints");
            println!("first line of the process's stdout");
            check.assert_no_leaks();
            eprintln!("println: passed");
        }
        // Run with libtest's capture: the first print allocates the capture buffer.
        "captured" => {
            let check = LeakCheck::start("prints_captured");
            println!("captured");
            let msg = failure(check);
            assert!(msg.contains("libtest's output capture"), "{msg}");
            // The way around: print before the check starts.
            let check = LeakCheck::start("prints_captured_again");
            println!("captured again");
            check.assert_no_leaks();
            // Straight to the stream: libtest captures `eprintln!` too.
            use std::io::Write;
            writeln!(
                std::io::stderr(),
                "captured: failed as documented, workaround passed"
            )
            .unwrap();
        }
        // RUST_BACKTRACE=1: a panic caught inside the check.
        "panic" => {
            let check = LeakCheck::start("panics");
            let r = catch_unwind(|| panic!("expected panic inside a check"));
            assert!(r.is_err());
            drop(r); // the payload box was allocated inside the check
            check.assert_no_leaks();
            // A hook set by the test after start-up is not protected until asked.
            std::panic::set_hook(Box::new(|info| eprintln!("custom hook: {info}")));
            let check = LeakCheck::start("panics_custom_hook");
            let r = catch_unwind(|| panic!("expected panic under a custom hook"));
            assert!(r.is_err());
            drop(r); // the payload box was allocated inside the check
            check.assert_no_leaks();
            eprintln!("panic: passed");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let exe = std::env::current_exe().unwrap();

    let o = run_self("println", &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("first line of the process's stdout"), "{out}");
    assert!(err.contains("println: passed"), "{err}");

    let o = command(&exe, &[(ROLE, "captured")])
        .args(["--exact", "main", "--test-threads=1"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        err.contains("captured: failed as documented, workaround passed"),
        "{err}"
    );

    let o = run_self("panic", &[("RUST_BACKTRACE", "1")]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(err.contains("stack backtrace:"), "{err}");
    assert!(err.contains("custom hook: "), "{err}");
    assert!(err.contains("panic: passed"), "{err}");

    // thread::current() inside a check.
    let check = LeakCheck::start("current_thread");
    assert!(black_box(std::thread::current()).id() == std::thread::current().id());
    check.assert_no_leaks();

    // A thread spawned and joined inside a check.
    let check = LeakCheck::start("joins");
    std::thread::spawn(|| black_box(vec![0u8; 100]).len())
        .join()
        .unwrap();
    check.assert_no_leaks();

    // A thread spawned inside a check and not joined: its bookkeeping is listed.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let check = LeakCheck::start("does_not_join");
    let handle = std::thread::spawn(move || rx.recv().ok());
    let msg = failure(check);
    assert!(msg.contains("threads not yet joined"), "{msg}");
    tx.send(()).unwrap();
    handle.join().unwrap();

    // A thread-local first filled inside a check is listed; filled before, it is not.
    let check = LeakCheck::start("fills_thread_local");
    CACHE.with(|c| c.borrow_mut().extend(0..100));
    let msg = failure(check);
    assert!(msg.contains("thread-local contents"), "{msg}");
    WARM.with(|c| c.borrow_mut().reserve(100));
    let check = LeakCheck::start("warm_thread_local");
    WARM.with(|c| c.borrow_mut().extend(0..100));
    check.assert_no_leaks();
}
