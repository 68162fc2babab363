//! The JSON exit report, parsed back and checked field by field; and read back by
//! `LeakReport::from_json`.
//!
//! The report is made by this test binary, re-run as a child in the role `cache`: it leaks
//! a tracked `Vec` of 100 bytes ("connection-1", "database"), a 64-byte block made in a
//! scope ("session-7", "session"), and two tracked 30-byte `Vec`s ("global-cache", "cache"
//! and "global-pool", "pool").

mod common;
use common::*;
use leaktracker::{LeakReport, LeakTracker};
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "cache" => {
            let conn = vec![7u8; 100];
            leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
            std::mem::forget(conn);
            {
                let _scope = TRACKER.scope("session-7", "session");
                black_box(Box::leak(black_box(Box::new([1u8; 64]))));
            }
            for (name, kind) in [("global-cache", "cache"), ("global-pool", "pool")] {
                let v = vec![0u8; 30];
                leaktracker::track_resource(&v, name, kind).unwrap();
                std::mem::forget(v);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = temp_dir("report_json_fields");
    let path = dir.join("r.json");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let child = self_command(
        "cache",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_IGNORE", "kind:cache,name:none-*"),
            // The schema without stacks (a report gets them by default, for the verdict).
            ("LEAKTRACKER_BACKTRACE", "0"),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let raw = std::fs::read_to_string(&path).unwrap();
    let j: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let obj = j.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "allocator_installed",
            "allow_list",
            "allowed",
            "args",
            "backtraces",
            "dropped_records",
            "exe",
            "leaks",
            "min_age_ms",
            "not_leak_totals",
            "not_leaks",
            "notes",
            "pid",
            "time_unix_ms",
            "totals",
            "unmatched_patterns",
            "verdict",
            "version",
            "younger"
        ]
    );
    assert_eq!(j["version"], 1);
    assert_eq!(j["pid"], pid);
    assert_eq!(j["exe"], exe.to_str().unwrap());
    let mut args = vec![exe.to_str().unwrap()];
    args.extend(SELF_ARGS);
    assert_eq!(j["args"], serde_json::json!(args));
    assert_eq!(j["min_age_ms"], 0);
    assert_eq!(
        j["totals"],
        serde_json::json!({"resources": 3, "allocations": 3, "bytes": 194})
    );
    assert_eq!(j["dropped_records"], 0);
    assert_eq!(j["allocator_installed"], true);
    assert_eq!(j["backtraces"], "0");
    assert_eq!(j["notes"], serde_json::json!([]));
    assert_eq!(
        j["allow_list"],
        serde_json::json!([{"pattern": "kind:cache", "matched": 1}, {"pattern": "name:none-*", "matched": 0}])
    );
    assert_eq!(j["unmatched_patterns"], serde_json::json!(["name:none-*"]));
    assert_eq!(
        j["allowed"],
        serde_json::json!({"resources": 1, "allocations": 1, "bytes": 30})
    );
    assert_eq!(
        j["younger"],
        serde_json::json!({"resources": 0, "allocations": 0, "bytes": 0})
    );

    let leaks = j["leaks"].as_array().unwrap();
    let expected = [
        ("connection-1", "database", 100),
        ("session-7", "session", 64),
        ("global-pool", "pool", 30),
    ];
    assert_eq!(leaks.len(), expected.len());
    for (l, (name, kind, bytes)) in leaks.iter().zip(expected) {
        let mut keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "age_ms",
                "allocations",
                "bytes",
                "created_unix_ms",
                "kind",
                "name",
                "origin",
                "verdict"
            ]
        );
        assert_eq!(l["name"], name);
        assert_eq!(l["kind"], kind);
        let origin = if name == "session-7" {
            "scope"
        } else {
            "object"
        };
        assert_eq!(l["origin"], origin);
        assert!(!l["verdict"].as_str().unwrap().is_empty());
        assert_eq!(l["allocations"], 1);
        assert_eq!(l["bytes"], bytes);
        assert!(l["age_ms"].as_u64().unwrap() < 60_000);
        let created = l["created_unix_ms"].as_u64().unwrap();
        assert!(
            created + 1000 >= started && created < started + 60_000,
            "{created} {started}"
        );
        assert!(
            l.get("backtrace").is_none(),
            "no backtrace when none was captured"
        );
    }

    // Read back into a LeakReport.
    let r = LeakReport::from_json(&raw).unwrap();
    assert_eq!(r.pid(), pid);
    assert_eq!(r.leaks().len(), 3);
    assert_eq!(r.leaks()[1].name, "session-7");
    assert_eq!(r.leaks()[1].bytes, 64);
    assert_eq!(r.totals().bytes, 194);
    assert_eq!(r.unmatched_patterns().collect::<Vec<_>>(), ["name:none-*"]);
    assert_eq!(r.ignored().resources, 1);
    // Written again, it is the same JSON.
    let again: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(again, j);
    // Not a report.
    assert!(LeakReport::from_json("{\"version\": 1}").is_err());
    assert!(LeakReport::from_json("[]").is_err());
}
