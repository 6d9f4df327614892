//! The store's hash index: key hash -> entry number, in one array of 4-byte
//! slots with linear probing; and the keys' hashing for it (seeded per
//! process, unlike the stable hashes of `fingerprint.rs`).
//!
//! A slot holds the entry number plus one (0: empty) in its low `bits` bits
//! and, above them, as many bits of the key's hash as are left (a tag). A
//! probe reads consecutive slots of one cache line, most often, and
//! compares tags there; the entry's key is read only when a tag matches. A
//! new key is claimed in the line the probe just read. (A table of separate
//! control bytes and entry numbers touches two lines far apart per new key:
//! in the star benchmark these misses were the event-loop thread's largest
//! cost.)
//!
//! The table holds at most 7/8 of its slots, so a probe always ends at an
//! empty slot, and entry numbers always fit below the tag. Keys are never
//! removed: the store rebuilds its index when it drops tombstones.

use std::hash::{BuildHasher, Hasher as _};

/// The index's hasher: fast, and seeded at random per process so that keys
/// chosen by a peer cannot be made to collide.
pub(super) type Hasher = foldhash::fast::RandomState;

/// A key's hash in the index: its bytes in one write (hashing the `str`
/// itself would add a terminator round to every look-up and rehash).
#[inline]
pub(super) fn index_hash(hasher: &Hasher, key: &str) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(key.as_bytes());
    h.finish()
}

/// Fewest slots of a table that holds anything (as a power of two).
const MIN_BITS: u32 = 4;

#[derive(Debug)]
pub(super) struct Index {
    /// 2^bits slots.
    slots: Vec<u32>,
    bits: u32,
    len: usize,
}

/// A key's place in the index, found by [`Index::probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// The key's entry number.
    Found(u32),
    /// The slot where the key would go, and what it would hold but the
    /// entry number.
    Vacant { at: usize, tag: u32 },
}

impl Default for Index {
    fn default() -> Index {
        Index::with_room(0)
    }
}

impl Index {
    /// An index with room for `n` entries.
    pub(super) fn with_room(n: usize) -> Index {
        let mut bits = MIN_BITS;
        while max_len(bits) < n {
            bits += 1;
        }
        assert!(bits <= 32, "fewer than 2^32 entries");
        // Zeroed by writing, not by the allocator: a large zeroed
        // allocation maps shared pages of zeros, and the first store to
        // each would then fault a second time and flush the other
        // threads' TLBs.
        #[allow(clippy::slow_vector_initialization)]
        let mut slots = Vec::with_capacity(1 << bits);
        slots.resize(1 << bits, 0);
        Index {
            slots,
            bits,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// True if one more entry would not fit.
    pub(super) fn is_full(&self) -> bool {
        self.len >= max_len(self.bits)
    }

    /// Where `h` starts probing, and the tag it carries.
    fn start(&self, h: u64) -> (usize, u32) {
        let at = (h >> (64 - self.bits)) as usize;
        let tag = (h & ((1u64 << (32 - self.bits)) - 1)) as u32;
        (at, tag)
    }

    /// Finds the entry whose hash is `h` and for which `is_key` holds, or
    /// the slot it would take.
    pub(super) fn probe(&self, h: u64, mut is_key: impl FnMut(u32) -> bool) -> Probe {
        let mask = self.slots.len() - 1;
        let (mut at, tag) = self.start(h);
        let number_mask = (1u64 << self.bits) - 1;
        loop {
            let s = u64::from(self.slots[at]);
            if s == 0 {
                return Probe::Vacant { at, tag };
            }
            if s >> self.bits == u64::from(tag) {
                let entry = ((s & number_mask) - 1) as u32;
                if is_key(entry) {
                    return Probe::Found(entry);
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Finds the entry whose hash is `h` and for which `is_key` holds.
    pub(super) fn find(&self, h: u64, is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        match self.probe(h, is_key) {
            Probe::Found(entry) => Some(entry),
            Probe::Vacant { .. } => None,
        }
    }

    /// Puts `entry` in the slot a probe found vacant (the index unchanged
    /// since, and not full).
    pub(super) fn claim(&mut self, at: usize, tag: u32, entry: u32) {
        debug_assert!(!self.is_full() && self.slots[at] == 0);
        debug_assert!(u64::from(entry) + 1 < 1u64 << self.bits);
        self.slots[at] = ((u64::from(tag) << self.bits) | (u64::from(entry) + 1)) as u32;
        self.len += 1;
    }

    /// Adds an entry known not to be in the index (not full).
    pub(super) fn insert_new(&mut self, h: u64, entry: u32) {
        if let Probe::Vacant { at, tag } = self.probe(h, |_| false) {
            self.claim(at, tag, entry);
        }
    }

    /// An index of entries 0, 1, ... with the given hashes (none equal as
    /// keys), with room for `room` entries at least.
    pub(super) fn build(room: usize, hashes: impl ExactSizeIterator<Item = u64>) -> Index {
        let mut index = Index::with_room(room.max(hashes.len()));
        for (entry, h) in hashes.enumerate() {
            index.insert_new(h, entry as u32);
        }
        index
    }
}

/// Entries a table of 2^bits slots holds at most.
fn max_len(bits: u32) -> usize {
    let slots = 1usize << bits;
    slots - slots / 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Against a map: keys with hashes drawn from a small pool (so full
        /// hashes, start slots and tags collide), added and looked up in
        /// any order, the index growing by rebuilds as the store grows it.
        #[test]
        fn agrees_with_a_map_whatever_the_collisions(
            pool in proptest::collection::vec(any::<u64>(), 1..12),
            ops in proptest::collection::vec((0u16..300, any::<prop::sample::Index>()), 0..400),
        ) {
            let mut index = Index::default();
            let mut model: HashMap<u16, u32> = HashMap::new();
            // Entry number -> its key, and each key's hash.
            let mut keys: Vec<u16> = Vec::new();
            let hash_of: HashMap<u16, u64> =
                ops.iter().map(|&(k, ref pick)| (k, pool[pick.index(pool.len())])).collect();
            for &(k, _) in &ops {
                if index.is_full() {
                    index = Index::build(index.len() * 2, keys.iter().map(|k| hash_of[k]));
                }
                match index.probe(hash_of[&k], |e| keys[e as usize] == k) {
                    Probe::Found(e) => prop_assert_eq!(model.get(&k), Some(&e)),
                    Probe::Vacant { at, tag } => {
                        prop_assert_eq!(model.get(&k), None);
                        let e = keys.len() as u32;
                        index.claim(at, tag, e);
                        keys.push(k);
                        model.insert(k, e);
                    }
                }
            }
            prop_assert_eq!(index.len(), model.len());
            for (&k, &h) in &hash_of {
                prop_assert_eq!(index.find(h, |e| keys[e as usize] == k), model.get(&k).copied());
            }
            prop_assert_eq!(index.find(0x5eed, |_| false), None);
        }
    }

    /// Entry `n`'s hash: chosen by the test, so collisions can be forced.
    fn put(index: &mut Index, hashes: &[u64]) {
        for (n, &h) in hashes.iter().enumerate() {
            let n = n as u32;
            match index.probe(h, |e| e == n) {
                Probe::Vacant { at, tag } => index.claim(at, tag, n),
                other => panic!("entry {n} found before it was added: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_index_finds_nothing() {
        let index = Index::default();
        assert!(!index.is_full());
        assert_eq!(index.find(42, |_| true), None);
    }

    #[test]
    fn entries_are_found_by_hash_and_key_even_when_hashes_collide() {
        let mut index = Index::with_room(10);
        // Same start, same tag: told apart only by the key check. Same
        // start, other tag. And one that wraps round the end of the table.
        let top = u64::MAX;
        let hashes = [5, 5, 5 | 1 << 8, top, top, 7 << 60];
        put(&mut index, &hashes);
        assert_eq!(index.len(), hashes.len());
        for (n, &h) in hashes.iter().enumerate() {
            assert_eq!(
                index.find(h, |e| e == n as u32),
                Some(n as u32),
                "entry {n}"
            );
        }
        assert_eq!(index.find(5, |e| e == 99), None);
        assert_eq!(index.find(1 << 40, |_| true), None);
    }

    #[test]
    fn fills_to_seven_eighths_and_every_entry_stays_findable() {
        let mut index = Index::with_room(100);
        let room = max_len(index.bits);
        assert!(room >= 100);
        let hashes: Vec<u64> = (0..room as u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        put(&mut index, &hashes);
        assert!(index.is_full());
        assert!(index.slots.contains(&0), "a probe must end");
        for (n, &h) in hashes.iter().enumerate() {
            assert_eq!(index.find(h, |e| e == n as u32), Some(n as u32));
        }
    }

    #[test]
    fn a_built_index_finds_every_entry() {
        let n = 101;
        let hashes: Vec<u64> = (0..n as u64)
            .map(|i| (i ^ 0x5555).wrapping_mul(0xff51_afd7_ed55_8ccd))
            .collect();
        let index = Index::build(10, hashes.iter().copied());
        assert_eq!(index.len(), n);
        assert!(!index.is_full());
        for (e, &h) in hashes.iter().enumerate() {
            assert_eq!(
                index.find(h, |x| x == e as u32),
                Some(e as u32),
                "entry {e}"
            );
        }
        assert_eq!(Index::build(0, std::iter::empty()).len(), 0);
    }

    #[test]
    fn tags_shrink_as_the_table_grows_and_numbers_still_fit() {
        // 2^20 slots: 12 tag bits; the largest entry number must survive.
        let mut index = Index::with_room(max_len(20));
        assert_eq!(index.bits, 20);
        let last = (max_len(20) - 1) as u32;
        let h = u64::MAX;
        index.insert_new(h, last);
        assert_eq!(index.find(h, |e| e == last), Some(last));
    }
}
