//! ZGP/2: the protocol on top of ZGP v1 that our nodes speak to each other, negotiated in the
//! ZMTP `READY` metadata (see `docs/protocol.md`). A peer that did not
//! announce [`PROPERTY`] never receives any of these messages.
//!
//! ```text
//! zgp2-message = signature id %x02 body
//! TUPLE   (6) = key value clock origin expires flags
//! RANGES  (7) = number-2 *( lo hi count fingerprint )
//! ITEMS   (8) = number-2 *( lo hi number-4 *( key-hash clock origin ) )
//! WANT    (9) = number-4 *key-hash
//! key = number-1 *OCTET ; value = number-4 *OCTET
//! clock, origin, expires, lo, hi, fingerprint, key-hash = number-8
//! count = number-4 ; flags = number-1 (bit 0: deleted, bit 1: pushed, bit 2: ephemeral)
//! ```
//!
//! All numbers are unsigned, big-endian. Decoding checks every length
//! against what remains before reading.

use std::fmt;

use super::gossip::{MAX_KEY_LEN, SIGNATURE};
use super::text::{self, has_nul, TextError};

/// The READY property announcing ZGP/2; its value is the highest
/// ZGP version spoken, as ASCII digits.
pub const PROPERTY: &str = "X-ZGossip";
/// The READY property giving the sender's session timeout in ms (ASCII),
/// so a connecting node knows how often it must ping.
pub const TIMEOUT_PROPERTY: &str = "X-ZGossip-Timeout";
/// The READY property giving the largest frame the sender accepts, in
/// bytes (ASCII): a tuple longer than that is never sent to it.
pub const MAX_FRAME_PROPERTY: &str = "X-ZGossip-Max-Frame";
/// The READY property naming the sender's cluster (`cluster/name`), when
/// not empty: nodes of different clusters refuse each other's handshake.
pub const CLUSTER_PROPERTY: &str = "X-ZGossip-Cluster";
/// The ZGP/2 version byte.
pub const VERSION: u8 = 2;

pub(crate) const ID_TUPLE: u8 = 6;
const ID_RANGES: u8 = 7;
const ID_ITEMS: u8 = 8;
const ID_WANT: u8 = 9;

const FLAG_DELETED: u8 = 1;
/// Set on a TUPLE pushed by the broadcast tree (a forward), clear on one
/// sent by a reconciliation or a repair: only a pushed duplicate says that
/// a link of the tree is redundant. Older receivers ignore it.
const FLAG_PUSHED: u8 = 2;
/// Flags bit 2 of a tuple: tied to its writer's life (an ephemeral
/// tuple, `docs/membership.md`); peers that do not know it pass the tuple
/// on as a plain one.
const FLAG_EPHEMERAL: u8 = 4;

/// Bytes of one range entry in RANGES.
pub const RANGE_LEN: usize = 28;
/// Bytes of one item in ITEMS.
pub const ITEM_LEN: usize = 24;

/// A tuple write with its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub clock: u64,
    pub origin: u64,
    /// Wall-clock ms of expiry, 0 = never.
    pub expires: u64,
    pub deleted: bool,
    /// Tied to its writer's life (flags bit 2; never on a tombstone).
    pub ephemeral: bool,
}

/// A range of key hashes, inclusive at both ends, with the sender's count
/// and fingerprint of the items in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: u64,
    pub hi: u64,
    pub count: u32,
    pub fingerprint: u64,
}

/// One item of an ITEMS list: which write of which key the sender holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub key_hash: u64,
    pub clock: u64,
    pub origin: u64,
}

/// The sender's items in one range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub lo: u64,
    pub hi: u64,
    pub items: Vec<Item>,
}

/// One ZGP/2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Tuple(Tuple<'a>),
    Ranges(Vec<Range>),
    Items(Vec<Group>),
    Want(Vec<u64>),
    /// A message of the overlay (views and broadcast tree).
    Overlay(super::overlay::Message),
    /// A message of the membership (member records and digests).
    Membership(super::membership::Message),
}

/// Why bytes are not a ZGP/2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    NotZgp2,
    UnknownId(u8),
    Truncated(&'static str),
    TrailingBytes(usize),
    NotUtf8(&'static str),
    NulByte(&'static str),
    KeyTooLong(usize),
    /// A field whose value is impossible (a flag that is not 0 or 1, a
    /// count over its limit, an endpoint that does not parse).
    BadField(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotZgp2 => write!(f, "not a ZGP/2 message"),
            DecodeError::UnknownId(id) => write!(f, "unknown ZGP/2 message id {id}"),
            DecodeError::Truncated(field) => write!(f, "ZGP/2 message truncated in {field}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes after the ZGP/2 message"),
            DecodeError::NotUtf8(field) => write!(f, "ZGP/2 {field} is not UTF-8"),
            DecodeError::NulByte(field) => write!(f, "ZGP/2 {field} contains a NUL byte"),
            DecodeError::KeyTooLong(n) => write!(f, "ZGP/2 key of {n} bytes"),
            DecodeError::BadField(field) => write!(f, "ZGP/2 {field} is impossible"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// True when a frame carries the ZGP/2 version byte.
pub fn is_zgp2(frame: &[u8]) -> bool {
    frame.len() >= 4 && frame[..2] == SIGNATURE && frame[3] == VERSION
}

impl Message<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Message::Tuple(_) => "TUPLE",
            Message::Ranges(_) => "RANGES",
            Message::Items(_) => "ITEMS",
            Message::Want(_) => "WANT",
            Message::Overlay(m) => m.name(),
            Message::Membership(m) => m.name(),
        }
    }
}

pub(crate) fn header(out: &mut Vec<u8>, id: u8) {
    out.extend_from_slice(&[SIGNATURE[0], SIGNATURE[1], id, VERSION]);
}

/// Bytes [`encode_tuple`] appends for `t`.
pub fn tuple_len(t: &Tuple<'_>) -> usize {
    tuple_frame_len(t.key.len().min(MAX_KEY_LEN), t.value.len())
}

/// Length of the ZGP/2 tuple frame of a key and a value of these lengths:
/// the largest encoding a tuple travels in (a ZGP v1 `PUBLISH` of the same
/// tuple is 21 bytes shorter).
pub fn tuple_frame_len(key_len: usize, value_len: usize) -> usize {
    (4 + 1 + 4 + TUPLE_TAIL)
        .saturating_add(key_len)
        .saturating_add(value_len)
}

/// The flags byte encoded for `t`.
fn tuple_flags(t: &Tuple<'_>) -> u8 {
    if t.deleted {
        FLAG_DELETED
    } else if t.ephemeral {
        FLAG_EPHEMERAL
    } else {
        0
    }
}

/// Clock, origin, expiry and flags: what follows the value of a TUPLE.
const TUPLE_TAIL: usize = 8 + 8 + 8 + 1;

/// True if `frame` (which decoded as `t`) is exactly what a node encodes
/// for what it stores of `t`: no flag bits beyond the ones known, and no
/// value in a tombstone. Such a frame can be passed on as it is.
pub fn is_canonical_tuple(frame: &[u8], t: &Tuple<'_>) -> bool {
    frame.len() == tuple_len(t)
        && frame.last().map(|f| f & !FLAG_PUSHED) == Some(tuple_flags(t))
        && (!t.deleted || t.value.is_empty())
}

/// Marks the TUPLE frame `frame` as pushed by the broadcast tree.
pub fn mark_pushed(frame: &mut [u8]) {
    if let Some(flags) = frame.last_mut() {
        *flags |= FLAG_PUSHED;
    }
}

/// Whether the TUPLE frame `frame` was pushed by the broadcast tree.
pub fn is_pushed(frame: &[u8]) -> bool {
    frame.last().is_some_and(|f| f & FLAG_PUSHED != 0)
}

/// Appends a TUPLE. The key must be at most 255 bytes (callers check).
pub fn encode_tuple(t: &Tuple<'_>, out: &mut Vec<u8>) {
    debug_assert!(t.key.len() <= MAX_KEY_LEN);
    let key = &t.key.as_bytes()[..t.key.len().min(MAX_KEY_LEN)];
    // One reservation, then the fields in a few runs (this is the hottest
    // encoder: every forward and every tuple of a reconciliation).
    out.reserve(tuple_len(t));
    header(out, ID_TUPLE);
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&(t.value.len() as u32).to_be_bytes());
    out.extend_from_slice(t.value.as_bytes());
    let mut tail = [0u8; TUPLE_TAIL];
    tail[..8].copy_from_slice(&t.clock.to_be_bytes());
    tail[8..16].copy_from_slice(&t.origin.to_be_bytes());
    tail[16..24].copy_from_slice(&t.expires.to_be_bytes());
    tail[24] = tuple_flags(t);
    out.extend_from_slice(&tail);
}

/// Appends a RANGES message.
pub fn encode_ranges(ranges: &[Range], out: &mut Vec<u8>) {
    header(out, ID_RANGES);
    out.extend_from_slice(&(ranges.len() as u16).to_be_bytes());
    for r in ranges {
        out.extend_from_slice(&r.lo.to_be_bytes());
        out.extend_from_slice(&r.hi.to_be_bytes());
        out.extend_from_slice(&r.count.to_be_bytes());
        out.extend_from_slice(&r.fingerprint.to_be_bytes());
    }
}

/// Appends an ITEMS message.
pub fn encode_items(groups: &[Group], out: &mut Vec<u8>) {
    header(out, ID_ITEMS);
    out.extend_from_slice(&(groups.len() as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.lo.to_be_bytes());
        out.extend_from_slice(&g.hi.to_be_bytes());
        out.extend_from_slice(&(g.items.len() as u32).to_be_bytes());
        for i in &g.items {
            out.extend_from_slice(&i.key_hash.to_be_bytes());
            out.extend_from_slice(&i.clock.to_be_bytes());
            out.extend_from_slice(&i.origin.to_be_bytes());
        }
    }
}

/// Appends a WANT message.
pub fn encode_want(hashes: &[u64], out: &mut Vec<u8>) {
    header(out, ID_WANT);
    out.extend_from_slice(&(hashes.len() as u32).to_be_bytes());
    for h in hashes {
        out.extend_from_slice(&h.to_be_bytes());
    }
}

/// Reads the fields of a message, checking each length first.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(field));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub(crate) fn text(&mut self, n: usize, field: &'static str) -> Result<&'a str, DecodeError> {
        let b = self.take(n, field)?;
        text::check(b).map_err(|e| match e {
            TextError::Nul => DecodeError::NulByte(field),
            TextError::NotUtf8 => DecodeError::NotUtf8(field),
        })
    }
    /// Checks that `count` entries of `size` bytes can still follow, before
    /// anything is allocated for them.
    pub(crate) fn room(
        &self,
        count: usize,
        size: usize,
        field: &'static str,
    ) -> Result<(), DecodeError> {
        match count.checked_mul(size) {
            Some(n) if n <= self.buf.len() => Ok(()),
            _ => Err(DecodeError::Truncated(field)),
        }
    }
}

/// Decodes a ZGP/2 frame.
pub fn decode(frame: &[u8]) -> Result<Message<'_>, DecodeError> {
    if is_zgp2(frame) && frame[2] == ID_TUPLE {
        if let Some(t) = decode_tuple_quickly(&frame[4..]) {
            return Ok(Message::Tuple(t));
        }
    }
    decode_carefully(frame)
}

/// The body of a well-formed TUPLE (after its four header bytes), checked
/// in one pass: one length check for the whole frame and, for a value
/// shorter than 128 bytes, one UTF-8 check over key, value length and value
/// together (the length's four bytes are then ASCII, so the check passes
/// exactly when key and value both pass, and both start on a character).
/// `None` when anything is off; [`decode_carefully`] then says what.
fn decode_tuple_quickly(body: &[u8]) -> Option<Tuple<'_>> {
    let klen = usize::from(*body.first()?);
    let value_len_at = 1 + klen;
    let len_bytes: [u8; 4] = body.get(value_len_at..value_len_at + 4)?.try_into().ok()?;
    let vlen = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let value_at = value_len_at + 4;
    let tail_at = value_at.checked_add(vlen)?;
    if body.len() != tail_at.checked_add(TUPLE_TAIL)? {
        return None;
    }
    let (key, value) = if vlen < 0x80 {
        let text = std::str::from_utf8(&body[1..tail_at]).ok()?;
        let (key, value) = (text.get(..klen)?, text.get(klen + 4..)?);
        if has_nul(key.as_bytes()) || has_nul(value.as_bytes()) {
            return None;
        }
        (key, value)
    } else {
        (
            text::check(&body[1..value_len_at]).ok()?,
            text::check(&body[value_at..tail_at]).ok()?,
        )
    };
    let tail = &body[tail_at..];
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(tail.get(at..at + 8)?.try_into().ok()?))
    };
    Some(Tuple {
        key,
        value,
        clock: word(0)?,
        origin: word(8)?,
        expires: word(16)?,
        deleted: tail[24] & FLAG_DELETED != 0,
        ephemeral: tail[24] & (FLAG_DELETED | FLAG_EPHEMERAL) == FLAG_EPHEMERAL,
    })
}

/// Decodes a ZGP/2 frame field by field, naming the first field that is
/// wrong.
fn decode_carefully(frame: &[u8]) -> Result<Message<'_>, DecodeError> {
    if !is_zgp2(frame) {
        return Err(DecodeError::NotZgp2);
    }
    let id = frame[2];
    let mut r = Reader { buf: &frame[4..] };
    let msg = match id {
        ID_TUPLE => {
            let klen = r.u8("key")? as usize;
            let key = r.text(klen, "key")?;
            let vlen = r.u32("value")? as usize;
            let value = r.text(vlen, "value")?;
            let clock = r.u64("clock")?;
            let origin = r.u64("origin")?;
            let expires = r.u64("expires")?;
            let flags = r.u8("flags")?;
            Message::Tuple(Tuple {
                key,
                value,
                clock,
                origin,
                expires,
                deleted: flags & FLAG_DELETED != 0,
                ephemeral: flags & (FLAG_DELETED | FLAG_EPHEMERAL) == FLAG_EPHEMERAL,
            })
        }
        ID_RANGES => {
            let n = r.u16("ranges")? as usize;
            r.room(n, RANGE_LEN, "ranges")?;
            let mut ranges = Vec::with_capacity(n);
            for _ in 0..n {
                ranges.push(Range {
                    lo: r.u64("range")?,
                    hi: r.u64("range")?,
                    count: r.u32("range")?,
                    fingerprint: r.u64("range")?,
                });
            }
            Message::Ranges(ranges)
        }
        ID_ITEMS => {
            let n = r.u16("groups")? as usize;
            r.room(n, 20, "groups")?;
            let mut groups = Vec::with_capacity(n);
            for _ in 0..n {
                let lo = r.u64("group")?;
                let hi = r.u64("group")?;
                let m = r.u32("group")? as usize;
                r.room(m, ITEM_LEN, "items")?;
                let mut items = Vec::with_capacity(m);
                for _ in 0..m {
                    items.push(Item {
                        key_hash: r.u64("item")?,
                        clock: r.u64("item")?,
                        origin: r.u64("item")?,
                    });
                }
                groups.push(Group { lo, hi, items });
            }
            Message::Items(groups)
        }
        ID_WANT => {
            let n = r.u32("want")? as usize;
            r.room(n, 8, "want")?;
            let mut hashes = Vec::with_capacity(n);
            for _ in 0..n {
                hashes.push(r.u64("want")?);
            }
            Message::Want(hashes)
        }
        other => match super::overlay::decode_body(other, &mut r) {
            Some(decoded) => Message::Overlay(decoded?),
            None => match super::membership::decode_body(other, &mut r) {
                Some(decoded) => Message::Membership(decoded?),
                None => return Err(DecodeError::UnknownId(other)),
            },
        },
    };
    if !r.buf.is_empty() {
        return Err(DecodeError::TrailingBytes(r.buf.len()));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tuple_round_trips() {
        let t = Tuple {
            key: "k",
            value: "v",
            clock: 1 << 40,
            origin: 7,
            expires: 99,
            deleted: true,
            ephemeral: false,
        };
        let mut out = Vec::new();
        encode_tuple(&t, &mut out);
        assert_eq!(&out[..4], &[0xAA, 0xA0, 6, 2]);
        assert_eq!(decode(&out).unwrap(), Message::Tuple(t));
    }

    #[test]
    fn tuple_bytes_are_laid_out_field_by_field_and_appended() {
        let t = Tuple {
            key: "ab",
            value: "xyz",
            clock: 0x0102_0304_0506_0708,
            origin: 0x1112_1314_1516_1718,
            expires: 0x2122_2324_2526_2728,
            deleted: false,
            ephemeral: false,
        };
        let mut out = vec![0xEE];
        encode_tuple(&t, &mut out);
        let mut want = vec![0xEE, 0xAA, 0xA0, 6, 2, 2, b'a', b'b', 0, 0, 0, 3];
        want.extend_from_slice(b"xyz");
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
        want.extend_from_slice(&[0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28]);
        want.push(0);
        assert_eq!(out, want);
        assert_eq!(tuple_len(&t), want.len() - 1);
        for (key, value) in [("", ""), ("k", ""), ("key-00000001", "value-0123456789")] {
            let t = Tuple { key, value, ..t };
            let mut out = Vec::new();
            encode_tuple(&t, &mut out);
            assert_eq!(out.len(), tuple_len(&t));
        }
    }

    #[test]
    fn an_ephemeral_tuple_carries_flag_bit_2_and_a_tombstone_never_does() {
        let t = Tuple {
            key: "svc/db",
            value: "tcp://10.0.0.1:5432",
            clock: 1,
            origin: 2,
            expires: 0,
            deleted: false,
            ephemeral: true,
        };
        let mut f = Vec::new();
        encode_tuple(&t, &mut f);
        assert_eq!(f.last(), Some(&4));
        assert_eq!(decode(&f).unwrap(), Message::Tuple(t));
        assert!(is_canonical_tuple(&f, &t));
        // Deleted and ephemeral at once: a tombstone, never ephemeral.
        let last = f.len() - 1;
        f[last] = 5;
        match decode(&f).unwrap() {
            Message::Tuple(d) => assert!(d.deleted && !d.ephemeral),
            other => panic!("{other:?}"),
        }
        let dead = Tuple {
            value: "",
            deleted: true,
            ..t
        };
        let mut f = Vec::new();
        encode_tuple(&dead, &mut f);
        assert_eq!(f.last(), Some(&1));
    }

    #[test]
    fn only_frames_as_we_encode_them_are_canonical() {
        for (value, deleted) in [("v", false), ("", true)] {
            let t = Tuple {
                key: "k",
                value,
                clock: 1,
                origin: 2,
                expires: 3,
                deleted,
                ephemeral: false,
            };
            let mut f = Vec::new();
            encode_tuple(&t, &mut f);
            assert!(is_canonical_tuple(&f, &t));
            let last = f.len() - 1;
            f[last] |= 0x80;
            assert_eq!(decode(&f).unwrap(), Message::Tuple(t));
            assert!(!is_canonical_tuple(&f, &t));
        }
        let tombstone = Tuple {
            key: "k",
            value: "",
            clock: 1,
            origin: 2,
            expires: 0,
            deleted: true,
            ephemeral: false,
        };
        let with_value = Tuple {
            value: "v",
            ..tombstone
        };
        for (t, canonical) in [(tombstone, true), (with_value, false)] {
            let mut f = Vec::new();
            encode_tuple(&t, &mut f);
            assert_eq!(is_canonical_tuple(&f, &t), canonical);
        }
    }

    #[test]
    fn lists_round_trip() {
        let ranges = vec![Range {
            lo: 0,
            hi: u64::MAX,
            count: 3,
            fingerprint: 42,
        }];
        let mut out = Vec::new();
        encode_ranges(&ranges, &mut out);
        assert_eq!(decode(&out).unwrap(), Message::Ranges(ranges));
        let groups = vec![
            Group {
                lo: 1,
                hi: 2,
                items: vec![Item {
                    key_hash: 5,
                    clock: 6,
                    origin: 7,
                }],
            },
            Group {
                lo: 3,
                hi: 4,
                items: vec![],
            },
        ];
        out.clear();
        encode_items(&groups, &mut out);
        assert_eq!(decode(&out).unwrap(), Message::Items(groups));
        out.clear();
        encode_want(&[1, 2, 3], &mut out);
        assert_eq!(decode(&out).unwrap(), Message::Want(vec![1, 2, 3]));
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        // Claims 65535 ranges / 4 billion wants with no bytes behind them.
        assert_eq!(
            decode(&[0xAA, 0xA0, 7, 2, 0xFF, 0xFF]),
            Err(DecodeError::Truncated("ranges"))
        );
        assert_eq!(
            decode(&[0xAA, 0xA0, 9, 2, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::Truncated("want"))
        );
        assert_eq!(decode(&[0xAA, 0xA0, 6, 1]), Err(DecodeError::NotZgp2));
        assert_eq!(
            decode(&[0xAA, 0xA0, 42, 2]),
            Err(DecodeError::UnknownId(42))
        );
    }

    /// Frames around the quick path's edges: key and value lengths on both
    /// sides of 128, non-ASCII text, and each with one byte changed,
    /// removed or added.
    fn tuple_edge_frames() -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let texts = [
            String::new(),
            "k".into(),
            "ключ".into(),
            "v".repeat(127),
            "v".repeat(128),
            "é".repeat(64),
            "x".repeat(255),
            "y".repeat(300),
        ];
        for key in texts.iter().filter(|k| k.len() <= MAX_KEY_LEN) {
            for value in &texts {
                let mut out = Vec::new();
                encode_tuple(
                    &Tuple {
                        key,
                        value,
                        clock: 1,
                        origin: 2,
                        expires: 3,
                        deleted: true,
                        ephemeral: false,
                    },
                    &mut out,
                );
                frames.push(out.clone());
                for at in 4..out.len() {
                    for b in [0x00, 0x80, 0xC3, 0xFF] {
                        let mut f = out.clone();
                        f[at] = b;
                        frames.push(f);
                    }
                }
                frames.push(out[..out.len() - 1].to_vec());
                let mut longer = out.clone();
                longer.push(0);
                frames.push(longer);
            }
        }
        frames
    }

    #[test]
    fn the_quick_tuple_path_agrees_with_the_careful_one() {
        let mut quick = 0;
        for f in tuple_edge_frames() {
            assert_eq!(decode(&f), decode_carefully(&f), "{f:?}");
            quick += usize::from(decode_tuple_quickly(&f[4..]).is_some());
        }
        // The quick path took the valid frames, not only none of them.
        assert!(quick > 64, "{quick}");
    }

    proptest! {
        #[test]
        fn quick_and_careful_decodes_agree(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut framed = vec![0xAA, 0xA0, ID_TUPLE, 2];
            framed.extend_from_slice(&bytes);
            prop_assert_eq!(decode(&framed), decode_carefully(&framed));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut framed = vec![0xAA, 0xA0, 6 + bytes.first().copied().unwrap_or(0) % 4, 2];
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed);
            let _ = decode(&bytes);
        }

        #[test]
        fn every_prefix_of_a_tuple_is_rejected(key in "[a-z]{0,20}", value in "[a-z]{0,40}") {
            let mut out = Vec::new();
            encode_tuple(&Tuple { key: &key, value: &value, clock: 1, origin: 2, expires: 3, deleted: false , ephemeral: false }, &mut out);
            for n in 0..out.len() {
                prop_assert!(decode(&out[..n]).is_err());
            }
            prop_assert!(decode(&out).is_ok());
        }
    }
}
