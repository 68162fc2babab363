//! LEAKTRACKER_MIN_AGE: only resources older than the minimum age are listed.
//!
//! The program under test is this test binary, re-run as a child in the role `ages`: it
//! leaks a tracked `Vec` of 10 bytes ("old-1", "database"), sleeps 400 ms, then leaks a
//! tracked `Vec` of 20 bytes ("young-1", "database") just before the process exits.

mod common;
use common::*;

use std::time::Duration;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn child(role: &str) {
    match role {
        "ages" => {
            let old = vec![1u8; 10];
            leaktracker::track_resource(&old, "old-1", "database").unwrap();
            std::mem::forget(old);
            std::thread::sleep(Duration::from_millis(400));
            let young = vec![2u8; 20];
            leaktracker::track_resource(&young, "young-1", "database").unwrap();
            std::mem::forget(young);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let dir = temp_dir("exit_min_age");
    let path = dir.join("r.json");
    let p = path.to_str().unwrap();

    // "old-1" is 400 ms older than "young-1", made just before exit.
    let o = run_self(
        "ages",
        &[
            ("LEAKTRACKER_REPORT", p),
            ("LEAKTRACKER_MIN_AGE", "200ms"),
            ("LEAKTRACKER_EXIT_CODE", "5"),
        ],
    );
    assert_eq!(o.status.code(), Some(5), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["min_age_ms"], 200);
    let leaks = j["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{j}");
    assert_eq!(leaks[0]["name"], "old-1");
    assert!(leaks[0]["age_ms"].as_u64().unwrap() > 200, "{j}");
    assert_eq!(j["younger"]["resources"], 1);
    assert_eq!(j["younger"]["bytes"], 20);

    // Older than everything: nothing listed, status stays 0.
    let o = run_self(
        "ages",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_MIN_AGE", "1h"),
            ("LEAKTRACKER_EXIT_CODE", "5"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("no leaks older than 1h 0m"), "{err}");
    assert!(
        err.contains("not listed: 2 resources not older than 1h 0m"),
        "{err}"
    );

    // Zero (the default): both listed.
    std::fs::remove_file(&path).unwrap();
    let o = run_self(
        "ages",
        &[("LEAKTRACKER_REPORT", p), ("LEAKTRACKER_MIN_AGE", "0")],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["min_age_ms"], 0);
    assert_eq!(j["leaks"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(j["leaks"][0]["name"], "old-1");
    assert_eq!(j["leaks"][1]["name"], "young-1");
}
