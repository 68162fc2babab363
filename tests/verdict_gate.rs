//! Verdict scenario: `leaktracker gate -- cargo test` and `leaktracker gate -- cargo nextest
//! run` over the crate in `tests/fixtures/verdict_gate`, whose tests run instrumented tokio
//! tasks, a lazy regex in a scope and tracing spans under `LeakLayer`.
//!
//! - correct fixture: the gate passes (exit 0, "ok: no leaks");
//! - planted fixture (`VERDICT_FIXTURE_PLANTED=1`: task job-7 keeps a 7777-byte buffer): the
//!   gate fails and names exactly that resource (1 resource, 1 block, 7777 B).
//!
//! The fixture builds into a target directory under this crate's `target/`, so its
//! dependencies are built once and reused. The nextest half is skipped, with a printed
//! reason, when `cargo nextest` is not installed.

mod common;
mod verdict_common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use verdict_common::wait_with_timeout;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/verdict_gate");

fn target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("verdict-gate-target")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `leaktracker gate -- cargo ARGS` in the fixture, planted or not: (status, stderr, all).
fn gate(tool: &Path, args: &[&str], planted: bool) -> (Option<i32>, String, String) {
    let mut c = command(tool, &[]);
    c.current_dir(FIXTURE)
        .env("CARGO_TARGET_DIR", target())
        .env_remove("RUSTFLAGS")
        .args(["gate", "--"])
        .arg(cargo())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if planted {
        c.env("VERDICT_FIXTURE_PLANTED", "1");
    } else {
        c.env_remove("VERDICT_FIXTURE_PLANTED");
    }
    let start = Instant::now();
    let o = wait_with_timeout(c.spawn().unwrap(), Duration::from_secs(600), "gate");
    let (out, err) = text(&o);
    eprintln!(
        "verdict_gate: {args:?} planted={planted}: status {:?} in {:.1} s",
        o.status.code(),
        start.elapsed().as_secs_f64()
    );
    (o.status.code(), err.clone(), format!("{out}{err}"))
}

fn has_nextest() -> bool {
    std::process::Command::new(cargo())
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn check(tool: &Path, args: &[&str]) {
    let (code, err, all) = gate(tool, args, false);
    assert!(
        code == Some(0) && err.contains("leaktracker gate: ok: no leaks"),
        "{args:?}: the correct fixture must pass the gate (status {code:?})\n{}",
        verdict_common::tail(&all)
    );

    let (code, err, all) = gate(tool, args, true);
    assert!(
        code.is_some_and(|c| c != 0),
        "{args:?}: the planted fixture must fail the gate (status {code:?})\n{}",
        verdict_common::tail(&all)
    );
    assert!(
        err.contains("  job-7  age "),
        "{args:?}: the gate must name job-7\n{}",
        verdict_common::tail(&all)
    );
    assert!(
        err.contains("FAILED: 1 process leaked 1 resource, 1 block, 7.6 KiB"),
        "{args:?}: the gate must report exactly the planted leak\n{}",
        verdict_common::tail(&all)
    );
}

#[test]
fn main() {
    let tool = cli();
    check(&tool, &["test", "--offline", "--quiet"]);
    if has_nextest() {
        check(
            &tool,
            &[
                "nextest",
                "run",
                "--offline",
                "--no-fail-fast",
                "--status-level",
                "fail",
            ],
        );
    } else {
        eprintln!("verdict_gate: cargo nextest is not installed: its half is skipped");
    }
}
