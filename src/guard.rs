//! Per-thread state: the current tag, the tagging context and the reentrancy guard.
//!
//! The allocator's part lives in one `u64` in a const-initialised thread-local `Cell`. Such a
//! thread-local has no destructor and needs no lazy registration, so reading it never
//! allocates and still works while the thread's TLS destructors run. The allocator's
//! untagged fast path is one read of this word and one compare with zero.

use std::cell::Cell;
use std::marker::PhantomData;

/// Low 32 bits: the current tag, as resource id + 1 (0 = no tag).
const TAG_MASK: u64 = 0xFFFF_FFFF;
/// Set while tracker code that may allocate runs: such allocations are never tagged.
const REENTRANT: u64 = 1 << 32;
/// Set by `is_installed` around its probe allocation.
const PROBE: u64 = 1 << 33;
/// Set by the allocator when it sees an allocation made with `PROBE` set.
const PROBE_SEEN: u64 = 1 << 34;

/// A copy of the calling thread's state word: its tag and its flags.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct State(u64);

impl State {
    /// No tag and no flag: the allocator has nothing to do.
    #[inline(always)]
    pub(crate) fn is_plain(self) -> bool {
        self.0 == 0
    }

    /// Tracker code that may allocate is running: its allocations are not tagged.
    #[inline(always)]
    pub(crate) fn is_reentrant(self) -> bool {
        self.0 & REENTRANT != 0
    }

    /// `is_installed` is probing the allocator.
    #[inline(always)]
    pub(crate) fn is_probing(self) -> bool {
        self.0 & PROBE != 0
    }

    /// The tag's number (as `scope.rs` wrote it), if there is a tag.
    #[inline(always)]
    pub(crate) fn tag(self) -> Option<u32> {
        match self.0 & TAG_MASK {
            0 => None,
            t => Some((t - 1) as u32),
        }
    }
}

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0) };
    /// The tagging context the thread runs in: 0 is the thread's own; while an
    /// instrumented future is polled (or dropped), that future's context id. A scope guard
    /// belongs to the context it was opened in. Never read by the allocator.
    static CONTEXT: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's state word.
#[inline(always)]
pub(crate) fn state() -> State {
    State(STATE.with(Cell::get))
}

#[inline(always)]
fn word() -> u64 {
    STATE.with(Cell::get)
}

#[inline(always)]
fn set_state(v: u64) {
    STATE.with(|s| s.set(v));
}

/// Replaces the current tag and returns the previous one.
///
/// # Safety
/// * `tag` must be the `raw()` of a `ResourceId` (the allocator turns the tag word back
///   into one and reads its hot slot), and the tag word must own a hold on it (see
///   `scope.rs`, the only caller).
#[inline]
pub(crate) unsafe fn swap_tag(tag: Option<u32>) -> Option<u32> {
    let st = word();
    let enc = tag.map_or(0, |t| u64::from(t) + 1);
    set_state((st & !TAG_MASK) | enc);
    State(st).tag()
}

/// The tagging context the thread runs in (0: its own, else an instrumented future's).
#[inline]
pub(crate) fn context() -> u32 {
    CONTEXT.with(Cell::get)
}

/// Makes `tag` the current tag and `ctx` the current context; returns the previous ones.
///
/// # Safety
/// * As for [`swap_tag`].
#[inline]
pub(crate) unsafe fn switch_context(tag: Option<u32>, ctx: u32) -> (Option<u32>, u32) {
    let prev_ctx = CONTEXT.with(|c| c.replace(ctx));
    // SAFETY: the caller keeps `swap_tag`'s contract for `tag`.
    (unsafe { swap_tag(tag) }, prev_ctx)
}

/// Marks the allocator as seen by the probe (called from the allocator path).
#[inline]
pub(crate) fn mark_probe_seen() {
    set_state(word() | PROBE_SEEN);
}

/// Starts a probe; returns the previous state for [`end_probe`].
pub(crate) fn begin_probe() -> State {
    let st = word();
    set_state((st | PROBE) & !PROBE_SEEN);
    State(st)
}

/// Ends a probe and tells whether the allocator saw it.
pub(crate) fn end_probe(prev: State) -> bool {
    let seen = word() & PROBE_SEEN != 0;
    set_state(prev.0);
    seen
}

/// While alive, allocations of this thread are not tagged (the tracker's own names,
/// reports, backtraces). Nested guards are fine: each restores what it found.
///
/// It is also the proof that the flag is set: the tracker-side functions that allocate
/// (snapshots, stack groups, symbolisation, report building, labels, paths) take a
/// `&Reentrancy`, so they cannot be called without one alive on this thread — the public
/// entry points enter it once and pass it down. `!Send` and `!Sync`: the flag is the
/// thread's, and a reference to the guard cannot reach another thread.
pub(crate) struct Reentrancy {
    was_set: bool,
    _thread_bound: PhantomData<*const ()>,
}

impl Reentrancy {
    /// Enters the guard (always succeeds; nested entries are no-ops on exit).
    #[inline]
    pub(crate) fn enter() -> Reentrancy {
        let st = word();
        set_state(st | REENTRANT);
        Reentrancy {
            was_set: st & REENTRANT != 0,
            _thread_bound: PhantomData,
        }
    }
}

impl Drop for Reentrancy {
    #[inline]
    fn drop(&mut self) {
        if !self.was_set {
            set_state(word() & !REENTRANT);
        }
    }
}

/// While alive, the reentrancy flag is lifted: this thread's allocations are tagged again.
/// Only for the allocator-path calibration (`stack::trim`), whose one allocation must be
/// tagged and captured even when tracker code (start-up, `ExitReport::install`) switched
/// capture on under a guard. Restores the flag as it found it.
pub(crate) struct Unguarded {
    was_set: bool,
}

impl Unguarded {
    #[inline]
    pub(crate) fn enter() -> Unguarded {
        let st = word();
        set_state(st & !REENTRANT);
        Unguarded {
            was_set: st & REENTRANT != 0,
        }
    }
}

impl Drop for Unguarded {
    #[inline]
    fn drop(&mut self) {
        if self.was_set {
            set_state(word() | REENTRANT);
        }
    }
}
