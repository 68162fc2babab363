//! A report read back with `LeakReport::from_json` keeps the judgement it was made with
//! (the file holds what was listed, not every block): another verdict changes nothing and
//! `verdict_used` still tells the file's. Filters act on it as on the live report: a
//! `frame:` pattern moves the stack groups it matches out of their entries, into an
//! allow-list group, with the same result as on the live report it was made from.

use leaktracker::{Backtraces, IgnorePattern, LeakReport, LeakTracker, Verdict};
use std::hint::black_box;
use std::sync::OnceLock;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TABLE: OnceLock<Vec<u8>> = OnceLock::new();

#[inline(never)]
fn planted_site(t: &LeakTracker) {
    let v = black_box(vec![1u8; 40]);
    t.track(&v, "planted", "conn").unwrap();
    std::mem::forget(v);
}

#[inline(never)]
fn planted_site_two(t: &LeakTracker) {
    let v = black_box(vec![3u8; 30]);
    t.track(&v, "planted-2", "conn").unwrap();
    std::mem::forget(v);
}

#[inline(never)]
fn other_site(t: &LeakTracker) {
    let v = black_box(vec![2u8; 50]);
    t.track(&v, "other", "conn").unwrap();
    std::mem::forget(v);
}

fn names(r: &LeakReport) -> Vec<&str> {
    r.leaks().iter().map(|e| e.name.as_str()).collect()
}

/// (class, blocks, bytes) of each allow-list group.
fn allow_groups(r: &LeakReport) -> Vec<(String, usize, usize)> {
    r.not_leaks()
        .iter()
        .filter(|g| g.class == "allow-list")
        .map(|g| (g.reason.clone(), g.blocks, g.bytes))
        .collect()
}

#[test]
fn main() {
    leaktracker::set_backtraces(Backtraces::All);
    let t = LeakTracker::new();
    planted_site(&t);
    planted_site_two(&t);
    other_site(&t);
    {
        // One-time state made inside a unit of work: not a leak by default, listed by
        // the strict verdict.
        let _s = t.scope("init", "unit");
        black_box(TABLE.get_or_init(|| vec![0u8; 64]));
    }

    let live = LeakReport::of(&t);
    assert!(!live.is_read_back());
    assert_eq!(names(&live), ["planted", "planted-2", "other"], "{live}");
    assert_eq!(
        names(&LeakReport::of(&t).verdict(Verdict::Strict)),
        ["planted", "planted-2", "other", "init"]
    );

    let back = LeakReport::from_json(&live.to_json()).unwrap();
    assert!(back.is_read_back());
    assert_eq!(names(&back), ["planted", "planted-2", "other"]);
    assert_eq!(back.verdict_used(), Verdict::Default);

    // Another verdict cannot re-judge what the file does not hold: nothing changes, and
    // the report does not claim a verdict it was not judged with.
    let strict = back.clone().verdict(Verdict::Strict).at_exit(true);
    assert_eq!(strict.verdict_used(), Verdict::Default);
    assert_eq!(names(&strict), ["planted", "planted-2", "other"]);

    // A frame pattern: the same on the live report and on the one read back.
    let pattern: IgnorePattern = "frame:*planted_site*".parse().unwrap();
    let live_f = LeakReport::of(&t).ignore(pattern.clone());
    let back_f = back.clone().ignore(pattern.clone());
    for r in [&live_f, &back_f] {
        assert_eq!(names(r), ["other"], "{r}");
        let m: Vec<(&str, usize)> = r
            .pattern_matches()
            .iter()
            .map(|m| (m.pattern.as_str(), m.matched))
            .collect();
        // Two resources at two sites: one group per pattern, each resource counted once.
        assert_eq!(m, [("frame:*planted_site*", 2)]);
        assert_eq!(
            allow_groups(r),
            [(
                "matched by the allow-list pattern frame:*planted_site*".to_string(),
                2,
                70
            )]
        );
        let resources: Vec<usize> = r
            .not_leaks()
            .iter()
            .filter(|g| g.class == "allow-list")
            .map(|g| g.resources)
            .collect();
        assert_eq!(resources, [2]);
        // The two, and `init` (one-time).
        assert_eq!(r.not_leak_totals().resources, 3, "{r}");
        assert_eq!((r.totals().resources, r.totals().bytes), (1, 50));
    }
    // Filtering again is idempotent, and the filtered report survives its own round trip.
    let again = back_f.clone().ignore(pattern);
    assert_eq!(names(&again), ["other"]);
    assert_eq!(allow_groups(&again).len(), 1, "{again}");
    let twice = LeakReport::from_json(&back_f.to_json()).unwrap();
    assert_eq!(names(&twice), ["other"]);
    assert_eq!(allow_groups(&twice), allow_groups(&back_f));
}
