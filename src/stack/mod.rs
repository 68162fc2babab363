//! Backtraces: capture as raw instruction pointers on the allocator path (no symbol work,
//! no allocation, no table lock held), deduplicate in a stack table, resolve to symbols
//! only when a report is made.
//!
//! * Capture walks the stack with the unwinder (`backtrace::trace_unsynchronized`) into a
//!   fixed array on the stack, with the reentrancy guard set, so anything the unwinder
//!   allocates is neither tagged nor captured again. No tracker lock is held while it runs.
//! * Distinct stacks are stored once, in 16 shards of append-only arenas mapped from the
//!   OS, each with an open-addressing index; a stack id names a shard and an offset.
//! * Which block has which stack is the block records' business (`records.rs`): this
//!   module hands out [`StackId`]s and resolves them.
//! * Resolution (`resolve`) runs under the reentrancy guard, holds no tracker lock, and
//!   resolves every distinct instruction pointer once.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

use crate::guard::Reentrancy;
use crate::open_table::{self, OpenTable};

mod dwarf;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod fp;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod marker;
mod symbols;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tables;
mod trim;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod fp {
    pub(super) fn walk(_: &mut [super::Slot], _: usize) -> Option<super::Walk> {
        None
    }
}

/// What a frame-pointer walk (`fp::walk`) found.
#[derive(Clone, Copy, Default)]
struct Walk {
    /// Return addresses written to the front of the output.
    frames: usize,
    /// Whether the walk ended at std's short-backtrace marker (see `marker`).
    at_marker: bool,
    /// The address of the frame record the first return address was read from (each
    /// later one was read from the record the one before it links to: see `fp::records`).
    first_record: usize,
    /// The link read from the first record (the second record's address), kept because
    /// the first record may be the walk's own frame, gone once it returns (when the
    /// return into `capture` was not recognised as such); 0 with fewer than two frames.
    second_record: usize,
}

/// Which blocks get a backtrace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backtraces {
    /// None.
    Off,
    /// Every tagged block (and every `track` call).
    All,
    /// About one block in `n`, weighted by size so that large blocks are not all skipped:
    /// a block of `s` bytes is captured with probability `min(1, (1 + s / 1024) / n)`.
    Sample(u32),
}

/// The backtrace setting of a resource or a tracker, as kept in one atomic word: inherit
/// (a tracker that follows the process-wide setting), off, all, or one block in `n`.
///
/// Words: 0 = inherit, 1 = off, 2 = all, `n + 2` = sample one in `n` (n >= 2). Every `u32`
/// is some setting, so [`Capture::from_raw`] is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capture(u32);

impl Capture {
    /// A tracker that follows the process-wide setting.
    pub(crate) const INHERIT: Capture = Capture(0);
    /// No stacks.
    pub(crate) const OFF: Capture = Capture(1);
    const ALL: Capture = Capture(2);

    /// The setting for `mode`; `None`: inherit.
    pub(crate) fn of(mode: Option<Backtraces>) -> Capture {
        match mode {
            None => Capture::INHERIT,
            Some(Backtraces::Off | Backtraces::Sample(0)) => Capture::OFF,
            Some(Backtraces::All | Backtraces::Sample(1)) => Capture::ALL,
            Some(Backtraces::Sample(n)) => Capture(n.saturating_add(2)),
        }
    }

    /// The mode; `None`: inherit.
    pub(crate) fn mode(self) -> Option<Backtraces> {
        match self {
            Capture::INHERIT => None,
            Capture::OFF => Some(Backtraces::Off),
            Capture::ALL => Some(Backtraces::All),
            Capture(n) => Some(Backtraces::Sample(n - 2)),
        }
    }

    /// The word this setting is kept in.
    #[inline(always)]
    pub(crate) const fn raw(self) -> u32 {
        self.0
    }

    /// The setting kept in word `raw`.
    #[inline(always)]
    pub(crate) fn from_raw(raw: u32) -> Capture {
        Capture(raw)
    }

    /// The capture decision for one new block of `size` bytes under this (a resource's)
    /// setting: its stack, or `None` when the setting (or the sample) says no or the stack
    /// table is out of memory. The allocator and `track` both decide here. (A resource's
    /// setting is never inherit: [`effective`] resolves it when the resource is made.)
    #[inline(always)]
    pub(crate) fn stack_for(self, size: usize) -> Option<BlockStack> {
        if self != Capture::OFF && should_capture(self, size) {
            capture()
        } else {
            None
        }
    }
}

/// How the stack of a captured block is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unwinder {
    /// The default: the binary's unwind tables (`.eh_frame`), read in place and
    /// interpreted in-process, with a per-address rule cache: complete for any build,
    /// a few ns a frame. A stack it cannot finish (code without unwind tables) is walked
    /// again by the system unwinder. On targets other than Linux x86-64 this is the same
    /// as `System`.
    Tables,
    /// The system unwinder (`_Unwind_Backtrace`), driven by the same tables: complete for
    /// any build, about 100 ns a frame (a few µs a stack).
    System,
    /// The frame-pointer chain: a few ns a frame, for programs built with
    /// `RUSTFLAGS="-C force-frame-pointers=yes"` (the standard library has frame pointers
    /// since Rust 1.79). A function built without frame pointers hides its caller from
    /// the stack; a walk that ends within two frames of the allocator (a build without
    /// frame pointers), or (on Linux x86-64) whose first links above the allocator disagree
    /// with the unwind tables (allocation code from a crate built without frame pointers),
    /// is walked again by the unwind tables, and reports say so. The walk never
    /// reads outside the thread's stack. x86-64 and AArch64 only; elsewhere this is the
    /// same as `Tables`.
    FramePointers,
}

const UNWIND_TABLES: u8 = 0;
const UNWIND_SYSTEM: u8 = 1;
const UNWIND_FP: u8 = 2;
static UNWINDER: AtomicU8 = AtomicU8::new(UNWIND_TABLES);

/// Chooses how stacks are walked from now on (default [`Unwinder::Tables`]);
/// `LEAKTRACKER_UNWIND=frame-pointers|system|tables` chooses at start-up.
pub fn set_unwinder(unwinder: Unwinder) {
    let u = match unwinder {
        Unwinder::Tables => UNWIND_TABLES,
        Unwinder::System => UNWIND_SYSTEM,
        Unwinder::FramePointers => UNWIND_FP,
    };
    UNWINDER.store(u, Ordering::Relaxed);
}

/// The current way of walking stacks.
pub fn unwinder() -> Unwinder {
    match UNWINDER.load(Ordering::Relaxed) {
        UNWIND_SYSTEM => Unwinder::System,
        UNWIND_FP => Unwinder::FramePointers,
        _ => Unwinder::Tables,
    }
}

/// The process-wide default for new resources (a tracker may override it).
static DEFAULT_CAPTURE: AtomicU32 = AtomicU32::new(Capture::OFF.0);
/// Frames kept per stack after leaktracker's own frames are dropped.
static DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT_DEPTH);
/// Set once any capture is switched on: only then do reports look for blocks' stacks, and
/// do instrumented polls mark their frame.
static EVER_ON: AtomicBool = AtomicBool::new(false);

/// Default number of frames kept per stack.
pub const DEFAULT_DEPTH: usize = 32;
/// Largest configurable depth.
pub const MAX_DEPTH: usize = 128;
/// Frames captured beyond the depth, to make room for the allocator's own frames that
/// resolution drops.
const OWN_FRAMES_ALLOWANCE: usize = 12;
const MAX_CAPTURE: usize = MAX_DEPTH + OWN_FRAMES_ALLOWANCE + 24;

/// Learns where user frames begin on the allocator path, if not yet done, when `setting`
/// captures stacks (called when a tracker or the process switches capture on, from user
/// code or start-up). `in_scope` runs the learning in a capturing scope (see
/// `trim::ensure_learnt`).
pub(crate) fn prepare_capture(setting: Capture, in_scope: fn(&mut dyn FnMut() -> bool) -> bool) {
    if setting != Capture::OFF && setting != Capture::INHERIT {
        trim::ensure_learnt(in_scope);
    }
}

/// Makes `c` the process-wide backtrace setting for resources created from now on (see
/// `crate::set_backtraces`); the caller has prepared it with [`prepare_capture`].
pub(crate) fn set_default_capture(c: Capture) {
    if c != Capture::OFF {
        EVER_ON.store(true, Ordering::Release);
    }
    DEFAULT_CAPTURE.store(c.0, Ordering::Relaxed);
}

/// The process-wide backtrace setting.
pub fn backtraces() -> Backtraces {
    Capture(DEFAULT_CAPTURE.load(Ordering::Relaxed))
        .mode()
        .unwrap_or(Backtraces::Off)
}

/// Sets how many frames are kept per stack (1..=128; default 32), counted after
/// leaktracker's own frames are dropped.
pub fn set_backtrace_depth(depth: usize) {
    DEPTH.store(depth.clamp(1, MAX_DEPTH), Ordering::Relaxed);
}

/// Resolves a tracker's setting (inherit or explicit) for a new resource.
pub(crate) fn effective(tracker_setting: Capture) -> Capture {
    let c = if tracker_setting == Capture::INHERIT {
        Capture(DEFAULT_CAPTURE.load(Ordering::Relaxed))
    } else {
        tracker_setting
    };
    if c != Capture::OFF {
        EVER_ON.store(true, Ordering::Release);
    }
    c
}

/// Whether any capture was ever switched on (so block stacks may exist).
#[inline(always)]
pub(crate) fn ever_on() -> bool {
    EVER_ON.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// Sampling

thread_local! {
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether a block of `size` bytes should be captured under setting `c` (not off; an
/// inherit setting, which no resource has, would sample one in 2^32 - 2).
#[inline]
fn should_capture(c: Capture, size: usize) -> bool {
    if c == Capture::ALL {
        return true;
    }
    let n = u64::from(c.0.wrapping_sub(2));
    let weight = 1 + (size as u64) / 1024;
    if weight >= n {
        return true;
    }
    // xorshift64*, seeded per thread from the address of its state.
    let r = RNG.with(|cell| {
        let mut x = cell.get();
        if x == 0 {
            x = (cell as *const _ as u64) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        cell.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    });
    (r >> 32) % n < weight
}

// ---------------------------------------------------------------------------------------
// Capture

/// Stacks that the table walk could not finish and the system unwinder walked instead.
static TABLES_FELL_BACK: AtomicU64 = AtomicU64::new(0);
/// Frame-pointer walks that ended within two frames of the allocator (a build without
/// frame pointers): walked again with the unwind tables.
static FP_BROKEN: AtomicU64 = AtomicU64::new(0);
/// Frame-pointer walks whose chain skipped a frame next to the allocator (code there
/// without a frame pointer): walked again with the unwind tables.
static FP_GAPS: AtomicU64 = AtomicU64::new(0);

/// Captures the calling thread's stack and returns its id in the stack table (`None` if
/// the stack table is out of memory or the stack is empty). Allocation-free (but for a
/// table walk's first use on a thread, under the guard); holds no tracker lock while
/// unwinding. The allocator's own leading frames are dropped here, by address.
#[inline(never)]
pub(crate) fn capture() -> Option<BlockStack> {
    let _r = Reentrancy::enter();
    if let Some(s) = trim::sample() {
        // Learning the allocator path: the raw walk, by the unwind tables.
        let mut buf = [Slot::uninit(); trim::LEARN_DEPTH];
        let n = walk_tables_or_system(&mut buf);
        s.ips[..n].copy_from_slice(written(&buf, n));
        s.n = n;
        return None;
    }
    // Not zeroed: up to 1.3 KiB a walk would write over anyway (a tenth of a frame-pointer
    // capture's instructions went to `memset`); only the prefix a walk wrote is read.
    let mut ips = [Slot::uninit(); MAX_CAPTURE];
    let want =
        (DEPTH.load(Ordering::Relaxed) + OWN_FRAMES_ALLOWANCE + trim::path_len()).min(MAX_CAPTURE);
    let out = &mut ips[..want];
    // Every walker is called from this function directly: each drops its own frame and
    // this function's, so a walk starts with the return address out of `capture`.
    let (n, own) = match UNWINDER.load(Ordering::Relaxed) {
        UNWIND_FP => {
            let entry = capture as fn() -> Option<BlockStack> as usize;
            let w = fp::walk(out, entry).unwrap_or_default();
            let n = w.frames;
            let own = trim::leading_own(written(out, n));
            if n < want && n <= own + 2 && !w.at_marker {
                FP_BROKEN.fetch_add(1, Ordering::Relaxed);
                (walk_tables_or_system(out), None)
            } else if fp_gap(written(out, n), &w, own) {
                FP_GAPS.fetch_add(1, Ordering::Relaxed);
                (walk_tables_or_system(out), None)
            } else {
                (n, Some(own))
            }
        }
        UNWIND_SYSTEM => (walk_system(out), None),
        _ => (walk_tables_or_system(out), None),
    };
    let walked = written(&ips, n);
    let own = own.unwrap_or_else(|| trim::leading_own(walked));
    intern(&walked[own..])
}

thread_local! {
    /// The address of a local in the innermost instrumented future's `poll` running on this
    /// thread (`usize::MAX`: none): the walks stop at the frame that holds it.
    static TASK_FRAME: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Marks the frame of an instrumented future's `poll` for the stack walks while it runs:
/// the frames outside it are the executor's, the same for every task and cut from every
/// task's stack by the report and the verdict (a task's site ends at its `poll`). Walking
/// them was most of the cost of a stack per block in an async service.
pub(crate) struct TaskFrame {
    /// The mark it replaced, or `None` when no capture was ever on (nothing marked: a
    /// poll without stacks pays one load).
    previous: Option<usize>,
}

impl TaskFrame {
    /// `anchor`: the address of a local of the `poll` (forced onto its stack).
    #[inline(always)]
    pub(crate) fn enter(anchor: usize) -> TaskFrame {
        let previous = if EVER_ON.load(Ordering::Relaxed) {
            TASK_FRAME.try_with(|c| c.replace(anchor)).ok()
        } else {
            None
        };
        TaskFrame { previous }
    }
}

impl Drop for TaskFrame {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(p) = self.previous {
            let _ = TASK_FRAME.try_with(|c| c.set(p));
        }
    }
}

/// Where this thread's walks stop: a frame whose stack pointer is above this address is
/// outside the instrumented `poll` running (`usize::MAX`: nowhere). Only an address
/// between the walk's own stack pointer `sp` and the stack's `top` counts: a walk on
/// another stack (a coroutine's, a grown segment) goes to its end.
#[inline(always)]
pub(super) fn task_frame_stop(sp: usize, top: usize) -> usize {
    let stop = TASK_FRAME
        .try_with(std::cell::Cell::get)
        .unwrap_or(usize::MAX);
    if sp < stop && stop < top {
        stop
    } else {
        usize::MAX
    }
}

/// One entry of a walk's output: written by the walk, read only once written.
pub(super) type Slot = std::mem::MaybeUninit<usize>;

/// The first `n` entries of `out`, which a walk wrote: every walker writes its output
/// from the start, one entry after another, and returns how many it wrote; `n` is that
/// count (or less), checked against the length here.
#[inline(always)]
fn written(out: &[Slot], n: usize) -> &[usize] {
    let n = n.min(out.len());
    // SAFETY: `out[..n]` was written by the walk (see above), so it holds initialised
    // `usize`s, and `MaybeUninit<usize>` has `usize`'s layout.
    unsafe { std::slice::from_raw_parts(out.as_ptr().cast::<usize>(), n) }
}

/// Links of a frame-pointer walk checked against the unwind tables, from the first frame
/// after the allocator's own path.
const FP_CHECKED_LINKS: usize = 6;

/// Return addresses whose frame-pointer link the unwind tables confirmed, per thread: sets
/// of `FP_LINK_WAYS`, the newest first (a service's allocation sites share few sets: one
/// way each cost it a table check on most walks).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const FP_LINK_SETS: usize = 64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const FP_LINK_WAYS: usize = 4;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
type FpLinkSet = [std::cell::Cell<usize>; FP_LINK_WAYS];

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
thread_local! {
    static FP_LINKS_OK: [FpLinkSet; FP_LINK_SETS] =
        const { [const { [const { std::cell::Cell::new(0) }; FP_LINK_WAYS] }; FP_LINK_SETS] };
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
fn fp_link_set(ip: usize) -> usize {
    (ip.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) % FP_LINK_SETS
}

/// Whether the frame-pointer chain skipped a frame just above the allocator's own path.
/// The code there is the standard library's allocation machinery (`RawVec::grow_one`,
/// `finish_grow`, `Global::alloc_impl`, …), and a build with frame pointers may still run
/// a copy of it that has none: a copy shared by a crate built without them (a debug build
/// exports its instances of `#[inline(never)]` generics, and the program links them rather
/// than its own). A function without a frame pointer hides its caller from the chain, here
/// the user function that allocated. So the first links of the chain are checked against
/// the unwind tables (a cached rule each); any other part of the chain is not.
///
/// Whether the code at a return address keeps its caller's link is a property of that
/// code, so a link the tables confirmed once is remembered (per thread, by return
/// address): a stack walked before is checked with a few loads. `walk`: the walk's
/// [`Walk`], from which the records are read again on a memo miss.
#[inline(always)]
fn fp_gap(ips: &[usize], walk: &Walk, own: usize) -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let to = (own + FP_CHECKED_LINKS).min(ips.len().saturating_sub(1));
        let known = |links: &[FpLinkSet; FP_LINK_SETS]| {
            ips[own.min(to)..to]
                .iter()
                .all(|&ip| links[fp_link_set(ip)].iter().any(|way| way.get() == ip))
        };
        if FP_LINKS_OK.try_with(known).unwrap_or(false) {
            return false;
        }
        fp_gap_by_tables(ips, walk, own, to)
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = (ips, walk, own);
        false
    }
}

/// [`fp_gap`] when its memo does not know every link: the links from `own` to `to`
/// checked by the unwind tables, and remembered when they agree.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[cold]
#[inline(never)]
fn fp_gap_by_tables(ips: &[usize], walk: &Walk, own: usize, to: usize) -> bool {
    let mut recs = [Slot::uninit(); MAX_CAPTURE];
    let need = (own + FP_CHECKED_LINKS + 1).min(ips.len()).min(MAX_CAPTURE);
    let k = fp::records(walk, &mut recs[..need]);
    match tables::fp_links_agree(ips, written(&recs, k), own, own + FP_CHECKED_LINKS) {
        Some(true) => {
            let _ = FP_LINKS_OK.try_with(|links| {
                for &ip in &ips[own.min(to)..to] {
                    let set = &links[fp_link_set(ip)];
                    if set.iter().all(|way| way.get() != ip) {
                        for w in (1..FP_LINK_WAYS).rev() {
                            set[w].set(set[w - 1].get());
                        }
                        set[0].set(ip);
                    }
                }
            });
            false
        }
        Some(false) => true,
        None => false,
    }
}

/// The table walk, or the system unwinder's where it cannot finish a stack.
#[inline(always)]
fn walk_tables_or_system(out: &mut [Slot]) -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(w) = tables::walk(out) {
        if w.complete {
            return w.frames;
        }
        TABLES_FELL_BACK.fetch_add(1, Ordering::Relaxed);
    }
    walk_system(out)
}

/// The system unwinder's walk (`_Unwind_Backtrace`), from the return address out of its
/// caller (as the other walks): frames whose canonical frame address lies below a local
/// of this function are the unwinder's own; then this function's and its caller's.
#[inline(never)]
fn walk_system(out: &mut [Slot]) -> usize {
    let marker = 0u8;
    let low = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    let mut inside = true;
    let mut skip = 2;
    let mut n = 0;
    // SAFETY: on the platforms this crate supports (Unix, with the system unwinder) the
    // unwinder is thread-safe; the lock `trace` would take only serialises the crate's
    // Windows dbghelp use, and taking it here could deadlock with a thread that resolves
    // symbols while holding it and allocating. The callback cannot panic.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if ip == 0 || out.is_empty() {
                return false; // the end of the stack
            }
            if inside {
                if frame.sp() as usize <= low {
                    return true;
                }
                inside = false;
            }
            if skip > 0 {
                skip -= 1;
                return true;
            }
            out[n] = Slot::new(ip);
            n += 1;
            n < out.len()
        });
    }
    n
}

/// What the walks did: (stacks the table walk handed to the system unwinder, frame-pointer
/// walks found broken).
pub(crate) fn walk_stats() -> (u64, u64) {
    (
        TABLES_FELL_BACK.load(Ordering::Relaxed),
        FP_BROKEN.load(Ordering::Relaxed),
    )
}

// ---------------------------------------------------------------------------------------
// The stack table

const STACK_SHARD_BITS: u32 = 4;
const STACK_SHARDS: usize = 1 << STACK_SHARD_BITS;
/// Words per arena chunk (512 KiB).
const CHUNK_WORDS: usize = 1 << 16;
/// Chunks per shard (at most 128 MiB of stacks per shard).
const MAX_CHUNKS: usize = 256;
const INDEX_INITIAL: usize = 256;

#[derive(Clone, Copy)]
#[repr(C)]
struct IndexSlot {
    hash: u64,
    /// Stack id + 1 (0 = empty).
    id1: u32,
}

// SAFETY: all-zero is `id1 == 0`, the empty slot; the methods only read fields.
unsafe impl open_table::Slot for IndexSlot {
    fn is_empty(&self) -> bool {
        self.id1 == 0
    }
    fn hash(&self) -> u64 {
        self.hash
    }
}

struct StackShard {
    /// Frames' hash -> stack id.
    index: OpenTable<IndexSlot>,
    /// Words used in the current (last) chunk.
    used: usize,
    chunks: usize,
}

#[repr(align(64))]
struct Shard {
    inner: spin::Mutex<StackShard>,
    /// Arena chunks; written once under the lock, read by `frames` after a Release store.
    chunks: [AtomicPtr<usize>; MAX_CHUNKS],
}

static SHARDS: [Shard; STACK_SHARDS] = [const {
    Shard {
        inner: spin::Mutex::new(StackShard {
            index: OpenTable::new(),
            used: 0,
            chunks: 0,
        }),
        chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_CHUNKS],
    }
}; STACK_SHARDS];

/// The frames' hash: one multiply a frame. A multiply carries an address's bits only
/// upwards, so the high half is folded down and mixed once at the end (the index and the
/// shard read bits from the middle and the top).
fn hash_ips(ips: &[usize]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ ips.len() as u64;
    for &ip in ips {
        h = (h ^ ip as u64).wrapping_mul(K);
    }
    h ^= h >> 29;
    h = h.wrapping_mul(K);
    (h ^ (h >> 32)) | 1
}

/// A stored stack: `shard << 28 | chunk << 16 | word offset` of its entry in the arenas.
/// An entry is three parts: the number of frames, how many blocks were captured at this
/// stack so far (written under the shard lock), then the frames.
///
/// Only [`intern`] makes one, for an entry it has fully written (and
/// [`BlockStack::from_word`] remakes one from the word of another), so reading the entry an
/// id names needs no check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct StackId(u32);

impl StackId {
    /// An id for the verdict's unit tests, which never read the entry it names.
    #[cfg(test)]
    pub(crate) fn for_test(n: u32) -> StackId {
        StackId(n)
    }
}

fn make_id(shard: usize, chunk: usize, offset: usize) -> u32 {
    ((shard << 28) | (chunk << 16) | offset) as u32
}

/// The shard, chunk and word offset that [`make_id`] packed into `id`.
fn id_parts(id: u32) -> (usize, usize, usize) {
    (
        (id >> 28) as usize & (STACK_SHARDS - 1),
        (id >> 16) as usize & 0xFFF,
        id as usize & 0xFFFF,
    )
}

/// The shard of stored stack `id` and the first word of its entry; `None` if the entry's
/// chunk is not mapped (which a `StackId` never names).
fn entry_of(id: StackId) -> Option<(&'static Shard, *mut usize)> {
    let (shard, chunk, offset) = id_parts(id.0);
    let shard = &SHARDS[shard];
    if chunk >= MAX_CHUNKS {
        return None;
    }
    let base = shard.chunks[chunk].load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: `offset` has 16 bits, below `CHUNK_WORDS`: inside the mapped chunk.
    Some((shard, unsafe { base.add(offset) }))
}

/// The frames of stored stack `id` (a copy).
fn frames_of(id: StackId, out: &mut Vec<usize>) {
    out.clear();
    let Some((_, entry)) = entry_of(id) else {
        return;
    };
    // SAFETY: a `StackId` is only made for an entry fully written before the id was
    // published (under the shard lock, chunk pointer stored with Release; see `StackId`);
    // an entry is a length word, a count word, then that many frames, all inside the
    // chunk, which is never unmapped. The length and frames are never written again.
    unsafe {
        let len = *entry;
        out.extend_from_slice(std::slice::from_raw_parts(entry.add(2), len));
    }
}

/// A block's allocation stack, and its place among the blocks captured at that stack so
/// far (1 = the first): the verdict tells one-time retention by it (the first blocks made
/// at a site, kept, when many were made there after them and freed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct BlockStack {
    pub(crate) id: StackId,
    pub(crate) seq: u32,
}

impl BlockStack {
    /// The id and the place in one word (a record's side word in `records.rs`).
    #[inline(always)]
    pub(crate) fn word(self) -> u64 {
        u64::from(self.id.0) | (u64::from(self.seq) << 32)
    }

    /// A word made by [`word`](Self::word).
    ///
    /// # Safety
    /// * `w` must be the [`word`](Self::word) of a `BlockStack`.
    #[inline(always)]
    pub(crate) unsafe fn from_word(w: u64) -> BlockStack {
        BlockStack {
            id: StackId(w as u32),
            seq: (w >> 32) as u32,
        }
    }
}

/// How many blocks were captured at stack `id` so far (saturating at `u32::MAX`).
pub(crate) fn captured_at(id: StackId) -> u32 {
    let Some((_, entry)) = entry_of(id) else {
        return 0;
    };
    // SAFETY: as in `frames_of`: `id`'s entry is fully written in a mapped chunk, and its
    // count word is only accessed atomically.
    let count = unsafe { count_word(entry) }.load(Ordering::Relaxed);
    count.min(u32::MAX as usize) as u32
}

/// Recently interned stacks of this thread, by hash: (hash, id + 1; 0 = empty). A site
/// that allocates in a loop captures the same stack again and again; found here, it is
/// matched against its stored frames and counted without the shard's lock or index (the
/// frames of a stored stack never change and are never freed).
const RECENT_STACKS: usize = 16;

thread_local! {
    static RECENT: [std::cell::Cell<(u64, u32)>; RECENT_STACKS] =
        const { [const { std::cell::Cell::new((0, 0)) }; RECENT_STACKS] };
}

#[inline(always)]
fn recent_slot(h: u64) -> usize {
    (h >> 40) as usize % RECENT_STACKS
}

/// Stores `ips` once and returns its id, with the block's place among those captured
/// there (the stack's count, bumped).
fn intern(ips: &[usize]) -> Option<BlockStack> {
    if ips.is_empty() {
        return None;
    }
    let h = hash_ips(ips);
    let recent = RECENT
        .try_with(|r| r[recent_slot(h)].get())
        .unwrap_or((0, 0));
    if recent.0 == h && recent.1 != 0 {
        let id = recent.1 - 1;
        if let Some((_, entry)) = entry_of(StackId(id)) {
            // SAFETY: `id` was published to this thread by `intern_locked` (under the shard
            // lock): its entry is fully written in a mapped chunk, and its length and frames
            // are never written again; the count word is only accessed atomically.
            unsafe {
                if same_frames_at(entry, ips) {
                    return Some(BlockStack {
                        id: StackId(id),
                        seq: bump_count(entry),
                    });
                }
            }
        }
    }
    let found = intern_locked(ips, h)?;
    let _ = RECENT.try_with(|r| r[recent_slot(h)].set((h, found.id.0 + 1)));
    Some(found)
}

/// [`intern`] by the shard's index, under its lock.
fn intern_locked(ips: &[usize], h: u64) -> Option<BlockStack> {
    let shard_no = (h >> (64 - STACK_SHARD_BITS)) as usize;
    let shard = &SHARDS[shard_no];
    let mut s = shard.inner.lock();
    let is = |slot: &IndexSlot| slot.hash == h && same_frames(shard, slot.id1 - 1, ips);
    if let Some(slot) = s.index.get(h, is) {
        let id = slot.id1 - 1;
        let (_, chunk, offset) = id_parts(id);
        let base = shard.chunks[chunk].load(Ordering::Relaxed);
        return Some(BlockStack {
            id: StackId(id),
            // SAFETY: `id` comes from this shard's index: its entry is fully written inside
            // a mapped chunk.
            seq: unsafe { bump_count(base.add(offset)) },
        });
    }
    // New stack: append it to the arena.
    if !s.index.has_room() && !s.index.grow(INDEX_INITIAL) {
        return None;
    }
    let need = ips.len() + 2;
    if s.chunks == 0 || s.used + need > CHUNK_WORDS {
        if s.chunks >= MAX_CHUNKS {
            return None;
        }
        let p = crate::os::map_zeroed(CHUNK_WORDS * std::mem::size_of::<usize>());
        if p.is_null() {
            return None;
        }
        shard.chunks[s.chunks].store(p.cast(), Ordering::Release);
        s.chunks += 1;
        s.used = 0;
    }
    let chunk = s.chunks - 1;
    let base = shard.chunks[chunk].load(Ordering::Relaxed);
    let offset = s.used;
    // SAFETY: `offset + need <= CHUNK_WORDS`, inside the chunk; the shard lock gives
    // exclusive write access to the unused tail of the arena (nobody holds an id into it
    // yet, so the count word is not yet read atomically elsewhere).
    unsafe {
        *base.add(offset) = ips.len();
        *base.add(offset + 1) = 1;
        std::ptr::copy_nonoverlapping(ips.as_ptr(), base.add(offset + 2), ips.len());
    }
    s.used += need;
    let id = make_id(shard_no, chunk, offset);
    // The lookup above missed, so its run ends at the empty slot this finds.
    match s.index.entry(h, |_| false) {
        open_table::Entry::Vacant(v) => v.insert(IndexSlot {
            hash: h,
            id1: id + 1,
        }),
        // Cannot happen (`has_room` above); the frames stay unreachable in the arena.
        _ => return None,
    }
    Some(BlockStack {
        id: StackId(id),
        seq: 1,
    })
}

/// The count word of the stored stack whose entry starts at `entry`, as an atomic: after
/// an entry is published it is only read and written through this.
///
/// # Safety
/// * `entry` must be the first word of a published entry (see [`StackId`]).
#[inline(always)]
unsafe fn count_word<'a>(entry: *mut usize) -> &'a AtomicUsize {
    // SAFETY: the word after the length is the entry's count, word-aligned in a chunk that
    // is never unmapped; every access after publication is atomic (the caller's promise).
    unsafe { AtomicUsize::from_ptr(entry.add(1)) }
}

/// Counts one more block captured at the stored stack whose entry starts at `entry`;
/// returns the new count, saturating at `u32::MAX`.
///
/// # Safety
/// * As [`count_word`].
#[inline(always)]
unsafe fn bump_count(entry: *mut usize) -> u32 {
    // SAFETY: passed on from the caller.
    let before = unsafe { count_word(entry) }.fetch_add(1, Ordering::Relaxed);
    before.saturating_add(1).min(u32::MAX as usize) as u32
}

fn same_frames(shard: &Shard, id: u32, ips: &[usize]) -> bool {
    let (_, chunk, offset) = id_parts(id);
    let base = shard.chunks[chunk].load(Ordering::Relaxed);
    // SAFETY: `id` comes from this shard's index, so its entry is fully written inside a
    // mapped chunk; we hold the shard lock.
    unsafe { same_frames_at(base.add(offset), ips) }
}

/// Whether the stored stack whose entry starts at `entry` has the frames `ips`.
///
/// # Safety
/// * `entry` must be the first word of a fully written entry whose writes happened before
///   this call (its length and frames are never written again).
#[inline(always)]
unsafe fn same_frames_at(entry: *const usize, ips: &[usize]) -> bool {
    // SAFETY: the caller's promise; the length and frames lie inside the chunk.
    unsafe {
        let len = *entry;
        // Compared a word at a time: a slice `==` calls `memcmp`, a call and a length
        // dispatch for a dozen words.
        len == ips.len()
            && std::slice::from_raw_parts(entry.add(2), len)
                .iter()
                .zip(ips)
                .all(|(a, b)| a == b)
    }
}

/// Number of distinct stacks stored, and the arena bytes they use.
pub(crate) fn table_stats() -> (usize, usize) {
    let mut stacks = 0;
    let mut bytes = 0;
    for shard in &SHARDS {
        let s = shard.inner.lock();
        stacks += s.index.len();
        bytes += s.chunks * CHUNK_WORDS * std::mem::size_of::<usize>() + s.index.bytes();
    }
    (stacks, bytes)
}

/// Takes every stack-table lock (for `fork`).
pub(crate) fn lock_for_fork() {
    for shard in &SHARDS {
        std::mem::forget(shard.inner.lock());
    }
}

/// Releases the locks taken by [`lock_for_fork`].
///
/// # Safety
/// * The locks must be held by [`lock_for_fork`] (here or in the parent of this child).
pub(crate) unsafe fn force_unlock_for_fork() {
    // SAFETY: the caller promises `lock_for_fork` took these locks and forgot the guards.
    unsafe {
        for shard in &SHARDS {
            shard.inner.force_unlock();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Resolution

/// Blocks of one resource that share one allocation stack, counted by id (by
/// `records::stack_groups`). The pipeline of one stack group: counted as a `StackCount`,
/// resolved into a [`ResolvedGroup`] (frames and what the verdict needs of them), shown
/// as the public [`crate::StackGroup`] (frames only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StackCount {
    /// Stack id, or `None` for blocks without a captured stack.
    pub(crate) stack: Option<StackId>,
    pub(crate) blocks: usize,
    pub(crate) bytes: usize,
    /// The latest place among the blocks captured at the stack of any of these blocks
    /// (see [`BlockStack::seq`]; 0 without a stack).
    pub(crate) last_seq: u32,
}

/// Frame-name prefixes of the standard library's allocation machinery (`Box::new`,
/// `RawVec::grow`, `Vec::from_iter`, …) and, for frames that only the symbol table names
/// (no debug info), leaktracker's own entry points such as `track`: leading frames that
/// match are dropped, so a group's first frame is the code that allocated. (The
/// allocator's own path is dropped before, by address, when the stack is captured.)
const OWN_FRAME_PREFIXES: &[&str] = &[
    "leaktracker::",
    "<leaktracker::",
    "alloc::",
    "<alloc::",
    "core::",
    "<core::",
    "std::alloc::",
];

/// The allocator shims the compiler generates for a `#[global_allocator]` (their names are
/// fixed symbols, not paths); with a build that inlines them, they appear as inlined frames
/// of the first user address.
const ALLOCATOR_SHIMS: &[&str] = &[
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rg_alloc",
    "__rg_alloc_zeroed",
    "__rg_realloc",
];

/// Source folders of the standard library's `alloc` and `core` crates: frames there are
/// allocation machinery too (trait impls such as `<u8 as SpecFromElem>::from_elem`).
const STD_ALLOC_FILES: &[&str] = &["/library/alloc/src/", "/library/core/src/"];

/// This crate's own source folder, as its debug info names it: frames of our code that a
/// build inlined into the caller's (the `GlobalAlloc` methods) have these files.
const OWN_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

fn is_shim(name: &str) -> bool {
    let n = name.strip_prefix("__rustc::").unwrap_or(name);
    ALLOCATOR_SHIMS.contains(&n)
}

/// leaktracker's frames that run the user's code: a build without debug info inlines an
/// instrumented future's `poll` (the task's body) into this one and names the code by it
/// alone. The user's frame, not leaktracker's own.
const USER_CODE_WRAPPERS: &[&str] = &["<leaktracker::tracker::Instrumented<"];

fn is_own_frame(name: &str, loc: &str) -> bool {
    if USER_CODE_WRAPPERS.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    loc.starts_with(OWN_SOURCE)
        || is_shim(name)
        || OWN_FRAME_PREFIXES.iter().any(|p| name.starts_with(p))
        || STD_ALLOC_FILES.iter().any(|d| loc.contains(d))
}

/// Resolves stacks to readable frames (`function at file:line`), each distinct instruction
/// pointer once; the allocation machinery's leading frames are dropped and the rest cut to
/// the configured depth. Holds no tracker lock; allocates (under the caller's guard).
pub(crate) fn resolve(_r: &Reentrancy, ids: &[StackId]) -> HashMap<StackId, Resolved> {
    let depth = DEPTH.load(Ordering::Relaxed);
    let subs = symbols::loader_counters().1;
    let mut by_ip = ResolvedIps::take(subs);
    let mut out = HashMap::new();
    let mut stacks: Vec<(StackId, Vec<usize>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &id in ids {
        if !seen.insert(id) {
            continue;
        }
        let mut ips = Vec::new();
        frames_of(id, &mut ips);
        stacks.push((id, ips));
    }
    let mut symtab = symbols::SymbolTables::new();
    let mut missing: Vec<usize> = stacks
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|ip| !by_ip.contains_key(ip))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let mut dwarf = HashMap::new();
    if !missing.is_empty() {
        symtab.load_for(&missing);
        dwarf = symtab.dwarf_frames(&missing);
    }
    // Frames beyond a stack's outer end (std's short-backtrace marker: below `main` or a
    // thread's closure), named from the symbol table only: they are cut from every stack
    // shown, and in libc they would have the `backtrace` crate read the C library's whole
    // separate debug file (tens of MB) for nothing.
    let mut beyond: HashMap<usize, Vec<(String, String)>> = HashMap::new();
    for (id, ips) in &stacks {
        if out.contains_key(id) {
            continue;
        }
        let mut past_start = false;
        for &ip in ips {
            if past_start && !by_ip.contains_key(&ip) && !dwarf.contains_key(&ip) {
                beyond
                    .entry(ip)
                    .or_insert_with(|| vec![(symbol_name(ip, &symtab), String::new())]);
                continue;
            }
            let frames = by_ip
                .entry(ip)
                .or_insert_with(|| resolve_ip(ip, &symtab, dwarf.remove(&ip)));
            past_start |= frames
                .iter()
                .any(|(n, _)| n.contains("__rust_begin_short_backtrace"));
        }
        // (name, location) of every frame, inlined ones included, innermost first.
        let mut all: Vec<&(String, String)> = Vec::new();
        // The return address each of them came from.
        let mut all_ips: Vec<usize> = Vec::new();
        for ip in ips {
            let frames = by_ip
                .get(ip)
                .or_else(|| beyond.get(ip))
                .map_or(&[][..], |f| f);
            all.extend(frames.iter());
            all_ips.extend(std::iter::repeat_n(*ip, frames.len()));
        }
        // Inner end: the allocation machinery. Outer end: the runtime below `main` or a
        // thread's closure (std's short-backtrace marker), and the call shims just above it.
        let start = all
            .iter()
            .position(|(n, l)| !is_own_frame(n, l))
            .unwrap_or(all.len());
        let mut end = all
            .iter()
            .position(|(n, _)| n.contains("__rust_begin_short_backtrace"))
            .unwrap_or(all.len())
            .max(start);
        while end > start + 1 && is_own_frame(&all[end - 1].0, &all[end - 1].1) {
            end -= 1;
        }
        // A stack made only of such frames is shown whole rather than not at all.
        let (start, end) = if start == end {
            (0, all.len())
        } else {
            (start, end)
        };
        // In between, the standard library's iterator and collection plumbing is elided:
        // the user's frames and std's own (threads, I/O) stay.
        let (frames, frame_ips): (Vec<String>, Vec<usize>) = all[start..end]
            .iter()
            .zip(&all_ips[start..end])
            .enumerate()
            .filter(|&(i, ((n, l), _))| {
                i == 0 || !STD_ALLOC_FILES.iter().any(|d| l.contains(d)) || n.is_empty()
            })
            .map(|(_, f)| f)
            .take(depth)
            .map(|((name, loc), ip)| {
                let text = if loc.is_empty() {
                    name.clone()
                } else {
                    format!("{name} at {loc}")
                };
                (text, *ip)
            })
            .unzip();
        // Whether a collection grew to make the block (`Vec::push`, `reserve`, a map's
        // resize), in the allocation machinery dropped above.
        let grew = all[..start]
            .iter()
            .any(|(n, _)| n.contains("grow") || n.contains("reserve") || n.contains("resize"));
        out.insert(
            *id,
            Resolved {
                frames,
                frame_ips,
                grew,
            },
        );
    }
    ResolvedIps::put(subs, by_ip);
    out
}

/// The frames of every return address resolved so far in this process, kept between
/// reports: a service that reports every minute resolves only the addresses new since the
/// last report. Dropped when a library is unloaded (its addresses may be reused).
static RESOLVED_IPS: std::sync::Mutex<(u64, Option<IpFrames>)> = std::sync::Mutex::new((0, None));

/// Frames (name, location), innermost first, by return address.
type IpFrames = HashMap<usize, Vec<(String, String)>>;

/// Most return addresses kept (about 200 B each).
const MAX_RESOLVED_IPS: usize = 1 << 20;

struct ResolvedIps;

impl ResolvedIps {
    /// The kept frames, if they are of the libraries loaded now (`subs`: the loader's
    /// unload counter); empty when another report holds them or a library was unloaded.
    fn take(subs: u64) -> IpFrames {
        let Ok(mut kept) = RESOLVED_IPS.try_lock() else {
            return HashMap::new();
        };
        let map = kept.1.take().unwrap_or_default();
        if kept.0 == subs {
            map
        } else {
            HashMap::new()
        }
    }

    /// Keeps `map` for the next report.
    fn put(subs: u64, mut map: IpFrames) {
        if map.len() > MAX_RESOLVED_IPS {
            return;
        }
        let Ok(mut kept) = RESOLVED_IPS.try_lock() else {
            return;
        };
        if let Some(other) = kept.1.take() {
            if kept.0 == subs {
                map.extend(other);
            }
        }
        *kept = (subs, Some(map));
    }
}

/// One stack, resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolved {
    /// Readable frames, innermost first.
    pub(crate) frames: Vec<String>,
    /// The return address each frame came from (inlined frames share one).
    pub(crate) frame_ips: Vec<usize>,
    /// Whether the dropped allocation machinery grew a collection (`grow`, `reserve`,
    /// `resize`).
    pub(crate) grew: bool,
}

/// The frames (several when inlined) at return address `ip`, innermost first: (demangled
/// name without hash, file:line). The outermost one (the function that was not inlined)
/// is named by the symbol table where it has the address: debug info may know it only
/// by a short name.
fn resolve_ip(
    ip: usize,
    symtab: &symbols::SymbolTables,
    dwarf: Option<dwarf::Answer>,
) -> Vec<(String, String)> {
    let mut syms = Vec::new();
    match dwarf {
        Some(dwarf::Answer::Frames(frames)) => {
            for (name, loc) in frames {
                syms.push((name.unwrap_or_else(|| format!("{ip:#x}")), loc));
            }
        }
        // DWARF this reader does not read (or none in the object): the `backtrace`
        // crate's resolver, which finds separate and split debug info.
        Some(dwarf::Answer::Elsewhere) | None => backtrace_frames(ip, &mut syms),
    }
    let outer = symtab.function_of(ip);
    match (syms.last_mut(), outer) {
        (Some(last), Some(name)) => last.0 = name,
        (None, Some(name)) => syms.push((name, String::new())),
        (None, None) => syms.push((format!("{ip:#x}"), String::new())),
        (Some(_), None) => {}
    }
    syms
}

/// The symbol table's name of the function at return address `ip`, else the address.
fn symbol_name(ip: usize, symtab: &symbols::SymbolTables) -> String {
    symtab.function_of(ip).unwrap_or_else(|| format!("{ip:#x}"))
}

/// The frames at `ip` as the `backtrace` crate's resolver gives them, innermost first.
fn backtrace_frames(ip: usize, syms: &mut Vec<(String, String)>) {
    backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
        let name = sym
            .name()
            .map(|n| format!("{n:#}"))
            .unwrap_or_else(|| format!("{ip:#x}"));
        let mut loc = String::new();
        if let Some(file) = sym.filename() {
            let _ = write!(loc, "{}", file.display());
            if let Some(line) = sym.lineno() {
                let _ = write!(loc, ":{line}");
            }
        }
        syms.push((name, loc));
    });
}

/// What a report says about its stacks: how many of the blocks have one, which unwinder
/// walked them, and any setting that did not do what it asked. `groups` are the report's
/// resolved groups, `blocks` all blocks the report covers.
pub(crate) fn report_notes<K>(
    groups: &HashMap<K, Vec<ResolvedGroup>>,
    blocks: usize,
) -> Vec<String> {
    let mut notes = Vec::new();
    if !ever_on() || blocks == 0 {
        return notes;
    }
    let with: usize = groups
        .values()
        .flatten()
        .filter(|g| g.stack.is_some())
        .map(|g| g.blocks)
        .sum();
    let (fell_back, fp_broken) = walk_stats();
    let walker = match unwinder() {
        Unwinder::Tables => "unwind tables",
        Unwinder::System => "system unwinder",
        Unwinder::FramePointers => "frame pointers",
    };
    let mut line =
        format!("backtraces: {with} of {blocks} blocks have a stack (walked by {walker}");
    if fell_back > 0 {
        let _ = write!(line, "; {fell_back} stacks finished by the system unwinder");
    }
    line.push(')');
    if let Backtraces::Sample(n) = backtraces() {
        let _ = write!(
            line,
            "; sample:{n}: the other {} blocks were not sampled",
            blocks.saturating_sub(with)
        );
    }
    notes.push(line);
    if fp_broken > 0 {
        notes.push(format!(
            "frame pointers were asked for, but {fp_broken} frame-pointer walks ended within two \
             frames of the allocator (the binary has no frame pointers): those stacks were walked \
             by the unwind tables; build with RUSTFLAGS=\"-C force-frame-pointers=yes\""
        ));
    }
    let fp_gaps = FP_GAPS.load(Ordering::Relaxed);
    if fp_gaps > 0 {
        notes.push(format!(
            "{fp_gaps} frame-pointer walks met allocation code without frame pointers (from a \
             crate built without them) next to the allocator, which hides the allocating \
             function from the chain: those stacks were walked by the unwind tables"
        ));
    }
    if trim::failed() {
        notes.push(
            "the allocator's own frames could not be located by address: stacks were trimmed \
             by frame names only"
                .to_string(),
        );
    }
    notes
}

/// A start-up warning for a backtrace setting that does nothing by itself: stacks asked
/// for (`LEAKTRACKER_BACKTRACE`) with no exit report configured.
pub(crate) fn startup_note(backtraces_on: bool, report_configured: bool) -> Option<String> {
    (backtraces_on && !report_configured).then(|| {
        "LEAKTRACKER_BACKTRACE is set but no exit report is (LEAKTRACKER_REPORT, \
         LEAKTRACKER_EXIT_CODE): stacks are captured, at their cost, and shown only in \
         reports the program makes itself"
            .to_string()
    })
}

/// One group of a resource's blocks that share an allocation stack, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedGroup {
    /// The stack's id in the stack table (the same id in every resource allocated there).
    pub(crate) stack: Option<StackId>,
    pub(crate) blocks: usize,
    pub(crate) bytes: usize,
    /// Frames, innermost first; empty when the blocks have no captured stack.
    pub(crate) frames: Vec<String>,
    /// The return address of each frame (tells apart two call sites of one function in
    /// a build without line tables).
    pub(crate) frame_ips: Vec<usize>,
    /// Whether a collection grew to make the block (see [`Resolved::grew`]).
    pub(crate) grew: bool,
    /// The latest place of these blocks among those captured at their stack (see
    /// [`BlockStack::seq`]; 0 without a stack).
    pub(crate) last_seq: u32,
    /// How many blocks were captured at their stack so far (0 without a stack).
    pub(crate) captured: u32,
}

/// Resolves the stacks of groups of blocks (per resource, from `records::stack_groups`):
/// key -> groups in the order given. Holds no lock while resolving.
pub(crate) fn resolve_groups<K: std::hash::Hash + Eq>(
    r: &Reentrancy,
    groups: HashMap<K, Vec<StackCount>>,
) -> HashMap<K, Vec<ResolvedGroup>> {
    let ids: Vec<StackId> = groups.values().flatten().filter_map(|g| g.stack).collect();
    let frames = resolve(r, &ids);
    // Each stack's count once (a lock each), however many resources share the stack.
    let mut captured: HashMap<StackId, u32> = HashMap::new();
    for &id in &ids {
        captured.entry(id).or_insert_with(|| captured_at(id));
    }
    groups
        .into_iter()
        .map(|(res, gs)| {
            let resolved = gs
                .into_iter()
                .map(|g| {
                    let r = g
                        .stack
                        .and_then(|id| frames.get(&id).cloned())
                        .unwrap_or_default();
                    ResolvedGroup {
                        stack: g.stack,
                        blocks: g.blocks,
                        bytes: g.bytes,
                        frames: r.frames,
                        frame_ips: r.frame_ips,
                        grew: r.grew,
                        last_seq: g.last_seq,
                        captured: g.stack.map_or(0, |id| captured[&id]),
                    }
                })
                .collect();
            (res, resolved)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn capture_here() -> Option<StackId> {
        std::hint::black_box(capture()).map(|s| s.id)
    }

    #[test]
    fn capture_dedups_and_resolves() {
        let a = capture_here().expect("a stack");
        let b = capture_here().expect("a stack");
        // Two calls from different lines differ in the caller's frame; the same call site
        // in a loop gives one id.
        let ids: Vec<StackId> = (0..3).map(|_| capture_here().unwrap()).collect();
        assert_eq!(ids[0], ids[1]);
        assert_eq!(ids[1], ids[2]);
        assert_ne!(a, b);
        let resolved = resolve(&Reentrancy::enter(), &[ids[0]]);
        let frames = &resolved[&ids[0]].frames;
        // Every frame of this stack is leaktracker's, core's or the test harness's
        // runtime: nothing is trimmed away then, rather than everything.
        assert!(!frames.is_empty());
        assert!(
            frames
                .iter()
                .any(|f| f.contains("stack::tests::capture_here") && f.contains("stack/mod.rs:")),
            "file:line resolved: {frames:#?}"
        );
    }

    #[inline(never)]
    fn capture_block() -> BlockStack {
        std::hint::black_box(capture()).expect("a stack")
    }

    /// Threads capturing at one site share its stack, mostly through their recent-stack
    /// caches (no lock): every capture still gets its own place, 1 to the number made,
    /// and the stack's count is that number.
    #[test]
    fn places_at_a_shared_stack_are_distinct_across_threads() {
        const THREADS: usize = 4;
        const EACH: usize = 2_000;
        let run = || (0..EACH).map(|_| capture_block()).collect::<Vec<_>>();
        let handles: Vec<_> = (0..THREADS).map(|_| std::thread::spawn(run)).collect();
        let got: Vec<BlockStack> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let id = got[0].id;
        assert!(got.iter().all(|b| b.id == id), "one stack for one site");
        let mut places: Vec<u32> = got.iter().map(|b| b.seq).collect();
        places.sort_unstable();
        let want: Vec<u32> = (1..=(THREADS * EACH) as u32).collect();
        assert_eq!(places, want);
        assert_eq!(captured_at(id), (THREADS * EACH) as u32);
    }

    /// The DWARF reader gives the frames the `backtrace` crate's resolver gives, for
    /// every return address of stacks that run through std's optimised code (inlined
    /// frames, other units' abstract origins) and a thread's start.
    #[test]
    fn dwarf_frames_match_the_backtrace_crate() {
        let mut ids: Vec<StackId> = vec![capture_here().unwrap()];
        std::thread::scope(|s| {
            s.spawn(|| ids.extend((0..2).filter_map(|_| capture_here())));
        });
        let mut every = Vec::new();
        let mut ips = Vec::new();
        for &id in &ids {
            frames_of(id, &mut ips);
            every.extend_from_slice(&ips);
        }
        every.sort_unstable();
        every.dedup();
        let mut symtab = symbols::SymbolTables::new();
        symtab.load_for(&every);
        let mut answers = symtab.dwarf_frames(&every);
        let (mut inlined, mut located) = (0, 0);
        for &ip in &every {
            let Some(answer) = answers.remove(&ip) else {
                continue;
            };
            let ours = resolve_ip(ip, &symtab, Some(answer));
            let theirs = resolve_ip(ip, &symtab, None);
            assert_eq!(ours, theirs, "frames at {ip:#x}");
            inlined += usize::from(ours.len() > 1);
            located += usize::from(ours.iter().any(|f| f.1.contains(".rs:")));
        }
        assert!(
            inlined > 0,
            "no address with inlined frames among {every:x?}"
        );
        assert!(located > 2, "only {located} addresses with a file and line");
    }

    /// Walks end at the first return address into std's or libtest's short-backtrace
    /// marker, the first walk of a thread (which finds it in the symbol table) and the
    /// later ones (which meet the place it remembered); a remembered place that is wrong
    /// is passed, and the marker found again.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn walks_end_at_the_short_backtrace_marker() {
        let mut symtab = symbols::SymbolTables::new();
        let last_name = |id: StackId, symtab: &mut symbols::SymbolTables| {
            let mut ips = Vec::new();
            frames_of(id, &mut ips);
            symtab.load_for(&ips);
            let last = *ips.last().expect("frames");
            (ips.len(), symtab.function_of(last).unwrap_or_default())
        };
        assert!(marker::markers().is_some_and(|m| m.len() >= 2));
        let ids = std::thread::scope(|s| {
            s.spawn(|| {
                let first = capture_here().unwrap();
                let learnt = marker::MARK.with(std::cell::Cell::get);
                let second = capture_here().unwrap();
                // A remembered place that is wrong: passed, and the marker found again.
                marker::MARK.with(|c| c.set((1, 1)));
                let third = capture_here().unwrap();
                assert_eq!(marker::MARK.with(std::cell::Cell::get), learnt);
                [first, second, third]
            })
            .join()
            .unwrap()
        });
        let lens: Vec<usize> = ids.iter().map(|&id| last_name(id, &mut symtab).0).collect();
        assert!(
            lens[0] == lens[1] && lens[1] == lens[2],
            "the same depth each time: {lens:?}"
        );
        for id in ids.into_iter().chain([capture_here().unwrap()]) {
            let (n, name) = last_name(id, &mut symtab);
            assert!(
                name.contains("__rust_begin_short_backtrace"),
                "stack {id:?} of {n} frames ends in {name:?}"
            );
        }
    }

    #[test]
    fn sampling_weights_large_blocks() {
        let c = Capture::of(Some(Backtraces::Sample(64)));
        assert!(
            should_capture(c, 1 << 20),
            "1 MiB blocks are always captured"
        );
        let hits = (0..64_000).filter(|_| should_capture(c, 16)).count();
        assert!(
            (500..=1500).contains(&hits),
            "about 1 in 64 small blocks: {hits}"
        );
        assert_eq!(c.mode(), Some(Backtraces::Sample(64)));
        assert_eq!(
            Capture::of(Some(Backtraces::All)),
            Capture::of(Some(Backtraces::Sample(1)))
        );
        assert_eq!(Capture::of(None).mode(), None);
        assert_eq!(Capture::from_raw(Capture::OFF.raw()), Capture::OFF);
    }
}
