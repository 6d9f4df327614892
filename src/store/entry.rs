//! One stored key's entry: 24 bytes, its text's place in the arena, its
//! key length and flags packed in one word.

/// Where an entry's text sits, its key length and flags, in one word:
/// offset in the text (40 bits, 1 TiB), key length (16 bits), flags (8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Packed(u64);

pub(super) const DELETED: u64 = 1;
pub(super) const HAS_EXPIRY: u64 = 2;
pub(super) const HAS_PREV: u64 = 4;
/// A live tuple tied to its writer's life (`docs/membership.md`).
pub(super) const EPHEMERAL: u64 = 8;
const OFFSET_BITS: u32 = 40;

impl Packed {
    pub(super) fn new(at: usize, key_len: usize, flags: u64) -> Packed {
        assert!(
            (at as u64) < 1 << OFFSET_BITS && key_len <= 0xffff,
            "store text beyond 1 TiB or key beyond 64 KiB"
        );
        Packed((at as u64) | (key_len as u64) << OFFSET_BITS | flags << 56)
    }

    pub(super) fn at(self) -> usize {
        (self.0 & ((1 << OFFSET_BITS) - 1)) as usize
    }

    pub(super) fn key_len(self) -> usize {
        ((self.0 >> OFFSET_BITS) & 0xffff) as usize
    }

    pub(super) fn flags(self) -> u64 {
        self.0 >> 56
    }

    pub(super) fn with_flags(self, flags: u64) -> Packed {
        Packed(self.0 & ((1 << 56) - 1) | flags << 56)
    }

    pub(super) fn with_at(self, at: usize) -> Packed {
        Packed::new(at, self.key_len(), self.flags())
    }
}

/// One stored key: 24 bytes. The key and value are in the store's text;
/// the origin is an index into its table of node ids; the rarely used
/// expiry and replaced-value hash live in side tables. A tombstone's value
/// is empty, so the place of its length holds the time the tombstone was
/// stored: a tombstone costs no more than a live entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) packed: Packed,
    pub(super) clock: u64,
    /// Live: the value's length in bytes. Tombstone: the local wall time,
    /// in seconds (rounded up), when this node stored it.
    pub(super) len_or_since: u32,
    pub(super) origin: u32,
}

impl Entry {
    pub(super) fn is_deleted(&self) -> bool {
        self.packed.flags() & DELETED != 0
    }

    /// Bytes of value text (none for a tombstone).
    pub(super) fn value_len(&self) -> usize {
        if self.is_deleted() {
            0
        } else {
            self.len_or_since as usize
        }
    }

    /// Local wall ms when this node stored the tombstone (its grace counts
    /// from then).
    pub(super) fn buried_ms(&self) -> u64 {
        u64::from(self.len_or_since) * 1000
    }
}

/// What a tombstone stored at local wall time `now_wall` (ms) records: the
/// second, rounded up so that no grace is cut short (u32 seconds last
/// until 2106).
pub(super) fn buried_s(now_wall: u64) -> u32 {
    u32::try_from(now_wall.div_ceil(1000)).unwrap_or(u32::MAX)
}
