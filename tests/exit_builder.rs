//! `ExitReport` in code: the same configuration as the variables, replacing them.
//!
//! The program under test is this test binary, re-run as a child in the role `builder`:
//! it installs an `ExitReport` (JSON to `built-%p.json` in the directory named by
//! `LT_TEST_DIR`, `kind:session` ignored, exit code 9), then leaks a tracked `Vec` of 100
//! bytes ("connection-1", "database") and a 64-byte block made in a scope ("session-7",
//! "session").

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

/// The variable that names the child's report directory.
const DIR: &str = "LT_TEST_DIR";

fn child(role: &str) {
    match role {
        "builder" => {
            let dir = std::env::var(DIR).unwrap();
            leaktracker::ExitReport::new()
                .to_file(format!("{dir}/built-%p.json"))
                .ignore("kind:session".parse().unwrap())
                .exit_code(9)
                .install();
            leak_pair(&TRACKER);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let dir = temp_dir("exit_builder");
    // The variables say stderr and code 2; the builder (file, kind:session ignored, code 9)
    // replaces them. Spawned as `run_self` runs it: the report's name has the child's pid.
    let child = self_command(
        "builder",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_EXIT_CODE", "2"),
            (DIR, dir.to_str().unwrap()),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(9), "{err}");
    assert_eq!(err, "", "the report went to the file, not stderr");
    assert_eq!(child_stdout(&out), "", "nor to stdout: {out}");
    let reports: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        reports,
        [format!("built-{pid}.json").as_str()],
        "one report"
    );
    let j = read_json(&dir.join(format!("built-{pid}.json")));
    assert_eq!(j["leaks"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["leaks"][0]["name"], "connection-1");
    assert_eq!(
        j["allow_list"],
        serde_json::json!([{"pattern": "kind:session", "matched": 1}])
    );
}
