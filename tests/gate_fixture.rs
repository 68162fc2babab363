//! `leaktracker gate -- COMMAND`: every process's report is summed up; the gate fails when
//! a process leaked or the command failed, and passes otherwise.
//!
//! The processes under the gate are this test binary, re-run as a child in a role (one
//! process, one report, each): `none` tracks a block and frees it; `leak` leaks a tracked
//! `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block made in a scope
//! ("session-7", "session"); `cache` leaks the same and two tracked 30-byte `Vec`s
//! ("global-cache", "cache" and "global-pool", "pool"); `panic` leaks as `leak` does, then
//! its test panics (libtest's status 101); `leak_on_test_thread` leaks a tracked 77-byte
//! `Vec` ("test-thread-buffer", "test") with libtest capturing its output.

mod common;
use common::*;

use leaktracker::LeakTracker;
use std::hint::black_box;
use std::path::Path;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "none" => track_and_free(),
        "leak" => leak_pair(&TRACKER),
        "cache" => {
            leak_pair_and_caches(&TRACKER);
        }
        "panic" => {
            leak_pair(&TRACKER);
            panic!("boom after leaking");
        }
        "leak_on_test_thread" => {
            let v = black_box(vec![0u8; 77]);
            leaktracker::track_resource(&v, "test-thread-buffer", "test").unwrap();
            std::mem::forget(v);
        }
        other => panic!("unknown role {other}"),
    }
}

fn gate(tool: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = command(tool, &[]).arg("gate").args(args).output().unwrap();
    (o.status.code(), text(&o).1)
}

/// `leaktracker gate OPTIONS -- THIS_BINARY --exact main --nocapture --test-threads=1`,
/// the child in `role`.
fn gate_self(tool: &Path, options: &[&str], role: &str) -> (Option<i32>, String) {
    let o = command(tool, &[(ROLE, role)])
        .arg("gate")
        .args(options)
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args(SELF_ARGS)
        .output()
        .unwrap();
    (o.status.code(), text(&o).1)
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let tool = cli();

    // Three processes, two leak.
    let script = format!(
        "{} && {} && {}",
        self_sh("leak"),
        self_sh("none"),
        self_sh("cache")
    );
    let (code, err) = gate(&tool, &["--", "sh", "-c", &script]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("exited with status 0; 3 processes reported, 2 leaked\n"),
        "{err}"
    );
    assert!(
        err.contains("leaktracker gate: FAILED: 2 processes leaked 6 resources, 6 blocks, 388 B\n"),
        "{err}"
    );
    assert_eq!(err.matches("\n== process ").count(), 2, "{err}");
    assert!(err.contains("global-pool"), "{err}");
    // Each child is one libtest process with one report, named by its test.
    assert_eq!(
        err.matches(": main in gate_fixture\nleaktracker report (pid ")
            .count(),
        2,
        "{err}"
    );

    // No leak.
    let (code, err) = gate_self(&tool, &[], "none");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.ends_with("1 process reported, 0 leaked\nleaktracker gate: ok: no leaks\n"),
        "{err}"
    );

    // Allow-list and min age reach the children.
    let (code, err) = gate_self(
        &tool,
        &[
            "--ignore",
            "kind:session",
            "--ignore",
            "name:connection-*",
            "--ignore",
            "kind:nope",
        ],
        "leak",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("allow-list: kind:session matched 1; name:connection-* matched 1; kind:nope matched nothing\n"),
        "{err}"
    );
    let (code, err) = gate_self(&tool, &["--min-age", "1h"], "leak");
    assert_eq!(code, Some(0), "{err}");

    // The command fails: its status, even without leaks.
    let script = format!("{}; exit 3", self_sh("none"));
    let (code, err) = gate(&tool, &["--", "sh", "-c", &script]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("FAILED: the command failed"), "{err}");
    // A test that panics after leaking: libtest's 101 is the gate's status, and the
    // leaks are listed.
    let (code, err) = gate_self(&tool, &[], "panic");
    assert_eq!(code, Some(101), "{err}");
    assert!(err.contains("session-7"), "{err}");
    assert!(
        err.contains("exited with status 101; 1 process reported, 1 leaked\n"),
        "{err}"
    );

    // A process that reports nothing: a warning, and the command's status.
    let (code, err) = gate(&tool, &["--", "true"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("warning: no process wrote a report"), "{err}");

    // A libtest binary (this one) whose test leaks on its test thread.
    let me = std::env::current_exe().unwrap();
    let o = command(&tool, &[(ROLE, "leak_on_test_thread")])
        .arg("gate")
        .arg("--")
        .arg(&me)
        .args(["--exact", "main"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("kind test: 1 resource, 1 block, 77 B\n  test-thread-buffer  age "),
        "{err}"
    );

    // --report-dir keeps the reports; a variable of the caller's does not override.
    let dir = temp_dir("gate_fixture");
    let o = command(
        &tool,
        &[
            ("LEAKTRACKER_EXIT_CODE", "42"),
            ("LEAKTRACKER_IGNORE", "kind:database"),
            (ROLE, "leak"),
        ],
    )
    .args(["gate", "--report-dir"])
    .arg(&dir)
    .arg("--")
    .arg(std::env::current_exe().unwrap())
    .args(SELF_ARGS)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1);
    let j = read_json(&dir.join(&files[0]));
    assert_eq!(j["leaks"].as_array().unwrap().len(), 2, "{j}");

    // Usage errors: 2, and the error names what is wrong.
    for (bad, says) in [
        (
            &["--"][..],
            "error: the following required arguments were not provided:\n  <COMMAND|--reports <PATH>...>",
        ),
        (
            &["--min-age", "soon", "--", "true"],
            "error: invalid value 'soon' for '--min-age <DURATION>': not a duration",
        ),
        (
            &["--ignore", "cache", "--", "true"],
            "error: invalid value 'cache' for '--ignore <PATTERN>': `cache` is not an allow-list pattern",
        ),
        (
            &["--ignore", "kind:a,kind:b", "--", "true"],
            "error: invalid value 'kind:a,kind:b' for '--ignore <PATTERN>': one pattern per --ignore (no commas)",
        ),
        (&["true"], "error: unexpected argument 'true' found"),
    ] {
        let (code, err) = gate(&tool, bad);
        assert_eq!(code, Some(2), "{bad:?}: {err}");
        assert!(err.starts_with(says), "{bad:?}: {err}");
    }
}
