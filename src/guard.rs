//! Per-thread state: the current tag, the tagging context and the reentrancy guard.
//!
//! The allocator's part lives in one `u64` in a const-initialised thread-local `Cell`. Such a
//! thread-local has no destructor and needs no lazy registration, so reading it never
//! allocates and still works while the thread's TLS destructors run. The allocator's
//! untagged fast path is one read of this word and one compare with zero.

use std::cell::Cell;

/// Low 32 bits: the current tag, as resource id + 1 (0 = no tag).
pub(crate) const TAG_MASK: u64 = 0xFFFF_FFFF;
/// Set while tracker code that may allocate runs: such allocations are never tagged.
pub(crate) const REENTRANT: u64 = 1 << 32;
/// Set by `is_installed` around its probe allocation.
pub(crate) const PROBE: u64 = 1 << 33;
/// Set by the allocator when it sees an allocation made with `PROBE` set.
pub(crate) const PROBE_SEEN: u64 = 1 << 34;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0) };
    /// The tagging context the thread runs in: 0 is the thread's own; while an
    /// instrumented future is polled (or dropped), that future's context id. A scope guard
    /// belongs to the context it was opened in. Never read by the allocator.
    static CONTEXT: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's state word.
#[inline(always)]
pub(crate) fn state() -> u64 {
    STATE.with(Cell::get)
}

#[inline(always)]
fn set_state(v: u64) {
    STATE.with(|s| s.set(v));
}

/// The resource id encoded in a state word.
#[inline(always)]
pub(crate) fn tag_of(st: u64) -> Option<u32> {
    match st & TAG_MASK {
        0 => None,
        t => Some((t - 1) as u32),
    }
}

/// Replaces the current tag and returns the previous one.
#[inline]
pub(crate) fn swap_tag(tag: Option<u32>) -> Option<u32> {
    let st = state();
    let enc = tag.map_or(0, |t| u64::from(t) + 1);
    set_state((st & !TAG_MASK) | enc);
    tag_of(st)
}

/// The tagging context the thread runs in (0: its own, else an instrumented future's).
#[inline]
pub(crate) fn context() -> u32 {
    CONTEXT.with(Cell::get)
}

/// Makes `tag` the current tag and `ctx` the current context; returns the previous ones.
#[inline]
pub(crate) fn switch_context(tag: Option<u32>, ctx: u32) -> (Option<u32>, u32) {
    let prev_ctx = CONTEXT.with(|c| c.replace(ctx));
    (swap_tag(tag), prev_ctx)
}

/// Marks the allocator as seen by the probe (called from the allocator path).
#[inline]
pub(crate) fn mark_probe_seen(st: u64) {
    set_state(st | PROBE_SEEN);
}

/// Starts a probe; returns the previous state word for [`end_probe`].
pub(crate) fn begin_probe() -> u64 {
    let st = state();
    set_state((st | PROBE) & !PROBE_SEEN);
    st
}

/// Ends a probe and tells whether the allocator saw it.
pub(crate) fn end_probe(prev: u64) -> bool {
    let seen = state() & PROBE_SEEN != 0;
    set_state(prev);
    seen
}

/// While alive, allocations of this thread are not tagged (the tracker's own names,
/// reports, backtraces). Nested guards are fine: each restores what it found.
pub(crate) struct Reentrancy {
    was_set: bool,
}

impl Reentrancy {
    /// Enters the guard (always succeeds; nested entries are no-ops on exit).
    #[inline]
    pub(crate) fn enter() -> Reentrancy {
        let st = state();
        set_state(st | REENTRANT);
        Reentrancy {
            was_set: st & REENTRANT != 0,
        }
    }
}

impl Drop for Reentrancy {
    #[inline]
    fn drop(&mut self) {
        if !self.was_set {
            set_state(state() & !REENTRANT);
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
        let st = state();
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
            set_state(state() | REENTRANT);
        }
    }
}
