//! Tracker code that allocates (names, `live()`, `LeakInfo` display, backtraces) called
//! inside a scope does not tag its own allocations: the scope's counts stay exactly what
//! the user allocated.

mod common;
use common::counts;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use leaktracker::{Backtraces, LeakTracker, TrackError, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn round(mode: Backtraces) {
    leaktracker::set_backtraces(mode);
    let base = leaktracker::stats().records;
    let t = LeakTracker::new();
    // Room enough that formatting into it never reallocates.
    let mut out = String::with_capacity(16 * 1024);
    let (kept, obj, obj_name) = {
        let _s = t.scope("outer", "reentrancy");
        let kept = black_box(vec![1u8; 100]);
        assert_eq!(counts(&t), vec![("outer".into(), 1, 100)]);

        // `live()` allocates its result and the names under the guard.
        for _ in 0..10 {
            let l = t.live();
            for info in &l {
                write!(out, "{info}; {info:?}; ").unwrap();
            }
            let _ = t.live_older_than(Duration::ZERO);
            let _ = leaktracker::stats();
            assert!(leaktracker::is_installed());
        }
        // Scopes with a default name (formatted by the tracker) or owned names.
        for i in 0..10 {
            let _a = t.scope("", "reentrancy");
            let _b = t.scope(String::from("owned-name"), String::from("owned-kind"));
            let _c = t.scope(format!("formatted-{i}"), "reentrancy");
        }
        // `track` with the default name (formatted by the tracker), then renamed with a
        // name the user formatted (tagged while it lives, freed by the time track returns).
        let obj = black_box(vec![2u8; 50]);
        t.track(&obj, "", "reentrancy").unwrap();
        let obj_name = format!("obj-{:#x}", obj.as_ptr() as usize);
        assert_eq!(
            counts(&t),
            vec![
                ("outer".into(), 2, 100 + obj_name.capacity()),
                (obj_name.clone(), 1, 50)
            ]
        );
        t.track(&obj, format!("named-{}", 1), "reentrancy").unwrap();
        // Error values and their text.
        let empty: Vec<u8> = Vec::new();
        assert_eq!(t.track(&empty, "empty", "x"), Err(TrackError::NoHeapBlock));
        write!(out, "{}", TrackError::TableFull).unwrap();
        // Another tracker made, used and dropped inside the scope.
        {
            let other = LeakTracker::new();
            let v = black_box(vec![3u8; 7]);
            other.track(&v, "other", "reentrancy").unwrap();
            assert_eq!(counts(&other), vec![("other".into(), 1, 7)]);
            drop(v);
            assert!(other.live().is_empty());
        }
        assert!(!t.untrack(&out));
        (kept, obj, obj_name)
    };
    assert_eq!(
        counts(&t),
        vec![
            ("outer".into(), 2, 100 + obj_name.capacity()),
            ("named-1".into(), 1, 50)
        ]
    );
    assert!(out.starts_with("outer (reentrancy): age "), "{out}");
    assert!(out.contains("leaktracker: the record table is full"));
    // Only the user's three blocks are recorded.
    assert_eq!(leaktracker::stats().records, base + 3);
    drop((kept, obj, obj_name));
    assert!(t.live().is_empty());
    assert_eq!(leaktracker::stats().records, base);
}

#[test]
fn main() {
    round(Backtraces::Off);
    round(Backtraces::All);
    round(Backtraces::Off);
}
