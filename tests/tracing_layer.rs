//! The `tracing` layer: a resource per span, named by the span's name and kinded by its
//! target, or by the fields picked (`conn_id`, `pool`); allocations made inside entered
//! spans are tagged (nested spans, out-of-order exits, the same span entered twice, a span
//! entered on two threads at once, a scope around a span), blocks that outlive the span
//! are listed under its name, and spans that leave nothing behind are not listed.

#![cfg(feature = "tracing")]

mod common;
use common::counts_with_kind;

use std::hint::black_box;
use std::sync::Barrier;

use leaktracker::{LeakLayer, LeakTracker, TrackingAllocator};
use tracing::field::Empty;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn block(size: usize) -> Box<[u8]> {
    black_box(vec![3u8; size].into_boxed_slice())
}

fn leak(size: usize) {
    black_box(Box::leak(block(size)));
}

fn entry(
    name: &str,
    kind: &str,
    allocations: usize,
    bytes: usize,
) -> (String, String, usize, usize) {
    (name.to_owned(), kind.to_owned(), allocations, bytes)
}

#[test]
fn main() {
    let layer = LeakLayer::new(&TRACKER)
        .name_field("conn_id")
        .kind_field("pool");
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
    // Blocks the test keeps: reserved up front, so pushing never allocates.
    let mut kept: Vec<Box<[u8]>> = Vec::with_capacity(64);

    // 1. Nested spans: the innermost entered span wins; exiting it gives the outer one back.
    //    Default naming (span name, target) and field naming (conn_id, pool).
    {
        let request = info_span!(target: "svc", "request");
        let _r = request.enter();
        kept.push(block(100));
        {
            let query = info_span!(target: "svc::db", "query", conn_id = 7, pool = "main");
            let _q = query.enter();
            kept.push(block(200));
            leak(201);
        }
        kept.push(block(300));
    }
    kept.push(block(400)); // outside every span: untagged
    assert_eq!(
        counts_with_kind(&TRACKER),
        [entry("request", "svc", 2, 400), entry("7", "main", 2, 401)]
    );

    // 2. A span entered on two threads at once tags on both; the main thread, outside it
    //    meanwhile, is not tagged.
    let batch = info_span!(target: "worker", "batch", conn_id = "batch-1");
    let inside = Barrier::new(3);
    let done = Barrier::new(3);
    let from_threads: Vec<Box<[u8]>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (batch, inside, done) = (&batch, &inside, &done);
                s.spawn(move || {
                    let _e = batch.enter();
                    let b = block(50 + t);
                    inside.wait();
                    leak(60 + t);
                    done.wait();
                    b
                })
            })
            .collect();
        inside.wait();
        kept.push(block(500)); // untagged, while both threads are inside `batch`
        done.wait();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(batch);
    assert_eq!(
        counts_with_kind(&TRACKER)[2],
        entry("batch-1", "worker", 4, 50 + 51 + 60 + 61),
        "{:?}",
        counts_with_kind(&TRACKER)
    );
    drop(from_threads);
    assert_eq!(
        counts_with_kind(&TRACKER)[2],
        entry("batch-1", "worker", 2, 121)
    );

    // 3. Out-of-order exits and a span entered twice on one thread.
    let a = info_span!(target: "svc", "a", conn_id = "span-a");
    let b = info_span!(target: "svc", "b", conn_id = "span-b");
    let ga = a.enter();
    let gb = b.enter();
    drop(ga); // `b` is still entered: it stays the tag
    kept.push(block(10)); // b
    let gb2 = b.enter();
    kept.push(block(11)); // b
    drop(gb2);
    kept.push(block(12)); // b
    drop(gb); // back to no tag at all (not to `a`)
    kept.push(block(13)); // untagged
    let ga = a.enter();
    kept.push(block(14)); // a
    drop(ga);
    kept.push(block(15)); // untagged
    drop((a, b));
    let now = counts_with_kind(&TRACKER);
    assert_eq!(
        now[3..],
        [entry("span-a", "svc", 1, 14), entry("span-b", "svc", 3, 33)]
    );

    // 4. A field recorded after creation renames the resource; its creation time stays.
    let late = info_span!(target: "svc", "late", conn_id = Empty);
    late.record("conn_id", "conn-9");
    late.in_scope(|| leak(9));
    drop(late);
    assert_eq!(counts_with_kind(&TRACKER)[5], entry("conn-9", "svc", 1, 9));

    // 5. A scope around a span: the span tags while entered, the scope before and after.
    {
        let _scope = TRACKER.scope("outer-scope", "scope");
        kept.push(block(21));
        info_span!(target: "svc", "inside-scope").in_scope(|| kept.push(block(22)));
        kept.push(block(23));
    }
    kept.push(block(24)); // untagged

    // 6. A span that leaves nothing behind is not listed.
    info_span!(target: "svc", "clean").in_scope(|| drop(black_box(block(1000))));

    assert_eq!(
        counts_with_kind(&TRACKER),
        [
            entry("request", "svc", 2, 400),
            entry("7", "main", 2, 401),
            entry("batch-1", "worker", 2, 121),
            entry("span-a", "svc", 1, 14),
            entry("span-b", "svc", 3, 33),
            entry("conn-9", "svc", 1, 9),
            entry("outer-scope", "scope", 2, 44),
            entry("inside-scope", "svc", 1, 22),
        ]
    );

    // Freeing the kept blocks: only the leaked ones stay, under their spans' names.
    drop(kept);
    assert_eq!(
        counts_with_kind(&TRACKER),
        [
            entry("7", "main", 1, 201),
            entry("batch-1", "worker", 2, 121),
            entry("conn-9", "svc", 1, 9),
        ]
    );
}
