//! The text report, compared with tests/golden/report.txt with ages, addresses and the
//! pid masked. Set LT_BLESS=1 to rewrite the golden file.

use leaktracker::{LeakReport, LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

/// Replaces `age <digits and units>`, `0x<hex>` and `pid <n>` by placeholders.
fn mask(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("age ") {
            out.push_str("age <AGE>");
            let n = r
                .find(|c: char| c.is_whitespace() || c == ',')
                .unwrap_or(r.len());
            // An age may have two parts ("3m 12s").
            let mut r = &r[n..];
            if let Some(r2) = r.strip_prefix(' ') {
                let m = r2.find(|c: char| !c.is_ascii_digit()).unwrap_or(r2.len());
                if m > 0 && r2[m..].starts_with('s') {
                    r = &r2[m + 1..];
                }
            }
            // The padding after an age depends on its length.
            let t = r.trim_start_matches(' ');
            if t.len() < r.len() {
                out.push_str("  ");
            }
            rest = t;
        } else if let Some(r) = rest.strip_prefix("0x") {
            out.push_str("0x<ADDR>");
            let n = r.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(r.len());
            rest = &r[n..];
        } else if let Some(r) = rest.strip_prefix("(pid ") {
            out.push_str("(pid <PID>");
            let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            rest = &r[n..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let conn1 = vec![0u8; 100];
    tracker.track(&conn1, "connection-1", "database").unwrap();
    let session = {
        let _scope = tracker.scope("session-7", "session");
        (black_box(vec![1u64; 128]), black_box(String::from("user")))
    };
    let conn2 = vec![0u8; 3000];
    tracker
        .track(&conn2, "connection-2-primary-replica", "database")
        .unwrap();
    let unnamed = Box::new([0u32; 4]);
    tracker.track(&unnamed, "", "object").unwrap();
    let cache = vec![0u8; 10];
    tracker.track(&cache, "global-cache", "cache").unwrap();

    let report = LeakReport::of(&tracker)
        .ignore("kind:cache".parse().unwrap())
        .ignore("name:nothing-*".parse().unwrap());
    let text = mask(&report.to_string());

    // With a minimum age that hides everything.
    let young = mask(
        &LeakReport::of(&tracker)
            .min_age(Duration::from_secs(3600))
            .to_string(),
    );
    let text = format!("{text}---\n{young}");

    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/report.txt");
    if std::env::var_os("LT_BLESS").is_some() {
        std::fs::write(golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(golden).unwrap();
    assert_eq!(
        text, expected,
        "\n--- got ---\n{text}\n--- expected ---\n{expected}"
    );

    assert_eq!(mask("age 3m 12s, x"), "age <AGE>, x");
    assert_eq!(mask("age 4.2s      1 block"), "age <AGE>  1 block");
    assert_eq!(mask("age 12ms       1 block"), "age <AGE>  1 block");
    drop((conn1, session, conn2, unnamed, cache));
    assert!(LeakReport::of(&tracker).is_empty());
}
