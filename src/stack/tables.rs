//! The default stack walk: the binary's own unwind tables (`.eh_frame`, indexed by
//! `.eh_frame_hdr`), read in place in this process's memory and interpreted by `framehop`.
//!
//! * Modules come from `dl_iterate_phdr`: each loaded object's executable segments and its
//!   `PT_GNU_EH_FRAME` segment. The list is built under the reentrancy guard (it
//!   allocates), by one thread at a time (a `try_lock`: a thread that finds another one
//!   building walks with the list it has), and replaced whole: a walk in progress keeps
//!   using the list it started with. Old lists are never freed (one per `dlopen`/`dlclose`
//!   seen, a few hundred bytes each), so no walk can read a freed one. The list is read
//!   again when a return address falls outside every known module and the loader's
//!   add/remove counters (`dlpi_adds`, `dlpi_subs`) have changed.
//! * Unwind rules are cached per address in `framehop` caches: a small pool, each cache
//!   behind a `try_lock`, so a thread never waits for another (and a fork child whose
//!   parent had one locked uses another). No cache free: the system unwinder walks.
//! * Every stack read is of an aligned word between the walk's own stack pointer and the
//!   top of the thread's stack; nothing is allocated during the walk.
//! * The walk reports whether it reached the outermost frame (the unwind tables mark the
//!   thread's entry as the end); a walk that stops anywhere else before its depth is
//!   reported as incomplete, and the caller walks again with the system unwinder.

use std::ops::Deref;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind};
// framehop walks without allocating (`MustNotAllocateDuringUnwind`: its rule evaluation
// uses fixed arrays), so it can run on the allocator path; only module registration and
// the caches allocate, under the reentrancy guard, never under a table lock.
use framehop::Unwinder as _;

use super::marker::{Frame, Watch};

/// Bytes of a section as the loader mapped them (never unmapped while the object is loaded).
#[derive(Clone, Copy)]
pub(super) struct Mapped {
    ptr: *const u8,
    len: usize,
}

impl Default for Mapped {
    fn default() -> Mapped {
        Mapped {
            ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
            len: 0,
        }
    }
}

// SAFETY: `Mapped` is a read-only view of loaded, immutable section bytes.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` lies inside a `PT_LOAD` segment of a loaded object (checked
        // when the module was registered); the loader maps it readable for the object's life.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

type Tables = UnwinderX86_64<Mapped, MustNotAllocateDuringUnwind>;
type RuleCache = CacheX86_64<MustNotAllocateDuringUnwind>;

/// One snapshot of the loaded modules.
struct Modules {
    unwinder: Tables,
    /// Executable address ranges of the modules, sorted.
    ranges: Vec<(usize, usize)>,
    /// `dlpi_adds` and `dlpi_subs` when the list was read.
    adds: u64,
    subs: u64,
}

static MODULES: AtomicPtr<Modules> = AtomicPtr::new(std::ptr::null_mut());
/// Held (by `try_lock` only) while a thread builds a new module list.
static BUILDING: spin::Mutex<()> = spin::Mutex::new(());
/// Module lists built so far (1 at start-up, one more per change of the loaded objects).
pub(super) static MODULE_LOADS: AtomicU64 = AtomicU64::new(0);

/// A found module, before registration: (exec range, bias, eh_frame_hdr, eh_frame).
#[derive(Clone, Copy, Default)]
struct Found {
    start: usize,
    end: usize,
    bias: usize,
    hdr: usize,
    hdr_len: usize,
    eh: usize,
    eh_len: usize,
}

const MAX_MODULES: usize = 256;

struct Scan {
    found: [Found; MAX_MODULES],
    n: usize,
    adds: u64,
    subs: u64,
}

/// Reads an encoded pointer of `.eh_frame_hdr` (the encodings linkers write there).
///
/// # Safety
/// * `p..p + 8` must be readable.
unsafe fn read_encoded(p: usize, enc: u8) -> Option<usize> {
    // SAFETY: the caller guarantees 8 readable bytes at `p`; reads are unaligned.
    let (v, _len) = unsafe {
        match enc & 0x0f {
            0x03 => (((p as *const u32).read_unaligned()) as usize, 4),
            0x0b => (((p as *const i32).read_unaligned()) as isize as usize, 4),
            0x04 | 0x0c => (((p as *const u64).read_unaligned()) as usize, 8),
            _ => return None,
        }
    };
    match enc & 0x70 {
        0x00 => Some(v),
        0x10 => Some(p.wrapping_add(v)),
        _ => None,
    }
}

unsafe extern "C" fn scan_one(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: `data` is the `Scan` passed to `dl_iterate_phdr` below; `info` is valid for
    // this call (dl_iterate_phdr's contract).
    let (scan, info) = unsafe { (&mut *data.cast::<Scan>(), &*info) };
    scan.adds = info.dlpi_adds;
    scan.subs = info.dlpi_subs;
    if scan.n == MAX_MODULES || info.dlpi_phdr.is_null() {
        return 0;
    }
    let bias = info.dlpi_addr as usize;
    // SAFETY: the loader gives `dlpi_phnum` program headers at `dlpi_phdr`.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let mut f = Found {
        start: usize::MAX,
        bias,
        ..Found::default()
    };
    for ph in phdrs {
        let lo = bias.wrapping_add(ph.p_vaddr as usize);
        let hi = lo.wrapping_add(ph.p_memsz as usize);
        if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0 {
            f.start = f.start.min(lo);
            f.end = f.end.max(hi);
        }
        if ph.p_type == libc::PT_GNU_EH_FRAME {
            f.hdr = lo;
            f.hdr_len = ph.p_memsz as usize;
        }
    }
    if f.start >= f.end || f.hdr == 0 || f.hdr_len < 12 {
        return 0;
    }
    // The header: version, eh_frame_ptr encoding, fde_count encoding, table encoding, then
    // the encoded address of .eh_frame.
    // SAFETY: the segment is mapped and at least 12 bytes long.
    let (version, enc) = unsafe { (*(f.hdr as *const u8), *((f.hdr + 1) as *const u8)) };
    // SAFETY: as above: bytes 4..12 are inside the segment.
    let eh = match (version, unsafe { read_encoded(f.hdr + 4, enc) }) {
        (1, Some(eh)) => eh,
        _ => return 0,
    };
    // .eh_frame runs to the end of the loaded segment that holds it at most.
    for ph in phdrs {
        let lo = bias.wrapping_add(ph.p_vaddr as usize);
        let hi = lo.wrapping_add(ph.p_memsz as usize);
        if ph.p_type == libc::PT_LOAD && (lo..hi).contains(&eh) {
            f.eh = eh;
            f.eh_len = hi - eh;
        }
    }
    if f.eh == 0 {
        return 0;
    }
    scan.found[scan.n] = f;
    scan.n += 1;
    0
}

/// Builds and publishes a new module list (the caller holds the reentrancy guard).
fn load_modules() {
    let Some(_b) = BUILDING.try_lock() else {
        return;
    };
    let mut scan = Box::new(Scan {
        found: [Found::default(); MAX_MODULES],
        n: 0,
        adds: 0,
        subs: 0,
    });
    // SAFETY: `scan_one` matches dl_iterate_phdr's callback contract and only writes the
    // `Scan` it is given, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(scan_one), std::ptr::addr_of_mut!(*scan).cast()) };
    let mut unwinder = Tables::new();
    let mut ranges = Vec::with_capacity(scan.n);
    for f in &scan.found[..scan.n] {
        let svma = |a: usize, len: usize| (a - f.bias) as u64..(a - f.bias + len) as u64;
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: Some(svma(f.start, f.end - f.start)),
            eh_frame_svma: Some(svma(f.eh, f.eh_len)),
            eh_frame: Some(Mapped {
                ptr: f.eh as *const u8,
                len: f.eh_len,
            }),
            eh_frame_hdr_svma: Some(svma(f.hdr, f.hdr_len)),
            eh_frame_hdr: Some(Mapped {
                ptr: f.hdr as *const u8,
                len: f.hdr_len,
            }),
            ..Default::default()
        };
        unwinder.add_module(Module::new(
            String::new(),
            f.start as u64..f.end as u64,
            f.bias as u64,
            info,
        ));
        ranges.push((f.start, f.end));
    }
    ranges.sort_unstable();
    let new = Box::into_raw(Box::new(Modules {
        unwinder,
        ranges,
        adds: scan.adds,
        subs: scan.subs,
    }));
    // The old list is left allocated: walks that started with it may still read it.
    MODULES.store(new, Ordering::Release);
    MODULE_LOADS.fetch_add(1, Ordering::Relaxed);
}

fn modules() -> Option<&'static Modules> {
    let mut p = MODULES.load(Ordering::Acquire);
    if p.is_null() {
        load_modules();
        p = MODULES.load(Ordering::Acquire);
    }
    // SAFETY: published lists are never freed or changed after publication.
    (!p.is_null()).then(|| unsafe { &*p })
}

impl Modules {
    /// The executable range of the module holding `addr`.
    fn module_of(&self, addr: usize) -> Option<(usize, usize)> {
        let i = self.ranges.partition_point(|r| r.0 <= addr);
        (i > 0 && addr < self.ranges[i - 1].1).then(|| self.ranges[i - 1])
    }
}

const CACHE_SLOTS: usize = 8;
/// framehop caches per slot. One framehop cache holds 509 rules, direct-mapped by address:
/// too few for a service, whose stacks run through thousands of distinct return addresses
/// (a miss costs a search of `.eh_frame_hdr` and a CFI evaluation, about 50 times a hit).
/// A slot spreads addresses over `WAYS` caches by the bits above the cache's own index,
/// so that it holds `WAYS` × 509 rules.
const WAYS: usize = 16;
static CACHES: [spin::Mutex<Option<Box<[RuleCache]>>>; CACHE_SLOTS] =
    [const { spin::Mutex::new(None) }; CACHE_SLOTS];

/// The caches of a slot, built one by one on the heap: a thread's stack may be small, and
/// a slot is first needed on the allocator path of whichever thread walks first.
fn new_ways() -> Box<[RuleCache]> {
    let mut ways = Vec::with_capacity(WAYS);
    for _ in 0..WAYS {
        ways.push(RuleCache::new_in());
    }
    ways.into_boxed_slice()
}

/// The rule cache for `addr` (a frame address as framehop looks it up).
#[inline]
fn way(ways: &mut [RuleCache], addr: FrameAddress) -> &mut RuleCache {
    let a = addr.address_for_lookup();
    &mut ways[((a / 509) % WAYS as u64) as usize]
}

thread_local! {
    /// The cache slot this thread tried first last time (const, no destructor).
    static SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// How a table walk ended.
pub(super) struct Walked {
    pub(super) frames: usize,
    /// The walk reached the outermost frame, or filled `out`.
    pub(super) complete: bool,
}

/// Fills `out` with the return addresses of the calling thread's stack, innermost first,
/// starting with the return address out of this function's caller (this function's and
/// its caller's own frames are not included). `None` when no rule cache or module list
/// is free: the caller walks with the system unwinder.
#[inline(never)]
pub(super) fn walk(out: &mut [super::Slot]) -> Option<Walked> {
    let (pc, sp, bp): (usize, usize, usize);
    // SAFETY: reads the instruction pointer, stack pointer and frame pointer; no memory
    // access, no stack use.
    unsafe {
        std::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags)
        );
    }
    let top = super::fp::stack_top()?;
    let mods = modules()?;
    let hint = SLOT.try_with(std::cell::Cell::get).unwrap_or(usize::MAX);
    let first = if hint == usize::MAX {
        (sp >> 12) % CACHE_SLOTS
    } else {
        hint
    };
    let mut slot = None;
    for k in 0..CACHE_SLOTS {
        let i = (first + k) % CACHE_SLOTS;
        if let Some(g) = CACHES[i].try_lock() {
            let _ = SLOT.try_with(|c| c.set(i));
            slot = Some(g);
            break;
        }
    }
    let mut guard = slot?;
    let ways = guard.get_or_insert_with(new_ways);
    let mut read = |addr: u64| -> Result<u64, ()> {
        let a = addr as usize;
        if a < sp || !a.is_multiple_of(8) || a.checked_add(8).is_none_or(|e| e > top) {
            return Err(());
        }
        // SAFETY: `sp <= a`, `a + 8 <= top`, aligned: a word of this thread's live stack.
        Ok(unsafe { (a as *const u64).read_volatile() })
    };
    let mut regs = UnwindRegsX86_64::new(pc as u64, sp as u64, bp as u64);
    let mut addr = FrameAddress::from_instruction_pointer(pc as u64);
    let mut n = 0;
    // Frames skipped: this function's own, and its caller's.
    let mut skip = 1;
    let mut recheck = true;
    // The module of the last return address: most frames are in the same one as their
    // caller's, so this spares the search of the module list.
    let mut last_module = (0usize, 0usize);
    let mut watch = Watch::new(sp, top);
    loop {
        if n == out.len() {
            return Some(Walked {
                frames: n,
                complete: true,
            });
        }
        match mods
            .unwinder
            .unwind_frame(addr, &mut regs, way(ways, addr), &mut read)
        {
            Ok(Some(ret)) => {
                let Some(next) = FrameAddress::from_return_address(ret) else {
                    return Some(Walked {
                        frames: n,
                        complete: false,
                    });
                };
                let r = ret as usize;
                let mut known = || {
                    let a = r - 1;
                    if (last_module.0..last_module.1).contains(&a) {
                        return true;
                    }
                    match mods.module_of(a) {
                        Some(m) => {
                            last_module = m;
                            true
                        }
                        None => false,
                    }
                };
                if recheck && !known() {
                    // Code outside every known module: a library loaded since the list was
                    // read? Read it again (once per walk) if the loader says so; this walk
                    // goes on with the old list (framehop tries frame pointers there).
                    recheck = false;
                    let (adds, subs) = super::symbols::loader_counters();
                    if (adds, subs) != (mods.adds, mods.subs) {
                        load_modules();
                    }
                }
                let caller_sp = regs.sp() as usize;
                let frame = if caller_sp >= watch.limit {
                    watch.ask(caller_sp, r)
                } else {
                    Frame::Go
                };
                if frame == Frame::Cut {
                    // The caller is outside the instrumented `poll` running: the
                    // executor's frames.
                    return Some(Walked {
                        frames: n,
                        complete: true,
                    });
                }
                if skip > 0 {
                    skip -= 1;
                } else {
                    out[n] = super::Slot::new(r);
                    n += 1;
                    if frame == Frame::Last {
                        // Into std's short-backtrace marker: the runtime's frames.
                        return Some(Walked {
                            frames: n,
                            complete: true,
                        });
                    }
                }
                addr = next;
            }
            Ok(None) => {
                return Some(Walked {
                    frames: n,
                    complete: true,
                })
            }
            Err(_) => {
                return Some(Walked {
                    frames: n,
                    complete: false,
                })
            }
        }
    }
}

/// Checks links of a frame-pointer walk against the unwind tables: for each `i` in
/// `from..to` (with `i + 1 < ips.len()`), the caller of the code at return address
/// `ips[i]`, by the rule the tables give for it, must be `ips[i + 1]`. `recs[i]` is the
/// frame record `ips[i]` was read from, so that code's stack pointer is `recs[i] + 16` and
/// its frame pointer the word at `recs[i]` (`recs[i + 1]`). A function without a frame
/// pointer keeps its caller's record in place: the chain then skips that caller, and
/// the tables, which know the function's frame size, name a different one. `Some(false)`
/// when a link disagrees; `None` when the check cannot be made (no free rule cache or
/// module list, no rule for an address): the walk is taken as it is.
pub(super) fn fp_links_agree(
    ips: &[usize],
    recs: &[usize],
    from: usize,
    to: usize,
) -> Option<bool> {
    let marker = 0u8;
    let low = std::ptr::addr_of!(marker) as usize;
    let top = super::fp::stack_top()?;
    let mods = modules()?;
    let mut guard = CACHES.iter().find_map(|c| c.try_lock())?;
    let ways = guard.get_or_insert_with(new_ways);
    let mut read = |addr: u64| -> Result<u64, ()> {
        let a = addr as usize;
        if a < low || !a.is_multiple_of(8) || a.checked_add(8).is_none_or(|e| e > top) {
            return Err(());
        }
        // SAFETY: `low <= a`, `a + 8 <= top`, aligned: a word of this thread's live stack
        // (the records of a frame-pointer walk lie above this function's frame).
        Ok(unsafe { (a as *const u64).read_volatile() })
    };
    for i in from..to
        .min(ips.len().saturating_sub(1))
        .min(recs.len().saturating_sub(1))
    {
        let ret = ips[i] as u64;
        let addr = FrameAddress::from_return_address(ret)?;
        let mut regs = UnwindRegsX86_64::new(ret, recs[i] as u64 + 16, recs[i + 1] as u64);
        match mods
            .unwinder
            .unwind_frame(addr, &mut regs, way(ways, addr), &mut read)
        {
            Ok(Some(caller)) if caller as usize == ips[i + 1] => {}
            Ok(Some(_)) => return Some(false),
            Ok(None) | Err(_) => return None,
        }
    }
    Some(true)
}
