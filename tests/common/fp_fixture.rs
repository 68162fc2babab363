//! Built by `tests/backtrace_frame_pointers.rs` with `-C force-frame-pointers=yes`: leaks
//! one block from `leak_one` (through two more functions), on the main thread and on a
//! spawned one, with the unwinder named by its argument, and prints the user frames of
//! each block's stack, innermost first, one stack per line.

use leaktracker::report::LeakReport;
use leaktracker::{set_unwinder, Backtraces, LeakTracker, TrackingAllocator, Unwinder};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[inline(never)]
fn parse_request_headers() -> Box<[u8; 200]> {
    black_box(Box::new([3u8; 200]))
}

#[inline(never)]
fn handle_request() -> Box<[u8; 200]> {
    black_box(parse_request_headers())
}

#[inline(never)]
fn leak_one(tracker: &LeakTracker) -> Box<[u8; 200]> {
    let _s = tracker.scope("request-1", "http");
    handle_request()
}

fn print_user_frames(tracker: &LeakTracker) {
    let report = LeakReport::of(tracker);
    for n in report.notes() {
        eprintln!("note: {n}");
    }
    for e in report.leaks() {
        for g in &e.stacks {
            let user: Vec<&str> = g
                .frames
                .iter()
                .filter(|f| f.starts_with("fp_fixture::"))
                .map(|f| f.split(" at ").next().unwrap())
                .collect();
            println!("{} {}", g.blocks, user.join(" < "));
        }
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("system") => set_unwinder(Unwinder::System),
        Some("frame-pointers") => set_unwinder(Unwinder::FramePointers),
        _ => panic!("usage: fp_fixture system|frame-pointers"),
    }
    let main_thread = LeakTracker::new();
    main_thread.set_backtraces(Some(Backtraces::All));
    let a = leak_one(&main_thread);
    print_user_frames(&main_thread);

    let other = LeakTracker::new();
    other.set_backtraces(Some(Backtraces::All));
    let b = std::thread::scope(|s| s.spawn(|| leak_one(&other)).join().unwrap());
    print_user_frames(&other);
    drop((a, b));
}
