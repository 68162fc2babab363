//! A SIGTERM or SIGINT that ends the process while it writes a large report leaves no
//! temporary file behind, and the report at the path stays whole (the one before).
//!
//! A child (this test binary, re-run) writes one report of 20,000 resources over and
//! over; the test signals it mid-write and looks at the directory. The default way of
//! writing, an unnamed temporary file where the file system has them (`O_TMPFILE`), is
//! tested here; `tests/harden_signal_named_tmp.rs` tests the named fallback.

mod common;
use common::*;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const RESOURCES: usize = 20_000;

fn writer(path: &Path) -> ! {
    for i in 0..RESOURCES {
        let v = black_box(vec![1u8; 16]);
        leaktracker::track_resource(
            &v,
            format!("connection-{i:06}-with-a-longer-name-to-make-the-report-large"),
            "database",
        )
        .unwrap();
        std::mem::forget(v);
    }
    let report = leaktracker::LeakReport::of_all();
    loop {
        report.write_to(path).unwrap();
    }
}

/// Whether the child has a deleted (unnamed) file of `dir` open: an unnamed temporary
/// file being written.
fn writing_unnamed(pid: u32, dir: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|t| t.starts_with(dir) && t.to_string_lossy().ends_with(" (deleted)"))
    })
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn main() {
    if role().as_deref() == Some("writer") {
        writer(Path::new(&std::env::var("REPORT_PATH").unwrap()));
    }
    let dir = temp_dir("harden_signal_tmpfile");
    let path = dir.join("r.json");
    let exe = std::env::current_exe().unwrap();
    let mut seen_mid_write = 0;
    let rounds = [
        (libc::SIGTERM, 0u64),
        (libc::SIGINT, 5),
        (libc::SIGTERM, 13),
        (libc::SIGINT, 29),
        (libc::SIGTERM, 47),
        (libc::SIGINT, 71),
    ];
    for (sig, delay_ms) in rounds {
        let _ = std::fs::remove_file(&path);
        let mut child = command(&exe, &[("REPORT_PATH", path.to_str().unwrap())])
            .args(["--exact", "main", "--test-threads=1"])
            .env(ROLE, "writer")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The first report is whole once it is at the path; the next one is being written.
        let start = Instant::now();
        while !path.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no report after 2 minutes"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the writer ended: {status}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let mid_write =
            writing_unnamed(child.id(), &dir) || entries(&dir).iter().any(|n| n.starts_with('.'));
        // SAFETY: kill has no memory preconditions; the pid is our child's, not yet waited for.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let status = wait_bounded(
            &mut child,
            Duration::from_secs(60),
            &format!("the writer signalled with {sig}"),
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig), "{status}");
        seen_mid_write += usize::from(mid_write);
        assert_eq!(
            entries(&dir),
            ["r.json"],
            "after signal {sig} at {delay_ms} ms"
        );
        let j = read_json(&path);
        assert_eq!(j["leaks"].as_array().unwrap().len(), RESOURCES);
    }
    assert!(
        seen_mid_write >= 3,
        "only {seen_mid_write} of {} signals came while a temporary file was open",
        rounds.len()
    );
}
