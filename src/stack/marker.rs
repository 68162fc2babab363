//! Where a walk can stop: std's short-backtrace marker.
//!
//! The standard library runs `main` and every thread's closure through
//! `__rust_begin_short_backtrace` (libtest runs each test through its own function of that
//! name). Every frame from there outwards is the runtime's, and reports and the verdict cut
//! every stack there (`resolve`). A walk that goes on to the end of the stack pays for six
//! to ten frames nobody reads, on every capture.
//!
//! So the walks stop at the first return address into a marker, kept as the stack's last
//! frame (the cut is still made by name, at resolution). Which addresses are markers comes
//! from the executable's symbol table, read once per process at the first walk (under the
//! reentrancy guard, which every walk runs under). Searching those ranges at every frame
//! would cost what it saves, so each thread remembers where its marker frame is: the
//! caller's stack pointer and the return address of the frame that returned into it.
//! That frame lives as long as the thread's `main` or closure runs, at the same place, so
//! later walks stop when they reach that (stack pointer, return address) pair. A frame
//! below that stack pointer costs one compare, merged with the one the task-frame stop
//! already made (`Watch::limit`). A walk that passes the remembered place without meeting it (the
//! marker returned: code after `main`, a test that ended) searches the ranges again from
//! there and remembers what it finds.
//!
//! Without a symbol table (a stripped binary) there are no ranges, and walks go to the end
//! of the stack as before.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

/// The executable's marker functions: sorted, disjoint (start, end) address ranges in
/// this process.
pub(super) struct Markers {
    ranges: Vec<(usize, usize)>,
}

impl Markers {
    /// Whether the code at `addr` is a marker function's.
    #[inline(always)]
    fn contains(&self, addr: usize) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= addr);
        i > 0 && addr < self.ranges[i - 1].1
    }

    /// How many marker functions the executable has.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ranges.len()
    }
}

const UNREAD: u8 = 0;
const READING: u8 = 1;
const READ: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNREAD);
static MARKERS: AtomicPtr<Markers> = AtomicPtr::new(std::ptr::null_mut());

/// The marker ranges, read on first use (the caller holds the reentrancy guard: reading
/// allocates). `None` while another thread reads them, or when there are none.
pub(super) fn markers() -> Option<&'static Markers> {
    if STATE.load(Ordering::Acquire) == UNREAD
        && STATE
            .compare_exchange(UNREAD, READING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        let ranges = super::symbols::marker_ranges();
        if !ranges.is_empty() {
            let m = Box::into_raw(Box::new(Markers { ranges }));
            MARKERS.store(m, Ordering::Release);
        }
        STATE.store(READ, Ordering::Release);
    }
    let p = MARKERS.load(Ordering::Acquire);
    // SAFETY: a published `Markers` is never freed or changed.
    (!p.is_null()).then(|| unsafe { &*p })
}

thread_local! {
    /// (caller's stack pointer, return address) of the frame that returns into this
    /// thread's marker, as the last walk that met it saw it; (0, 0) before that.
    pub(super) static MARK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// What a walk does with a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Frame {
    /// Keep it and go on.
    Go,
    /// Stop before it: it is outside the instrumented `poll` running (`task_frame_stop`).
    Cut,
    /// Keep it and stop: it returns into the marker.
    Last,
}

/// One walk's view of where it ends: the instrumented task's `poll` and the marker.
/// Built at the walk's start; a frame whose caller's stack pointer is below `limit` is
/// neither (one compare a frame, as the task's stop alone cost), the others are asked.
pub(super) struct Watch {
    pub(super) limit: usize,
    task_stop: usize,
    mark: (usize, usize),
    /// The ranges, once this walk has passed the remembered place (or has none).
    ranges: Option<&'static Markers>,
    searched: bool,
}

impl Watch {
    /// For a walk from stack pointer `sp` on a stack whose top is `top`.
    #[inline(always)]
    pub(super) fn new(sp: usize, top: usize) -> Watch {
        let task_stop = super::task_frame_stop(sp, top);
        // No marker in this executable: nothing to compare.
        let none =
            STATE.load(Ordering::Acquire) == READ && MARKERS.load(Ordering::Relaxed).is_null();
        let mark = if none {
            (usize::MAX, 0)
        } else {
            MARK.try_with(Cell::get).unwrap_or((usize::MAX, 0))
        };
        Watch {
            limit: mark.0.min(task_stop.saturating_add(1)),
            task_stop,
            mark,
            ranges: None,
            searched: false,
        }
    }

    /// The frame with return address `ret`, whose caller's stack pointer is `sp`
    /// (`sp >= self.limit`): outside the task, returning into the marker, or neither. The
    /// common answer, the remembered marker frame, is given here; the rest out of line.
    #[inline(always)]
    pub(super) fn ask(&mut self, sp: usize, ret: usize) -> Frame {
        if sp == self.mark.0 && ret == self.mark.1 && sp <= self.task_stop {
            return Frame::Last;
        }
        self.ask_further(sp, ret)
    }

    #[inline(never)]
    fn ask_further(&mut self, sp: usize, ret: usize) -> Frame {
        if sp > self.task_stop {
            return Frame::Cut;
        }
        if sp < self.mark.0 {
            return Frame::Go;
        }
        if sp == self.mark.0 && ret == self.mark.1 {
            return Frame::Last;
        }
        if !self.searched {
            self.searched = true;
            self.ranges = markers();
        }
        match self.ranges {
            Some(m) if m.contains(ret.wrapping_sub(1)) => {
                self.mark = (sp, ret);
                let _ = MARK.try_with(|c| c.set((sp, ret)));
                Frame::Last
            }
            _ => Frame::Go,
        }
    }
}
