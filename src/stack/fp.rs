//! The frame-pointer walk (`LEAKTRACKER_UNWIND=frame-pointers`), and the thread's stack
//! bounds that every walk reads within.

use std::cell::Cell;

use super::marker::{Frame, Watch};

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

/// Fills `ips` with the return addresses of the frame-pointer chain, innermost first,
/// from the return address out of this function's caller (entry address `caller`), and
/// `recs` (as long as `ips`) with the address of the frame record each was read from;
/// the number written and whether the walk ended at std's short-backtrace marker (see
/// `marker`), or `None` when the stack's bounds are unknown.
///
/// Every read is of a word between a local of this function (the stack pointer, near
/// enough) and the top of the thread's stack, which is mapped memory; each frame must
/// lie above the one before it, so the walk ends.
#[inline(never)]
pub(super) fn walk(
    ips: &mut [super::Slot],
    recs: &mut [super::Slot],
    caller: usize,
) -> Option<(usize, bool)> {
    let top = stack_top()?;
    let marker = 0u8;
    let low = std::ptr::addr_of!(marker) as usize;
    let mut fp = frame_pointer();
    let mut n = 0;
    // Return addresses into the caller (`capture`, whose entry is `caller`) are not kept;
    // they lead the chain unless the caller was built without a frame pointer.
    let mut skip = true;
    let mut watch = Watch::new(low, top);
    while n < ips.len().min(recs.len()) {
        let inside = fp >= low && fp.checked_add(16).is_some_and(|end| end <= top);
        if !inside || !fp.is_multiple_of(std::mem::align_of::<usize>()) {
            break;
        }
        // SAFETY: `low <= fp`, `fp + 16 <= top` and `fp` is word-aligned: both words lie in
        // the live part of this thread's stack.
        let (next, ret) = unsafe {
            (
                (fp as *const usize).read_volatile(),
                ((fp + 8) as *const usize).read_volatile(),
            )
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
        if skip && ret.wrapping_sub(caller) < 4096 {
            skip = false;
        } else {
            skip = false;
            ips[n] = super::Slot::new(ret);
            recs[n] = super::Slot::new(fp);
            n += 1;
            if frame == Frame::Last {
                // Into std's short-backtrace marker: the runtime's frames.
                return Some((n, true));
            }
        }
        if next <= fp {
            break;
        }
        fp = next;
    }
    Some((n, false))
}
