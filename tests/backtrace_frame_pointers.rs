//! `Unwinder::FramePointers` in a program built with `-C force-frame-pointers=yes`: the
//! stacks walked by the frame-pointer chain resolve to the same user functions as the
//! system unwinder's, on the main thread and on a spawned one (other stack bounds).
//! Built without frame pointers, the same program still reports its blocks, with shorter
//! stacks. Selected in code here; `LEAKTRACKER_UNWIND` is covered with the other variables.

mod common;
use common::*;

use leaktracker::{unwinder, TrackingAllocator, Unwinder};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    assert_eq!(unwinder(), Unwinder::System, "the default");
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

    // The same program built without frame pointers: the frame-pointer walk (and not a
    // silent fall-back to the system unwinder) loses the user frames, and still neither
    // crashes nor fails to report the blocks.
    let exe = build_fixture_with(
        "fp_fixture",
        include_str!("common/fp_fixture.rs"),
        &["-C", "force-frame-pointers=no"],
    );
    let o = run_fixture(&exe, "frame-pointers", &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.lines().count(), 2, "one stack per block: {out}");
    assert!(out.lines().all(|l| l.starts_with("1 ")), "{out}");
    assert_ne!(
        out, system,
        "without frame pointers the walk cannot see the user frames"
    );
}
