//! `Unwinder::FramePointers` in a program built with `-C force-frame-pointers=yes`: the
//! stacks walked by the frame-pointer chain resolve to the same user functions as the
//! system unwinder's, on the main thread and on a spawned one (other stack bounds).
//! Built without frame pointers, the frame-pointer walk ends at once: the stacks are walked
//! by the unwind tables instead, and the report says so. Selected in code here; `LEAKTRACKER_UNWIND` is covered with the other variables.

mod common;
use common::*;

use leaktracker::{unwinder, TrackingAllocator, Unwinder};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    assert_eq!(unwinder(), Unwinder::Tables, "the default");
    let exe = build_fixture_with(
        "fp_fixture",
        include_str!("common/fp_fixture.rs"),
        &["-C", "force-frame-pointers=yes"],
    );
    let run = |mode: &str| {
        let o = run_fixture(&exe, mode, &[]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{mode}: {err}");
        out
    };
    let expected = "1 fp_fixture::parse_request_headers < fp_fixture::handle_request \
                    < fp_fixture::leak_one < fp_fixture::main\n";
    let system = run("system");
    let fp = run("frame-pointers");
    // Main thread: the whole user stack. Spawned thread: the same three innermost frames
    // (then the closure that called them).
    let lines: Vec<&str> = system.lines().collect();
    assert_eq!(lines.len(), 2, "{system}");
    assert_eq!(format!("{}\n", lines[0]), expected, "{system}");
    assert!(
        lines[1].starts_with(
            "1 fp_fixture::parse_request_headers < fp_fixture::handle_request \
             < fp_fixture::leak_one < fp_fixture::main::{{closure"
        ),
        "{system}"
    );
    assert_eq!(fp, system, "frame pointers and the system unwinder agree");

    // The same program built without frame pointers: the frame-pointer walk ends within
    // two frames of the allocator, so the stack is walked again by the unwind tables (the
    // same user frames), and the report says so.
    let exe = build_fixture_with(
        "fp_fixture",
        include_str!("common/fp_fixture.rs"),
        &["-C", "force-frame-pointers=no"],
    );
    let o = run_fixture(&exe, "frame-pointers", &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out, system, "fell back to complete stacks");
    assert!(
        err.contains("frame pointers were asked for") && err.contains("force-frame-pointers=yes"),
        "the report says the frame-pointer walk did not work: {err}"
    );
    // With frame pointers, no such note.
    let exe = build_fixture_with(
        "fp_fixture",
        include_str!("common/fp_fixture.rs"),
        &["-C", "force-frame-pointers=yes"],
    );
    let (_, err) = text(&run_fixture(&exe, "frame-pointers", &[]));
    assert!(!err.contains("frame pointers were asked for"), "{err}");
    assert!(
        err.contains("backtraces: 1 of 1 blocks have a stack (walked by frame pointers)"),
        "{err}"
    );
}
