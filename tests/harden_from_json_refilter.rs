//! A report read back with `LeakReport::from_json` and filtered again keeps what the file
//! counted without listing: each allow-list pattern's matches, the allowed and the younger
//! totals. Its minimum age only grows; new filters add to the file's counts.

use leaktracker::{LeakReport, LeakTracker};
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn keep(t: &LeakTracker, name: &'static str, kind: &'static str, bytes: usize) {
    let v = black_box(vec![1u8; bytes]);
    t.track(&v, name, kind).unwrap();
    std::mem::forget(v);
}

#[test]
fn main() {
    let t = LeakTracker::new();
    keep(&t, "global-cache", "cache", 10);
    keep(&t, "global-pool", "pool", 20);
    keep(&t, "global-map", "cache", 30);
    std::thread::sleep(Duration::from_millis(300));
    keep(&t, "conn-1", "database", 40);
    keep(&t, "conn-2", "database", 50);
    keep(&t, "young-1", "database", 60);
    let original = LeakReport::of(&t)
        .ignore("name:global-*".parse().unwrap())
        .ignore("kind:nothing".parse().unwrap());
    assert_eq!(original.ignored().resources, 3);
    assert_eq!(original.leaks().len(), 3);

    let back = LeakReport::from_json(&original.to_json()).unwrap();
    assert_eq!(back.ignored().resources, 3);

    // Filtered again with no new minimum age: the same counts.
    let again = back.clone().min_age(Duration::ZERO);
    let matches: Vec<(&str, usize)> = again
        .pattern_matches()
        .iter()
        .map(|m| (m.pattern.as_str(), m.matched))
        .collect();
    assert_eq!(matches, [("name:global-*", 3), ("kind:nothing", 0)]);
    assert_eq!(again.ignored().resources, 3);
    assert_eq!(again.ignored().bytes, 60);
    assert_eq!(again.leaks().len(), 3);
    assert_eq!(
        again.unmatched_patterns().collect::<Vec<_>>(),
        ["kind:nothing"]
    );
    assert!(again
        .to_string()
        .contains("3 resources matched by the allow-list"));
    // Written again, it says the same.
    let j: serde_json::Value = serde_json::from_str(&again.to_json()).unwrap();
    assert_eq!(j["allowed"]["resources"], 3);
    assert_eq!(j["allow_list"][0]["matched"], 3);

    // A new pattern is counted over the listed resources, after the file's patterns.
    let more = back.clone().ignore("name:conn-2".parse().unwrap());
    let matches: Vec<(&str, usize)> = more
        .pattern_matches()
        .iter()
        .map(|m| (m.pattern.as_str(), m.matched))
        .collect();
    assert_eq!(
        matches,
        [
            ("name:global-*", 3),
            ("kind:nothing", 0),
            ("name:conn-2", 1)
        ]
    );
    assert_eq!(more.ignored().resources, 4);
    assert_eq!(more.ignored().bytes, 110);
    assert_eq!(more.leaks().len(), 2);

    // A report made with a minimum age, read back, filtered with a larger one: the younger
    // totals add up; filtered with a smaller one, the file's stays (its younger resources
    // are not in the file to list).
    let aged = LeakReport::of(&t).min_age(Duration::from_millis(150));
    assert_eq!(aged.younger().resources, 3);
    assert_eq!(aged.leaks().len(), 3);
    let back = LeakReport::from_json(&aged.to_json()).unwrap();
    let smaller = back.clone().min_age(Duration::from_millis(10));
    assert_eq!(smaller.min_age_filter(), Duration::from_millis(150));
    assert_eq!(smaller.younger().resources, 3);
    assert_eq!(smaller.leaks().len(), 3);
    let larger = back.min_age(Duration::from_secs(3600));
    assert_eq!(larger.younger().resources, 6);
    assert_eq!(larger.younger().bytes, 210);
    assert!(larger.leaks().is_empty());
}
