//! Empty names get defaults: `scope-<n>` for a scope, `obj-0x<hex address>` for `track`.
//! Names built at run time inside a scope are not themselves counted as the scope's blocks.

use leaktracker::{LeakTracker, Trackable, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn scope_number(name: &str) -> u64 {
    let n = name
        .strip_prefix("scope-")
        .unwrap_or_else(|| panic!("{name}"));
    assert!(
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    n.parse().unwrap()
}

#[test]
fn main() {
    let tracker = LeakTracker::new();

    // Scopes: `scope-<n>`, a different n each time, for &str and String alike.
    let a;
    let b;
    {
        let _g = tracker.scope("", "anon");
        a = black_box(Box::new(1u64));
    }
    {
        let _g = tracker.scope(String::new(), "anon");
        b = black_box(Box::new(2u64));
    }
    let live = tracker.live();
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].kind, "anon");
    let (n0, n1) = (scope_number(&live[0].name), scope_number(&live[1].name));
    assert_ne!(n0, n1);
    drop((a, b));
    assert!(tracker.live().is_empty());

    // track: `obj-0x<address of the block>`, lower-case hex.
    let v = black_box(vec![0u8; 40]);
    let s = black_box(String::from("named by address"));
    tracker.track(&v, "", "buffer").unwrap();
    tracker.track(&s, String::new(), "text").unwrap();
    let live = tracker.live();
    assert_eq!(live[0].name, format!("obj-0x{:x}", v.as_ptr() as usize));
    assert_eq!(live[1].name, format!("obj-0x{:x}", s.as_ptr() as usize));
    assert_eq!(
        live[0].name,
        format!("obj-{:#x}", v.heap_block().unwrap().0.as_ptr() as usize)
    );
    assert!(live[0].name[6..]
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    // Re-tracking with an empty name gives the default again (in place).
    tracker.track(&v, "given", "buffer").unwrap();
    assert_eq!(tracker.live()[0].name, "given");
    tracker.track(&v, "", "buffer").unwrap();
    assert_eq!(
        tracker.live()[0].name,
        format!("obj-0x{:x}", v.as_ptr() as usize)
    );
    drop((v, s));
    assert!(tracker.live().is_empty());

    // Names built with format! inside a scope: the scope counts only its own blocks.
    let boxes: Vec<Box<[u8; 16]>>;
    {
        let mut held = Vec::with_capacity(3);
        let _g = tracker.scope(format!("job-{}", 7), format!("kind-{}", 1));
        for i in 0..3 {
            let b = black_box(Box::new([0u8; 16]));
            let other = LeakTracker::new();
            other.track(&b, format!("item-{i}"), "x").unwrap();
            held.push(b);
        } // `other` drops: its tags are forgotten, the boxes are no one's now
        boxes = held;
        let _late = black_box(Box::new([0u8; 5])); // freed before the scope ends
    }
    let live = tracker.live();
    assert!(live.is_empty(), "{live:?}");
    drop(boxes);

    {
        let _g = tracker.scope(format!("job-{}", 8), format!("kind-{}", 2));
        let x = black_box(Box::new([0u8; 12]));
        std::mem::forget(x);
    }
    let live = tracker.live();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].name.as_str(), live[0].kind.as_str()),
        ("job-8", "kind-2")
    );
    assert_eq!((live[0].allocations, live[0].bytes), (1, 12));
    tracker.clear();
}
