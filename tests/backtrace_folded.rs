//! Folded stacks: one line per (resource, stack), outermost frame first after the kind and
//! name, then the leaked bytes; lines add up to the report's bytes.

use leaktracker::report::LeakReport;
use leaktracker::{set_backtraces, Backtraces, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[inline(never)]
fn make_cache_entry() -> Vec<u8> {
    black_box(vec![0u8; 4000])
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    // Before capture is on: this one has no stack.
    let early = black_box(vec![1u8; 100]);
    tracker.track(&early, "early", "misc").unwrap();

    set_backtraces(Backtraces::All);
    let kept = {
        let _s = tracker.scope("cache-1", "cache");
        (make_cache_entry(), make_cache_entry())
    };
    let report = LeakReport::of(&tracker);
    let folded = report.to_folded();
    let lines: Vec<&str> = folded.lines().collect();
    assert_eq!(lines.len(), 2, "{folded}");

    assert_eq!(lines[0], "misc;early;[no backtrace] 100");

    let (stack, bytes) = lines[1].rsplit_once(' ').unwrap();
    assert_eq!(bytes, "8000", "both entries share one stack: {folded}");
    let frames: Vec<&str> = stack.split(';').collect();
    assert_eq!(&frames[..2], &["cache", "cache-1"]);
    assert_eq!(
        *frames.last().unwrap(),
        "backtrace_folded::make_cache_entry",
        "innermost frame last: {folded}"
    );
    assert!(frames.contains(&"backtrace_folded::main"), "{folded}");
    assert!(
        frames.iter().all(|f| !f.contains(" at ")),
        "labels without file:line"
    );

    let total: usize = lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, report.totals().bytes);

    drop((early, kept));
    assert_eq!(LeakReport::of(&tracker).to_folded(), "");
}
