//! ZGP (ZeroMQ Gossip Protocol) message codec, version 1, as spoken by
//! CZMQ 4.2.1 `zgossip` (`zgossip_msg.bnf`).
//!
//! Every message is the body of exactly one ZMTP frame:
//!
//! ```text
//! message   = signature id version [ key value ttl ]   ; key/value/ttl only for PUBLISH
//! signature = %xAA %xA0
//! id        = HELLO 1 | PUBLISH 2 | PING 3 | PONG 4 | INVALID 5
//! version   = %x01
//! key       = 1OCTET length, then that many bytes
//! value     = 4OCTET big-endian length, then that many bytes
//! ttl       = 4OCTET big-endian, milliseconds
//! ```
//!
//! Decoding borrows the key and value from the frame, so it never allocates.
//! Keys and values must be UTF-8 without NUL bytes (the application API hands
//! them out as C strings and Python `str`); anything else is a [`DecodeError`].

use std::fmt;

/// The two signature octets that start every ZGP message.
pub const SIGNATURE: [u8; 2] = [0xAA, 0xA0];
/// The only protocol version we speak and accept.
pub const VERSION: u8 = 1;
/// Longest key the wire format can carry (its length is one octet).
pub const MAX_KEY_LEN: usize = 255;
/// Longest value the wire format can carry (its length is four octets).
pub const MAX_VALUE_LEN: usize = u32::MAX as usize;

const ID_HELLO: u8 = 1;
pub(crate) const ID_PUBLISH: u8 = 2;
const ID_PING: u8 = 3;
const ID_PONG: u8 = 4;
const ID_INVALID: u8 = 5;

/// Size of the fixed header: signature, id, version.
const HEADER_LEN: usize = 4;

/// One ZGP message. `Publish` borrows its key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Client greets the server; the server answers with every tuple it holds.
    Hello,
    /// Either side announces a tuple.
    Publish {
        /// Tuple key, at most [`MAX_KEY_LEN`] bytes, no NUL.
        key: &'a str,
        /// Tuple value, no NUL.
        value: &'a str,
        /// Time to live in milliseconds (CZMQ always sends 0).
        ttl: u32,
    },
    /// Client liveness probe.
    Ping,
    /// Server answer to `Ping`.
    Pong,
    /// Server rejects a message it did not expect.
    Invalid,
}

impl<'a> Message<'a> {
    /// The message id octet (HELLO 1, PUBLISH 2, PING 3, PONG 4, INVALID 5).
    pub fn id(&self) -> u8 {
        match self {
            Message::Hello => ID_HELLO,
            Message::Publish { .. } => ID_PUBLISH,
            Message::Ping => ID_PING,
            Message::Pong => ID_PONG,
            Message::Invalid => ID_INVALID,
        }
    }

    /// The message name as in `zgossip_msg.xml`: "HELLO", "PUBLISH", ...
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello => "HELLO",
            Message::Publish { .. } => "PUBLISH",
            Message::Ping => "PING",
            Message::Pong => "PONG",
            Message::Invalid => "INVALID",
        }
    }

    /// Number of bytes [`Message::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::Publish { key, value, .. } => HEADER_LEN + 1 + key.len() + 4 + value.len() + 4,
            _ => HEADER_LEN,
        }
    }

    /// Checks that this message can be encoded into bytes that [`decode`]
    /// (and CZMQ) accept: key at most [`MAX_KEY_LEN`] bytes, value at most
    /// [`MAX_VALUE_LEN`] bytes, neither containing a NUL byte.
    pub fn validate(&self) -> Result<(), EncodeError> {
        if let Message::Publish { key, value, .. } = self {
            if key.len() > MAX_KEY_LEN {
                return Err(EncodeError::KeyTooLong(key.len()));
            }
            if value.len() > MAX_VALUE_LEN {
                return Err(EncodeError::ValueTooLong(value.len()));
            }
            if key.as_bytes().contains(&0) {
                return Err(EncodeError::NulByte { field: "key" });
            }
            if value.as_bytes().contains(&0) {
                return Err(EncodeError::NulByte { field: "value" });
            }
        }
        Ok(())
    }

    /// Appends the encoded frame body to `out`, or returns an error (and
    /// appends nothing) when [`Message::validate`] fails.
    pub fn try_encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.validate()?;
        self.encode_unchecked(out);
        Ok(())
    }

    /// Appends the encoded frame body to `out`.
    ///
    /// Callers validate keys and values before building a message (the node
    /// rejects over-long keys and NUL bytes at the API); use
    /// [`Message::try_encode`] when that is not guaranteed.
    ///
    /// # Panics
    ///
    /// Panics if [`Message::validate`] fails: that is a caller bug, and
    /// panicking is better than silently putting bytes on the wire that no
    /// peer can decode. Bytes received from the network never reach this
    /// path unvalidated: everything [`decode`] returns encodes fine.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Err(e) = self.validate() {
            panic!("zgossip: cannot encode ZGP {}: {e}", self.name());
        }
        self.encode_unchecked(out);
    }

    fn encode_unchecked(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&SIGNATURE);
        out.push(self.id());
        out.push(VERSION);
        if let Message::Publish { key, value, ttl } = self {
            // Lengths were validated by the callers of this function.
            out.push(key.len() as u8);
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
        }
    }
}

/// Why a frame is not a valid ZGP v1 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than the four header bytes.
    TooShort(usize),
    /// The first two bytes are not `AA A0`; holds them big-endian.
    BadSignature(u16),
    /// Message id outside 1..=5.
    UnknownId(u8),
    /// Version byte other than 1.
    BadVersion(u8),
    /// The frame ends inside the named field.
    Truncated {
        /// Field being read: "key", "value" or "ttl".
        field: &'static str,
    },
    /// Bytes left over after a complete message.
    TrailingBytes(usize),
    /// The named field is not valid UTF-8.
    NotUtf8 {
        /// "key" or "value".
        field: &'static str,
    },
    /// The named field contains a NUL byte.
    NulByte {
        /// "key" or "value".
        field: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort(n) => write!(f, "ZGP message too short ({n} bytes)"),
            DecodeError::BadSignature(s) => write!(f, "bad ZGP signature 0x{s:04x}"),
            DecodeError::UnknownId(id) => write!(f, "unknown ZGP message id {id}"),
            DecodeError::BadVersion(v) => write!(f, "unsupported ZGP version {v}"),
            DecodeError::Truncated { field } => write!(f, "ZGP message truncated in {field}"),
            DecodeError::TrailingBytes(n) => {
                write!(f, "{n} trailing bytes after ZGP message")
            }
            DecodeError::NotUtf8 { field } => write!(f, "ZGP {field} is not valid UTF-8"),
            DecodeError::NulByte { field } => write!(f, "ZGP {field} contains a NUL byte"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a [`Message`] cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// Key longer than [`MAX_KEY_LEN`] bytes (holds its length).
    KeyTooLong(usize),
    /// Value longer than [`MAX_VALUE_LEN`] bytes (holds its length).
    ValueTooLong(usize),
    /// The named field ("key" or "value") contains a NUL byte.
    NulByte {
        /// "key" or "value".
        field: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::KeyTooLong(n) => {
                write!(f, "key of {n} bytes is longer than {MAX_KEY_LEN}")
            }
            EncodeError::ValueTooLong(n) => {
                write!(f, "value of {n} bytes is longer than {MAX_VALUE_LEN}")
            }
            EncodeError::NulByte { field } => write!(f, "{field} contains a NUL byte"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Bounds-checked reader over a frame.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let b = self.take(1, field)?;
        Ok(b.first().copied().unwrap_or(0))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, field)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    fn text(&mut self, n: usize, field: &'static str) -> Result<&'a str, DecodeError> {
        let b = self.take(n, field)?;
        super::text::check(b).map_err(|e| match e {
            super::text::TextError::Nul => DecodeError::NulByte { field },
            super::text::TextError::NotUtf8 => DecodeError::NotUtf8 { field },
        })
    }
}

/// Decodes one frame body into a message, borrowing key and value from it.
pub fn decode(frame: &[u8]) -> Result<Message<'_>, DecodeError> {
    let (sig, id, version, rest) = match frame {
        [s0, s1, id, version, rest @ ..] => ([*s0, *s1], *id, *version, rest),
        _ => return Err(DecodeError::TooShort(frame.len())),
    };
    if sig != SIGNATURE {
        return Err(DecodeError::BadSignature(u16::from_be_bytes(sig)));
    }
    if !(ID_HELLO..=ID_INVALID).contains(&id) {
        return Err(DecodeError::UnknownId(id));
    }
    if version != VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    let mut r = Reader { buf: rest };
    let msg = match id {
        ID_HELLO => Message::Hello,
        ID_PUBLISH => {
            let key_len = usize::from(r.u8("key")?);
            let key = r.text(key_len, "key")?;
            let value_len = r.u32("value")?;
            // Never trust the length for anything but a bounds check.
            let value_len = usize::try_from(value_len)
                .map_err(|_| DecodeError::Truncated { field: "value" })?;
            let value = r.text(value_len, "value")?;
            let ttl = r.u32("ttl")?;
            Message::Publish { key, value, ttl }
        }
        ID_PING => Message::Ping,
        ID_PONG => Message::Pong,
        _ => Message::Invalid,
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

    fn enc(m: &Message<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        m.encode(&mut v);
        assert_eq!(v.len(), m.encoded_len());
        v
    }

    #[test]
    fn simple_messages() {
        for (m, id, name) in [
            (Message::Hello, 1, "HELLO"),
            (Message::Ping, 3, "PING"),
            (Message::Pong, 4, "PONG"),
            (Message::Invalid, 5, "INVALID"),
        ] {
            assert_eq!(enc(&m), vec![0xAA, 0xA0, id, 1]);
            assert_eq!(m.id(), id);
            assert_eq!(m.name(), name);
            assert_eq!(decode(&enc(&m)), Ok(m));
        }
    }

    #[test]
    fn publish_matches_czmq_bytes() {
        let m = Message::Publish {
            key: "server-key",
            value: "server-value",
            ttl: 0,
        };
        let mut want = vec![0xAA, 0xA0, 2, 1, 10];
        want.extend_from_slice(b"server-key");
        want.extend_from_slice(&[0, 0, 0, 12]);
        want.extend_from_slice(b"server-value");
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(enc(&m), want);
        assert_eq!(m.name(), "PUBLISH");
        assert_eq!(decode(&want), Ok(m));
    }

    #[test]
    fn every_prefix_is_rejected_without_panic() {
        let full = enc(&Message::Publish {
            key: "k€y",
            value: "välue",
            ttl: 0x0102_0304,
        });
        for n in 0..full.len() {
            assert!(decode(&full[..n]).is_err(), "prefix {n} accepted");
        }
        assert!(decode(&full).is_ok());
    }

    #[test]
    fn errors() {
        assert_eq!(decode(&[]), Err(DecodeError::TooShort(0)));
        assert_eq!(decode(&[0xAA, 0xA0, 1]), Err(DecodeError::TooShort(3)));
        let e = decode(&[0x12, 0x34, 1, 1]).unwrap_err();
        assert_eq!(e, DecodeError::BadSignature(0x1234));
        assert_eq!(e.to_string(), "bad ZGP signature 0x1234");
        assert_eq!(decode(&[0xAA, 0xA0, 1, 2]), Err(DecodeError::BadVersion(2)));
        assert_eq!(decode(&[0xAA, 0xA0, 0, 1]), Err(DecodeError::UnknownId(0)));
        assert_eq!(decode(&[0xAA, 0xA0, 6, 1]), Err(DecodeError::UnknownId(6)));
        assert_eq!(
            decode(&[0xAA, 0xA0, 1, 1, 0]),
            Err(DecodeError::TrailingBytes(1))
        );
        // PUBLISH with trailing byte after ttl.
        let mut p = enc(&Message::Publish {
            key: "a",
            value: "b",
            ttl: 1,
        });
        p.push(9);
        assert_eq!(decode(&p), Err(DecodeError::TrailingBytes(1)));
        // Value length far beyond the frame.
        let huge = [0xAA, 0xA0, 2, 1, 1, b'k', 0xFF, 0xFF, 0xFF, 0xFF, b'v'];
        assert_eq!(
            decode(&huge),
            Err(DecodeError::Truncated { field: "value" })
        );
        // NUL and bad UTF-8.
        let nul = [0xAA, 0xA0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode(&nul), Err(DecodeError::NulByte { field: "key" }));
        let bad = [0xAA, 0xA0, 2, 1, 0, 0, 0, 0, 1, 0xFF, 0, 0, 0, 0];
        assert_eq!(decode(&bad), Err(DecodeError::NotUtf8 { field: "value" }));
    }

    #[test]
    fn encode_refuses_bad_keys() {
        let long = "k".repeat(256);
        let m = Message::Publish {
            key: &long,
            value: "",
            ttl: 0,
        };
        let mut out = Vec::new();
        assert_eq!(m.try_encode(&mut out), Err(EncodeError::KeyTooLong(256)));
        assert!(out.is_empty());
        let nul = Message::Publish {
            key: "a",
            value: "b\0",
            ttl: 0,
        };
        assert_eq!(
            nul.try_encode(&mut out),
            Err(EncodeError::NulByte { field: "value" })
        );
        let ok = "k".repeat(255);
        let m = Message::Publish {
            key: &ok,
            value: "",
            ttl: 0,
        };
        assert!(m.try_encode(&mut out).is_ok());
        assert_eq!(decode(&out), Ok(m));
    }

    #[test]
    #[should_panic(expected = "cannot encode")]
    fn encode_panics_on_caller_bug() {
        let long = "k".repeat(256);
        Message::Publish {
            key: &long,
            value: "",
            ttl: 0,
        }
        .encode(&mut Vec::new());
    }

    proptest! {
        #[test]
        fn publish_round_trip(key in "[^\u{0}]{0,60}", value in "[^\u{0}]{0,300}", ttl in any::<u32>()) {
            prop_assume!(key.len() <= MAX_KEY_LEN);
            let m = Message::Publish { key: &key, value: &value, ttl };
            let bytes = enc(&m);
            prop_assert_eq!(decode(&bytes), Ok(m));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(m) = decode(&bytes) {
                prop_assert_eq!(enc(&m), bytes);
            }
        }

        #[test]
        fn decode_mutated_publish(key in "[a-z]{0,20}", pos in 0usize..64, byte in any::<u8>()) {
            let m = Message::Publish { key: &key, value: "v", ttl: 7 };
            let mut bytes = enc(&m);
            if let Some(b) = bytes.get_mut(pos) { *b = byte; }
            if let Ok(d) = decode(&bytes) {
                prop_assert_eq!(enc(&d), bytes);
            }
        }
    }
}
