//! Where no unnamed temporary file can be had (a file system without `O_TMPFILE`; forced
//! here), the named temporary file of a report write is removed when a SIGTERM or SIGINT
//! ends the process mid-write; the report at the path stays whole. A program's own
//! handler still gets the signal, and the write, not ended, completes.
//!
//! A child (this test binary, re-run) writes one report of 20,000 resources over and
//! over; the test signals it while the temporary file is there.

mod common;
use common::*;
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const RESOURCES: usize = 20_000;

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_term(_sig: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

fn writer(path: &Path, own_handler: bool) -> ! {
    leaktracker::report::use_named_temporary_files(true);
    if own_handler {
        // SAFETY: the handler only touches an atomic.
        unsafe { libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t) };
    }
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
        let handled = HANDLED.load(Ordering::SeqCst);
        if handled > 0 {
            println!("handled {handled}");
            std::process::exit(0);
        }
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Starts a writer, waits for its first whole report and for a temporary file of the next
/// one, then signals it. Returns its exit status and stdout.
fn signal_mid_write(
    dir: &Path,
    path: &Path,
    sig: libc::c_int,
    own_handler: bool,
) -> (std::process::ExitStatus, String) {
    let _ = std::fs::remove_file(path);
    let role = if own_handler {
        "writer_handler"
    } else {
        "writer"
    };
    let child = self_command(role, &[("REPORT_PATH", path.to_str().unwrap())])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no temporary file after 2 minutes"
        );
        if path.exists() && entries(dir).iter().any(|n| n.starts_with(".r.json.tmp-")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: kill has no memory preconditions; the pid is our child's, not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    let mut child = child;
    wait_bounded(
        &mut child,
        Duration::from_secs(60),
        &format!("the writer signalled with {sig}"),
    );
    let o = child.wait_with_output().unwrap();
    (o.status, String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn main() {
    match role().as_deref() {
        Some("writer") => writer(Path::new(&std::env::var("REPORT_PATH").unwrap()), false),
        Some("writer_handler") => writer(Path::new(&std::env::var("REPORT_PATH").unwrap()), true),
        _ => {}
    }
    let dir = temp_dir("harden_signal_named_tmp");
    let path = dir.join("r.json");
    use std::os::unix::process::ExitStatusExt;

    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGTERM, libc::SIGINT] {
        let (status, _) = signal_mid_write(&dir, &path, sig, false);
        assert_eq!(status.signal(), Some(sig), "{status}");
        assert_eq!(entries(&dir), ["r.json"], "after signal {sig}");
        let j = read_json(&path);
        assert_eq!(j["leaks"].as_array().unwrap().len(), RESOURCES);
    }

    // The program handles SIGTERM itself: its handler runs once, the write goes on and
    // completes, the program ends as it chooses.
    let (status, out) = signal_mid_write(&dir, &path, libc::SIGTERM, true);
    assert_eq!(status.code(), Some(0), "{status} {out}");
    assert!(out.contains("handled 1\n"), "{out}");
    assert_eq!(entries(&dir), ["r.json"]);
    let j = read_json(&path);
    assert_eq!(j["leaks"].as_array().unwrap().len(), RESOURCES);
}
