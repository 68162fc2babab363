//! Start-up configuration from the environment, the exit report and the exit code.
//! What users see is documented on [`ExitReport`].

use std::ffi::OsString;
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use crate::guard::Reentrancy;
use crate::os::{warn, write_stderr};
use crate::report::{IgnorePattern, LeakReport};
use crate::stack::{Backtraces, Unwinder};
use crate::verdict::Verdict;

mod env;

// ---------------------------------------------------------------------------------------
// Warnings about bad values

/// Characters of a bad value a warning quotes.
const QUOTE_CHARS: usize = 40;

/// Bad allow-list items a warning quotes.
const QUOTE_ITEMS: usize = 3;

/// A bad value as a warning quotes it: escaped, in double quotes, at most [`QUOTE_CHARS`]
/// characters of it; when it is longer, `…` and its length: a 120 KB value gives a short
/// line, not a 120 KB one.
pub(crate) fn quoted(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.as_str().is_empty() {
        format!("\"{}\"", head.escape_debug())
    } else {
        format!("\"{}…\" ({} bytes)", head.escape_debug(), s.len())
    }
}

/// Bad allow-list items as a warning lists them: the first [`QUOTE_ITEMS`], each
/// [`quoted`], then how many more.
pub(crate) fn quoted_items(items: &[String]) -> String {
    let mut parts: Vec<String> = items.iter().take(QUOTE_ITEMS).map(|i| quoted(i)).collect();
    if items.len() > QUOTE_ITEMS {
        parts.push(format!("and {} more", items.len() - QUOTE_ITEMS));
    }
    parts.join(", ")
}

/// A path as a warning shows it: as it is when short and printable, else escaped and cut
/// like a [`quoted`] value (without the quotes).
fn shown_path(p: &std::path::Path) -> String {
    const MAX: usize = 200;
    let full = p.display().to_string();
    let escaped = crate::report::escape_text(&full);
    if escaped.chars().count() <= MAX {
        return escaped.into_owned();
    }
    let head: String = escaped.chars().take(MAX).collect();
    format!("{head}… ({} bytes)", full.len())
}

// ---------------------------------------------------------------------------------------
// Configuration

/// Where the exit report goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Stderr,
    /// A path template (`%p` becomes the pid).
    File(OsString),
}

/// The exit report's configuration: where it goes, its filters, the exit code.
///
/// [`install`](Self::install) makes it the process's configuration, replacing what the
/// `LEAKTRACKER_*` variables set at start-up. An exit code without a destination makes no
/// report: when it changes the exit status, one summary line on stderr says so.
///
/// # The variables
///
/// Read once, before `main` (a constructor in `.init_array` on ELF platforms,
/// `__mod_init_func` on macOS). A bad value gets one line on stderr and the default; it
/// never stops the program.
///
/// | variable | meaning |
/// | --- | --- |
/// | `LEAKTRACKER_REPORT` | unset: no exit report. `stderr`: text on stderr; `stdout`: text on stdout (as `/dev/stdout`). Otherwise a file path: JSON when it ends in `.json`, folded stacks (flame graphs) when it ends in `.folded`, text otherwise; `%p` becomes the process id. Links, devices, FIFOs and `/dev/stdout` are handled as [`LeakReport::write_to`] says; a path that cannot be written gets one warning line and the report on stderr |
/// | `LEAKTRACKER_MIN_AGE` | only resources older than this are listed: `0`, `250ms`, `5s`, `2m`, `1h` |
/// | `LEAKTRACKER_EXIT_CODE` | `1`–`255`: when the exit report lists a leak and the process was exiting with status 0, it exits with this code instead. Without `LEAKTRACKER_REPORT` there is no report, only one summary line on stderr when the code is used (`leaktracker: 2 resources, 2 blocks, 164 B leaked: exit status 7 …`) |
/// | `LEAKTRACKER_IGNORE` | comma-separated allow-list: `kind:cache,name:global-*` |
/// | `LEAKTRACKER_BACKTRACE` | `1`: a backtrace for each tagged block; `sample:N`: for one block in N; `0`: none |
/// | `LEAKTRACKER_UNWIND` | `tables` (default): the unwind tables; `frame-pointers` (or `fp`): the frame-pointer chain (fast; build with `-C force-frame-pointers=yes`); `system`: libunwind |
/// | `LEAKTRACKER_VERDICT` | `default`: one-time and amortised retention is not a leak (see [`Verdict`]); `strict`: every live tagged block is a leak; `show-all` (alone or after a comma): every block group judged not a leak is listed, not one summary line per reason |
/// | `LEAKTRACKER_MAX_RECORDS` | caps the record table (see [`set_max_records`](crate::set_max_records)) |
/// | `LEAKTRACKER_SIGNAL` | a signal name (`USR2`, `USR1`, `HUP`, …): each delivery writes a live report (open units in progress) to `LEAKTRACKER_REPORT`'s path and the process goes on; refused, with one line, when the program already handles that signal |
/// | `LEAKTRACKER_INTERVAL` | a duration (`60s`): a live report every interval |
/// | `LEAKTRACKER_KEEP` | `N`: only the newest N snapshot files stay (the exit report is not counted) |
/// | `LEAKTRACKER_LABELS` | `service=api,region=eu`: copied into every report (JSON `"labels"`, text, pprof labels) |
/// | `LEAKTRACKER_REPORT_ON` | `term`, `int`, `hup` (comma-separated): that signal writes the exit report (with the exit code's rule, as for status 0), then ends the process as the signal would have; a program with its own handler for it keeps it |
///
/// In a report path `%p` becomes the process id, `%n` the report's sequence number in this
/// process (1, 2, …; snapshots and the exit report), `%t` Unix time in seconds, `%%` a `%`.
/// A path ending in `.pb.gz` gets a gzipped pprof heap profile
/// ([`LeakReport::to_pprof`](crate::LeakReport::to_pprof)).
///
/// # When the report is made
///
/// From an exit handler registered at start-up, so it runs on return from `main`, on
/// `std::process::exit` and after a panic in `main` (std then exits with 101); not when the
/// process dies from a signal, calls `libc::_exit` or aborts. It runs after the main
/// thread's thread-local destructors and after the exit handlers registered later than it
/// (which is nearly all of them). Other threads may still be running.
///
/// # The exit code
///
/// With glibc the handler is registered with `on_exit`, which hands it the status passed
/// to `exit`: the code replaces status 0 only. Elsewhere (`atexit`) the status cannot be
/// known; a panic on the main thread is recorded (by the panic hook wrapper) and then the
/// status is left alone, but a non-zero `process::exit(n)` would be replaced by the leak
/// code (still non-zero). Replacing the status uses `libc::_exit` after flushing C stdio:
/// exit handlers registered *before* leaktracker's (by other constructors) do not run then.
/// What cannot be known anywhere: a status set by a signal or an abort (no report is made
/// then), and, without `on_exit`, the status of `process::exit(n)`.
///
/// # Which processes report
///
/// The process that installed the configuration (at start-up, or with
/// [`install`](Self::install)). A child made by `fork()` without `exec` inherits the
/// configuration and its parent's blocks, so it does not report unless it calls
/// `install` itself; a program started by `exec` reads the variables afresh.
///
/// Every process that links leaktracker runs the start-up code. A crate that only lists
/// leaktracker as a dependency and never refers to it is not linked (rustc drops unused
/// crates), so it writes no report; a process that links it without installing
/// `TrackingAllocator` writes an empty report that says so (`allocator_installed: false`).
///
/// ```
/// use std::time::Duration;
/// leaktracker::ExitReport::new()
///     .to_file("leaks-%p.json")
///     .min_age(Duration::from_millis(250))
///     .ignore("kind:cache".parse().unwrap())
///     .exit_code(3)
///     .install();
/// # leaktracker::ExitReport::new().install(); // no report when this doctest exits
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "nothing changes until `install` is called"]
pub struct ExitReport {
    target: Option<Target>,
    min_age: Duration,
    exit_code: Option<u8>,
    ignore: Vec<IgnorePattern>,
    backtraces: Option<Backtraces>,
    unwinder: Option<Unwinder>,
    max_records: Option<usize>,
    verdict: Verdict,
    show_all: bool,
    /// Stacks were switched on for the verdict, not asked for.
    stacks_for_verdict: bool,
    /// Live reports: `LEAKTRACKER_SIGNAL`, `LEAKTRACKER_INTERVAL`, `LEAKTRACKER_KEEP`.
    snapshot_signal: Option<libc::c_int>,
    interval: Option<Duration>,
    keep: Option<usize>,
    /// `LEAKTRACKER_LABELS`, copied into every report.
    labels: Option<Vec<(String, String)>>,
    /// `LEAKTRACKER_REPORT_ON`: signals that write the exit report, then end the process.
    report_on: Vec<libc::c_int>,
}

impl ExitReport {
    /// No exit report, no filters, no exit code (installing it turns the report off).
    pub fn new() -> ExitReport {
        ExitReport::default()
    }

    /// The configuration of the `LEAKTRACKER_*` variables, read now; each bad value is
    /// described by one line on stderr and replaced by its default.
    pub fn from_env() -> ExitReport {
        let _r = Reentrancy::enter();
        env::from_vars(|name| std::env::var_os(name), &mut |msg| warn(&msg))
    }

    /// Whether a live-report variable is set.
    fn live_configured(&self) -> bool {
        self.snapshot_signal.is_some()
            || self.interval.is_some()
            || self.labels.is_some()
            || !self.report_on.is_empty()
    }

    /// Writes the exit report (text) to stderr.
    pub fn to_stderr(mut self) -> ExitReport {
        self.target = Some(Target::Stderr);
        self
    }

    /// Writes the exit report to `path` (JSON when it ends in `.json`, folded stacks when it
    /// ends in `.folded`, text otherwise;
    /// `%p` becomes the process id). When the file cannot be written, the report goes to
    /// stderr after one warning line.
    pub fn to_file(mut self, path: impl Into<OsString>) -> ExitReport {
        self.target = Some(Target::File(path.into()));
        self
    }

    /// Lists only resources older than `age`.
    pub fn min_age(mut self, age: Duration) -> ExitReport {
        self.min_age = age;
        self
    }

    /// Adds an allow-list pattern.
    pub fn ignore(mut self, pattern: IgnorePattern) -> ExitReport {
        self.ignore.push(pattern);
        self
    }

    /// When the report lists a leak and the process exits with status 0, exit with `code`
    /// instead (`0` turns this off). Without a destination ([`to_stderr`](Self::to_stderr),
    /// [`to_file`](Self::to_file)) no report is made, only one summary line on stderr when
    /// the code is used.
    pub fn exit_code(mut self, code: u8) -> ExitReport {
        self.exit_code = (code != 0).then_some(code);
        self
    }

    /// Which tagged blocks get a backtrace.
    pub fn backtraces(mut self, mode: Backtraces) -> ExitReport {
        self.backtraces = Some(mode);
        self
    }

    /// How stacks are walked (see [`set_unwinder`](crate::set_unwinder)).
    pub fn unwinder(mut self, unwinder: Unwinder) -> ExitReport {
        self.unwinder = Some(unwinder);
        self
    }

    /// How the report judges what is a leak (default [`Verdict::Default`]).
    pub fn verdict(mut self, verdict: Verdict) -> ExitReport {
        self.verdict = verdict;
        self
    }

    /// Lists every block group judged not a leak, not only a summary line per reason.
    pub fn show_all(mut self, show_all: bool) -> ExitReport {
        self.show_all = show_all;
        self
    }

    /// Caps the record table (see [`set_max_records`](crate::set_max_records)).
    pub fn max_records(mut self, max: usize) -> ExitReport {
        self.max_records = Some(max);
        self
    }

    /// Makes this the process's exit-report configuration (replacing the previous one),
    /// registers the exit handler if needed and wraps the panic hook (see
    /// [`protect_panic_hook`](crate::protect_panic_hook)).
    pub fn install(self) {
        let r = Reentrancy::enter();
        if let Some(m) = self.backtraces {
            crate::set_backtraces(m);
        }
        if self.stacks_for_verdict {
            // An initialiser's frame (`Once::call`) sits far from the allocation when the
            // initialiser is deep (compiling a regex): keep whole stacks.
            crate::set_backtrace_depth(crate::stack::MAX_DEPTH);
        }
        if let Some(u) = self.unwinder {
            crate::set_unwinder(u);
        }
        if let Some(n) = self.max_records {
            crate::set_max_records(Some(n));
        }
        let mut cfg = self;
        // Snapshots and signal-made reports need somewhere to go: stderr, unless a path
        // is set. (An exit code alone makes no report: a summary line when it applies.)
        if cfg.target.is_none()
            && (cfg.snapshot_signal.is_some()
                || cfg.interval.is_some()
                || !cfg.report_on.is_empty())
        {
            cfg.target = Some(Target::Stderr);
        }
        let active = cfg.target.is_some() || cfg.exit_code.is_some();
        // SAFETY: getpid has no preconditions.
        OWNER_PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
        if let Some(labels) = cfg.labels.clone() {
            crate::report::output::set_labels(&r, labels);
        }
        crate::live::configure(
            &r,
            crate::live::LiveConfig {
                path: match &cfg.target {
                    Some(Target::File(p)) => Some(p.clone()),
                    _ => None,
                },
                min_age: cfg.min_age,
                ignore: cfg.ignore.clone(),
                verdict: cfg.verdict,
                show_all: cfg.show_all,
                signal: cfg.snapshot_signal,
                interval: cfg.interval,
                keep: cfg.keep,
                report_on: if active {
                    cfg.report_on.clone()
                } else {
                    Vec::new()
                },
                exit_report: Some(exit_report_on_signal),
            },
        );
        *config() = Some(cfg);
        if active {
            register_exit_handler();
        }
        protect_panic_hook();
    }
}

static CONFIG: Mutex<Option<ExitReport>> = Mutex::new(None);

/// The process that installed the configuration. A child made by `fork()` (without
/// `exec`) inherits it, and its parent's blocks: it does not report unless it installs a
/// configuration of its own.
static OWNER_PID: AtomicU32 = AtomicU32::new(0);

fn config() -> std::sync::MutexGuard<'static, Option<ExitReport>> {
    CONFIG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// Start-up

/// Runs before `main`: reads the environment and prepares the process so that std's
/// one-time allocations are not tagged later.
extern "C" fn start_up() {
    // Unwinding out of a constructor would abort: swallow anything (nothing should panic).
    let _ = panic::catch_unwind(|| {
        let _r = Reentrancy::enter();
        // The fork handlers, before any tracker lock exists to be held across a `fork`,
        // but after one allocation: an inner allocator that registers fork handlers of
        // its own when it initialises (jemalloc does) has them registered first, so ours
        // run before its own (prepare handlers run in reverse order): ours wait for the
        // registry lock, whose holder may be allocating.
        drop(std::hint::black_box(Box::new(0u8)));
        crate::fork::register_once();
        // stdout's buffer (1 KiB, kept for the life of the process) is allocated on first
        // use; allocate it now, untagged, so a first `println!` inside a scope adds nothing.
        let _ = std::io::stdout();
        protect_panic_hook();
        let cfg = ExitReport::from_env();
        let configured = cfg.target.is_some()
            || cfg.exit_code.is_some()
            || cfg.backtraces.is_some()
            || cfg.unwinder.is_some()
            || cfg.max_records.is_some()
            || cfg.live_configured();
        let on = cfg.backtraces.is_some_and(|b| b != Backtraces::Off);
        let reported = cfg.target.is_some() || cfg.exit_code.is_some();
        if let Some(note) = crate::stack::startup_note(on, reported) {
            warn(&note);
        }
        if configured {
            cfg.install();
        }
    });
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris"
))]
#[used]
#[link_section = ".init_array"]
static START_UP: extern "C" fn() = start_up;

#[cfg(any(target_os = "macos", target_os = "ios"))]
#[used]
#[link_section = "__DATA,__mod_init_func"]
static START_UP: extern "C" fn() = start_up;

// ---------------------------------------------------------------------------------------
// Panic hook

/// Address of the hook box installed by [`protect_panic_hook`], to recognise it.
static OUR_HOOK: AtomicUsize = AtomicUsize::new(0);
static HOOK_LOCK: Mutex<()> = Mutex::new(());
/// Panics seen on the main thread (used where the exit status cannot be known).
static MAIN_PANICKED: AtomicBool = AtomicBool::new(false);

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Makes sure nothing the current panic hook allocates is tagged: wraps the hook in the
/// tracker's reentrancy guard unless it is wrapped already.
///
/// A panic with `RUST_BACKTRACE` set symbolises a backtrace and caches debug info (tens
/// of MB) for the rest of the process; inside a scope that would be tagged and reported.
/// leaktracker wraps the hook at start-up; call this again after `std::panic::set_hook`.
/// Does nothing on a thread that is panicking.
pub fn protect_panic_hook() {
    if std::thread::panicking() {
        return;
    }
    let _r = Reentrancy::enter();
    let _l = HOOK_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let current: Hook = panic::take_hook();
    let addr =
        (&*current as *const (dyn Fn(&PanicHookInfo<'_>) + Sync + Send)).cast::<()>() as usize;
    if addr == OUR_HOOK.load(Ordering::Relaxed) {
        panic::set_hook(current);
        return;
    }
    let wrapped: Hook = Box::new(move |info: &PanicHookInfo<'_>| {
        let _r = Reentrancy::enter();
        if is_main_thread() {
            MAIN_PANICKED.store(true, Ordering::Relaxed);
        }
        current(info);
    });
    let addr =
        (&*wrapped as *const (dyn Fn(&PanicHookInfo<'_>) + Sync + Send)).cast::<()>() as usize;
    OUR_HOOK.store(addr, Ordering::Relaxed);
    panic::set_hook(wrapped);
}

fn is_main_thread() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: gettid and getpid have no preconditions.
        unsafe { libc::gettid() == libc::getpid() }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        true
    }
}

// ---------------------------------------------------------------------------------------
// Exit

static REGISTER: Once = Once::new();

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// glibc: like `atexit`, and the handler gets the status passed to `exit`.
    fn on_exit(
        f: extern "C" fn(status: libc::c_int, arg: *mut libc::c_void),
        arg: *mut libc::c_void,
    ) -> libc::c_int;
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn exit_handler_with_status(status: libc::c_int, _arg: *mut libc::c_void) {
    run_exit_report(Some(status));
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
extern "C" fn exit_handler() {
    run_exit_report(None);
}

fn register_exit_handler() {
    REGISTER.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: the handler is an `extern "C"` function that never unwinds (it catches
        // panics) and stays valid for the life of the process; the argument is unused.
        let rc = unsafe { on_exit(exit_handler_with_status, std::ptr::null_mut()) };
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        // SAFETY: as above, for `atexit`.
        let rc = unsafe { libc::atexit(exit_handler) };
        if rc != 0 {
            warn("could not register the exit handler: no exit report");
        }
    });
}

/// Counts the threads of this process other than the caller (Linux: `/proc`). Allocates
/// nothing (a buffer on the stack, raw `open`/`read`), so it can be taken right beside the
/// snapshot it goes with, without waiting on the allocator.
fn other_threads() -> Option<usize> {
    let mut buf = [0u8; 8192];
    // SAFETY: the path is a NUL-terminated string; open has no other preconditions.
    let fd = unsafe {
        libc::open(
            c"/proc/self/status".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < buf.len() {
        let rest = &mut buf[len..];
        // SAFETY: `rest` is a live buffer of `rest.len()` bytes; `fd` is open.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    let text = &buf[..len];
    let key = b"\nThreads:";
    let at = text.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = text[at..]
        .iter()
        .skip_while(|b| **b == b' ' || **b == b'\t');
    let mut n: usize = 0;
    let mut any = false;
    for &b in digits.take_while(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
        any = true;
    }
    any.then(|| n.saturating_sub(1 + crate::live::reporter_threads()))
}

/// Makes the exit report; returns the code to exit with, if the status must change.
fn exit_report(g: &Reentrancy, status: Option<i32>) -> Option<i32> {
    let cfg = config().clone()?;
    if cfg.target.is_none() && cfg.exit_code.is_none() {
        return None;
    }
    // Threads counted on both sides of the snapshot: one that ends while it is taken still
    // ran when its blocks were counted.
    let threads_before = other_threads();
    crate::live::stop_for_exit();
    let mut report = LeakReport::capture_with(g, |r| {
        r.set_verdict(cfg.verdict, true, cfg.show_all);
        r.set_filters(cfg.min_age, cfg.ignore.iter().cloned(), g);
    });
    if !report.is_empty() {
        let threads = threads_before.into_iter().chain(other_threads()).max();
        if let Some(n) = threads.filter(|&n| n > 0) {
            report.add_note(format!(
                "{n} other thread{} still running at exit: blocks they hold, and the bookkeeping of \
                 threads spawned inside a scope, stay live until the threads end and are joined: join \
                 them before exit",
                if n == 1 { " was" } else { "s were" }
            ));
        }
    }
    match cfg.target.clone() {
        // An exit code alone: no report, a summary line below if the code is used.
        None => {}
        Some(Target::Stderr) => write_stderr(report.to_string().as_bytes()),
        Some(Target::File(template)) => {
            let path = match template.to_str() {
                Some(t) => OsString::from(crate::report::output::expand_path(
                    g,
                    t,
                    crate::report::output::next_seq(),
                    crate::report::output::unix_seconds(),
                )),
                None => template,
            };
            if let Err(e) = report.write_to(&path) {
                warn(&format!(
                    "cannot write the leak report to {}: {e}; here it is",
                    shown_path(std::path::Path::new(&path))
                ));
                write_stderr(report.to_string().as_bytes());
            }
        }
    }
    let code = cfg.exit_code?;
    if report.is_empty() {
        return None;
    }
    let status_is_zero = match status {
        Some(s) => s == 0,
        None => !MAIN_PANICKED.load(Ordering::Relaxed),
    };
    if !status_is_zero {
        return None;
    }
    if cfg.target.is_none() {
        let t = report.totals();
        warn(&format!(
            "{} leaked{}: exit status {code} (LEAKTRACKER_EXIT_CODE); set LEAKTRACKER_REPORT=stderr to see them",
            crate::report::text::totals_text(t),
            if cfg.min_age.is_zero() {
                String::new()
            } else {
                format!(" older than {}", crate::units::Age(cfg.min_age))
            },
        ));
    }
    Some(i32::from(code))
}

/// The exit report made on a `LEAKTRACKER_REPORT_ON` signal (by the reporter thread), as
/// for an exit with status 0; the code to exit with, if leaks change it.
fn exit_report_on_signal(r: &Reentrancy) -> Option<i32> {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } as u32 != OWNER_PID.load(Ordering::Relaxed) {
        return None;
    }
    panic::catch_unwind(|| exit_report(r, Some(0))).unwrap_or(None)
}

fn run_exit_report(status: Option<i32>) {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } as u32 != OWNER_PID.load(Ordering::Relaxed) {
        return; // a fork child: its parent reports
    }
    let r = Reentrancy::enter();
    let code = panic::catch_unwind(|| exit_report(&r, status)).unwrap_or(None);
    if let Some(code) = code {
        // The remaining exit handlers are skipped, as documented.
        crate::os::exit_now(code);
    }
}

#[cfg(test)]
mod tests {
    use super::env::{from_vars, parse_allow_list, SETTINGS};
    use crate::settings::{BacktraceSetting, EnvDuration, LeakExitCode, UnwinderSetting};

    /// Every parser, and every variable of the table set to `s` at once.
    fn parse_everything(s: &str) {
        let _ = s.parse::<EnvDuration>();
        let _ = s.parse::<LeakExitCode>();
        let _ = s.parse::<BacktraceSetting>();
        let _ = s.parse::<UnwinderSetting>();
        let _ = parse_allow_list(s);
        let mut warnings = 0;
        let _ = from_vars(|_| Some(s.into()), &mut |w| {
            assert!(!w.contains('\n'), "{w:?}");
            warnings += 1;
        });
        // At most one line a variable, one a verdict item, and the snapshot line.
        assert!(warnings <= SETTINGS.len() + crate::settings::items(s).count() + 1);
    }

    proptest::proptest! {
        #[test]
        fn parsers_take_any_input(s in "\\PC*") {
            parse_everything(&s);
        }

        #[test]
        fn parsers_take_near_misses(s in "(sample:|kind:|name:|[0-9]{0,25})(ms|s|m|h|[0-9]|,|:|\\*| )*") {
            parse_everything(&s);
        }
    }

    #[test]
    fn allow_lists() {
        let (good, bad) = parse_allow_list("kind:cache, name:global-*,,oops ,");
        assert_eq!(good.len(), 2);
        assert_eq!(good[1].to_string(), "name:global-*");
        assert_eq!(bad, vec!["oops".to_string()]);
        let (good, bad) = parse_allow_list("");
        assert!(good.is_empty() && bad.is_empty());
    }
}
