//! The data file's bytes, without I/O: its header, its records, and the
//! check of a whole file read back (what is good, where a torn tail
//! starts, what damage is an error). docs/persistence.md gives the format
//! and the reasons for it.
//!
//! ```text
//! file    = header *( record / mark )
//! header  = "ZGPSTORE" version-4 nonce-4            ; 16 bytes
//! record  = length-4 crc-4 body                     ; crc: CRC-32 of body
//! body    = key value clock-8 origin-8 flags-1 [expires-8] [since-8]
//! key     = number-1 *OCTET ; value = number-4 *OCTET  (UTF-8 both)
//! flags   = bit 0 deleted, bit 1 expires present, bit 2 since present,
//!           bit 3 ephemeral (tied to its writer's life)
//! mark    = %x00.00.00.08 crc-4 "SYNC" nonce-4      ; all before it synced
//! ```
//!
//! A mark is written after each sync: everything before a good mark was
//! on disk before the mark was written. The nonce, drawn when the file is
//! created, keeps bytes inside a value from passing for a mark.
//!
//! The body follows the ZGP/2 `TUPLE` (key, value, clock, origin, then the
//! expiry and flags), with the expiry left out when there is none and the
//! local time a tombstone was stored (`since`, wall ms) added. Numbers are
//! unsigned, big-endian. Decoding checks every length against what is
//! left before reading, and never panics on any input.

use crate::store::{Version, Write};

/// The first bytes of every data file.
pub const MAGIC: &[u8; 8] = b"ZGPSTORE";
/// The format this code writes and reads; a file of a higher one is
/// refused (never read as something else).
pub const FORMAT: u32 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 16;
/// Bytes before a record's body: its length and checksum.
pub const FRAME_LEN: usize = 8;

const DELETED: u8 = 1;
const HAS_EXPIRES: u8 = 2;
const HAS_SINCE: u8 = 4;
/// Since the membership (issue 25); a reader older than it refuses such a
/// record as one of unknown flags.
const EPHEMERAL: u8 = 8;
const KNOWN_FLAGS: u8 = DELETED | HAS_EXPIRES | HAS_SINCE | EPHEMERAL;
/// The shortest body: empty key and value, clock, origin, flags.
const MIN_BODY: usize = 1 + 4 + 8 + 8 + 1;
/// A mark's body: "SYNC" and the file's nonce.
const MARK_BODY: usize = 8;
/// Bytes of a mark.
pub const MARK_LEN: usize = FRAME_LEN + MARK_BODY;
/// The longest body accepted: a 255-byte key and a value of 16 MiB (far
/// above the size rule's 1 MiB) with every optional field. A length
/// beyond it is damage, not a record.
pub const MAX_BODY: usize = 1 + 255 + 4 + (16 << 20) + 8 + 8 + 1 + 8 + 8;

/// The header of a new file whose marks carry `nonce`.
pub fn header(nonce: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT.to_be_bytes());
    h[12..].copy_from_slice(&nonce.to_be_bytes());
    h
}

/// The nonce of a file's header (checked by [`scan`] first).
pub fn nonce_of(header: &[u8]) -> u32 {
    header
        .get(12..HEADER_LEN)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Appends a mark: everything before it is on disk.
pub fn mark(out: &mut Vec<u8>, nonce: u32) {
    let mut body = [0u8; MARK_BODY];
    body[..4].copy_from_slice(b"SYNC");
    body[4..].copy_from_slice(&nonce.to_be_bytes());
    out.extend_from_slice(&(MARK_BODY as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

/// What a good record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A write.
    Record(Record<'a>),
    /// A sync mark, with its nonce.
    Mark(u32),
}

/// One record: the write a key holds, and for a tombstone the local wall
/// time (ms) this node stored it, which its grace counts from (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub key: &'a str,
    pub write: Write<'a>,
    pub since: u64,
}

/// Appends the record of `key` holding `w` to `out`. A tombstone's value
/// is not written. Keys longer than 255 bytes are never stored (the size
/// rule); one would be cut to its length's low byte, so it is refused by
/// a debug assertion.
pub fn encode(out: &mut Vec<u8>, key: &str, w: &Write<'_>, since: u64) {
    debug_assert!(key.len() <= 255);
    let value = if w.deleted { "" } else { w.value };
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    out.push(key.len() as u8);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(&w.version.clock.to_be_bytes());
    out.extend_from_slice(&w.version.origin.to_be_bytes());
    let mut flags = 0;
    if w.deleted {
        flags |= DELETED;
    }
    if w.expires != 0 {
        flags |= HAS_EXPIRES;
    }
    if since != 0 {
        flags |= HAS_SINCE;
    }
    if w.ephemeral && !w.deleted {
        flags |= EPHEMERAL;
    }
    out.push(flags);
    if w.expires != 0 {
        out.extend_from_slice(&w.expires.to_be_bytes());
    }
    if since != 0 {
        out.extend_from_slice(&since.to_be_bytes());
    }
    let body = start + FRAME_LEN;
    let len = (out.len() - body) as u32;
    let crc = crc32fast::hash(&out[body..]);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..body].copy_from_slice(&crc.to_be_bytes());
}

/// Why bytes are not a good record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// The bytes end inside the record (or inside its length).
    Short,
    /// A length that no record has.
    Length(usize),
    /// The body does not match its checksum.
    Checksum,
    /// The checksum matches but the body is not a record.
    Malformed(&'static str),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Short => write!(f, "the file ends inside the record"),
            Bad::Length(n) => write!(f, "a record length of {n} bytes"),
            Bad::Checksum => write!(f, "checksum mismatch"),
            Bad::Malformed(what) => write!(f, "malformed record ({what})"),
        }
    }
}

/// The record or mark at the start of `bytes` and its length in bytes,
/// checked (length, checksum, fields).
pub fn decode(bytes: &[u8]) -> Result<(Item<'_>, usize), Bad> {
    let body = body_of(bytes)?;
    if crc32fast::hash(body) != u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) {
        return Err(Bad::Checksum);
    }
    Ok((decode_item(body)?, FRAME_LEN + body.len()))
}

fn decode_item(body: &[u8]) -> Result<Item<'_>, Bad> {
    if body.len() == MARK_BODY {
        return match body.split_at(4) {
            (b"SYNC", nonce) => Ok(Item::Mark(nonce_of_mark(nonce))),
            _ => Err(Bad::Malformed("a mark without SYNC")),
        };
    }
    decode_body(body).map(Item::Record)
}

fn nonce_of_mark(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The body of the record at the start of `bytes`, its length checked
/// (not its checksum).
fn body_of(bytes: &[u8]) -> Result<&[u8], Bad> {
    let Some(frame) = bytes.get(..FRAME_LEN) else {
        return Err(Bad::Short);
    };
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    if len != MARK_BODY && !(MIN_BODY..=MAX_BODY).contains(&len) {
        return Err(Bad::Length(len));
    }
    bytes.get(FRAME_LEN..FRAME_LEN + len).ok_or(Bad::Short)
}

/// Reads a body's fields.
fn decode_body(body: &[u8]) -> Result<Record<'_>, Bad> {
    let mut r = Reader { rest: body };
    let key_len = usize::from(r.u8()?);
    let key = r.text(key_len, "key")?;
    let value_len = r.u32()? as usize;
    let value = r.text(value_len, "value")?;
    let clock = r.u64()?;
    let origin = r.u64()?;
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Bad::Malformed("unknown flags"));
    }
    let expires = if flags & HAS_EXPIRES != 0 {
        r.u64()?
    } else {
        0
    };
    let since = if flags & HAS_SINCE != 0 { r.u64()? } else { 0 };
    if !r.rest.is_empty() {
        return Err(Bad::Malformed("bytes after the fields"));
    }
    let deleted = flags & DELETED != 0;
    if deleted && !value.is_empty() {
        return Err(Bad::Malformed("a tombstone with a value"));
    }
    Ok(Record {
        key,
        write: Write {
            value,
            version: Version { clock, origin },
            expires,
            deleted,
            ephemeral: !deleted && flags & EPHEMERAL != 0,
        },
        since,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        if n > self.rest.len() {
            return Err(Bad::Malformed("a field runs past the record"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Bad> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Bad> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, Bad> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn text(&mut self, n: usize, what: &'static str) -> Result<&'a str, Bad> {
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| Bad::Malformed(what))
    }
}

/// Why a file cannot be read: damage before its tail, or a format it
/// does not know. `offset` is where, in bytes from the file's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub why: String,
}

/// What a check of a whole file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Records in the good part.
    pub records: usize,
    /// Bytes of the good part, header included: the file is cut here.
    pub good_len: usize,
    /// A torn or damaged tail, cut: where it started, and why.
    pub torn: Option<(usize, Bad)>,
}

/// Checks a whole file: its header, then each record. The first bad
/// record ends the good part. If no good mark of this file follows it,
/// it lies in what was written after the last sync, which a crash may
/// leave torn, or with holes and stale pages in any order (a power cut):
/// the file is cut there, and reads as the records before it. A good mark
/// after it means that the bad record had been synced: damage, an error,
/// as is a header that is not ours or a newer format.
pub fn scan(file: &[u8]) -> Result<Scan, Damage> {
    check_header(file)?;
    let nonce = nonce_of(file);
    let mut at = HEADER_LEN;
    let mut records = 0;
    while at < file.len() {
        match decode(&file[at..]) {
            Ok((item, len)) => {
                at += len;
                if matches!(item, Item::Record(_)) {
                    records += 1;
                }
            }
            Err(bad) => {
                if let Some(next) = mark_after(file, at + 1, nonce) {
                    return Err(Damage {
                        offset: at as u64,
                        why: format!(
                            "{bad}, in data synced to disk (a sync mark follows at offset {next})"
                        ),
                    });
                }
                return Ok(Scan {
                    records,
                    good_len: at,
                    torn: Some((at, bad)),
                });
            }
        }
    }
    Ok(Scan {
        records,
        good_len: at,
        torn: None,
    })
}

/// The header's check.
fn check_header(file: &[u8]) -> Result<(), Damage> {
    let damage = |offset: u64, why: String| Err(Damage { offset, why });
    if file.len() < HEADER_LEN {
        return damage(
            file.len() as u64,
            format!(
                "the file is {} bytes, shorter than its {HEADER_LEN}-byte header",
                file.len()
            ),
        );
    }
    if &file[..8] != MAGIC {
        return damage(0, "not a zgossip data file (no ZGPSTORE header)".into());
    }
    let format = u32::from_be_bytes([file[8], file[9], file[10], file[11]]);
    if format > FORMAT {
        return damage(
            8,
            format!(
                "written in format {format}, newer than this zgossip reads ({FORMAT}): \
                 use a newer zgossip"
            ),
        );
    }
    if format == 0 {
        return damage(8, "format 0 is not a format".into());
    }
    Ok(())
}

/// The first offset from `from` on where a good mark of `nonce` starts.
fn mark_after(file: &[u8], from: usize, nonce: u32) -> Option<usize> {
    let mut want = Vec::with_capacity(MARK_LEN);
    mark(&mut want, nonce);
    file.get(from..)?
        .windows(MARK_LEN)
        .position(|w| w == want.as_slice())
        .map(|i| from + i)
}

/// The records of the good part of a file (header included) that
/// [`scan`] checked, marks left out: read again without their checksums.
/// Anything that does not read ends the iteration (it cannot happen after
/// a scan).
pub fn records(good: &[u8]) -> impl Iterator<Item = Record<'_>> + '_ {
    let mut at = HEADER_LEN.min(good.len());
    std::iter::from_fn(move || loop {
        let body = body_of(&good[at..]).ok()?;
        at += FRAME_LEN + body.len();
        match decode_item(body).ok()? {
            Item::Record(rec) => return Some(rec),
            Item::Mark(_) => continue,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: u32 = 0x5eed_0001;

    fn w(value: &str, clock: u64) -> Write<'_> {
        Write {
            value,
            version: Version { clock, origin: 7 },
            expires: 0,
            deleted: false,
            ephemeral: false,
        }
    }

    /// A file of `n` records of varied shapes, with a sync mark after
    /// the first `synced` of them; the offsets the records start at.
    fn file(n: u64, synced: u64) -> (Vec<u8>, Vec<usize>) {
        let mut out = header(NONCE).to_vec();
        let mut starts = Vec::new();
        for i in 0..n {
            if i == synced {
                mark(&mut out, NONCE);
            }
            starts.push(out.len());
            let key = format!("key-{i}");
            let value = format!("value-{}", "x".repeat(i as usize % 5));
            let mut write = w(&value, 1000 + i);
            match i % 4 {
                1 => write.expires = 5_000 + i,
                2 => {
                    write.deleted = true;
                    write.value = "";
                }
                _ => {}
            }
            let since = if write.deleted { 9_000 + i } else { 0 };
            encode(&mut out, &key, &write, since);
        }
        if synced >= n {
            mark(&mut out, NONCE);
        }
        (out, starts)
    }

    fn keys(good: &[u8]) -> Vec<String> {
        records(good).map(|r| r.key.to_string()).collect()
    }

    #[test]
    fn records_read_back_as_written() {
        let (f, starts) = file(12, 5);
        let scan = scan(&f).unwrap();
        assert_eq!(scan.records, 12);
        assert_eq!((scan.good_len, scan.torn), (f.len(), None));
        assert_eq!(nonce_of(&f), NONCE);
        let all: Vec<Record<'_>> = records(&f).collect();
        assert_eq!(all.len(), 12);
        for (i, r) in all.iter().enumerate() {
            let i = i as u64;
            assert_eq!(r.key, format!("key-{i}"));
            assert_eq!(
                r.write.version,
                Version {
                    clock: 1000 + i,
                    origin: 7
                }
            );
            assert_eq!(r.write.deleted, i % 4 == 2);
            assert_eq!(r.write.expires, if i % 4 == 1 { 5_000 + i } else { 0 });
            assert_eq!(r.since, if i % 4 == 2 { 9_000 + i } else { 0 });
            let value = if r.write.deleted {
                String::new()
            } else {
                format!("value-{}", "x".repeat(i as usize % 5))
            };
            assert_eq!(r.write.value, value);
            let (one, len) = decode(&f[starts[i as usize]..]).unwrap();
            assert_eq!(one, Item::Record(*r));
            let next = starts[i as usize] + len;
            assert!(starts
                .get(i as usize + 1)
                .is_none_or(|&s| s == next || s == next + MARK_LEN));
        }
        let (m, len) = decode(&f[starts[5] - MARK_LEN..]).unwrap();
        assert_eq!((m, len), (Item::Mark(NONCE), MARK_LEN));
    }

    #[test]
    fn an_ephemeral_write_reads_back_as_ephemeral() {
        let mut out = header(NONCE).to_vec();
        let eph = Write {
            ephemeral: true,
            ..w("tcp://h:1", 3)
        };
        encode(&mut out, "svc", &eph, 0);
        encode(&mut out, "plain", &w("v", 4), 0);
        assert_eq!(scan(&out).unwrap().records, 2);
        let all: Vec<Record<'_>> = records(&out).collect();
        assert!(all[0].write.ephemeral && !all[1].write.ephemeral);
        assert_eq!(all[0].write.value, "tcp://h:1");
    }

    #[test]
    fn a_tombstone_never_writes_its_value_and_unicode_and_nul_survive() {
        let mut out = header(NONCE).to_vec();
        let mut t = w("gone", 5);
        t.deleted = true;
        encode(&mut out, "ключ", &t, 1);
        encode(&mut out, "κ", &w("значение\0", 6), 0);
        let all: Vec<Record<'_>> = records(&out).collect();
        assert_eq!((all[0].write.value, all[0].write.deleted), ("", true));
        assert_eq!((all[1].key, all[1].write.value), ("κ", "значение\0"));
        // A live record of 20-byte key and value: 30 bytes of overhead.
        let mut one = Vec::new();
        encode(&mut one, &"k".repeat(20), &w(&"v".repeat(20), 1), 0);
        assert_eq!(one.len(), 40 + 30);
    }

    #[test]
    fn a_write_torn_at_any_byte_of_the_last_record_is_cut_to_the_one_before() {
        let (f, starts) = file(6, 4);
        let last = *starts.last().unwrap();
        for cut in last..f.len() {
            let s = scan(&f[..cut]).unwrap_or_else(|d| panic!("cut at {cut}: {d:?}"));
            assert_eq!(s.good_len, last, "cut at {cut}");
            assert_eq!(s.records, 5);
            assert_eq!(s.torn.is_some(), cut > last, "cut at {cut}");
            assert_eq!(keys(&f[..s.good_len]).len(), 5);
        }
        // The same with zeros where the tail should be (a file extended
        // before its data reached the disk).
        for cut in last..f.len() {
            let mut z = f[..cut].to_vec();
            z.resize(f.len(), 0);
            let s = scan(&z).unwrap();
            assert_eq!((s.good_len, s.records), (last, 5), "zeros from {cut}");
        }
    }

    #[test]
    fn a_hole_after_the_last_sync_is_cut_with_what_follows_it() {
        // A power cut may leave any page written since the last sync
        // missing, the later ones present.
        let (f, starts) = file(8, 3);
        let mut g = f.clone();
        for b in &mut g[starts[4]..starts[5]] {
            *b = 0;
        }
        let s = scan(&g).unwrap();
        assert_eq!((s.good_len, s.records), (starts[4], 4));
        assert_eq!(keys(&g[..s.good_len]), ["key-0", "key-1", "key-2", "key-3"]);
        // Before the mark, the same hole is damage.
        let mut h = f.clone();
        for b in &mut h[starts[1]..starts[2]] {
            *b = 0;
        }
        let d = scan(&h).unwrap_err();
        assert_eq!(d.offset, starts[1] as u64);
        assert!(d.why.contains("synced to disk"), "{}", d.why);
    }

    #[test]
    fn a_flipped_bit_after_the_last_sync_is_cut_and_before_it_an_error_naming_the_offset() {
        let (f, starts) = file(5, 3);
        for byte in starts[3]..f.len() {
            for bit in 0..8 {
                let mut g = f.clone();
                g[byte] ^= 1 << bit;
                let s = scan(&g).unwrap_or_else(|d| panic!("{byte}/{bit}: {d:?}"));
                let at = if byte < starts[4] {
                    starts[3]
                } else {
                    starts[4]
                };
                assert_eq!(s.good_len, at, "{byte}/{bit}");
                assert!(s.torn.is_some());
            }
        }
        let mark_at = starts[3] - MARK_LEN;
        for byte in starts[1]..mark_at {
            for bit in 0..8 {
                let mut g = f.clone();
                g[byte] ^= 1 << bit;
                let d = scan(&g).expect_err("damage before the mark");
                let at = if byte < starts[2] {
                    starts[1]
                } else {
                    starts[2]
                };
                assert_eq!(d.offset, at as u64, "{byte}/{bit}: {}", d.why);
                assert!(d.why.contains(&format!("offset {mark_at}")), "{}", d.why);
            }
        }
    }

    #[test]
    fn only_a_mark_of_the_files_own_nonce_makes_damage_an_error() {
        // After a torn record: good records, and a mark of another nonce
        // (as bytes of a value from a peer might be): still a tail.
        let mut f = header(NONCE).to_vec();
        encode(&mut f, "a", &w("1", 1), 0);
        let good = f.len();
        let mut torn = Vec::new();
        encode(&mut torn, "b", &w("2", 2), 0);
        f.extend_from_slice(&torn[..torn.len() - 5]);
        mark(&mut f, NONCE ^ 1);
        encode(&mut f, "c", &w("3", 3), 0);
        let s = scan(&f).unwrap();
        assert_eq!((s.good_len, s.records), (good, 1));
        // The file's own mark there: the torn record had been synced.
        mark(&mut f, NONCE);
        assert_eq!(scan(&f).unwrap_err().offset, good as u64);
    }

    #[test]
    fn truncated_headers_foreign_files_and_newer_formats_are_errors() {
        let (f, _) = file(2, 2);
        for cut in 0..HEADER_LEN {
            let d = scan(&f[..cut]).expect_err("short header");
            assert!(
                d.why.contains("shorter than its 16-byte header"),
                "{}",
                d.why
            );
        }
        assert_eq!(scan(&f[..HEADER_LEN]).unwrap().records, 0);
        let mut foreign = f.clone();
        foreign[0] = b'X';
        assert!(scan(&foreign)
            .unwrap_err()
            .why
            .contains("not a zgossip data file"));
        let mut newer = f.clone();
        newer[8..12].copy_from_slice(&(FORMAT + 1).to_be_bytes());
        let d = scan(&newer).unwrap_err();
        assert_eq!(d.offset, 8);
        assert!(
            d.why
                .contains("format 2, newer than this zgossip reads (1)"),
            "{}",
            d.why
        );
    }

    #[test]
    fn bodies_that_are_not_records_are_refused_even_with_a_good_checksum() {
        let frame = |body: &[u8]| {
            let mut out = (body.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(&crc32fast::hash(body).to_be_bytes());
            out.extend_from_slice(body);
            out
        };
        let mut good = Vec::new();
        encode(&mut good, "k", &w("v", 1), 0);
        let body = &good[FRAME_LEN..];
        assert!(decode(&frame(body)).is_ok());
        let mut unknown = body.to_vec();
        *unknown.last_mut().unwrap() |= 0x80;
        assert_eq!(
            decode(&frame(&unknown)).unwrap_err(),
            Bad::Malformed("unknown flags")
        );
        let mut long = body.to_vec();
        long.push(0);
        assert!(matches!(decode(&frame(&long)), Err(Bad::Malformed(_))));
        let mut bad_utf8 = body.to_vec();
        bad_utf8[1] = 0xff;
        assert!(matches!(
            decode(&frame(&bad_utf8)),
            Err(Bad::Malformed("key"))
        ));
        assert_eq!(
            decode(&frame(b"NOTSYNC!")).unwrap_err(),
            Bad::Malformed("a mark without SYNC")
        );
        assert_eq!(
            decode(&[0, 0, 0, 1, 0, 0, 0, 0, 0]).unwrap_err(),
            Bad::Length(1)
        );
        assert_eq!(decode(&[0, 0]).unwrap_err(), Bad::Short);
    }

    #[test]
    fn any_bytes_scan_without_panicking() {
        let (f, _) = file(4, 2);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut g = f.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = HEADER_LEN + (x as usize) % (g.len() - HEADER_LEN);
                g[at] = (x >> 32) as u8;
            }
            let cut = HEADER_LEN + (x as usize >> 8) % (g.len() - HEADER_LEN + 1);
            if let Ok(s) = scan(&g[..cut]) {
                assert_eq!(records(&g[..s.good_len]).count(), s.records);
            }
        }
    }
}
