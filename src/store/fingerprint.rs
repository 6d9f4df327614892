//! Stable hashes, the same on every node, platform and version: of a key
//! (its place on set reconciliation's 64-bit line), of a value (to
//! recognise a stale copy of a replaced value, [`Tuple::prev_hash`]) and of
//! one write (set reconciliation's fingerprints).
//!
//! Set reconciliation (`engine/sync.rs`) is the one user of key hashes and
//! fingerprints; the simulator compares stores by them too. They are
//! functions of a stored write and of nothing else, so they live beside
//! the tuples, where both reach them without the simulator depending on
//! the engine's insides, and where `zgossip::store` has always offered
//! them. The merge rule uses [`value_hash`].

use super::{Tuple, Version};

impl Tuple<'_> {
    /// [`key_hash`] of the key, for set reconciliation (computed, not
    /// stored: eight bytes less per tuple for a few ns per reconciliation
    /// pass).
    pub fn key_hash(&self) -> u64 {
        key_hash(self.key)
    }

    /// Fingerprint of this write for set reconciliation: equal on two nodes
    /// exactly when they hold the same write of the key.
    pub fn fingerprint(&self) -> u64 {
        item_fingerprint(self.key_hash(), self.version, self.deleted)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_stable() {
        // Pinned: nodes on other machines and versions must agree.
        assert_eq!(key_hash(""), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(key_hash("inproc://alpha-1"), key_hash("inproc://alpha-1"));
        assert_ne!(key_hash("a"), key_hash("b"));
    }
}
