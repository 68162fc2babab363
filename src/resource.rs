//! Resources: a name, a kind, a creation time and live counters, shared by the blocks
//! tagged with them.
//!
//! A resource is split in two:
//! * a *hot* slot, read and written by the allocator path with atomics only: live blocks,
//!   live bytes, holds, state and owner. Hot slots live in chunks mapped from the OS and
//!   never moved or freed, so a resource id stays a valid index forever; each slot has its
//!   own cache line, so two threads tagging two resources never share a line.
//! * *cold* metadata (name, kind, times, order), only touched under the registry lock by
//!   tracker code, which may allocate (under the reentrancy guard).
//!
//! A resource is alive while it has live blocks or holds (an open scope, an instrumented
//! future, a tracker call in progress). The allocator path that drops the last one marks
//! it dead; the registry reclaims dead slots later, outside the allocator path, so that
//! the allocator never drops a name.

use std::borrow::Cow;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::cleared::Cleared;
use crate::clock::Timestamp;
use crate::guard::Reentrancy;
use crate::lifetime::{Lifetime, BLOCK, HOLD};
use crate::stack::Capture;

/// Bits of a resource id: ids are below [`MAX_RESOURCES`].
pub(crate) const RES_BITS: u32 = 24;
/// Resource ids are below this.
pub(crate) const MAX_RESOURCES: usize = 1 << RES_BITS;

/// A tracker's id, process-unique (handed out by `tracker.rs`); a resource belongs to one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TrackerId(pub(crate) u64);

/// A resource's id: the index of its hot slot.
///
/// Only the registry makes one (a new resource's), and [`ResourceId::from_raw`] remakes
/// one from the number of another; so every `ResourceId`'s chunk of hot slots is mapped
/// (chunks are never unmapped), and [`hot`] needs no precondition.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ResourceId(u32);

impl ResourceId {
    /// The id as a number below [`MAX_RESOURCES`] (for a record word or the thread's tag word).
    #[inline(always)]
    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    /// Remakes an id from its number.
    ///
    /// # Safety
    /// * `raw` must be the [`raw`](Self::raw) of a `ResourceId`.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(raw: u32) -> ResourceId {
        ResourceId(raw)
    }
}

impl std::fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r{}", self.0)
    }
}

const CHUNK_BITS: u32 = 12;
const CHUNK_SLOTS: usize = 1 << CHUNK_BITS;
const CHUNKS: usize = MAX_RESOURCES / CHUNK_SLOTS;

/// Where a resource came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Origin {
    /// `LeakTracker::track`: one block.
    Object = 0,
    /// `LeakTracker::scope`.
    Scope = 1,
    /// `LeakTracker::instrument`.
    Task = 2,
    /// A tracing span (the `tracing` feature's layer).
    Span = 3,
}

impl Origin {
    /// Whether resources of this origin are units of work (they tag whatever is allocated
    /// while they are current), as opposed to one tracked object.
    pub(crate) fn is_unit(self) -> bool {
        self != Origin::Object
    }
}

/// The allocator-side half of a resource.
#[repr(C, align(64))]
pub(crate) struct Hot {
    /// Live blocks and holds; the resource dies when both are gone.
    life: Lifetime,
    /// Live bytes (requested sizes).
    bytes: AtomicUsize,
    /// Owning tracker id.
    tracker: AtomicU64,
    /// Backtrace setting (a [`Capture`] word).
    capture: AtomicU32,
    /// Bumped twice by each `clear` of the owning tracker: a record taken out for a
    /// realloc is put back only if this did not change meanwhile (see `cleared.rs`).
    /// Both bumps happen under the registry lock, which `create` and the fork handler
    /// also take, so a reused slot always starts even.
    cleared: Cleared,
    origin: AtomicU8,
    /// Its place among the units of its kind that have ended (1 = the first to end); 0
    /// while it has not ended. Set once, by [`mark_ended`].
    ended: AtomicU64,
    /// Its kind's slot in [`KIND_ENDED`].
    kind_slot: AtomicU32,
}

/// Kinds with a counter of their own in [`KIND_ENDED`]; later kinds share the last one.
const KIND_SLOTS: usize = 1024;

/// Units ended so far, per kind slot: read and bumped without a lock, so a unit can be
/// marked ended from any thread, at any time.
static KIND_ENDED: [AtomicU64; KIND_SLOTS] = [const { AtomicU64::new(0) }; KIND_SLOTS];

/// Marks resource `id` (a unit: a scope, a task, a span) ended, once: it gets its place
/// among the ended units of its kind. The caller holds a hold on it (it is alive).
pub(crate) fn mark_ended(id: ResourceId) {
    let h = hot(id);
    if h.ended.load(Ordering::Relaxed) != 0 {
        return;
    }
    let slot = (h.kind_slot.load(Ordering::Relaxed) as usize).min(KIND_SLOTS - 1);
    let n = KIND_ENDED[slot].fetch_add(1, Ordering::Relaxed) + 1;
    let _ = h
        .ended
        .compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed);
}

static CHUNK_PTRS: [AtomicPtr<Hot>; CHUNKS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// The hot slot of resource `id`.
#[inline(always)]
pub(crate) fn hot(id: ResourceId) -> &'static Hot {
    let id = id.0 as usize;
    let chunk = CHUNK_PTRS[(id >> CHUNK_BITS) & (CHUNKS - 1)].load(Ordering::Acquire);
    debug_assert!(!chunk.is_null());
    // SAFETY: every `ResourceId` comes from the registry (see its doc), which maps the
    // resource's chunk (zeroed, `CHUNK_SLOTS` slots, never unmapped) before it makes the
    // id, and publishes it with Release; every `Hot` field is an atomic, so a shared
    // reference to zeroed memory is valid.
    unsafe { &*chunk.add(id & (CHUNK_SLOTS - 1)) }
}

impl Hot {
    /// Counts a new live block of `size` bytes.
    #[inline(always)]
    pub(crate) fn add_block(&self, size: usize) {
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.life.add(BLOCK);
    }

    /// Uncounts a live block of `size` bytes; the resource may die.
    #[inline(always)]
    pub(crate) fn remove_block(&self, size: usize) {
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        self.life.release(BLOCK);
    }

    /// Changes the size of one of this resource's live blocks.
    #[inline(always)]
    pub(crate) fn resize_block(&self, old: usize, new: usize) {
        if new >= old {
            self.bytes.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.bytes.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    /// Takes a hold: the resource stays alive, even without blocks, until it is released.
    /// Only valid while the resource is known alive (a block record or a hold exists).
    #[inline]
    pub(crate) fn acquire_hold(&self) {
        self.life.add(HOLD);
    }

    /// Releases a hold.
    #[inline]
    pub(crate) fn release_hold(&self) {
        self.life.release(HOLD);
    }

    /// The owning tracker's id.
    #[inline(always)]
    pub(crate) fn tracker(&self) -> TrackerId {
        TrackerId(self.tracker.load(Ordering::Relaxed))
    }

    /// The `cleared` generation (see `cleared.rs`).
    #[inline(always)]
    pub(crate) fn cleared(&self) -> &Cleared {
        &self.cleared
    }

    /// The backtrace setting of this resource's blocks.
    #[inline(always)]
    pub(crate) fn capture(&self) -> Capture {
        Capture::from_raw(self.capture.load(Ordering::Relaxed))
    }

    /// Where the resource came from.
    #[inline]
    pub(crate) fn origin(&self) -> Origin {
        match self.origin.load(Ordering::Relaxed) {
            0 => Origin::Object,
            1 => Origin::Scope,
            2 => Origin::Task,
            _ => Origin::Span,
        }
    }

    /// (live blocks, live bytes), read without a lock (exact when no thread is changing them).
    #[inline]
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.life.blocks() as usize,
            self.bytes.load(Ordering::Relaxed),
        )
    }

    fn is_live(&self) -> bool {
        self.life.is_live()
    }

    /// Whether something still holds the resource open (a scope not yet ended, a future
    /// not yet dropped, a span not yet closed).
    fn is_open(&self) -> bool {
        self.life.holds() > 0
    }
}

/// Runs `walk` (which drops the records of `tracker`'s blocks) between two bumps of the
/// `cleared` generation of each of `tracker`'s resources, under the registry lock: clears
/// run one at a time, and no resource is created or reclaimed between the bumps (see
/// `cleared.rs`, whose protocol relies on this).
pub(crate) fn while_clearing(tracker: TrackerId, walk: impl FnOnce()) {
    let l = lock_registry();
    let bump = |reg: &Registry| {
        for (id, meta) in reg.metas.iter().enumerate() {
            if meta.is_some() {
                let h = hot(ResourceId(id as u32));
                if h.tracker() == tracker {
                    h.cleared.bump();
                }
            }
        }
    };
    bump(&l.reg);
    walk();
    bump(&l.reg);
    drop(l);
}

// ---------------------------------------------------------------------------------------
// The registry: cold metadata and id allocation.

struct Meta {
    name: Name,
    kind: Name,
    created: Timestamp,
    seq: u64,
}

struct Registry {
    metas: Vec<Option<Meta>>,
    /// Resources created so far per kind (never decreases: reclaimed ones count too), so a
    /// report can tell how many units of a kind came and went.
    /// Per kind: its slot in [`KIND_ENDED`].
    kinds: std::collections::BTreeMap<Box<str>, u32>,
    free: Vec<ResourceId>,
    /// Scan for dead slots when `metas.len()` reaches this and the free list is empty.
    next_scan: usize,
    next_seq: u64,
    /// Resources that could not be created (no id and no memory for one) since start-up.
    not_created: u64,
}

/// The registry lock yields the CPU while it waits: it is held for a whole `live()` scan
/// (and for `clear`), so on a loaded machine a pure spin could burn the waiter's time
/// slices while the holder is preempted. It is never taken on the allocator path.
type RegistryMutex<T> = spin::mutex::SpinMutex<T, spin::relax::Yield>;
type RegistryGuard<T> = spin::mutex::SpinMutexGuard<'static, T>;

static REGISTRY: RegistryMutex<Registry> = RegistryMutex::new(Registry {
    metas: Vec::new(),
    kinds: std::collections::BTreeMap::new(),
    free: Vec::new(),
    next_scan: 1024,
    next_seq: 0,
    not_created: 0,
});

/// The registry lock, taken with the reentrancy guard set (the registry allocates).
/// Field order matters: the lock is released before the guard.
struct Locked {
    reg: RegistryGuard<Registry>,
    _reentrancy: Reentrancy,
}

fn lock_registry() -> Locked {
    let r = Reentrancy::enter();
    Locked {
        reg: REGISTRY.lock(),
        _reentrancy: r,
    }
}

/// A resource's name or kind: cloned under the registry lock without allocating, so
/// that `snapshot` copies the strings out after releasing it.
#[derive(Clone)]
enum Name {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Static(s) => s,
            Name::Shared(s) => s,
        }
    }
}

/// Copies an owned name into a block of the tracker's own. The caller's `String` may have
/// been allocated inside a scope (tagged); keeping it would show the name as a leak.
/// Must run under the reentrancy guard.
fn own_name(s: Cow<'static, str>) -> Name {
    match s {
        Cow::Borrowed(b) => Name::Static(b),
        Cow::Owned(o) => Name::Shared(Arc::from(o.as_str())),
    }
}

impl Registry {
    /// Drops the metadata of dead resources and frees their ids.
    fn reclaim(&mut self) {
        for (id, meta) in self.metas.iter_mut().enumerate() {
            if meta.is_some() {
                // Room first: a slot marked reclaimed must reach the free list. Without
                // memory for it the slot stays dead, for a later scan.
                if self.free.try_reserve(1).is_err() {
                    break;
                }
                let id = ResourceId(id as u32);
                if hot(id).life.reclaim() {
                    *meta = None;
                    self.free.push(id);
                }
            }
        }
        let live = self.metas.len() - self.free.len();
        self.next_scan = self.metas.len() + live.max(1024);
    }

    /// The slot of `kind` in [`KIND_ENDED`] (a new one for a new kind).
    fn kind_slot(&mut self, kind: &str) -> u32 {
        if let Some(slot) = self.kinds.get(kind) {
            return *slot;
        }
        let slot = self.kinds.len().min(KIND_SLOTS - 1) as u32;
        self.kinds.insert(kind.into(), slot);
        slot
    }

    /// An id for a new resource: a free one, a new slot, or (when a new slot cannot be
    /// had: no memory for it, or every id taken) a dead slot reclaimed now. `None` when
    /// none of these works; counted in `not_created`.
    fn new_id(&mut self) -> Option<ResourceId> {
        if self.free.is_empty() && self.metas.len() >= self.next_scan {
            self.reclaim();
        }
        if let Some(id) = self.free.pop() {
            return Some(id);
        }
        if let Some(id) = self.new_slot() {
            return Some(id);
        }
        self.reclaim();
        let id = self.free.pop();
        if id.is_none() {
            self.not_created += 1;
        }
        id
    }

    /// Appends a slot, mapping its chunk of hot slots if it is the chunk's first; `None`
    /// when every id is taken or memory for the slot cannot be had.
    fn new_slot(&mut self) -> Option<ResourceId> {
        if self.metas.len() >= MAX_RESOURCES {
            return None;
        }
        let id = self.metas.len();
        let chunk = &CHUNK_PTRS[id >> CHUNK_BITS];
        if chunk.load(Ordering::Acquire).is_null() {
            let p = crate::os::map_zeroed(CHUNK_SLOTS * std::mem::size_of::<Hot>());
            if p.is_null() {
                return None;
            }
            chunk.store(p.cast(), Ordering::Release);
        }
        self.metas.try_reserve(1).ok()?;
        self.metas.push(None);
        Some(ResourceId(id as u32))
    }
}

/// Creates a resource owned by `tracker` with one hold (the caller's). `None` when there
/// is no room for another resource.
pub(crate) fn create(
    tracker: TrackerId,
    name: Cow<'static, str>,
    kind: Cow<'static, str>,
    origin: Origin,
    created: Timestamp,
    capture: Capture,
) -> Option<ResourceId> {
    let mut l = lock_registry();
    let name = own_name(name);
    let kind = own_name(kind);
    let id = l.reg.new_id()?;
    let seq = l.reg.next_seq;
    l.reg.next_seq += 1;
    let kind_slot = l.reg.kind_slot(kind.as_str());
    l.reg.metas[id.0 as usize] = Some(Meta {
        name,
        kind,
        created,
        seq,
    });
    let h = hot(id);
    h.bytes.store(0, Ordering::Relaxed);
    h.tracker.store(tracker.0, Ordering::Relaxed);
    h.origin.store(origin as u8, Ordering::Relaxed);
    h.capture.store(capture.raw(), Ordering::Relaxed);
    h.ended.store(0, Ordering::Relaxed);
    h.kind_slot.store(kind_slot, Ordering::Relaxed);
    h.life.start();
    Some(id)
}

/// Renames a live resource and restarts its clock (re-tracking in place); the caller holds it.
pub(crate) fn update(
    id: ResourceId,
    name: Cow<'static, str>,
    kind: Cow<'static, str>,
    created: Timestamp,
) {
    let mut l = lock_registry();
    let name = own_name(name);
    let kind = own_name(kind);
    let slot = l.reg.kind_slot(kind.as_str());
    if let Some(m) = l.reg.metas.get_mut(id.0 as usize).and_then(Option::as_mut) {
        m.name = name;
        m.kind = kind;
        m.created = created;
        // A span renamed by a field counts among the units of its new kind.
        hot(id).kind_slot.store(slot, Ordering::Relaxed);
    }
}

/// A copy of one live resource's data, taken by [`snapshot`].
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) id: ResourceId,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) created: Timestamp,
    pub(crate) blocks: usize,
    pub(crate) bytes: usize,
    pub(crate) origin: Origin,
    /// Still held open (see [`Hot::is_open`]).
    pub(crate) open: bool,
    /// Its place among the ended units of its kind (0: not ended).
    pub(crate) ended: u64,
    /// Units of its kind ended so far.
    pub(crate) kind_ended: u64,
}

/// The resources (of `tracker`, or of all trackers) that hold at least one live block,
/// oldest first. O(resources); reclaims dead slots on the way. Allocates: the strings
/// belong to the caller, not to a scope.
pub(crate) fn snapshot(_r: &Reentrancy, tracker: Option<TrackerId>) -> Vec<Snapshot> {
    let mut l = lock_registry();
    // Under the lock: one allocation, and name clones that do not allocate.
    let mut found = Vec::with_capacity(l.reg.metas.len() - l.reg.free.len());
    for (id, meta) in l.reg.metas.iter().enumerate() {
        let Some(m) = meta else { continue };
        let id = ResourceId(id as u32);
        let h = hot(id);
        if !h.is_live() || tracker.is_some_and(|t| t != h.tracker()) {
            continue;
        }
        let (blocks, bytes) = h.counts();
        if blocks == 0 {
            continue;
        }
        let slot = (h.kind_slot.load(Ordering::Relaxed) as usize).min(KIND_SLOTS - 1);
        found.push(Found {
            id,
            seq: m.seq,
            name: m.name.clone(),
            kind: m.kind.clone(),
            created: m.created,
            blocks,
            bytes,
            origin: h.origin(),
            open: h.is_open(),
            ended: h.ended.load(Ordering::Relaxed),
            kind_ended: KIND_ENDED[slot].load(Ordering::Relaxed),
        });
    }
    l.reg.reclaim();
    drop(l);
    found.sort_unstable_by_key(|f| f.seq);
    found
        .into_iter()
        .map(|f| Snapshot {
            id: f.id,
            name: f.name.as_str().to_owned(),
            kind: f.kind.as_str().to_owned(),
            created: f.created,
            blocks: f.blocks,
            bytes: f.bytes,
            origin: f.origin,
            open: f.open,
            ended: f.ended,
            kind_ended: f.kind_ended,
        })
        .collect()
}

/// What [`snapshot`] copies under the registry lock (names cloned without allocating).
struct Found {
    id: ResourceId,
    seq: u64,
    name: Name,
    kind: Name,
    created: Timestamp,
    blocks: usize,
    bytes: usize,
    origin: Origin,
    open: bool,
    ended: u64,
    kind_ended: u64,
}

/// Number of resource slots in use (live or not yet reclaimed).
pub(crate) fn resource_slots() -> usize {
    let l = lock_registry();
    l.reg.metas.len() - l.reg.free.len()
}

/// Resources that could not be created since start-up: no free id, no memory for a new
/// slot, and no dead slot to reclaim. The scopes, tasks and `track` calls that asked for
/// them tagged nothing.
pub(crate) fn resources_not_created() -> u64 {
    lock_registry().reg.not_created
}

/// Takes the registry lock for `fork` (released by [`force_unlock_registry`]).
pub(crate) fn lock_registry_for_fork() {
    std::mem::forget(REGISTRY.lock());
}

/// Releases the lock taken by [`lock_registry_for_fork`].
///
/// # Safety
/// * The registry lock must be held by [`lock_registry_for_fork`] (in this process or in
///   the parent of this `fork` child).
pub(crate) unsafe fn force_unlock_registry() {
    // SAFETY: the caller promises the lock is held and its guard forgotten.
    unsafe { REGISTRY.force_unlock() };
}
