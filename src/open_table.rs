//! The one open-addressing hash table of the crate: fixed-size slots in memory straight
//! from the OS, linear probing, backward-shift deletion (no tombstones).
//!
//! Both the record table (`table.rs`: block address -> record) and the stack index
//! (`stack`: frames -> stack id) are built on it. It never allocates through the global
//! allocator (slots come from `mmap`), never panics, and every probe loop is bounded by
//! the capacity, so a full table answers "no room" instead of spinning. It is not
//! synchronised: each user keeps one behind its own lock.
//!
//! The table does not decide when to grow: its users have their own rules (a record cap,
//! a filter to map before the first slots), so they ask [`OpenTable::has_room`] and call
//! [`OpenTable::grow`]. Positions never leave the table: lookups hand out references or
//! an [`Entry`], which borrows the table, so no index can outlive a growth.

/// What a table holds.
///
/// # Safety
/// * The all-zero bit pattern must be a valid value of the type, and an empty slot
///   (`is_empty` is true for it): the table's memory comes zeroed from the OS.
/// * `is_empty` and `hash` must not allocate, lock or panic (they run on the allocator
///   path, under the user's lock).
pub(crate) unsafe trait Slot: Copy {
    /// The slot holds nothing.
    fn is_empty(&self) -> bool;
    /// The hash its entry was inserted under (probing starts from it when the table
    /// grows or a deletion shifts the entries after a hole).
    fn hash(&self) -> u64;
}

/// An open-addressing table of `S`.
///
/// Invariants, kept by every method: `slots` is null and `cap` is 0, or `slots` is a
/// mapping of `cap` slots from [`crate::os::map_zeroed`] owned by this table and `cap` is
/// a power of two; `len` is the number of non-empty slots; every entry can be reached by
/// probing from its home without passing an empty slot; at least one slot is empty
/// (no insertion takes the last one), so every probe run ends.
pub(crate) struct OpenTable<S: Slot> {
    slots: *mut S,
    cap: usize,
    len: usize,
}

// SAFETY: the table owns its mapping (no other pointer to it exists), so moving the table
// to another thread moves the slots with it; `S: Send` for what they hold.
unsafe impl<S: Slot + Send> Send for OpenTable<S> {}

/// Where a lookup for insertion ended.
pub(crate) enum Entry<'t, S: Slot> {
    /// A slot holding an entry the lookup accepted.
    Occupied(Occupied<'t, S>),
    /// The first empty slot of the probe run: an insertion goes there.
    Vacant(Vacant<'t, S>),
    /// Not there, and nothing can be inserted: no slots, or only the last empty one.
    Full,
}

/// A slot holding an entry (see [`OpenTable::entry`]).
pub(crate) struct Occupied<'t, S: Slot> {
    table: &'t mut OpenTable<S>,
    /// Below `table.cap` (made only by `entry`).
    i: usize,
}

/// An empty slot where the looked-up entry belongs (see [`OpenTable::entry`]).
pub(crate) struct Vacant<'t, S: Slot> {
    table: &'t mut OpenTable<S>,
    /// Below `table.cap`, an empty slot (made only by `entry`).
    i: usize,
}

impl<S: Slot> OpenTable<S> {
    /// An empty table with no slots (nothing mapped).
    pub(crate) const fn new() -> OpenTable<S> {
        OpenTable {
            slots: std::ptr::null_mut(),
            cap: 0,
            len: 0,
        }
    }

    /// Entries held.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots mapped (0 or a power of two).
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes of slot memory mapped.
    pub(crate) fn bytes(&self) -> usize {
        self.cap * std::mem::size_of::<S>()
    }

    /// One more entry keeps the load factor at or below 3/4 (false while nothing is mapped).
    #[inline(always)]
    pub(crate) fn has_room(&self) -> bool {
        (self.len + 1) * 4 <= self.cap * 3
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.cap.wrapping_sub(1)
    }

    /// The first slot probed for hash `h` (its high half: the low bits often pick the
    /// user's shard).
    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        (h >> 32) as usize & self.mask()
    }

    /// Slot `i & mask`: always in bounds when slots are mapped.
    #[inline(always)]
    fn at(&self, i: usize) -> &S {
        debug_assert!(self.cap != 0);
        // SAFETY: callers only index a table with slots (`cap != 0`: every probe checks it
        // first), so `slots` maps `cap` slots, a power of two, and `i & mask < cap`.
        unsafe { &*self.slots.add(i & self.mask()) }
    }

    #[inline(always)]
    fn at_mut(&mut self, i: usize) -> &mut S {
        debug_assert!(self.cap != 0);
        // SAFETY: as in `at`; `&mut self` gives exclusive access to the mapping.
        unsafe { &mut *self.slots.add(i & self.mask()) }
    }

    /// The position of the first entry of `h`'s probe run that `is` accepts.
    #[inline]
    fn position(&self, h: u64, mut is: impl FnMut(&S) -> bool) -> Option<usize> {
        // `len < cap` whenever slots are mapped (no insertion takes the last empty slot),
        // so this only stops a table without slots, and the run below meets an empty slot
        // within `cap` steps: no step counter needed.
        if self.len >= self.cap {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let s = self.at(i);
            if s.is_empty() {
                return None;
            }
            if is(s) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The entry of `h`'s probe run that `is` accepts.
    #[inline]
    pub(crate) fn get(&self, h: u64, is: impl FnMut(&S) -> bool) -> Option<&S> {
        let i = self.position(h, is)?;
        Some(self.at(i))
    }

    /// Looks up the entry of `h` that `is` accepts, for reading, changing or removing it,
    /// or else the empty slot where it belongs. Does not grow the table: check
    /// [`has_room`](Self::has_room) first when the lookup may insert.
    #[inline]
    pub(crate) fn entry(&mut self, h: u64, mut is: impl FnMut(&S) -> bool) -> Entry<'_, S> {
        if self.len + 1 >= self.cap {
            // No slots, or only the last empty one, which stays empty: it ends every
            // probe run. Nothing can be inserted; an entry can still be found.
            return self.entry_no_room(h, is);
        }
        // At least two empty slots: the run ends at one within `cap` steps, and an
        // insertion there leaves one.
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let s = self.at(i);
            if s.is_empty() {
                return Entry::Vacant(Vacant { table: self, i });
            }
            if is(s) {
                return Entry::Occupied(Occupied { table: self, i });
            }
            i = (i + 1) & mask;
        }
    }

    #[cold]
    fn entry_no_room(&mut self, h: u64, is: impl FnMut(&S) -> bool) -> Entry<'_, S> {
        match self.position(h, is) {
            Some(i) => Entry::Occupied(Occupied { table: self, i }),
            None => Entry::Full,
        }
    }

    /// Removes the entry of `h` that `is` accepts and returns it.
    #[inline]
    pub(crate) fn remove(&mut self, h: u64, is: impl FnMut(&S) -> bool) -> Option<S> {
        let i = self.position(h, is)?;
        let s = *self.at(i);
        self.delete_at(i);
        Some(s)
    }

    /// Backward-shift deletion of the entry in slot `hole` (below `cap`, occupied): later
    /// members of the probe run move up to fill the hole, so no tombstone is left. The
    /// walk ends at an empty slot, which exists (`len < cap`), within `cap` steps.
    fn delete_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = *self.at(j);
            if s.is_empty() {
                break;
            }
            let home = self.home(s.hash());
            // `s` may move into `hole` unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                *self.at_mut(hole) = s;
                hole = j;
            }
        }
        // SAFETY: an all-zero `S` is a valid value, and empty (the `Slot` contract).
        let empty = unsafe { std::mem::zeroed() };
        *self.at_mut(hole) = empty;
        self.len -= 1;
    }

    /// Removes every entry for which `remove` is true; `remove` sees each entry once.
    pub(crate) fn remove_where(&mut self, mut remove: impl FnMut(&S) -> bool) {
        if self.cap == 0 {
            return;
        }
        // Start just after an empty slot so that no probe run wraps past our start:
        // backward shifts then only move entries we have not visited yet, or into the
        // slot we are looking at (which we look at again).
        let Some(start) = (0..self.cap).find(|&i| self.at(i).is_empty()) else {
            return; // cannot happen: no insertion takes the last empty slot
        };
        let mut visited = 0;
        let mut i = (start + 1) & self.mask();
        while visited < self.cap {
            let s = self.at(i);
            if !s.is_empty() && remove(s) {
                self.delete_at(i);
                continue; // look at slot `i` again: a later entry may have moved here
            }
            visited += 1;
            i = (i + 1) & self.mask();
        }
    }

    /// Every entry, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &S> + '_ {
        (0..self.cap).map(|i| self.at(i)).filter(|s| !s.is_empty())
    }

    /// Doubles the capacity, or maps `initial` slots (a power of two) when nothing is
    /// mapped yet, and moves every entry. `false`, with the table unchanged, when the OS
    /// refuses the memory or the size overflows.
    #[cold]
    pub(crate) fn grow(&mut self, initial: usize) -> bool {
        let new_cap = if self.cap == 0 {
            initial
        } else {
            match self.cap.checked_mul(2) {
                Some(c) => c,
                None => return false,
            }
        };
        if !new_cap.is_power_of_two() {
            return false;
        }
        let Some(bytes) = new_cap.checked_mul(std::mem::size_of::<S>()) else {
            return false;
        };
        let new = crate::os::map_zeroed(bytes).cast::<S>();
        if new.is_null() {
            return false;
        }
        let old = OpenTable {
            slots: std::mem::replace(&mut self.slots, new),
            cap: std::mem::replace(&mut self.cap, new_cap),
            len: self.len,
        };
        for s in old.iter() {
            let mut j = self.home(s.hash());
            // The new table has room for every old entry (twice the slots), so the run
            // ends at an empty slot.
            while !self.at(j).is_empty() {
                j = j.wrapping_add(1);
            }
            *self.at_mut(j) = *s;
        }
        drop(old);
        true
    }
}

impl<S: Slot> Drop for OpenTable<S> {
    fn drop(&mut self) {
        if !self.slots.is_null() {
            // SAFETY: `slots` is this table's own mapping of `cap` slots (type invariant),
            // which nothing uses after the table.
            unsafe { crate::os::unmap(self.slots.cast(), self.bytes()) };
        }
    }
}

impl<S: Slot> Occupied<'_, S> {
    /// The entry.
    #[inline(always)]
    pub(crate) fn get(&self) -> &S {
        self.table.at(self.i)
    }

    /// The entry, to change in place (its hash must stay the same).
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> &mut S {
        self.table.at_mut(self.i)
    }

    /// Removes the entry and returns it.
    #[inline]
    pub(crate) fn remove(self) -> S {
        let s = *self.table.at(self.i);
        self.table.delete_at(self.i);
        s
    }
}

impl<S: Slot> Vacant<'_, S> {
    /// Stores `s` (not empty, hashing to the lookup's hash) in the empty slot.
    #[inline]
    pub(crate) fn insert(self, s: S) {
        *self.table.at_mut(self.i) = s;
        self.table.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A key and a value; the hash is chosen by the test, to force collisions and runs
    /// that wrap past the end of the slots.
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct T {
        key: u32,
        hash: u64,
        val: u32,
    }

    // SAFETY: all-zero is `key == 0`, which is empty; the methods only read fields.
    unsafe impl Slot for T {
        fn is_empty(&self) -> bool {
            self.key == 0
        }
        fn hash(&self) -> u64 {
            self.hash
        }
    }

    /// Hashes that land on `n` homes only (so runs collide), in the high half.
    fn h(key: u32, homes: u64) -> u64 {
        (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) % homes) << 32
    }

    fn insert(t: &mut OpenTable<T>, key: u32, hash: u64, val: u32) -> bool {
        if !t.has_room() && !t.grow(8) {
            return false;
        }
        match t.entry(hash, |s| s.key == key) {
            Entry::Occupied(mut o) => o.get_mut().val = val,
            Entry::Vacant(v) => v.insert(T { key, hash, val }),
            Entry::Full => return false,
        }
        true
    }

    /// Every entry is where a lookup finds it, and `len` counts them.
    fn check(t: &OpenTable<T>, model: &HashMap<u32, (u64, u32)>) {
        assert_eq!(t.len(), model.len());
        assert_eq!(t.iter().count(), model.len());
        for (&k, &(hash, val)) in model {
            let got = t.get(hash, |s| s.key == k).map(|s| s.val);
            assert_eq!(got, Some(val), "key {k}");
        }
    }

    #[test]
    fn an_empty_table_finds_nothing_and_has_no_room() {
        let mut t = OpenTable::<T>::new();
        assert_eq!((t.len(), t.capacity(), t.bytes()), (0, 0, 0));
        assert!(!t.has_room());
        assert!(t.get(5, |_| true).is_none());
        assert!(matches!(t.entry(5, |_| true), Entry::Full));
        assert!(t.remove(5, |_| true).is_none());
        t.remove_where(|_| true);
        assert!(
            !t.grow(12),
            "a capacity that is not a power of two is refused"
        );
        assert_eq!(t.capacity(), 0);
    }

    #[test]
    fn inserts_removes_and_grows_like_a_map() {
        // Random operations against a HashMap, with hashes squeezed onto few homes so
        // that probe runs are long and backward shifts move entries across the wrap.
        for homes in [1u64, 3, 64, 1 << 20] {
            let mut t = OpenTable::<T>::new();
            let mut model = HashMap::new();
            let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ homes;
            for step in 0..6_000u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = (x % 700) as u32 + 1;
                let hash = h(key, homes);
                if x >> 62 == 0 {
                    let got = t.remove(hash, |s| s.key == key).map(|s| s.val);
                    assert_eq!(got, model.remove(&key).map(|(_, v)| v), "step {step}");
                } else {
                    assert!(insert(&mut t, key, hash, step));
                    model.insert(key, (hash, step));
                }
                assert!(t.len() * 4 <= t.capacity() * 3);
                if step % 97 == 0 {
                    check(&t, &model);
                }
            }
            check(&t, &model);
            assert!(t.capacity() >= 8 && t.capacity().is_power_of_two());
        }
    }

    #[test]
    fn backward_shift_keeps_a_wrapped_run_reachable() {
        let mut t = OpenTable::<T>::new();
        assert!(t.grow(8));
        // Homes 6, 6, 7, 6: the run is slots 6, 7, 0, 1 and wraps past the end.
        let six = 6u64 << 32;
        let seven = 7u64 << 32;
        let items = [(1, six), (2, six), (3, seven), (4, six)];
        let mut model = HashMap::new();
        for (k, hash) in items {
            assert!(insert(&mut t, k, hash, k * 10));
            model.insert(k, (hash, k * 10));
        }
        let slot_of = |t: &OpenTable<T>, k: u32| (0..8).find(|&i| t.at(i).key == k);
        assert_eq!(slot_of(&t, 4), Some(1));
        // Removing the head moves each later entry up by one, the wrapped ones too.
        assert_eq!(t.remove(six, |s| s.key == 1).map(|s| s.val), Some(10));
        model.remove(&1);
        assert_eq!(slot_of(&t, 2), Some(6));
        assert_eq!(slot_of(&t, 3), Some(7));
        assert_eq!(slot_of(&t, 4), Some(0));
        assert!(t.at(1).is_empty(), "the hole ends where the run ended");
        check(&t, &model);
        // An entry already at its home stays: removing 2 must not move 3 before slot 7.
        assert!(t.remove(six, |s| s.key == 2).is_some());
        model.remove(&2);
        assert_eq!(slot_of(&t, 3), Some(7));
        assert_eq!(slot_of(&t, 4), Some(6));
        check(&t, &model);
    }

    #[test]
    fn remove_where_sees_every_entry_once_and_keeps_the_rest() {
        for homes in [1u64, 5, 1 << 20] {
            let mut t = OpenTable::<T>::new();
            let mut model = HashMap::new();
            for k in 1..=300u32 {
                let hash = h(k, homes);
                assert!(insert(&mut t, k, hash, k));
                model.insert(k, (hash, k));
            }
            let mut seen = Vec::new();
            t.remove_where(|s| {
                seen.push(s.key);
                s.key % 3 == 0
            });
            seen.sort_unstable();
            assert_eq!(seen, (1..=300).collect::<Vec<_>>(), "homes {homes}");
            model.retain(|k, _| k % 3 != 0);
            check(&t, &model);
        }
    }

    #[test]
    fn a_full_table_answers_full_and_still_finds_and_removes() {
        let mut t = OpenTable::<T>::new();
        assert!(t.grow(4));
        // Fill past the load factor (the table allows it; its users do not): every slot
        // but the last empty one.
        for k in 1..=4u32 {
            let hash = u64::from(k) << 32;
            match t.entry(hash, |s| s.key == k) {
                Entry::Vacant(v) => v.insert(T {
                    key: k,
                    hash,
                    val: k,
                }),
                Entry::Full => assert_eq!(k, 4, "only the last empty slot is refused"),
                Entry::Occupied(_) => panic!("{k} is not there yet"),
            }
        }
        assert_eq!(t.len(), 3);
        assert!(!t.has_room());
        assert!(matches!(t.entry(9 << 32, |s| s.key == 9), Entry::Full));
        assert!(t.get(9 << 32, |s| s.key == 9).is_none(), "a miss ends");
        assert_eq!(t.get(3 << 32, |s| s.key == 3).map(|s| s.val), Some(3));
        t.remove_where(|s| s.key % 2 == 0);
        let mut left: Vec<u32> = t.iter().map(|s| s.key).collect();
        left.sort_unstable();
        assert_eq!(left, [1, 3]);
        assert_eq!(t.len(), 2);
        assert!(matches!(t.entry(9 << 32, |s| s.key == 9), Entry::Vacant(_)));
    }

    #[test]
    fn growth_moves_every_entry_and_frees_the_old_slots() {
        let mut t = OpenTable::<T>::new();
        let mut model = HashMap::new();
        for k in 1..=1000u32 {
            let hash = h(k, 1 << 30);
            assert!(insert(&mut t, k, hash, k));
            model.insert(k, (hash, k));
        }
        assert_eq!(t.capacity(), 2048, "doubling from 8 keeps load <= 3/4");
        assert_eq!(t.bytes(), 2048 * std::mem::size_of::<T>());
        check(&t, &model);
    }
}
