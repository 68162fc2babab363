//! The names the API replaced still work, deprecated, and mean what their successors do:
//! `AllowPattern` (now `IgnorePattern`), `LeakReport::capture` (`of_all`),
//! `LeakReport::allow_list` (`ignore_all`) and `LeakReport::allowed` (`ignored`).
#![allow(deprecated)]

use leaktracker::{AllowPattern, IgnorePattern, LeakReport, LeakTracker};
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn names(r: &LeakReport) -> Vec<String> {
    r.leaks().iter().map(|e| e.name.clone()).collect()
}

#[test]
fn main() {
    let t = LeakTracker::new();
    for (name, kind, n) in [("conn-1", "database", 10), ("global-cache", "cache", 20)] {
        let v = black_box(vec![1u8; n]);
        t.track(&v, name, kind).unwrap();
        std::mem::forget(v);
    }
    let old: AllowPattern = "kind:cache".parse().unwrap();
    let new: IgnorePattern = "kind:cache".parse().unwrap();
    assert_eq!(old, new);

    let before = LeakReport::capture().allow_list([old.clone()]);
    let after = LeakReport::of_all().ignore_all([new.clone()]);
    for r in [&before, &after] {
        let mine: Vec<String> = names(r)
            .into_iter()
            .filter(|n| n == "conn-1" || n == "global-cache")
            .collect();
        assert_eq!(mine, ["conn-1"], "{r}");
    }
    assert_eq!(before.allowed(), after.ignored());
    assert_eq!(after.ignored().resources, 1);
    assert_eq!(after.ignored().bytes, 20);
    assert_eq!(
        names(&LeakReport::of(&t).ignore(new)),
        names(&LeakReport::of(&t).allow_list([old]))
    );
}
