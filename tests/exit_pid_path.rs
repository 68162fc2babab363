//! `%p` in LEAKTRACKER_REPORT becomes the process id; a path not ending in `.json` gets text.
//!
//! The program under test is this test binary, re-run as a child in the role `leak`: it
//! leaks a tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block made
//! in a scope ("session-7", "session"), prints nothing and passes.

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "leak" => {
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
    let dir = temp_dir("exit_pid_path");
    let template = dir.join("leaks-%p.json");
    let child = self_command(
        "leak",
        &[("LEAKTRACKER_REPORT", template.to_str().unwrap())],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert_eq!(child_stdout(&out), "", "{out}");
    assert_eq!(err, "", "the report goes to the file only");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files,
        [format!("leaks-{pid}.json")],
        "no temporary file is left behind"
    );
    let j = read_json(&dir.join(format!("leaks-{pid}.json")));
    assert_eq!(j["pid"], pid);

    // Text when the path does not end in .json; %p more than once.
    let t = dir.join("t-%p-%p.txt");
    let child = self_command("leak", &[("LEAKTRACKER_REPORT", t.to_str().unwrap())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let body = std::fs::read_to_string(dir.join(format!("t-{pid}-{pid}.txt"))).unwrap();
    assert!(
        body.starts_with(&format!("leaktracker report (pid {pid}): 2 resources")),
        "{body}"
    );
}
