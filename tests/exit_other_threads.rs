//! Leaks made in a scope on another thread are in the exit report.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let dir = temp_dir("exit_other_threads");
    let path = dir.join("r.json");
    let o = run_fixture(
        &exe,
        "thread",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_EXIT_CODE", "2"),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    let j = read_json(&path);
    let leaks = j["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{j}");
    assert_eq!(leaks[0]["name"], "worker-1");
    assert_eq!(leaks[0]["kind"], "worker");
    assert_eq!(leaks[0]["allocations"], 1);
    assert_eq!(leaks[0]["bytes"], 48);
}
