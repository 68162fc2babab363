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
