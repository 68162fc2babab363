//! The exit report's "threads still running" note is there when a thread ends while the
//! report is being taken: the count goes with the snapshot, not with the moment after it.
//!
//! A deterministic reproduction: the child's inner allocator ends a detached worker
//! thread on the first allocation made after `main` has returned (the exit report's
//! snapshot is the first thing to allocate then) and waits until the kernel no longer
//! counts it, so the thread runs when the report starts and is gone when it ends.

mod common;
use common::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leaktracker::{LeakTracker, TrackingAllocator};

/// Set by an exit handler that runs just before leaktracker's.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Tells the worker thread to end.
static STOP: AtomicBool = AtomicBool::new(false);

/// Threads of this process (`/proc/self/status`), read without allocating: this runs
/// inside the allocator.
fn threads() -> Option<usize> {
    let mut buf = [0u8; 8192];
    // SAFETY: a NUL-terminated path; open has no other preconditions.
    let fd = unsafe { libc::open(c"/proc/self/status".as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    loop {
        // SAFETY: reads into the unused rest of `buf`.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n <= 0 || len + n as usize == buf.len() {
            len += n.max(0) as usize;
            break;
        }
        len += n as usize;
    }
    // SAFETY: `fd` is ours, closed once.
    unsafe { libc::close(fd) };
    let text = &buf[..len];
    let at = text.windows(9).position(|w| w == b"\nThreads:")? + 9;
    let n = text[at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |n, b| n * 10 + usize::from(b - b'0'));
    Some(n)
}

fn say(msg: &[u8]) {
    // SAFETY: a live buffer of `msg.len()` bytes.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Ends the worker and waits (up to 10 s) until the process counts one thread fewer.
fn end_worker() {
    let before = threads();
    STOP.store(true, Ordering::SeqCst);
    for _ in 0..10_000 {
        if let (Some(b), Some(now)) = (before, threads()) {
            if now < b {
                say(b"test: the worker ended during the exit report\n");
                return;
            }
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: `ts` is a valid timespec; the remainder pointer may be null.
        unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
    }
    say(b"test: the worker did not end\n");
}

/// `System`, plus the hook: the first allocation after `ARMED` ends the worker.
struct EndWorkerOnFirstAlloc;

// SAFETY: forwards every call to `System` unchanged; the hook touches no block.
unsafe impl GlobalAlloc for EndWorkerOnFirstAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) && ARMED.swap(false, Ordering::SeqCst) {
            end_worker();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `System` returned `ptr` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: TrackingAllocator<EndWorkerOnFirstAlloc> =
    TrackingAllocator::new(EndWorkerOnFirstAlloc);

static TRACKER: LeakTracker = LeakTracker::new();

extern "C" fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

fn child() {
    // Detached: still running when `main` returns.
    std::thread::spawn(|| {
        while !STOP.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    {
        let _s = TRACKER.scope("leaked-1", "test");
        black_box(Box::leak(black_box(Box::new([1u8; 40]))));
    }
    // Registered after leaktracker's exit handler (installed at start-up), so it runs
    // before it.
    // SAFETY: `arm` is an `extern "C"` function that never unwinds.
    assert_eq!(unsafe { libc::atexit(arm) }, 0);
}

#[test]
fn main() {
    if role().as_deref() == Some("child") {
        return child();
    }
    let o = run_self("child", &[("LEAKTRACKER_REPORT", "stderr")]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{:?}\n{out}\n{err}", o.status);
    let ended = err
        .find("test: the worker ended during the exit report")
        .unwrap_or_else(|| panic!("the hook did not end the worker:\n{err}"));
    let leak = err
        .find("leaked-1")
        .unwrap_or_else(|| panic!("no report:\n{err}"));
    assert!(ended < leak, "the worker ended before the report:\n{err}");
    assert!(
        err.contains("1 other thread was still running at exit"),
        "no note about the running thread:\n{err}"
    );
}
