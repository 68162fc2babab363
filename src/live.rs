//! Reports from a live process: on a signal (`LEAKTRACKER_SIGNAL`), every interval
//! (`LEAKTRACKER_INTERVAL`, `LEAKTRACKER_KEEP`), with labels (`LEAKTRACKER_LABELS`) and
//! the `%p`, `%n`, `%t` report paths.
//!
//! # How a snapshot is made
//!
//! One reporter thread, spawned at start-up only when a signal or an interval is
//! configured, does all the work: it blocks in `poll` on the read end of a pipe, with the
//! time to the next interval snapshot as the timeout. The signal handler only writes one
//! byte into the pipe's write end (non-blocking: when the pipe is full a snapshot is
//! already due, and the byte is dropped) — `write`, `getpid` and saving `errno` are all it
//! does, each async-signal-safe; it never allocates and never takes a lock. The thread
//! runs with the reentrancy guard held for its whole life, so nothing it allocates is
//! tagged, and it writes the report as the exit report would (a temporary file and a
//! rename), never inside the handler and never while an allocator lock is held.
//!
//! # Signals the program handles
//!
//! A signal that already has a handler when leaktracker is configured (normally before
//! `main`) is refused with one warning line: leaktracker does not chain to it. The
//! program's handler has its own flags (`SA_SIGINFO`, `SA_RESETHAND`, …) and meaning, and
//! calling it from a second handler changes when and how often it runs; a snapshot signal
//! is the operator's choice, and another one is always free. A handler the program
//! installs later replaces leaktracker's (a library such as `signal-hook` calls the
//! previous handler after its own, and then both run).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use crate::guard::Reentrancy;
use crate::report::{IgnorePattern, LeakReport};
use crate::settings::{items, EnvDuration};
use crate::verdict::Verdict;

// ---------------------------------------------------------------------------------------
// Parsers (total functions)

/// Signal names leaktracker accepts, with or without `SIG`, any case. Left out: `KILL`
/// and `STOP` (cannot be caught), the fault signals (`SEGV`, `BUS`, `FPE`, `ILL`, `TRAP`,
/// `ABRT`, `SYS`: they mean the process is broken), `PIPE` (std sets it to ignored at
/// start-up) and `CHLD`/`CONT` (they come without anyone asking for a report).
const SIGNALS: &[(&str, libc::c_int)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
];

/// Parses a signal name: `USR2`, `SIGUSR2`, `usr2`.
pub(crate) fn parse_signal(s: &str) -> Option<libc::c_int> {
    let s = s.trim().to_ascii_uppercase();
    let name = s.strip_prefix("SIG").unwrap_or(&s);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, sig)| sig)
}

/// The name of a signal leaktracker accepts (`USR2`).
pub(crate) fn signal_name(sig: libc::c_int) -> &'static str {
    SIGNALS
        .iter()
        .find(|(_, s)| *s == sig)
        .map_or("?", |(n, _)| n)
}

/// Parses `LEAKTRACKER_REPORT_ON`: `term`, `int`, `hup` (comma-separated): the signals
/// and the bad items.
pub(crate) fn parse_report_on(s: &str) -> (Vec<libc::c_int>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in items(s) {
        let sig = match item.to_ascii_lowercase().trim_start_matches("sig") {
            "term" => libc::SIGTERM,
            "int" => libc::SIGINT,
            "hup" => libc::SIGHUP,
            _ => {
                bad.push(item.to_string());
                continue;
            }
        };
        if !good.contains(&sig) {
            good.push(sig);
        }
    }
    (good, bad)
}

/// Parses a snapshot interval: a duration above zero (`500ms`, `60s`, `5m`, `1h`).
pub(crate) fn parse_interval(s: &str) -> Option<Duration> {
    s.parse()
        .ok()
        .map(|EnvDuration(d)| d)
        .filter(|d| !d.is_zero())
}

/// Parses how many snapshot files stay: a number from 1 up.
pub(crate) fn parse_keep(s: &str) -> Option<usize> {
    s.trim().parse().ok().filter(|&n| n > 0)
}

/// Parses `key=value,...`: the good pairs, in order (a repeated key keeps its last value),
/// and the bad items (no `=`, or an empty key).
pub(crate) fn parse_labels(s: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut good: Vec<(String, String)> = Vec::new();
    let mut bad = Vec::new();
    for item in items(s) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                good.retain(|(old, _)| *old != k);
                good.push((k, v));
            }
            _ => bad.push(item.to_string()),
        }
    }
    (good, bad)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// Configuration

/// What the reporter thread needs: where reports go and how they are filtered, and the
/// triggers.
#[derive(Clone, Debug, Default)]
pub(crate) struct LiveConfig {
    /// A path template, or `None` for stderr.
    pub(crate) path: Option<OsString>,
    pub(crate) min_age: Duration,
    pub(crate) ignore: Vec<IgnorePattern>,
    pub(crate) verdict: Verdict,
    pub(crate) show_all: bool,
    pub(crate) signal: Option<libc::c_int>,
    pub(crate) interval: Option<Duration>,
    pub(crate) keep: Option<usize>,
    /// `LEAKTRACKER_REPORT_ON`: these signals write the exit report, then end the process.
    pub(crate) report_on: Vec<libc::c_int>,
    /// Writes the exit report for a `report_on` signal and gives the exit status to end
    /// with (`None`: die by the signal). The exit report's (`exit.rs`), handed in so that
    /// this module does not depend on it.
    pub(crate) exit_report: Option<fn(&Reentrancy) -> Option<i32>>,
}

static CONFIG: Mutex<Option<LiveConfig>> = Mutex::new(None);

/// The process that configured live reports (a fork child's handler stays quiet).
static OWNER_PID: AtomicU32 = AtomicU32::new(0);

/// Write end of the self-pipe, or -1.
static PIPE_WR: AtomicI32 = AtomicI32::new(-1);
/// Read end of the self-pipe, or -1.
static PIPE_RD: AtomicI32 = AtomicI32::new(-1);

/// The signal whose handler is leaktracker's, or 0.
static HANDLED: AtomicI32 = AtomicI32::new(0);

/// Reporter threads running (0 or 1): the exit report does not count it among the
/// program's threads.
static REPORTERS: AtomicUsize = AtomicUsize::new(0);

/// Set when the exit report starts: no snapshot after it.
static STOPPED: AtomicBool = AtomicBool::new(false);

/// Held while a snapshot is written, so that the exit report comes after it.
static WRITING: Mutex<()> = Mutex::new(());

static SPAWN: Once = Once::new();

/// Byte the snapshot signal's handler writes.
const WAKE_SNAPSHOT: u8 = b's';
/// Byte a `LEAKTRACKER_REPORT_ON` signal's handler writes.
const WAKE_TERMINATE: u8 = b't';

/// Makes `cfg` the live-report configuration: installs the signal handler and starts
/// the reporter thread when a trigger is set. Called by `ExitReport::install`.
pub(crate) fn configure(r: &Reentrancy, cfg: LiveConfig) {
    // SAFETY: getpid has no preconditions.
    OWNER_PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
    let mut cfg = cfg;
    if let Some(sig) = cfg.signal {
        if !install_handler(sig) {
            cfg.signal = None;
        }
    }
    cfg.report_on.retain(|&sig| install_report_on(sig));
    let needs_thread = cfg.signal.is_some() || cfg.interval.is_some() || !cfg.report_on.is_empty();
    *lock(&CONFIG) = Some(cfg);
    if needs_thread {
        spawn_reporter(r);
    }
}

/// How many reporter threads run (0 or 1).
pub(crate) fn reporter_threads() -> usize {
    REPORTERS.load(Ordering::Relaxed)
}

/// Called when the exit report starts: no more snapshots; waits for one being written.
pub(crate) fn stop_for_exit() {
    STOPPED.store(true, Ordering::SeqCst);
    drop(lock(&WRITING));
}

// ---------------------------------------------------------------------------------------
// The signal handler

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: no preconditions; the pointer is to this thread's errno.
    unsafe { libc::__errno_location() }
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: no preconditions; the pointer is to this thread's errno.
    unsafe { libc::__error() }
}

/// Writes one byte into the self-pipe. Async-signal-safe: `getpid` and `write` only, with
/// `errno` saved and restored; no allocation, no lock.
pub(crate) fn wake(byte: u8) {
    let e = errno_location();
    // SAFETY: `e` is this thread's errno location, valid for the life of the thread.
    let saved = unsafe { *e };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    let fd = PIPE_WR.load(Ordering::Relaxed);
    if fd >= 0 && pid == OWNER_PID.load(Ordering::Relaxed) {
        // SAFETY: `byte` is one live byte; `fd` is the pipe's non-blocking write end (a
        // full pipe makes write fail, which is fine: a wake-up is pending already).
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *e = saved };
}

extern "C" fn on_snapshot_signal(_sig: libc::c_int) {
    wake(WAKE_SNAPSHOT);
}

/// A termination signal being handled (its number), or 0.
static TERMINATING: AtomicI32 = AtomicI32::new(0);

/// Gives `sig` its default action and sends it to this process: it ends as the signal
/// would have ended it. Async-signal-safe.
fn die_by(sig: libc::c_int) {
    // SAFETY: signal, sigemptyset, sigaddset, pthread_sigmask, raise and _exit are
    // async-signal-safe; the sigset is a local value initialised before use.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        // Not reached for SIGTERM/SIGINT/SIGHUP; a status that says which signal if so.
        libc::_exit(128 + sig);
    }
}

/// The handler of `LEAKTRACKER_REPORT_ON` signals: wakes the reporter thread, which
/// writes the exit report and then ends the process by the signal. Async-signal-safe.
extern "C" fn on_terminate_signal(sig: libc::c_int) {
    // A program that installed its own handler later and calls the previous one (as
    // signal-hook does) keeps the signal: this handler is no longer the installed one.
    if current_handler(sig) != Some(on_terminate_signal as *const () as libc::sighandler_t) {
        return;
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    if pid != OWNER_PID.load(Ordering::Relaxed) || reporter_threads() == 0 {
        // A fork child, or nobody to write the report: end as the signal would.
        die_by(sig);
    }
    // A second delivery while the report is being written ends the process at once.
    if TERMINATING
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        die_by(sig);
    }
    wake(WAKE_TERMINATE);
}

/// Installs the `LEAKTRACKER_REPORT_ON` handler for `sig`, unless the program handles
/// `sig` already (one warning line: its handler keeps the signal).
fn install_report_on(sig: libc::c_int) -> bool {
    match current_handler(sig) {
        Some(h) if h == on_terminate_signal as *const () as libc::sighandler_t => return true,
        Some(_) => {
            crate::os::warn(&format!(
                "LEAKTRACKER_REPORT_ON: the program handles SIG{} itself; its handler keeps it",
                signal_name(sig)
            ));
            return false;
        }
        None => {}
    }
    if !open_pipe() || !set_handler(sig, on_terminate_signal) {
        crate::os::warn(&format!(
            "LEAKTRACKER_REPORT_ON: cannot handle SIG{} ({}); no exit report on it",
            signal_name(sig),
            std::io::Error::last_os_error()
        ));
        return false;
    }
    true
}

/// The current handler of `sig`, if it is a function (not the default, not ignored).
pub(crate) fn current_handler(sig: libc::c_int) -> Option<libc::sighandler_t> {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is a valid out-pointer.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return None;
    }
    let h = old.sa_sigaction;
    (h != libc::SIG_DFL && h != libc::SIG_IGN).then_some(h)
}

/// Installs `handler` for `sig` with `SA_RESTART` (interrupted system calls of the program
/// go on). Returns false when sigaction fails.
pub(crate) fn set_handler(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> bool {
    // SAFETY: an all-zero sigaction is valid; the fields are set below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler as libc::sighandler_t;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: `act.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: `act` is a valid action whose handler is an `extern "C"` function that is
    // async-signal-safe and lives for the whole process; the old action is not wanted.
    unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) == 0 }
}

/// Installs the snapshot handler for `sig`, unless the program handles `sig` already (one
/// warning line). Returns whether it is installed.
fn install_handler(sig: libc::c_int) -> bool {
    if HANDLED.load(Ordering::Relaxed) == sig {
        return true;
    }
    if current_handler(sig).is_some() {
        crate::os::warn(&format!(
            "LEAKTRACKER_SIGNAL={name}: the program already handles SIG{name}; no snapshots on it (pick another signal)",
            name = signal_name(sig)
        ));
        return false;
    }
    if !open_pipe() {
        crate::os::warn(&format!(
            "LEAKTRACKER_SIGNAL: cannot make a pipe ({}); no snapshots on a signal",
            std::io::Error::last_os_error()
        ));
        return false;
    }
    if !set_handler(sig, on_snapshot_signal) {
        crate::os::warn(&format!(
            "LEAKTRACKER_SIGNAL: cannot install a handler for SIG{} ({}); no snapshots on it",
            signal_name(sig),
            std::io::Error::last_os_error()
        ));
        return false;
    }
    HANDLED.store(sig, Ordering::Relaxed);
    true
}

/// Makes the self-pipe (both ends close-on-exec, the write end non-blocking) once.
pub(crate) fn open_pipe() -> bool {
    if PIPE_WR.load(Ordering::Relaxed) >= 0 {
        return true;
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return false;
    }
    for (fd, nonblock) in [(fds[0], false), (fds[1], true)] {
        // SAFETY: `fd` was just returned by pipe; F_SETFD/F_SETFL take an int flag set.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            if nonblock {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
    }
    PIPE_RD.store(fds[0], Ordering::Relaxed);
    PIPE_WR.store(fds[1], Ordering::Relaxed);
    true
}

// ---------------------------------------------------------------------------------------
// The reporter thread

fn spawn_reporter(_r: &Reentrancy) {
    SPAWN.call_once(|| {
        if !open_pipe() {
            crate::os::warn(&format!(
                "cannot make a pipe for the reporter thread ({}); no snapshots",
                std::io::Error::last_os_error()
            ));
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("leaktracker-reporter".into())
            .spawn(|| reporter_loop(&Reentrancy::enter()));
        match spawned {
            Ok(_) => {
                REPORTERS.store(1, Ordering::Relaxed);
            }
            Err(e) => crate::os::warn(&format!(
                "cannot start the reporter thread ({e}); no snapshots"
            )),
        }
    });
}

/// Waits for a wake-up byte or `timeout`; returns the bytes read (empty on timeout).
fn wait(timeout: Option<Duration>) -> Vec<u8> {
    let fd = PIPE_RD.load(Ordering::Relaxed);
    let ms = timeout.map_or(-1, |t| {
        // Round up, so the deadline has passed when poll returns.
        i32::try_from(t.as_millis() + 1).unwrap_or(i32::MAX)
    });
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n <= 0 {
        return Vec::new(); // timeout, or interrupted by a signal: look at the clock
    }
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is a live buffer of 64 bytes; the pipe has data (poll said so).
    let got = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if got <= 0 {
        return Vec::new();
    }
    buf[..got as usize].to_vec()
}

fn reporter_loop(r: &Reentrancy) {
    let (interval, exit_report) = lock(&CONFIG)
        .as_ref()
        .map_or((None, None), |c| (c.interval, c.exit_report));
    let mut next = interval.map(|i| Instant::now() + i);
    let mut written: VecDeque<PathBuf> = VecDeque::new();
    loop {
        let timeout = next.map(|n| n.saturating_duration_since(Instant::now()));
        let woke = wait(timeout);
        if woke.contains(&WAKE_TERMINATE) {
            let sig = TERMINATING.load(Ordering::SeqCst);
            if let Some(code) = exit_report.and_then(|report| report(r)) {
                crate::os::exit_now(code);
            }
            die_by(sig);
        }
        if STOPPED.load(Ordering::SeqCst) {
            return;
        }
        if woke.contains(&WAKE_SNAPSHOT) {
            snapshot(r, "signal", &mut written);
        }
        if let (Some(n), Some(i)) = (next, interval) {
            let now = Instant::now();
            if now >= n {
                snapshot(r, "interval", &mut written);
                // Fixed rate; a snapshot that took longer than the interval skips ahead.
                let mut due = n + i;
                if due <= Instant::now() {
                    due = Instant::now() + i;
                }
                next = Some(due);
            }
        }
    }
}

/// Makes a live report and writes it where the exit report goes; removes the oldest
/// snapshot files beyond `LEAKTRACKER_KEEP`.
fn snapshot(g: &Reentrancy, trigger: &'static str, written: &mut VecDeque<PathBuf>) {
    let _w = lock(&WRITING);
    if STOPPED.load(Ordering::SeqCst) {
        return;
    }
    let Some(cfg) = lock(&CONFIG).clone() else {
        return;
    };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let seq = crate::report::output::next_seq();
        let report = LeakReport::capture_with(g, |r| {
            r.set_verdict(cfg.verdict, false, cfg.show_all);
            r.set_filters(cfg.min_age, cfg.ignore.iter().cloned(), g);
            r.set_snapshot(g, seq, trigger);
        });
        let Some(template) = &cfg.path else {
            crate::os::write_stderr(report.to_string().as_bytes());
            return;
        };
        let path = match template.to_str() {
            Some(t) => PathBuf::from(crate::report::output::expand_path(
                g,
                t,
                seq,
                crate::report::output::unix_seconds(),
            )),
            None => PathBuf::from(template),
        };
        if let Err(e) = report.write_to(&path) {
            crate::os::warn(&format!(
                "cannot write the snapshot report to {}: {e}",
                path.display()
            ));
            return;
        }
        if let Some(keep) = cfg.keep {
            written.retain(|p| *p != path);
            written.push_back(path);
            while written.len() > keep {
                if let Some(old) = written.pop_front() {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("USR2"), Some(libc::SIGUSR2));
        assert_eq!(parse_signal("sigusr1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal(" SIGHUP "), Some(libc::SIGHUP));
        for bad in ["", "KILL", "SIGSTOP", "SEGV", "USR3", "12", "SIG", "PIPE"] {
            assert_eq!(parse_signal(bad), None, "{bad:?}");
        }
        assert_eq!(signal_name(libc::SIGUSR2), "USR2");
    }

    #[test]
    fn report_on() {
        let (good, bad) = parse_report_on("term, INT,sigterm,,kill");
        assert_eq!(good, [libc::SIGTERM, libc::SIGINT]);
        assert_eq!(bad, ["kill".to_string()]);
    }

    #[test]
    fn intervals_keep_labels() {
        assert_eq!(parse_interval("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_interval("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_interval("0"), None);
        assert_eq!(parse_interval("0s"), None);
        assert_eq!(parse_interval("soon"), None);
        assert_eq!(parse_keep("3"), Some(3));
        assert_eq!(parse_keep("0"), None);
        assert_eq!(parse_keep("-1"), None);
        let (good, bad) = parse_labels("service=api, region=eu,,oops,=x,service=web,empty=");
        assert_eq!(
            good,
            vec![
                ("region".to_string(), "eu".to_string()),
                ("service".to_string(), "web".to_string()),
                ("empty".to_string(), String::new()),
            ]
        );
        assert_eq!(bad, vec!["oops".to_string(), "=x".to_string()]);
    }

    proptest::proptest! {
        #[test]
        fn parsers_take_any_input(s in "\\PC*") {
            let _ = parse_signal(&s);
            let _ = parse_interval(&s);
            let _ = parse_keep(&s);
            let _ = parse_labels(&s);
            let _ = parse_report_on(&s);
        }
    }
}
