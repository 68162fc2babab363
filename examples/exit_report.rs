//! An age-threshold report at exit: a small service keeps sessions, a cache and a
//! connection pool; at exit, leaktracker lists what is still live and older than 200 ms,
//! grouped by kind, with the place each block was allocated, and skips the cache (an
//! allow-list entry). The report goes to stderr (`LEAKTRACKER_REPORT=leaks.json` would
//! write JSON instead).
//!
//! Run: `cargo run --example exit_report`
//! The same without code changes: `LEAKTRACKER_REPORT=stderr LEAKTRACKER_MIN_AGE=200ms
//! LEAKTRACKER_IGNORE=kind:cache LEAKTRACKER_BACKTRACE=1 cargo run --example walkthrough`

use leaktracker::{Backtraces, ExitReport, LeakTracker, TrackingAllocator};
use std::collections::HashMap;
use std::time::Duration;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static SESSIONS: LeakTracker = LeakTracker::new();

struct Session {
    user: String,
    cart: Vec<u64>,
}

#[inline(never)]
fn open_session(id: u32) -> Session {
    let _tag = SESSIONS.scope(format!("session-{id}"), "session");
    Session {
        user: format!("user-{id}"),
        cart: (0..16 * u64::from(id)).collect(),
    }
}

#[inline(never)]
fn connect(pool: &mut Vec<Vec<u8>>, n: usize) {
    for i in 0..n {
        let conn = vec![0u8; 512];
        leaktracker::track_resource(&conn, format!("db-conn-{i}"), "database").unwrap();
        pool.push(conn);
    }
}

fn main() {
    // Everything the exit report needs, in code (the LEAKTRACKER_* variables do the same).
    ExitReport::new()
        .to_stderr()
        .min_age(Duration::from_millis(200))
        .ignore("kind:cache".parse().unwrap())
        .backtraces(Backtraces::All)
        .install();
    println!("service starting; exit report (older than 200 ms) at the end");

    let mut cache: HashMap<u32, String> = HashMap::new();
    {
        let _tag = leaktracker::LeakTracker::global().scope("lookup-cache", "cache");
        for i in 0..100 {
            cache.insert(i, format!("value-{i}"));
        }
    }
    let mut pool = Vec::with_capacity(8);
    connect(&mut pool, 3);
    let mut sessions: Vec<Session> = (1..=4).map(open_session).collect();

    // Sessions 1 and 2 log out properly; 3 and 4 are forgotten (the leak).
    sessions.drain(..2);
    std::thread::sleep(Duration::from_millis(300));
    // A session opened just before exit is younger than the threshold: not listed.
    let late = open_session(5);

    let carts: usize = sessions.iter().chain([&late]).map(|s| s.cart.len()).sum();
    println!(
        "{} sessions open ({}, …; {carts} cart items), {} connections, {} cache entries",
        sessions.len() + 1,
        sessions[0].user,
        pool.len(),
        cache.len()
    );
    drop(pool); // the pool closes cleanly
    std::mem::forget((sessions, late, cache)); // exit without dropping: leaks at exit
}
