//! The `cleared` generation of a resource: how a record taken out of the table for a
//! realloc learns, when it is put back, that its tracker was cleared meanwhile.
//!
//! `LeakTracker::clear` walks the record table and removes the records of its
//! resources. A record in flight (taken out by `realloc`, not yet put back) is not in the
//! table when the walk passes. So:
//! * `clear` bumps the generation of each of its resources before the walk and again
//!   after it (odd while it runs), under the registry lock, so clears of one resource
//!   never overlap and a reused slot starts even;
//! * `take` reads the generation under the shard lock it removes the record in;
//! * `put` reads it again under the shard lock it puts the record back in, and drops the
//!   record if it changed or is odd.
//!
//! A put whose shard lock comes before the walk's visit of that shard puts the record
//! where the walk finds it; one whose lock comes after it sees at least the first bump.
//! Either way no record of a cleared tracker survives the clear. Written against
//! `crate::sync`, and model-checked with loom below
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib cleared`).

use crate::sync::{AtomicU32, Ordering};

/// A resource's generation counter (see the module doc). All-zero is a valid, even
/// generation, so a `Hot` slot in zeroed memory holds one.
pub(crate) struct Cleared(AtomicU32);

/// The generation a record saw when it was taken out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Generation(u32);

impl Generation {
    /// An odd generation: a record taken with it is never put back.
    pub(crate) const NEVER: Generation = Generation(1);
}

impl Cleared {
    #[cfg(all(test, loom))]
    fn new() -> Cleared {
        Cleared(AtomicU32::new(0))
    }

    /// The generation now; read under the shard lock of the record being taken.
    #[inline(always)]
    pub(crate) fn now(&self) -> Generation {
        Generation(self.0.load(Ordering::Relaxed))
    }

    /// Whether a record taken at `taken` may be put back: no clear started or ran since.
    /// Read under the shard lock the record is put back in.
    #[inline(always)]
    pub(crate) fn unchanged_since(&self, taken: Generation) -> bool {
        let now = self.0.load(Ordering::Relaxed);
        now == taken.0 && now & 1 == 0
    }

    /// One of the two bumps of a `clear` (before its walk, and after it); under the
    /// registry lock.
    #[inline]
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! A realloc of a tagged block races a `clear` of its tracker, in every interleaving
    //! loom finds. The table is one shard holding the block's record (`Some(size)`), the
    //! resource's live-block count stands for its counters, and the steps are those of
    //! `records::take`, `records::put` and `records::clear` with
    //! `resource::while_clearing`, in their order and under the same locks.

    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct World {
        registry: Mutex<()>,
        shard: Mutex<Option<usize>>,
        cleared: Cleared,
        blocks: AtomicUsize,
    }

    /// `records::take` then `records::put` at the new size.
    fn realloc(w: &World, new_size: usize) {
        let taken = {
            let mut shard = w.shard.lock().unwrap();
            shard.take().map(|size| (size, w.cleared.now()))
        };
        let Some((_old_size, gen)) = taken else {
            return; // no record: the block goes on untagged
        };
        let mut shard = w.shard.lock().unwrap();
        if w.cleared.unchanged_since(gen) {
            *shard = Some(new_size);
        } else {
            w.blocks.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `records::clear` inside `resource::while_clearing`.
    fn clear(w: &World) {
        let _registry = w.registry.lock().unwrap();
        w.cleared.bump();
        {
            let mut shard = w.shard.lock().unwrap();
            if shard.take().is_some() {
                w.blocks.fetch_sub(1, Ordering::Relaxed);
            }
        }
        w.cleared.bump();
    }

    fn world() -> Arc<World> {
        Arc::new(World {
            registry: Mutex::new(()),
            shard: Mutex::new(Some(16)),
            cleared: Cleared::new(),
            blocks: AtomicUsize::new(1),
        })
    }

    /// After both, the record is gone and counted out exactly once.
    #[test]
    fn clear_wins_over_a_realloc_in_flight() {
        loom::model(|| {
            let w = world();
            let w2 = w.clone();
            let t = thread::spawn(move || realloc(&w2, 32));
            clear(&w);
            t.join().unwrap();
            assert_eq!(
                *w.shard.lock().unwrap(),
                None,
                "a record survived the clear"
            );
            assert_eq!(w.blocks.load(Ordering::Relaxed), 0);
        });
    }

    /// A realloc after a clear has finished finds no record; one before any clear keeps
    /// it, resized (the generation protocol loses nothing when nothing is cleared).
    #[test]
    fn realloc_alone_keeps_its_record() {
        loom::model(|| {
            let w = world();
            let w2 = w.clone();
            let t = thread::spawn(move || realloc(&w2, 32));
            realloc(&w, 48);
            t.join().unwrap();
            // Two reallocs of one block cannot race in a real program; here one may find
            // the record out (then it does nothing), and neither drops it.
            let rec = *w.shard.lock().unwrap();
            assert!(rec == Some(32) || rec == Some(48), "{rec:?}");
            assert_eq!(w.blocks.load(Ordering::Relaxed), 1);
        });
    }

    /// Two clears one after the other (a second tracker's `clear`, or the same one
    /// again) with a realloc between or around them.
    #[test]
    fn two_clears_and_a_realloc() {
        loom::model(|| {
            let w = world();
            let w2 = w.clone();
            let t = thread::spawn(move || realloc(&w2, 32));
            clear(&w);
            clear(&w);
            t.join().unwrap();
            assert_eq!(*w.shard.lock().unwrap(), None);
            assert_eq!(w.blocks.load(Ordering::Relaxed), 0);
        });
    }
}
