//! The tuple store: key -> the last write of that key.
//!
//! A write carries a [`Version`] (hybrid logical clock + origin node id), an
//! optional absolute expiry (wall-clock ms) and a deleted flag. Merging is
//! last-writer-wins by version: the highest version of a key wins on every
//! node, whatever order writes arrive in, so the merge is commutative,
//! associative and idempotent. A deleted or expired key stays as a
//! *tombstone* (with its version) for a grace period, so an old copy coming
//! back from a node that missed the delete loses against it.
//!
//! Iteration follows the order keys were first stored, so snapshots are
//! deterministic. The store knows nothing of connections or clocks: callers
//! pass times in.

use indexmap::IndexMap;

/// The map's hasher: fast, and seeded at random per process so that keys
/// chosen by a peer cannot be made to collide.
type Hasher = foldhash::fast::RandomState;

/// The version of a write: a hybrid logical clock reading plus the id of the
/// node that made the write. Totally ordered (clock, then origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// Hybrid logical clock: wall-clock ms in the upper 48 bits, a logical
    /// counter in the lower 16.
    pub clock: u64,
    /// Id of the node that made the write.
    pub origin: u64,
}

impl Version {
    /// Wall-clock milliseconds when the write was made.
    pub fn wall_ms(&self) -> u64 {
        Hlc::wall_ms(self.clock)
    }
}

/// One write of a key, as it travels between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write<'a> {
    pub value: &'a str,
    pub version: Version,
    /// Wall-clock ms at which the tuple expires; 0 = never.
    pub expires: u64,
    pub deleted: bool,
}

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    /// The value (empty for a tombstone).
    pub value: Box<str>,
    pub version: Version,
    /// Wall-clock ms of expiry; 0 = never.
    pub expires: u64,
    /// A tombstone: deleted, or expired.
    pub deleted: bool,
    /// Hash of the value this write replaced (for a tombstone: of the value
    /// it removed); lets stale copies from CZMQ peers be recognised.
    pub prev_hash: u64,
    /// [`key_hash`] of the key, cached for set reconciliation.
    pub key_hash: u64,
}

impl Tuple {
    pub fn is_live(&self) -> bool {
        !self.deleted
    }

    /// Fingerprint of this write for set reconciliation: equal on two nodes
    /// exactly when they hold the same write of the key.
    pub fn fingerprint(&self) -> u64 {
        item_fingerprint(self.key_hash, self.version, self.deleted)
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

/// Key/value tuples held by one node.
#[derive(Debug, Default)]
pub struct Store {
    map: IndexMap<Box<str>, Tuple, Hasher>,
    live: usize,
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
        self.map.len()
    }

    /// The entry of `key`, live or tombstone.
    pub fn get(&self, key: &str) -> Option<&Tuple> {
        self.map.get(key)
    }

    /// The live value of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.map.get(key).filter(|t| t.is_live()).map(|t| &*t.value)
    }

    /// Every entry (tombstones too), oldest key first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tuple)> {
        self.map.iter().map(|(k, t)| (&**k, t))
    }

    /// Live tuples only, oldest key first.
    pub fn live(&self) -> impl Iterator<Item = (&str, &Tuple)> {
        self.iter().filter(|(_, t)| t.is_live())
    }

    /// Merges a write: the higher version wins.
    pub fn merge(&mut self, key: &str, w: Write<'_>) -> Outcome {
        let value = if w.deleted { "" } else { w.value };
        match self.map.get_mut(key) {
            Some(t) => {
                if w.version < t.version {
                    return Outcome::Stale;
                }
                if w.version == t.version {
                    return Outcome::Duplicate;
                }
                let outcome = match (t.deleted, w.deleted) {
                    (false, false) if *t.value == *value => Outcome::Refreshed,
                    (_, false) => Outcome::Stored,
                    (false, true) => Outcome::Deleted,
                    (true, true) => Outcome::TombstoneUpdated,
                };
                if outcome != Outcome::Refreshed && !(t.deleted && w.deleted) {
                    t.prev_hash = value_hash(&t.value);
                }
                match (t.deleted, w.deleted) {
                    (true, false) => self.live += 1,
                    (false, true) => self.live -= 1,
                    _ => {}
                }
                if *t.value != *value {
                    t.value = value.into();
                }
                t.version = w.version;
                t.expires = w.expires;
                t.deleted = w.deleted;
                outcome
            }
            None => {
                self.map.insert(
                    key.into(),
                    Tuple {
                        value: value.into(),
                        version: w.version,
                        expires: w.expires,
                        deleted: w.deleted,
                        prev_hash: 0,
                        key_hash: key_hash(key),
                    },
                );
                if w.deleted {
                    Outcome::TombstoneUpdated
                } else {
                    self.live += 1;
                    Outcome::Stored
                }
            }
        }
    }

    /// Turns the live tuple of `key` into a tombstone if it expired at or
    /// before `now_wall`, keeping its version (every node does the same at
    /// the same wall time, so they agree without messages). True if it did.
    pub fn expire(&mut self, key: &str, now_wall: u64) -> bool {
        match self.map.get_mut(key) {
            Some(t) if t.is_live() && t.expires != 0 && t.expires <= now_wall => {
                t.prev_hash = value_hash(&t.value);
                t.value = "".into();
                t.deleted = true;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Removes tombstones whose version is older than `before_wall` (ms).
    /// Returns how many were removed.
    pub fn collect_tombstones(&mut self, before_wall: u64) -> usize {
        let n = self.map.len();
        self.map
            .retain(|_, t| !(t.deleted && t.version.wall_ms() < before_wall));
        n - self.map.len()
    }

    /// Keys whose [`key_hash`] is `h` (almost always one or none).
    pub fn keys_with_hash(&self, h: u64) -> impl Iterator<Item = (&str, &Tuple)> {
        self.iter().filter(move |(_, t)| t.key_hash == h)
    }
}

/// Stable 64-bit hash of a key, the same on every node and platform
/// (FNV-1a, then a SplitMix64 finaliser for an even spread).
pub fn key_hash(key: &str) -> u64 {
    mix(fnv1a(key.as_bytes()))
}

/// Stable hash of a value (see [`Tuple::prev_hash`]).
pub fn value_hash(value: &str) -> u64 {
    mix(fnv1a(value.as_bytes()) ^ 0x5bd1_e995)
}

/// Fingerprint of one write for set reconciliation.
pub fn item_fingerprint(key_hash: u64, version: Version, deleted: bool) -> u64 {
    let mut h = mix(key_hash ^ 0x9e37_79b9_7f4a_7c15);
    h = mix(h ^ version.clock);
    h = mix(h ^ version.origin);
    if deleted {
        h = mix(h ^ 1);
    }
    h
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hybrid logical clock (Kulkarni et al.): readings never go backwards,
/// stay close to wall-clock time, and move past every clock seen from peers.
#[derive(Debug, Clone, Default)]
pub struct Hlc {
    last: u64,
}

const LOGICAL_BITS: u32 = 16;

impl Hlc {
    /// A reading for a local event at wall-clock time `wall_ms`.
    pub fn now(&mut self, wall_ms: u64) -> u64 {
        let physical = wall_ms << LOGICAL_BITS;
        self.last = if physical > self.last {
            physical
        } else {
            self.last + 1
        };
        self.last
    }

    /// Moves the clock past a reading seen from a peer. Readings more than
    /// `max_ahead_ms` ahead of our wall clock are not followed (a peer with
    /// a wild clock must not drag every version into the future).
    pub fn observe(&mut self, seen: u64, wall_ms: u64, max_ahead_ms: u64) {
        let limit = (wall_ms.saturating_add(max_ahead_ms)) << LOGICAL_BITS;
        if seen > self.last && seen <= limit {
            self.last = seen;
        }
    }

    /// Milliseconds since the epoch of a reading.
    pub fn wall_ms(reading: u64) -> u64 {
        reading >> LOGICAL_BITS
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
        }
    }

    fn del(clock: u64) -> Write<'static> {
        Write {
            value: "",
            version: v(clock, 1),
            expires: 0,
            deleted: true,
        }
    }

    #[test]
    fn highest_version_wins_in_either_order() {
        let mut a = Store::new();
        assert_eq!(a.merge("k", w("1", 1)), Outcome::Stored);
        assert_eq!(a.merge("k", w("2", 2)), Outcome::Stored);
        assert_eq!(a.merge("k", w("1", 1)), Outcome::Stale);
        let mut b = Store::new();
        b.merge("k", w("2", 2));
        b.merge("k", w("1", 1));
        let (ta, tb) = (a.get("k").unwrap(), b.get("k").unwrap());
        assert_eq!((&ta.value, ta.version), (&tb.value, tb.version));
        assert_eq!(a.merge("k", w("2", 2)), Outcome::Duplicate);
        assert_eq!(a.merge("k", w("2", 3)), Outcome::Refreshed);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn tombstone_beats_older_write_and_loses_to_newer() {
        let mut s = Store::new();
        s.merge("k", w("1", 1));
        assert_eq!(s.merge("k", del(2)), Outcome::Deleted);
        assert_eq!(s.len(), 0);
        assert_eq!(s.entries(), 1);
        assert_eq!(s.value("k"), None);
        assert_eq!(s.get("k").unwrap().prev_hash, value_hash("1"));
        // The old write coming back loses.
        assert_eq!(s.merge("k", w("1", 1)), Outcome::Stale);
        assert_eq!(s.merge("k", del(3)), Outcome::TombstoneUpdated);
        assert_eq!(s.merge("k", w("again", 4)), Outcome::Stored);
        assert_eq!(s.len(), 1);
        assert_eq!(Store::new().merge("x", del(1)), Outcome::TombstoneUpdated);
    }

    #[test]
    fn expiry_makes_a_tombstone_with_the_same_version() {
        let mut s = Store::new();
        let mut ttl = w("v", 10);
        ttl.expires = 1000;
        s.merge("k", ttl);
        assert!(!s.expire("k", 999));
        assert!(s.expire("k", 1000));
        assert!(!s.expire("k", 2000));
        let t = s.get("k").unwrap();
        assert!(t.deleted && t.version == v(10, 1));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn tombstones_are_collected_after_grace() {
        let mut s = Store::new();
        let old = Hlc::default().now(1_000);
        let new = Hlc::default().now(5_000);
        s.merge(
            "a",
            Write {
                version: v(old, 1),
                ..del(0)
            },
        );
        s.merge(
            "b",
            Write {
                version: v(new, 1),
                ..del(0)
            },
        );
        s.merge("c", w("live", old));
        assert_eq!(s.collect_tombstones(2_000), 1);
        assert!(s.get("a").is_none() && s.get("b").is_some() && s.get("c").is_some());
    }

    #[test]
    fn key_hash_is_stable() {
        // Pinned: nodes on other machines and versions must agree.
        assert_eq!(key_hash(""), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(key_hash("inproc://alpha-1"), key_hash("inproc://alpha-1"));
        assert_ne!(key_hash("a"), key_hash("b"));
    }

    #[test]
    fn hlc_is_monotonic_and_bounded_by_max_ahead() {
        let mut c = Hlc::default();
        let a = c.now(1000);
        let b = c.now(1000);
        let d = c.now(900);
        assert!(a < b && b < d);
        assert_eq!(Hlc::wall_ms(a), 1000);
        c.observe(5000 << 16, 1000, 10_000);
        assert!(c.now(1000) > 5000 << 16);
        let before = c.now(1000);
        c.observe(1_000_000 << 16, 1000, 10_000);
        assert!(c.now(1000) < 1_000_000 << 16 && c.now(1000) > before);
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
                },
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
}
