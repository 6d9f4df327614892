//! The tuple store: key -> value with the version that wrote it.
//!
//! The store knows nothing of connections or time sources; the engine passes
//! in whatever it needs. Keys are unique; a key maps to one [`Tuple`].
//! Iteration follows the order keys were first stored, so snapshots are
//! deterministic.

use indexmap::IndexMap;

/// The version of a write: a hybrid logical clock reading plus the id of the
/// node that made the write. Versions are totally ordered (clock first, then
/// origin), so "the highest version wins" settles concurrent writes the same
/// way on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// Hybrid logical clock: milliseconds since the Unix epoch in the upper
    /// 48 bits, a logical counter in the lower 16.
    pub clock: u64,
    /// Id of the node that wrote this version.
    pub origin: u64,
}

/// One stored tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    pub value: Box<str>,
    pub version: Version,
}

/// What applying a write did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The key was new or its value changed: deliver and forward.
    Stored,
    /// Same key, same value: a duplicate, dropped.
    Duplicate,
}

/// Key/value tuples held by one node.
#[derive(Debug, Default)]
pub struct Store {
    map: IndexMap<Box<str>, Tuple>,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Number of tuples held (what STATUS reports).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Tuple> {
        self.map.get(key)
    }

    /// Every tuple, oldest key first (the order keys were first stored).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tuple)> {
        self.map.iter().map(|(k, t)| (&**k, t))
    }

    /// Applies a write with CZMQ's rule: a tuple whose value equals the
    /// stored one is a duplicate; any other value replaces it. `version` is
    /// recorded with the new value.
    pub fn apply(&mut self, key: &str, value: &str, version: Version) -> Outcome {
        match self.map.get_mut(key) {
            Some(t) if *t.value == *value => Outcome::Duplicate,
            Some(t) => {
                t.value = value.into();
                t.version = version;
                Outcome::Stored
            }
            None => {
                self.map.insert(
                    key.into(),
                    Tuple {
                        value: value.into(),
                        version,
                    },
                );
                Outcome::Stored
            }
        }
    }
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

    /// Moves the clock past a reading seen from a peer.
    pub fn observe(&mut self, seen: u64) {
        if seen > self.last {
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

    fn v(clock: u64) -> Version {
        Version { clock, origin: 7 }
    }

    #[test]
    fn new_key_is_stored_and_counted() {
        let mut s = Store::new();
        assert_eq!(s.apply("a", "1", v(1)), Outcome::Stored);
        assert_eq!(s.len(), 1);
        assert_eq!(&*s.get("a").unwrap().value, "1");
    }

    #[test]
    fn same_value_is_duplicate_and_keeps_version() {
        let mut s = Store::new();
        s.apply("a", "1", v(1));
        assert_eq!(s.apply("a", "1", v(9)), Outcome::Duplicate);
        assert_eq!(s.get("a").unwrap().version, v(1));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn new_value_replaces() {
        let mut s = Store::new();
        s.apply("a", "1", v(1));
        assert_eq!(s.apply("a", "2", v(2)), Outcome::Stored);
        assert_eq!(&*s.get("a").unwrap().value, "2");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn hlc_is_monotonic_when_wall_clock_stalls_or_goes_back() {
        let mut c = Hlc::default();
        let a = c.now(1000);
        let b = c.now(1000);
        let d = c.now(900);
        assert!(a < b && b < d);
        assert_eq!(Hlc::wall_ms(a), 1000);
        c.observe(5000 << 16);
        assert!(c.now(1000) > 5000 << 16);
    }
}
