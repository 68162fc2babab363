//! LEAKTRACKER_IGNORE: allow-listed resources are not listed; each pattern's match count
//! is reported, and patterns that matched nothing are named.
//!
//! The program under test is this test binary, re-run as a child in the role `cache`: it
//! leaks a tracked `Vec` of 100 bytes ("connection-1", "database"), a 64-byte block made
//! in a scope ("session-7", "session"), and two tracked `Vec`s of 30 bytes
//! ("global-cache", "cache" and "global-pool", "pool").

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "cache" => {
            leak_pair_and_caches(&TRACKER);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let dir = temp_dir("exit_allow_list");
    let path = dir.join("r.json");
    let p = path.to_str().unwrap();

    // "cache" leaks connection-1 (database), session-7 (session), global-cache (cache),
    // global-pool (pool).
    let o = run_self(
        "cache",
        &[
            ("LEAKTRACKER_REPORT", p),
            (
                "LEAKTRACKER_IGNORE",
                "kind:cache, name:global-*,kind:nothing-*",
            ),
            ("LEAKTRACKER_EXIT_CODE", "4"),
        ],
    );
    assert_eq!(o.status.code(), Some(4), "{:?}", text(&o));
    let j = read_json(&path);
    let names: Vec<&str> = j["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["connection-1", "session-7"]);
    let al = j["allow_list"].as_array().unwrap();
    assert_eq!(al.len(), 3);
    assert_eq!(al[0]["pattern"], "kind:cache");
    assert_eq!(al[0]["matched"], 1);
    assert_eq!(al[1]["pattern"], "name:global-*");
    assert_eq!(al[1]["matched"], 2);
    assert_eq!(al[2]["pattern"], "kind:nothing-*");
    assert_eq!(al[2]["matched"], 0);
    assert_eq!(
        j["unmatched_patterns"],
        serde_json::json!(["kind:nothing-*"])
    );
    assert_eq!(j["allowed"]["resources"], 2);
    assert_eq!(j["allowed"]["bytes"], 60);

    // Text: counts and the pattern that matched nothing.
    let o = run_self(
        "cache",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            (
                "LEAKTRACKER_IGNORE",
                "kind:cache,name:global-*,kind:nothing-*",
            ),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("allow-list: kind:cache matched 1; name:global-* matched 2; kind:nothing-* matched nothing"),
        "{err}"
    );
    assert!(
        err.contains("not listed: 2 resources matched by the allow-list"),
        "{err}"
    );

    // Everything allow-listed: no leak, status 0.
    std::fs::remove_file(&path).unwrap();
    let o = run_self(
        "cache",
        &[
            ("LEAKTRACKER_REPORT", p),
            ("LEAKTRACKER_IGNORE", "name:*"),
            ("LEAKTRACKER_EXIT_CODE", "4"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["leaks"].as_array().unwrap().len(), 0);
    assert_eq!(j["allow_list"][0]["matched"], 4);

    // An empty list: everything listed, no allow-list entries, no warning.
    std::fs::remove_file(&path).unwrap();
    let o = run_self(
        "cache",
        &[("LEAKTRACKER_REPORT", p), ("LEAKTRACKER_IGNORE", "")],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(text(&o).1, "");
    let j = read_json(&path);
    assert_eq!(j["leaks"].as_array().unwrap().len(), 4);
    assert_eq!(j["allow_list"].as_array().unwrap().len(), 0);
    assert_eq!(j["unmatched_patterns"].as_array().unwrap().len(), 0);
}
