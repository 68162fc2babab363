//! A report path that cannot be written: one warning line, then the report on stderr.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let dir = temp_dir("exit_unwritable");
    let path = dir.join("no-such-dir").join("r.json");
    let o = run_fixture(
        &exe,
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_EXIT_CODE", "6"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(6), "{err}");
    let mut lines = err.lines();
    let warning = lines.next().unwrap();
    assert!(
        warning.starts_with(&format!(
            "leaktracker: cannot write the leak report to {}: ",
            path.display()
        )),
        "{err}"
    );
    assert!(warning.ends_with("; here it is"), "{err}");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("leaktracker report (pid "),
        "{err}"
    );
    assert!(err.contains("connection-1"), "{err}");
    assert_eq!(
        err.matches("leaktracker: ").count(),
        1,
        "one warning line: {err}"
    );
    assert!(!path.exists());
}
