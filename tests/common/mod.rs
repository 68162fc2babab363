//! Shared helpers of the tests: re-running the test binary as a child, building small
//! fixture programs against this crate, temp dirs, and reading what a tracker holds as
//! plain values that an assertion can spell out.
#![allow(dead_code)]

use leaktracker::LeakTracker;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The environment variable that selects the child role of a re-run test binary.
pub const ROLE: &str = "LT_TEST_ROLE";

/// The child role this process plays, if it is a re-run child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Every `LEAKTRACKER_*` variable, removed from children so the caller's environment
/// cannot leak into a test.
pub const VARS: [&str; 7] = [
    "LEAKTRACKER_REPORT",
    "LEAKTRACKER_MIN_AGE",
    "LEAKTRACKER_EXIT_CODE",
    "LEAKTRACKER_IGNORE",
    "LEAKTRACKER_BACKTRACE",
    "LEAKTRACKER_UNWIND",
    "LEAKTRACKER_MAX_RECORDS",
];

/// A command that runs `program` with a clean `LEAKTRACKER_*` environment plus `env`, and
/// the default action for the signals that end a process: a test run as a background
/// job of a non-interactive shell inherits SIGINT and SIGQUIT ignored, and the signal
/// tests are about what leaktracker does where they end the process.
pub fn command(program: &Path, env: &[(&str, &str)]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    // SAFETY: the closure runs in the forked child before exec and only calls `signal`,
    // which is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            for s in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    for v in VARS {
        c.env_remove(v);
    }
    c.env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Re-runs this test binary (its single `main` test) in `role`, with `env`.
pub fn run_self(role: &str, env: &[(&str, &str)]) -> Output {
    self_command(role, env).output().unwrap()
}

/// The arguments [`run_self`] gives this test binary: its single `main` test only, output
/// not captured, on one thread.
pub const SELF_ARGS: [&str; 4] = ["--exact", "main", "--nocapture", "--test-threads=1"];

/// The command [`run_self`] runs, not started yet: for a test that needs the child's pid
/// (`.spawn()`) or more settings.
pub fn self_command(role: &str, env: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut c = command(&exe, env);
    c.args(SELF_ARGS).env(ROLE, role);
    c
}

/// `s` quoted for `sh`: in single quotes, each `'` in it written `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A `sh` command line that re-runs this test binary in `role` with [`SELF_ARGS`], as
/// [`run_self`] does but in the shell's environment (the gate's `LEAKTRACKER_*`
/// variables): `LT_TEST_ROLE='leak' '/path/to/test-bin' --exact main --nocapture
/// --test-threads=1`, for `sh -c "A && B"` under `leaktracker gate`.
pub fn self_sh(role: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        "{ROLE}={} {} {}",
        sh_quote(role),
        sh_quote(exe.to_str().expect("a UTF-8 path to the test binary")),
        SELF_ARGS.join(" ")
    )
}

/// The correct program beside [`leak_pair`]: a `Vec` of 10 bytes tracked ("freed",
/// "database"), then freed: nothing leaks.
pub fn track_and_free() {
    let v = std::hint::black_box(vec![1u8; 10]);
    leaktracker::track_resource(&v, "freed", "database").unwrap();
    drop(v);
}

/// The leak most exit and gate tests plant: a tracked `Vec` of 100 bytes ("connection-1",
/// "database") and a 64-byte block made in a scope of `tracker` ("session-7", "session"):
/// 2 resources, 2 blocks, 164 B.
pub fn leak_pair(tracker: &LeakTracker) {
    use std::hint::black_box;
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    let _scope = tracker.scope("session-7", "session");
    black_box(Box::leak(black_box(Box::new([1u8; 64]))));
}

/// [`leak_pair`], then two tracked `Vec`s of 30 bytes ("global-cache", "cache" and
/// "global-pool", "pool"): 4 resources, 4 blocks, 224 B.
pub fn leak_pair_and_caches(tracker: &LeakTracker) {
    leak_pair(tracker);
    for (name, kind) in [("global-cache", "cache"), ("global-pool", "pool")] {
        let v = vec![0u8; 30];
        leaktracker::track_resource(&v, name, kind).unwrap();
        std::mem::forget(v);
    }
}

/// What the program under test wrote to stdout in a child of [`run_self`] that passed:
/// `out` without the test harness's own text around it (`running 1 test`, `test main ... `
/// before, `ok` and `test result: …` after, which `--nocapture` puts on the lines the
/// child's output shares), and with whatever came after the harness ended (an exit
/// report) kept.
pub fn child_stdout(out: &str) -> String {
    let body = out
        .strip_prefix("\nrunning 1 test\ntest main ... ")
        .unwrap_or_else(|| panic!("not the stdout of one libtest test: {out:?}"));
    let (printed, result) = body
        .rsplit_once("ok\n\ntest result: ok. ")
        .unwrap_or_else(|| panic!("no passing test result: {out:?}"));
    let after = result.split_once("\n\n").map_or("", |(_, a)| a);
    format!("{printed}{after}")
}

/// A fresh, empty directory for this test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits at most `timeout` for `child` to end: past it the child is killed and the test
/// fails, saying `what` did not end (a child that hangs fails a test, not CI).
pub fn wait_bounded(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {timeout:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Builds `source` (a `main.rs`) into a program that links this crate, with `rustc`
/// against the `leaktracker` rlib cargo built for the tests. Returns the program's path.
pub fn build_fixture(name: &str, source: &str) -> PathBuf {
    build_fixture_with(name, source, &[])
}

/// [`build_fixture`] with more `rustc` arguments.
pub fn build_fixture_with(name: &str, source: &str, rustc_args: &[&str]) -> PathBuf {
    let (o, out) = try_build_fixture_with(name, source, rustc_args);
    assert!(
        o.status.success(),
        "fixture {name} did not build:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Compiles `source` like [`build_fixture_with`] and returns rustc's output and the path
/// the program would have, whether or not it built.
#[allow(dead_code)]
pub fn try_build_fixture_with(name: &str, source: &str, rustc_args: &[&str]) -> (Output, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let rlib = std::fs::read_dir(deps)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("libleaktracker-") && n.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .expect("the leaktracker rlib next to the test binary")
        .path();
    let dir = temp_dir(&format!("fixture-{name}"));
    let src = dir.join("main.rs");
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let o = Command::new(rustc)
        .args(["--edition", "2021", "--crate-name", name, "-g"])
        .args(rustc_args)
        .arg(&src)
        .arg("--extern")
        .arg(format!("leaktracker={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    (o, out)
}

/// Reads and parses a JSON report.
pub fn read_json(path: &Path) -> serde_json::Value {
    let s =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("parsing {}: {e}\n{s}", path.display()))
}

/// Runs a program built by [`build_fixture_with`] in `mode` (its first argument) with `env`.
pub fn run_fixture(exe: &Path, mode: &str, env: &[(&str, &str)]) -> Output {
    command(exe, env).arg(mode).output().unwrap()
}

/// The `leaktracker` command-line tool: the one cargo built for these tests (with
/// `--features cli`), or else built now into a directory of its own.
pub fn cli() -> PathBuf {
    // Cargo names the binary even when its feature is off and it was not built: use it
    // only if it is there.
    if let Some(p) = option_env!("CARGO_BIN_EXE_leaktracker").map(PathBuf::from) {
        if p.exists() {
            return p;
        }
    }
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--features",
            "cli",
            "--bin",
            "leaktracker",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "building the leaktracker tool failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    target.join("debug").join("leaktracker")
}

// What a tracker holds, as values an assertion compares with a literal. Each reads
// `t.live()` once.

/// `(name, allocations, bytes)` of every live resource of `t`, in `live()` order.
pub fn counts(t: &LeakTracker) -> Vec<(String, usize, usize)> {
    t.live()
        .into_iter()
        .map(|i| (i.name, i.allocations, i.bytes))
        .collect()
}

/// [`counts`], sorted (by name, then allocations, then bytes): for tests where the
/// resources are made in an order the test does not fix.
pub fn counts_sorted(t: &LeakTracker) -> Vec<(String, usize, usize)> {
    let mut v = counts(t);
    v.sort();
    v
}

/// `(name, kind, allocations, bytes)` of every live resource of `t`, in `live()` order.
pub fn counts_with_kind(t: &LeakTracker) -> Vec<(String, String, usize, usize)> {
    t.live()
        .into_iter()
        .map(|i| (i.name, i.kind, i.allocations, i.bytes))
        .collect()
}

/// `(allocations, bytes)` of `t`'s first live resource named `name`; `(0, 0)` if it has
/// none. Other resources are not looked at.
pub fn counts_of(t: &LeakTracker, name: &str) -> (usize, usize) {
    t.live()
        .iter()
        .find(|l| l.name == name)
        .map_or((0, 0), |l| (l.allocations, l.bytes))
}

/// `(allocations, bytes)` of `t`'s first live resource, whatever its name; `(0, 0)` if it
/// has none. Any further resources are not looked at: see [`sole_counts`] for the check
/// that there are none.
pub fn first_counts(t: &LeakTracker) -> (usize, usize) {
    t.live()
        .first()
        .map_or((0, 0), |i| (i.allocations, i.bytes))
}

/// [`first_counts`], and panics if `t` holds more than one live resource.
pub fn sole_counts(t: &LeakTracker) -> (usize, usize) {
    let live = t.live();
    assert!(live.len() <= 1, "{live:?}");
    live.first().map_or((0, 0), |i| (i.allocations, i.bytes))
}
