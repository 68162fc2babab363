//! The tool's command line (clap): `--help` and `--version` on stdout with status 0, usage
//! errors on stderr with status 2 and the argument named, gate's conflicts refused before
//! anything runs, and `completions SHELL`.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn run(args: &[&str]) -> Output {
    command(&cli(), &[]).args(args).output().unwrap()
}

/// Status, stdout, stderr.
fn run_text(args: &[&str]) -> (Option<i32>, String, String) {
    let o = run(args);
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

const SUBCOMMANDS: [&str; 7] = [
    "gate",
    "show",
    "diff",
    "flamegraph",
    "pprof",
    "trend",
    "completions",
];

#[test]
fn help_lists_the_subcommands() {
    for flag in ["--help", "-h"] {
        let (code, out, err) = run_text(&[flag]);
        assert_eq!(code, Some(0), "{flag}: {err}");
        assert_eq!(err, "", "{flag}");
        assert!(
            out.contains("Usage: leaktracker <COMMAND>"),
            "{flag}: {out}"
        );
        for sub in SUBCOMMANDS {
            assert!(
                out.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
                "{flag}: `{sub}` not listed:\n{out}"
            );
        }
        // scripts/leak-gate.sh knows the installed tool by this.
        assert!(out.contains("leaktracker gate"), "{flag}: {out}");
    }
    // One command's help, both ways.
    for args in [&["help", "gate"][..], &["gate", "--help"]] {
        let (code, out, err) = run_text(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        for option in [
            "--min-age",
            "--ignore",
            "--report-dir",
            "--wait",
            "--reports",
        ] {
            assert!(out.contains(option), "{args:?}: {option} missing:\n{out}");
        }
    }
    // No command at all: the help, on stderr, as a usage error.
    let (code, out, err) = run_text(&[]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(out, "");
    assert!(err.contains("Usage: leaktracker <COMMAND>"), "{err}");
}

#[test]
fn version_is_the_crate_version() {
    for flag in ["--version", "-V"] {
        let (code, out, err) = run_text(&[flag]);
        assert_eq!(code, Some(0), "{flag}: {err}");
        assert_eq!(out, format!("leaktracker {}\n", env!("CARGO_PKG_VERSION")));
        assert_eq!(err, "", "{flag}");
    }
}

#[test]
fn an_unknown_option_is_named() {
    for (args, named) in [
        (&["--frobnicate"][..], "'--frobnicate'"),
        (
            &["gate", "--no-such-flag", "--", "true"],
            "'--no-such-flag'",
        ),
        (&["trend", "--fast", "x.json"], "'--fast'"),
        (&["frobnicate"], "'frobnicate'"),
    ] {
        let (code, out, err) = run_text(args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert_eq!(out, "", "{args:?}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{args:?}: {err}");
        assert!(first.contains(named), "{args:?}: {err}");
    }
    // A near miss gets a suggestion.
    let (code, _, err) = run_text(&["gate", "--min-ag", "5s", "--", "true"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("similar argument exists: '--min-age'"),
        "{err}"
    );
}

/// Whether `gate ARGS -- touch MARKER` ran the command: a refused command line runs nothing.
fn gate_ran(args: &[&str], dir: &Path) -> (Option<i32>, String, bool) {
    let marker = dir.join("ran");
    let _ = std::fs::remove_file(&marker);
    let mut all = vec!["gate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "touch", marker.to_str().unwrap()]);
    let (code, _, err) = run_text(&all);
    (code, err, marker.exists())
}

#[test]
fn a_bad_duration_names_the_option() {
    let dir = temp_dir("cli_args_duration");
    // A good one runs the command (nothing leaks: status 0).
    let (code, err, ran) = gate_ran(&["--min-age", "250ms"], &dir);
    assert_eq!(code, Some(0), "{err}");
    assert!(ran, "{err}");

    for option in ["--min-age", "--wait"] {
        let (code, err, ran) = gate_ran(&[option, "banana"], &dir);
        assert_eq!(code, Some(2), "{option}: {err}");
        assert!(!ran, "{option}: the command ran");
        assert_eq!(
            err.lines().next().unwrap_or_default(),
            format!(
                "error: invalid value 'banana' for '{option} <DURATION>': not a duration (0, 250ms, 5s, 2m, 1h)"
            ),
            "{err}"
        );
    }
}

#[test]
fn reports_conflict_with_a_command() {
    let dir = temp_dir("cli_args_conflict");
    let (code, err, ran) = gate_ran(&["--reports", "x"], &dir);
    assert_eq!(code, Some(2), "{err}");
    assert!(!ran, "the command ran");
    assert!(
        err.starts_with(
            "error: the argument '--reports <PATH>...' cannot be used with '[COMMAND]...'"
        ),
        "{err}"
    );
    // Neither: named as missing.
    let (code, _, err) = run_text(&["gate", "--min-age", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("required arguments were not provided") && err.contains("--reports"),
        "{err}"
    );
}

#[test]
fn completions_for_each_shell() {
    let (code, out, err) = run_text(&["completions", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("leaktracker"), "{out}");
    assert!(out.contains("gate"), "{out}");
    assert!(out.contains("complete -F _leaktracker"), "{out}");
    assert!(out.contains("--min-age"), "{out}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = run_text(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {err}");
        assert!(
            out.contains("leaktracker") && out.contains("gate") && out.contains("min-age"),
            "{shell}: {out}"
        );
    }
    let (code, out, err) = run_text(&["completions", "nosuchshell"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(out, "");
    assert!(
        err.starts_with("error: invalid value 'nosuchshell' for '<SHELL>'"),
        "{err}"
    );
    assert!(err.contains("possible values: bash"), "{err}");
}
