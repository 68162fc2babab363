//! Fork safety under load: two threads tag (in scopes and with `track`) and free without
//! pause while the main thread forks 200 times. Every child allocates, tags, lists and
//! frees with a tracker of its own (and lists the parent's trackers: no lock inherited from
//! a thread that does not exist in it may hang it), then leaves with `_exit`. The parent
//! waits for each child with a timeout and fails (killing it) if it hangs. Afterwards the
//! parent's accounting is exact.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use leaktracker::{LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

const FORKS: usize = 200;
/// Blocks each worker keeps alive (per kind) while it runs; older ones are freed.
const KEEP: usize = 16;
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);

static TRACKERS: [LeakTracker; 2] = [LeakTracker::new(), LeakTracker::new()];
static STOP: AtomicBool = AtomicBool::new(false);

/// What a worker still holds when it stops: `(iteration, block)` pairs.
struct Kept {
    scoped: Vec<(usize, Vec<u8>)>,
    tracked: Vec<(usize, Vec<u8>)>,
}

fn size_of_iteration(n: usize) -> usize {
    1 + (n * 7) % 200
}

fn worker(w: usize) -> Kept {
    let tracker = &TRACKERS[w];
    // Allocated outside any scope, with room for everything: untagged, never reallocated.
    let mut scoped: Vec<(usize, Vec<u8>)> = Vec::with_capacity(KEEP);
    let mut tracked: Vec<(usize, Vec<u8>)> = Vec::with_capacity(KEEP);
    let mut n = 0usize;
    while !STOP.load(Ordering::Relaxed) || n < 2 * KEEP {
        n += 1;
        let size = size_of_iteration(n);
        let a = {
            let _scope = tracker.scope(format!("w{w}-scope-{n}"), "fork-stress");
            let a = black_box(vec![n as u8; size]);
            // Allocated and freed inside the scope: counted, then uncounted.
            let tmp = black_box(vec![1u64; 1 + n % 9]);
            drop(tmp);
            let mut grow = black_box(Vec::<u32>::with_capacity(2));
            grow.extend(0..(n % 50) as u32);
            drop(grow);
            a
        };
        let b = black_box(vec![!(n as u8); size + 1]);
        tracker
            .track(&b, format!("w{w}-track-{n}"), "fork-stress")
            .expect("track");
        if scoped.len() < KEEP {
            scoped.push((n, a));
            tracked.push((n, b));
        } else {
            // Replacing frees the old blocks (their records go away by themselves).
            scoped[n % KEEP] = (n, a);
            tracked[n % KEEP] = (n, b);
        }
    }
    Kept { scoped, tracked }
}

/// The child's work. Returns an exit code: 0 when everything held.
fn child() -> i32 {
    let t = LeakTracker::new();
    let v = {
        let _s = t.scope("child-scope", "child");
        black_box(vec![3u8; 33])
    };
    let w = black_box(vec![4u8; 44]);
    if t.track(&w, "child-track", "child").is_err() {
        return 2;
    }
    let live = t.live();
    if live.len() != 2 {
        return 3;
    }
    if live[0].name != "child-scope" || live[0].allocations != 1 || live[0].bytes != 33 {
        return 4;
    }
    if live[1].name != "child-track" || live[1].allocations != 1 || live[1].bytes != 44 {
        return 5;
    }
    if v.iter().any(|&x| x != 3) || w.iter().any(|&x| x != 4) {
        return 6;
    }
    // The parent's trackers: the child must be able to lock everything they use.
    for tracker in &TRACKERS {
        let l = tracker.live();
        if l.iter().any(|i| i.allocations == 0) {
            return 7;
        }
    }
    let _ = leaktracker::stats();
    drop(v);
    drop(w);
    if !t.live().is_empty() {
        return 8;
    }
    0
}

/// Waits for `pid` for at most `CHILD_TIMEOUT`; kills it when it hangs.
fn wait_child(pid: libc::pid_t) -> Result<i32, String> {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return Ok(libc::WEXITSTATUS(status));
            }
            return Err(format!("child {pid} ended abnormally: status {status:#x}"));
        }
        if r < 0 {
            return Err(format!(
                "waitpid({pid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        if start.elapsed() > CHILD_TIMEOUT {
            // SAFETY: `pid` is our child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(format!("child {pid} hung for {CHILD_TIMEOUT:?}: killed"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn main() {
    assert!(leaktracker::is_installed());
    let base_records = leaktracker::stats().records;
    // A first resource, so that the atfork handlers are registered before any fork.
    drop(TRACKERS[0].scope("warm-up", "fork-stress"));

    let workers: Vec<_> = (0..2)
        .map(|w| std::thread::spawn(move || worker(w)))
        .collect();

    let mut failures = Vec::new();
    for i in 0..FORKS {
        // SAFETY: the child only runs `child()` and leaves with `_exit`, never returning
        // into the test harness.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = std::panic::catch_unwind(child).unwrap_or(100);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        assert!(pid > 0, "fork failed: {}", std::io::Error::last_os_error());
        match wait_child(pid) {
            Ok(0) => {}
            Ok(code) => failures.push(format!("fork {i}: child exited with {code}")),
            Err(e) => failures.push(format!("fork {i}: {e}")),
        }
    }

    STOP.store(true, Ordering::Relaxed);
    let kept: Vec<Kept> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(failures.is_empty(), "{failures:#?}");

    // Exact accounting: each kept block is its own resource, oldest first.
    for (w, k) in kept.iter().enumerate() {
        let mut expected: Vec<(usize, String, usize)> = Vec::new();
        for (n, v) in &k.scoped {
            assert_eq!(v.len(), size_of_iteration(*n));
            assert!(v.iter().all(|&x| x == *n as u8));
            expected.push((2 * n, format!("w{w}-scope-{n}"), v.len()));
        }
        for (n, v) in &k.tracked {
            assert!(v.iter().all(|&x| x == !(*n as u8)));
            expected.push((2 * n + 1, format!("w{w}-track-{n}"), v.len()));
        }
        expected.sort();
        let live = TRACKERS[w].live();
        let got: Vec<(String, usize, usize)> = live
            .iter()
            .map(|i| (i.name.clone(), i.allocations, i.bytes))
            .collect();
        let want: Vec<(String, usize, usize)> = expected
            .iter()
            .map(|(_, name, bytes)| (name.clone(), 1, *bytes))
            .collect();
        assert_eq!(got, want, "worker {w}");
        assert!(live.iter().all(|i| i.kind == "fork-stress"));
    }
    assert_eq!(leaktracker::stats().records, base_records + 4 * KEEP);
    drop(kept);
    assert!(TRACKERS[0].live().is_empty());
    assert!(TRACKERS[1].live().is_empty());
    assert_eq!(leaktracker::stats().records, base_records);
}
