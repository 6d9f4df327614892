//! The store's text: every key and value back to back in one buffer, no
//! allocation per tuple. A replaced value leaves its old bytes behind as
//! garbage; once there is enough of it the store compacts, copying what
//! its entries still use into a new arena (so the cost per byte written
//! stays constant).

/// Garbage text (left by replaced values) kept before a compaction, at
/// least; beyond it, compaction happens once garbage outweighs live text.
pub(super) const MIN_GARBAGE: usize = 1 << 20;

#[derive(Debug, Default)]
pub(super) struct Arena {
    text: String,
    /// Bytes of `text` no entry uses any more.
    garbage: usize,
    /// Reused for the copy of a key whose value moves.
    scratch: String,
}

impl Arena {
    /// An empty arena with room for `capacity` bytes (a compaction's
    /// target).
    pub(super) fn with_capacity(capacity: usize) -> Arena {
        Arena {
            text: String::with_capacity(capacity),
            ..Arena::default()
        }
    }

    /// Bytes held, garbage included.
    pub(super) fn len(&self) -> usize {
        self.text.len()
    }

    /// Bytes no entry uses any more.
    pub(super) fn garbage(&self) -> usize {
        self.garbage
    }

    /// The text from `from` to `to`.
    #[inline]
    pub(super) fn slice(&self, from: usize, to: usize) -> &str {
        &self.text[from..to]
    }

    /// Appends a key and its value; returns where the key starts.
    pub(super) fn push(&mut self, key: &str, value: &str) -> usize {
        let at = self.text.len();
        self.text.push_str(key);
        self.text.push_str(value);
        at
    }

    /// Replaces the value (of `old_len` bytes) that follows the key of
    /// `key_len` bytes at `at`; returns where the key starts now. An empty
    /// value just shortens the entry; any other is written after the text,
    /// with a copy of the key, and the old text becomes garbage.
    pub(super) fn replace_value(
        &mut self,
        at: usize,
        key_len: usize,
        old_len: usize,
        value: &str,
    ) -> usize {
        let mut new_at = at;
        if !value.is_empty() {
            new_at = self.text.len();
            // The key is copied through a reused buffer (the text cannot
            // be read while it grows).
            let mut key = std::mem::take(&mut self.scratch);
            key.clear();
            key.push_str(&self.text[at..at + key_len]);
            self.text.push_str(&key);
            self.text.push_str(value);
            self.scratch = key;
            self.garbage += key_len;
        }
        self.garbage += old_len;
        new_at
    }

    /// Copies `len` bytes at `at` of `other` to the end; returns where
    /// they start here (compaction).
    pub(super) fn copy_from(&mut self, other: &Arena, at: usize, len: usize) -> usize {
        let new_at = self.text.len();
        self.text.push_str(&other.text[at..at + len]);
        new_at
    }

    /// True once garbage outweighs the live text (and passes
    /// [`MIN_GARBAGE`]): time to compact.
    pub(super) fn wants_compaction(&self) -> bool {
        self.garbage > MIN_GARBAGE && self.garbage > self.text.len() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Outcome, Store, Version, Write};

    fn w(value: &str, clock: u64) -> Write<'_> {
        Write {
            value,
            version: Version { clock, origin: 1 },
            expires: 0,
            deleted: false,
            ephemeral: false,
        }
    }

    #[test]
    fn replaced_values_are_compacted_and_every_value_stays_right() {
        let mut s = Store::new();
        let keys = 200;
        for round in 1..=200u64 {
            for k in 0..keys {
                let value = format!("{round}-{}", "x".repeat((round % 50) as usize * 10));
                let out = s.merge(&format!("key{k}"), w(&value, round), 0);
                assert_eq!(out, Outcome::Stored);
            }
            // Garbage stays bounded: below the threshold, or below half.
            assert!(
                s.text.garbage() <= MIN_GARBAGE || s.text.garbage() <= s.text.len() / 2,
                "round {round}: {} garbage of {}",
                s.text.garbage(),
                s.text.len()
            );
        }
        assert!(
            s.text.len() < 3 * MIN_GARBAGE,
            "compacted: {}",
            s.text.len()
        );
        for k in 0..keys {
            let want = format!("200-{}", "x".repeat(0));
            assert_eq!(s.value(&format!("key{k}")), Some(want.as_str()));
        }
        assert_eq!(s.len(), keys);
        let order: Vec<&str> = s.iter().map(|(k, _)| k).take(3).collect();
        assert_eq!(order, ["key0", "key1", "key2"], "first-stored order kept");
    }
}
