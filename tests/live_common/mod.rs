//! Helpers of the live-report tests: a re-run child that waits for a line on stdin,
//! signals sent to it, files waited for.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{command, ROLE};

/// The live-report variables, removed from children besides the common ones.
pub const LIVE_VARS: [&str; 6] = [
    "LEAKTRACKER_SIGNAL",
    "LEAKTRACKER_INTERVAL",
    "LEAKTRACKER_KEEP",
    "LEAKTRACKER_LABELS",
    "LEAKTRACKER_REPORT_ON",
    "LEAKTRACKER_VERDICT",
];

/// A child running this test binary in `role`, stdin and stdout piped.
pub struct LiveChild {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    done: Arc<AtomicBool>,
}

/// A child still running after this long is killed (the test then fails, not hangs).
const WATCHDOG: Duration = Duration::from_secs(300);

/// Starts this test binary in `role` with `env`.
pub fn spawn_self(role: &str, env: &[(&str, &str)]) -> LiveChild {
    let exe = std::env::current_exe().unwrap();
    let mut c = command(&exe, env);
    for v in LIVE_VARS {
        if !env.iter().any(|(k, _)| k == &v) {
            c.env_remove(v);
        }
    }
    let mut child = c
        .args(["--exact", "main", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let (pid, flag) = (child.id() as libc::pid_t, done.clone());
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < WATCHDOG {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !flag.load(Ordering::SeqCst) {
            eprintln!("watchdog: killing child {pid}");
            // SAFETY: kill has no memory preconditions; the child is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    LiveChild {
        child,
        stdout,
        done,
    }
}

impl LiveChild {
    /// Reads the child's stdout up to a line ending with `line` (panics at end of output);
    /// returns what it read before that line.
    pub fn expect_line(&mut self, line: &str) -> String {
        let mut seen = String::new();
        let mut buf = String::new();
        loop {
            buf.clear();
            let n = self.stdout.read_line(&mut buf).unwrap();
            assert!(n > 0, "the child ended before printing {line:?}: {seen}");
            // libtest prints `test main ... ` before the first line of output.
            if buf.trim_end().ends_with(line) {
                return seen;
            }
            seen.push_str(&buf);
        }
    }

    /// Sends `sig` to the child.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory preconditions; the pid is our live child's.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits for the child to end by itself, its stdin left open (`Child::wait` would
    /// close it first), for at most the watchdog's time.
    pub fn wait_open(&mut self) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes a line to the child's stdin.
    pub fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits for the child; its remaining stdout and its stderr.
    pub fn finish(mut self) -> Output {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let mut o = self.child.wait_with_output().unwrap();
        self.done.store(true, Ordering::SeqCst);
        o.stdout = rest.into_bytes();
        o
    }
}

/// In the child: waits for one line on stdin (or its end).
pub fn wait_for_parent() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim().to_string()
}

/// Waits up to `limit` for `path` to exist; whether it does.
pub fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    path.exists()
}

/// The files of `dir` whose names start with `prefix`, sorted by name.
pub fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}
