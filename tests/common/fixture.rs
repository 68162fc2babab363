//! A small program that links leaktracker, built by the tests with `rustc`. Its first
//! argument picks what it does before it ends.

use leaktracker::{LeakTracker, TrackingAllocator};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

thread_local! {
    static CACHE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Leaks a tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block
/// made in a scope ("session-7", "session").
fn leak() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    let _scope = TRACKER.scope("session-7", "session");
    black_box(Box::leak(black_box(Box::new([1u8; 64]))));
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "none" => {
            let v = black_box(vec![1u8; 10]);
            leaktracker::track_resource(&v, "freed", "database").unwrap();
            drop(v);
        }
        "leak" => leak(),
        "panic" => {
            leak();
            panic!("boom in main");
        }
        "thread" => {
            std::thread::spawn(|| {
                let _scope = TRACKER.scope("worker-1", "worker");
                black_box(Box::leak(black_box(vec![3u8; 48]).into_boxed_slice()));
            })
            .join()
            .unwrap();
        }
        "ages" => {
            let old = vec![1u8; 10];
            leaktracker::track_resource(&old, "old-1", "database").unwrap();
            std::mem::forget(old);
            std::thread::sleep(Duration::from_millis(400));
            let young = vec![2u8; 20];
            leaktracker::track_resource(&young, "young-1", "database").unwrap();
            std::mem::forget(young);
        }
        "cache" => {
            leak();
            for (name, kind) in [("global-cache", "cache"), ("global-pool", "pool")] {
                let v = vec![0u8; 30];
                leaktracker::track_resource(&v, name, kind).unwrap();
                std::mem::forget(v);
            }
        }
        "println" => {
            {
                let _scope = TRACKER.scope("printing", "io");
                println!("hello from inside a scope");
            }
            // std frees stdout's buffer at exit: look before that too.
            let live = leaktracker::LeakReport::capture();
            eprintln!("live after the first println: {}", live.leaks().len());
        }
        "panic_backtrace" => {
            let _scope = TRACKER.scope("panicking", "panic");
            let r = std::panic::catch_unwind(|| panic!("expected panic"));
            assert!(r.is_err());
        }
        "thread_local" => {
            {
                let _scope = TRACKER.scope("tls", "tls");
                CACHE.with(|c| c.borrow_mut().extend(0..1000));
            }
            // Tagged while the thread lives; destroyed before the exit report.
            let live = leaktracker::LeakReport::capture();
            eprintln!("live before exit: {}", live.leaks().len());
        }
        "unjoined" => {
            let _scope = TRACKER.scope("spawner", "threads");
            std::thread::spawn(|| loop {
                std::thread::park();
            });
            std::thread::sleep(Duration::from_millis(50));
        }
        "builder" => {
            let dir = std::env::args().nth(2).unwrap();
            leaktracker::ExitReport::new()
                .to_file(format!("{dir}/built-%p.json"))
                .ignore("kind:session".parse().unwrap())
                .exit_code(9)
                .install();
            leak();
        }
        "many" => {
            let _scope = TRACKER.scope("many", "bulk");
            for i in 0..1000u32 {
                black_box(Box::leak(black_box(Box::new(i))));
            }
        }
        "" => {}
        other => panic!("unknown mode {other}"),
    }
}
