//! The live-report variables and `LEAKTRACKER_VERDICT` quote a bad value by a short prefix
//! and its length, like the others: a 120 KB value gives a short warning line.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const LONG: usize = 120_000;

#[test]
fn main() {
    if role().as_deref() == Some("idle") {
        return;
    }
    let long = "Z".repeat(LONG);
    let o = run_self(
        "idle",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_SIGNAL", &long),
            ("LEAKTRACKER_INTERVAL", &long),
            ("LEAKTRACKER_KEEP", &long),
            ("LEAKTRACKER_VERDICT", &long),
            ("LEAKTRACKER_LABELS", &long),
            ("LEAKTRACKER_REPORT_ON", &long),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{}", &err[..err.len().min(2000)]);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("leaktracker: LEAKTRACKER_"))
        .collect();
    for var in [
        "SIGNAL",
        "INTERVAL",
        "KEEP",
        "VERDICT",
        "LABELS",
        "REPORT_ON",
    ] {
        let line = warnings
            .iter()
            .find(|l| l.starts_with(&format!("leaktracker: LEAKTRACKER_{var}")))
            .unwrap_or_else(|| panic!("no warning for LEAKTRACKER_{var}: {warnings:?}"));
        assert!(line.len() < 400, "{var}: a {} byte line", line.len());
        assert!(
            line.contains(&format!("\"{}…\" ({LONG} bytes)", "Z".repeat(40))),
            "{line}"
        );
    }
}
