//! Re-tracking: in place (name, kind and creation time updated, same place in `live()`
//! order), moving between trackers (local and global), moving a scope's block to a
//! tracker, and a user type that delegates `Trackable`.

mod common;
use common::counts_with_kind;

use leaktracker::{
    stats, track_resource, untrack_resource, LeakTracker, Trackable, TrackingAllocator,
};
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Duration;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

fn s(n: &str, k: &str, a: usize, b: usize) -> (String, String, usize, usize) {
    (n.into(), k.into(), a, b)
}

struct Session {
    id: u32,
    state: Vec<u8>,
}

// SAFETY: delegates to `state`, a `Vec<u8>` the session owns.
unsafe impl Trackable for Session {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        self.state.heap_block()
    }
}

#[test]
fn main() {
    let t1 = LeakTracker::new();
    let t2 = LeakTracker::new();
    let baseline = stats().records;

    // 1. In place.
    let a = black_box(vec![0u8; 10]);
    let b = black_box(vec![0u8; 20]);
    let c = black_box(vec![0u8; 30]);
    t1.track(&a, "a", "k").unwrap();
    t1.track(&b, "b", "k").unwrap();
    t1.track(&c, "c", "k").unwrap();
    let before = t1.live();
    std::thread::sleep(Duration::from_millis(20));
    t1.track(&b, "b2", "k2").unwrap();
    t1.track(&a, "a2", "k").unwrap();
    let after = t1.live();
    assert_eq!(
        counts_with_kind(&t1),
        [
            s("a2", "k", 1, 10),
            s("b2", "k2", 1, 20),
            s("c", "k", 1, 30)
        ]
    );
    assert!(after[0].created_at > before[0].created_at);
    assert!(after[1].created_at > before[1].created_at);
    assert_eq!(after[2].created_at, before[2].created_at);
    assert!(after[0].age() < after[2].age());
    assert_eq!(stats().records, baseline + 3);

    // 2. Between trackers: t1 -> t2 -> global -> t1.
    t2.track(&b, "b-in-t2", "moved").unwrap();
    assert_eq!(
        counts_with_kind(&t1),
        [s("a2", "k", 1, 10), s("c", "k", 1, 30)]
    );
    assert_eq!(counts_with_kind(&t2), [s("b-in-t2", "moved", 1, 20)]);
    assert!(!t1.untrack(&b));
    track_resource(&b, "b-global", "moved").unwrap();
    assert!(t2.live().is_empty());
    assert_eq!(
        counts_with_kind(LeakTracker::global()),
        [s("b-global", "moved", 1, 20)]
    );
    t1.track(&b, "b-home", "k").unwrap();
    assert!(LeakTracker::global().live().is_empty());
    assert!(!untrack_resource(&b));
    // Back in t1 it is a new entry: last in the order.
    assert_eq!(
        counts_with_kind(&t1),
        [
            s("a2", "k", 1, 10),
            s("c", "k", 1, 30),
            s("b-home", "k", 1, 20)
        ]
    );
    assert_eq!(stats().records, baseline + 3);

    // 3. A scope's blocks moved to a tracker (another one, and the scope's own).
    let (x, y, z) = {
        let _g = t2.scope("batch", "scope");
        (
            black_box(Box::new([0u8; 40])),
            black_box(Box::new([0u8; 50])),
            black_box(Box::new([0u8; 60])),
        )
    };
    assert_eq!(counts_with_kind(&t2), [s("batch", "scope", 3, 150)]);
    t1.track(&x, "x", "from-scope").unwrap();
    t2.track(&y, "y", "from-scope").unwrap();
    assert_eq!(
        counts_with_kind(&t2),
        [s("batch", "scope", 1, 60), s("y", "from-scope", 1, 50)]
    );
    assert_eq!(
        counts_with_kind(&t1).last().unwrap(),
        &s("x", "from-scope", 1, 40)
    );
    assert!(t2.untrack(&z));
    assert_eq!(counts_with_kind(&t2), [s("y", "from-scope", 1, 50)]);
    assert!(t1.untrack(&x));
    assert_eq!(stats().records, baseline + 4);

    // 4. A user type that delegates: it follows its Vec as it grows.
    let mut session = Session {
        id: 9,
        state: black_box(Vec::with_capacity(16)),
    };
    t2.track(&session, format!("session-{}", session.id), "session")
        .unwrap();
    session.state.extend(std::iter::repeat_n(1, 1000));
    assert_eq!(
        counts_with_kind(&t2)[1],
        s("session-9", "session", 1, session.state.capacity())
    );
    t2.track(&session, "session-9-renamed", "session").unwrap();
    assert_eq!(counts_with_kind(&t2)[1].0, "session-9-renamed");
    t1.track(&session, "session-in-t1", "session").unwrap();
    assert_eq!(counts_with_kind(&t2).len(), 1);
    assert!(t1.untrack(&session));
    assert!(!t2.untrack(&session));

    drop((a, b, c, x, y, z, session));
    assert!(t1.live().is_empty());
    assert!(t2.live().is_empty());
    assert_eq!(stats().records, baseline);
}
