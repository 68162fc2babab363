//! `leaktracker trend` on real interval snapshots of a correct service whose cache warms
//! up and stays: nothing grows steadily, --fail-on-growth passes.

mod common;
mod trend_common;
use common::*;
use trend_common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    if role().is_some() {
        return serve(false);
    }
    let dir = temp_dir("trend_warming_cache");
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
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert!(n >= 8, "{n} snapshots");

    let cli = cli();
    let (code, out, err) = trend(&cli, &[dir.to_str().unwrap(), "--fail-on-growth"]);
    println!("{out}");
    assert_eq!(code, Some(0), "{out}\n{err}");
    let cache = out
        .lines()
        .find(|l| l.trim_start().starts_with("kind cache:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(cache.contains("levels off"), "{out}");
    assert!(cache.contains("-> 40 ("), "{out}");
    assert!(
        !out.contains("kind request:"),
        "requests keep nothing: {out}"
    );
    assert!(!out.contains("GROWING"), "{out}");
    assert!(out.contains("nothing grows steadily"), "{out}");
}
