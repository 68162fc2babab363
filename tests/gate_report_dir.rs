//! `leaktracker gate --report-dir DIR`: only the reports of this run count. Reports left
//! in DIR by earlier runs (named as the gate used to name them, or by another run) are not
//! counted and are named in a note; a `.json` there that is not a report is not an error;
//! a file of this run that is not a report is named and skipped.
//!
//! The processes under the gate are this test binary, re-run as a child in a role: `none`
//! tracks a block and frees it; `leak` leaks a tracked `Vec` of 100 bytes ("connection-1",
//! "database") and a 64-byte block made in a scope ("session-7", "session").

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "none" => track_and_free(),
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
    let tool = cli();
    let dir = temp_dir("gate_report_dir");
    let gate = |args: &[&str]| {
        let o = command(&tool, &[])
            .arg("gate")
            .arg("--report-dir")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), text(&o).1)
    };

    // A run that leaks leaves its report in DIR.
    let (code, err) = gate(&["--", "sh", "-c", &self_sh("leak")]);
    assert_eq!(code, Some(1), "{err}");
    let first: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(first.len(), 1, "{first:?}");
    // The same report under the name an older gate gave it.
    std::fs::copy(dir.join(&first[0]), dir.join("leaks-12345.json")).unwrap();

    // A later run of a command that leaks nothing passes: the old reports do not count.
    let (code, err) = gate(&["--", "true"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("0 processes reported, 0 leaked\n"), "{err}");
    assert!(
        err.contains(
            "leaktracker gate: note: not counted, not of this run: 2 other .json files in "
        ),
        "{err}"
    );
    assert!(err.contains("leaks-12345.json"), "{err}");
    assert!(err.ends_with("leaktracker gate: ok: no leaks\n"), "{err}");

    // Junk `.json` in DIR: not an error either.
    std::fs::write(dir.join("junk.json"), "not json at all").unwrap();
    let (code, err) = gate(&["--", "sh", "-c", &self_sh("none")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 process reported, 0 leaked\n"), "{err}");
    assert!(err.contains("3 other .json files"), "{err}");
    assert!(err.contains("junk.json"), "{err}");

    // A file of this run that is not a report (the command writes it where its reports
    // go): named, skipped, and the real report still counts.
    let script = format!(
        "echo '{{\"version\": 1}}' > \"${{LEAKTRACKER_REPORT%%%p.json}}1.json\"; {}",
        self_sh("leak")
    );
    let (code, err) = gate(&["--", "sh", "-c", &script]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("leaktracker gate: warning: skipped "), "{err}");
    assert!(
        err.contains("1.json: not a leaktracker JSON report"),
        "{err}"
    );
    assert!(err.contains("1 process reported, 1 leaked\n"), "{err}");
    assert!(
        err.contains("FAILED: 1 process leaked 2 resources"),
        "{err}"
    );
}
