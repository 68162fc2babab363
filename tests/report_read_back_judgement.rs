//! A report read back with `LeakReport::from_json` keeps the judgement it was made with
//! (the file holds what was listed, not every block): another verdict changes nothing and
//! `verdict_used` still tells the file's. Filters act on it as on the live report: a
//! `frame:` pattern moves the stack groups it matches out of their entries, into an
//! allow-list group, with the same result as on the live report it was made from. An
//! entry that loses some of its groups that way keeps the verdict the file gives it (the
//! file has no reason per group), with a note of what was removed since.

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

/// With `mixed_kept`: two sites in one resource, one that the pattern matches and one
/// that it does not.
#[inline(never)]
fn mixed_planted_site() {
    std::mem::forget(black_box(vec![4u8; 24]));
}

#[inline(never)]
fn mixed_kept(n: usize) {
    std::mem::forget(black_box(vec![5u8; n]));
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
        let _s = t.scope("mixed", "conn");
        mixed_planted_site();
        mixed_kept(black_box(40));
    }
    {
        // One-time state made inside a unit of work: not a leak by default, listed by
        // the strict verdict.
        let _s = t.scope("init", "unit");
        black_box(TABLE.get_or_init(|| vec![0u8; 64]));
    }

    let live = LeakReport::of(&t);
    assert!(!live.is_read_back());
    assert_eq!(
        names(&live),
        ["planted", "planted-2", "other", "mixed"],
        "{live}"
    );
    assert_eq!(
        names(&LeakReport::of(&t).verdict(Verdict::Strict)),
        ["planted", "planted-2", "other", "mixed", "init"]
    );

    let back = LeakReport::from_json(&live.to_json()).unwrap();
    assert!(back.is_read_back());
    assert_eq!(names(&back), ["planted", "planted-2", "other", "mixed"]);
    assert_eq!(back.verdict_used(), Verdict::Default);

    // Another verdict cannot re-judge what the file does not hold: nothing changes, and
    // the report does not claim a verdict it was not judged with.
    let strict = back.clone().verdict(Verdict::Strict).at_exit(true);
    assert_eq!(strict.verdict_used(), Verdict::Default);
    assert_eq!(names(&strict), ["planted", "planted-2", "other", "mixed"]);

    // A frame pattern: the same on the live report and on the one read back.
    let pattern: IgnorePattern = "frame:*planted_site*".parse().unwrap();
    let live_f = LeakReport::of(&t).ignore(pattern.clone());
    let back_f = back.clone().ignore(pattern.clone());
    for r in [&live_f, &back_f] {
        assert_eq!(names(r), ["other", "mixed"], "{r}");
        let mixed = &r.leaks()[1];
        assert_eq!(
            (mixed.allocations, mixed.bytes, mixed.stacks.len()),
            (1, 40, 1)
        );
        let m: Vec<(&str, usize)> = r
            .pattern_matches()
            .iter()
            .map(|m| (m.pattern.as_str(), m.matched))
            .collect();
        // Three resources at three sites: one group per pattern, each resource counted
        // once.
        assert_eq!(m, [("frame:*planted_site*", 3)]);
        assert_eq!(
            allow_groups(r),
            [(
                "matched by the allow-list pattern frame:*planted_site*".to_string(),
                3,
                94
            )]
        );
        let resources: Vec<usize> = r
            .not_leaks()
            .iter()
            .filter(|g| g.class == "allow-list")
            .map(|g| g.resources)
            .collect();
        assert_eq!(resources, [3]);
        // The three, and `init` (one-time).
        assert_eq!(r.not_leak_totals().resources, 4, "{r}");
        assert_eq!((r.totals().resources, r.totals().bytes), (2, 90));
    }
    // The live report judges the group left; the file's verdict was written for both
    // groups, and says so once one is gone.
    let live_why = &live_f.leaks()[1].verdict;
    assert!(
        live_why.starts_with("retained after its scope ended"),
        "{live_f}"
    );
    assert!(!live_why.contains("since ignored"), "{live_f}");
    let back_why = &back_f.leaks()[1].verdict;
    assert_eq!(
        back_why,
        &format!(
            "{} (1 of its 2 stack groups since ignored by frame:*planted_site*; this verdict \
             was given before)",
            live.leaks()[3].verdict
        ),
        "{back_f}"
    );
    // Filtering again is idempotent, and the filtered report survives its own round trip.
    let again = back_f.clone().ignore(pattern);
    assert_eq!(names(&again), ["other", "mixed"]);
    assert_eq!(
        &again.leaks()[1].verdict,
        back_why,
        "nothing more was ignored"
    );
    assert_eq!(allow_groups(&again).len(), 1, "{again}");
    let twice = LeakReport::from_json(&back_f.to_json()).unwrap();
    assert_eq!(names(&twice), ["other", "mixed"]);
    assert_eq!(&twice.leaks()[1].verdict, back_why);
    assert_eq!(allow_groups(&twice), allow_groups(&back_f));
}
