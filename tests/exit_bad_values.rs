//! Bad LEAKTRACKER_* values: one clear stderr line each, then the default; never a crash.
//!
//! The program under test is this test binary, re-run as a child in a role: `leak` leaks
//! a tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block made in a
//! scope ("session-7", "session"); `cache` does the same and leaks two tracked `Vec`s of
//! 30 bytes ("global-cache", "cache" and "global-pool", "pool"); `many` leaks 1000 boxed
//! `u32`s made in one scope ("many", "bulk").

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "leak" => leak_pair(&TRACKER),
        "cache" => {
            leak_pair_and_caches(&TRACKER);
        }
        "many" => {
            let _scope = TRACKER.scope("many", "bulk");
            for i in 0..1000u32 {
                black_box(Box::leak(black_box(Box::new(i))));
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
    let dir = temp_dir("exit_bad_values");
    let path = dir.join("r.json");
    let p = path.to_str().unwrap();

    let o = run_self(
        "cache",
        &[
            ("LEAKTRACKER_REPORT", p),
            ("LEAKTRACKER_MIN_AGE", "5 minutes"),
            ("LEAKTRACKER_EXIT_CODE", "300"),
            ("LEAKTRACKER_IGNORE", "kind:cache,cache,name:"),
            ("LEAKTRACKER_BACKTRACE", "yes"),
            ("LEAKTRACKER_UNWIND", "dwarf"),
            ("LEAKTRACKER_MAX_RECORDS", "-1"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "the exit code stays unset: {err}");
    assert_eq!(child_stdout(&out), "", "{out}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "leaktracker: LEAKTRACKER_MIN_AGE=\"5 minutes\" is not a duration (0, 250ms, 5s, 2m, 1h); using 0",
            "leaktracker: LEAKTRACKER_EXIT_CODE=\"300\" is not an exit code from 1 to 255; leaks will not change the exit status",
            "leaktracker: LEAKTRACKER_IGNORE: \"cache\" not `kind:GLOB` or `name:GLOB`; ignored",
            "leaktracker: LEAKTRACKER_BACKTRACE=\"yes\" is not 0, 1 or sample:N; no backtraces",
            "leaktracker: LEAKTRACKER_UNWIND=\"dwarf\" is not `tables`, `system` or `frame-pointers`; using tables",
            "leaktracker: LEAKTRACKER_MAX_RECORDS=\"-1\" is not a number of records; no cap",
        ]
    );
    // The good parts still apply: the report, `kind:cache` and `name:` (empty name glob).
    let j = read_json(&path);
    assert_eq!(j["min_age_ms"], 0);
    assert_eq!(j["backtraces"], "0");
    assert_eq!(j["leaks"].as_array().unwrap().len(), 3);
    assert_eq!(j["allow_list"][0]["matched"], 1);
    assert_eq!(j["unmatched_patterns"], serde_json::json!(["name:"]));

    // An empty report path: no report, one line; other odd values.
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", ""),
            ("LEAKTRACKER_EXIT_CODE", "0"),
            ("LEAKTRACKER_BACKTRACE", "sample:0"),
            ("LEAKTRACKER_MIN_AGE", "\u{1F600}ms"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 4, "{err}");
    assert!(err.contains("LEAKTRACKER_REPORT is empty"), "{err}");
    assert!(err.contains("LEAKTRACKER_EXIT_CODE=\"0\""), "{err}");
    assert!(err.contains("LEAKTRACKER_BACKTRACE=\"sample:0\""), "{err}");
    assert!(err.contains("LEAKTRACKER_MIN_AGE=\"\u{1F600}ms\""), "{err}");

    // Not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let o = self_command("leak", &[])
        .env(
            "LEAKTRACKER_MIN_AGE",
            std::ffi::OsStr::from_bytes(b"\xff5s"),
        )
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err,
        "leaktracker: LEAKTRACKER_MIN_AGE is not valid UTF-8; ignored\n"
    );

    // Good values, including a record cap that drops records: the report says so.
    std::fs::remove_file(&path).unwrap();
    let o = run_self(
        "many",
        &[
            ("LEAKTRACKER_REPORT", p),
            ("LEAKTRACKER_MAX_RECORDS", "100"),
            ("LEAKTRACKER_BACKTRACE", "0"),
        ],
    );
    assert_eq!(text(&o).1, "");
    assert!(o.status.success(), "{:?}", text(&o));
    let j = read_json(&path);
    let dropped = j["dropped_records"].as_u64().unwrap();
    let kept = j["totals"]["allocations"].as_u64().unwrap();
    assert!(dropped >= 800 && kept <= 200, "{dropped} {kept}");
    assert_eq!(dropped + kept, 1000);

    let o = run_self(
        "many",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_MAX_RECORDS", "100"),
        ],
    );
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("records dropped"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.starts_with("warning: "), "{line}");
    assert!(line.ends_with(" records dropped (the record table was full): the blocks behind them are missing from these counts"), "{line}");
}
