//! Only the process that should report does: a child made by `fork()` that exits through
//! `exit()` (running the exit handlers) writes no report of its parent's blocks and keeps
//! its status; a child that installs its own configuration reports; the parent reports.

mod common;
use common::*;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn fork_and_exit(install_own: Option<&str>) -> i32 {
    // SAFETY: the child only allocates, installs a configuration and calls exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        if let Some(dir) = install_own {
            leaktracker::ExitReport::new()
                .to_file(format!("{dir}/own-%p.json"))
                .install();
        }
        // SAFETY: exit runs the exit handlers, as a real program would.
        unsafe { libc::exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status));
    libc::WEXITSTATUS(status)
}

#[test]
fn main() {
    if let Some(role) = role() {
        assert_eq!(role, "parent");
        let dir = std::env::var("OUT_DIR_FOR_TEST").unwrap();
        let leaked = black_box(vec![1u8; 100]);
        leaktracker::track_resource(&leaked, "parent-conn", "database").unwrap();
        std::mem::forget(leaked);
        // The gate's exit code is set: a reporting child would exit 7.
        assert_eq!(
            fork_and_exit(None),
            0,
            "a plain fork child keeps its status"
        );
        fork_and_exit(Some(&dir));
        return; // the parent exits through the test harness: it reports
    }
    let dir = temp_dir("exit_fork_child");
    let o = run_self(
        "parent",
        &[
            (
                "LEAKTRACKER_REPORT",
                &format!("{}/r-%p.json", dir.display()),
            ),
            ("LEAKTRACKER_EXIT_CODE", "7"),
            ("OUT_DIR_FOR_TEST", dir.to_str().unwrap()),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(7), "the parent leaks: {out}{err}");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].starts_with("own-") && names[1].starts_with("r-"),
        "{names:?}"
    );
    // The parent's report has its leak; the child that installed its own reports too.
    let parent = read_json(&dir.join(&names[1]));
    assert_eq!(parent["leaks"][0]["name"], "parent-conn");
    let own = read_json(&dir.join(&names[0]));
    assert_eq!(
        own["leaks"][0]["name"], "parent-conn",
        "inherited blocks, reported on request"
    );
}
