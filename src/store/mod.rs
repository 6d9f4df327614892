//! The tuple store: key -> the last write of that key.
//!
//! Fast path (memory): the store is compact, one text buffer for every key
//! and value, 24-byte entries and a tag-probing index of 4-byte slots
//! (`store/index.rs`): 33.7 bytes per tuple beyond key and value, 0.19 of
//! CZMQ's (docs/benchmarks.md, "Compact store" and the results table).
//!
//! A write carries a [`Version`] (hybrid logical clock + origin node id), an
//! optional absolute expiry (wall-clock ms) and a deleted flag. Merging is
//! last-writer-wins by version: the highest version of a key wins on every
//! node, whatever order writes arrive in, so the merge is commutative,
//! associative and idempotent. A deleted or expired key stays as a
//! *tombstone* (with its version) for a grace period, so an old copy coming
//! back from a node that missed the delete loses against it. The grace
//! counts from when this node stored the tombstone (its local wall time),
//! not from the version's time: a version's clock is the writer's word, and
//! a wild one must not keep a tombstone forever or drop it at once.
//!
//! Iteration follows the order keys were first stored, so snapshots are
//! deterministic. The store knows nothing of connections or clocks: callers
//! pass times in.
//!
//! One concept per file: `version` (versions and the hybrid logical
//! clock), `entry` (one stored key's 24 bytes), `arena` (the text buffer
//! and its compaction), `index` (the hash index and its hashing),
//! `origins` (interned node ids), `fingerprint` (stable hashes of keys,
//! values and writes); this file holds the [`Store`] and its merge rule.

use std::collections::HashMap;

mod arena;
mod entry;
mod fingerprint;
mod index;
mod origins;
mod version;

pub use fingerprint::{item_fingerprint, key_hash, value_hash};
pub use version::{Hlc, Version};

use arena::Arena;
use entry::{buried_s, Entry, Packed, DELETED, EPHEMERAL, HAS_EXPIRY, HAS_PREV};
use index::{index_hash, Hasher, Index, Probe as Slot};
use origins::Origins;

/// The index hashes of `entries`' keys, in entry order.
fn entry_hashes<'a>(
    entries: &'a [Entry],
    text: &'a Arena,
    hasher: &'a Hasher,
) -> impl ExactSizeIterator<Item = u64> + 'a {
    entries.iter().map(move |e| {
        let at = e.packed.at();
        index_hash(hasher, text.slice(at, at + e.packed.key_len()))
    })
}

/// One write of a key, as it travels between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write<'a> {
    pub value: &'a str,
    pub version: Version,
    /// Wall-clock ms at which the tuple expires; 0 = never.
    pub expires: u64,
    pub deleted: bool,
    /// Tied to its writer's life: deleted everywhere when the writer
    /// (the version's origin) leaves or fails. Never on a tombstone.
    pub ephemeral: bool,
}

/// One stored key, as read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple<'a> {
    /// The value (empty for a tombstone).
    pub value: &'a str,
    pub version: Version,
    /// Wall-clock ms of expiry; 0 = never.
    pub expires: u64,
    /// A tombstone: deleted, or expired.
    pub deleted: bool,
    /// Tied to its writer's life (see [`Write::ephemeral`]).
    pub ephemeral: bool,
    /// Hash of the value this write replaced (for a tombstone: of the value
    /// it removed), 0 if none; lets stale copies from CZMQ peers be
    /// recognised.
    pub prev_hash: u64,
    /// The key.
    pub key: &'a str,
}

impl Tuple<'_> {
    pub fn is_live(&self) -> bool {
        !self.deleted
    }
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new live value (new key, or a different value): deliver, forward.
    Stored,
    /// The same value with a newer version (a refresh): forward only.
    Refreshed,
    /// A live key became a tombstone: tell the application, forward.
    Deleted,
    /// Newer tombstone over a tombstone, or over nothing: forward only.
    TombstoneUpdated,
    /// Already held (same version).
    Duplicate,
    /// Older than what is held: ignored (the sender may be told ours).
    Stale,
}

/// Key/value tuples held by one node, stored compactly: every key and value
/// back to back in one text buffer, a table of 24-byte entries in the
/// order keys were first stored, and a hash index of 4-byte entry numbers.
/// No allocation per tuple.
#[derive(Debug, Default)]
pub struct Store {
    text: Arena,
    entries: Vec<Entry>,
    index: Index,
    hasher: Hasher,
    /// Node ids of the versions, interned.
    origins: Origins,
    /// Entry number -> expiry (wall ms), for entries with one.
    expiries: HashMap<u32, u64, Hasher>,
    /// Entry number -> hash of the value it replaced, for entries with one.
    prev: HashMap<u32, u64, Hasher>,
    live: usize,
    /// Times entry numbers changed (see [`Store::generation`]).
    renumbered: u64,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Number of live tuples (what STATUS reports).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Number of entries including tombstones.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of keys and values held (garbage left by replaced values
    /// not counted).
    pub fn text_bytes(&self) -> usize {
        self.text.len() - self.text.garbage()
    }

    fn key_of(&self, e: &Entry) -> &str {
        let at = e.packed.at();
        self.text.slice(at, at + e.packed.key_len())
    }

    fn tuple(&self, i: usize) -> (&str, Tuple<'_>) {
        let e = &self.entries[i];
        let at = e.packed.at();
        let split = at + e.packed.key_len();
        let flags = e.packed.flags();
        let n = i as u32;
        (
            self.text.slice(at, split),
            Tuple {
                value: self.text.slice(split, split + e.value_len()),
                version: Version {
                    clock: e.clock,
                    origin: self.origins.id(e.origin),
                },
                expires: if flags & HAS_EXPIRY != 0 {
                    self.expiries.get(&n).copied().unwrap_or(0)
                } else {
                    0
                },
                deleted: flags & DELETED != 0,
                ephemeral: flags & EPHEMERAL != 0,
                prev_hash: if flags & HAS_PREV != 0 {
                    self.prev.get(&n).copied().unwrap_or(0)
                } else {
                    0
                },
                key: self.text.slice(at, split),
            },
        )
    }

    /// The entry number of `key`.
    fn find(&self, key: &str) -> Option<usize> {
        self.find_hashed(key, index_hash(&self.hasher, key))
    }

    fn find_hashed(&self, key: &str, h: u64) -> Option<usize> {
        self.index
            .find(h, |i| self.key_of(&self.entries[i as usize]) == key)
            .map(|i| i as usize)
    }

    /// Entry number `i` (see [`merge_entry`](Self::merge_entry)).
    pub fn entry(&self, i: usize) -> Option<(&str, Tuple<'_>)> {
        (i < self.entries.len()).then(|| self.tuple(i))
    }

    /// The entry of `key`, live or tombstone.
    pub fn get(&self, key: &str) -> Option<Tuple<'_>> {
        self.find(key).map(|i| self.tuple(i).1)
    }

    /// The live value of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|t| t.is_live()).map(|t| t.value)
    }

    /// Every entry (tombstones too), oldest key first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Tuple<'_>)> {
        (0..self.entries.len()).map(|i| self.tuple(i))
    }

    /// Live tuples only, oldest key first.
    pub fn live(&self) -> impl Iterator<Item = (&str, Tuple<'_>)> {
        self.iter().filter(|(_, t)| t.is_live())
    }

    /// Node ids the stored entries use (each counted once).
    pub fn origin_count(&self) -> usize {
        self.origins.count()
    }

    /// Records that tombstone `i` was stored at local wall time
    /// `now_wall` (after its value was emptied and it was marked deleted).
    fn set_buried(&mut self, i: usize, now_wall: u64) {
        debug_assert!(self.entries[i].is_deleted());
        self.entries[i].len_or_since = buried_s(now_wall);
    }

    /// Local wall ms when this node stored the tombstone of `key` (to the
    /// second, rounded up; None: no tombstone of it).
    pub fn tombstone_since(&self, key: &str) -> Option<u64> {
        let e = &self.entries[self.find(key)?];
        e.is_deleted().then(|| e.buried_ms())
    }

    fn set_side(&mut self, i: usize, expires: u64, prev_hash: Option<u64>) {
        let n = i as u32;
        let mut flags = self.entries[i].packed.flags();
        if expires != 0 {
            self.expiries.insert(n, expires);
            flags |= HAS_EXPIRY;
        } else if flags & HAS_EXPIRY != 0 {
            self.expiries.remove(&n);
            flags &= !HAS_EXPIRY;
        }
        if let Some(p) = prev_hash {
            self.prev.insert(n, p);
            flags |= HAS_PREV;
        }
        let e = &mut self.entries[i];
        e.packed = e.packed.with_flags(flags);
    }

    fn set_deleted(&mut self, i: usize, deleted: bool) {
        self.set_flag(i, DELETED, deleted);
    }

    fn set_flag(&mut self, i: usize, flag: u64, on: bool) {
        let e = &mut self.entries[i];
        let flags = e.packed.flags();
        let flags = if on { flags | flag } else { flags & !flag };
        e.packed = e.packed.with_flags(flags);
    }

    /// The keys of the live tuples tied to the life of node `origin`
    /// (written by it as ephemeral). A pass over the store: called when a
    /// member leaves or fails, which is rare.
    pub fn ephemeral_of(&self, origin: u64) -> Vec<String> {
        (0..self.entries.len())
            .filter(|&i| {
                let e = &self.entries[i];
                e.packed.flags() & (EPHEMERAL | DELETED) == EPHEMERAL
                    && self.origins.id(e.origin) == origin
            })
            .map(|i| self.tuple(i).0.to_string())
            .collect()
    }

    /// Replaces the value of entry `i` (see [`Arena::replace_value`]).
    fn set_value(&mut self, i: usize, value: &str) {
        let e = self.entries[i];
        let value_len = u32::try_from(value.len()).expect("values shorter than 4 GiB");
        let at = self
            .text
            .replace_value(e.packed.at(), e.packed.key_len(), e.value_len(), value);
        self.entries[i].packed = e.packed.with_at(at);
        self.entries[i].len_or_since = value_len;
    }

    /// Merges a write at local wall time `now_wall` (when a tombstone
    /// stored now starts its grace): the higher version wins.
    pub fn merge(&mut self, key: &str, w: Write<'_>, now_wall: u64) -> Outcome {
        self.merge_entry(key, w, now_wall).0
    }

    /// Merges a write and says which entry holds the key now: its number
    /// stays valid until tombstones are collected.
    pub fn merge_entry(&mut self, key: &str, w: Write<'_>, now_wall: u64) -> (Outcome, usize) {
        let (outcome, i, _) = self
            .merge_entry_with(key, now_wall, |_| Some(w))
            .expect("a write is always given");
        (outcome, i)
    }

    /// Like [`merge_entry`](Self::merge_entry), with the write decided by
    /// `decide` from what the store holds for `key` (None: nothing is
    /// written and nothing changes). One probe of the index serves both
    /// the look-up and the merge. Returns the write merged as well.
    pub fn merge_entry_with<'v>(
        &mut self,
        key: &str,
        now_wall: u64,
        decide: impl FnOnce(Option<&Tuple<'_>>) -> Option<Write<'v>>,
    ) -> Option<(Outcome, usize, Write<'v>)> {
        let h = index_hash(&self.hasher, key);
        // One probe finds the key or the slot it would take; with room
        // made first, taking it never rehashes.
        if self.index.is_full() {
            self.grow_index();
        }
        let probe = self
            .index
            .probe(h, |j| self.key_of(&self.entries[j as usize]) == key);
        match probe {
            Slot::Found(i) => {
                let i = i as usize;
                let w = decide(Some(&self.tuple(i).1))?;
                Some((self.merge_at(i, w, now_wall), i, w))
            }
            Slot::Vacant { at, tag } => {
                let w = decide(None)?;
                // Checked before the slot is taken, so a key, value or text
                // too large (a bug upstream) cannot leave the index
                // pointing nowhere.
                let value = if w.deleted { "" } else { w.value };
                let value_len = u32::try_from(value.len()).expect("values shorter than 4 GiB");
                let packed = Packed::new(
                    self.text.len(),
                    key.len(),
                    if w.deleted {
                        DELETED
                    } else if w.ephemeral {
                        EPHEMERAL
                    } else {
                        0
                    },
                );
                let n = self.entries.len();
                self.index
                    .claim(at, tag, u32::try_from(n).expect("fewer than 2^32 entries"));
                Some((
                    self.push_entry(key, value, w, packed, value_len, now_wall),
                    n,
                    w,
                ))
            }
        }
    }

    /// Merges `w` into entry `i`, which holds its key.
    fn merge_at(&mut self, i: usize, w: Write<'_>, now_wall: u64) -> Outcome {
        let value = if w.deleted { "" } else { w.value };
        let (_, old) = self.tuple(i);
        let old_value = old.value;
        if w.version < old.version {
            return Outcome::Stale;
        }
        if w.version == old.version {
            return Outcome::Duplicate;
        }
        let outcome = match (old.deleted, w.deleted) {
            (false, false) if old_value == value => Outcome::Refreshed,
            (_, false) => Outcome::Stored,
            (false, true) => Outcome::Deleted,
            (true, true) => Outcome::TombstoneUpdated,
        };
        let prev = (outcome != Outcome::Refreshed && !(old.deleted && w.deleted))
            .then(|| value_hash(old_value));
        // A tombstone coming back to life gets its value length back in
        // place of its time, even an empty one.
        let changed = old_value != value || (old.deleted && !w.deleted);
        match (old.deleted, w.deleted) {
            (true, false) => self.live += 1,
            (false, true) => self.live -= 1,
            _ => {}
        }
        if changed {
            self.set_value(i, value);
        }
        let origin = self.origins.intern(w.version.origin);
        let e = &mut self.entries[i];
        e.clock = w.version.clock;
        let replaced = std::mem::replace(&mut e.origin, origin);
        self.origins.release(replaced);
        self.set_deleted(i, w.deleted);
        self.set_flag(i, EPHEMERAL, w.ephemeral && !w.deleted);
        if w.deleted {
            self.set_buried(i, now_wall);
        }
        self.set_side(i, w.expires, prev);
        self.maybe_compact();
        outcome
    }

    /// Appends the entry of a new key (its index slot already claimed).
    fn push_entry(
        &mut self,
        key: &str,
        value: &str,
        w: Write<'_>,
        packed: Packed,
        value_len: u32,
        now_wall: u64,
    ) -> Outcome {
        let i = self.entries.len();
        self.text.push(key, value);
        let origin = self.origins.intern(w.version.origin);
        self.entries.push(Entry {
            packed,
            clock: w.version.clock,
            len_or_since: value_len,
            origin,
        });
        if w.expires != 0 {
            self.set_side(i, w.expires, None);
        }
        if w.deleted {
            self.set_buried(i, now_wall);
            Outcome::TombstoneUpdated
        } else {
            self.live += 1;
            Outcome::Stored
        }
    }

    /// Doubles the index by inserting every entry, in order, into a new
    /// table: keys are read in the order they sit in the text, where a
    /// rehash in place would jump between entries and text at random (a
    /// cache miss or three per key; it was the top of the star profile).
    fn grow_index(&mut self) {
        self.index = Index::build(
            self.index.len() * 2,
            entry_hashes(&self.entries, &self.text, &self.hasher),
        );
    }

    /// Turns the live tuple of `key` into a tombstone if it expired at or
    /// before `now_wall`, keeping its version (every node does the same at
    /// the same wall time, so they agree without messages). True if it did.
    pub fn expire(&mut self, key: &str, now_wall: u64) -> bool {
        let Some(i) = self.find(key) else {
            return false;
        };
        let (_, t) = self.tuple(i);
        if !(t.is_live() && t.expires != 0 && t.expires <= now_wall) {
            return false;
        }
        let (prev, expires) = (value_hash(t.value), t.expires);
        self.set_value(i, "");
        self.set_deleted(i, true);
        self.set_flag(i, EPHEMERAL, false);
        self.set_buried(i, now_wall);
        self.set_side(i, expires, Some(prev));
        self.live -= 1;
        self.maybe_compact();
        true
    }

    /// Removes the tombstones whose grace ran out by local wall time
    /// `now_wall`: `grace` ms after this node stored them, or for a write
    /// that expired by its time to live (a tombstone with an expiry),
    /// `expired_grace` ms after it stored them or after the expiry,
    /// whichever is later (never beyond `grace`). The versions' clocks play
    /// no part. Returns how many were removed.
    pub fn collect_tombstones(&mut self, now_wall: u64, grace: u64, expired_grace: u64) -> usize {
        if self.entries.len() == self.live {
            return 0;
        }
        let due = |i: usize, e: &Entry| {
            let flags = e.packed.flags();
            if flags & DELETED == 0 {
                return false;
            }
            let n = i as u32;
            let since = e.buried_ms();
            let mut until = since.saturating_add(grace);
            if flags & HAS_EXPIRY != 0 {
                let expires = self.expiries.get(&n).copied().unwrap_or(0);
                until = until.min(since.max(expires).saturating_add(expired_grace));
            }
            until <= now_wall
        };
        let doomed: Vec<bool> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| due(i, e))
            .collect();
        let n = doomed.iter().filter(|&&d| d).count();
        if n > 0 {
            self.rebuild(|i| !doomed[i]);
            self.renumbered += 1;
        }
        n
    }

    /// Changes each time entry numbers change (tombstones collected): a
    /// walk over the entries by number must start again when it moved.
    pub fn generation(&self) -> u64 {
        self.renumbered
    }

    fn maybe_compact(&mut self) {
        if self.text.wants_compaction() {
            self.rebuild(|_| true);
        }
    }

    /// Rewrites the store with the entries `keep` selects, in their order:
    /// text without garbage, a new index, side tables renumbered, and only
    /// the node ids still used.
    fn rebuild(&mut self, keep: impl Fn(usize) -> bool) {
        let live_text: usize = self
            .entries
            .iter()
            .enumerate()
            .filter(|&(i, _)| keep(i))
            .map(|(_, e)| e)
            .map(|e| e.packed.key_len() + e.value_len())
            .sum();
        let mut text = Arena::with_capacity(live_text);
        let mut entries = Vec::with_capacity(self.entries.len());
        let mut expiries = HashMap::with_hasher(self.hasher);
        let mut prev = HashMap::with_hasher(self.hasher);
        let mut origins = Origins::default();
        for (old, e) in self.entries.iter().enumerate() {
            if !keep(old) {
                continue;
            }
            let at = e.packed.at();
            let len = e.packed.key_len() + e.value_len();
            let n = entries.len() as u32;
            let mut e = *e;
            e.packed = e.packed.with_at(text.copy_from(&self.text, at, len));
            e.origin = origins.intern(self.origins.id(e.origin));
            if let Some(&x) = self.expiries.get(&(old as u32)) {
                expiries.insert(n, x);
            }
            if let Some(&p) = self.prev.get(&(old as u32)) {
                prev.insert(n, p);
            }
            entries.push(e);
        }
        let index = Index::build(entries.len(), entry_hashes(&entries, &text, &self.hasher));
        self.live = entries
            .iter()
            .filter(|e| e.packed.flags() & DELETED == 0)
            .count();
        self.text = text;
        self.entries = entries;
        self.index = index;
        self.expiries = expiries;
        self.prev = prev;
        self.origins = origins;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(clock: u64, origin: u64) -> Version {
        Version { clock, origin }
    }

    fn w(value: &str, clock: u64) -> Write<'_> {
        Write {
            value,
            version: v(clock, 1),
            expires: 0,
            deleted: false,
            ephemeral: false,
        }
    }

    fn del(clock: u64) -> Write<'static> {
        Write {
            value: "",
            version: v(clock, 1),
            expires: 0,
            deleted: true,
            ephemeral: false,
        }
    }

    #[test]
    fn merge_with_decides_from_what_is_stored_and_may_write_nothing() {
        let mut s = Store::new();
        // A new key: `decide` sees nothing; declining leaves no trace.
        let r = s.merge_entry_with("k", 0, |old| {
            assert!(old.is_none());
            None
        });
        assert!(r.is_none());
        assert!(s.is_empty() && s.get("k").is_none());
        let (outcome, i, written) = s.merge_entry_with("k", 0, |_| Some(w("1", 1))).unwrap();
        assert_eq!((outcome, written.value), (Outcome::Stored, "1"));
        // An existing key: `decide` sees the stored tuple.
        let r = s.merge_entry_with("k", 0, |old| {
            let old = old.expect("k is stored");
            assert_eq!((old.value, old.version), ("1", v(1, 1)));
            None
        });
        assert!(r.is_none());
        assert_eq!(s.get("k").unwrap().value, "1");
        let (outcome, j, _) = s.merge_entry_with("k", 0, |_| Some(w("2", 2))).unwrap();
        assert_eq!((outcome, j), (Outcome::Stored, i));
        assert_eq!(s.get("k").unwrap().value, "2");
        // Declined new keys never claim index slots: many more still fit.
        for n in 0..1000 {
            let key = format!("n{n}");
            assert!(s.merge_entry_with(&key, 0, |_| None).is_none());
            assert_eq!(s.merge(&key, w("x", 1), 0), Outcome::Stored);
        }
        assert_eq!(s.len(), 1001);
        assert!((0..1000).all(|n| s.value(&format!("n{n}")) == Some("x")));
    }

    #[test]
    fn highest_version_wins_in_either_order() {
        let mut a = Store::new();
        assert_eq!(a.merge("k", w("1", 1), 0), Outcome::Stored);
        assert_eq!(a.merge("k", w("2", 2), 0), Outcome::Stored);
        assert_eq!(a.merge("k", w("1", 1), 0), Outcome::Stale);
        let mut b = Store::new();
        b.merge("k", w("2", 2), 0);
        b.merge("k", w("1", 1), 0);
        let (ta, tb) = (a.get("k").unwrap(), b.get("k").unwrap());
        assert_eq!((&ta.value, ta.version), (&tb.value, tb.version));
        assert_eq!(a.merge("k", w("2", 2), 0), Outcome::Duplicate);
        assert_eq!(a.merge("k", w("2", 3), 0), Outcome::Refreshed);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn tombstone_beats_older_write_and_loses_to_newer() {
        let mut s = Store::new();
        s.merge("k", w("1", 1), 0);
        assert_eq!(s.merge("k", del(2), 0), Outcome::Deleted);
        assert_eq!(s.len(), 0);
        assert_eq!(s.entries(), 1);
        assert_eq!(s.value("k"), None);
        assert_eq!(s.get("k").unwrap().prev_hash, value_hash("1"));
        // The old write coming back loses.
        assert_eq!(s.merge("k", w("1", 1), 0), Outcome::Stale);
        assert_eq!(s.merge("k", del(3), 0), Outcome::TombstoneUpdated);
        assert_eq!(s.merge("k", w("again", 4), 0), Outcome::Stored);
        assert_eq!(s.len(), 1);
        assert_eq!(
            Store::new().merge("x", del(1), 0),
            Outcome::TombstoneUpdated
        );
    }

    #[test]
    fn expiry_makes_a_tombstone_with_the_same_version() {
        let mut s = Store::new();
        let mut ttl = w("v", 10);
        ttl.expires = 1000;
        s.merge("k", ttl, 0);
        assert!(!s.expire("k", 999));
        assert!(s.expire("k", 1000));
        assert!(!s.expire("k", 2000));
        let t = s.get("k").unwrap();
        assert!(t.deleted && t.version == v(10, 1));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn tombstones_are_collected_after_grace_from_when_they_were_stored() {
        let mut s = Store::new();
        let old = Hlc::default().now(1_000);
        let new = Hlc::default().now(5_000);
        // The versions' times play no part: "a" has the newer version but
        // was stored first.
        s.merge(
            "a",
            Write {
                version: v(new, 1),
                ..del(0)
            },
            1_000,
        );
        s.merge(
            "b",
            Write {
                version: v(old, 1),
                ..del(0)
            },
            5_000,
        );
        s.merge("c", w("live", old), 0);
        assert_eq!(s.tombstone_since("a"), Some(1_000));
        assert_eq!(s.tombstone_since("c"), None);
        assert_eq!(s.collect_tombstones(1_999, 1_000, 1_000), 0);
        assert_eq!(s.collect_tombstones(2_000, 1_000, 1_000), 1);
        assert!(s.get("a").is_none() && s.get("b").is_some() && s.get("c").is_some());
        assert_eq!(s.tombstone_since("b"), Some(5_000), "renumbered with it");
        assert_eq!(s.collect_tombstones(6_000, 1_000, 1_000), 1);
        assert!(s.get("b").is_none());
    }

    #[test]
    fn a_tombstone_keeps_its_time_in_its_entry_and_gives_it_back_when_revived() {
        let mut s = Store::new();
        s.merge("k", w("value", 1), 0);
        s.merge("k", del(2), 1_500);
        // To the second, rounded up: the grace is never cut short.
        assert_eq!(s.tombstone_since("k"), Some(2_000));
        assert_eq!(s.get("k").unwrap().value, "");
        assert_eq!(s.text.garbage(), "value".len());
        // Back to life with an empty value, then with a value: the time's
        // place holds the length again, and no garbage is invented.
        assert_eq!(s.merge("k", w("", 3), 2_000), Outcome::Stored);
        assert_eq!((s.value("k"), s.tombstone_since("k")), (Some(""), None));
        s.merge("k", del(4), 3_000);
        assert_eq!(s.merge("k", w("again", 5), 4_000), Outcome::Stored);
        assert_eq!(s.value("k"), Some("again"));
        // The first value and the key's old copy (a new value is written
        // after the text with a copy of the key).
        assert_eq!(s.text.garbage(), "value".len() + "k".len());
        // Compaction keeps tombstones' times.
        s.merge("j", del(6), 7_000);
        s.rebuild(|_| true);
        assert_eq!(s.tombstone_since("j"), Some(7_000));
        assert_eq!(s.value("k"), Some("again"));
    }

    #[test]
    fn side_tables_and_node_ids_survive_collection() {
        let mut s = Store::new();
        let old = Hlc::default().now(1_000);
        let new = Hlc::default().now(5_000);
        // Many writers, one key each; tombstones of some, an expiry and a
        // replaced value on others.
        for n in 0..100u64 {
            let key = format!("k{n}");
            let version = Version {
                clock: if n % 2 == 0 { old } else { new },
                origin: 1_000 + n,
            };
            s.merge(
                &key,
                Write {
                    value: "first",
                    version,
                    expires: 0,
                    deleted: false,
                    ephemeral: false,
                },
                0,
            );
            let later = Version {
                clock: version.clock + 1,
                origin: version.origin,
            };
            let w = Write {
                value: "second",
                version: later,
                expires: if n % 3 == 0 { 9_000 + n } else { 0 },
                deleted: n % 2 == 0,
                ephemeral: false,
            };
            s.merge(&key, w, 0);
        }
        assert_eq!(s.origins.len(), 100);
        assert_eq!(s.collect_tombstones(2_000, 1_000, 1_000), 50);
        assert_eq!(s.entries(), 50);
        assert_eq!(s.origins.len(), 50, "ids of collected writes dropped");
        for n in (1..100u64).step_by(2) {
            let t = s.get(&format!("k{n}")).unwrap();
            assert_eq!(t.value, "second");
            assert_eq!(t.version.origin, 1_000 + n);
            assert_eq!(t.expires, if n % 3 == 0 { 9_000 + n } else { 0 });
            assert_eq!(t.prev_hash, value_hash("first"));
        }
        assert!(s.get("k0").is_none());
        assert_eq!(s.len(), 50);
        // The rebuilt index still takes new keys.
        assert_eq!(s.merge("fresh", w("v", new), 0), Outcome::Stored);
        assert_eq!(s.value("fresh"), Some("v"));
    }

    #[test]
    fn node_ids_no_entry_uses_are_released_at_once() {
        let mut s = Store::new();
        // One key taken over by a new writer again and again (no
        // tombstone, so no collection ever rebuilds the table).
        for n in 0..10_000u64 {
            let write = Write {
                version: Version {
                    clock: n,
                    origin: 5_000 + n,
                },
                ..w("v", 0)
            };
            s.merge("k", write, 0);
            s.merge(&format!("own{}", n % 4), write, 0);
            assert!(s.origin_count() <= 5, "{}", s.origin_count());
            assert!(s.origins.len() <= 6, "numbers reused");
        }
        let t = s.get("k").unwrap();
        assert_eq!(t.version.origin, 5_000 + 9_999);
        for k in 0..4u64 {
            let t = s.get(&format!("own{k}")).unwrap();
            assert_eq!(t.version.origin, 5_000 + 9_996 + k);
        }
    }

    #[test]
    fn many_keys_are_found_and_none_invented() {
        let mut s = Store::new();
        for k in 0..100_000u32 {
            s.merge(&format!("key-{k:08}"), w(&k.to_string(), 1), 0);
        }
        assert_eq!(s.len(), 100_000);
        for k in (0..100_000u32).step_by(997) {
            assert_eq!(
                s.value(&format!("key-{k:08}")),
                Some(k.to_string().as_str())
            );
        }
        assert_eq!(s.value("key-00100000"), None);
        assert_eq!(s.value("key-0000000"), None);
        // 24-byte entries, 4-byte index slots.
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    #[test]
    fn expiry_and_deletion_free_the_value_text() {
        let mut s = Store::new();
        let mut ttl = w("a long value", 10);
        ttl.expires = 1000;
        s.merge("k", ttl, 0);
        assert!(s.expire("k", 1000));
        let t = s.get("k").unwrap();
        assert_eq!((t.value, t.deleted, t.expires), ("", true, 1000));
        assert_eq!(t.prev_hash, value_hash("a long value"));
        assert_eq!(s.text.garbage(), "a long value".len());
        assert_eq!(s.merge("k", w("back", 11), 0), Outcome::Stored);
        assert_eq!(
            s.get("k").unwrap().expires,
            0,
            "a write without expiry clears it"
        );
    }

    /// A write of key `k{key}`. Writes are identified by their version, so
    /// the content (value, deleted) is derived from (key, version).
    #[derive(Debug, Clone)]
    struct Op {
        key: u8,
        clock: u64,
        origin: u64,
    }

    fn op() -> impl Strategy<Value = Op> {
        (0u8..4, 0u64..6, 0u64..3).prop_map(|(key, clock, origin)| Op { key, clock, origin })
    }

    fn apply(s: &mut Store, ops: &[Op]) {
        for o in ops {
            let value = format!("v{}-{}", o.clock % 3, o.origin);
            s.merge(
                &format!("k{}", o.key),
                Write {
                    value: &value,
                    version: v(o.clock, o.origin),
                    expires: 0,
                    deleted: (o.clock * 7 + o.origin + u64::from(o.key)) % 4 == 0,
                    ephemeral: false,
                },
                0,
            );
        }
    }

    /// The observable state: key -> (value, version, deleted).
    fn state(s: &Store) -> Vec<(String, String, Version, bool)> {
        let mut v: Vec<_> = s
            .iter()
            .map(|(k, t)| (k.to_string(), t.value.to_string(), t.version, t.deleted))
            .collect();
        v.sort();
        v
    }

    proptest! {
        #[test]
        fn merge_is_commutative(ops in proptest::collection::vec(op(), 0..30), seed in any::<u64>()) {
            let mut a = Store::new();
            apply(&mut a, &ops);
            let mut shuffled = ops.clone();
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut b = Store::new();
            apply(&mut b, &shuffled);
            prop_assert_eq!(state(&a), state(&b));
            prop_assert_eq!(a.len(), b.len());
        }

        #[test]
        fn merge_is_idempotent(ops in proptest::collection::vec(op(), 0..30)) {
            let mut a = Store::new();
            apply(&mut a, &ops);
            let once = state(&a);
            apply(&mut a, &ops);
            prop_assert_eq!(once, state(&a));
        }

        #[test]
        fn merge_is_associative(x in proptest::collection::vec(op(), 0..15),
                                y in proptest::collection::vec(op(), 0..15),
                                z in proptest::collection::vec(op(), 0..15)) {
            // (x then y) then z  ==  x then (y merged with z first, as a store)
            let mut left = Store::new();
            apply(&mut left, &x);
            apply(&mut left, &y);
            apply(&mut left, &z);
            let mut yz = Store::new();
            apply(&mut yz, &y);
            apply(&mut yz, &z);
            let mut right = Store::new();
            apply(&mut right, &x);
            let yz_ops: Vec<Op> = yz.iter().map(|(k, t)| Op {
                key: k[1..].parse().unwrap(),
                clock: t.version.clock,
                origin: t.version.origin,
            }).collect();
            apply(&mut right, &yz_ops);
            prop_assert_eq!(state(&left), state(&right));
        }
    }

    #[test]
    fn ephemeral_tuples_are_found_by_writer_and_a_tombstone_is_never_ephemeral() {
        let mut s = Store::new();
        let w = |value, clock, origin, ephemeral| Write {
            value,
            version: Version { clock, origin },
            expires: 0,
            deleted: false,
            ephemeral,
        };
        s.merge("a", w("1", 1, 7, true), 0);
        s.merge("b", w("2", 1, 7, false), 0);
        s.merge("c", w("3", 1, 8, true), 0);
        assert_eq!(s.ephemeral_of(7), ["a"]);
        assert_eq!(s.ephemeral_of(8), ["c"]);
        assert!(s.get("a").unwrap().ephemeral);
        // A newer plain write of the key is not ephemeral any more.
        s.merge("a", w("1", 2, 7, false), 0);
        assert!(s.ephemeral_of(7).is_empty());
        // A tombstone never is.
        s.merge(
            "c",
            Write {
                value: "",
                deleted: true,
                ..w("", 2, 8, true)
            },
            0,
        );
        assert!(!s.get("c").unwrap().ephemeral);
        assert!(s.ephemeral_of(8).is_empty());
    }
}
