//! `gate`: run a command with per-process JSON exit reports, then sum them up.
//!
//! Every process of the run writes `<dir>/leaks-<run>-<pid>.json`, where `<run>` is unique
//! to this gate run: only those files count. The command and everything it starts inherit
//! the write end of a pipe; the gate waits (up to `--wait`) until the last holder is gone,
//! so that a process still running when the command returns is counted too.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use leaktracker::__cli::{allow_list_line, plural, totals_text};
use leaktracker::report::parse_age;
use leaktracker::{IgnorePattern, LeakReport, Totals};

use crate::reports::{labels_text, load, load_file};

/// Runs COMMAND with a JSON leak report per process, or judges reports already written;
/// fails if a process leaked or COMMAND failed.
///
/// With `-- COMMAND...`: runs COMMAND with LEAKTRACKER_REPORT=<DIR>/leaks-<RUN>-%p.json in
/// its environment (and its children's; RUN is unique to this run, and only its reports
/// count), waits for the processes COMMAND left running, then prints one summary of every
/// process's leaks.
///
/// With `--reports PATH...`: judges reports already written (files, or directories of
/// them: one per host or service, looked into recursively) as after a run: one summary,
/// each process named by its labels (LEAKTRACKER_LABELS) and program. Exits 2 when no
/// report is found.
///
/// Exit status: COMMAND's status when COMMAND failed, else 1 when a process leaked, else 0;
/// 2 on a usage error or an unreadable report.
#[derive(clap::Args)]
#[command(
    override_usage = "leaktracker gate [--min-age DURATION] [--ignore PATTERN]... [--report-dir DIR] [--wait DURATION] -- COMMAND...\n       \
                      leaktracker gate [--min-age DURATION] [--ignore PATTERN]... --reports PATH...",
    group(
    clap::ArgGroup::new("what")
        .required(true)
        .args(["command", "reports"])
    )
)]
pub(crate) struct GateArgs {
    /// Only resources older than DURATION count (0, 250ms, 5s, 2m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = duration_text)]
    min_age: Option<String>,
    /// Allow-list pattern `kind:GLOB`, `name:GLOB` or `frame:GLOB` (repeatable, one
    /// pattern each).
    #[arg(long, value_name = "PATTERN", value_parser = pattern)]
    ignore: Vec<String>,
    /// Keep the per-process JSON reports in DIR (default: a temporary directory, removed
    /// afterwards).
    #[arg(long, value_name = "DIR", conflicts_with = "reports")]
    report_dir: Option<PathBuf>,
    /// Wait at most DURATION after COMMAND returns for the processes it started that still
    /// run (0: do not wait).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = duration,
        conflicts_with = "reports"
    )]
    wait: Duration,
    /// Judge these reports (files, or directories of them) instead of running a command.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    reports: Vec<PathBuf>,
    /// The command to run, and its arguments (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// A duration as `LEAKTRACKER_MIN_AGE` spells it (the library's parser).
fn duration(s: &str) -> Result<Duration, String> {
    parse_age(s).ok_or_else(|| "not a duration (0, 250ms, 5s, 2m, 1h)".to_string())
}

/// `--min-age`: a duration, kept as written for the command's `LEAKTRACKER_MIN_AGE`.
fn duration_text(s: &str) -> Result<String, String> {
    duration(s).map(|_| s.to_string())
}

/// `--ignore`: one allow-list pattern, kept as written for `LEAKTRACKER_IGNORE`.
fn pattern(s: &str) -> Result<String, String> {
    if s.contains(',') {
        return Err("one pattern per --ignore (no commas)".to_string());
    }
    s.parse::<IgnorePattern>().map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

/// A fresh temporary directory for the reports.
fn temp_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    for n in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let d = base.join(format!(
            "leaktracker-gate-{}-{nanos}-{n}",
            std::process::id()
        ));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("gate: cannot create {}: {e}", d.display())),
        }
    }
    Err("gate: cannot create a temporary directory".to_string())
}

/// An id for this run's report file names: the gate's pid and the clock, in hex.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:08x}", std::process::id(), nanos as u32)
}

pub(crate) fn run(g: GateArgs) -> Result<u8, String> {
    if !g.reports.is_empty() {
        return judge_reports(&g);
    }
    let (dir, temporary) = match &g.report_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("gate: cannot create {}: {e}", d.display()))?;
            let d = std::fs::canonicalize(d).map_err(|e| format!("{}: {e}", d.display()))?;
            (d, false)
        }
        None => (temp_dir()?, true),
    };
    let result = run_in(&g, &dir, &run_id());
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(g: &GateArgs, dir: &Path, run: &str) -> Result<u8, String> {
    let prefix = format!("leaks-{run}-");
    let mut cmd = Command::new(&g.command[0]);
    cmd.args(&g.command[1..])
        .env("LEAKTRACKER_REPORT", dir.join(format!("{prefix}%p.json")))
        // The gate decides from the reports; an exit code would stop `cargo test` early.
        .env_remove("LEAKTRACKER_EXIT_CODE");
    match &g.min_age {
        Some(d) => cmd.env("LEAKTRACKER_MIN_AGE", d),
        None => cmd.env_remove("LEAKTRACKER_MIN_AGE"),
    };
    if g.ignore.is_empty() {
        cmd.env_remove("LEAKTRACKER_IGNORE");
    } else {
        cmd.env("LEAKTRACKER_IGNORE", g.ignore.join(","));
    }
    let (alive, holder) = liveness_pipe()?;
    let spawned = cmd.spawn();
    // Only the command and what it starts hold the write end now.
    drop(holder);
    let mut child = spawned.map_err(|e| format!("gate: cannot run {:?}: {e}", g.command[0]))?;
    let status = child
        .wait()
        .map_err(|e| format!("gate: waiting for {:?}: {e}", g.command[0]))?;
    let mut out = String::new();
    wait_for_descendants(&alive, g.wait, &mut out);
    let (reports, others) = load_run(dir, &prefix, &mut out)?;
    if !others.is_empty() {
        let mut names: Vec<&str> = others.iter().take(3).map(String::as_str).collect();
        let more = format!("{} more", others.len().saturating_sub(3));
        if others.len() > 3 {
            names.push(&more);
        }
        out.push_str(&format!(
            "leaktracker gate: note: not counted, not of this run: {} in {} ({})\n",
            plural(others.len(), "other .json file", "other .json files"),
            dir.display(),
            names.join(", ")
        ));
    }
    Ok(summarize(Some((&g.command, status)), &reports, &out))
}

/// `gate --reports PATH...`: the reports already written (files, or directories of them
/// from many processes and hosts), judged again with the gate's `--min-age` and
/// `--ignore`, summed up as after a run.
fn judge_reports(g: &GateArgs) -> Result<u8, String> {
    let mut reports = Vec::new();
    for p in &g.reports {
        reports.extend(load(p).map_err(|e| format!("gate: {e}"))?);
    }
    if reports.is_empty() {
        let paths: Vec<String> = g.reports.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "gate: no JSON report under {}: nothing to judge",
            paths.join(", ")
        ));
    }
    let min_age = g.min_age.as_deref().and_then(parse_age);
    let mut patterns = Vec::new();
    for p in &g.ignore {
        patterns.push(
            p.parse::<IgnorePattern>()
                .map_err(|e| format!("gate: --ignore: {e}"))?,
        );
    }
    let reports: Vec<LeakReport> = reports
        .into_iter()
        .map(|r| {
            let r = match min_age {
                Some(d) => r.min_age(d),
                None => r,
            };
            r.ignore_all(patterns.iter().cloned())
        })
        .collect();
    Ok(summarize(None, &reports, ""))
}

/// A pipe whose write end (the second) is inherited by the command and every process it
/// starts: the read end sees end-of-file once they have all exited (or closed it).
fn liveness_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is an array of two ints, as pipe requires.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!(
            "gate: cannot create a pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: pipe succeeded, so both are open descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The read end stays the gate's; the write end (without FD_CLOEXEC, as pipe made it) is
    // inherited across exec. The gate has no other threads that could spawn meanwhile.
    // SAFETY: `read` is an open descriptor; F_SETFD sets its descriptor flags only.
    if unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(format!(
            "gate: cannot set up the pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((read, write))
}

/// True once every holder of the pipe's write end is gone, waiting at most `timeout`.
fn pipe_closed(read: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().min(60_000)).unwrap_or(60_000);
        // SAFETY: `p` is one valid pollfd, and the count says one.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            // Nobody writes to the pipe: readable means end-of-file, i.e. closed.
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true;
        }
        if left.is_zero() {
            return false;
        }
    }
}

/// Waits for the processes the command left running (they hold the pipe), up to `wait`;
/// says what it waited for, and what it did not wait for any longer.
fn wait_for_descendants(read: &OwnedFd, wait: Duration, out: &mut String) {
    if pipe_closed(read, Duration::ZERO) {
        return;
    }
    let started = Instant::now();
    let holders = pipe_holders(read);
    let what = if holders.is_empty() {
        "processes it started".to_string()
    } else {
        describe(&holders)
    };
    let _ = writeln!(
        std::io::stderr(),
        "leaktracker gate: the command returned; waiting up to {} (--wait) for {what}",
        secs(wait)
    );
    if pipe_closed(read, wait) {
        out.push_str(&format!(
            "leaktracker gate: waited {} for {what} to end\n",
            secs(started.elapsed())
        ));
    } else {
        let still = pipe_holders(read);
        out.push_str(&format!(
            "leaktracker gate: warning: stopped waiting after {} (--wait): {} still running; \
             reports they write later are not counted\n",
            secs(started.elapsed()),
            if still.is_empty() {
                "processes it started are".to_string()
            } else {
                describe(&still)
            }
        ));
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `pid 12 (sleep 5), pid 13 (sh -c …)`, at most five named.
fn describe(procs: &[(u32, String)]) -> String {
    let mut parts: Vec<String> = procs
        .iter()
        .take(5)
        .map(|(pid, cmd)| format!("pid {pid} ({cmd})"))
        .collect();
    if procs.len() > 5 {
        parts.push(format!("{} more", procs.len() - 5));
    }
    format!(
        "{}: {}",
        plural(procs.len(), "process", "processes"),
        parts.join(", ")
    )
}

/// The processes that hold the pipe's write end, with their command lines (Linux: from
/// `/proc`; elsewhere, or when `/proc` cannot be read, none are named).
fn pipe_holders(read: &OwnedFd) -> Vec<(u32, String)> {
    let Ok(me) = std::fs::read_link(format!("/proc/self/fd/{}", read.as_raw_fd())) else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut found = Vec::new();
    for p in procs.filter_map(Result::ok) {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == me))
        {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let mut cmd: String = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            if cmd.chars().count() > 60 {
                cmd = cmd.chars().take(59).chain(['…']).collect();
            }
            found.push((pid, cmd));
        }
    }
    found.sort();
    found
}

/// This run's reports in `dir` (files `PREFIX*.json`, by name); a file of this run that is
/// not a report is named in `out` and skipped. Also returns the names of the other `.json`
/// files there (earlier runs', anybody's).
fn load_run(
    dir: &Path,
    prefix: &str,
    out: &mut String,
) -> Result<(Vec<LeakReport>, Vec<String>), String> {
    let mut files = Vec::new();
    let mut others = Vec::new();
    for e in std::fs::read_dir(dir)
        .map_err(|e| format!("gate: {}: {e}", dir.display()))?
        .filter_map(Result::ok)
    {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(".json") {
            continue;
        }
        if name.starts_with(prefix) {
            files.push(e.path());
        } else if !name.starts_with('.') {
            others.push(name.into_owned());
        }
    }
    files.sort();
    others.sort();
    let mut reports = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(r) => reports.push(r),
            Err(e) => out.push_str(&format!("leaktracker gate: warning: skipped {e}\n")),
        }
    }
    Ok((reports, others))
}

/// How the summary names a process: by the test names a libtest binary was asked to run
/// (`--exact a::leaks`, as `cargo nextest run` does), else by its program and arguments.
fn process_label(r: &LeakReport) -> String {
    let args = r.args();
    let program = args
        .first()
        .map(String::as_str)
        .or(r.exe())
        .unwrap_or("unknown executable");
    let base = Path::new(program)
        .file_name()
        .map_or(program.to_string(), |n| n.to_string_lossy().into_owned());
    let base = strip_cargo_hash(&base);
    let rest = args.get(1..).unwrap_or(&[]);
    if rest.iter().any(|a| a == "--exact") {
        let mut tests = Vec::new();
        let mut it = rest.iter();
        while let Some(a) = it.next() {
            if LIBTEST_VALUE_FLAGS.contains(&a.as_str()) {
                it.next();
            } else if !a.starts_with('-') {
                tests.push(a.as_str());
            }
        }
        if !tests.is_empty() {
            return format!("{} in {base}", tests.join(", "));
        }
    }
    let mut label = std::iter::once(base)
        .chain(rest.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    if label.chars().count() > 200 {
        label = label.chars().take(199).chain(['…']).collect();
    }
    label
}

/// `process_label`, after the process's labels (`LEAKTRACKER_LABELS`: host, service) when
/// it has any: `[host=a,service=api] api --port 80`.
fn labelled(r: &LeakReport) -> String {
    match labels_text(r) {
        Some(l) => format!("{l} {}", process_label(r)),
        None => process_label(r),
    }
}

/// How many distinct label sets the reports have.
fn distinct_labels(reports: &[LeakReport]) -> usize {
    let mut sets: Vec<&[(String, String)]> = reports.iter().map(|r| r.labels()).collect();
    sets.sort();
    sets.dedup();
    sets.len()
}

/// libtest options that take a value as the next argument.
const LIBTEST_VALUE_FLAGS: [&str; 7] = [
    "--test-threads",
    "--skip",
    "--logfile",
    "--color",
    "--format",
    "-Z",
    "--shuffle-seed",
];

/// `gate_fixture-0123456789abcdef` → `gate_fixture` (the hash cargo adds to test binaries).
fn strip_cargo_hash(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((stem, hash))
            if hash.len() == 16
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !stem.is_empty() =>
        {
            stem
        }
        _ => name,
    }
}

/// Prints the merged summary on stderr and returns the gate's exit status.
/// `run`: the command and how it ended; `None` for `--reports`.
fn summarize(
    run: Option<(&[String], std::process::ExitStatus)>,
    reports: &[LeakReport],
    notes: &str,
) -> u8 {
    let leaking: Vec<&LeakReport> = reports.iter().filter(|r| !r.is_empty()).collect();
    let without_allocator = reports.iter().filter(|r| !r.allocator_installed()).count();
    let dropped: u64 = reports.iter().map(LeakReport::dropped_records).sum();
    let mut out = String::new();
    for r in &leaking {
        out.push_str(&format!("\n== process {}: {}\n", r.pid(), labelled(r)));
        out.push_str(&r.to_string());
    }
    let totals = leaking
        .iter()
        .fold(Totals::default(), |acc, r| acc.saturating_add(r.totals()));
    out.push('\n');
    out.push_str(notes);
    match run {
        Some((command, status)) => {
            let status_text = match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => format!("ended by a signal ({status})"),
            };
            out.push_str(&format!(
                "leaktracker gate: `{}` {status_text}; {} reported, {} leaked\n",
                command.join(" "),
                plural(reports.len(), "process", "processes"),
                leaking.len()
            ));
        }
        None => {
            let hosts = distinct_labels(reports);
            out.push_str(&format!(
                "leaktracker gate: {} read{}, {} leaked\n",
                plural(reports.len(), "report", "reports"),
                if hosts > 1 {
                    format!(" from {hosts} differently labelled sources")
                } else {
                    String::new()
                },
                leaking.len()
            ));
        }
    }
    if reports.is_empty() {
        out.push_str(
            "leaktracker gate: warning: no process wrote a report; does the program link \
             leaktracker and install `TrackingAllocator` as its global allocator?\n",
        );
    }
    // Allow-list patterns, added up over every process.
    let mut patterns: Vec<(String, usize)> = Vec::new();
    for m in reports.iter().flat_map(|r| r.pattern_matches()) {
        match patterns.iter_mut().find(|(p, _)| *p == m.pattern) {
            Some((_, n)) => *n = n.saturating_add(m.matched),
            None => patterns.push((m.pattern.clone(), m.matched)),
        }
    }
    if let Some(line) = allow_list_line(patterns.iter().map(|(p, n)| (p.as_str(), *n))) {
        out.push_str(&format!("leaktracker gate: {line}\n"));
    }
    if without_allocator > 0 {
        out.push_str(&format!(
            "leaktracker gate: note: {} linked leaktracker without installing TrackingAllocator (nothing tracked there)\n",
            plural(without_allocator, "process", "processes")
        ));
    }
    if dropped > 0 {
        out.push_str(&format!(
            "leaktracker gate: warning: {dropped} records dropped (record tables full): some blocks are missing from the counts\n"
        ));
    }
    let failed = run.and_then(|(_, status)| (!status.success()).then_some(status));
    let code = if let Some(status) = failed {
        out.push_str("leaktracker gate: FAILED: the command failed\n");
        status
            .code()
            .map_or(1, |c| u8::try_from(c).unwrap_or(1).max(1))
    } else if !leaking.is_empty() {
        out.push_str(&format!(
            "leaktracker gate: FAILED: {} leaked {}\n",
            plural(leaking.len(), "process", "processes"),
            totals_text(totals)
        ));
        1
    } else {
        out.push_str("leaktracker gate: ok: no leaks\n");
        0
    };
    // Nothing more to do if stderr is gone.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), out.as_bytes());
    code
}
