//! `leaktracker show REPORT | head`: when the reader closes the pipe, the tool stops
//! writing and exits quietly with its usual status (no panic, no backtrace); so do `diff`
//! and `flamegraph`. A full disk is still an error (exit 2, one line).

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

/// A report of `n` leaks (text of well over a pipe's 64 KiB buffer for n = 5000).
fn report(n: usize) -> String {
    let leaks: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name":"connection-{i}","kind":"database","age_ms":5,"allocations":1,"bytes":100,"backtrace":["app::open_{i}","main"]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"version":1,"pid":7,"min_age_ms":0,"totals":{{"resources":{n},"allocations":{n},"bytes":{}}},"leaks":[{}]}}"#,
        100 * n,
        leaks.join(",")
    )
}

/// Runs the tool with `args`, reads the first line of its stdout and closes the pipe, as
/// `head -1` does. Returns the line, the exit code and stderr.
fn head_1(tool: &std::path::Path, args: &[&std::path::Path]) -> (String, Option<i32>, String) {
    let mut child = command(tool, &[])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe is closed while the tool still writes.
    let o = child.wait_with_output().unwrap();
    (first, o.status.code(), text(&o).1)
}

#[test]
fn main() {
    let tool = cli();
    let dir = temp_dir("cli_closed_pipe");
    let big = dir.join("big.json");
    std::fs::write(&big, report(5000)).unwrap();
    let empty = dir.join("empty.json");
    std::fs::write(&empty, report(0)).unwrap();

    let (line, code, err) = head_1(&tool, &[std::path::Path::new("show"), &big]);
    assert!(
        line.starts_with("leaktracker report (pid 7): 5000 resources"),
        "{line}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");

    // diff keeps its status (1: new leaks) when its reader goes away.
    let (line, code, err) = head_1(&tool, &[std::path::Path::new("diff"), &empty, &big]);
    assert!(
        line.starts_with("leaktracker diff: 5000 new leaks"),
        "{line}"
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err, "");

    let (line, code, err) = head_1(&tool, &[std::path::Path::new("flamegraph"), &big]);
    assert!(line.starts_with("<?xml"), "{line}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");

    let (_, code, err) = head_1(&tool, &[std::path::Path::new("--help")]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");

    // Any other write error is one line and exit 2.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let o = command(&tool, &[])
            .arg("show")
            .arg(&big)
            .stdout(full)
            .output()
            .unwrap();
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with("leaktracker: writing the output: "),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
