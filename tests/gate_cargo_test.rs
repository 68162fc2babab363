//! `leaktracker gate -- cargo test` on a small crate that uses leaktracker: it passes when
//! nothing leaks, fails with the leak named when a test leaks, and keeps cargo's status
//! when a test fails. Also `scripts/leak-gate.sh`, building the tool itself.

mod common;
use common::*;
use std::path::Path;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const MANIFEST: &str = r#"[package]
name = "gate-fixture"
version = "0.1.0"
edition = "2021"

[dependencies]
leaktracker = { path = "@PATH@" }

[workspace]
"#;

const LIB: &str = r#"
/// Adds.
///
/// ```
/// assert_eq!(gate_fixture::add(1, 2), 3);
/// ```
pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

/// Live resources of the global tracker.
pub fn live() -> usize {
    leaktracker::LeakTracker::global().live().len()
}
"#;

const TEST: &str = r#"
#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn maybe_leaks() {
    let v = std::hint::black_box(vec![1u8; 50]);
    leaktracker::track_resource(&v, "forgotten-buffer", "buffer").unwrap();
    if std::env::var_os("FIXTURE_LEAK").is_some() {
        std::mem::forget(v);
    }
}

#[test]
fn maybe_fails() {
    assert!(std::env::var_os("FIXTURE_FAIL").is_none(), "asked to fail");
}

#[test]
fn clean() {
    let check = leaktracker::LeakCheck::start("clean");
    let v: Vec<u32> = (0..100).collect();
    assert_eq!(gate_fixture::add(v[1], v[2]), 3);
    drop(v);
    check.assert_no_leaks();
}
"#;

fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

#[test]
fn main() {
    let tool = cli();
    let krate = temp_dir("gate_cargo_test_crate");
    write(
        &krate.join("Cargo.toml"),
        &MANIFEST.replace("@PATH@", env!("CARGO_MANIFEST_DIR")),
    );
    write(&krate.join("src/lib.rs"), LIB);
    write(&krate.join("tests/t.rs"), TEST);
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gate-cargo-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |env: &[(&str, &str)]| {
        let o = command(&tool, env)
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", &target)
            .args(["gate", "--"])
            .arg(&cargo)
            .args(["test", "--offline", "--quiet"])
            .output()
            .unwrap();
        let (out, err) = text(&o);
        (o.status.code(), format!("{out}{err}"), err)
    };

    // Nothing leaks: the test binary, the lib's unit-test binary and the doctest report.
    let (code, all, err) = run(&[]);
    assert_eq!(code, Some(0), "{all}");
    assert!(err.contains("leaktracker gate: ok: no leaks\n"), "{err}");
    let reported = err
        .lines()
        .find(|l| l.starts_with("leaktracker gate: `"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        reported.contains("exited with status 0; 3 processes reported, 0 leaked"),
        "{reported}"
    );
    assert!(
        err.contains("note: 2 processes linked leaktracker without installing TrackingAllocator"),
        "{err}"
    );

    // A test leaks.
    let (code, all, err) = run(&[("FIXTURE_LEAK", "1")]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        err.contains("kind buffer: 1 resource, 1 block, 50 B\n  forgotten-buffer  age "),
        "{err}"
    );
    assert!(
        err.contains("FAILED: 1 process leaked 1 resource, 1 block, 50 B\n"),
        "{err}"
    );

    // A test fails: cargo's status.
    let (code, all, err) = run(&[("FIXTURE_FAIL", "1")]);
    assert_eq!(code, Some(101), "{all}");
    assert!(err.contains("FAILED: the command failed"), "{err}");

    // The script, building the tool from this crate's sources.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/leak-gate.sh");
    let o = command(Path::new(script), &[("FIXTURE_LEAK", "1")])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env(
            "LEAKTRACKER_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-build"),
        )
        .env("PATH", std::env::var("PATH").unwrap())
        .env_remove("LEAKTRACKER_BIN")
        .arg("--ignore")
        .arg("kind:nothing")
        .arg("--")
        .arg(&cargo)
        .args(["test", "--offline", "--quiet", "--test", "t"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("forgotten-buffer"), "{err}");
    assert!(
        err.contains("allow-list: kind:nothing matched nothing"),
        "{err}"
    );
}
