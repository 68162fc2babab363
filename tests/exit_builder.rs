//! `ExitReport` in code: the same configuration as the variables, replacing them.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let dir = temp_dir("exit_builder");
    // The variables say stderr and code 2; the builder (file, kind:session ignored, code 9)
    // replaces them.
    let child = command(
        &exe,
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "2"),
        ],
    )
    .args(["builder", dir.to_str().unwrap()])
    .spawn()
    .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(9), "{err}");
    assert_eq!(err, "", "the report went to the file, not stderr");
    let j = read_json(&dir.join(format!("built-{pid}.json")));
    assert_eq!(j["leaks"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["leaks"][0]["name"], "connection-1");
    assert_eq!(
        j["allow_list"],
        serde_json::json!([{"pattern": "kind:session", "matched": 1}])
    );
}
