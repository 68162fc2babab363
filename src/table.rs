//! The sharded record table of tagged blocks and the lock-free dealloc filter.
//!
//! A record maps a block's address to one `u64` (the resource layer packs size and
//! resource id into it). Records live in open-addressing hash tables with linear probing
//! and backward-shift deletion (no tombstones), one per shard, each behind a
//! `spin::Mutex` held for a few instructions. Shard memory comes straight from the OS
//! (`mmap`), never from the global allocator, so nothing here allocates through the
//! allocator that calls it, and nothing here can panic.
//!
//! The filter has one counter per 16-byte granule of the address space, in two levels: a
//! directory of 128 MiB windows, each pointing at the window's counters (a leaf). A counter
//! belongs to exactly one shard and is only written under that shard's lock, so a plain
//! load and store keep it exact, and no two granules share one, however large the heap.
//! `dealloc` reads the directory entry and one counter: zero (or no leaf) means "this block
//! has no record" and the free goes straight to the inner allocator.
//!
//! The directory (8 MiB of address space per table) is mapped from the OS when the table
//! takes its first record, a leaf (8 MiB) when a window takes its first; not reserved at
//! start-up: a process that tags nothing spends no address space on them, and its frees
//! test one null pointer. Only the pages tagged blocks map to are touched. When the OS
//! refuses the directory, the table takes no records for the rest of the process (each is
//! counted as dropped) and says so once on stderr: the program runs on, untracked; a
//! refused leaf drops the records of that window only, also said once.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use crate::open_table::{self, Entry, Occupied, OpenTable};

/// log2 of the number of shards.
const SHARD_BITS: u32 = 6;
/// Number of shards.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;
/// log2 of the address space one filter leaf covers: 128 MiB windows.
const WINDOW_SHIFT: u32 = 27;
/// Counters in a leaf: one byte per 16-byte granule of its window (8 MiB of zeroed memory,
/// mapped on the window's first record; only the pages tagged blocks map to are touched).
/// A granule holds at most 16 blocks, so a counter never passes 255 (an upsert still checks).
const LEAF_LEN: usize = 1 << (WINDOW_SHIFT - 4);
const LEAF_MASK: usize = LEAF_LEN - 1;
/// The address bits the directory covers: the 47-bit user address space of Linux on
/// x86-64 and AArch64 with 4-level page tables. A block above it is never recorded
/// (counted as dropped), and its free tests no counter.
const ADDR_BITS: u32 = 47;
/// Directory entries: one leaf pointer per window (8 MiB, mapped on the first record).
const DIR_LEN: usize = 1 << (ADDR_BITS - WINDOW_SHIFT);
/// The shard is picked by address bits `SHARD_SHIFT..SHARD_SHIFT + SHARD_BITS` (16 KiB
/// runs of the heap go to one shard): each granule, so each counter, has one shard.
const SHARD_SHIFT: u32 = 14;
const _: () = assert!(SHARD_SHIFT >= 4 && SHARD_SHIFT + SHARD_BITS <= WINDOW_SHIFT);
/// First capacity of a shard, in slots.
const INITIAL_CAPACITY: usize = 256;

/// One slot: `addr == 0` marks an empty slot (no block lives at address 0).
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    addr: usize,
    val: u64,
}

// SAFETY: all-zero is `addr == 0`, the empty slot; the methods only compute.
unsafe impl open_table::Slot for Slot {
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.addr == 0
    }
    #[inline(always)]
    fn hash(&self) -> u64 {
        hash(self.addr)
    }
}

/// The slot-picking hash (slow paths only).
#[inline(always)]
fn hash(addr: usize) -> u64 {
    (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The window of an address (its directory entry; `DIR_LEN` or more: untracked).
#[inline(always)]
fn window_of(addr: usize) -> usize {
    addr >> WINDOW_SHIFT
}

/// The counter of an address in its window's leaf: address bits 4..27, no multiply, since
/// `dealloc` computes it for every block. Blocks are at least 16-aligned with most
/// allocators; smaller ones share a granule's counter, which counts them all.
#[inline(always)]
fn granule_of(addr: usize) -> usize {
    (addr >> 4) & LEAF_MASK
}

/// The shard of an address: bits of its granule, so that every counter belongs to exactly
/// one shard.
#[inline(always)]
fn shard_of(addr: usize) -> usize {
    (addr >> SHARD_SHIFT) & (SHARDS - 1)
}

/// Error: the table cannot take a record (its memory or its configured cap is exhausted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

struct ShardInner {
    records: OpenTable<Slot>,
    /// A second word for some of the shard's records (the block-stack words), keyed by
    /// address like them and under the same lock (see [`Side`]).
    side: OpenTable<Slot>,
    /// `records.len()` at which an insert must look at growth or the cap (`make_room`).
    grow_at: usize,
    /// Records this shard could not take.
    dropped: u64,
    /// Side words this shard could not take (no memory).
    side_dropped: u64,
}

/// The side words of a locked shard: a second `u64` for some of its records (the
/// block-stack words of `records.rs`), kept beside them under the same shard lock, so the
/// allocator path changes a record and its side word under one lock. Only the closures of
/// [`RecordTable`]'s upserts get one, for the shard of the address they were given (to set
/// or drop the side word of the record they store); the side words of a shard are only
/// those of its addresses. Whatever removes a record removes its side word (`remove`
/// hands it back), so a side word exists only beside its record. No filter: a side word
/// is looked for only where its record was found. Unlike the records, side words have no
/// cap.
pub(crate) struct Side<'a> {
    slots: &'a mut OpenTable<Slot>,
    dropped: &'a mut u64,
}

impl Side<'_> {
    /// Sets the side word of `addr` to `val`; `false` (counted as dropped) when there is
    /// no memory for a new one: `addr` then has none.
    #[inline]
    pub(crate) fn set(&mut self, addr: usize, val: u64) -> bool {
        let h = hash(addr);
        if !self.slots.has_room() && !self.slots.grow(INITIAL_CAPACITY) {
            // Replacing needs no room.
            if let Entry::Occupied(mut o) = self.slots.entry(h, |s| s.addr == addr) {
                o.get_mut().val = val;
                return true;
            }
            side_refused();
            *self.dropped += 1;
            return false;
        }
        match self.slots.entry(h, |s| s.addr == addr) {
            Entry::Occupied(mut o) => o.get_mut().val = val,
            Entry::Vacant(v) => v.insert(Slot { addr, val }),
            Entry::Full => {
                // Cannot happen: `has_room` above.
                *self.dropped += 1;
                return false;
            }
        }
        true
    }

    /// Removes the side word of `addr` and returns it, if it has one.
    #[inline]
    pub(crate) fn take(&mut self, addr: usize) -> Option<u64> {
        if self.slots.len() == 0 {
            return None;
        }
        self.slots
            .remove(hash(addr), |s| s.addr == addr)
            .map(|s| s.val)
    }
}

/// Says once on stderr that a side word found no memory (the OS refused a side table's
/// growth): those blocks have no allocation stack in reports.
#[cold]
fn side_refused() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        crate::os::write_stderr(
            b"leaktracker: cannot map memory for the allocation stacks of tagged blocks (out \
              of memory or address space?): some blocks have no stack in reports\n",
        );
    }
}

impl ShardInner {
    /// The shard's side words.
    #[inline(always)]
    fn side(&mut self) -> Side<'_> {
        self.split().1
    }

    /// The records and the side words, borrowed apart.
    #[inline(always)]
    fn split(&mut self) -> (&mut OpenTable<Slot>, Side<'_>) {
        (
            &mut self.records,
            Side {
                slots: &mut self.side,
                dropped: &mut self.side_dropped,
            },
        )
    }
}

#[repr(align(64))]
struct Shard {
    inner: spin::Mutex<ShardInner>,
}

/// Number of record tables (each has a filter of its own, picked by its `F`): the
/// process's one, and in unit tests one more, for the tables they make.
#[cfg(not(test))]
pub(crate) const TABLES: usize = 1;
#[cfg(test)]
pub(crate) const TABLES: usize = 2;

/// One directory entry: a window's leaf of `LEAF_LEN` counters, or null.
type DirEntry = AtomicPtr<AtomicU8>;

/// Where a table's filter is: null until the table's first record, then the directory
/// of `DIR_LEN` entries (set once, never unmapped); each entry null until its window's
/// first record, then its leaf (set once, never unmapped). No record exists in a window
/// while its entry is null, so a null directory or entry answers "no record". The
/// directory is mapped by the first shard that needs slots (`ShardView::grow`), a leaf by
/// the shard inserting the window's first record, under their locks.
#[repr(align(64))]
struct FilterRef {
    base: AtomicPtr<DirEntry>,
    /// Set when the OS refused the directory: the table takes no records.
    failed: AtomicBool,
    /// Set once the refusal has been reported.
    warned: AtomicBool,
    /// Set when the OS refused a leaf: that window's records were dropped.
    leaf_failed: AtomicBool,
    /// Set once a leaf's refusal has been reported.
    leaf_warned: AtomicBool,
    /// The line written on stderr after a refusal: what the table loses.
    warning: &'static str,
    /// The line written on stderr after a leaf's refusal.
    leaf_warning: &'static str,
}

static FILTERS: [FilterRef; TABLES] = [
    FilterRef::new(
        "leaktracker: cannot map 8 MiB for the record filter (out of memory or address \
         space?): tagged blocks are not tracked; the program runs on untracked\n",
        "leaktracker: cannot map 8 MiB for the record filter of a heap region (out of \
         memory or address space?): tagged blocks there are not tracked (counted as dropped)\n",
    ),
    #[cfg(test)]
    FilterRef::new(
        "leaktracker: (unit test table) cannot map its filter\n",
        "leaktracker: (unit test table) cannot map a leaf of its filter\n",
    ),
];

impl FilterRef {
    const fn new(warning: &'static str, leaf_warning: &'static str) -> FilterRef {
        FilterRef {
            base: AtomicPtr::new(std::ptr::null_mut()),
            failed: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            leaf_failed: AtomicBool::new(false),
            leaf_warned: AtomicBool::new(false),
            warning,
            leaf_warning,
        }
    }

    /// The directory, mapped now if it is not yet; null when the OS refuses it (now or
    /// earlier: one refusal is final, so a full address space is not asked again on every
    /// tagged allocation). Never allocates, takes no lock.
    #[cold]
    #[inline(never)]
    fn map(&self) -> *const DirEntry {
        let cur = self.base.load(Ordering::Acquire);
        if !cur.is_null() || self.failed.load(Ordering::Relaxed) {
            return cur;
        }
        match publish(&self.base, DIR_LEN * std::mem::size_of::<DirEntry>()) {
            Some(p) => p,
            None => {
                self.failed.store(true, Ordering::Relaxed);
                // Another shard may have mapped it meanwhile.
                self.base.load(Ordering::Acquire)
            }
        }
    }

    /// The leaf of directory entry `entry`, mapped now if it is not yet; null when the OS
    /// refuses it. Never allocates, takes no lock.
    #[cold]
    #[inline(never)]
    fn map_leaf(&self, entry: &DirEntry) -> *const AtomicU8 {
        match publish(entry, LEAF_LEN) {
            Some(p) => p,
            None => {
                self.leaf_failed.store(true, Ordering::Relaxed);
                entry.load(Ordering::Acquire)
            }
        }
    }

    /// After a refused record: the first time the counters were refused, says so on
    /// stderr (one line, no allocation). Called with no lock held.
    #[cold]
    #[inline(never)]
    fn refused(&self) {
        if self.failed.load(Ordering::Relaxed)
            && self.base.load(Ordering::Relaxed).is_null()
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            crate::os::write_stderr(self.warning.as_bytes());
        } else if self.leaf_failed.load(Ordering::Relaxed)
            && !self.leaf_warned.swap(true, Ordering::Relaxed)
        {
            crate::os::write_stderr(self.leaf_warning.as_bytes());
        }
    }
}

/// Adds `delta` to a filter counter. Only written under its shard's lock: a load and a
/// store stay exact.
#[inline(always)]
fn count(counter: &AtomicU8, delta: i8) {
    let v = counter.load(Ordering::Relaxed);
    counter.store(v.wrapping_add_signed(delta), Ordering::Release);
}

/// Maps `bytes` of zeroed memory and publishes it in `slot` if `slot` is still null;
/// returns what `slot` holds then (ours, or the mapping another thread published first),
/// or `None` when the OS refuses the memory.
fn publish<T>(slot: &AtomicPtr<T>, bytes: usize) -> Option<*mut T> {
    let p = crate::os::map_zeroed(bytes).cast::<T>();
    if p.is_null() {
        return None;
    }
    match slot.compare_exchange(std::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(p),
        Err(theirs) => {
            // Another thread mapped it first.
            // SAFETY: `p` is our own mapping of `bytes` bytes, never published.
            unsafe { crate::os::unmap(p.cast(), bytes) };
            Some(theirs)
        }
    }
}

/// The table: shards and the per-shard record cap; its filter is `FILTERS[F]`.
pub(crate) struct RecordTable<const F: usize> {
    shards: [Shard; SHARDS],
    /// Max records per shard (`usize::MAX`: no cap but memory).
    shard_limit: AtomicUsize,
}

impl<const F: usize> RecordTable<F> {
    pub(crate) const fn new() -> RecordTable<F> {
        const { assert!(F < TABLES) };
        RecordTable {
            shards: [const {
                Shard {
                    inner: spin::Mutex::new(ShardInner {
                        records: OpenTable::new(),
                        side: OpenTable::new(),
                        grow_at: 0,
                        dropped: 0,
                        side_dropped: 0,
                    }),
                }
            }; SHARDS],
            shard_limit: AtomicUsize::new(usize::MAX),
        }
    }

    /// The mapped directory, or null while the filter is not mapped.
    #[inline(always)]
    fn directory() -> *const DirEntry {
        FILTERS[F].base.load(Ordering::Acquire)
    }

    /// `false` when `addr` certainly has no record: no lock; a null test while the table
    /// never had a record, else the atomic loads of a directory entry and a counter.
    #[inline(always)]
    pub(crate) fn maybe_contains(&self, addr: usize) -> bool {
        let dir = Self::directory();
        if dir.is_null() {
            return false;
        }
        // An address above the directory's range reads some lower window's entry: it has
        // no record (none is made there), so at worst the free takes the slow path, which
        // finds none. No range check on the fast path.
        let w = window_of(addr) & (DIR_LEN - 1);
        // SAFETY: a non-null `dir` is the mapping of `DIR_LEN` entries, never unmapped,
        // and `w < DIR_LEN`.
        let leaf = unsafe { (*dir.add(w)).load(Ordering::Acquire) };
        if leaf.is_null() {
            return false;
        }
        // SAFETY: a non-null entry is the mapping of `LEAF_LEN` counters, never unmapped,
        // and `granule_of` is below `LEAF_LEN`.
        unsafe { (*leaf.add(granule_of(addr))).load(Ordering::Acquire) != 0 }
    }

    /// Caps the number of records (spread evenly over the shards); `None` lifts the cap.
    pub(crate) fn set_max_records(&self, max: Option<usize>) {
        let per_shard = max.map_or(usize::MAX, |m| m.div_ceil(SHARDS));
        self.shard_limit.store(per_shard, Ordering::Relaxed);
        for shard in &self.shards {
            // The next insert re-checks growth and the cap.
            shard.inner.lock().grow_at = 0;
        }
    }

    /// Runs `f` on the shard of `addr`, under its lock.
    #[inline(always)]
    fn with_shard<R>(&self, addr: usize, f: impl FnOnce(&mut ShardView<'_, F>) -> R) -> R {
        let mut inner = self.shards[shard_of(addr)].inner.lock();
        let mut view = ShardView {
            inner: &mut inner,
            dir: Self::directory(),
            limit: self.shard_limit.load(Ordering::Relaxed),
        };
        f(&mut view)
    }

    /// Inserts or replaces the record of `addr`. `value(old)` runs under the shard lock
    /// before the record becomes visible to other threads (`old` is the value it replaces)
    /// and returns the value to store; it must not allocate or panic, and may take only
    /// locks that are never held while one of this table's locks is taken. It does not run
    /// when the table cannot take a new record (`Err(Full)`, counted as dropped); once it
    /// has run, the value is stored. `value` may change the shard's [`Side`] words.
    #[inline]
    pub(crate) fn upsert(
        &self,
        addr: usize,
        value: impl FnOnce(Option<u64>, &mut Side<'_>) -> u64,
    ) -> Result<(), Full> {
        let r = self.with_shard(addr, |s| s.upsert(addr, |old, side| Some(value(old, side))));
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                FILTERS[F].refused();
                Err(e)
            }
        }
    }

    /// As [`upsert`](Self::upsert), but `value(old)` may also decide that `addr` has no
    /// record (`None`): an existing one is then removed and nothing is inserted.
    /// `Ok(true)` when a record is stored.
    #[inline]
    pub(crate) fn upsert_or_remove(
        &self,
        addr: usize,
        value: impl FnOnce(Option<u64>, &mut Side<'_>) -> Option<u64>,
    ) -> Result<bool, Full> {
        let r = self.with_shard(addr, |s| s.upsert(addr, value));
        if r.is_err() {
            FILTERS[F].refused();
        }
        r
    }

    /// Removes a record, with its side word, and returns its value. `on_remove(val,
    /// side)` runs under the lock (`side`: the side word that went with it, if any).
    #[inline]
    pub(crate) fn remove(
        &self,
        addr: usize,
        on_remove: impl FnOnce(u64, Option<u64>),
    ) -> Option<u64> {
        self.with_shard(addr, |s| {
            let (v, side) = s.remove(addr)?;
            on_remove(v, side);
            Some(v)
        })
    }

    /// Runs `f` on the value of the record at `addr`, if there is one, under the lock: `f`
    /// returns the new value (`Some`) or removes the record (`None`, and its side word
    /// with it), and a result. Without a record `f` does not run and the result is `None`.
    pub(crate) fn update<R>(
        &self,
        addr: usize,
        f: impl FnOnce(u64) -> (Option<u64>, R),
    ) -> Option<R> {
        self.with_shard(addr, |s| {
            let dir = s.dir;
            let (records, mut side) = s.inner.split();
            let Entry::Occupied(o) = records.entry(hash(addr), |s| s.addr == addr) else {
                return None;
            };
            let (new, r) = f(o.get().val);
            store_or_remove::<F>(o, dir, addr, &mut side, new);
            Some(r)
        })
    }

    /// Removes every record for which `remove(addr, val)` is true, with its side word,
    /// shard by shard; `remove` runs under the shard lock (no allocation, no panic inside
    /// it; it may take locks that are never held while one of this table's locks is
    /// taken).
    pub(crate) fn retain_not(&self, mut remove: impl FnMut(usize, u64) -> bool) {
        for shard in &self.shards {
            let mut inner = shard.inner.lock();
            let mut view = ShardView::<F> {
                inner: &mut inner,
                dir: Self::directory(),
                limit: usize::MAX,
            };
            view.remove_where(&mut remove);
        }
    }

    /// A copy of every record and of every [`Side`] word, `(addr, val)` each, taken shard
    /// by shard (see [`copy_shards`](Self::copy_shards)): a side word copied is the one of
    /// the record copied at its address.
    pub(crate) fn copy_with_side(&self) -> (Vec<Copied>, Vec<Copied>) {
        let (mut records, mut side) = (Vec::new(), Vec::new());
        self.copy_shards(&mut records, &mut side, |_, s| (s.addr, s.val), |_, _| {});
        (records, side)
    }

    /// Appends `item(shard, slot)` of every record of every shard to `records`, and of
    /// every side word to `side`, and runs `also(shard, inner)` beside the copy; both of a
    /// shard under one hold of its lock. Allocates only while no lock is held: it sizes
    /// the buffers first, then copies under the lock (sizing again if the shard grew in
    /// between).
    fn copy_shards<T>(
        &self,
        records: &mut Vec<T>,
        side: &mut Vec<T>,
        item: impl Fn(usize, &Slot) -> T,
        mut also: impl FnMut(usize, &ShardInner),
    ) {
        for (i, shard) in self.shards.iter().enumerate() {
            loop {
                let (lr, ls) = {
                    let g = shard.inner.lock();
                    (g.records.len(), g.side.len())
                };
                records.reserve(lr + 16);
                side.reserve(ls + 16);
                let g = shard.inner.lock();
                if records.capacity() - records.len() < g.records.len()
                    || side.capacity() - side.len() < g.side.len()
                {
                    continue; // grew in between: size again
                }
                // No reallocation: the capacities were checked above.
                records.extend(g.records.iter().map(|s| item(i, s)));
                side.extend(g.side.iter().map(|s| item(i, s)));
                also(i, &g);
                break;
            }
        }
    }

    /// Counts of the [`Side`] words: words (`records`), words that found no memory
    /// (`dropped`), bytes mapped for them.
    pub(crate) fn side_stats(&self) -> TableStats {
        let mut st = TableStats::default();
        for shard in &self.shards {
            let inner = shard.inner.lock();
            st.records += inner.side.len();
            st.dropped += inner.side_dropped;
            st.table_bytes += inner.side.bytes();
        }
        st
    }

    /// Counts: records, records dropped, bytes of table memory mapped.
    pub(crate) fn stats(&self) -> TableStats {
        let mut st = TableStats::default();
        for shard in &self.shards {
            let inner = shard.inner.lock();
            st.records += inner.records.len();
            st.dropped += inner.dropped;
            st.table_bytes += inner.records.bytes();
        }
        st
    }

    /// Counts one record that could not be taken (outside the table, e.g. a size too large).
    pub(crate) fn count_dropped(&self, addr: usize) {
        self.with_shard(addr, |s| s.inner.dropped += 1);
    }

    /// Takes every shard lock (for `fork`); released by [`RecordTable::force_unlock_all`].
    pub(crate) fn lock_all(&self) {
        for shard in &self.shards {
            std::mem::forget(shard.inner.lock());
        }
    }

    /// Releases the locks taken by [`RecordTable::lock_all`].
    ///
    /// # Safety
    /// * Every shard lock must be held by [`RecordTable::lock_all`] (in this process, or in
    ///   the parent of this `fork` child), and no guard of them may be alive.
    pub(crate) unsafe fn force_unlock_all(&self) {
        for shard in &self.shards {
            // SAFETY: the caller promises the lock is held with its guard forgotten.
            unsafe { shard.inner.force_unlock() };
        }
    }
}

/// The `check-invariants` feature: the table's invariants, checked on a copy.
#[cfg(feature = "check-invariants")]
impl<const F: usize> RecordTable<F> {
    /// Checks every invariant of the table that can be checked from its contents, and
    /// describes the first one broken:
    /// * every record and side word is in the shard of its address, once;
    /// * every side word has a record (a stack only beside a record);
    /// * each shard keeps its load factor (at most 3/4, records and side words);
    /// * the filter is exact: the counter of every granule that has records equals their
    ///   number.
    ///
    /// Exact only while no other thread changes the table: each shard is copied under its
    /// lock, then checked with none held (the check allocates).
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        // (addr, shard) of every record, of every side word; the first shard above its
        // load factor: (shard, records, slots, side words, slots).
        let mut records: Vec<(usize, usize)> = Vec::new();
        let mut side: Vec<(usize, usize)> = Vec::new();
        let mut over = None;
        self.copy_shards(
            &mut records,
            &mut side,
            |i, s| (s.addr, i),
            |i, g| {
                let (len, cap) = (g.records.len(), g.records.capacity());
                let (side_len, side_cap) = (g.side.len(), g.side.capacity());
                if over.is_none() && (len * 4 > cap * 3 || side_len * 4 > side_cap * 3) {
                    over = Some((i, len, cap, side_len, side_cap));
                }
            },
        );
        if let Some((i, len, cap, side_len, side_cap)) = over {
            return Err(format!(
                "shard {i}: {len} records in {cap} slots, {side_len} side words in \
                 {side_cap} slots: above the load factor of 3/4"
            ));
        }
        for &(addr, i) in records.iter().chain(&side) {
            if shard_of(addr) != i {
                return Err(format!(
                    "{addr:#x} is in shard {i}, its address's shard is {}",
                    shard_of(addr)
                ));
            }
        }
        records.sort_unstable();
        side.sort_unstable();
        for list in [&records, &side] {
            if let Some(w) = list.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(format!("{:#x} is in the table twice", w[0].0));
            }
        }
        for &(addr, _) in &side {
            if records.binary_search_by_key(&addr, |r| r.0).is_err() {
                return Err(format!("{addr:#x} has a side word and no record"));
            }
        }
        // Sorted by address, the records of one granule are adjacent.
        let dir = Self::directory();
        let mut k = 0;
        while k < records.len() {
            let granule = records[k].0 >> 4;
            let n = records[k..]
                .iter()
                .take_while(|r| r.0 >> 4 == granule)
                .count();
            let addr = records[k].0;
            let counted = counter::<F>(dir, addr, false).map(|c| c.load(Ordering::Relaxed));
            if counted != Some(n.min(u8::MAX as usize) as u8) {
                return Err(format!(
                    "the filter counts {counted:?} records in the granule of {addr:#x}, \
                     which has {n}"
                ));
            }
            k += n;
        }
        Ok(())
    }
}

/// A record or a side word as copied out of the table: (address, value).
pub(crate) type Copied = (usize, u64);

/// Table counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TableStats {
    pub(crate) records: usize,
    pub(crate) dropped: u64,
    pub(crate) table_bytes: usize,
}

/// The filter counter of `addr` in directory `dir`, mapping its window's leaf when `map`
/// is set; `None` when the directory or the leaf is not mapped (or cannot be) or `addr` is
/// above the directory.
#[inline(always)]
fn counter<const F: usize>(
    dir: *const DirEntry,
    addr: usize,
    map: bool,
) -> Option<&'static AtomicU8> {
    let w = window_of(addr);
    if dir.is_null() || w >= DIR_LEN {
        return None;
    }
    // SAFETY: a non-null `dir` is the mapping of `DIR_LEN` entries, never unmapped (it
    // comes from `RecordTable::directory`), and `w < DIR_LEN`.
    let entry = unsafe { &*dir.add(w) };
    let mut leaf = entry.load(Ordering::Acquire);
    if leaf.is_null() && map {
        leaf = FILTERS[F].map_leaf(entry).cast_mut();
    }
    if leaf.is_null() {
        return None;
    }
    // SAFETY: a non-null entry is the mapping of `LEAF_LEN` counters, never unmapped
    // (so for the rest of the process), and `granule_of` is below `LEAF_LEN`.
    Some(unsafe { &*leaf.add(granule_of(addr)) })
}

/// Adds `delta` to the counter of `addr`, which has a record (so its leaf is mapped), under
/// the lock of its shard.
#[inline(always)]
fn filter_add<const F: usize>(dir: *const DirEntry, addr: usize, delta: i8) {
    if let Some(f) = counter::<F>(dir, addr, false) {
        count(f, delta);
    }
}

/// A locked shard and the filter counters it writes to.
///
/// A shard has slots only once the directory is mapped (`grow` maps it before the first
/// slots, or refuses), and a record only once its window's leaf is (`upsert` maps it
/// before the first, or refuses), so wherever a record exists `dir` points at `DIR_LEN`
/// entries and the record's entry at `LEAF_LEN` counters.
struct ShardView<'a, const F: usize> {
    inner: &'a mut ShardInner,
    /// The mapped directory; null while the filter is not mapped (then no slots).
    dir: *const DirEntry,
    limit: usize,
}

impl<const F: usize> ShardView<'_, F> {
    #[inline]
    fn upsert(
        &mut self,
        addr: usize,
        value: impl FnOnce(Option<u64>, &mut Side<'_>) -> Option<u64>,
    ) -> Result<bool, Full> {
        let h = hash(addr);
        let room = self.inner.records.len() < self.inner.grow_at || self.make_room();
        // After `make_room`: the first growth maps the directory.
        let dir = self.dir;
        // Where the value goes: the record of `addr` (a stale one), or the empty slot
        // where it belongs with the filter counter it will bump; `None`: dropped. `value`
        // is called at one place below, so that it is inlined there, once.
        enum Place<'t> {
            Replace(Occupied<'t, Slot>),
            Insert(open_table::Vacant<'t, Slot>, &'static AtomicU8),
        }
        let (records, mut side) = self.inner.split();
        // One probe walk.
        let place = match records.entry(h, |s| s.addr == addr) {
            Entry::Occupied(o) => Some(Place::Replace(o)),
            // No room for a new record; replacing an existing one needs none.
            Entry::Vacant(_) if !room => None,
            // No counter for it (its window's leaf refused, or an address above the
            // directory), or one that cannot count another record: dropped.
            Entry::Vacant(v) => counter::<F>(dir, addr, true)
                .filter(|c| c.load(Ordering::Relaxed) != u8::MAX)
                .map(|c| Place::Insert(v, c)),
            // Cannot happen while there is room: `make_room` keeps the load factor at 3/4.
            Entry::Full => None,
        };
        let Some(place) = place else {
            self.inner.dropped += 1;
            return Err(Full);
        };
        let old = match &place {
            Place::Replace(o) => Some(o.get().val),
            Place::Insert(..) => None,
        };
        let new = value(old, &mut side);
        match place {
            Place::Replace(o) => Ok(store_or_remove::<F>(o, dir, addr, &mut side, new)),
            Place::Insert(v, counter) => match new {
                Some(val) => {
                    v.insert(Slot { addr, val });
                    count(counter, 1);
                    Ok(true)
                }
                None => {
                    // No record: no side word either.
                    side.take(addr);
                    Ok(false)
                }
            },
        }
    }

    /// Called when `len` reached `grow_at`: grows the table if the load factor asks for it
    /// and the cap allows; `false` when no record can be added.
    #[cold]
    fn make_room(&mut self) -> bool {
        let len = self.inner.records.len();
        if len >= self.limit {
            return false;
        }
        if !self.inner.records.has_room() && !self.grow() {
            return false;
        }
        self.inner.grow_at = (self.inner.records.capacity() / 4 * 3).min(self.limit);
        true
    }

    /// Removes the record of `addr` and its side word: (value, side word).
    #[inline(always)]
    fn remove(&mut self, addr: usize) -> Option<(u64, Option<u64>)> {
        let val = self
            .inner
            .records
            .remove(hash(addr), |s| s.addr == addr)?
            .val;
        filter_add::<F>(self.dir, addr, -1);
        Some((val, self.inner.side().take(addr)))
    }

    fn remove_where(&mut self, remove: &mut impl FnMut(usize, u64) -> bool) {
        let dir = self.dir;
        let (records, mut side) = self.inner.split();
        records.remove_where(|s| {
            let gone = remove(s.addr, s.val);
            if gone {
                filter_add::<F>(dir, s.addr, -1);
                side.take(s.addr);
            }
            gone
        });
    }

    /// Doubles the capacity (or maps the first slots). `false` when the OS refuses memory.
    #[cold]
    fn grow(&mut self) -> bool {
        if self.dir.is_null() {
            // No slots before the filter exists (see `ShardView`).
            self.dir = FILTERS[F].map();
            if self.dir.is_null() {
                return false;
            }
        }
        self.inner.records.grow(INITIAL_CAPACITY)
    }
}

/// Stores `new` as the value of the record `o` (of `addr`), or removes the record, and its
/// side word, when that is `None`; `true` when a record stays. Takes the value, not a
/// closure that makes it: a closure passed on made the common insert of an upsert keep its
/// captures in memory (14 instructions more a tagged allocation).
#[inline(always)]
fn store_or_remove<const F: usize>(
    mut o: Occupied<'_, Slot>,
    dir: *const DirEntry,
    addr: usize,
    side: &mut Side<'_>,
    new: Option<u64>,
) -> bool {
    match new {
        Some(v) => {
            o.get_mut().val = v;
            true
        }
        None => {
            o.remove();
            filter_add::<F>(dir, addr, -1);
            side.take(addr);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses far from any heap this test binary uses (the filter is per address, so
    /// records here touch no other test's granules); the table never reads them.
    const BASE: usize = 0x5a00_0000_0000;

    #[test]
    fn filter_is_exact_per_granule_and_counts_shared_granules() {
        let table = RecordTable::<1>::new();
        let a = BASE + 0x1000;
        for addr in [a, a + 8, a + 16, a + 0x400, a + 0x3f0] {
            assert!(!table.maybe_contains(addr), "{addr:#x} before any record");
        }
        // Two records in one granule (an allocator with 8-byte blocks), one in the next
        // granule, one further on in the same leaf.
        for addr in [a, a + 8, a + 16, a + 0x3f0] {
            table.upsert(addr, |_, _| 1).unwrap();
        }
        for addr in [a, a + 8, a + 16, a + 0x3f0] {
            assert!(table.maybe_contains(addr), "{addr:#x} recorded");
        }
        // The granule before, the one after the last, and further on: no record.
        for addr in [a - 16, a + 32, a + 0x400] {
            assert!(!table.maybe_contains(addr), "{addr:#x} has no record");
        }
        // A third record in the shared granule, removed again: the granule stays shared.
        table.upsert(a + 4, |_, _| 1).unwrap();
        assert_eq!(table.remove(a + 4, |_, _| {}), Some(1));
        assert!(table.maybe_contains(a));
        // Removing one of the two records of a granule keeps its counter above zero.
        assert_eq!(table.remove(a, |_, _| {}), Some(1));
        assert!(table.maybe_contains(a + 8));
        assert!(table.maybe_contains(a + 16));
        assert_eq!(table.remove(a + 8, |_, _| {}), Some(1));
        assert!(!table.maybe_contains(a) && !table.maybe_contains(a + 8));
        assert!(
            table.maybe_contains(a + 16),
            "the neighbour granule keeps its count"
        );
        // Removing through `update` and `retain_not` counts down too.
        assert_eq!(table.update(a + 16, |_| (None, ())), Some(()));
        assert!(!table.maybe_contains(a + 16));
        table.retain_not(|addr, _| addr == a + 0x3f0);
        assert!(!table.maybe_contains(a + 0x3f0));
        assert_eq!(table.stats().records, 0);
        // A replaced record keeps its granule's count at one.
        table.upsert(a, |_, _| 1).unwrap();
        table.upsert(a, |_, _| 2).unwrap();
        assert_eq!(table.remove(a, |_, _| {}), Some(2));
        assert!(!table.maybe_contains(a));
    }

    /// Side words go with their records: set and replaced in an upsert, handed back when
    /// the record is removed, gone with the records `retain_not` and `update` remove, and
    /// copied and counted apart from the records.
    #[test]
    fn side_words_live_and_go_with_their_records() {
        let table = RecordTable::<1>::new();
        let a = BASE + 0x20_0000;
        let addrs: Vec<usize> = (0..600).map(|i| a + i * 0x1230).collect();
        for (i, &addr) in addrs.iter().enumerate() {
            table
                .upsert(addr, |old, side| {
                    assert_eq!(old, None);
                    // Every other record has a side word (a block with a stack).
                    if i % 2 == 0 {
                        assert!(side.set(addr, 1000 + i as u64));
                    }
                    i as u64
                })
                .unwrap();
        }
        assert_eq!(table.stats().records, 600);
        assert_eq!(table.side_stats().records, 300);
        assert!(table.side_stats().table_bytes > 0);
        let (_, mut side) = table.copy_with_side();
        side.sort_unstable();
        let want: Vec<(usize, u64)> = (0..600)
            .step_by(2)
            .map(|i| (addrs[i], 1000 + i as u64))
            .collect();
        assert_eq!(side, want);
        // A replacing upsert sees the side word and may change it.
        table
            .upsert(addrs[0], |old, side| {
                assert_eq!(old, Some(0));
                assert_eq!(side.take(addrs[0]), Some(1000));
                assert!(side.set(addrs[0], 7));
                0
            })
            .unwrap();
        // Removing a record hands its side word to the closure; a record without one
        // has none.
        let mut got = None;
        table.remove(addrs[0], |v, side| got = Some((v, side)));
        assert_eq!(got, Some((0, Some(7))));
        table.remove(addrs[1], |v, side| got = Some((v, side)));
        assert_eq!(got, Some((1, None)));
        // `update` removing a record removes its side word.
        assert_eq!(table.update(addrs[2], |_| (None, 5)), Some(5));
        // An upsert that stores no record (`None`) leaves no side word.
        let none = addrs[4];
        assert_eq!(
            table.upsert_or_remove(none, |old, side| {
                assert_eq!(old, Some(4));
                assert!(side.set(none, 99));
                None
            }),
            Ok(false)
        );
        // `retain_not` dropping a third of the rest, with their side words.
        table.retain_not(|_, v| v % 3 == 0);
        let left: Vec<usize> = (3..600).filter(|&i| i % 3 != 0 && i != 4).collect();
        assert_eq!(table.stats().records, left.len());
        let (records, mut side) = table.copy_with_side();
        assert_eq!(records.len(), left.len());
        side.sort_unstable();
        let want: Vec<(usize, u64)> = left
            .iter()
            .filter(|&&i| i % 2 == 0)
            .map(|&i| (addrs[i], 1000 + i as u64))
            .collect();
        assert_eq!(side, want);
        table.retain_not(|_, _| true);
        assert_eq!(table.stats().records, 0);
        assert_eq!(table.side_stats().records, 0);
        assert_eq!(table.side_stats().dropped, 0);
    }

    /// The invariant check passes on a table in order, and finds a side word without a
    /// record and a filter counter that is off.
    #[cfg(feature = "check-invariants")]
    #[test]
    fn invariant_check_finds_what_is_planted() {
        let table = RecordTable::<1>::new();
        let a = BASE + 0x40_0000;
        for i in 0..100 {
            let addr = a + i * 0x30;
            table
                .upsert(addr, |_, side| {
                    if i % 3 == 0 {
                        side.set(addr, i as u64);
                    }
                    1
                })
                .unwrap();
        }
        // Two records in one granule.
        table.upsert(a + 8, |_, _| 1).unwrap();
        assert_eq!(table.check_invariants(), Ok(()));
        // A side word left behind by a record that never was (planted from inside: no
        // method of the table leaves one).
        let orphan = a + 0x10_0000;
        table.with_shard(orphan, |s| assert!(s.inner.side().set(orphan, 9)));
        let e = table.check_invariants().unwrap_err();
        assert!(e.contains("has a side word and no record"), "{e}");
        table.with_shard(orphan, |s| assert_eq!(s.inner.side().take(orphan), Some(9)));
        assert_eq!(table.check_invariants(), Ok(()));
        // A filter counter one above its granule's records.
        table.with_shard(a, |s| filter_add::<1>(s.dir, a, 1));
        let e = table.check_invariants().unwrap_err();
        assert!(e.contains("the filter counts Some(3)"), "{e}");
        table.with_shard(a, |s| filter_add::<1>(s.dir, a, -1));
        assert_eq!(table.check_invariants(), Ok(()));
    }
}
