//! Where the user's stack begins: the return addresses of the allocator's own path,
//! learnt by address once per process.
//!
//! Every walk starts with the return address out of `capture`. On the allocator path the
//! next frames are always the same code: `alloc_flagged`, the `GlobalAlloc` method (inlined
//! or not), the `__rg_alloc` / `__rust_alloc` shims (as the build inlined or tail-called
//! them). Their return addresses are fixed, whatever the build profile, so they are learnt
//! by allocating from two known call sites (`site_a`, `site_b`) at start-up and taking
//! the return addresses the two stacks share before they reach those sites. A captured
//! stack then drops its leading frames while they are in that set: no names, no debug
//! info needed. (The set may also hold the return address inside `alloc::alloc::alloc`
//! when a build does not inline it; that frame is allocation machinery either way.)

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::guard;

/// Most return addresses learnt per allocation entry point.
const MAX_PATH: usize = 12;
/// The learnt set: `alloc` path then `alloc_zeroed` path.
static PATH: [AtomicUsize; 2 * MAX_PATH] = [const { AtomicUsize::new(0) }; 2 * MAX_PATH];
static PATH_LEN: AtomicUsize = AtomicUsize::new(0);

const UNLEARNT: u8 = 0;
const LEARNING: u8 = 1;
const LEARNT: u8 = 2;
const FAILED: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(UNLEARNT);

/// Frames a learning capture records (enough to reach past the call sites).
pub(super) const LEARN_DEPTH: usize = 48;

pub(super) struct Sample {
    pub(super) ips: [usize; LEARN_DEPTH],
    pub(super) n: usize,
}

thread_local! {
    /// Set while this thread learns: `capture` copies its raw walk here instead of storing.
    static SAMPLE: Cell<*mut Sample> = const { Cell::new(std::ptr::null_mut()) };
}

/// The sample buffer of a learning capture on this thread, if one is learning.
pub(super) fn sample() -> Option<&'static mut Sample> {
    let p = SAMPLE.try_with(Cell::get).ok()?;
    // SAFETY: non-null only between `learn_at`'s set and reset, while its `Sample` lives on
    // that function's stack, on this thread, and only `capture` (nested in it) uses it.
    (!p.is_null()).then(|| unsafe { &mut *p })
}

/// Whether learning the allocator path failed (stacks then keep those frames, and
/// resolution drops them by name only).
pub(super) fn failed() -> bool {
    STATE.load(Ordering::Acquire) == FAILED
}

/// Learns the allocator path once, if not yet learnt. Runs from code outside the
/// allocator path with no tracker lock held: user code, or tracker code that switches
/// capture on under a reentrancy guard (start-up reading `LEAKTRACKER_BACKTRACE`,
/// `ExitReport::install`). The guard is lifted around the two learning allocations, which
/// must be tagged and captured: were learning left to a later call, a program whose
/// capture is switched on only there would never learn, and its stacks would keep the
/// allocator's frames (trimmed by name only, which in a build without debug info also
/// drops user code inlined into leaktracker's or core's frames).
///
/// `in_scope` runs the learning inside a scope of the tracker's own that captures every
/// stack, and returns what it returned (`tracker.rs` gives it, so that this module does not
/// depend on the tracker).
pub(crate) fn ensure_learnt(in_scope: fn(&mut dyn FnMut() -> bool) -> bool) {
    if STATE.load(Ordering::Acquire) != UNLEARNT {
        return;
    }
    if STATE
        .compare_exchange(UNLEARNT, LEARNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let ok = in_scope(&mut learn);
    STATE.store(if ok { LEARNT } else { FAILED }, Ordering::Release);
}

/// The learning itself; runs inside `ensure_learnt`'s scope.
fn learn() -> bool {
    let mut len = 0;
    for zeroed in [false, true] {
        let a = site_a(zeroed);
        let b = site_b(zeroed);
        let (Some(a), Some(b)) = (a, b) else {
            return false;
        };
        let k = a
            .ips
            .iter()
            .zip(b.ips.iter())
            .take(a.n.min(b.n))
            .take_while(|(x, y)| x == y)
            .count();
        // The frame after the shared ones must return into `site_a` itself.
        let entry = site_a as fn(bool) -> Option<Box<Sample>> as usize;
        let next = a.ips.get(k).copied().unwrap_or(0);
        if k == 0 || k > MAX_PATH || !(entry < next && next < entry + 1024) {
            return false;
        }
        for &ip in &a.ips[..k] {
            PATH[len].store(ip, Ordering::Relaxed);
            len += 1;
        }
    }
    PATH_LEN.store(len, Ordering::Release);
    true
}

#[inline(never)]
fn site_a(zeroed: bool) -> Option<Box<Sample>> {
    black_box(learn_at(black_box(zeroed)))
}

#[inline(never)]
fn site_b(zeroed: bool) -> Option<Box<Sample>> {
    black_box(learn_at(black_box(zeroed)))
}

/// One learning allocation from its caller's call site.
#[inline(always)]
fn learn_at(zeroed: bool) -> Option<Box<Sample>> {
    let mut s = Box::new(Sample {
        ips: [0; LEARN_DEPTH],
        n: 0,
    });
    let p: *mut Sample = &mut *s;
    SAMPLE.try_with(|c| c.set(p)).ok()?;
    let layout = std::alloc::Layout::new::<u64>();
    let block = {
        // Tagged (by the calibration scope) and captured even under a guard.
        let _u = guard::Unguarded::enter();
        // SAFETY: a non-zero-sized layout; the block is freed below with the same layout.
        unsafe {
            if zeroed {
                std::alloc::alloc_zeroed(layout)
            } else {
                std::alloc::alloc(layout)
            }
        }
    };
    let _ = SAMPLE.try_with(|c| c.set(std::ptr::null_mut()));
    if block.is_null() {
        return None;
    }
    // SAFETY: allocated above with `layout`.
    unsafe { std::alloc::dealloc(black_box(block), layout) };
    (s.n > 0).then_some(s)
}

/// How many leading frames of a raw walk are the allocator's own path.
#[inline]
pub(super) fn leading_own(ips: &[usize]) -> usize {
    let len = PATH_LEN.load(Ordering::Acquire);
    let mut k = 0;
    while k < ips.len()
        && PATH[..len]
            .iter()
            .any(|p| p.load(Ordering::Relaxed) == ips[k])
    {
        k += 1;
    }
    k
}

/// Frames of the allocator's own path (at most), for sizing walks.
pub(super) fn path_len() -> usize {
    PATH_LEN.load(Ordering::Relaxed)
}
