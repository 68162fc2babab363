//! Stacks in a build of the whole program, leaktracker included, optimised without debug
//! info (CI: `cargo test --profile ship-nodebug --test backtrace_optimised`; in the debug
//! and `ship-lt` profiles the same checks hold, and with fat and thin LTO and line tables:
//! `ship-lto-lt`, `ship-thin-lto`. Fat LTO without debug info fails the second check: the
//! future's body, inlined across crates into the executor, has only the executor's
//! symbol, `block_on`). Capture is switched on at start-up
//! (`LEAKTRACKER_BACKTRACE=1`), as a report or gate does, in a re-run child:
//! - no stack keeps a frame of leaktracker's allocator (`TrackingAllocator::alloc_flagged`):
//!   the allocator's own path is learnt, by address, when capture is switched on there too;
//! - a block allocated by an instrumented future's body has that body as its first frame:
//!   the future's own code, or, where the build inlined it into leaktracker's wrapper and
//!   only the symbol table names it, `<leaktracker::tracker::Instrumented<F> as Future>::poll`
//!   — not the executor that polled it;
//! - the walk stops at the task's poll (the executor's frames are not walked), and outside
//!   the task, before and after it, goes on to the caller.

mod common;
use common::*;

use leaktracker::report::LeakReport;
use leaktracker::{LeakTracker, TrackingAllocator};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

/// The executor: polls `fut` until it is ready.
#[inline(never)]
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(NoopWaker));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A future that is pending once.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// Whether `frame` (`function at file:line`) is one the walk reaches only past the task's
/// poll: `child`, which called the executor (where the build names it), or, where
/// optimisation inlined `child` away and the report shows the whole stack, the runtime
/// that called the test.
fn beyond_the_task(frame: &str) -> bool {
    let function = frame.split(" at ").next().unwrap_or(frame);
    function == "backtrace_optimised::child"
        // Line tables only name an inlined function without its path.
        || (function == "child" && frame.contains("backtrace_optimised.rs:"))
        || function.contains("__rust_begin_short_backtrace")
        || function.contains("thread_start")
}

fn child() {
    {
        let _s = TRACKER.scope("direct", "probe");
        std::mem::forget(black_box(vec![1u8; 1111]));
    }
    block_on(LeakTracker::instrument(
        &TRACKER,
        async {
            std::mem::forget(black_box(vec![2u8; 2222]));
            YieldOnce(false).await;
            std::mem::forget(black_box(vec![3u8; 3333]));
        },
        "task",
        "probe",
    ));

    {
        let _s = TRACKER.scope("after", "probe");
        std::mem::forget(black_box(vec![4u8; 4444]));
    }

    let report = LeakReport::of(&TRACKER);
    let leak = |name: &str| {
        report
            .leaks()
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no leak {name}: {:#?}", report.leaks()))
    };
    let direct = leak("direct");
    let task = leak("task");
    for e in [direct, task] {
        assert!(!e.stacks.is_empty(), "{e:#?}");
        for g in &e.stacks {
            assert!(
                !g.frames
                    .iter()
                    .any(|f| f.contains("leaktracker::alloc") || f.starts_with("__rust")),
                "an allocator frame kept in {}: {:#?}",
                e.name,
                g.frames
            );
        }
    }
    let mut sizes: Vec<usize> = task.stacks.iter().map(|g| g.bytes).collect();
    sizes.sort_unstable();
    assert_eq!(
        sizes,
        [2222, 3333],
        "one group per site: {:#?}",
        task.stacks
    );
    for g in &task.stacks {
        let first = &g.frames[0];
        // Named in full (debug info), by its short name (line tables only: an inlined
        // frame), or by the wrapper it was inlined into (symbol table only).
        let body = first.contains("backtrace_optimised::child::{")
            || first.starts_with("{async_block#")
            || first.starts_with("<leaktracker::tracker::Instrumented<");
        assert!(
            body,
            "the future's body is not the first frame of its block: {:#?}",
            g.frames
        );
        // The walk stops at the task's poll: what polled it (the executor, then `child`)
        // is not walked. Where the build inlined the wrapper into the executor, the
        // executor's frame is the last one.
        assert!(
            !g.frames.iter().any(|f| beyond_the_task(f)),
            "the stack goes on past the task's poll: {:#?}",
            g.frames
        );
    }
    // Outside a task the walk goes on to `main`: the task's mark went when its poll ended.
    for e in [direct, leak("after")] {
        for g in &e.stacks {
            assert!(
                g.frames.iter().any(|f| beyond_the_task(f)),
                "{}: the caller is missing: {:#?}",
                e.name,
                g.frames
            );
        }
    }
    println!("child checks passed");
}

#[test]
fn main() {
    if role().as_deref() == Some("child") {
        child();
        return;
    }
    let o = run_self("child", &[("LEAKTRACKER_BACKTRACE", "1")]);
    let (out, err) = text(&o);
    assert!(
        o.status.success() && out.contains("child checks passed"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
}
