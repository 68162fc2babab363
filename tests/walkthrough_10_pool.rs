//! Walkthrough 10: a pool type tracked in a `static` tracker when made and untracked in its
//! `Drop` shows 1 live inside its scope, 0 after; a pool that is never dropped stays listed.

use leaktracker::{LeakTracker, Trackable, TrackingAllocator};
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

static POOLS: LeakTracker = LeakTracker::new();
static UNTRACKED_IN_DROP: AtomicUsize = AtomicUsize::new(0);

struct Pool {
    slots: Vec<Option<Box<[u8; 256]>>>,
}

// SAFETY: delegates to `slots`, a `Vec` the pool owns.
unsafe impl Trackable for Pool {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        self.slots.heap_block()
    }
}

impl Pool {
    fn new(name: &'static str, size: usize) -> Pool {
        let pool = Pool {
            slots: black_box((0..size).map(|_| Some(Box::new([0u8; 256]))).collect()),
        };
        POOLS.track(&pool, name, "pool").unwrap();
        pool
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if POOLS.untrack(self) {
            UNTRACKED_IN_DROP.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn main() {
    assert!(POOLS.live().is_empty());
    {
        let pool = Pool::new("db-pool", 4);
        let live = POOLS.live();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].name, "db-pool");
        assert_eq!(live[0].kind, "pool");
        assert_eq!(
            live[0].bytes,
            pool.slots.capacity() * std::mem::size_of::<Option<Box<[u8; 256]>>>()
        );
        assert_eq!(pool.slots.len(), 4);
    }
    assert!(POOLS.live().is_empty());
    assert_eq!(UNTRACKED_IN_DROP.load(Ordering::SeqCst), 1);

    // Two pools at once, one forgotten (a real leak): it stays listed.
    {
        let a = Pool::new("pool-a", 2);
        let b = Pool::new("pool-b", 3);
        assert_eq!(POOLS.live().len(), 2);
        std::mem::forget(b);
        drop(a);
    }
    let live = POOLS.live();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].name, "pool-b");
    assert_eq!(UNTRACKED_IN_DROP.load(Ordering::SeqCst), 2);
    POOLS.clear();
    assert!(POOLS.live().is_empty());
}
