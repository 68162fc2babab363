//! A tour of `leaktracker`, section by section as in the Python original's walkthrough.
//!
//! Run it with `cargo run --release --example walkthrough` (about 1.5 s: one 1 s sleep).

use leaktracker::{
    track_resource, untrack_resource, LeakInfo, LeakTracker, Trackable, TrackingAllocator,
};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Duration;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

/// A tracker in a `static`, for the pool of section 10.
static POOLS: LeakTracker = LeakTracker::new();

fn section(n: u32, title: &str) {
    println!("\n{n:>2}. {title}");
}

fn show(tracker: &LeakTracker) {
    let live = tracker.live();
    println!("    {} live", live.len());
    for info in &live {
        println!("      - {info}");
    }
}

/// A connection whose buffer is its heap block: `Trackable` by delegation.
struct Connection {
    buffer: Vec<u8>,
}

// SAFETY: delegates to `buffer`, a `Vec<u8>` the connection owns.
unsafe impl Trackable for Connection {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        self.buffer.heap_block()
    }
}

fn open_connections(tracker: &LeakTracker, n: usize) -> Vec<Connection> {
    (0..n)
        .map(|i| {
            let c = Connection {
                buffer: black_box(vec![0; 4096]),
            };
            tracker
                .track(&c, format!("conn-{i}"), "connection")
                .unwrap();
            c
        })
        .collect()
}

/// A pool tracked in `POOLS` when made and untracked when dropped.
struct Pool {
    slots: Vec<Option<Box<[u8; 256]>>>,
}

impl Pool {
    fn new(name: &'static str) -> Pool {
        let pool = Pool {
            slots: (0..8).map(|_| None).collect(),
        };
        POOLS.track(&pool.slots, name, "pool").unwrap();
        pool
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        POOLS.untrack(&self.slots);
    }
}

fn grouped_by_kind(live: &[LeakInfo]) {
    let mut groups: BTreeMap<&str, (usize, usize, Vec<&str>)> = BTreeMap::new();
    for info in live {
        let g = groups.entry(&info.kind).or_default();
        g.0 += 1;
        g.1 += info.bytes;
        g.2.push(&info.name);
    }
    println!("    {:<10} {:>5} {:>8}  names", "kind", "count", "bytes");
    for (kind, (count, bytes, names)) in groups {
        println!("    {kind:<10} {count:>5} {bytes:>8}  {}", names.join(", "));
    }
}

fn main() {
    println!(
        "leaktracker walkthrough (allocator installed: {})",
        leaktracker::is_installed()
    );
    let tracker = LeakTracker::new();

    section(
        1,
        "track: a tracked object is listed with its name, kind and creation time",
    );
    let conn = black_box(vec![0u8; 1024]);
    tracker.track(&conn, "connection-1", "database").unwrap();
    let info = tracker.live().remove(0);
    let since_epoch = info
        .created_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    println!(
        "    name={} kind={} created_at={}.{:03} (Unix time), age {:?}",
        info.name,
        info.kind,
        since_epoch.as_secs(),
        since_epoch.subsec_millis(),
        info.age()
    );
    show(&tracker);

    section(2, "drop: a dropped object leaves by itself");
    drop(conn);
    show(&tracker);

    section(3, "untrack: the object lives on, untracked");
    let cache = black_box(vec![1u64; 128]);
    tracker.track(&cache, "cache-1", "cache").unwrap();
    println!("    untrack -> {}", tracker.untrack(&cache));
    println!("    object still holds {} items", cache.len());
    show(&tracker);
    drop(cache);

    section(
        4,
        "five objects of three kinds, in tracking order, grouped by kind",
    );
    let plan = [
        ("db-primary", "database"),
        ("cache-users", "cache"),
        ("db-replica", "database"),
        ("session-42", "session"),
        ("cache-items", "cache"),
    ];
    let objects: Vec<Vec<u8>> = (0..5).map(|i| black_box(vec![0; 100 * (i + 1)])).collect();
    for (obj, (name, kind)) in objects.iter().zip(plan) {
        tracker.track(obj, name, kind).unwrap();
    }
    show(&tracker);
    grouped_by_kind(&tracker.live());

    section(
        5,
        "ages: after a 1 s sleep all five are older than 1 s, a new one is not",
    );
    std::thread::sleep(Duration::from_millis(1010));
    let fresh = black_box(vec![0u8; 10]);
    tracker.track(&fresh, "fresh", "session").unwrap();
    let older = tracker.live_older_than(Duration::from_secs(1));
    println!(
        "    older than 1 s: {} of {}",
        older.len(),
        tracker.live().len()
    );
    for info in &older {
        println!("      - {} is {:.2?} old", info.name, info.age());
    }
    drop(objects);
    drop(fresh);

    section(6, "the global tracker is independent of local ones");
    let global_obj = black_box(String::from("app config"));
    track_resource(&global_obj, "config", "global").unwrap();
    let local_obj = black_box(vec![0u8; 64]);
    tracker.track(&local_obj, "local-thing", "local").unwrap();
    tracker.clear();
    println!(
        "    after clear on the local tracker: local {} live, global {} live",
        tracker.live().len(),
        LeakTracker::global().live().len()
    );
    println!("    untrack_resource -> {}", untrack_resource(&global_obj));
    drop((global_obj, local_obj));

    section(7, "a function that keeps 10 tracked connections");
    let conns = open_connections(&tracker, 10);
    println!("    while kept: {} live", tracker.live().len());
    drop(conns);
    println!("    after drop: {} live", tracker.live().len());

    section(8, "5 threads tracking 20 objects each");
    let objs: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|t| {
                let tracker = &tracker;
                s.spawn(move || {
                    let objs: Vec<Vec<u8>> = (0..20).map(|_| black_box(vec![t; 32])).collect();
                    for (i, o) in objs.iter().enumerate() {
                        tracker
                            .track(o, format!("t{t}-{i}"), format!("thread-{t}"))
                            .unwrap();
                    }
                    objs
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("    live: {}", tracker.live().len());
    drop(objs);
    println!("    after the objects drop: {}", tracker.live().len());

    section(
        9,
        "clear: 10 tracked objects forgotten, the objects live on",
    );
    let mut ten: Vec<Vec<u8>> = (0..10).map(|_| black_box(vec![7u8; 50])).collect();
    for (i, o) in ten.iter().enumerate() {
        tracker.track(o, format!("item-{i}"), "item").unwrap();
    }
    println!("    before clear: {} live", tracker.live().len());
    tracker.clear();
    ten[0].push(8);
    println!(
        "    after clear: {} live, objects still usable ({} items in the first)",
        tracker.live().len(),
        ten[0].len()
    );
    drop(ten);

    section(
        10,
        "a pool tracked in a static tracker, untracked in its Drop",
    );
    {
        let _pool = Pool::new("db-pool");
        println!("    inside its scope: {} live", POOLS.live().len());
    }
    println!("    after its scope: {} live", POOLS.live().len());

    println!("\nScopes: everything a block of code allocates, as one resource");
    let session = {
        let _scope = tracker.scope("session-7", "session");
        (String::from("user"), vec![1u64; 100], Box::new([0u8; 512]))
    };
    show(&tracker);
    let forgotten_pool = Pool::new("forgotten-pool");
    std::mem::forget(forgotten_pool); // a real leak: never dropped

    println!("\nSummary: still live at the end");
    let mut all = tracker.live();
    all.extend(POOLS.live());
    all.extend(LeakTracker::global().live());
    grouped_by_kind(&all);
    for info in &all {
        println!("    - {info}");
    }
    drop(session);
}
