//! Scopes nest: the innermost scope wins, and the outer one resumes tagging when the inner
//! guard drops; after the last guard, nothing is tagged.

mod common;
use common::counts_with_kind;

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn s(name: &str, kind: &str, n: usize, b: usize) -> (String, String, usize, usize) {
    (name.to_string(), kind.to_string(), n, b)
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let baseline = stats().records;

    let outer = tracker.scope("request", "http");
    let a = black_box(Box::new([0u8; 10]));
    let (b, c, d, e);
    {
        let _inner = tracker.scope("query", "database");
        b = black_box(Box::new([0u8; 20]));
        {
            let _innermost = tracker.scope("row", "decode");
            c = black_box(Box::new([0u8; 30]));
        }
        d = black_box(Box::new([0u8; 40])); // back in "query"
    }
    e = black_box(Box::new([0u8; 50])); // back in "request"
    drop(outer);
    let untagged = black_box(Box::new([0u8; 60]));

    assert_eq!(
        counts_with_kind(&tracker),
        [
            s("request", "http", 2, 60),
            s("query", "database", 2, 60),
            s("row", "decode", 1, 30),
        ]
    );
    assert_eq!(stats().records, baseline + 5);

    // A scope of another tracker nested inside: the innermost wins there too.
    let other = LeakTracker::new();
    let f;
    let g;
    {
        let _o = tracker.scope("outer-again", "http");
        {
            let _x = other.scope("foreign", "other");
            f = black_box(Box::new([0u8; 70]));
        }
        g = black_box(Box::new([0u8; 80]));
    }
    assert_eq!(counts_with_kind(&other), [s("foreign", "other", 1, 70)]);
    assert_eq!(
        counts_with_kind(&tracker).last().unwrap(),
        &s("outer-again", "http", 1, 80)
    );

    drop((a, c, e));
    assert_eq!(
        counts_with_kind(&tracker)[..2],
        [
            s("query", "database", 2, 60),
            s("outer-again", "http", 1, 80)
        ]
    );
    drop((b, d, f, g));
    assert!(tracker.live().is_empty());
    assert!(other.live().is_empty());
    drop(untagged);
    assert_eq!(stats().records, baseline);
}
