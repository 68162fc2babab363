//! Async: polling an instrumented future tags only what it allocates during the poll; the
//! polling thread's previous tag (a scope around the executor, an outer instrumented task)
//! is back after every poll, after the last one, and after a poll that panics.

mod common;
use common::counts_of;

use std::future::Future;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use leaktracker::{LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

const PLANNED_PANIC: &str = "the task fails on its second poll";

struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

/// Returns `Pending` once (waking itself), then `Ready`.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

fn block(size: usize) -> Box<[u8]> {
    black_box(vec![1u8; size].into_boxed_slice())
}

/// Allocates a block in each of its three polls and returns them.
async fn three_polls() -> [Box<[u8]>; 3] {
    let a = block(100);
    yield_once().await;
    let b = block(200);
    yield_once().await;
    [a, b, block(300)]
}

/// Polls `fut` to completion on this thread, calling `between` after every poll.
fn run<F: Future>(fut: F, cx: &mut Context<'_>, mut between: impl FnMut()) -> (F::Output, usize) {
    let mut fut = pin!(fut);
    let mut polls = 0;
    loop {
        let r = fut.as_mut().poll(cx);
        polls += 1;
        between();
        if let Poll::Ready(out) = r {
            return (out, polls);
        }
    }
}

#[test]
fn main() {
    // Everything the test itself needs is allocated before the scope opens.
    let waker = Waker::from(Arc::new(NoopWaker));
    let mut cx = Context::from_waker(&waker);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Quiet for the task's planned panic, as usual for anything else (the assertions).
        if info.payload().downcast_ref::<&str>() != Some(&PLANNED_PANIC) {
            default_hook(info);
        }
    }));
    let mut outer_blocks: Vec<Box<[u8]>> = Vec::with_capacity(16);

    let scope = TRACKER.scope("executor", "scope");

    // 1. A scope around the executor: between the polls, the scope tags again.
    let task = TRACKER.instrument(three_polls(), "task", "request");
    let (task_out, polls) = run(task, &mut cx, || outer_blocks.push(block(7)));
    assert_eq!(polls, 3);
    assert_eq!(counts_of(&TRACKER, "task"), (3, 600));
    assert_eq!(counts_of(&TRACKER, "executor"), (3, 21));

    // 2. Nested: a task that polls an instrumented child by hand gets its tag back after
    //    each of the child's polls.
    let parent_body = async {
        let child = TRACKER.instrument(three_polls(), "child", "request");
        let mut child = pin!(child);
        let mut after_child: Vec<Box<[u8]>> = Vec::with_capacity(4); // parent: 1 block
        let child_out = std::future::poll_fn(|cx| {
            let r = child.as_mut().poll(cx);
            after_child.push(block(11)); // parent: one per child poll
            r
        })
        .await;
        (child_out, after_child)
    };
    let parent = TRACKER.instrument(parent_body, "parent", "request");
    let (parent_out, polls) = run(parent, &mut cx, || outer_blocks.push(block(7)));
    assert_eq!(polls, 3);
    assert_eq!(counts_of(&TRACKER, "child"), (3, 600));
    assert_eq!(
        counts_of(&TRACKER, "parent"),
        (1 + 3, 4 * std::mem::size_of::<Box<[u8]>>() + 3 * 11)
    );
    assert_eq!(counts_of(&TRACKER, "executor"), (6, 42));

    // 3. A poll that panics: unwinding restores the executor's tag.
    let panicky = TRACKER.instrument(
        async {
            std::mem::forget(block(55));
            yield_once().await;
            std::mem::forget(block(66));
            std::panic::panic_any(PLANNED_PANIC);
        },
        "panicky",
        "request",
    );
    let mut panicky = pin!(panicky);
    assert!(panicky.as_mut().poll(&mut cx).is_pending());
    outer_blocks.push(block(7));
    let payload = catch_unwind(AssertUnwindSafe(|| panicky.as_mut().poll(&mut cx)))
        .expect_err("the second poll panics");
    drop(payload);
    outer_blocks.push(block(7));
    assert_eq!(counts_of(&TRACKER, "panicky"), (2, 121));
    assert_eq!(counts_of(&TRACKER, "executor"), (8, 56));

    // 4. The scope ends: nothing is tagged any more, not even by polls of the same kind.
    drop(scope);
    let untagged = block(7);
    let (late_out, _) = run(
        TRACKER.instrument(three_polls(), "late", "request"),
        &mut cx,
        || outer_blocks.push(block(7)),
    );
    let live = TRACKER.live();
    let summary: Vec<(&str, usize, usize)> = live
        .iter()
        .map(|l| (l.name.as_str(), l.allocations, l.bytes))
        .collect();
    assert_eq!(
        summary,
        [
            ("executor", 8, 56),
            ("task", 3, 600),
            // The parent was instrumented first; its body instruments the child.
            ("parent", 4, 4 * std::mem::size_of::<Box<[u8]>>() + 33),
            ("child", 3, 600),
            ("panicky", 2, 121),
            ("late", 3, 600),
        ]
    );
    drop((task_out, parent_out, late_out, untagged, outer_blocks));
    let left: Vec<String> = TRACKER.live().iter().map(|l| l.name.clone()).collect();
    assert_eq!(left, ["panicky"]);
}
