//! The panic hook runs untagged: a panic inside a scope with `RUST_BACKTRACE=1` makes std
//! symbolise a backtrace (tens of thousands of blocks of debug-info cache kept for the life
//! of the process); none of them may be tagged by the scope (DESIGN.md, "Truthful
//! reports"; leaktracker wraps the hook at start-up). Re-runs itself as a child with `--nocapture`, so the default hook writes to
//! the real stderr.

mod common;

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};

use leaktracker::{LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn child() {
    let t = LeakTracker::new();
    let mut kept = None;
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _s = t.scope("panicky", "panic");
        kept = Some(black_box(vec![1u8; 40]));
        panic!("boom");
    }));
    drop(r);
    let live: Vec<String> = t
        .live()
        .iter()
        .map(|i| format!("{}={}/{}", i.name, i.allocations, i.bytes))
        .collect();
    eprintln!("LIVE [{}]", live.join(","));
    drop(kept);
}

#[test]
fn main() {
    if common::role().is_some() {
        child();
        return;
    }
    let out = common::self_command("panic", &[("RUST_BACKTRACE", "1")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("boom"), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("LIVE ")).unwrap();
    assert_eq!(line, "LIVE [panicky=1/40]");
}
