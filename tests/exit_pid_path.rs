//! `%p` in LEAKTRACKER_REPORT becomes the process id; a path not ending in `.json` gets text.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let dir = temp_dir("exit_pid_path");
    let template = dir.join("leaks-%p.json");
    let child = command(&exe, &[("LEAKTRACKER_REPORT", template.to_str().unwrap())])
        .arg("leak")
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
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
    let child = command(&exe, &[("LEAKTRACKER_REPORT", t.to_str().unwrap())])
        .arg("leak")
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait_with_output().unwrap().status.success());
    let body = std::fs::read_to_string(dir.join(format!("t-{pid}-{pid}.txt"))).unwrap();
    assert!(
        body.starts_with(&format!("leaktracker report (pid {pid}): 2 resources")),
        "{body}"
    );
}
