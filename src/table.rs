//! The sharded record table of tagged blocks and the lock-free dealloc filter.
//!
//! A record maps a block's address to one `u64` (the resource layer packs size and
//! resource id into it). Records live in open-addressing hash tables with linear probing
//! and backward-shift deletion (no tombstones), one per shard, each behind a
//! `spin::Mutex` held for a few instructions. Shard memory comes straight from the OS
//! (`mmap`), never from the global allocator, so nothing here allocates through the
//! allocator that calls it, and nothing here can panic.
//!
//! The filter is an array of counters indexed by address bits 4..27; every
//! filter bucket belongs to exactly one shard and is only written under that shard's lock,
//! so a plain load and store keep it exact. `dealloc` reads one counter: zero means "this
//! block has no record" and the free goes straight to the inner allocator.
//!
//! The counters (8 MiB per table) are mapped from the OS when the table takes its first
//! record, not reserved at start-up: a process that tags nothing spends no address space
//! on them, and its frees test one null pointer. When the OS refuses the mapping, the table takes no records for the rest of the process
//! (each is counted as dropped) and says so once on stderr: the program runs on,
//! untracked.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

/// log2 of the number of shards.
const SHARD_BITS: u32 = 6;
/// Number of shards.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;
/// log2 of the number of filter counters: one per 16-byte granule of a 128 MiB window of
/// the address space, so blocks closer than 128 MiB never share a counter, and a heap
/// with many tagged blocks does not send the frees of untagged ones to the shard locks.
/// The counters are bytes: 8 MiB of zeroed memory per table, mapped on the table's first
/// record, of which only the pages that tagged blocks map to are ever touched. A counter
/// that would pass 255 (255 live records 128 MiB apart in one granule position) refuses
/// the record, counted as dropped like any record the table cannot take.
const FILTER_BITS: u32 = 23;
/// Number of filter counters (bytes of a table's filter).
const FILTER_LEN: usize = 1 << FILTER_BITS;
const FILTER_MASK: usize = FILTER_LEN - 1;
/// The shard is picked by address bits `SHARD_SHIFT..SHARD_SHIFT + SHARD_BITS` (16 KiB
/// runs of the heap go to one shard), bits that are part of the filter index, so that
/// every filter counter belongs to exactly one shard.
const SHARD_SHIFT: u32 = 14;
const _: () = assert!(SHARD_SHIFT >= 4 && SHARD_SHIFT + SHARD_BITS <= 4 + FILTER_BITS);
/// First capacity of a shard, in slots.
const INITIAL_CAPACITY: usize = 256;

/// One slot: `addr == 0` marks an empty slot (no block lives at address 0).
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    addr: usize,
    val: u64,
}

/// Size of one slot in bytes: the table's memory per record, before load factor.
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// The slot-picking hash (slow paths only).
#[inline(always)]
fn hash(addr: usize) -> u64 {
    (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The filter bucket of an address: bits 4..27, no multiply, since `dealloc` computes it
/// for every block. Blocks are at least 16-aligned with most allocators; smaller ones only
/// share buckets, which the counters allow.
#[inline(always)]
fn filter_of(addr: usize) -> usize {
    (addr >> 4) & FILTER_MASK
}

/// The shard of an address: bits of its filter bucket, so that every bucket belongs to
/// exactly one shard.
#[inline(always)]
fn shard_of(addr: usize) -> usize {
    (addr >> SHARD_SHIFT) & (SHARDS - 1)
}

/// Error: the table cannot take a record (its memory or its configured cap is exhausted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

struct ShardInner {
    slots: *mut Slot,
    /// Capacity in slots: 0 (nothing mapped yet) or a power of two.
    cap: usize,
    len: usize,
    /// `len` at which an insert must look at growth or the cap (`make_room`).
    grow_at: usize,
    /// Records this shard could not take.
    dropped: u64,
}

// SAFETY: `slots` is memory owned by this shard (mapped by it, unmapped by it) and only
// touched while the shard's mutex is held.
unsafe impl Send for ShardInner {}

#[repr(align(64))]
struct Shard {
    inner: spin::Mutex<ShardInner>,
}

/// Number of record tables (each has a filter of its own, picked by its `F`).
pub(crate) const TABLES: usize = 2;

/// Where a table's filter counters are: null until the table's first record, then the
/// mapping of `FILTER_LEN` counters (set once, never unmapped). No record exists while it
/// is null, so a null filter answers "no record" for every address. The counters are
/// mapped by the first shard that needs slots (`ShardView::grow`), under its lock.
#[repr(align(64))]
struct FilterRef {
    base: AtomicPtr<AtomicU8>,
    /// Set when the OS refused the counters: the table takes no records.
    failed: AtomicBool,
    /// Set once the refusal has been reported.
    warned: AtomicBool,
    /// The line written on stderr after a refusal: what the table loses.
    warning: &'static str,
}

static FILTERS: [FilterRef; TABLES] = [
    FilterRef::new(
        "leaktracker: cannot map 8 MiB for the record filter (out of memory or address \
         space?): tagged blocks are not tracked; the program runs on untracked\n",
    ),
    FilterRef::new(
        "leaktracker: cannot map 8 MiB for the backtrace filter (out of memory or address \
         space?): allocation stacks are not recorded\n",
    ),
];

impl FilterRef {
    const fn new(warning: &'static str) -> FilterRef {
        FilterRef {
            base: AtomicPtr::new(std::ptr::null_mut()),
            failed: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            warning,
        }
    }

    /// The counters, mapped now if they are not yet; null when the OS refuses them (now
    /// or earlier: one refusal is final, so a full address space is not asked again on
    /// every tagged allocation). Never allocates, takes no lock.
    #[cold]
    #[inline(never)]
    fn map(&self) -> *const AtomicU8 {
        let cur = self.base.load(Ordering::Acquire);
        if !cur.is_null() || self.failed.load(Ordering::Relaxed) {
            return cur;
        }
        let p = crate::os::map_zeroed(FILTER_LEN).cast::<AtomicU8>();
        if p.is_null() {
            self.failed.store(true, Ordering::Relaxed);
            // Another shard may have mapped it meanwhile.
            return self.base.load(Ordering::Acquire);
        }
        match self.base.compare_exchange(
            std::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => p,
            Err(theirs) => {
                // Another shard mapped it first.
                // SAFETY: `p` is our own mapping of `FILTER_LEN` bytes, never published.
                unsafe { crate::os::unmap(p.cast(), FILTER_LEN) };
                theirs
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
                        slots: std::ptr::null_mut(),
                        cap: 0,
                        len: 0,
                        grow_at: 0,
                        dropped: 0,
                    }),
                }
            }; SHARDS],
            shard_limit: AtomicUsize::new(usize::MAX),
        }
    }

    /// The mapped counters, or null while the filter is not mapped.
    #[inline(always)]
    fn counters() -> *const AtomicU8 {
        FILTERS[F].base.load(Ordering::Acquire)
    }

    /// `false` when `addr` certainly has no record: no lock; a null test while the table
    /// never had a record, else one atomic load of a counter.
    #[inline(always)]
    pub(crate) fn maybe_contains(&self, addr: usize) -> bool {
        let base = Self::counters();
        if base.is_null() {
            return false;
        }
        // SAFETY: a non-null `base` is the mapping of `FILTER_LEN` counters, never
        // unmapped, and `filter_of` is below `FILTER_LEN`.
        unsafe { (*base.add(filter_of(addr))).load(Ordering::Acquire) != 0 }
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
            counters: Self::counters(),
            limit: self.shard_limit.load(Ordering::Relaxed),
        };
        f(&mut view)
    }

    /// Inserts or replaces the record of `addr`. `value(old)` runs under the shard lock
    /// before the record becomes visible to other threads (`old` is the value it replaces)
    /// and returns the value to store; it must not allocate, lock or panic. It does not run
    /// when the table cannot take a new record (`Err(Full)`, counted as dropped).
    #[inline]
    pub(crate) fn upsert(
        &self,
        addr: usize,
        value: impl FnOnce(Option<u64>) -> u64,
    ) -> Result<(), Full> {
        let r = self.with_shard(addr, |s| s.upsert(addr, hash(addr), |old| Some(value(old))));
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
        value: impl FnOnce(Option<u64>) -> Option<u64>,
    ) -> Result<bool, Full> {
        let r = self.with_shard(addr, |s| s.upsert(addr, hash(addr), value));
        if r.is_err() {
            FILTERS[F].refused();
        }
        r
    }

    /// Removes a record and returns its value. `on_remove(val)` runs under the lock.
    #[inline]
    pub(crate) fn remove(&self, addr: usize, on_remove: impl FnOnce(u64)) -> Option<u64> {
        self.with_shard(addr, |s| {
            let v = s.remove(addr, hash(addr));
            if let Some(v) = v {
                on_remove(v);
            }
            v
        })
    }

    /// Runs `f` on the value of the record at `addr`, if there is one, under the lock: `f`
    /// returns the new value (`Some`) or removes the record (`None`), and a result.
    /// Without a record `f` does not run and the result is `None`.
    pub(crate) fn update<R>(
        &self,
        addr: usize,
        f: impl FnOnce(u64) -> (Option<u64>, R),
    ) -> Option<R> {
        self.with_shard(addr, |s| {
            let h = hash(addr);
            let i = s.find(addr, h)?;
            let (new, r) = f(s.slot(i).val);
            match new {
                Some(v) => s.slot_mut(i).val = v,
                None => {
                    s.delete_at(i);
                    s.filter_add(addr, -1);
                }
            }
            Some(r)
        })
    }

    /// Removes every record for which `remove(addr, val)` is true, shard by shard; `remove`
    /// runs under the shard lock (no allocation, no panic inside it; it may take locks that
    /// are never held while one of this table's locks is taken).
    pub(crate) fn retain_not(&self, mut remove: impl FnMut(usize, u64) -> bool) {
        for shard in &self.shards {
            let mut inner = shard.inner.lock();
            let mut view = ShardView::<F> {
                inner: &mut inner,
                counters: Self::counters(),
                limit: usize::MAX,
            };
            view.remove_where(&mut remove);
        }
    }

    /// A copy of every record, `(addr, val)`, taken shard by shard. Allocates only while
    /// no lock is held (it sizes the buffer first, then copies under the lock).
    pub(crate) fn copy_all(&self) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            loop {
                let len = shard.inner.lock().len;
                out.reserve(len + 16);
                let inner = shard.inner.lock();
                if out.capacity() - out.len() < inner.len {
                    continue; // grew in between: size again
                }
                for i in 0..inner.cap {
                    // SAFETY: `i < cap`; `slots` maps `cap` slots while the lock is held.
                    let s = unsafe { *inner.slots.add(i) };
                    if s.addr != 0 {
                        // No reallocation: the capacity was checked above.
                        out.push((s.addr, s.val));
                    }
                }
                break;
            }
        }
        out
    }

    /// Counts: records, records dropped, bytes of table memory mapped.
    pub(crate) fn stats(&self) -> TableStats {
        let mut st = TableStats::default();
        for shard in &self.shards {
            let inner = shard.inner.lock();
            st.records += inner.len;
            st.dropped += inner.dropped;
            st.table_bytes += inner.cap * SLOT_BYTES;
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

/// Table counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TableStats {
    pub(crate) records: usize,
    pub(crate) dropped: u64,
    pub(crate) table_bytes: usize,
}

/// A locked shard and the filter counters it writes to.
///
/// A shard has slots (`cap > 0`) only once the filter is mapped (`grow` maps it before
/// the first slots, or refuses), so wherever a record exists `counters` points at
/// `FILTER_LEN` counters.
struct ShardView<'a, const F: usize> {
    inner: &'a mut ShardInner,
    /// The mapped counters; null while the filter is not mapped (then `cap == 0`).
    counters: *const AtomicU8,
    limit: usize,
}

impl<const F: usize> ShardView<'_, F> {
    #[inline(always)]
    fn mask(&self) -> usize {
        self.inner.cap - 1
    }

    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        (h >> 32) as usize & self.mask()
    }

    #[inline(always)]
    fn slot(&self, i: usize) -> &Slot {
        debug_assert!(i < self.inner.cap);
        // SAFETY: callers pass `i <= mask < cap`, and `slots` maps `cap` slots.
        unsafe { &*self.inner.slots.add(i) }
    }

    #[inline(always)]
    fn slot_mut(&mut self, i: usize) -> &mut Slot {
        debug_assert!(i < self.inner.cap);
        // SAFETY: as in `slot`; the shard lock gives exclusive access.
        unsafe { &mut *self.inner.slots.add(i) }
    }

    /// The filter counter of `addr`. Only called where the shard has slots.
    #[inline(always)]
    fn counter(&self, addr: usize) -> &AtomicU8 {
        debug_assert!(!self.counters.is_null() && self.inner.cap > 0);
        // SAFETY: the shard has slots, so the filter is mapped (see `ShardView`): `counters`
        // points at `FILTER_LEN` counters, never unmapped, and `filter_of` is below that.
        unsafe { &*self.counters.add(filter_of(addr)) }
    }

    #[inline(always)]
    fn filter_add(&self, addr: usize, delta: i8) {
        // Only written under this shard's lock: a load and a store stay exact.
        let f = self.counter(addr);
        let v = f.load(Ordering::Relaxed);
        f.store(v.wrapping_add_signed(delta), Ordering::Release);
    }

    #[inline]
    fn find(&self, addr: usize, h: u64) -> Option<usize> {
        if self.inner.cap == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let s = self.slot(i);
            if s.addr == addr {
                return Some(i);
            }
            if s.addr == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn upsert(
        &mut self,
        addr: usize,
        h: u64,
        value: impl FnOnce(Option<u64>) -> Option<u64>,
    ) -> Result<bool, Full> {
        if self.inner.len >= self.inner.grow_at && !self.make_room() {
            // No room for a new record; replacing an existing one needs none.
            if let Some(i) = self.find(addr, h) {
                return Ok(self.replace_at(i, addr, value));
            }
            self.inner.dropped += 1;
            return Err(Full);
        }
        // One probe walk: the record of `addr` (a stale one) or the first empty slot.
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let cur = self.slot(i).addr;
            if cur == addr {
                return Ok(self.replace_at(i, addr, value));
            }
            if cur == 0 {
                break;
            }
            i = (i + 1) & mask;
        }
        if self.counter(addr).load(Ordering::Relaxed) == u8::MAX {
            // The counter cannot count another record.
            self.inner.dropped += 1;
            return Err(Full);
        }
        let Some(val) = value(None) else {
            return Ok(false);
        };
        *self.slot_mut(i) = Slot { addr, val };
        self.inner.len += 1;
        self.filter_add(addr, 1);
        Ok(true)
    }

    /// Replaces the value of the record in slot `i` (of `addr`) by `value(old)`, or removes
    /// the record when that is `None`.
    #[inline(always)]
    fn replace_at(
        &mut self,
        i: usize,
        addr: usize,
        value: impl FnOnce(Option<u64>) -> Option<u64>,
    ) -> bool {
        match value(Some(self.slot(i).val)) {
            Some(v) => {
                self.slot_mut(i).val = v;
                true
            }
            None => {
                self.delete_at(i);
                self.filter_add(addr, -1);
                false
            }
        }
    }

    /// Called when `len` reached `grow_at`: grows the table if the load factor asks for it
    /// and the cap allows; `false` when no record can be added.
    #[cold]
    fn make_room(&mut self) -> bool {
        if self.inner.len >= self.limit {
            return false;
        }
        if (self.inner.len + 1) * 4 > self.inner.cap * 3 && !self.grow() {
            return false;
        }
        self.inner.grow_at = (self.inner.cap / 4 * 3).min(self.limit);
        true
    }

    #[inline]
    fn remove(&mut self, addr: usize, h: u64) -> Option<u64> {
        let i = self.find(addr, h)?;
        let val = self.slot(i).val;
        self.delete_at(i);
        self.filter_add(addr, -1);
        Some(val)
    }

    /// Backward-shift deletion: later members of the probe run move up to fill the hole.
    fn delete_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = *self.slot(j);
            if s.addr == 0 {
                break;
            }
            let home = self.home(hash(s.addr));
            // `s` may move into `hole` unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                *self.slot_mut(hole) = s;
                hole = j;
            }
        }
        *self.slot_mut(hole) = Slot { addr: 0, val: 0 };
        self.inner.len -= 1;
    }

    fn remove_where(&mut self, remove: &mut impl FnMut(usize, u64) -> bool) {
        if self.inner.cap == 0 {
            return;
        }
        // Start just after an empty slot so that no probe run wraps past our start:
        // backward shifts then only move records we have not visited yet, or into the
        // slot we are looking at (which we look at again).
        let cap = self.inner.cap;
        let Some(start) = (0..cap).find(|&i| self.slot(i).addr == 0) else {
            return; // cannot happen: the load factor keeps empty slots
        };
        let mut visited = 0;
        let mut i = (start + 1) & self.mask();
        while visited < cap {
            let s = *self.slot(i);
            if s.addr != 0 && remove(s.addr, s.val) {
                self.delete_at(i);
                self.filter_add(s.addr, -1);
                continue; // look at slot `i` again: a later record may have moved here
            }
            visited += 1;
            i = (i + 1) & self.mask();
        }
    }

    /// Doubles the capacity (or maps the first slots). `false` when the OS refuses memory.
    #[cold]
    fn grow(&mut self) -> bool {
        if self.counters.is_null() {
            // No slots before the filter exists (see `ShardView`).
            self.counters = FILTERS[F].map();
            if self.counters.is_null() {
                return false;
            }
        }
        let new_cap = if self.inner.cap == 0 {
            INITIAL_CAPACITY
        } else {
            self.inner.cap * 2
        };
        let Some(bytes) = new_cap.checked_mul(SLOT_BYTES) else {
            return false;
        };
        let new = crate::os::map_zeroed(bytes).cast::<Slot>();
        if new.is_null() {
            return false;
        }
        let (old, old_cap) = (self.inner.slots, self.inner.cap);
        let new_mask = new_cap - 1;
        for i in 0..old_cap {
            // SAFETY: `i < old_cap`, the old mapping's length.
            let s = unsafe { *old.add(i) };
            if s.addr != 0 {
                let mut j = (hash(s.addr) >> 32) as usize & new_mask;
                // SAFETY: `j <= new_mask < new_cap`, the new mapping's length.
                while unsafe { (*new.add(j)).addr } != 0 {
                    j = (j + 1) & new_mask;
                }
                // SAFETY: as above.
                unsafe { *new.add(j) = s };
            }
        }
        if !old.is_null() {
            // SAFETY: `old` was mapped by `map_zeroed` with exactly this length.
            unsafe { crate::os::unmap(old.cast(), old_cap * SLOT_BYTES) };
        }
        self.inner.slots = new;
        self.inner.cap = new_cap;
        true
    }
}
