//! The `LeakTracker` facade: tag blocks (one object, or everything a scope or a future
//! allocates), list the resources still live, forget tags. Also `Trackable`, `LeakInfo`,
//! `TrackError`, the global tracker and `is_installed`.

use std::alloc::Layout;
use std::borrow::Cow;
use std::ffi::CString;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::Timestamp;
use crate::guard::{self, Reentrancy};
use crate::records;
use crate::resource::{self, hot, Origin, ResourceId, TrackerId};
use crate::scope::{ContextFrame, Hold, TagGuard};
use crate::stack::{self, Backtraces, Capture};
use crate::units::{Age, Bytes};

// ---------------------------------------------------------------------------------------
// Trackable

/// A value whose contents live in one block of the global allocator.
///
/// # Safety
/// An implementation must promise that `heap_block` returns either `None`, or the start
/// address and the requested size (the `Layout::size` it was allocated with) of a block
/// that was allocated by the global allocator and stays allocated at least as long as
/// `self` is not mutated or dropped. It must return `None` for contents of zero bytes.
///
/// For a type of your own, delegating to the field that owns the block is the usual way:
///
/// ```
/// use leaktracker::Trackable;
/// use std::ptr::NonNull;
///
/// struct Connection {
///     buffer: Vec<u8>,
///     id: u32,
/// }
///
/// // SAFETY: delegates to `Vec<u8>`, whose block `Connection` owns.
/// unsafe impl Trackable for Connection {
///     fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
///         self.buffer.heap_block()
///     }
/// }
/// ```
pub unsafe trait Trackable {
    /// The start and the requested size of the block that holds this value's contents,
    /// or `None` when it has none.
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)>;
}

/// A block of `size` bytes at `ptr`, or `None` for an empty one.
fn block(ptr: *const u8, size: usize) -> Option<(NonNull<u8>, usize)> {
    if size == 0 {
        return None;
    }
    NonNull::new(ptr.cast_mut()).map(|p| (p, size))
}

// SAFETY: a `Box` owns one global-allocator block of `size_of_val` bytes holding the value
// (none when that is zero), live until the box is dropped.
unsafe impl<T: ?Sized> Trackable for Box<T> {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        block((&**self as *const T).cast(), std::mem::size_of_val(&**self))
    }
}

// SAFETY: a `Vec` with non-zero capacity of non-zero-sized elements owns one block of
// `capacity * size_of::<T>()` bytes starting at `as_ptr()`.
unsafe impl<T> Trackable for Vec<T> {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        block(
            self.as_ptr().cast(),
            self.capacity() * std::mem::size_of::<T>(),
        )
    }
}

// SAFETY: a `String` is a `Vec<u8>`.
unsafe impl Trackable for String {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        block(self.as_ptr(), self.capacity())
    }
}

// SAFETY: a `CString` is a `Box<[u8]>` of its bytes and the terminating nul.
unsafe impl Trackable for CString {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        block(self.as_ptr().cast(), self.as_bytes_with_nul().len())
    }
}

/// The block of an `Rc`/`Arc`: two `usize` counts, then the value (`#[repr(C)]` in std),
/// padded to its alignment. `value` points at the value.
fn counted_block<T: ?Sized>(value: &T) -> Option<(NonNull<u8>, usize)> {
    let size = std::mem::size_of_val(value);
    if size == 0 {
        // An empty `Rc<[T]>`/`Arc<str>` made by `Default` may share a static block.
        return None;
    }
    let counts = Layout::new::<[usize; 2]>();
    let value_layout = Layout::for_value(value);
    let (whole, offset) = counts.extend(value_layout).ok()?;
    let start = (value as *const T).cast::<u8>().wrapping_sub(offset);
    block(start, whole.pad_to_align().size())
}

// SAFETY: an `Rc` points at the value inside its `RcInner` block (strong and weak counts,
// then the value, `#[repr(C)]`), allocated by the global allocator; `counted_block`
// computes that block's start and layout size. Live while any `Rc` to it exists.
unsafe impl<T: ?Sized> Trackable for Rc<T> {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        counted_block(&**self)
    }
}

// SAFETY: as for `Rc`: `ArcInner` has the same `#[repr(C)]` layout (two atomic counts).
unsafe impl<T: ?Sized> Trackable for Arc<T> {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        counted_block(&**self)
    }
}

// SAFETY: delegates to `Box<T>`; pinning does not change the block.
unsafe impl<T: ?Sized> Trackable for Pin<Box<T>> {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        let r: &T = self;
        block((r as *const T).cast(), std::mem::size_of_val(r))
    }
}

// SAFETY: delegates to `T`, whose block outlives the borrow.
unsafe impl<T: Trackable + ?Sized> Trackable for &T {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        (**self).heap_block()
    }
}

// ---------------------------------------------------------------------------------------
// Errors and results

/// Why a block could not be tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackError {
    /// No `TrackingAllocator` is the global allocator of this process.
    NotInstalled,
    /// The value's contents take 0 bytes, so there is no heap block to tag.
    NoHeapBlock,
    /// The record table is at its cap or out of memory; the record was dropped (and counted).
    TableFull,
    /// Every resource id is in use (16,777,216 live resources).
    TooManyResources,
}

impl fmt::Display for TrackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackError::NotInstalled => {
                "leaktracker: no TrackingAllocator is the global allocator of this process \
                 (add `#[global_allocator] static ALLOC: leaktracker::TrackingAllocator = \
                 leaktracker::TrackingAllocator::system();`)"
            }
            TrackError::NoHeapBlock => {
                "leaktracker: the value has no heap block (its contents take 0 bytes)"
            }
            TrackError::TableFull => {
                "leaktracker: the record table is full (cap or memory); the record was dropped"
            }
            TrackError::TooManyResources => "leaktracker: too many live resources",
        })
    }
}

impl std::error::Error for TrackError {}

/// One live resource: its name, kind, age and what it still holds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LeakInfo {
    /// The name given when it was tracked (or the default `obj-0x…` / `scope-N`).
    pub name: String,
    /// The kind given when it was tracked.
    pub kind: String,
    /// When it was (last) tracked, on the wall clock.
    pub created_at: SystemTime,
    /// Live tagged blocks.
    pub allocations: usize,
    /// Their requested sizes, added up.
    pub bytes: usize,
    pub(crate) age: Duration,
}

impl LeakInfo {
    /// Age as of the `live()` call that returned it (monotonic clock).
    pub fn age(&self) -> Duration {
        self.age
    }

    fn from_snapshot(s: resource::Snapshot, now: Instant) -> LeakInfo {
        LeakInfo {
            age: s.created.age_at(now),
            name: s.name,
            kind: s.kind,
            created_at: s.created.wall,
            allocations: s.blocks,
            bytes: s.bytes,
        }
    }
}

impl fmt::Display for LeakInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): age {}, {} allocation{}, {}",
            self.name,
            self.kind,
            Age(self.age),
            self.allocations,
            if self.allocations == 1 { "" } else { "s" },
            Bytes(self.bytes)
        )
    }
}

/// Process-wide counters of the record table.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Stats {
    /// Tagged blocks recorded now.
    pub records: usize,
    /// Records the table could not take (cap or memory exhausted) since start-up.
    pub dropped_records: u64,
    /// Memory the record table has mapped, in bytes.
    pub table_bytes: usize,
    /// Resource slots in use (live, or dead and not yet reclaimed).
    pub resources: usize,
    /// Resources that could not be created since start-up (no memory for their slot, dead
    /// slots reclaimed first): the scopes, tasks and `track` calls behind them tagged nothing.
    pub dropped_resources: u64,
    /// Distinct allocation stacks stored (with backtraces on).
    pub stacks: usize,
    /// Memory of the stack table (stacks, their index, and the block-to-stack records).
    pub stack_bytes: usize,
    /// Recorded blocks that have an allocation stack (at most `records`).
    pub blocks_with_stacks: usize,
}

/// The record table's counters.
pub fn stats() -> Stats {
    let (t, block_stacks) = records::stats();
    let (stacks, arena_bytes) = stack::table_stats();
    Stats {
        records: t.records,
        dropped_records: t.dropped,
        table_bytes: t.table_bytes,
        resources: resource::resource_slots(),
        dropped_resources: resource::resources_not_created(),
        stacks,
        stack_bytes: arena_bytes + block_stacks.table_bytes,
        blocks_with_stacks: block_stacks.records,
    }
}

/// Caps the number of records the table keeps (`None`: only memory limits it). Records
/// beyond the cap are dropped and counted (see [`Stats::dropped_records`]); the blocks are
/// still served. The cap is spread evenly over the table's 64 shards: each shard keeps at
/// most `ceil(max / 64)` records, so the table holds at most `max` rounded up to a multiple
/// of 64 (and `Some(0)` keeps none).
pub fn set_max_records(max: Option<usize>) {
    records::set_max_records(max);
}

/// Sets the process-wide backtrace setting for resources created from now on (trackers
/// with their own setting keep it). `LEAKTRACKER_BACKTRACE` sets it at start-up.
pub fn set_backtraces(mode: Backtraces) {
    let c = Capture::of(Some(mode));
    stack::prepare_capture(c, in_learning_scope);
    stack::set_default_capture(c);
}

/// The tracker whose one scope the stack capture learns the allocator's own frames in.
static LEARNER: LeakTracker = LeakTracker::new();

/// Runs `learn` in a scope of [`LEARNER`] that captures every stack (for
/// `stack::prepare_capture`).
fn in_learning_scope(learn: &mut dyn FnMut() -> bool) -> bool {
    LEARNER.set_backtraces(Some(Backtraces::All));
    let _s = LEARNER.scope("backtrace-calibration", "leaktracker");
    learn()
}

// ---------------------------------------------------------------------------------------
// is_installed

static INSTALLED: AtomicU8 = AtomicU8::new(0);

/// True when a [`TrackingAllocator`](crate::TrackingAllocator) is the global allocator of
/// this process. The first call makes one probe allocation; the answer is cached.
pub fn is_installed() -> bool {
    match INSTALLED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let prev = guard::begin_probe();
            let layout = Layout::new::<u64>();
            // SAFETY: `layout` has a non-zero size.
            let p = std::hint::black_box(unsafe { std::alloc::alloc(layout) });
            if !p.is_null() {
                // SAFETY: `p` was just allocated with `layout`.
                unsafe { std::alloc::dealloc(p, layout) };
            }
            let seen = guard::end_probe(prev);
            if !p.is_null() {
                INSTALLED.store(if seen { 1 } else { 2 }, Ordering::Relaxed);
            }
            seen
        }
    }
}

// ---------------------------------------------------------------------------------------
// LeakTracker

const GLOBAL_ID: u64 = 1;
/// 64-bit: ids are never reused, however many trackers a program makes.
static NEXT_TRACKER_ID: AtomicU64 = AtomicU64::new(GLOBAL_ID + 1);
static SCOPE_COUNTER: AtomicU64 = AtomicU64::new(1);
/// Context ids of instrumented futures (0 is every thread's own context).
static NEXT_CONTEXT: AtomicU32 = AtomicU32::new(1);
static GLOBAL: LeakTracker = LeakTracker {
    id: AtomicU64::new(GLOBAL_ID),
    capture: AtomicU32::new(Capture::INHERIT.raw()),
};

/// Tags heap blocks with a name and a kind, and lists the ones still live.
///
/// A tagged block stays listed until it is freed (the allocator removes its tag by itself)
/// or untracked. See the [crate guide](crate) for a tour.
#[derive(Debug)]
pub struct LeakTracker {
    /// 0 until first used, then a process-unique id.
    id: AtomicU64,
    /// Backtrace setting for this tracker's new resources (a [`Capture`] word; inherit: the
    /// process's).
    capture: AtomicU32,
}

impl Default for LeakTracker {
    fn default() -> Self {
        LeakTracker::new()
    }
}

impl Drop for LeakTracker {
    fn drop(&mut self) {
        if self.assigned_id().is_some() {
            self.clear();
        }
    }
}

impl LeakTracker {
    /// A new tracker with no tags; usable in a `static`.
    pub const fn new() -> LeakTracker {
        LeakTracker {
            id: AtomicU64::new(0),
            capture: AtomicU32::new(Capture::INHERIT.raw()),
        }
    }

    /// Backtraces for this tracker's resources created from now on: `Some(mode)`, or
    /// `None` to follow the process-wide setting ([`set_backtraces`](crate::set_backtraces),
    /// `LEAKTRACKER_BACKTRACE`).
    pub fn set_backtraces(&self, mode: Option<Backtraces>) {
        let c = Capture::of(mode);
        stack::prepare_capture(c, in_learning_scope);
        self.capture.store(c.raw(), Ordering::Relaxed);
    }

    fn capture_setting(&self) -> Capture {
        stack::effective(Capture::from_raw(self.capture.load(Ordering::Relaxed)))
    }

    /// Creates a resource of this tracker with one hold (the caller's), with this
    /// tracker's backtrace setting. `None` when there is no room for another resource.
    pub(crate) fn new_resource(
        &self,
        name: Cow<'static, str>,
        kind: Cow<'static, str>,
        origin: Origin,
        created: Timestamp,
    ) -> Option<Hold> {
        resource::create(
            self.id(),
            name,
            kind,
            origin,
            created,
            self.capture_setting(),
        )
        .map(Hold::adopt_created)
    }

    /// A scope's or task's resource, created now with its caller's hold; an empty name
    /// becomes `PREFIX-N` (N counts scopes and tasks together).
    fn new_unit(
        &self,
        mut name: Cow<'static, str>,
        kind: Cow<'static, str>,
        origin: Origin,
        prefix: &str,
    ) -> Option<Hold> {
        let _r = Reentrancy::enter();
        if name.is_empty() {
            let n = SCOPE_COUNTER.fetch_add(1, Ordering::Relaxed);
            name = Cow::Owned(format!("{prefix}-{n}"));
        }
        self.new_resource(name, kind, origin, Timestamp::now())
    }

    /// The process-wide tracker behind [`track_resource`] and [`untrack_resource`].
    pub fn global() -> &'static LeakTracker {
        &GLOBAL
    }

    fn assigned_id(&self) -> Option<TrackerId> {
        match self.id.load(Ordering::Acquire) {
            0 => None,
            id => Some(TrackerId(id)),
        }
    }

    pub(crate) fn id(&self) -> TrackerId {
        if let Some(id) = self.assigned_id() {
            return id;
        }
        // Normally done before `main`; here in case the start-up hook did not run.
        crate::fork::register_once();
        let new = NEXT_TRACKER_ID.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => TrackerId(new),
            Err(current) => TrackerId(current),
        }
    }

    /// Tags the heap block that holds `obj`'s contents as the resource `name` of `kind`.
    ///
    /// The block stays listed by [`live`](Self::live) until it is freed or untracked.
    /// Tracking it again updates its entry in place (name, kind, creation time; same place
    /// in the order); tracking a block that another tracker or a scope holds moves it here.
    /// An empty name becomes `obj-0x<address>`.
    ///
    /// # Errors
    /// [`TrackError::NotInstalled`] without a `TrackingAllocator` as the global allocator,
    /// [`TrackError::NoHeapBlock`] for contents of zero bytes, [`TrackError::TableFull`] /
    /// [`TrackError::TooManyResources`] when the tables are exhausted.
    pub fn track<T: Trackable + ?Sized>(
        &self,
        obj: &T,
        name: impl Into<Cow<'static, str>>,
        kind: impl Into<Cow<'static, str>>,
    ) -> Result<(), TrackError> {
        if !is_installed() {
            return Err(TrackError::NotInstalled);
        }
        let (ptr, size) = obj.heap_block().ok_or(TrackError::NoHeapBlock)?;
        let block = ptr.as_ptr();
        if records::too_large(block, size) {
            return Err(TrackError::TableFull);
        }
        let _r = Reentrancy::enter();
        let mut name = name.into();
        if name.is_empty() {
            name = Cow::Owned(format!("obj-{:#x}", block as usize));
        }
        self.track_block(block, size, name, kind.into())
    }

    fn track_block(
        &self,
        block: *mut u8,
        size: usize,
        name: Cow<'static, str>,
        kind: Cow<'static, str>,
    ) -> Result<(), TrackError> {
        let id = self.id();
        let now = Timestamp::now();
        // Pin the block's current resource (if any) while we look at it.
        let pinned = records::with_resource_of(block, Hold::acquire);
        if let Some(pin) = pinned {
            let h = hot(pin.id());
            if h.tracker() == id && h.origin() == Origin::Object {
                resource::update(pin.id(), name, kind, now);
                return Ok(());
            }
        }
        let capture = self.capture_setting();
        let created = resource::create(id, name, kind, Origin::Object, now, capture)
            .map(Hold::adopt_created)
            .ok_or(TrackError::TooManyResources)?;
        let new = created.id();
        // The stack of the `track` call, captured with no lock held.
        let stack = capture.stack_for(size);
        let stored = records::retag(block, size, new, stack);
        // The creation hold goes: from now on the block keeps the resource alive.
        drop(created);
        stored.map_err(|_| TrackError::TableFull)
    }

    /// Removes this tracker's tag from the block of `obj`: `true` if it had one, `false`
    /// (and no other effect) if not. Works for blocks tagged by this tracker's scopes too.
    pub fn untrack<T: Trackable + ?Sized>(&self, obj: &T) -> bool {
        let Some(id) = self.assigned_id() else {
            return false;
        };
        let Some((ptr, _)) = obj.heap_block() else {
            return false;
        };
        records::untag(ptr.as_ptr(), id)
    }

    /// Tags every allocation the current thread makes until the guard drops, together as
    /// one resource created now. An empty name becomes `scope-<n>`.
    ///
    /// Scopes nest (the innermost wins); a guard, when dropped (in any order, or while
    /// unwinding), restores the tag it replaced. Blocks allocated before the scope keep
    /// their tag, or their lack of one, when they grow inside it.
    pub fn scope(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: impl Into<Cow<'static, str>>,
    ) -> ScopeGuard<'_> {
        ScopeGuard {
            scope: self.open_scope(name.into(), kind.into()),
            _tracker: PhantomData,
        }
    }

    /// Opens a scope (see [`scope`](Self::scope)) whose guard does not borrow the tracker:
    /// for owners that keep the tracker alive themselves (`LeakCheck`).
    pub(crate) fn open_scope(&self, name: Cow<'static, str>, kind: Cow<'static, str>) -> OpenScope {
        let hold = self.new_unit(name, kind, Origin::Scope, "scope");
        OpenScope {
            res: hold.as_ref().map(Hold::id),
            tag: TagGuard::install(hold),
            _thread: PhantomData,
        }
    }

    /// Wraps `fut` so that everything it allocates while it is polled, on whatever thread
    /// polls it, is tagged as one resource created now.
    ///
    /// With `tracing::Instrument` in scope, call it on a `&LeakTracker`:
    /// `LeakTracker::global().instrument(..)`, `(&tracker).instrument(..)`,
    /// `arc.as_ref().instrument(..)` or `LeakTracker::instrument(&tracker, ..)`. On an owned
    /// tracker, a `static` one, an `Arc` or a `Box`, Rust's method resolution tries the
    /// by-value receiver first, finds the trait's `instrument(self, span)` there and stops
    /// (error E0061), whatever this crate does (tested in `tests/instrument_with_tracing.rs`).
    ///
    /// A [`scope`](Self::scope) opened inside the future may be held across `.await`s: it
    /// goes on tagging when the future is polled again and, when dropped, gives the future
    /// its task tag back. Between polls the polling thread has its own tag; dropping a
    /// pending future leaves none of its tags behind.
    pub fn instrument<F: Future>(
        &self,
        fut: F,
        name: impl Into<Cow<'static, str>>,
        kind: impl Into<Cow<'static, str>>,
    ) -> Instrumented<F> {
        let hold = self.new_unit(name.into(), kind.into(), Origin::Task, "task");
        let mut ctx = NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed);
        if ctx == 0 {
            // Wrapped around: 0 is the threads' own context.
            ctx = NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed);
        }
        Instrumented {
            inner: ManuallyDrop::new(fut),
            task: hold.as_ref().map(Hold::id),
            cur: hold,
            ctx,
        }
    }

    /// This tracker's resources that still hold at least one live tagged block, oldest
    /// (first tracked) first.
    pub fn live(&self) -> Vec<LeakInfo> {
        let Some(id) = self.assigned_id() else {
            return Vec::new();
        };
        let r = Reentrancy::enter();
        let snaps = resource::snapshot(&r, Some(id));
        let now = Instant::now();
        snaps
            .into_iter()
            .map(|s| LeakInfo::from_snapshot(s, now))
            .collect()
    }

    /// Like [`live`](Self::live), only the resources older than `age`.
    pub fn live_older_than(&self, age: Duration) -> Vec<LeakInfo> {
        let mut v = self.live();
        v.retain(|i| i.age > age);
        v
    }

    /// Forgets every tag of this tracker; the blocks stay allocated and untouched. Open
    /// scopes stay open and go on tagging new allocations.
    pub fn clear(&self) {
        let Some(id) = self.assigned_id() else {
            return;
        };
        records::clear(id);
    }
}

/// Tags `obj`'s block in the global tracker; see [`LeakTracker::track`].
///
/// # Errors
/// As [`LeakTracker::track`].
pub fn track_resource<T: Trackable + ?Sized>(
    obj: &T,
    name: impl Into<Cow<'static, str>>,
    kind: impl Into<Cow<'static, str>>,
) -> Result<(), TrackError> {
    LeakTracker::global().track(obj, name, kind)
}

/// Removes the global tracker's tag from `obj`'s block; see [`LeakTracker::untrack`].
pub fn untrack_resource<T: Trackable + ?Sized>(obj: &T) -> bool {
    LeakTracker::global().untrack(obj)
}

// ---------------------------------------------------------------------------------------
// Tags on the current thread

/// Returned by [`LeakTracker::scope`]: tags the thread's allocations until dropped.
///
/// Not `Send`: a tag belongs to the thread that opened the scope, so a guard cannot be
/// moved to (and dropped on) another thread:
///
/// ```compile_fail
/// let tracker = leaktracker::LeakTracker::new();
/// let guard = tracker.scope("request", "http");
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // error: `*const ()` cannot be sent between threads
/// });
/// ```
#[must_use = "the scope ends when the guard is dropped"]
pub struct ScopeGuard<'a> {
    scope: OpenScope,
    _tracker: PhantomData<&'a LeakTracker>,
}

impl fmt::Debug for ScopeGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeGuard")
            .field("restores", &self.scope.tag.restores())
            .finish()
    }
}

/// An open scope: its resource is the thread's tag (or a later scope's saved one) until
/// this drops, when the resource is marked ended and the replaced tag restored. Not
/// `Send`: the tag is the opening thread's.
pub(crate) struct OpenScope {
    /// The scope's own resource (marked ended when the scope drops).
    res: Option<ResourceId>,
    tag: TagGuard,
    _thread: PhantomData<*const ()>,
}

/// A future whose allocations are tagged while it is polled: see [`LeakTracker::instrument`].
///
/// The future is a tagging context of its own. Each poll (and its drop) makes the future's
/// current tag the thread's, and takes it back when it returns (or unwinds), giving the
/// thread its previous tag again. The future's current tag is its task resource, or a scope
/// opened inside it that is still open: a [`ScopeGuard`] held across an `.await` goes on
/// tagging on the next poll and, when dropped, restores the task's tag; a pending future
/// that is dropped drops its scopes in its own context, so no tag of it stays on the
/// dropping thread.
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<F> {
    /// Dropped in `Drop`, inside the future's context.
    inner: ManuallyDrop<F>,
    /// The future's current tag (its task resource, or a scope opened in it) between
    /// polls, with its hold.
    cur: Option<Hold>,
    /// The future's context id.
    ctx: u32,
    /// The task's own resource (marked ended when the future is dropped).
    task: Option<ResourceId>,
}

impl Drop for OpenScope {
    fn drop(&mut self) {
        // Still held: by the thread's tag, or by a later scope's guard (out of order); the
        // tag guard releases it after this.
        if let Some(r) = self.res {
            resource::mark_ended(r);
        }
    }
}

impl<F> Drop for Instrumented<F> {
    fn drop(&mut self) {
        // Held by the future's current tag, or by a scope still open inside it.
        if let Some(r) = self.task {
            resource::mark_ended(r);
        }
        let Instrumented {
            inner, cur, ctx, ..
        } = self;
        {
            let _frame = ContextFrame::enter(cur, *ctx);
            // SAFETY: `inner` is dropped here, once, in place (as pinning requires), and
            // never used again: this is `Instrumented`'s drop.
            unsafe { ManuallyDrop::drop(inner) };
        }
        // The future's current tag's hold goes with it.
        drop(self.cur.take());
    }
}

impl<F: fmt::Debug> fmt::Debug for Instrumented<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("inner", &*self.inner)
            .finish()
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self`, and
        // neither `Drop` (which drops it in place) nor anything else here moves it; `cur`
        // and `ctx` are plain `Copy` fields, not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let _frame = ContextFrame::enter(&mut this.cur, this.ctx);
        // Stacks captured while the task runs end here (see `TaskFrame`).
        let anchor = 0u8;
        let _stop = crate::stack::TaskFrame::enter(
            std::hint::black_box(std::ptr::addr_of!(anchor)) as usize,
        );
        // SAFETY: see above: `inner` stays pinned where it is.
        unsafe { Pin::new_unchecked(&mut *this.inner) }.poll(cx)
    }
}
