//! Backtraces: with capture on, a resource's blocks are grouped by allocation stack, each
//! group resolved to the user's functions (leaktracker's own frames dropped), in the text
//! report and in the JSON `"backtrace"`.

use leaktracker::report::LeakReport;
use leaktracker::{set_backtraces, Backtraces, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[inline(never)]
#[allow(clippy::vec_box)] // separate blocks, one per buffer, is the point
fn open_connection_buffers(n: usize) -> Vec<Box<[u8; 100]>> {
    (0..n).map(|_| black_box(Box::new([1u8; 100]))).collect()
}

#[inline(never)]
fn load_session_state() -> Box<[u64; 64]> {
    black_box(Box::new([7u64; 64]))
}

#[test]
fn main() {
    set_backtraces(Backtraces::All);
    let tracker = LeakTracker::new();
    let kept = {
        let _s = tracker.scope("conn-7", "database");
        let bufs = open_connection_buffers(3);
        let state = load_session_state();
        (bufs, state)
    };

    let report = LeakReport::of(&tracker);
    assert_eq!(report.leaks().len(), 1);
    let e = &report.leaks()[0];
    assert_eq!(e.name, "conn-7");
    // 3 boxes + the Vec holding them (allocated in the same function) + the state box.
    assert_eq!(e.allocations, 5);
    assert_eq!(e.bytes, 3 * 100 + 3 * 8 + 64 * 8);
    let site = |needle: &str| {
        e.stacks
            .iter()
            .filter(|g| g.frames.first().is_some_and(|f| f.contains(needle)))
            .map(|g| (g.blocks, g.bytes))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    // Every group's first frame is user code: leaktracker's frames and the allocation
    // shims are dropped.
    for g in &e.stacks {
        assert!(
            !g.frames[0].starts_with("leaktracker::") && !g.frames[0].starts_with("__rust"),
            "{:#?}",
            e.stacks
        );
        assert!(
            g.frames
                .iter()
                .any(|f| f.contains("backtrace_capture::main")),
            "{:#?}",
            g.frames
        );
    }
    let all: usize = e.stacks.iter().map(|g| g.blocks).sum();
    assert_eq!(all, 5, "every block has a stack: {:#?}", e.stacks);
    assert_eq!(site("load_session_state").0, 1, "{:#?}", e.stacks);
    assert_eq!(site("load_session_state").1, 512);
    // The boxes come from `open_connection_buffers` (possibly through an inlined closure
    // or iterator frame: count by any frame naming it).
    let in_open: (usize, usize) = e
        .stacks
        .iter()
        .filter(|g| {
            g.frames
                .iter()
                .take_while(|f| !f.contains("backtrace_capture::main"))
                .any(|f| f.contains("open_connection_buffers"))
        })
        .map(|g| (g.blocks, g.bytes))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(in_open, (4, 324), "{:#?}", e.stacks);
    // File and line of the user's code.
    let g = e
        .stacks
        .iter()
        .find(|g| g.frames[0].contains("load_session_state"))
        .unwrap();
    assert!(
        g.frames[0].contains("backtrace_capture.rs:"),
        "{:#?}",
        g.frames
    );

    let text = report.to_string();
    assert!(text.contains("allocated at:"), "{text}");
    assert!(text.contains("load_session_state"), "{text}");

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let leak = &json["leaks"][0];
    let bt = leak["backtrace"].as_array().expect("backtrace array");
    assert!(!bt.is_empty());
    assert!(bt.iter().all(|f| f.is_string()));
    assert!(
        bt[0].as_str().unwrap().contains("load_session_state"),
        "largest group first: {bt:?}"
    );

    drop(kept);
    assert!(LeakReport::of(&tracker).is_empty());
    let stats = leaktracker::stats();
    assert!(stats.stacks >= 2, "{stats:?}");
}
