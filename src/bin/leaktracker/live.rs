//! `pprof` and `trend`: reports of live services in the formats fleets read, and growth
//! over a series of snapshots.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::reports::load;

/// `pprof REPORT.json`: the report as a gzipped pprof heap profile on stdout.
pub(crate) fn pprof(args: &[String]) -> Result<u8, String> {
    let [path] = args else {
        return Err("usage: leaktracker pprof REPORT.json > leaks.pb.gz".to_string());
    };
    let reports = load(Path::new(path))?;
    let [report] = reports.as_slice() else {
        return Err(format!(
            "{path}: {} reports; pprof takes one report file",
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

/// `trend FILES|DIR [--fail-on-growth] [--svg]`: growth over a series of JSON snapshots.
pub(crate) fn trend(args: &[String]) -> Result<u8, String> {
    const USAGE: &str = "usage: leaktracker trend FILES|DIR... [--fail-on-growth] [--svg]";
    let mut fail_on_growth = false;
    let mut svg = false;
    let mut paths = Vec::new();
    for a in args {
        match a.as_str() {
            "--fail-on-growth" => fail_on_growth = true,
            "--svg" => svg = true,
            s if s.starts_with("--") => return Err(format!("unknown option `{s}`\n{USAGE}")),
            p => paths.push(p),
        }
    }
    if paths.is_empty() {
        return Err(USAGE.to_string());
    }
    let mut reports = Vec::new();
    for p in paths {
        reports.extend(load(Path::new(p))?);
    }
    if reports.is_empty() {
        return Err("no JSON reports found".to_string());
    }
    let trends = leaktracker::trend::analyse(&reports);
    if svg {
        print!("{}", leaktracker::trend::to_svg(&trends));
    } else {
        for (i, t) in trends.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{t}");
        }
    }
    Ok(u8::from(fail_on_growth && trends.iter().any(|t| t.grows())))
}
