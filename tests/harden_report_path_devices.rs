//! Report paths that are not regular files are written in place, never replaced by a
//! regular file: a character device (through a symbolic link, and `/dev/null` itself), a
//! FIFO, `/dev/stdout` and `/dev/stderr` (also when stdout is a regular file: the report
//! is appended, the file stays). A device that refuses the write (`/dev/full`) and a FIFO
//! nobody reads get one warning line and the report on stderr.

mod common;
use common::*;
use std::hint::black_box;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn report_to(path: &Path) -> std::process::Output {
    run_self("leak", &[("LEAKTRACKER_REPORT", path.to_str().unwrap())])
}

fn assert_link(link: &Path, target: &str) {
    let m = std::fs::symlink_metadata(link).unwrap();
    assert!(
        m.file_type().is_symlink(),
        "{} was replaced",
        link.display()
    );
    assert_eq!(std::fs::read_link(link).unwrap(), Path::new(target));
}

fn assert_char_device(p: &str) {
    let m = std::fs::symlink_metadata(p).unwrap();
    assert!(m.file_type().is_char_device(), "{p} is no longer a device");
}

fn assert_one_warning_then_report(err: &str, path: &Path, why: &str) {
    let mut lines = err.lines();
    let first = lines.next().unwrap_or_default();
    let start = format!(
        "leaktracker: cannot write the leak report to {}: ",
        path.display()
    );
    assert!(first.starts_with(&start), "{err}");
    assert!(first.contains(why), "{err}");
    assert!(first.ends_with("; here it is"), "{err}");
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
    let dir = temp_dir("harden_report_path_devices");

    // Links first: a build that replaces what is at the path fails here, on links of
    // this test's own, before the real /dev/null and /dev/stdout are tried below.

    // A link to /dev/null: written through; the link and the device stay.
    let null = dir.join("null.json");
    std::os::unix::fs::symlink("/dev/null", &null).unwrap();
    let o = report_to(&null);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
    assert_link(&null, "/dev/null");
    assert_char_device("/dev/null");

    // A link to /dev/full: the write fails (no space): one warning, the report on stderr.
    let full = dir.join("full.json");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let o = report_to(&full);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_one_warning_then_report(&err, &full, "No space left on device");
    assert_link(&full, "/dev/full");

    // A link to /dev/stdout, stdout a pipe: the JSON report comes out on stdout.
    let out_link = dir.join("stdout.json");
    std::os::unix::fs::symlink("/dev/stdout", &out_link).unwrap();
    let o = report_to(&out_link);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
    assert!(out.contains("\"name\": \"connection-1\""), "{out}");
    assert_link(&out_link, "/dev/stdout");

    // The same, with stdout redirected to a regular file: the report is appended after
    // what the program printed; the file is the same file.
    let captured = dir.join("captured-stdout.txt");
    std::fs::write(&captured, "printed before\n").unwrap();
    let ino = std::fs::metadata(&captured).unwrap().ino();
    let stdout = std::fs::OpenOptions::new()
        .append(true)
        .open(&captured)
        .unwrap();
    let text_link = dir.join("stdout.txt");
    std::os::unix::fs::symlink("/dev/stdout", &text_link).unwrap();
    let o = self_command(
        "leak",
        &[("LEAKTRACKER_REPORT", text_link.to_str().unwrap())],
    )
    .stdout(stdout)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let got = std::fs::read_to_string(&captured).unwrap();
    assert!(got.starts_with("printed before\n"), "{got}");
    assert!(got.contains("\nleaktracker report (pid "), "{got}");
    assert!(got.contains("connection-1"), "{got}");
    assert_eq!(std::fs::metadata(&captured).unwrap().ino(), ino);

    // A FIFO with a reader: the reader gets the whole report; the FIFO stays.
    let fifo = dir.join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let o = report_to(&fifo);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err, "");
    let mut got = String::new();
    reader.read_to_string(&mut got).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&got).unwrap_or_else(|e| panic!("{e}: {got:?}"));
    assert_eq!(j["leaks"][0]["name"], "connection-1");
    drop(reader);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // A FIFO nobody opens: after a bounded wait, one warning and the report on stderr.
    let o = report_to(&fifo);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_one_warning_then_report(&err, &fifo, "no process opened it for reading");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // The real paths, now that the links showed they are written through.
    let o = report_to(Path::new("/dev/null"));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o).1, "");
    assert_char_device("/dev/null");

    let o = report_to(Path::new("/dev/stdout"));
    let (out, err) = text(&o);
    assert_eq!(err, "");
    assert!(out.contains("leaktracker report (pid "), "{out}");
    assert!(out.contains("connection-1"), "{out}");
    assert_link(Path::new("/dev/stdout"), "/proc/self/fd/1");

    let o = report_to(Path::new("/dev/stderr"));
    let (out, err) = text(&o);
    assert!(!out.contains("leaktracker report"), "{out}");
    assert!(err.starts_with("leaktracker report (pid "), "{err}");
    assert!(err.contains("connection-1"), "{err}");
    assert_link(Path::new("/dev/stderr"), "/proc/self/fd/2");
}
