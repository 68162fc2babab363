//! `pprof` and `trend`: reports of live services in the formats fleets read, and growth
//! over a series of snapshots.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::reports::load;

/// `pprof REPORT.json`: the report as a gzipped pprof heap profile on stdout.
pub(crate) fn pprof(path: &Path) -> Result<u8, String> {
    let reports = load(path)?;
    let [report] = reports.as_slice() else {
        return Err(format!(
            "{}: {} reports; pprof takes one report file",
            path.display(),
            reports.len()
        ));
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.is_terminal() {
        return Err("the profile is binary: send it to a file (> leaks.pb.gz)".to_string());
    }
    stdout
        .write_all(&report.to_pprof())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing the profile: {e}"))?;
    Ok(0)
}

/// Growth over a series of JSON snapshots (LEAKTRACKER_INTERVAL, LEAKTRACKER_SIGNAL).
///
/// Per kind and allocation site: blocks and bytes over time, slope per hour, and whether
/// each grows steadily or levels off (per process).
#[derive(clap::Args)]
pub(crate) struct TrendArgs {
    /// The snapshots: JSON files, or directories of them.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Exit 1 when something grows steadily.
    #[arg(long)]
    fail_on_growth: bool,
    /// An SVG chart on stdout instead of the text, growing kinds in red.
    #[arg(long)]
    svg: bool,
}

/// `trend PATH... [--fail-on-growth] [--svg]`: growth over a series of JSON snapshots.
pub(crate) fn trend(args: &TrendArgs) -> Result<u8, String> {
    let TrendArgs {
        paths,
        fail_on_growth,
        svg,
    } = args;
    let mut reports = Vec::new();
    for p in paths {
        reports.extend(load(p)?);
    }
    if reports.is_empty() {
        return Err("no JSON reports found".to_string());
    }
    let trends = leaktracker::trend::analyse(&reports);
    if *svg {
        print!("{}", leaktracker::trend::to_svg(&trends));
    } else {
        for (i, t) in trends.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{t}");
        }
    }
    Ok(u8::from(
        *fail_on_growth && trends.iter().any(|t| t.grows()),
    ))
}
