//! Shared by the verdict scenarios (`tests/verdict_*.rs`): each re-runs its own binary as
//! a child in one mode (`correct` or a planted variant), with a JSON exit report and
//! `LEAKTRACKER_EXIT_CODE=3`, and checks the verdict in two halves: the correct program
//! reports no leak (and says what it judged not a leak), the planted one reports exactly
//! the planted resources.
#![allow(dead_code)]

use crate::common::{command, temp_dir, ROLE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The environment variable that selects the scenario's mode in the child.
pub const MODE: &str = "LT_VERDICT_MODE";

/// The exit code the children are given for "leaks reported".
pub const LEAK_EXIT: i32 = 3;

/// The child's mode, when this process is a re-run child.
pub fn child_mode() -> Option<String> {
    match crate::common::role().as_deref() {
        Some("verdict-child") => Some(std::env::var(MODE).unwrap_or_default()),
        _ => None,
    }
}

/// What one child run gave.
pub struct Run {
    /// The mode it ran in.
    pub mode: String,
    /// Its exit status (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The parsed JSON exit report.
    pub report: Value,
    /// Where the report was written.
    pub path: PathBuf,
    /// stdout and stderr, for failure messages.
    pub out: String,
    pub err: String,
    /// How long the child ran.
    pub took: Duration,
}

/// Re-runs this test binary in `mode` with a JSON exit report and the leak exit code, plus
/// `env`; kills it after `timeout`.
pub fn run_mode(mode: &str, env: &[(&str, &str)], timeout: Duration) -> Run {
    let dir = temp_dir(&format!("verdict-{mode}"));
    let path = dir.join("r.json");
    let exe = std::env::current_exe().unwrap();
    let report = path.to_str().unwrap().to_owned();
    let exit = LEAK_EXIT.to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("LEAKTRACKER_REPORT", &report),
        ("LEAKTRACKER_EXIT_CODE", &exit),
        (MODE, mode),
    ];
    all.extend_from_slice(env);
    let mut cmd = command(&exe, &all);
    cmd.args(["--exact", "main", "--nocapture", "--test-threads=1"])
        .env(ROLE, "verdict-child")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    let o = wait_with_timeout(child, timeout, mode);
    let took = start.elapsed();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "mode {mode}: no report at {} ({e}); status {:?}\nstdout:\n{}\nstderr:\n{}",
            path.display(),
            o.status,
            tail(&out),
            tail(&err)
        )
    });
    let report: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("mode {mode}: report is not JSON ({e}):\n{}", tail(&text)));
    eprintln!(
        "verdict: mode {mode}: status {:?} in {:.1} s",
        o.status.code(),
        took.as_secs_f64()
    );
    Run {
        mode: mode.to_owned(),
        code: o.status.code(),
        report,
        path,
        out,
        err,
        took,
    }
}

/// Waits for `child` at most `timeout` (reading its output meanwhile), then kills it.
pub fn wait_with_timeout(
    mut child: std::process::Child,
    timeout: Duration,
    mode: &str,
) -> std::process::Output {
    use std::io::Read;
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
            panic!(
                "mode {mode}: the child ran longer than {timeout:?} and was killed\nstderr:\n{}",
                tail(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// The last lines of `s` (failure messages stay readable).
pub fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(40);
    lines[from..].join("\n")
}

/// One expected or reported leak: kind, live blocks, bytes.
pub type Leak = (String, u64, u64);

/// The report's `"leaks"` as name -> (kind, allocations, bytes). Panics on a duplicate
/// name (the scenarios give every resource a distinct name).
pub fn leaks(run: &Run) -> BTreeMap<String, Leak> {
    let arr = run.report["leaks"]
        .as_array()
        .unwrap_or_else(|| panic!("mode {}: no \"leaks\" array in the report", run.mode));
    let mut m = BTreeMap::new();
    for l in arr {
        let name = l["name"].as_str().expect("leak name").to_owned();
        let v = (
            l["kind"].as_str().expect("leak kind").to_owned(),
            l["allocations"].as_u64().expect("leak allocations"),
            l["bytes"].as_u64().expect("leak bytes"),
        );
        assert!(
            m.insert(name.clone(), v).is_none(),
            "mode {}: resource {name} listed twice",
            run.mode
        );
    }
    m
}

/// A readable summary of a report's leaks, at most `max` lines, with the first stack
/// frames of each when the report has them.
pub fn describe(run: &Run, max: usize) -> String {
    let arr = run.report["leaks"].as_array().cloned().unwrap_or_default();
    let mut s = format!(
        "mode {}: status {:?}, {} leaks listed, totals {}\n",
        run.mode,
        run.code,
        arr.len(),
        run.report["totals"]
    );
    for l in arr.iter().take(max) {
        s += &format!(
            "  {} ({}): {} blocks, {} B\n",
            l["name"].as_str().unwrap_or("?"),
            l["kind"].as_str().unwrap_or("?"),
            l["allocations"],
            l["bytes"]
        );
    }
    if arr.len() > max {
        s += &format!("  ... {} more\n", arr.len() - max);
    }
    s += &format!("stderr (tail):\n{}\n", tail(&run.err));
    s
}

/// The correct half of a program that may keep no tagged block at all: status 0, no leak
/// listed, and a summary (maybe empty) whose totals agree with its groups.
#[allow(dead_code)]
pub fn assert_correct_retaining_nothing(run: &Run) {
    let why = describe(run, 30);
    assert!(
        run.report["leaks"].as_array().is_some_and(|l| l.is_empty()),
        "a correct program must report no leak\n{why}"
    );
    assert_eq!(run.code, Some(0), "{why}");
    let not = run.report["not_leaks"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"not_leaks\" in the report\n{why}"));
    let blocks: u64 = not.iter().map(|g| g["blocks"].as_u64().unwrap_or(0)).sum();
    assert_eq!(
        run.report["not_leak_totals"]["allocations"].as_u64(),
        Some(blocks),
        "{why}"
    );
}

/// The correct half: status 0, no leak listed, and a non-empty summary of what was
/// judged not a leak (objects with at least "reason", "blocks" and "bytes").
pub fn assert_correct(run: &Run) {
    let why = describe(run, 30);
    let leaks = run.report["leaks"].as_array();
    assert!(
        leaks.is_some_and(|l| l.is_empty()),
        "a correct program must report no leak\n{why}"
    );
    assert_eq!(
        run.code,
        Some(0),
        "a correct program must exit 0 under LEAKTRACKER_EXIT_CODE\n{why}"
    );
    let not = run.report["not_leaks"].as_array().unwrap_or_else(|| {
        panic!("the report must summarise what it judged not a leak (\"not_leaks\")\n{why}")
    });
    assert!(
        !not.is_empty(),
        "this program keeps one-time state in tagged blocks: \"not_leaks\" cannot be empty\n{why}"
    );
    for g in not {
        assert!(
            g["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "a not_leaks group without a reason: {g}"
        );
        assert!(g["blocks"].as_u64().is_some_and(|b| b > 0), "{g}");
        assert!(g["bytes"].as_u64().is_some(), "{g}");
    }
}

/// The planted half: the leak exit code, and `"leaks"` is exactly `expected`.
pub fn assert_planted(run: &Run, expected: &BTreeMap<String, Leak>) {
    let got = leaks(run);
    let why = describe(run, 30);
    let missing: Vec<_> = expected
        .iter()
        .filter(|(n, v)| got.get(*n) != Some(v))
        .map(|(n, v)| format!("{n} {v:?} (got {:?})", got.get(n)))
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(n, _)| !expected.contains_key(*n))
        .map(|(n, v)| format!("{n} {v:?}"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the report must list exactly the planted leaks\nmissing or different ({}): {:?}\nnot planted ({}): {:?}\n{why}",
        missing.len(),
        missing.iter().take(25).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(25).collect::<Vec<_>>(),
    );
    assert_eq!(
        run.code,
        Some(LEAK_EXIT),
        "a planted leak must give the leak exit code\n{why}"
    );
}

/// `names` as expected leaks of `kind`, each one block of `bytes`.
pub fn expect_each(
    names: impl IntoIterator<Item = String>,
    kind: &str,
    bytes: u64,
) -> BTreeMap<String, Leak> {
    names
        .into_iter()
        .map(|n| (n, (kind.to_owned(), 1, bytes)))
        .collect()
}

/// One half of a scenario: its name and its check.
pub type Half = (String, Box<dyn FnOnce()>);

/// The half where mode `correct` must report no leak, judged by `check`
/// ([`assert_correct`], or [`assert_correct_retaining_nothing`] for a program that keeps
/// nothing tagged).
pub fn correct_half(timeout: Duration, check: fn(&Run)) -> Half {
    (
        "correct".into(),
        Box::new(move || check(&run_mode("correct", &[], timeout))),
    )
}

/// The half where `mode` must report exactly the `expected` leaks.
pub fn planted_half(mode: &str, timeout: Duration, expected: BTreeMap<String, Leak>) -> Half {
    let mode = mode.to_string();
    (
        mode.clone(),
        Box::new(move || assert_planted(&run_mode(&mode, &[], timeout), &expected)),
    )
}

/// Runs every half, even after one fails (each failure's message is printed by the panic
/// hook as it happens), then fails naming the halves that did.
pub fn all_halves(halves: Vec<Half>) {
    let n = halves.len();
    let failed: Vec<String> = halves
        .into_iter()
        .filter_map(|(name, half)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(half))
                .is_err()
                .then_some(name)
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {n} halves failed: {failed:?}",
        failed.len()
    );
}
