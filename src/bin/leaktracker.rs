//! The `leaktracker` command-line tool (built with `--features cli`).
//!
//! ```text
//! leaktracker gate [--min-age DURATION] [--ignore PATTERN]... [--report-dir DIR] [--wait DURATION] -- COMMAND...
//! leaktracker gate [--min-age DURATION] [--ignore PATTERN]... --reports PATH...
//! leaktracker show REPORT.json
//! leaktracker diff BASE.json NEW.json
//! leaktracker flamegraph REPORT.json > leaks.svg
//! leaktracker pprof REPORT.json > leaks.pb.gz
//! leaktracker trend PATH... [--fail-on-growth] [--svg]
//! leaktracker completions bash|zsh|fish|elvish|powershell
//! ```
//!
//! `leaktracker --help` lists the commands, `leaktracker help COMMAND` (or
//! `leaktracker COMMAND --help`) tells one in full, `leaktracker --version` prints the
//! version. `leaktracker completions SHELL` prints a completion script for SHELL on stdout
//! (bash: `leaktracker completions bash > ~/.local/share/bash-completion/completions/leaktracker`).
//! The arguments are parsed by `clap`.
//!
//! Exit status: `gate` exits with COMMAND's status when COMMAND failed, else 1 when a
//! process leaked, else 0; `diff` exits 1 when there are new leaks; `trend
//! --fail-on-growth` exits 1 when something grows steadily; `flamegraph` exits 1 when
//! there is no leak to draw; every command exits 2 on a usage error (clap's message, on
//! stderr, names the argument) or an unreadable report (`leaktracker: ` and one line).

#[path = "leaktracker/gate.rs"]
mod gate;
#[path = "leaktracker/live.rs"]
mod live;
#[path = "leaktracker/reports.rs"]
mod reports;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Leak reports of programs that use leaktracker's allocator: a CI gate over every process
/// a command starts, and the reading, comparing and drawing of the JSON reports.
#[derive(Parser)]
#[command(
    name = "leaktracker",
    version,
    arg_required_else_help = true,
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// The end of `leaktracker --help`. `scripts/leak-gate.sh` knows the tool by the
/// `leaktracker gate` in it.
const AFTER_HELP: &str = "\
Examples:
  leaktracker gate --min-age 100ms --ignore kind:cache -- cargo test
  leaktracker gate --reports reports/
  leaktracker diff baseline.json leaks.json
  leaktracker completions bash > ~/.local/share/bash-completion/completions/leaktracker

Exit status: gate exits with COMMAND's status when COMMAND failed, else 1 when a process
leaked, else 0; diff exits 1 when there are new leaks; trend --fail-on-growth exits 1 when
something grows steadily; flamegraph exits 1 when there is no leak to draw; every command
exits 2 on a usage error or an unreadable report.";

#[derive(Subcommand)]
enum Cmd {
    Gate(gate::GateArgs),
    /// Prints a JSON report as text (a file, or a directory of them, recursively).
    Show {
        /// The report: a JSON file, or a directory of them.
        #[arg(value_name = "REPORT")]
        report: PathBuf,
    },
    /// Lists the leaks of NEW that BASE does not have; fails when there is one.
    ///
    /// Leaks are matched by kind and name; addresses and scope numbers in names are
    /// ignored. Exits 1 when NEW has a leak that BASE does not.
    Diff {
        /// The baseline report (a file, or a directory of them).
        #[arg(value_name = "BASE")]
        base: PathBuf,
        /// The report to compare with it.
        #[arg(value_name = "NEW")]
        new: PathBuf,
    },
    /// An SVG flame graph of the leaked bytes, on stdout (`> leaks.svg`).
    ///
    /// By kind, resource, then allocating code; reports made with LEAKTRACKER_BACKTRACE=1
    /// show where. REPORT may be a directory. Exits 1 when there is no leak to draw.
    Flamegraph {
        /// The report: a JSON file, or a directory of them.
        #[arg(value_name = "REPORT")]
        report: PathBuf,
    },
    /// The report's leaks as a gzipped pprof heap profile, on stdout (`> leaks.pb.gz`).
    ///
    /// Sample types inuse_objects and inuse_space; labels name, kind, age: go tool pprof,
    /// Pyroscope and Parca read it.
    Pprof {
        /// The report: one JSON file.
        #[arg(value_name = "REPORT")]
        report: PathBuf,
    },
    Trend(live::TrendArgs),
    /// Prints a completion script for SHELL on stdout.
    ///
    /// bash: `leaktracker completions bash > ~/.local/share/bash-completion/completions/leaktracker`;
    /// zsh: into a directory of `$fpath` as `_leaktracker`; fish:
    /// `~/.config/fish/completions/leaktracker.fish`.
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // This process reports nothing itself, whatever its environment says.
    leaktracker::ExitReport::new().install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` print on stdout and exit 0; a usage error prints on
            // stderr and exits 2. Nothing more to do if the output is gone.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let result = match cli.command {
        Cmd::Gate(g) => gate::run(g),
        Cmd::Show { report } => reports::show(&report),
        Cmd::Diff { base, new } => reports::diff(&base, &new),
        Cmd::Flamegraph { report } => reports::flamegraph(&report),
        Cmd::Pprof { report } => live::pprof(&report),
        Cmd::Trend(t) => live::trend(&t),
        Cmd::Completions { shell } => completions(shell),
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

/// `completions SHELL`: the completion script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<u8, String> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "leaktracker", &mut script);
    emit(&script)?;
    Ok(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_is_well_formed() {
        Cli::command().debug_assert();
    }
}
