//! `leaktracker flamegraph REPORT.json` draws the leaked bytes of a report made with
//! backtraces as an SVG flame graph; `LEAKTRACKER_REPORT=*.folded` writes the folded
//! stacks it is drawn from; a report without leaks draws nothing and says so.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let tool = cli();
    let dir = temp_dir("cli_flamegraph");
    let json = dir.join("leaks.json");
    let folded = dir.join("leaks.folded");

    let o = run_fixture(
        &exe,
        "leak",
        &[
            ("LEAKTRACKER_REPORT", json.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run_fixture(
        &exe,
        "leak",
        &[
            ("LEAKTRACKER_REPORT", folded.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));

    // The folded file: one line per stack, kind;name first, bytes last, summing to the
    // fixture's 164 leaked bytes (connection-1: 100 B, session-7: 64 B).
    let f = std::fs::read_to_string(&folded).unwrap();
    let mut total = 0;
    for line in f.lines() {
        let (stack, bytes) = line.rsplit_once(' ').expect(line);
        total += bytes.parse::<usize>().expect(line);
        assert!(
            stack.starts_with("database;connection-1;") || stack.starts_with("session;session-7;"),
            "{f}"
        );
        assert!(stack.contains("fixture::"), "user frames present: {f}");
    }
    assert_eq!(total, 164, "{f}");

    let o = command(&tool, &[])
        .arg("flamegraph")
        .arg(&json)
        .output()
        .unwrap();
    let (svg, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert!(svg.contains("Leaked bytes"));
    assert!(svg.contains("connection-1") && svg.contains("session-7"));
    assert!(
        svg.contains("164 bytes"),
        "the root counts every leaked byte"
    );

    // No leaks: nothing to draw, exit 1 with one line.
    let clean = dir.join("clean.json");
    let o = run_fixture(
        &exe,
        "none",
        &[("LEAKTRACKER_REPORT", clean.to_str().unwrap())],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = command(&tool, &[])
        .arg("flamegraph")
        .arg(&clean)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.is_empty());
    assert!(err.contains("no leaks, no flame graph"), "{err}");
}
