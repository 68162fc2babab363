//! `leaktracker trend` on real interval snapshots of a service with a planted per-request
//! leak and a cache that warms up: it flags exactly the leak (kind and site), says the
//! cache levels off, fails with --fail-on-growth and marks the leak in the SVG.

mod common;
mod trend_common;
use common::*;
use trend_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    if role().is_some() {
        return serve(true);
    }
    let dir = temp_dir("trend_leak_and_cache");
    let template = dir.join("snap-%n.json");
    let o = run_self(
        "service",
        &[
            ("LEAKTRACKER_INTERVAL", "150ms"),
            ("LEAKTRACKER_REPORT", template.to_str().unwrap()),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("served 200"), "{out}");
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert!(n >= 8, "{n} snapshots");

    let cli = cli();
    let (code, out, err) = trend(&cli, &[dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    println!("{out}");
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{out}"))
            .to_string()
    };
    assert!(line("kind request:").contains("GROWING"), "{out}");
    assert!(line("kind cache:").contains("levels off"), "{out}");
    let leak_site = line("site trend_leak_and_cache::trend_common::leak_body");
    assert!(leak_site.contains("GROWING"), "{out}");
    let cache_site = line("site trend_leak_and_cache::trend_common::cache_insert");
    assert!(cache_site.contains("levels off"), "{out}");
    // The cache ends at its 40 entries; the leak at one block per request.
    assert!(line("kind cache:").contains("-> 40 ("), "{out}");
    assert!(line("kind request:").contains("-> 200 ("), "{out}");
    assert!(out.contains("growing steadily: kind request\n"), "{out}");
    // Exactly one GROWING kind and one GROWING site.
    assert_eq!(out.matches("GROWING").count(), 2, "{out}");

    let (code, _, _) = trend(&cli, &[dir.to_str().unwrap(), "--fail-on-growth"]);
    assert_eq!(code, Some(1));

    let (code, svg, err) = trend(&cli, &["--svg", dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(
        svg.contains("class=\"kind growing\" data-kind=\"request\""),
        "{svg}"
    );
    assert!(svg.contains("class=\"kind\" data-kind=\"cache\""), "{svg}");
    assert!(svg.contains("\u{25B2} request"), "{svg}");
    assert!(!svg.contains("\u{25B2} cache"), "{svg}");

    // Bad input: a clear error.
    let (code, _, err) = trend(&cli, &["--fast", dir.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("error: unexpected argument '--fast' found"),
        "{err}"
    );
}
