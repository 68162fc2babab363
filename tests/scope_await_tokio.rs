//! A `ScopeGuard` held across `.await`s inside instrumented futures on tokio: tasks
//! interleaved on a `LocalSet` each see only their own scope after every await (the scope's
//! blocks are the scope's, exactly), a task aborted while pending with a scope open leaves
//! no tag on the runtime's thread, `select!` dropping a pending instrumented branch gives
//! the parent its own tag back, and `block_on` on a multi-threaded runtime keeps the
//! caller's tag between polls.

mod common;
use common::counts_of;

use std::hint::black_box;
use std::time::Duration;

use leaktracker::{LeakTracker, TrackingAllocator};
use tokio::task::yield_now;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

/// The name of the resource of `TRACKER` that tags this thread's allocations now (one
/// probe block; `live()` allocates untagged).
fn tag() -> Option<String> {
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
        }
    }
    gained
}

fn is(name: &str) -> Option<String> {
    Some(name.to_string())
}

/// Task `i`: a scope held across three yields, keeping a block of `111 + i` bytes before
/// and after each; then the task's own tag again.
async fn task(i: usize) -> Vec<Box<[u8]>> {
    let task_name = format!("task-{i}");
    let scope_name = format!("scope-{i}");
    let mut kept = Vec::with_capacity(4);
    assert_eq!(tag(), Some(task_name.clone()));
    let s = TRACKER.scope(scope_name.clone(), "scope");
    kept.push(black_box(vec![1u8; 111 + i].into_boxed_slice()));
    for _ in 0..3 {
        yield_now().await;
        assert_eq!(tag(), Some(scope_name.clone()), "after an await");
    }
    kept.push(black_box(vec![2u8; 111 + i].into_boxed_slice()));
    yield_now().await;
    kept.push(black_box(vec![3u8; 111 + i].into_boxed_slice()));
    drop(s);
    assert_eq!(tag(), Some(task_name.clone()));
    yield_now().await;
    assert_eq!(tag(), Some(task_name));
    kept
}

#[test]
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        // Lazily made runtime state (the deferred-waker list, the timer) before any task.
        yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(tag(), None);

        // 1. Eight tasks interleaved on one thread.
        let handles: Vec<_> = (0..8)
            .map(|i| {
                tokio::task::spawn_local(TRACKER.instrument(task(i), format!("task-{i}"), "task"))
            })
            .collect();
        let mut outs = Vec::new();
        for h in handles {
            outs.push(h.await.unwrap());
            assert_eq!(tag(), None, "the LocalSet's own tag between tasks");
        }
        for i in 0..8 {
            assert_eq!(
                counts_of(&TRACKER, &format!("scope-{i}")),
                (3, 3 * (111 + i))
            );
            assert_eq!(
                counts_of(&TRACKER, &format!("task-{i}")),
                (1, 4 * std::mem::size_of::<Box<[u8]>>())
            );
        }
        drop(outs);

        // 2. A task aborted while pending, a scope open in it.
        let h = tokio::task::spawn_local(TRACKER.instrument(
            async {
                let _s = TRACKER.scope("aborted-scope", "scope");
                std::mem::forget(black_box(vec![5u8; 77]));
                std::future::pending::<()>().await;
            },
            "aborted",
            "task",
        ));
        yield_now().await;
        yield_now().await;
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        assert_eq!(tag(), None, "after the aborted task was dropped");
        assert_eq!(counts_of(&TRACKER, "aborted-scope"), (1, 77));

        // 3. select! drops a pending instrumented branch (a scope open in it) inside the
        //    parent's poll: the parent's own scope tags again afterwards.
        let parent = TRACKER.instrument(
            async {
                let ps = TRACKER.scope("parent-scope", "scope");
                let slow = TRACKER.instrument(
                    async {
                        let _s = TRACKER.scope("slow-scope", "scope");
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    },
                    "slow",
                    "task",
                );
                let fast = TRACKER.instrument(
                    async {
                        yield_now().await;
                        yield_now().await;
                    },
                    "fast",
                    "task",
                );
                tokio::select! {
                    () = slow => unreachable!(),
                    () = fast => {}
                }
                assert_eq!(tag(), is("parent-scope"), "after select! dropped `slow`");
                yield_now().await;
                assert_eq!(tag(), is("parent-scope"));
                drop(ps);
                assert_eq!(tag(), is("parent"));
            },
            "parent",
            "task",
        );
        parent.await;
        assert_eq!(tag(), None);
    });
    drop(local);
    drop(rt);

    // 4. block_on on a multi-threaded runtime, inside a scope of the caller, with a scope
    //    held across awaits that wait for the workers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let outer = TRACKER.scope("caller", "scope");
    rt.block_on(TRACKER.instrument(
        async {
            let s = TRACKER.scope("mt-scope", "scope");
            for _ in 0..3 {
                tokio::spawn(async { yield_now().await }).await.unwrap();
                assert_eq!(tag(), is("mt-scope"));
            }
            drop(s);
            assert_eq!(tag(), is("mt-task"));
        },
        "mt-task",
        "task",
    ));
    assert_eq!(tag(), is("caller"), "after block_on");
    drop(outer);
    assert_eq!(tag(), None);
    drop(rt);
}
