//! A `ScopeGuard` held across an `.await` inside an instrumented future, driven by a
//! hand-written executor through every interleaving we could think of: the scope goes on
//! tagging after the await and, when dropped, restores the task's tag; the polling
//! thread's own tag is back after every poll; two tasks interleaved on one thread never
//! see each other's scopes; nested instrumented futures; scopes dropped out of order across
//! awaits; a pending future dropped (in a scope, outside one, with a panicking drop); a
//! poll that panics with a scope open; a guard that escapes as the future's output.

mod common;
use common::counts_of;

use std::future::Future;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use leaktracker::{LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

/// Returns `Pending` once, then `Ready`.
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

/// The name of the resource of `TRACKER` that tags this thread's allocations now, found by
/// allocating one probe block and seeing which resource gained it (`live()` allocates
/// untagged).
fn current_tag() -> Option<String> {
    let before = TRACKER.live();
    let probe = black_box(vec![0u8; 33]);
    let after = TRACKER.live();
    drop(probe);
    let mut gained = None;
    for info in after {
        let had = before
            .iter()
            .find(|b| b.name == info.name)
            .map_or(0, |b| b.allocations);
        if info.allocations == had + 1 {
            assert!(gained.is_none(), "two resources gained a block");
            gained = Some(info.name);
        } else {
            assert_eq!(info.allocations, had, "{}", info.name);
        }
    }
    gained
}

fn tag() -> Option<String> {
    current_tag()
}

fn is(name: &str) -> Option<String> {
    Some(name.to_string())
}

fn kept(size: usize) -> Box<[u8]> {
    black_box(vec![1u8; size].into_boxed_slice())
}

fn poll<F: Future + ?Sized>(f: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    f.poll(cx)
}

#[test]
fn main() {
    let waker = Waker::from(Arc::new(NoopWaker));
    let mut cx = Context::from_waker(&waker);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"planned") {
            default_hook(info);
        }
    }));
    // Blocks the scenarios keep, so that their resources stay listed; reserved up front.
    let mut keep: Vec<Box<[u8]>> = Vec::with_capacity(64);
    assert_eq!(tag(), None);

    // 1. The scenario: 111 B before the await, after it, and after another one,
    //    all in the scope (333 B), none in the task; the executor thread is untagged
    //    between the polls.
    {
        let task = TRACKER.instrument(
            async {
                let s = TRACKER.scope("s1", "scope");
                let a = kept(111);
                yield_once().await;
                assert_eq!(tag(), is("s1"), "after the first await");
                let b = kept(111);
                yield_once().await;
                let c = kept(111);
                drop(s);
                assert_eq!(tag(), is("t1"), "the scope restores the task's tag");
                [a, b, c]
            },
            "t1",
            "task",
        );
        let mut task = pin!(task);
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        assert_eq!(tag(), None, "between polls");
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        assert_eq!(tag(), None, "between polls");
        let Poll::Ready(out) = poll(task.as_mut(), &mut cx) else {
            panic!("three polls")
        };
        assert_eq!(tag(), None, "after the last poll");
        assert_eq!(counts_of(&TRACKER, "s1"), (3, 333));
        assert_eq!(counts_of(&TRACKER, "t1"), (0, 0));
        keep.extend(out);
    }

    // 2. Two tasks interleaved on one thread inside an executor scope, each with a scope
    //    open across awaits: each poll sees only its own task's tags.
    {
        let exec = TRACKER.scope("exec", "executor");
        let a = TRACKER.instrument(
            async {
                assert_eq!(tag(), is("ta"));
                let s = TRACKER.scope("sa", "scope");
                yield_once().await;
                assert_eq!(tag(), is("sa"));
                yield_once().await;
                assert_eq!(tag(), is("sa"));
                drop(s);
                assert_eq!(tag(), is("ta"));
                yield_once().await;
                assert_eq!(tag(), is("ta"));
            },
            "ta",
            "task",
        );
        let b = TRACKER.instrument(
            async {
                assert_eq!(tag(), is("tb"));
                yield_once().await;
                let s = TRACKER.scope("sb", "scope");
                yield_once().await;
                assert_eq!(tag(), is("sb"));
                yield_once().await;
                assert_eq!(tag(), is("sb"));
                drop(s);
                assert_eq!(tag(), is("tb"));
            },
            "tb",
            "task",
        );
        let (mut a, mut b) = (pin!(a), pin!(b));
        let (mut a_done, mut b_done) = (false, false);
        while !(a_done && b_done) {
            if !a_done {
                a_done = poll(a.as_mut(), &mut cx).is_ready();
                assert_eq!(tag(), is("exec"));
            }
            if !b_done {
                b_done = poll(b.as_mut(), &mut cx).is_ready();
                assert_eq!(tag(), is("exec"));
            }
        }
        drop(exec);
        assert_eq!(tag(), None);
    }

    // 3. Scopes in a task opened and dropped out of order across awaits: API.md's rule
    //    (each guard restores the tag it replaced) holds inside the task's context.
    {
        let task = TRACKER.instrument(
            async {
                let x = TRACKER.scope("x", "scope");
                yield_once().await;
                let y = TRACKER.scope("y", "scope");
                yield_once().await;
                assert_eq!(tag(), is("y"));
                drop(x); // restores the task's tag, which x replaced
                assert_eq!(tag(), is("t3"));
                yield_once().await;
                assert_eq!(tag(), is("t3"));
                drop(y); // restores x, which y replaced
                assert_eq!(tag(), is("x"));
                let z = TRACKER.scope("z", "scope");
                yield_once().await;
                assert_eq!(tag(), is("z"));
                drop(z);
                assert_eq!(tag(), is("x"));
            },
            "t3",
            "task",
        );
        let mut task = pin!(task);
        while poll(task.as_mut(), &mut cx).is_pending() {
            assert_eq!(tag(), None);
        }
        assert_eq!(tag(), None);
    }

    // 4. Nested: a parent with a scope open polls an instrumented child that holds a scope
    //    of its own across its awaits.
    {
        let parent = TRACKER.instrument(
            async {
                let ps = TRACKER.scope("ps", "scope");
                let child = TRACKER.instrument(
                    async {
                        assert_eq!(tag(), is("child"));
                        let cs = TRACKER.scope("cs", "scope");
                        yield_once().await;
                        assert_eq!(tag(), is("cs"));
                        yield_once().await;
                        drop(cs);
                        assert_eq!(tag(), is("child"));
                    },
                    "child",
                    "task",
                );
                let mut child = pin!(child);
                std::future::poll_fn(|cx| {
                    let r = child.as_mut().poll(cx);
                    assert_eq!(tag(), is("ps"), "the parent's scope after a child poll");
                    r
                })
                .await;
                yield_once().await;
                assert_eq!(tag(), is("ps"));
                drop(ps);
                assert_eq!(tag(), is("parent"));
            },
            "parent",
            "task",
        );
        let mut parent = pin!(parent);
        while poll(parent.as_mut(), &mut cx).is_pending() {
            assert_eq!(tag(), None);
        }
    }

    // 5. A pending future with a scope open, dropped inside an executor scope and outside
    //    any: the dropping thread's tag is what it was; the scope's and the task's blocks
    //    stay theirs.
    for (outer, scope_name) in [(Some("exec5"), "s5a"), (None, "s5b")] {
        let exec = outer.map(|n| TRACKER.scope(n, "executor"));
        let mut task = Box::pin(TRACKER.instrument(
            async move {
                let s = TRACKER.scope(scope_name, "scope");
                keep_forever(kept(50));
                yield_once().await;
                keep_forever(kept(50));
                yield_once().await;
                drop(s);
            },
            "t5",
            "task",
        ));
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        assert_eq!(tag(), outer.map(str::to_string));
        drop(task);
        assert_eq!(
            tag(),
            outer.map(str::to_string),
            "after dropping a pending task"
        );
        drop(exec);
        assert_eq!(tag(), None);
        assert_eq!(counts_of(&TRACKER, scope_name), (2, 100));
    }
    assert_eq!(counts_of(&TRACKER, "t5"), (0, 0));

    // 6. A pending future whose drop panics (a scope open in it) and a poll that panics
    //    with a scope open: unwinding gives the thread its tag back.
    {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                std::panic::panic_any("planned");
            }
        }
        let exec = TRACKER.scope("exec6", "executor");
        let mut task = Box::pin(TRACKER.instrument(
            async {
                let _s = TRACKER.scope("s6", "scope");
                let _p = PanicOnDrop;
                yield_once().await;
            },
            "t6",
            "task",
        ));
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        assert!(catch_unwind(AssertUnwindSafe(|| drop(task))).is_err());
        assert_eq!(tag(), is("exec6"), "after a drop that panicked");

        let mut task = Box::pin(TRACKER.instrument(
            async {
                let _s = TRACKER.scope("s6b", "scope");
                yield_once().await;
                std::panic::panic_any("planned");
            },
            "t6b",
            "task",
        ));
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        assert!(catch_unwind(AssertUnwindSafe(|| poll(task.as_mut(), &mut cx))).is_err());
        assert_eq!(tag(), is("exec6"), "after a poll that panicked");
        drop(task);
        assert_eq!(tag(), is("exec6"));
        drop(exec);
        assert_eq!(tag(), None);
    }

    // 7. A guard that escapes its task as the output: dropping it outside the task does
    //    not tag the dropping thread with the task (nor change its tag at all).
    {
        let exec = TRACKER.scope("exec7", "executor");
        let mut task = Box::pin(TRACKER.instrument(
            async {
                yield_once().await;
                TRACKER.scope("escaped", "scope")
            },
            "t7",
            "task",
        ));
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        let Poll::Ready(guard) = poll(task.as_mut(), &mut cx) else {
            panic!("two polls")
        };
        assert_eq!(tag(), is("exec7"));
        drop(task);
        assert_eq!(tag(), is("exec7"));
        drop(guard);
        assert_eq!(tag(), is("exec7"), "after dropping the escaped guard");
        drop(exec);
        assert_eq!(tag(), None);
    }

    // 8. A task polled after its scope's guard was dropped in an earlier poll, and a scope
    //    opened in the executor between two polls of a task with its own scope open.
    {
        let mut task = Box::pin(TRACKER.instrument(
            async {
                let s = TRACKER.scope("s8", "scope");
                yield_once().await;
                assert_eq!(tag(), is("s8"));
                yield_once().await;
                assert_eq!(tag(), is("s8"));
                drop(s);
                yield_once().await;
                assert_eq!(tag(), is("t8"));
            },
            "t8",
            "task",
        ));
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        let between = TRACKER.scope("between", "executor");
        assert!(poll(task.as_mut(), &mut cx).is_pending());
        assert_eq!(tag(), is("between"));
        drop(between);
        assert_eq!(tag(), None);
        while poll(task.as_mut(), &mut cx).is_pending() {
            assert_eq!(tag(), None);
        }
    }

    // What is left: exactly the blocks kept on purpose, in the resources that made them.
    let live: Vec<(String, usize, usize)> = TRACKER
        .live()
        .into_iter()
        .map(|l| (l.name, l.allocations, l.bytes))
        .collect();
    assert_eq!(
        live,
        [
            ("s1".to_string(), 3, 333),
            ("s5a".to_string(), 2, 100),
            ("s5b".to_string(), 2, 100)
        ]
    );
    drop(keep);
    assert_eq!(tag(), None);
}

fn keep_forever(b: Box<[u8]>) {
    std::mem::forget(b);
}
