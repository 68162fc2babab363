//! A CI gate run: the same job processor run twice under the gate's settings — once clean,
//! once with a bug that keeps every failed job's buffer in a retry list. The clean run
//! exits 0; the leaking run prints a report and exits with the gate's code, which is what
//! fails a CI step.
//!
//! Run: `cargo run --example ci_gate`. In CI you would set the variables yourself:
//! `LEAKTRACKER_REPORT=stderr LEAKTRACKER_EXIT_CODE=3 LEAKTRACKER_MIN_AGE=0 ./job-runner`,
//! or run a whole test suite under the tool: `leaktracker gate -- cargo test`.

use leaktracker::{LeakTracker, TrackingAllocator};
use std::process::Command;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static JOBS: LeakTracker = LeakTracker::new();

struct Job {
    id: u32,
    payload: Vec<u8>,
}

/// Processes jobs; with `buggy`, failed jobs are parked in a retry list nobody drains.
fn run_jobs(buggy: bool) -> usize {
    let mut retry: Vec<Job> = Vec::with_capacity(16);
    let mut done = 0;
    for id in 0..10u32 {
        let job = Job {
            id,
            payload: vec![id as u8; 256],
        };
        JOBS.track(&job.payload, format!("job-{}", job.id), "job")
            .expect("the allocator is installed");
        let failed = id % 4 == 3;
        if failed && buggy {
            retry.push(job); // the bug: never retried, never dropped
        } else {
            done += job.payload.len() / 256;
        }
    }
    std::mem::forget(retry); // a long-lived list, as far as the exit report can tell
    done
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("clean") => {
            run_jobs(false);
        }
        Some("buggy") => {
            run_jobs(true);
        }
        _ => {
            let me = std::env::current_exe().expect("own path");
            for mode in ["clean", "buggy"] {
                println!("== job runner, {mode} build, under the gate's settings");
                let status = Command::new(&me)
                    .arg(mode)
                    .env("LEAKTRACKER_REPORT", "stderr")
                    .env("LEAKTRACKER_EXIT_CODE", "3")
                    .status()
                    .expect("run the job runner");
                println!(
                    "== exit code {} ({})\n",
                    status.code().unwrap_or(-1),
                    if status.success() {
                        "the CI step passes"
                    } else {
                        "the CI step fails"
                    }
                );
            }
        }
    }
}
