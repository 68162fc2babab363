//! Growth over a series of snapshots (`leaktracker trend`): per kind, and per allocation
//! site when the reports have stacks, the count and bytes each snapshot lists, the slope
//! per hour, and whether it grows steadily or levels off.
//!
//! # Steady growth or a warm-up
//!
//! A per-request leak grows as long as requests come; a cache, a pool or a lazy static
//! grows while it warms up and then stays. The two are told apart by comparing the slope
//! of the later half of the series with the slope of the whole (least squares, bytes per
//! hour):
//!
//! * **growing**: the whole series rises, and the later half still rises at least half as
//!   fast;
//! * **levels off**: the whole series rises, but the later half rises less than half as
//!   fast (or not at all);
//! * **flat** or **shrinking** otherwise.
//!
//! Fewer than [`MIN_SNAPSHOTS`] snapshots of a process give no verdict. Series are per
//! process (pid and labels): a directory of snapshots from many processes and hosts gives
//! one trend per process.

use std::collections::BTreeMap;
use std::fmt;
use std::time::UNIX_EPOCH;

use crate::report::LeakReport;
use crate::units::Bytes;

/// Fewer snapshots of one process than this give no verdict.
pub const MIN_SNAPSHOTS: usize = 4;

/// The later part of a series must rise at least this fraction of the whole's slope to
/// count as still growing.
const STILL_GROWING: f64 = 0.5;

/// How a series moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// It rises, and keeps rising.
    Growing,
    /// It rose, then stopped (a warm-up: caches, pools, lazy statics).
    LevelsOff,
    /// It does not rise.
    Flat,
    /// It falls.
    Shrinking,
    /// Too few snapshots to tell.
    TooFew,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Growing => "GROWING",
            Shape::LevelsOff => "levels off",
            Shape::Flat => "flat",
            Shape::Shrinking => "shrinking",
            Shape::TooFew => "too few snapshots",
        })
    }
}

/// One kind's (or one site's) values over the snapshots.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Series {
    /// The kind, or the allocation site (`function at file:line`).
    pub key: String,
    /// For a site: the kind it belongs to.
    pub kind: Option<String>,
    /// Live blocks listed in each snapshot.
    pub count: Vec<usize>,
    /// Their bytes.
    pub bytes: Vec<usize>,
    /// Bytes per hour over the whole series (least squares).
    pub bytes_per_hour: f64,
    /// Blocks per hour over the whole series.
    pub count_per_hour: f64,
    /// Bytes per hour over the later half of the series.
    pub late_bytes_per_hour: f64,
    /// How it moves.
    pub shape: Shape,
}

/// The trend of one process's snapshots.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProcessTrend {
    /// The process id.
    pub pid: u32,
    /// Its labels.
    pub labels: Vec<(String, String)>,
    /// Seconds since the first snapshot, one per snapshot.
    pub times: Vec<f64>,
    /// Wall-clock time of the first snapshot (Unix milliseconds).
    pub start_unix_ms: u64,
    /// Per kind.
    pub kinds: Vec<Series>,
    /// Per allocation site (reports with stacks only).
    pub sites: Vec<Series>,
}

impl ProcessTrend {
    /// Whether a kind or a site grows steadily.
    pub fn grows(&self) -> bool {
        self.kinds
            .iter()
            .chain(&self.sites)
            .any(|s| s.shape == Shape::Growing)
    }
}

/// Least-squares slope of `ys` over `xs` (0 with fewer than two distinct `xs`).
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx <= 0.0 {
        return 0.0;
    }
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    sxy / sxx
}

/// The shape of `ys` over `xs` (seconds).
pub fn shape(xs: &[f64], ys: &[f64]) -> Shape {
    if xs.len() < MIN_SNAPSHOTS {
        return Shape::TooFew;
    }
    let whole = slope(xs, ys);
    let (first, last) = (ys[0], ys[ys.len() - 1]);
    if whole < 0.0 && last < first {
        return Shape::Shrinking;
    }
    if whole <= 0.0 || last <= first {
        return Shape::Flat;
    }
    let half = xs.len() / 2;
    let late = slope(&xs[half..], &ys[half..]);
    if late >= STILL_GROWING * whole {
        Shape::Growing
    } else {
        Shape::LevelsOff
    }
}

/// When a report was made, in Unix milliseconds: its own field, or else the newest
/// `created + age` of its leaks (reports written before the field existed).
fn made_at_ms(r: &LeakReport) -> u64 {
    let own = r
        .made_at()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if own > 0 {
        return own;
    }
    r.leaks()
        .iter()
        .filter_map(|e| {
            let c = e.created_at.duration_since(UNIX_EPOCH).ok()?;
            Some((c + e.age).as_millis() as u64)
        })
        .max()
        .unwrap_or(0)
}

/// The allocation site of a stack: its allocating frame (container machinery skipped).
fn site(frames: &[String]) -> Option<String> {
    crate::verdict::allocating_frame(frames).map(str::to_string)
}

fn series(key: String, kind: Option<String>, times: &[f64], vals: &[(usize, usize)]) -> Series {
    let count: Vec<usize> = vals.iter().map(|v| v.0).collect();
    let bytes: Vec<usize> = vals.iter().map(|v| v.1).collect();
    let yb: Vec<f64> = bytes.iter().map(|&b| b as f64).collect();
    let yc: Vec<f64> = count.iter().map(|&c| c as f64).collect();
    Series {
        key,
        kind,
        bytes_per_hour: slope(times, &yb) * 3600.0,
        late_bytes_per_hour: {
            let half = times.len() / 2;
            slope(&times[half..], &yb[half..]) * 3600.0
        },
        count_per_hour: slope(times, &yc) * 3600.0,
        shape: shape(times, &yb),
        count,
        bytes,
    }
}

/// A process: its labels (sorted) and pid.
type ProcessKey = (Vec<(String, String)>, u32);

/// The trends of a set of reports: grouped by process (pid and labels), each process's
/// snapshots in time order.
pub fn analyse(reports: &[LeakReport]) -> Vec<ProcessTrend> {
    let mut by_process: BTreeMap<ProcessKey, Vec<&LeakReport>> = BTreeMap::new();
    for r in reports {
        let mut labels = r.labels().to_vec();
        labels.sort();
        by_process.entry((labels, r.pid())).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((labels, pid), mut snaps) in by_process {
        snaps.sort_by_key(|r| made_at_ms(r));
        let start = made_at_ms(snaps[0]);
        let times: Vec<f64> = snaps
            .iter()
            .map(|r| made_at_ms(r).saturating_sub(start) as f64 / 1000.0)
            .collect();
        let n = snaps.len();
        // key -> per-snapshot (count, bytes); sites keyed by (kind, site).
        let mut kinds: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        let mut sites: BTreeMap<(String, String), Vec<(usize, usize)>> = BTreeMap::new();
        for (i, r) in snaps.iter().enumerate() {
            for e in r.leaks() {
                let k = kinds
                    .entry(e.kind.clone())
                    .or_insert_with(|| vec![(0, 0); n]);
                k[i].0 += e.allocations;
                k[i].1 += e.bytes;
                for g in e.stacks.iter().filter(|g| !g.frames.is_empty()) {
                    let Some(s) = site(&g.frames) else { continue };
                    let v = sites
                        .entry((e.kind.clone(), s))
                        .or_insert_with(|| vec![(0, 0); n]);
                    v[i].0 += g.blocks;
                    v[i].1 += g.bytes;
                }
            }
        }
        let mut kinds: Vec<Series> = kinds
            .into_iter()
            .map(|(k, v)| series(k, None, &times, &v))
            .collect();
        let mut sites: Vec<Series> = sites
            .into_iter()
            .map(|((k, s), v)| series(s, Some(k), &times, &v))
            .collect();
        let order = |a: &Series, b: &Series| {
            b.bytes_per_hour
                .partial_cmp(&a.bytes_per_hour)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.key.cmp(&b.key))
        };
        kinds.sort_by(order);
        sites.sort_by(order);
        out.push(ProcessTrend {
            pid,
            labels,
            times,
            start_unix_ms: start,
            kinds,
            sites,
        });
    }
    out
}

fn signed_bytes(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "+" };
    format!("{sign}{}", Bytes(v.abs().round() as usize))
}

fn line(f: &mut fmt::Formatter<'_>, indent: &str, what: &str, s: &Series) -> fmt::Result {
    let (c0, c1) = (s.count[0], s.count[s.count.len() - 1]);
    let (b0, b1) = (s.bytes[0], s.bytes[s.bytes.len() - 1]);
    writeln!(
        f,
        "{indent}{what}: {}: blocks {c0} -> {c1} ({:+.0}/h), bytes {} -> {} ({}/h; later half {}/h)",
        s.shape,
        s.count_per_hour,
        Bytes(b0),
        Bytes(b1),
        signed_bytes(s.bytes_per_hour),
        signed_bytes(s.late_bytes_per_hour)
    )?;
    let shown: Vec<String> = s.bytes.iter().map(usize::to_string).collect();
    writeln!(f, "{indent}    bytes per snapshot: {}", shown.join(" "))
}

impl fmt::Display for ProcessTrend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = self.times.last().copied().unwrap_or(0.0);
        write!(
            f,
            "leaktracker trend: pid {}, {} snapshots over {:.1} s",
            self.pid,
            self.times.len(),
            span
        )?;
        if !self.labels.is_empty() {
            let l: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, " ({})", l.join(", "))?;
        }
        writeln!(f)?;
        if self.times.len() < MIN_SNAPSHOTS {
            writeln!(
                f,
                "  fewer than {MIN_SNAPSHOTS} snapshots: no verdict on growth"
            )?;
        }
        if self.kinds.is_empty() {
            writeln!(f, "  no leaks listed in any snapshot")?;
        }
        for k in &self.kinds {
            line(f, "  ", &format!("kind {}", k.key), k)?;
            for s in self
                .sites
                .iter()
                .filter(|s| s.kind.as_deref() == Some(&k.key))
            {
                line(f, "      ", &format!("site {}", s.key), s)?;
            }
        }
        let growing: Vec<&str> = self
            .kinds
            .iter()
            .filter(|s| s.shape == Shape::Growing)
            .map(|s| s.key.as_str())
            .collect();
        if growing.is_empty() {
            writeln!(f, "  nothing grows steadily")
        } else {
            writeln!(f, "  growing steadily: kind {}", growing.join(", kind "))
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

/// An SVG picture of the trends: per process, one line per kind (bytes over time), the
/// growing ones drawn in red, thicker, and marked in the legend.
pub fn to_svg(trends: &[ProcessTrend]) -> String {
    let (w, h, pad, legend) = (800.0, 320.0, 50.0, 220.0);
    let total_h = h * trends.len().max(1) as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{total_h}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        w + legend
    );
    for (pi, t) in trends.iter().enumerate() {
        let top = pi as f64 * h;
        let span = t.times.last().copied().unwrap_or(0.0).max(1e-9);
        let max_b = t
            .kinds
            .iter()
            .flat_map(|s| s.bytes.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        out.push_str(&format!(
            "<g class=\"process\" data-pid=\"{}\">\n<text x=\"{pad}\" y=\"{}\" font-size=\"14\">pid {}: bytes listed per kind over {:.1} s</text>\n",
            t.pid,
            top + 20.0,
            t.pid,
            span
        ));
        let (x0, y0, x1, y1) = (pad, top + h - pad, w - 10.0, top + 35.0);
        out.push_str(&format!(
            "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"black\"/>\n<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"black\"/>\n<text x=\"{x0}\" y=\"{}\">0 s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.1} s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            y0 + 15.0,
            x1,
            y0 + 15.0,
            span,
            x0 - 4.0,
            y1 + 4.0,
            xml_escape(&Bytes(max_b as usize).to_string())
        ));
        for (i, s) in t.kinds.iter().enumerate() {
            let growing = s.shape == Shape::Growing;
            let colour = if growing {
                "#d62728"
            } else {
                COLOURS[i % COLOURS.len()]
            };
            let points: Vec<String> = t
                .times
                .iter()
                .zip(&s.bytes)
                .map(|(&x, &b)| {
                    format!(
                        "{:.1},{:.1}",
                        x0 + (x1 - x0) * x / span,
                        y0 - (y0 - y1) * b as f64 / max_b
                    )
                })
                .collect();
            out.push_str(&format!(
                "<polyline class=\"{}\" data-kind=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{}\" points=\"{}\"/>\n",
                if growing { "kind growing" } else { "kind" },
                xml_escape(&s.key),
                if growing { "3" } else { "1.5" },
                points.join(" ")
            ));
            let ly = top + 50.0 + 18.0 * i as f64;
            out.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{}{} ({}, {}/h)</text>\n",
                w + 5.0,
                ly - 10.0,
                w + 22.0,
                ly,
                if growing { "\u{25B2} " } else { "" },
                xml_escape(&s.key),
                s.shape,
                xml_escape(&signed_bytes(s.bytes_per_hour))
            ));
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let xs: Vec<f64> = (0..10).map(f64::from).collect();
        let steady: Vec<f64> = xs.iter().map(|x| 100.0 * x).collect();
        assert_eq!(shape(&xs, &steady), Shape::Growing);
        let warm: Vec<f64> = xs.iter().map(|&x| 100.0 * x.min(3.0)).collect();
        assert_eq!(shape(&xs, &warm), Shape::LevelsOff);
        let flat = vec![500.0; 10];
        assert_eq!(shape(&xs, &flat), Shape::Flat);
        let down: Vec<f64> = xs.iter().map(|x| 1000.0 - 10.0 * x).collect();
        assert_eq!(shape(&xs, &down), Shape::Shrinking);
        assert_eq!(shape(&xs[..3], &steady[..3]), Shape::TooFew);
        // Slow steady growth is still growth; a step at the very end is growth too.
        let slow: Vec<f64> = xs.iter().map(|x| 1000.0 + x).collect();
        assert_eq!(shape(&xs, &slow), Shape::Growing);
        assert!((slope(&xs, &steady) - 100.0).abs() < 1e-9);
    }
}
