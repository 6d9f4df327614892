//! The local agent's wire format, without I/O: what `zgossip node` and the
//! `zgossip get|put|...` commands say to each other over the control
//! socket (docs/agent.md, "Protocol").
//!
//! Each side first sends the 4-byte greeting `ZGA1`. Then every message is
//! a 4-byte big-endian body length and the body: its frames, each a 4-byte
//! big-endian length and that many bytes of UTF-8. A message holds at
//! least one frame; the first is the command word or the reply word, the
//! same ones the node's command API uses (`GET key` → `VALUE key value`).
//!
//! The decoder is bounded: a message longer than its limit is refused on
//! its header, before any of its body is buffered, and it never holds more
//! than one message and one header. Bad input is an error value, never a
//! panic.

use std::fmt;

/// Sent first by both sides: "zgossip agent, protocol 1".
pub const GREETING: [u8; 4] = *b"ZGA1";

/// Longest request the agent accepts: a tuple (a 255-byte key and a 1 MiB
/// value, the node's size rule) with room for the command word and a ttl.
pub const MAX_REQUEST: usize = 1024 * 1024 + 4096;

/// Longest reply a client accepts (`KEYS` or `MEMBERS` of a large network).
pub const MAX_REPLY: usize = 256 * 1024 * 1024;

/// Why the bytes read are not a message: the connection is then closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The first four bytes were not `ZGA1`: not a zgossip agent's peer.
    BadGreeting([u8; 4]),
    /// A message header announced more bytes than the limit.
    TooLarge { len: usize, max: usize },
    /// A message whose frames do not fill its body exactly, or of no frame.
    Malformed(&'static str),
    /// A frame that is not UTF-8.
    NotUtf8,
    /// The stream ended inside the greeting or a message.
    Truncated { have: usize },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::BadGreeting(g) => write!(
                f,
                "not a zgossip agent connection (greeting {:?}, expected \"ZGA1\")",
                String::from_utf8_lossy(g)
            ),
            CodecError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max} bytes")
            }
            CodecError::Malformed(why) => write!(f, "malformed message: {why}"),
            CodecError::NotUtf8 => write!(f, "malformed message: a frame is not UTF-8"),
            CodecError::Truncated { have } => {
                write!(f, "connection closed inside a message ({have} bytes of it)")
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// One message, its frames as the greeting-less wire bytes.
pub fn encode<S: AsRef<str>>(frames: &[S]) -> Vec<u8> {
    let body: usize = frames.iter().map(|f| 4 + f.as_ref().len()).sum();
    let mut out = Vec::with_capacity(4 + body);
    out.extend_from_slice(&len_u32(body).to_be_bytes());
    for f in frames {
        let f = f.as_ref().as_bytes();
        out.extend_from_slice(&len_u32(f.len()).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// A length as the wire's u32. Callers never encode 4 GiB (the limits are
/// far below); saturating keeps a mistake from wrapping into a short frame.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads the greeting, then messages, from the bytes fed to it.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    max: usize,
    greeted: bool,
    failed: Option<CodecError>,
}

impl Decoder {
    /// A decoder refusing messages longer than `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            max,
            greeted: false,
            failed: None,
        }
    }

    /// Adds bytes read from the connection. The caller takes every message
    /// out (`next`) before feeding more; the buffer never grows past one
    /// message and a header beyond what was fed in one call.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole message, `Ok(None)` until one has arrived. After an
    /// error every call returns it again: the connection is done.
    pub fn next(&mut self) -> Result<Option<Vec<String>>, CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.decode();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Vec<String>>, CodecError> {
        if !self.greeted {
            let Some(g) = self.buf.get(..4) else {
                return Ok(None);
            };
            let g = [g[0], g[1], g[2], g[3]];
            if g != GREETING {
                return Err(CodecError::BadGreeting(g));
            }
            self.buf.drain(..4);
            self.greeted = true;
        }
        let Some(len) = read_u32(&self.buf, 0) else {
            return Ok(None);
        };
        if len > self.max {
            return Err(CodecError::TooLarge { len, max: self.max });
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let frames = parse_body(&self.buf[4..4 + len])?;
        self.buf.drain(..4 + len);
        Ok(Some(frames))
    }

    /// The stream ended: an error if it ended inside the greeting or a
    /// message.
    pub fn finish(&self) -> Result<(), CodecError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None if self.buf.is_empty() => Ok(()),
            None => Err(CodecError::Truncated {
                have: self.buf.len(),
            }),
        }
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at.checked_add(4)?)?;
    usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()
}

fn parse_body(mut body: &[u8]) -> Result<Vec<String>, CodecError> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        let len = read_u32(body, 0).ok_or(CodecError::Malformed(
            "a frame header is cut short by the end of its message",
        ))?;
        let frame = body
            .get(4..4usize.saturating_add(len))
            .ok_or(CodecError::Malformed(
                "a frame is longer than the rest of its message",
            ))?;
        let text = std::str::from_utf8(frame).map_err(|_| CodecError::NotUtf8)?;
        frames.push(text.to_string());
        body = &body[4 + len..];
    }
    if frames.is_empty() {
        return Err(CodecError::Malformed("a message of no frame"));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(messages: &[&[&str]]) -> Vec<u8> {
        let mut out = GREETING.to_vec();
        for m in messages {
            out.extend(encode(m));
        }
        out
    }

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Vec<String>>, CodecError> {
        let mut d = Decoder::new(max);
        d.feed(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.next()? {
            out.push(m);
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn messages_round_trip() {
        let msgs: &[&[&str]] = &[
            &["GET", "k"],
            &["VALUE", "k", ""],
            &["PUBLISH", "ключ", "a\0b\nc", "1000"],
        ];
        let got = decode_all(&stream(msgs), MAX_REQUEST).unwrap();
        assert_eq!(got.len(), 3);
        for (g, m) in got.iter().zip(msgs) {
            assert_eq!(g, m);
        }
    }

    #[test]
    fn byte_by_byte_feeding_gives_the_same_messages() {
        let bytes = stream(&[&["KEYS", "a/"], &["STATS"]]);
        let mut d = Decoder::new(MAX_REQUEST);
        let mut got = Vec::new();
        for b in &bytes {
            d.feed(std::slice::from_ref(b));
            while let Some(m) = d.next().unwrap() {
                got.push(m);
            }
        }
        d.finish().unwrap();
        assert_eq!(got, vec![vec!["KEYS", "a/"], vec!["STATS"]]);
    }

    #[test]
    fn every_truncation_waits_then_reports_truncated() {
        let bytes = stream(&[&["PUBLISH", "k", "v"]]);
        for cut in 1..bytes.len() {
            let mut d = Decoder::new(MAX_REQUEST);
            d.feed(&bytes[..cut]);
            assert_eq!(d.next(), Ok(None), "cut at {cut}");
            // The greeting whole, then nothing: a clean end.
            let expected = match cut {
                4 => Ok(()),
                0..4 => Err(CodecError::Truncated { have: cut }),
                _ => Err(CodecError::Truncated { have: cut - 4 }),
            };
            assert_eq!(d.finish(), expected, "cut at {cut}");
        }
    }

    #[test]
    fn oversize_refused_on_its_header() {
        let mut bytes = GREETING.to_vec();
        bytes.extend_from_slice(&(u32::MAX).to_be_bytes());
        let mut d = Decoder::new(64);
        d.feed(&bytes);
        assert_eq!(
            d.next(),
            Err(CodecError::TooLarge {
                len: u32::MAX as usize,
                max: 64
            })
        );
        // Done for good; more input is not buffered.
        d.feed(&[0; 1000]);
        assert!(d.buf.is_empty());
        assert!(d.next().is_err());
        assert!(d.finish().is_err());
    }

    #[test]
    fn a_message_at_the_limit_passes() {
        let value = "x".repeat(100);
        let msg = encode(&["V", value.as_str()]);
        let max = msg.len() - 4;
        let mut bytes = GREETING.to_vec();
        bytes.extend(msg);
        assert_eq!(decode_all(&bytes, max).unwrap().len(), 1);
        assert!(matches!(
            decode_all(&bytes, max - 1),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            decode_all(b"GET /metrics HTTP/1.1\r\n\r\n", MAX_REQUEST),
            Err(CodecError::BadGreeting(_))
        ));
        // A frame longer than its message.
        let mut bytes = GREETING.to_vec();
        bytes.extend_from_slice(&6u32.to_be_bytes());
        bytes.extend_from_slice(&9u32.to_be_bytes());
        bytes.extend_from_slice(b"ab");
        assert!(matches!(
            decode_all(&bytes, MAX_REQUEST),
            Err(CodecError::Malformed(_))
        ));
        // A frame header cut by its message's end.
        let mut bytes = GREETING.to_vec();
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        assert!(matches!(
            decode_all(&bytes, MAX_REQUEST),
            Err(CodecError::Malformed(_))
        ));
        // No frame.
        let mut bytes = GREETING.to_vec();
        bytes.extend_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            decode_all(&bytes, MAX_REQUEST),
            Err(CodecError::Malformed(_))
        ));
        // Not UTF-8.
        let mut bytes = GREETING.to_vec();
        bytes.extend_from_slice(&6u32.to_be_bytes());
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(decode_all(&bytes, MAX_REQUEST), Err(CodecError::NotUtf8));
    }

    #[test]
    fn pseudo_random_input_never_panics() {
        // A small deterministic generator: bounded runs, no dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let len = (x % 64) as usize;
            let mut bytes = GREETING.to_vec();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push((x & 0xff) as u8);
            }
            let mut d = Decoder::new(32);
            d.feed(&bytes);
            for _ in 0..len + 1 {
                match d.next() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            let _ = d.finish();
        }
    }

    #[test]
    fn errors_read_well() {
        let e = CodecError::TooLarge { len: 10, max: 5 };
        assert_eq!(
            e.to_string(),
            "message of 10 bytes exceeds the limit of 5 bytes"
        );
        assert!(CodecError::BadGreeting(*b"GET ")
            .to_string()
            .contains("not a zgossip agent"));
    }
}
