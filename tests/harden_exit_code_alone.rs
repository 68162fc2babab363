//! `LEAKTRACKER_EXIT_CODE` without `LEAKTRACKER_REPORT`: no exit report (the README: an
//! unset `LEAKTRACKER_REPORT` means no report), and, when the code changes the exit
//! status, one summary line on stderr, the one the README shows. No leak: nothing at all.
//! `LEAKTRACKER_UNWIND=fp` is accepted (documented as short for `frame-pointers`).

mod common;
use common::*;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    match role().as_deref() {
        Some("leak") => {
            let v = black_box(vec![7u8; 100]);
            leaktracker::track_resource(&v, "connection-1", "database").unwrap();
            std::mem::forget(v);
            let w = black_box(vec![7u8; 64]);
            leaktracker::track_resource(&w, "session-7", "session").unwrap();
            std::mem::forget(w);
            return;
        }
        Some("none") => return,
        _ => {}
    }
    let summary = "leaktracker: 2 resources, 2 blocks, 164 B leaked: exit status 7 \
                   (LEAKTRACKER_EXIT_CODE); set LEAKTRACKER_REPORT=stderr to see them\n";

    let o = run_self("leak", &[("LEAKTRACKER_EXIT_CODE", "7")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert_eq!(err, summary);

    // The README shows this line and says when it comes.
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(summary.trim_end()),
        "README lacks {summary}"
    );

    // No leak: status 0, nothing on stderr.
    let o = run_self("none", &[("LEAKTRACKER_EXIT_CODE", "7")]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o).1, "");

    // A minimum age nothing is older than: no leak listed, nothing said.
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_EXIT_CODE", "7"),
            ("LEAKTRACKER_MIN_AGE", "1h"),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o).1, "");

    // `fp` is a documented spelling: no warning.
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_EXIT_CODE", "7"),
            ("LEAKTRACKER_UNWIND", "fp"),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert_eq!(err, summary);
    assert!(
        readme.contains("`frame-pointers` (or `fp`)"),
        "README does not document LEAKTRACKER_UNWIND=fp"
    );
}
