//! `show` and `diff`, and reading reports from files and directories.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use leaktracker::__cli::{by_kind, plural};
use leaktracker::report::{normalize_name, JSON_VERSION};
use leaktracker::LeakReport;

use crate::emit;

/// Reads one JSON report, or every `*.json` report under a directory: its files and, a
/// level at a time, its subdirectories' (one per host or service, as a fleet collects
/// them), in path order. Names starting with `.` (temporary files being written) are
/// skipped.
pub(crate) fn load(path: &Path) -> Result<Vec<LeakReport>, String> {
    if path.is_dir() {
        let mut files = Vec::new();
        collect_json(path, 0, &mut files)?;
        files.sort();
        files.iter().map(|f| load_file(f)).collect()
    } else {
        load_file(path).map(|r| vec![r])
    }
}

/// How deep `load` looks under a directory (reports/HOST/SERVICE/*.json is depth 2).
const MAX_DEPTH: usize = 8;

fn collect_json(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for e in std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
    {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Follows links, as a path given on the command line is followed.
        if p.is_dir() {
            if depth < MAX_DEPTH {
                collect_json(&p, depth + 1, out)?;
            }
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}

pub(crate) fn load_file(path: &Path) -> Result<LeakReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_version(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    LeakReport::from_json(&text)
        .map_err(|e| format!("{}: not a leaktracker JSON report: {e}", path.display()))
}

/// Refuses a report whose schema version this tool does not know: versions 1 to
/// `JSON_VERSION` are read (each adds fields only), a newer or a nonsensical one is not.
/// Text that is not a JSON object with a `"version"` is left to `from_json` to refuse.
fn check_version(text: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Head {
        version: serde_json::Value,
    }
    let Ok(head) = serde_json::from_str::<Head>(text) else {
        return Ok(());
    };
    let known = 1..=u64::from(JSON_VERSION);
    match head.version.as_u64() {
        Some(v) if known.contains(&v) => Ok(()),
        Some(v) if v > u64::from(JSON_VERSION) => Err(format!(
            "report format version {v} is newer than this leaktracker reads (1 to {JSON_VERSION}): \
             use a newer leaktracker"
        )),
        _ => Err(format!(
            "report format version {} is not one leaktracker knows (1 to {JSON_VERSION})",
            head.version
        )),
    }
}

/// `show REPORT.json`: the text form of each report.
pub(crate) fn show(path: &Path) -> Result<u8, String> {
    let reports = load(path)?;
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Some(head) = process_heading(r) {
            let _ = writeln!(out, "== {head}");
        }
        let _ = write!(out, "{r}");
    }
    emit(out.as_bytes())?;
    Ok(0)
}

/// The heading of one process's report among many: its labels (host, service: what
/// `LEAKTRACKER_LABELS` set) and its program.
fn process_heading(r: &LeakReport) -> Option<String> {
    match (labels_text(r), r.exe()) {
        (None, None) => None,
        (None, Some(exe)) => Some(exe.to_string()),
        (Some(l), None) => Some(format!("{l} pid {}", r.pid())),
        (Some(l), Some(exe)) => Some(format!("{l} pid {}: {exe}", r.pid())),
    }
}

/// A report's labels as `[key=value,...]`, when it has any.
pub(crate) fn labels_text(r: &LeakReport) -> Option<String> {
    let labels: Vec<String> = r.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
    (!labels.is_empty()).then(|| format!("[{}]", labels.join(",")))
}

/// Key of a leak for comparisons across runs.
fn key(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), normalize_name(name).into_owned())
}

/// `diff BASE.json NEW.json`: the leaks of NEW beyond those of BASE, counted per
/// (kind, normalised name).
pub(crate) fn diff(base: &Path, new: &Path) -> Result<u8, String> {
    let base = load(base)?;
    let new = load(new)?;
    let mut known: HashMap<(String, String), usize> = HashMap::new();
    for e in base.iter().flat_map(|r| r.leaks()) {
        *known.entry(key(&e.kind, &e.name)).or_default() += 1;
    }
    let mut fresh = Vec::new();
    for e in new.iter().flat_map(|r| r.leaks()) {
        match known.get_mut(&key(&e.kind, &e.name)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => fresh.push(e),
        }
    }
    let gone: usize = known.values().sum();
    let mut out = String::new();
    if fresh.is_empty() {
        let _ = writeln!(out, "leaktracker diff: no new leaks");
    } else {
        let _ = writeln!(
            out,
            "leaktracker diff: {} (not in the baseline):",
            plural(fresh.len(), "new leak", "new leaks")
        );
        for (kind, entries) in by_kind(fresh.iter().copied()) {
            let _ = writeln!(out, "  kind {kind}:");
            for e in entries {
                let _ = writeln!(
                    out,
                    "    {}  ({}, {} bytes)",
                    e.name,
                    plural(e.allocations, "block", "blocks"),
                    e.bytes
                );
            }
        }
    }
    if gone > 0 {
        let _ = writeln!(
            out,
            "leaktracker diff: {} of the baseline {} gone: the baseline can shrink",
            plural(gone, "leak", "leaks"),
            if gone == 1 { "is" } else { "are" }
        );
    }
    emit(out.as_bytes())?;
    Ok(u8::from(!fresh.is_empty()))
}

/// `flamegraph REPORT.json`: an SVG flame graph of leaked bytes on stdout (kind, then
/// resource, then the allocating code), drawn by `inferno` from the reports' stacks.
pub(crate) fn flamegraph(path: &Path) -> Result<u8, String> {
    let reports = load(path)?;
    let folded: String = reports.iter().map(LeakReport::to_folded).collect();
    if folded.is_empty() {
        eprintln!("leaktracker: {}: no leaks, no flame graph", path.display());
        return Ok(1);
    }
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = "Leaked bytes".to_string();
    opt.count_name = "bytes".to_string();
    if !reports
        .iter()
        .any(|r| r.leaks().iter().any(|e| !e.stacks.is_empty()))
    {
        opt.subtitle = Some(
            "no backtraces in the report: run with LEAKTRACKER_BACKTRACE=1 to see where"
                .to_string(),
        );
    }
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, folded.lines(), &mut svg)
        .map_err(|e| format!("flamegraph: {e}"))?;
    emit(&svg)?;
    Ok(0)
}
