//! A whole store as records: what a compaction writes, and what the
//! directory holds right after it (every live tuple and every tombstone,
//! with the time it was stored, nothing else).

use super::record;
use crate::store::Store;

/// Appends a record of every entry of `store` (tombstones too) to `out`;
/// returns how many.
pub fn encode(store: &Store, out: &mut Vec<u8>) -> usize {
    out.reserve(estimate(store));
    encode_entries(store, 0..store.entries(), out)
}

/// Appends the records of entries `range` (by number) of `store` to
/// `out`; returns how many (a compaction taken a part at a time, see
/// [`Store::generation`]).
pub fn encode_entries(store: &Store, range: std::ops::Range<usize>, out: &mut Vec<u8>) -> usize {
    let mut n = 0;
    for i in range {
        let Some((key, t)) = store.entry(i) else {
            break;
        };
        let since = if t.deleted {
            store.tombstone_since(key).unwrap_or(0)
        } else {
            0
        };
        let w = crate::store::Write {
            value: t.value,
            version: t.version,
            expires: t.expires,
            deleted: t.deleted,
            ephemeral: t.ephemeral,
        };
        record::encode(out, key, &w, since);
        n += 1;
    }
    n
}

/// About the bytes [`encode`] writes for `store` (the compaction's
/// yardstick: a log more than twice this is compacted).
pub fn estimate(store: &Store) -> usize {
    // 30 bytes of a record's fixed fields, 8 more for an expiry or the
    // time of a tombstone, on average fewer.
    store.entries() * 34 + store.text_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Version, Write};

    #[test]
    fn a_snapshot_holds_every_entry_with_its_tombstone_time() {
        let mut s = Store::new();
        let w = |value, clock| Write {
            value,
            version: Version { clock, origin: 3 },
            expires: 0,
            deleted: false,
            ephemeral: false,
        };
        s.merge("a", w("1", 1), 0);
        s.merge(
            "b",
            Write {
                expires: 99_000,
                ..w("2", 2)
            },
            0,
        );
        s.merge("c", w("3", 3), 0);
        s.merge(
            "c",
            Write {
                deleted: true,
                ..w("", 4)
            },
            12_000,
        );
        let mut out = record::header(1).to_vec();
        assert_eq!(encode(&s, &mut out), 3);
        let scan = record::scan(&out).unwrap();
        assert_eq!((scan.records, scan.torn), (3, None));
        let all: Vec<_> = record::records(&out).collect();
        assert_eq!((all[0].key, all[0].write.value), ("a", "1"));
        assert_eq!(all[1].write.expires, 99_000);
        assert!(all[2].write.deleted);
        assert_eq!(all[2].since, 12_000);
        let e = estimate(&s);
        assert!(
            e * 3 / 2 >= out.len() - record::HEADER_LEN,
            "{e} vs {}",
            out.len()
        );
    }
}
