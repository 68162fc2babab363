//! The lock-free life cycle of a resource: live blocks and holds in one counter, and a
//! state that only the thread dropping the last reference moves to `DEAD`.
//!
//! This is the one lock-free protocol between the allocator path and tracker code, so it
//! lives alone here, written against `crate::sync`, and is model-checked with loom
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib lifetime`, in `.ci/run`).
//!
//! Invariants:
//! * `refs` = live blocks (low 40 bits) + holds (`HOLD` units). A reference is only
//!   added by someone who already owns one (a tag's hold, a record being moved, the
//!   creation hold), so once `refs` reaches 0 it never rises again.
//! * Exactly one `release` sees `refs` go to 0, and only it stores `DEAD`.
//! * The registry frees a slot (`DEAD` -> `FREE`) only after it saw `DEAD`; by then no
//!   reference exists, so nobody touches the slot until the registry hands it out again.

use crate::sync::{AtomicU64, AtomicU8, Ordering};

/// One unit of `refs` for a live block.
pub(crate) const BLOCK: u64 = 1;
/// One unit of `refs` for a hold (an open scope, a polled future, a call in progress).
pub(crate) const HOLD: u64 = 1 << 40;

const FREE: u8 = 0;
const LIVE: u8 = 1;
const DEAD: u8 = 2;

/// Reference count and state of one resource slot.
#[derive(Debug)]
pub(crate) struct Lifetime {
    refs: AtomicU64,
    state: AtomicU8,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime::new()
    }
}

impl Lifetime {
    /// A free slot (all zero: also what a zeroed mapping holds).
    pub(crate) fn new() -> Lifetime {
        Lifetime {
            refs: AtomicU64::new(0),
            state: AtomicU8::new(FREE),
        }
    }

    /// Makes a free slot live with one hold, owned by the caller. Only the registry calls
    /// it, on a slot it owns (`FREE`, no references).
    pub(crate) fn start(&self) {
        self.refs.store(HOLD, Ordering::Relaxed);
        self.state.store(LIVE, Ordering::Release);
    }

    /// Adds a reference (`BLOCK` or `HOLD`); the caller must own one already.
    #[inline(always)]
    pub(crate) fn add(&self, unit: u64) {
        self.refs.fetch_add(unit, Ordering::Relaxed);
    }

    /// Drops a reference (`BLOCK` or `HOLD`); true when it was the last one (the caller
    /// then marked the slot dead and must not touch it again).
    #[inline(always)]
    pub(crate) fn release(&self, unit: u64) -> bool {
        if self.refs.fetch_sub(unit, Ordering::AcqRel) == unit {
            self.state.store(DEAD, Ordering::Release);
            true
        } else {
            false
        }
    }

    /// Live blocks (exact when no thread changes them).
    #[inline]
    pub(crate) fn blocks(&self) -> u64 {
        self.refs.load(Ordering::Acquire) & (HOLD - 1)
    }

    /// Holds (exact when no thread changes them).
    pub(crate) fn holds(&self) -> u64 {
        self.refs.load(Ordering::Acquire) >> 40
    }

    /// Whether the slot is live (not dead, not free).
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        self.state.load(Ordering::Acquire) == LIVE
    }

    /// Frees a dead slot for reuse: true if it was dead. Only the registry calls it.
    pub(crate) fn reclaim(&self) -> bool {
        if self.state.load(Ordering::Acquire) == DEAD {
            self.state.store(FREE, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Every interleaving of the protocol's racing steps, explored by loom.

    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use loom::thread;

    /// `track`: the creation hold is released while another thread frees the block.
    /// Exactly one of them sees the end, the slot ends dead, and nothing is left counted.
    #[test]
    fn last_release_is_seen_once() {
        loom::model(|| {
            let life = Arc::new(Lifetime::new());
            life.start();
            life.add(BLOCK);
            let deaths = Arc::new(AtomicUsize::new(0));
            let (l2, d2) = (life.clone(), deaths.clone());
            let t = thread::spawn(move || {
                if l2.release(BLOCK) {
                    d2.fetch_add(1, Ordering::Relaxed);
                }
            });
            if life.release(HOLD) {
                deaths.fetch_add(1, Ordering::Relaxed);
            }
            t.join().unwrap();
            assert_eq!(deaths.load(Ordering::Relaxed), 1);
            assert!(!life.is_live());
            assert_eq!(life.blocks(), 0);
            assert!(life.reclaim());
        });
    }

    /// A scope's thread adds and frees blocks under its hold while another thread frees
    /// one of its blocks: the resource never dies while the hold exists.
    #[test]
    fn hold_keeps_it_alive() {
        loom::model(|| {
            let life = Arc::new(Lifetime::new());
            life.start(); // the scope's hold
            life.add(BLOCK); // a block handed to the other thread
            let l2 = life.clone();
            let t = thread::spawn(move || {
                assert!(!l2.release(BLOCK), "a hold is still there");
            });
            life.add(BLOCK);
            assert!(!life.release(BLOCK));
            t.join().unwrap();
            assert!(life.is_live());
            assert!(!life.reclaim(), "a live slot is never reclaimed");
            assert!(life.release(HOLD), "the scope's end is the last reference");
            assert!(life.reclaim());
        });
    }

    /// The registry scans while the last reference goes: it reclaims only a dead slot, and
    /// when it does, no reference is left.
    #[test]
    fn reclaim_only_after_death() {
        loom::model(|| {
            let life = Arc::new(Lifetime::new());
            life.start();
            life.add(BLOCK);
            let (a, b) = (life.clone(), life.clone());
            let t1 = thread::spawn(move || {
                a.release(BLOCK);
            });
            let t2 = thread::spawn(move || {
                if b.reclaim() {
                    assert_eq!(b.blocks(), 0);
                    assert_eq!(b.holds(), 0);
                }
            });
            life.release(HOLD);
            t1.join().unwrap();
            t2.join().unwrap();
            assert!(!life.is_live());
        });
    }
}
