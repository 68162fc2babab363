//! Block records: which tagged block belongs to which resource, how big it is, and which
//! stack allocated it. Every record operation lives here: the allocator path's (record a
//! block, forget it, take it out and put it back around a realloc) and the tracker's (tag
//! a block after the fact or move it to another resource, untag it, clear a tracker, count
//! blocks by resource and stack).
//!
//! One table, keyed by block address and private to this module: `RECORDS`, one
//! [`Record`] per tagged block (its size and resource), and beside a record, as its side
//! word (`table::Side`), the block's allocation stack if one was captured. A stack word
//! exists only beside a record.
//!
//! A resource's counters (live blocks and bytes) change with its records, under the
//! record's shard lock. At most one record shard lock is held at a time. A block's stack
//! word lives in the same shard, under the same lock: every operation changes a record
//! and its stack in one step (so `clear` finds both or neither), and the allocator path
//! takes one lock per block, with or without stacks.

use std::collections::HashMap;

use crate::cleared::Generation;
use crate::guard::Reentrancy;
use crate::resource::{hot, ResourceId, TrackerId, RES_BITS};
use crate::stack::{self, BlockStack, StackCount, StackId};
use crate::table::{Full, RecordTable, Side, TableStats};

/// The record of every tagged block in the process: address -> [`Record`] word; its side
/// words: address -> [`BlockStack`] word, for the recorded blocks that have a captured
/// stack.
static RECORDS: RecordTable<0> = RecordTable::new();

/// Block sizes are below this (1 TiB); a larger block's record is dropped and counted.
const MAX_BLOCK_SIZE: usize = 1 << (64 - RES_BITS);

/// Whether a block of `size` bytes is too large for a record; if so, its record is
/// counted as dropped.
#[inline]
pub(crate) fn too_large(block: *mut u8, size: usize) -> bool {
    let addr = block as usize;
    if size >= MAX_BLOCK_SIZE {
        RECORDS.count_dropped(addr);
        return true;
    }
    false
}

/// A block's size and resource, packed in the word its table slot holds.
///
/// The tables hold only words made by [`Record::new`] (they are private to this module,
/// and every insert goes through a `Record`), so the resource of a word read back from
/// them is a real [`ResourceId`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct Record(u64);

impl Record {
    /// `size` must be below [`MAX_BLOCK_SIZE`] (callers check).
    #[inline(always)]
    fn new(size: usize, res: ResourceId) -> Record {
        debug_assert!(size < MAX_BLOCK_SIZE);
        Record(((size as u64) << RES_BITS) | u64::from(res.raw()))
    }

    /// A word read back from `RECORDS`.
    ///
    /// # Safety
    /// * `w` must be a word of `RECORDS` (one [`Record::word`] stored there): its low bits
    ///   are then a `ResourceId`'s number, which [`resource`](Self::resource) relies on.
    #[inline(always)]
    unsafe fn from_word(w: u64) -> Record {
        Record(w)
    }

    #[inline(always)]
    fn word(self) -> u64 {
        self.0
    }

    #[inline(always)]
    fn size(self) -> usize {
        (self.0 >> RES_BITS) as usize
    }

    #[inline(always)]
    fn resource(self) -> ResourceId {
        // SAFETY: the low bits of a record word are the `raw()` of the `ResourceId` it was
        // made with (see `Record`); `RES_BITS` holds every id's number.
        unsafe { ResourceId::from_raw((self.0 & ((1 << RES_BITS) - 1)) as u32) }
    }

    /// Uncounts this record's block from its resource (the record goes, or moves).
    #[inline(always)]
    fn uncount(self) {
        hot(self.resource()).remove_block(self.size());
    }
}

/// A side word read back from `RECORDS`.
#[inline(always)]
fn stack_of_word(w: u64) -> BlockStack {
    // SAFETY: `RECORDS`'s side words are only `BlockStack::word`s (`set_stack` is their
    // one writer).
    unsafe { BlockStack::from_word(w) }
}

/// `false` when `addr` certainly has no record: no lock, a few loads (the allocator's
/// free and realloc fast paths).
#[inline(always)]
pub(crate) fn maybe_recorded(block: *mut u8) -> bool {
    RECORDS.maybe_contains(block as usize)
}

// ---------------------------------------------------------------------------------------
// The allocator path.

/// Records a new block of `size` bytes at `addr`, tagged with `res` (alive: the caller's
/// tag holds it), with its allocation stack if one was captured. Never allocates, never
/// panics; a record the table cannot take is counted as dropped.
#[inline]
pub(crate) fn record(block: *mut u8, size: usize, res: ResourceId, stack: Option<BlockStack>) {
    if too_large(block, size) {
        return;
    }
    let addr = block as usize;
    let h = hot(res);
    let _ = RECORDS.upsert(addr, |old, side| {
        if let Some(stale) = old {
            // A record for a block that was freed behind our back (it cannot be live).
            // SAFETY: a word `RECORDS` handed back.
            unsafe { Record::from_word(stale) }.uncount();
        }
        h.add_block(size);
        // A block stack exists only beside a record: a new record without a stack has
        // none to forget (the common case, with backtraces off).
        if stack.is_some() || old.is_some() {
            set_stack(side, addr, stack);
        }
        Record::new(size, res).word()
    });
}

/// Sets (or, with `None`, forgets) the allocation stack of the block at `addr`, whose
/// record's shard `side` is.
#[inline(always)]
fn set_stack(side: &mut Side<'_>, addr: usize, stack: Option<BlockStack>) {
    match stack {
        // Without memory for it the block has no stack (counted in the side stats).
        Some(s) => {
            let _ = side.set(addr, s.word());
        }
        None => {
            side.take(addr);
        }
    }
}

/// Forgets the record of a block being freed, if it has one, and its stack.
#[inline]
pub(crate) fn forget(block: *mut u8) {
    let addr = block as usize;
    // The stack word goes with the record.
    // SAFETY: a word `RECORDS` handed back.
    RECORDS.remove(addr, |w, _| unsafe { Record::from_word(w) }.uncount());
}

/// A record taken out of the table while its block is reallocated.
pub(crate) struct Taken {
    rec: Record,
    stack: Option<BlockStack>,
    /// The resource's `cleared` generation when the record was taken.
    gen: Generation,
}

impl Taken {
    /// The size recorded for the taken block.
    pub(crate) fn size(&self) -> usize {
        self.rec.size()
    }
}

/// Takes out the record of a block about to be reallocated, leaving its resource's counts
/// as they are (the block is in flight); give it back with [`put`].
#[inline]
pub(crate) fn take(block: *mut u8) -> Option<Taken> {
    let addr = block as usize;
    // Set under the shard lock whenever a record is removed.
    let mut gen = Generation::NEVER;
    let mut stack = None;
    let w = RECORDS.remove(addr, |w, side| {
        // SAFETY: a word `RECORDS` handed back.
        gen = hot(unsafe { Record::from_word(w) }.resource())
            .cleared()
            .now();
        stack = side.map(stack_of_word);
    })?;
    Some(Taken {
        // SAFETY: a word `RECORDS` handed back.
        rec: unsafe { Record::from_word(w) },
        stack,
        gen,
    })
}

/// Puts back a record taken by [`take`], at `addr` (the new or the old address) with
/// `size` (the new or the old size) — unless its tracker was cleared meanwhile: then the
/// block goes on untagged.
#[inline]
pub(crate) fn put(block: *mut u8, taken: Taken, size: usize) {
    let addr = block as usize;
    let (old_size, res) = (taken.rec.size(), taken.rec.resource());
    let h = hot(res);
    if too_large(block, size) {
        h.remove_block(old_size);
        return;
    }
    let stored = RECORDS.upsert_or_remove(addr, |old, side| {
        if let Some(stale) = old {
            // SAFETY: a word `RECORDS` handed back.
            unsafe { Record::from_word(stale) }.uncount();
        }
        // Read under the shard lock: see `cleared.rs` for why this suffices.
        if !h.cleared().unchanged_since(taken.gen) {
            h.remove_block(old_size);
            // A stale record at `addr` goes, and its stack with it.
            return None;
        }
        h.resize_block(old_size, size);
        set_stack(side, addr, taken.stack);
        Some(Record::new(size, res).word())
    });
    if stored.is_err() {
        h.remove_block(old_size);
    }
}

// ---------------------------------------------------------------------------------------
// Tracker operations.

/// Runs `f` on the resource of `addr`'s record, under its shard lock (so the resource is
/// alive while `f` runs: `f` may take a hold on it). `None` without a record.
pub(crate) fn with_resource_of<R>(block: *mut u8, f: impl FnOnce(ResourceId) -> R) -> Option<R> {
    RECORDS.update(block as usize, |w| {
        // SAFETY: a word `RECORDS` handed back.
        (Some(w), f(unsafe { Record::from_word(w) }.resource()))
    })
}

/// Tags the block of `size` bytes at `addr` with `res` after the fact (`track`), with the
/// stack of the call: a block another resource had moves here with its recorded size; an
/// untagged one is recorded with `size`, which the caller checked with [`too_large`].
/// `Err(Full)` (and no change) when the table cannot take a new record.
pub(crate) fn retag(
    block: *mut u8,
    size: usize,
    res: ResourceId,
    stack: Option<BlockStack>,
) -> Result<(), Full> {
    let addr = block as usize;
    let h = hot(res);
    RECORDS.upsert(addr, |old, side| {
        // SAFETY: a word `RECORDS` handed back.
        let size = match old.map(|w| unsafe { Record::from_word(w) }) {
            Some(was) => {
                was.uncount();
                was.size()
            }
            None => size,
        };
        h.add_block(size);
        set_stack(side, addr, stack);
        Record::new(size, res).word()
    })
}

/// Removes the record of `addr` if its resource belongs to `tracker`; `true` if it did.
pub(crate) fn untag(block: *mut u8, tracker: TrackerId) -> bool {
    let addr = block as usize;
    RECORDS
        .update(addr, |w| {
            // SAFETY: a word `RECORDS` handed back.
            let rec = unsafe { Record::from_word(w) };
            if hot(rec.resource()).tracker() == tracker {
                rec.uncount();
                (None, true) // and its stack
            } else {
                (Some(w), false)
            }
        })
        .unwrap_or(false)
}

/// Removes every record of `tracker`'s resources; the blocks stay allocated, untagged.
///
/// A record taken out for a realloc in flight is not in the table when the walk passes:
/// the walk runs between the two bumps of the `cleared` generation of each of the
/// tracker's resources ([`resource::while_clearing`](crate::resource::while_clearing)),
/// and [`put`] drops a record whose generation changed since it was taken (the protocol
/// and its loom model are in `cleared.rs`).
pub(crate) fn clear(tracker: TrackerId) {
    crate::resource::while_clearing(tracker, || {
        RECORDS.retain_not(|_, w| {
            // SAFETY: a word `RECORDS` handed back.
            let rec = unsafe { Record::from_word(w) };
            if hot(rec.resource()).tracker() == tracker {
                rec.uncount(); // the record goes, and its stack with it
                true
            } else {
                false
            }
        });
    });
}

/// The live blocks of each resource in `resources` that has at least one captured stack,
/// counted by allocation stack: resource -> groups, largest (bytes) first. O(blocks);
/// copies the tables shard by shard, allocating only while no lock is held (under the
/// caller's guard).
pub(crate) fn stack_groups(
    _r: &Reentrancy,
    resources: &[ResourceId],
) -> HashMap<ResourceId, Vec<StackCount>> {
    if !stack::ever_on() {
        return HashMap::new();
    }
    let wanted: std::collections::HashSet<ResourceId> = resources.iter().copied().collect();
    let (records, stacks) = RECORDS.copy_with_side();
    let stacks: HashMap<usize, BlockStack> = stacks
        .into_iter()
        .map(|(a, w)| (a, stack_of_word(w)))
        .collect();
    // (resource, stack) -> (blocks, bytes, the latest place of a block among those
    // captured at its stack).
    let mut by: HashMap<(ResourceId, Option<StackId>), (usize, usize, u32)> = HashMap::new();
    for (addr, w) in records {
        // SAFETY: a word `RECORDS` handed back.
        let rec = unsafe { Record::from_word(w) };
        if !wanted.contains(&rec.resource()) {
            continue;
        }
        let stack = stacks.get(&addr).copied();
        let e = by.entry((rec.resource(), stack.map(|s| s.id))).or_default();
        e.0 += 1;
        e.1 += rec.size();
        e.2 = e.2.max(stack.map_or(0, |s| s.seq));
    }
    let mut out: HashMap<ResourceId, Vec<StackCount>> = HashMap::new();
    for ((res, stack), (blocks, bytes, last_seq)) in by {
        out.entry(res).or_default().push(StackCount {
            stack,
            blocks,
            bytes,
            last_seq,
        });
    }
    out.retain(|_, g| g.iter().any(|g| g.stack.is_some()));
    for groups in out.values_mut() {
        groups.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.stack.cmp(&b.stack)));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Counters, the cap, fork.

/// The counters of the record table and of the block-to-stack table.
pub(crate) fn stats() -> (TableStats, TableStats) {
    (RECORDS.stats(), RECORDS.side_stats())
}

/// Caps the number of records (see `crate::set_max_records`).
pub(crate) fn set_max_records(max: Option<usize>) {
    RECORDS.set_max_records(max);
}

/// The `check-invariants` feature: the record table's invariants (`RecordTable::
/// check_invariants`), then the counts: each resource of `tracker` (of every tracker with
/// `None`) that has records counts exactly their blocks and bytes. Exact only while no
/// other thread changes the records of those resources (and no realloc of theirs is in
/// flight, whose record is out of the table while its count stays).
#[cfg(feature = "check-invariants")]
pub(crate) fn check_invariants(r: &Reentrancy) -> Result<(), String> {
    RECORDS.check_invariants()?;
    check_counts(r, None)
}

/// The count part of [`check_invariants`], for the resources of `tracker` (of every
/// tracker with `None`): each one's live blocks and bytes equal its records', and a live
/// resource without records counts none.
#[cfg(feature = "check-invariants")]
fn check_counts(r: &Reentrancy, tracker: Option<TrackerId>) -> Result<(), String> {
    let mut sums: HashMap<ResourceId, (usize, usize)> = HashMap::new();
    for (_, w) in RECORDS.copy_with_side().0 {
        // SAFETY: a word `RECORDS` handed back.
        let rec = unsafe { Record::from_word(w) };
        if tracker.is_some_and(|t| hot(rec.resource()).tracker() != t) {
            continue;
        }
        let e = sums.entry(rec.resource()).or_default();
        e.0 += 1;
        e.1 += rec.size();
    }
    for s in crate::resource::snapshot(r, tracker) {
        if (s.blocks, s.bytes) != (0, 0) && !sums.contains_key(&s.id) {
            return Err(format!(
                "resource {} ({}, {}) counts {} blocks and {} bytes, and has no records",
                s.id.raw(),
                s.name,
                s.kind,
                s.blocks,
                s.bytes
            ));
        }
    }
    for (res, (blocks, bytes)) in sums {
        let counted = hot(res).counts();
        if counted != (blocks, bytes) {
            return Err(format!(
                "resource {} counts {} blocks and {} bytes; its records are {blocks} blocks \
                 of {bytes} bytes",
                res.raw(),
                counted.0,
                counted.1
            ));
        }
    }
    Ok(())
}

/// Takes every record shard lock (for `fork`).
pub(crate) fn lock_for_fork() {
    RECORDS.lock_all();
}

/// Releases the locks taken by [`lock_for_fork`].
///
/// # Safety
/// * The locks must be held by [`lock_for_fork`] (here or in the parent of this child),
///   with no guard of them alive.
pub(crate) unsafe fn force_unlock_for_fork() {
    // SAFETY: the caller promises `lock_for_fork` took these locks and forgot the guards.
    unsafe {
        RECORDS.force_unlock_all();
    }
}

#[cfg(all(test, feature = "check-invariants"))]
mod tests {
    use super::*;
    use crate::resource::Origin;

    /// The count check passes while a resource's counts match its records, and finds a
    /// count that does not.
    #[test]
    fn count_check_finds_a_planted_count() {
        // A tracker id no tracker of this test binary has, and addresses far from its heap.
        let tracker = TrackerId(u64::MAX - 11);
        let res = crate::resource::create(
            tracker,
            "counted".into(),
            "check".into(),
            Origin::Scope,
            crate::clock::Timestamp::now(),
            stack::Capture::OFF,
        )
        .expect("room for a resource");
        let base = 0x5b00_0000_0000usize;
        let blocks: Vec<*mut u8> = (0..5).map(|i| (base + i * 0x40) as *mut u8).collect();
        for (i, &b) in blocks.iter().enumerate() {
            record(b, 16 * (i + 1), res, None);
        }
        let r = Reentrancy::enter();
        assert_eq!(hot(res).counts(), (5, 240));
        assert_eq!(check_counts(&r, Some(tracker)), Ok(()));
        hot(res).add_block(8);
        let e = check_counts(&r, Some(tracker)).unwrap_err();
        assert!(e.contains("counts 6 blocks and 248 bytes"), "{e}");
        hot(res).remove_block(8);
        assert_eq!(check_counts(&r, Some(tracker)), Ok(()));
        for &b in &blocks {
            forget(b);
        }
        assert_eq!(hot(res).counts(), (0, 0));
        assert_eq!(check_counts(&r, Some(tracker)), Ok(()));
        // Counts left behind with no record.
        hot(res).add_block(8);
        let e = check_counts(&r, Some(tracker)).unwrap_err();
        assert!(
            e.contains("counts 1 blocks and 8 bytes, and has no records"),
            "{e}"
        );
        hot(res).remove_block(8);
        assert_eq!(check_counts(&r, Some(tracker)), Ok(()));
        hot(res).release_hold();
    }
}
