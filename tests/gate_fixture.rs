//! `leaktracker gate -- COMMAND`: every process's report is summed up; the gate fails when
//! a process leaked or the command failed, and passes otherwise.

mod common;
use common::*;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn gate(tool: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let o = command(tool, &[]).arg("gate").args(args).output().unwrap();
    (o.status.code(), text(&o).1)
}

#[test]
fn main() {
    // Child role: this test binary, re-run under the gate, leaks on a test thread.
    if role().as_deref() == Some("leak_on_test_thread") {
        let v = black_box(vec![0u8; 77]);
        leaktracker::track_resource(&v, "test-thread-buffer", "test").unwrap();
        std::mem::forget(v);
        return;
    }
    let exe = fixture();
    let f = exe.to_str().unwrap();
    let tool = cli();

    // Three processes, two leak.
    let script = format!("{f} leak && {f} none && {f} cache");
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

    // No leak.
    let (code, err) = gate(&tool, &["--", f, "none"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.ends_with("1 process reported, 0 leaked\nleaktracker gate: ok: no leaks\n"),
        "{err}"
    );

    // Allow-list and min age reach the children.
    let (code, err) = gate(
        &tool,
        &[
            "--ignore",
            "kind:session",
            "--ignore",
            "name:connection-*",
            "--ignore",
            "kind:nope",
            "--",
            f,
            "leak",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("allow-list: kind:session matched 1; name:connection-* matched 1; kind:nope matched nothing\n"),
        "{err}"
    );
    let (code, err) = gate(&tool, &["--min-age", "1h", "--", f, "leak"]);
    assert_eq!(code, Some(0), "{err}");

    // The command fails: its status, even without leaks.
    let (code, err) = gate(&tool, &["--", "sh", "-c", &format!("{f} none; exit 3")]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("FAILED: the command failed"), "{err}");
    // A panic in main with leaks: 101.
    let (code, err) = gate(&tool, &["--", f, "panic"]);
    assert_eq!(code, Some(101), "{err}");
    assert!(err.contains("session-7"), "{err}");

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
        ],
    )
    .args(["gate", "--report-dir"])
    .arg(&dir)
    .args(["--", f, "leak"])
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
