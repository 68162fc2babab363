//! The frame-pointer walk (`LEAKTRACKER_UNWIND=frame-pointers`), and the thread's stack
//! bounds that every walk reads within.

use std::cell::Cell;

use super::marker::{Frame, Watch};
use super::Walk;

thread_local! {
    // The top (highest address) of this thread's stack; 0 until first needed.
    // Const-initialised, no destructor: usable from the allocator at any time.
    static STACK_TOP: Cell<usize> = const { Cell::new(0) };
}

/// The top of the calling thread's stack, or `None` if the system does not say.
pub(super) fn stack_top() -> Option<usize> {
    let cached = STACK_TOP.try_with(Cell::get).ok()?;
    if cached != 0 {
        return Some(cached);
    }
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read and
    // destroyed once; the out-pointers are valid locals. (For the main thread glibc
    // reads /proc/self/maps and may allocate: the caller holds the reentrancy guard.)
    let top = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let r = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if r != 0 || addr.is_null() {
            return None;
        }
        addr as usize + size
    };
    let _ = STACK_TOP.try_with(|c| c.set(top));
    Some(top)
}

/// The caller's frame pointer.
#[inline(always)]
fn frame_pointer() -> usize {
    let fp: usize;
    // SAFETY: reads a register; no memory access, no stack use.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
        #[cfg(target_arch = "aarch64")]
        std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    fp
}

/// The two words of the frame record at `fp` (the caller's frame pointer, the return
/// address), if the record lies on the live stack: at or above `low` (a local of the walk
/// that reads it, whose callers' records are all above it) and ending at or below the
/// stack's top, whose last record starts at `last` (`top - 16`); `fp` word-aligned.
#[inline(always)]
fn read_record(fp: usize, low: usize, last: usize) -> Option<(usize, usize)> {
    if fp < low || fp > last || !fp.is_multiple_of(std::mem::align_of::<usize>()) {
        return None;
    }
    // SAFETY: `low <= fp`, `fp + 16 <= top` and `fp` is word-aligned: both words lie in the
    // live part of this thread's stack.
    Some(unsafe {
        (
            (fp as *const usize).read_volatile(),
            ((fp + 8) as *const usize).read_volatile(),
        )
    })
}

/// Fills `ips` with the return addresses of the frame-pointer chain, innermost first,
/// from the return address out of this function's caller (entry address `caller`); `None`
/// when the stack's bounds are unknown.
///
/// Every read is of a word between a local of this function (the stack pointer, near
/// enough) and the top of the thread's stack, which is mapped memory; each frame must
/// lie above the one before it, so the walk ends. Only the first record's address is
/// kept: the frame-pointer check (`fp_gap`) needs the records only when it cannot answer
/// from its memo, and reads them again then ([`records`]).
#[inline(never)]
pub(super) fn walk(ips: &mut [super::Slot], caller: usize) -> Option<Walk> {
    let top = stack_top()?;
    let marker = 0u8;
    let low = std::ptr::addr_of!(marker) as usize;
    let mut walk = Walk::default();
    // The highest address a frame record (two words) can start at.
    let Some(last) = top.checked_sub(16) else {
        return Some(walk);
    };
    let mut fp = frame_pointer();
    // Records only go up from here, so `low` is checked once, not at every record.
    if fp < low {
        return Some(walk);
    }
    let record = |fp| read_record(fp, 0, last);
    // The first record returns into the caller (`capture`, whose entry is `caller`): not
    // kept, unless the caller was built without a frame pointer (then it is the next one's).
    let Some((next, ret)) = record(fp) else {
        return Some(walk);
    };
    if ret.wrapping_sub(caller) < 4096 {
        if next <= fp {
            return Some(walk);
        }
        fp = next;
    }
    walk.first_record = fp;
    let mut watch = Watch::new(low, top);
    let mut n = 0;
    while n < ips.len() {
        let Some((next, ret)) = record(fp) else {
            break;
        };
        // `ret` is in the caller, whose stack pointer is `fp + 16`: a caller outside the
        // instrumented `poll` running is the executor's, and one in std's marker the
        // runtime's (see `marker`).
        let frame = if fp + 16 >= watch.limit {
            watch.ask(fp + 16, ret)
        } else {
            Frame::Go
        };
        if ret == 0 || frame == Frame::Cut {
            break;
        }
        ips[n] = super::Slot::new(ret);
        n += 1;
        if n == 1 {
            walk.second_record = next;
        }
        if frame == Frame::Last {
            // Into std's short-backtrace marker: the runtime's frames.
            walk.at_marker = true;
            break;
        }
        if next <= fp {
            break;
        }
        fp = next;
    }
    walk.frames = n;
    Some(walk)
}

/// Fills `out` with the frame records of a walk, as the walk met them, and returns how
/// many: the record each return address of that walk was read from, while the walk's
/// caller's frame is still live (the records from the second on are in live frames and
/// unchanged; the first is only given, never read: it may be the walk's own frame).
#[inline(never)]
pub(super) fn records(walk: &Walk, out: &mut [super::Slot]) -> usize {
    let Some(last) = stack_top().and_then(|top| top.checked_sub(16)) else {
        return 0;
    };
    if out.is_empty() || walk.frames == 0 {
        return 0;
    }
    out[0] = super::Slot::new(walk.first_record);
    if walk.frames == 1 || out.len() == 1 || walk.second_record <= walk.first_record {
        return 1;
    }
    let marker = 0u8;
    let low = std::ptr::addr_of!(marker) as usize;
    let mut fp = walk.second_record;
    let mut n = 1;
    while n < out.len() {
        let Some((next, _)) = read_record(fp, low, last) else {
            break;
        };
        out[n] = super::Slot::new(fp);
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn walk_here(ips: &mut [super::super::Slot]) -> super::super::Walk {
        let entry = walk_here as fn(&mut [super::super::Slot]) -> super::super::Walk as usize;
        std::hint::black_box(walk(ips, entry)).expect("this thread's stack bounds")
    }

    /// The records read again from a walk's first record are the ones its return
    /// addresses came from: the word after record `i` is return address `i`.
    #[test]
    fn records_read_again_are_the_walks_records() {
        let mut ips = [super::super::Slot::uninit(); 64];
        let w = walk_here(&mut ips);
        // A debug build keeps frame pointers: the test function, and the harness up to its
        // short-backtrace marker.
        assert!(w.frames >= 2, "walked {} frames", w.frames);
        let ips = super::super::written(&ips, w.frames);
        let mut recs = [super::super::Slot::uninit(); 64];
        let k = records(&w, &mut recs[..w.frames]);
        assert_eq!(k, w.frames);
        let recs = super::super::written(&recs, k);
        assert_eq!(recs[0], w.first_record);
        for (i, (&rec, &ip)) in recs.iter().zip(ips).enumerate() {
            // SAFETY: `records` returned only records inside this thread's live stack,
            // of frames that are still live (this function's callers).
            let ret = unsafe { ((rec + 8) as *const usize).read_volatile() };
            assert_eq!(ret, ip, "record {i}");
        }
    }
}
