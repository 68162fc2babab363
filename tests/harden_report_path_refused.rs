//! Report paths a report must not replace, a directory and a socket (also behind a link),
//! get one warning line saying what is there, then the report on stderr; nothing at the
//! path changes.

mod common;
use common::*;
use std::hint::black_box;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn refused(path: &Path, why: &str) {
    let o = run_self(
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_EXIT_CODE", "6"),
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(6), "{err}");
    let mut lines = err.lines();
    assert_eq!(
        lines.next().unwrap_or_default(),
        format!(
            "leaktracker: cannot write the leak report to {}: {why} (a report goes to a \
             regular file, a character device or a FIFO); here it is",
            path.display()
        ),
        "{err}"
    );
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with("leaktracker report (pid "),
        "{err}"
    );
    assert!(err.contains("connection-1"), "{err}");
    assert_eq!(err.matches("leaktracker: ").count(), 1, "{err}");
}

#[test]
fn main() {
    if role().as_deref() == Some("leak") {
        let v = black_box(vec![7u8; 100]);
        leaktracker::track_resource(&v, "connection-1", "database").unwrap();
        std::mem::forget(v);
        return;
    }
    let dir = temp_dir("harden_report_path_refused");

    // A directory, with a file in it: both stay.
    let d = dir.join("reports.json");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("inside"), "x").unwrap();
    refused(&d, "it is a directory");
    assert!(std::fs::symlink_metadata(&d).unwrap().is_dir());
    assert_eq!(std::fs::read_to_string(d.join("inside")).unwrap(), "x");

    // A socket: it stays a socket, and its listener still takes connections.
    let s = dir.join("control.sock");
    let listener = std::os::unix::net::UnixListener::bind(&s).unwrap();
    refused(&s, "it is a socket");
    assert!(std::fs::symlink_metadata(&s)
        .unwrap()
        .file_type()
        .is_socket());
    let _client = std::os::unix::net::UnixStream::connect(&s).unwrap();
    listener.accept().unwrap();

    // A link to the directory: the warning names what it leads to.
    let l = dir.join("link.txt");
    std::os::unix::fs::symlink(&d, &l).unwrap();
    refused(&l, &format!("it leads to {}, a directory", d.display()));
    assert!(std::fs::symlink_metadata(&l)
        .unwrap()
        .file_type()
        .is_symlink());

    // Nothing else was made in the directory (no temporary file).
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["control.sock", "link.txt", "reports.json"]);
}
