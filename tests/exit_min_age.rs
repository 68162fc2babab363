//! LEAKTRACKER_MIN_AGE: only resources older than the minimum age are listed.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let dir = temp_dir("exit_min_age");
    let path = dir.join("r.json");
    let p = path.to_str().unwrap();

    // "old-1" is 400 ms older than "young-1", made just before exit.
    let o = run_fixture(
        &exe,
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
    let o = run_fixture(
        &exe,
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
    let o = run_fixture(
        &exe,
        "ages",
        &[("LEAKTRACKER_REPORT", p), ("LEAKTRACKER_MIN_AGE", "0")],
    );
    assert_eq!(o.status.code(), Some(0));
    let j = read_json(&path);
    assert_eq!(j["leaks"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(j["leaks"][0]["name"], "old-1");
    assert_eq!(j["leaks"][1]["name"], "young-1");
}
