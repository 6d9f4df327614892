//! The membership's ZGP/2 messages (`engine/membership.rs`,
//! `docs/membership.md`): member records, and the digests two nodes compare
//! to find the records one of them lacks. Like the overlay's messages they
//! only travel on extended connections; `docs/protocol.md` section 13 gives
//! their ABNF.
//!
//! ```text
//! MEMBERS        (23) = number-2 *record
//! MEMBER-DIGEST  (24) = reply record bits *hash     ; 2^bits hashes
//! record  = node-id incarnation state by started name endpoint
//! node-id = number-8 (not 0) ; incarnation = number-8 ; by = number-8
//! state   = %x01 (alive) / %x02 (suspect) / %x03 (failed) / %x04 (left)
//! started = number-8 (wall-clock ms at which the member started)
//! name    = number-1 *OCTET ; endpoint = number-1 *OCTET (empty or tcp://host:port)
//! reply   = %x00 / %x01 ; bits = %x00-08 ; hash = number-8
//! ```

use std::fmt;

use super::zgp2::{DecodeError, Reader};

pub(crate) const ID_MEMBERS: u8 = 23;
pub(crate) const ID_MEMBER_DIGEST: u8 = 24;

/// The most records one MEMBERS frame may carry.
pub const MAX_RECORDS: usize = 1024;
/// The most bits of a digest: 256 buckets.
pub const MAX_DIGEST_BITS: u8 = 8;
/// The longest name or endpoint a record may carry.
pub const MAX_TEXT_LEN: usize = 255;
/// Bytes of a record without its name and endpoint.
pub const RECORD_FIXED_LEN: usize = 8 + 8 + 1 + 8 + 8 + 1 + 1;

/// What a member is, as a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// It answers (or said so itself, at this incarnation).
    Alive,
    /// One of its observers lost it; it has the suspicion's time to say
    /// it is alive.
    Suspect,
    /// Nobody heard it deny the suspicion: taken as dead.
    Failed,
    /// It said it was leaving.
    Left,
}

impl MemberState {
    /// The word `MEMBERS` and `MEMBER` use.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Failed => "failed",
            MemberState::Left => "left",
        }
    }

    /// The state `name` names (`alive`, `suspect`, `failed`, `left`).
    pub fn parse(name: &str) -> Option<MemberState> {
        [
            MemberState::Alive,
            MemberState::Suspect,
            MemberState::Failed,
            MemberState::Left,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    fn octet(self) -> u8 {
        match self {
            MemberState::Alive => 1,
            MemberState::Suspect => 2,
            MemberState::Failed => 3,
            MemberState::Left => 4,
        }
    }

    fn from_octet(b: u8) -> Option<MemberState> {
        Some(match b {
            1 => MemberState::Alive,
            2 => MemberState::Suspect,
            3 => MemberState::Failed,
            4 => MemberState::Left,
            _ => return None,
        })
    }

    /// Failed or left: the member is not in the network.
    pub fn is_gone(self) -> bool {
        matches!(self, MemberState::Failed | MemberState::Left)
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One member as a node states it: who, at which incarnation, in which
/// state, said by whom (the member itself for alive and left, the observer
/// that lost it for suspect and failed), when it started, its name and
/// where to dial it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberRecord {
    pub id: u64,
    pub incarnation: u64,
    pub state: MemberState,
    pub by: u64,
    pub started: u64,
    pub name: String,
    pub endpoint: String,
}

impl MemberRecord {
    /// Bytes the record takes in a MEMBERS frame.
    pub fn encoded_len(&self) -> usize {
        RECORD_FIXED_LEN + self.name.len().min(MAX_TEXT_LEN) + self.endpoint.len().min(MAX_TEXT_LEN)
    }
}

/// One membership message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Records the receiver may not hold yet.
    Members(Vec<MemberRecord>),
    /// The sender's own record and a digest of its table: `hashes` holds
    /// 2^`bits` bucket hashes. `reply`: answer with a digest of yours.
    Digest {
        reply: bool,
        me: MemberRecord,
        bits: u8,
        hashes: Vec<u64>,
    },
}

impl Message {
    pub fn name(&self) -> &'static str {
        match self {
            Message::Members(_) => "MEMBERS",
            Message::Digest { .. } => "MEMBER-DIGEST",
        }
    }

    /// Appends the message as one ZGP/2 frame. Lists longer than the
    /// limits are cut to them (callers keep within them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Members(records) => {
                super::zgp2::header(out, ID_MEMBERS);
                let records = &records[..records.len().min(MAX_RECORDS)];
                out.extend_from_slice(&(records.len() as u16).to_be_bytes());
                for r in records {
                    encode_record(r, out);
                }
            }
            Message::Digest {
                reply,
                me,
                bits,
                hashes,
            } => {
                super::zgp2::header(out, ID_MEMBER_DIGEST);
                out.push(u8::from(*reply));
                encode_record(me, out);
                let bits = (*bits).min(MAX_DIGEST_BITS);
                out.push(bits);
                for i in 0..1usize << bits {
                    out.extend_from_slice(&hashes.get(i).copied().unwrap_or(0).to_be_bytes());
                }
            }
        }
    }
}

fn encode_text(s: &str, out: &mut Vec<u8>) {
    let mut n = s.len().min(MAX_TEXT_LEN);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out.push(n as u8);
    out.extend_from_slice(&s.as_bytes()[..n]);
}

fn encode_record(r: &MemberRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.id.to_be_bytes());
    out.extend_from_slice(&r.incarnation.to_be_bytes());
    out.push(r.state.octet());
    out.extend_from_slice(&r.by.to_be_bytes());
    out.extend_from_slice(&r.started.to_be_bytes());
    encode_text(&r.name, out);
    encode_text(&r.endpoint, out);
}

fn decode_record(r: &mut Reader<'_>) -> Result<MemberRecord, DecodeError> {
    let id = match r.u64("member id")? {
        0 => return Err(DecodeError::BadField("member id")),
        id => id,
    };
    let incarnation = r.u64("incarnation")?;
    let state =
        MemberState::from_octet(r.u8("state")?).ok_or(DecodeError::BadField("member state"))?;
    let by = match r.u64("by")? {
        0 => return Err(DecodeError::BadField("by")),
        by => by,
    };
    // Alive and left are only ever said by the member itself.
    if matches!(state, MemberState::Alive | MemberState::Left) && by != id {
        return Err(DecodeError::BadField("by"));
    }
    let started = r.u64("started")?;
    let n = r.u8("name")? as usize;
    let name = r.text(n, "name")?.to_string();
    let n = r.u8("endpoint")? as usize;
    let endpoint = r.text(n, "endpoint")?;
    if !endpoint.is_empty() && !super::overlay::endpoint_parses(endpoint) {
        return Err(DecodeError::BadField("endpoint"));
    }
    Ok(MemberRecord {
        id,
        incarnation,
        state,
        by,
        started,
        name,
        endpoint: endpoint.to_string(),
    })
}

/// Decodes the body of a membership message with id `id` (the four header
/// octets already read); `None` if `id` is not a membership message.
pub(crate) fn decode_body(id: u8, r: &mut Reader<'_>) -> Option<Result<Message, DecodeError>> {
    let body = |r: &mut Reader<'_>| -> Result<Message, DecodeError> {
        Ok(match id {
            ID_MEMBERS => {
                let n = r.u16("records")? as usize;
                if n > MAX_RECORDS {
                    return Err(DecodeError::BadField("records"));
                }
                r.room(n, RECORD_FIXED_LEN, "records")?;
                let mut records = Vec::with_capacity(n);
                for _ in 0..n {
                    records.push(decode_record(r)?);
                }
                Message::Members(records)
            }
            _ => {
                let reply = match r.u8("reply")? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::BadField("reply")),
                };
                let me = decode_record(r)?;
                let bits = r.u8("bits")?;
                if bits > MAX_DIGEST_BITS {
                    return Err(DecodeError::BadField("bits"));
                }
                let n = 1usize << bits;
                r.room(n, 8, "hashes")?;
                let hashes = (0..n).map(|_| r.u64("hash")).collect::<Result<_, _>>()?;
                Message::Digest {
                    reply,
                    me,
                    bits,
                    hashes,
                }
            }
        })
    };
    matches!(id, ID_MEMBERS | ID_MEMBER_DIGEST).then(|| body(r))
}

#[cfg(test)]
mod tests {
    use super::super::zgp2::{self, decode};
    use super::*;
    use proptest::prelude::*;

    fn record(id: u64, state: MemberState, by: u64) -> MemberRecord {
        MemberRecord {
            id,
            incarnation: 7,
            state,
            by,
            started: 1_700_000_000_000,
            name: format!("node-{id}"),
            endpoint: "tcp://10.0.0.1:5670".into(),
        }
    }

    fn all() -> Vec<Message> {
        vec![
            Message::Members(vec![]),
            Message::Members(vec![
                record(1, MemberState::Alive, 1),
                record(2, MemberState::Suspect, 9),
                record(3, MemberState::Failed, 9),
                record(u64::MAX, MemberState::Left, u64::MAX),
            ]),
            Message::Digest {
                reply: true,
                me: record(5, MemberState::Alive, 5),
                bits: 2,
                hashes: vec![1, 2, 3, u64::MAX],
            },
            Message::Digest {
                reply: false,
                me: MemberRecord {
                    endpoint: String::new(),
                    name: String::new(),
                    ..record(6, MemberState::Alive, 6)
                },
                bits: 0,
                hashes: vec![42],
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for msg in all() {
            let mut frame = Vec::new();
            msg.encode(&mut frame);
            assert_eq!(frame[..2], [0xAA, 0xA0]);
            assert_eq!(frame[3], 2);
            match decode(&frame) {
                Ok(zgp2::Message::Membership(m)) => assert_eq!(m, msg),
                other => panic!("{msg:?} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn a_record_is_laid_out_as_the_abnf_says() {
        let mut frame = Vec::new();
        Message::Members(vec![MemberRecord {
            id: 1,
            incarnation: 2,
            state: MemberState::Suspect,
            by: 3,
            started: 4,
            name: "a".into(),
            endpoint: String::new(),
        }])
        .encode(&mut frame);
        let mut want = vec![0xAA, 0xA0, 23, 2, 0, 1];
        for n in [1u64, 2] {
            want.extend_from_slice(&n.to_be_bytes());
        }
        want.push(2);
        for n in [3u64, 4] {
            want.extend_from_slice(&n.to_be_bytes());
        }
        want.extend_from_slice(&[1, b'a', 0]);
        assert_eq!(frame, want);
        assert_eq!(
            MemberRecord {
                id: 1,
                incarnation: 2,
                state: MemberState::Suspect,
                by: 3,
                started: 4,
                name: "a".into(),
                endpoint: String::new(),
            }
            .encoded_len(),
            frame.len() - 6
        );
    }

    #[test]
    fn impossible_records_are_refused() {
        let encode = |r: MemberRecord| {
            let mut f = Vec::new();
            Message::Members(vec![r]).encode(&mut f);
            f
        };
        let bad = [
            ("member id", record(0, MemberState::Alive, 0)),
            ("by", record(4, MemberState::Alive, 5)),
            ("by", record(4, MemberState::Left, 5)),
            (
                "endpoint",
                MemberRecord {
                    endpoint: "ipc:///x".into(),
                    ..record(4, MemberState::Alive, 4)
                },
            ),
        ];
        for (field, r) in bad {
            assert_eq!(
                decode(&encode(r.clone())),
                Err(DecodeError::BadField(field)),
                "{r:?}"
            );
        }
        let mut f = encode(record(4, MemberState::Alive, 4));
        f[6 + 16] = 9;
        assert_eq!(decode(&f), Err(DecodeError::BadField("member state")));
        // A count of records the frame cannot hold is refused before
        // anything is allocated.
        let f = [0xAA, 0xA0, 23, 2, 0x04, 0x00];
        assert_eq!(decode(&f), Err(DecodeError::Truncated("records")));
        let f = [0xAA, 0xA0, 23, 2, 0xFF, 0xFF];
        assert_eq!(decode(&f), Err(DecodeError::BadField("records")));
        // Digests of more than 256 buckets, or fewer hashes than said.
        let mut f = Vec::new();
        Message::Digest {
            reply: false,
            me: record(5, MemberState::Alive, 5),
            bits: 1,
            hashes: vec![1, 2],
        }
        .encode(&mut f);
        let bits_at = f.len() - 17;
        f[bits_at] = 9;
        assert_eq!(decode(&f), Err(DecodeError::BadField("bits")));
        f[bits_at] = 2;
        assert_eq!(decode(&f), Err(DecodeError::Truncated("hashes")));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300),
                                 id in 23u8..=24) {
            let mut frame = vec![0xAA, 0xA0, id, 2];
            frame.extend_from_slice(&body);
            let _ = decode(&frame);
        }

        #[test]
        fn records_round_trip(id in 1u64.., inc in any::<u64>(), by in 1u64..,
                              started in any::<u64>(), state in 1u8..=4,
                              name in "[a-zé0-9 -]{0,40}") {
            let state = MemberState::from_octet(state).unwrap();
            let by = if matches!(state, MemberState::Alive | MemberState::Left) { id } else { by };
            let r = MemberRecord { id, incarnation: inc, state, by, started, name,
                                   endpoint: "tcp://[::1]:9".into() };
            let mut f = Vec::new();
            Message::Members(vec![r.clone()]).encode(&mut f);
            prop_assert_eq!(decode(&f), Ok(zgp2::Message::Membership(Message::Members(vec![r]))));
        }
    }
}
