//! Fork with an inner allocator that, like jemalloc, registers fork handlers of its own
//! when it first allocates, and takes its lock in their prepare step. Prepare handlers
//! run in the reverse order of registration, so leaktracker's (which waits for the
//! registry lock) must be registered after the inner allocator's: registered first, the
//! forking thread takes the allocator's lock, then waits for the registry lock held by a
//! thread that is allocating under it, which waits for the allocator's lock.
//!
//! The scenario runs in a re-run child (one thread tracking named objects, which takes
//! the registry lock and allocates under it, while the main thread forks 300 times); the
//! test fails if the child does not finish within its time.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use leaktracker::{LeakTracker, TrackingAllocator};

/// `System` behind a spin lock, with fork handlers registered at the first allocation.
struct LockingAlloc;

static LOCK: AtomicBool = AtomicBool::new(false);
/// 0: handlers not registered, 1: registering, 2: registered.
static REGISTERED: AtomicU8 = AtomicU8::new(0);

fn lock() {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn unlock() {
    LOCK.store(false, Ordering::Release);
}

extern "C" fn prepare() {
    lock();
}

extern "C" fn after() {
    unlock();
}

fn register_handlers() {
    if REGISTERED.load(Ordering::Acquire) == 2 {
        return;
    }
    if REGISTERED
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: the handlers are `extern "C"` functions that never unwind and stay
        // valid for the life of the process.
        unsafe { libc::pthread_atfork(Some(prepare), Some(after), Some(after)) };
        REGISTERED.store(2, Ordering::Release);
    }
}

// SAFETY: every method forwards to `System` under the lock, unchanged.
unsafe impl GlobalAlloc for LockingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        register_handlers();
        lock();
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(layout) };
        unlock();
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        lock();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        unlock();
    }
}

#[global_allocator]
static ALLOC: TrackingAllocator<LockingAlloc> = TrackingAllocator::new(LockingAlloc);

const FORKS: usize = 300;
static TRACKER: LeakTracker = LeakTracker::new();
static STOP: AtomicBool = AtomicBool::new(false);

fn scenario() {
    let worker = std::thread::spawn(|| {
        let mut n = 0usize;
        let mut kept = Vec::new();
        while !STOP.load(Ordering::Relaxed) {
            // `track` creates a resource under the registry lock and copies its owned
            // name there: an allocation under the lock.
            let b = black_box(vec![n as u8; 32]);
            TRACKER.track(&b, format!("object-{n}"), "k").unwrap();
            kept.push(b);
            if kept.len() > 64 {
                kept.clear();
            }
            n += 1;
        }
        n
    });
    for _ in 0..FORKS {
        // SAFETY: the child only calls `_exit`, which is async-signal-safe.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: `_exit` ends the child at once.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    STOP.store(true, Ordering::Relaxed);
    let tracked = worker.join().unwrap();
    println!("forked {FORKS} times beside {tracked} track calls");
}

#[test]
fn main() {
    if common::role().as_deref() == Some("fork-child") {
        scenario();
        return;
    }
    let mut child = common::self_command("fork-child", &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let limit = Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the forking child did not finish in {limit:?}: fork deadlocked");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success() && stdout.contains(&format!("forked {FORKS} times")),
        "status {status:?}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
