//! `gate`: run a command with per-process JSON exit reports, then sum them up.

use std::path::PathBuf;
use std::process::Command;

use leaktracker::report::parse_age;
use leaktracker::{AllowPattern, LeakReport};

use crate::reports::load;

struct GateArgs {
    min_age: Option<String>,
    ignore: Vec<String>,
    report_dir: Option<PathBuf>,
    command: Vec<String>,
}

fn parse(args: &[String]) -> Result<GateArgs, String> {
    let mut g = GateArgs {
        min_age: None,
        ignore: Vec::new(),
        report_dir: None,
        command: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("gate: {flag} needs a value"))
        };
        match a.as_str() {
            "--" => {
                g.command = it.cloned().collect();
                break;
            }
            "--min-age" => {
                let v = value("--min-age")?;
                if parse_age(&v).is_none() {
                    return Err(format!(
                        "gate: --min-age {v:?} is not a duration (0, 250ms, 5s, 2m, 1h)"
                    ));
                }
                g.min_age = Some(v);
            }
            "--ignore" => {
                let v = value("--ignore")?;
                if v.contains(',') {
                    return Err(format!(
                        "gate: --ignore {v:?}: one pattern per --ignore (no commas)"
                    ));
                }
                v.parse::<AllowPattern>()
                    .map_err(|e| format!("gate: --ignore: {e}"))?;
                g.ignore.push(v);
            }
            "--report-dir" => g.report_dir = Some(PathBuf::from(value("--report-dir")?)),
            other => {
                return Err(format!(
                    "gate: unexpected {other:?} (options come before `--`, then the command)"
                ))
            }
        }
    }
    if g.command.is_empty() {
        return Err(
            "usage: leaktracker gate [--min-age D] [--ignore P]... [--report-dir DIR] -- COMMAND..."
                .to_string(),
        );
    }
    Ok(g)
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

pub(crate) fn run(args: &[String]) -> Result<u8, String> {
    let g = parse(args)?;
    let (dir, temporary) = match &g.report_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("gate: cannot create {}: {e}", d.display()))?;
            let d = std::fs::canonicalize(d).map_err(|e| format!("{}: {e}", d.display()))?;
            (d, false)
        }
        None => (temp_dir()?, true),
    };
    let result = run_in(&g, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(g: &GateArgs, dir: &std::path::Path) -> Result<u8, String> {
    let mut cmd = Command::new(&g.command[0]);
    cmd.args(&g.command[1..])
        .env("LEAKTRACKER_REPORT", dir.join("leaks-%p.json"))
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
    let status = cmd
        .status()
        .map_err(|e| format!("gate: cannot run {:?}: {e}", g.command[0]))?;
    let reports = load(dir)?;
    Ok(summarize(&g.command, status, &reports))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Prints the merged summary on stderr and returns the gate's exit status.
fn summarize(command: &[String], status: std::process::ExitStatus, reports: &[LeakReport]) -> u8 {
    let leaking: Vec<&LeakReport> = reports.iter().filter(|r| !r.is_empty()).collect();
    let without_allocator = reports.iter().filter(|r| !r.allocator_installed()).count();
    let dropped: u64 = reports.iter().map(LeakReport::dropped_records).sum();
    let mut out = String::new();
    for r in &leaking {
        out.push_str(&format!(
            "\n== process {} ({})\n",
            r.pid(),
            r.exe().unwrap_or("unknown executable")
        ));
        out.push_str(&r.to_string());
    }
    let (resources, blocks, bytes) = leaking.iter().fold((0, 0, 0), |acc, r| {
        let t = r.totals();
        (acc.0 + t.resources, acc.1 + t.allocations, acc.2 + t.bytes)
    });
    out.push('\n');
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
            Some((_, n)) => *n += m.matched,
            None => patterns.push((m.pattern.clone(), m.matched)),
        }
    }
    if !patterns.is_empty() {
        let parts: Vec<String> = patterns
            .iter()
            .map(|(p, n)| match n {
                0 => format!("{p} matched nothing"),
                n => format!("{p} matched {n}"),
            })
            .collect();
        out.push_str(&format!(
            "leaktracker gate: allow-list: {}\n",
            parts.join("; ")
        ));
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
    let code = if !status.success() {
        out.push_str("leaktracker gate: FAILED: the command failed\n");
        status
            .code()
            .map_or(1, |c| u8::try_from(c).unwrap_or(1).max(1))
    } else if !leaking.is_empty() {
        out.push_str(&format!(
            "leaktracker gate: FAILED: {} leaked {}, {}, {}\n",
            plural(leaking.len(), "process", "processes"),
            plural(resources, "resource", "resources"),
            plural(blocks, "block", "blocks"),
            human_bytes(bytes)
        ));
        1
    } else {
        out.push_str("leaktracker gate: ok: no leaks\n");
        0
    };
    eprint!("{out}");
    code
}

fn human_bytes(n: usize) -> String {
    if n < 1024 {
        return format!("{n} B");
    }
    let units = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}
