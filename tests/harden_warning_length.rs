//! Warnings about bad values stay short: a 120 KB value is quoted by a short prefix and
//! its length; 60,000 bad `LEAKTRACKER_IGNORE` items by the first three and a count; an
//! unwritable report path of 120 KB by a prefix. The good values still apply.

mod common;
use common::*;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const LONG: usize = 120_000;

#[test]
fn main() {
    match role().as_deref() {
        Some("leak") => {
            let v = black_box(vec![7u8; 100]);
            leaktracker::track_resource(&v, "connection-1", "database").unwrap();
            std::mem::forget(v);
            return;
        }
        // A variable too long to pass through exec (the kernel takes 128 KiB at most per
        // string): set here, then read as at start-up.
        Some("from_env") => {
            let items: Vec<String> = (0..60_000).map(|i| format!("bad{i}")).collect();
            std::env::set_var(
                "LEAKTRACKER_IGNORE",
                format!("kind:cache,{},name:ok-*", items.join(",")),
            );
            let _ = leaktracker::ExitReport::from_env();
            return;
        }
        _ => {}
    }

    // Long bad values, given through exec.
    let long = "9".repeat(LONG);
    let long_age = format!("{}x", "5".repeat(LONG));
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_MIN_AGE", &long_age),
            ("LEAKTRACKER_EXIT_CODE", &long),
            ("LEAKTRACKER_BACKTRACE", &long),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("leaktracker: "))
        .collect();
    let prefix = "9".repeat(40);
    assert_eq!(
        warnings,
        [
            format!(
                "leaktracker: LEAKTRACKER_MIN_AGE=\"{}…\" ({} bytes) is not a duration (0, 250ms, 5s, 2m, 1h); using 0",
                "5".repeat(40),
                LONG + 1
            ),
            format!(
                "leaktracker: LEAKTRACKER_EXIT_CODE=\"{prefix}…\" ({LONG} bytes) is not an exit code from 1 to 255; leaks will not change the exit status"
            ),
            format!(
                "leaktracker: LEAKTRACKER_BACKTRACE=\"{prefix}…\" ({LONG} bytes) is not 0, 1 or sample:N; no backtraces"
            ),
        ]
    );
    // The report still came.
    assert!(err.contains("connection-1"), "{err}");

    // 60,000 bad allow-list items: the first three and a count, one short line.
    let o = run_self("from_env", &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        err,
        "leaktracker: LEAKTRACKER_IGNORE: \"bad0\", \"bad1\", \"bad2\", and 59997 more not \
         `kind:GLOB` or `name:GLOB`; ignored\n"
    );

    // A report path of 120 KB that cannot be written: the warning shows a prefix.
    let bad_path = format!("/nonexistent-dir/{}.json", "p".repeat(LONG));
    let o = run_self("leak", &[("LEAKTRACKER_REPORT", &bad_path)]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.len() < 400, "a {} byte warning", first.len());
    assert!(
        first.starts_with("leaktracker: cannot write the leak report to /nonexistent-dir/ppp"),
        "{first}"
    );
    assert!(
        first.contains(&format!("… ({} bytes): ", bad_path.len())),
        "{first}"
    );
    assert!(first.ends_with("; here it is"), "{first}");
    assert!(err.contains("connection-1"), "{err}");
}
