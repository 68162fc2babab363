//! The `leaktracker` command-line tool.
//!
//! ```text
//! leaktracker gate [--min-age D] [--ignore P]... [--report-dir DIR] [--wait D] -- COMMAND...
//! leaktracker gate [--min-age D] [--ignore P]... --reports PATH...
//! leaktracker show REPORT.json
//! leaktracker diff BASE.json NEW.json
//! ```
//!
//! Exit status: `gate` exits with COMMAND's status when COMMAND failed, else 1 when a
//! process leaked, else 0; `diff` exits 1 when there are new leaks; every command exits 2
//! on a usage error or an unreadable report.

#[path = "leaktracker/gate.rs"]
mod gate;
#[path = "leaktracker/live.rs"]
mod live;
#[path = "leaktracker/reports.rs"]
mod reports;

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  leaktracker gate [--min-age D] [--ignore P]... [--report-dir DIR] [--wait D] -- COMMAND...
      Runs COMMAND with LEAKTRACKER_REPORT=<DIR>/leaks-<RUN>-%p.json in its environment
      (and its children's; RUN is unique to this run, and only its reports count), waits
      for the processes COMMAND left running, then prints one summary of every process's
      leaks. Fails if a process leaked or COMMAND failed.
        --min-age D       only resources older than D count (0, 250ms, 5s, 2m, 1h)
        --ignore P        allow-list pattern `kind:GLOB` or `name:GLOB` (repeatable)
        --report-dir DIR  keep the per-process JSON reports in DIR (default: a
                          temporary directory, removed afterwards)
        --wait D          wait at most D after COMMAND returns for the processes it
                          started that still run (default 10s; 0: do not wait)
  leaktracker gate [--min-age D] [--ignore P]... --reports PATH...
      Judges reports already written (files, or directories of them: one per host or
      service, looked into recursively) as after a run: one summary, each process named
      by its labels (LEAKTRACKER_LABELS) and program. Fails if a process leaked; exits 2
      when no report is found.
  leaktracker show REPORT.json
      Prints a JSON report (a file, or a directory of them, recursively) as text.
  leaktracker diff BASE.json NEW.json
      Lists the leaks of NEW that BASE does not have (by kind and name; addresses and
      scope numbers in names are ignored). Fails when there is one.
  leaktracker flamegraph REPORT.json > leaks.svg
      An SVG flame graph of the leaked bytes (by kind, resource, then allocating code;
      reports made with LEAKTRACKER_BACKTRACE=1 show where). REPORT may be a directory.
  leaktracker pprof REPORT.json > leaks.pb.gz
      The report's leaks as a gzipped pprof heap profile (inuse_objects, inuse_space;
      labels name, kind, age): go tool pprof, Pyroscope, Parca read it.
  leaktracker trend FILES|DIR... [--fail-on-growth] [--svg]
      Growth over a series of JSON snapshots (LEAKTRACKER_INTERVAL, LEAKTRACKER_SIGNAL):
      per kind and allocation site, blocks and bytes over time, slope per hour, and
      whether each grows steadily or levels off (per process). --fail-on-growth: exit 1
      when something grows steadily. --svg: an SVG chart on stdout, growing kinds in red.
";

fn main() -> ExitCode {
    // This process reports nothing itself, whatever its environment says.
    leaktracker::ExitReport::new().install();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "gate" => gate::run(rest),
        "show" => reports::show(rest),
        "diff" => reports::diff(rest),
        "flamegraph" => reports::flamegraph(rest),
        "pprof" => live::pprof(rest),
        "trend" => live::trend(rest),
        "-h" | "--help" | "help" => emit(USAGE.as_bytes()).map(|()| 0),
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            // Nothing more to do if stderr is gone too.
            let _ = writeln!(std::io::stderr(), "leaktracker: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Writes `bytes` to stdout. A closed pipe (`leaktracker show R | head`) is not an error:
/// the reader has what it wanted, so the output stops there, quietly, and the command
/// ends with its usual status. Other write errors (a full disk) are.
pub(crate) fn emit(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing the output: {e}")),
    }
}
