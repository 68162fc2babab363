//! Bad live-report values: one clear line each, then the default; the program runs on.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn child() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
}

#[test]
fn main() {
    if role().is_some() {
        return child();
    }
    let dir = temp_dir("live_bad_values");
    let template = dir.join("r-%n.json");
    let o = run_self(
        "service",
        &[
            ("LEAKTRACKER_SIGNAL", "KILL"),
            ("LEAKTRACKER_INTERVAL", "0"),
            ("LEAKTRACKER_KEEP", "none"),
            ("LEAKTRACKER_LABELS", "service=api,oops,=eu"),
            ("LEAKTRACKER_REPORT", template.to_str().unwrap()),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "leaktracker: LEAKTRACKER_SIGNAL=\"KILL\" is not a signal a report can be asked with (USR1, USR2, HUP, …); no snapshots on a signal",
            "leaktracker: LEAKTRACKER_INTERVAL=\"0\" is not a duration above 0 (500ms, 60s, 5m, 1h); no interval snapshots",
            "leaktracker: LEAKTRACKER_KEEP=\"none\" is not a number of files from 1 up; every snapshot file stays",
            "leaktracker: LEAKTRACKER_LABELS: \"oops\", \"=eu\" not `key=value`; ignored",
        ]
    );
    // The good parts apply: the exit report (number 1, the only report), the good label.
    let exit = read_json(&dir.join("r-1.json"));
    assert_eq!(exit["labels"], serde_json::json!({"service": "api"}));
    assert_eq!(exit["leaks"][0]["name"], "connection-1");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}
