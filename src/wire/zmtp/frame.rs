//! Frame encoding (RFC 23): frame headers, one-frame messages as the node
//! frames its output, and command frames (`ERROR` included).

use super::error::Error;

pub(super) const FLAG_MORE: u8 = 0x01;
pub(super) const FLAG_LONG: u8 = 0x02;
pub(super) const FLAG_COMMAND: u8 = 0x04;
pub(super) const FLAGS_KNOWN: u8 = FLAG_MORE | FLAG_LONG | FLAG_COMMAND;
/// Longest frame header: flags + 8-byte size.
pub const MAX_HEADER_LEN: usize = 9;

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) flags: u8,
    pub(super) header_len: usize,
    pub(super) body_len: usize,
}

/// Parses a frame header at the start of `buf`. `Ok(None)` means more
/// bytes are needed. The declared size is checked against `limit` before
/// anything else is done with it.
pub(super) fn parse_header(buf: &[u8], limit: usize) -> Result<Option<Header>, Error> {
    let Some(&flags) = buf.first() else {
        return Ok(None);
    };
    if flags & !FLAGS_KNOWN != 0 || (flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0) {
        return Err(Error::BadFlags(flags));
    }
    let (size, header_len) = if flags & FLAG_LONG != 0 {
        let Some(bytes) = buf.get(1..MAX_HEADER_LEN) else {
            return Ok(None);
        };
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        (u64::from_be_bytes(a), MAX_HEADER_LEN)
    } else {
        let Some(&b) = buf.get(1) else {
            return Ok(None);
        };
        (u64::from(b), 2)
    };
    let body_len = match usize::try_from(size) {
        Ok(n) if n <= limit => n,
        _ => return Err(Error::FrameTooLarge { size, limit }),
    };
    Ok(Some(Header {
        flags,
        header_len,
        body_len,
    }))
}

/// Appends one frame (short form up to 255 bytes, long form otherwise).
pub(crate) fn push_frame(out: &mut Vec<u8>, flags: u8, body_len: usize) {
    if body_len <= 255 {
        out.push(flags);
        out.push(body_len as u8);
    } else {
        out.push(flags | FLAG_LONG);
        out.extend_from_slice(&(body_len as u64).to_be_bytes());
    }
}

/// Appends the header of a one-frame message of `body_len` bytes, as it
/// goes on the wire of a NULL connection. Output framed this way (header,
/// then body, message after message) can be handed whole to
/// [`Connection::queue_framed`].
///
/// [`Connection::queue_framed`]: super::Connection::queue_framed
pub fn push_single_frame_header(out: &mut Vec<u8>, body_len: usize) {
    push_frame(out, 0, body_len);
}

/// True if `frames` is a run of whole one-frame messages as
/// [`push_single_frame_header`] frames them (empty included).
pub fn is_framed_run(frames: &[u8]) -> bool {
    let mut rest = frames;
    while !rest.is_empty() {
        match split_single_frame(rest) {
            Some((_, len)) => rest = &rest[len..],
            None => return false,
        }
    }
    true
}

/// The first one-frame message of `buf` (framed by
/// [`push_single_frame_header`]): its body and its length with the header.
/// `None` if `buf` is empty, truncated, or does not start with such a frame.
pub fn split_single_frame(buf: &[u8]) -> Option<(&[u8], usize)> {
    let h = parse_header(buf, usize::MAX).ok()??;
    if h.flags & !FLAG_LONG != 0 {
        return None;
    }
    let end = h.header_len.checked_add(h.body_len)?;
    Some((buf.get(h.header_len..end)?, end))
}

/// Appends a command frame: name (1 to 255 bytes) followed by `data` pieces.
pub(crate) fn push_command(out: &mut Vec<u8>, name: &[u8], data: &[&[u8]]) {
    debug_assert!(!name.is_empty() && name.len() <= 255);
    let body_len = 1 + name.len() + data.iter().map(|d| d.len()).sum::<usize>();
    out.reserve(MAX_HEADER_LEN + body_len);
    push_frame(out, FLAG_COMMAND, body_len);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    for d in data {
        out.extend_from_slice(d);
    }
}

/// Appends an ERROR command; the reason is cut to 255 bytes.
pub(super) fn push_error(out: &mut Vec<u8>, reason: &str) {
    let bytes = reason.as_bytes();
    let reason = bytes.get(..255).unwrap_or(bytes);
    push_command(out, b"ERROR", &[&[reason.len() as u8], reason]);
}

/// Splits a command body into (name, data).
pub(super) fn split_command(body: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let (&len, rest) = body
        .split_first()
        .ok_or(Error::MalformedCommand("empty command frame"))?;
    let len = usize::from(len);
    if len == 0 {
        return Err(Error::MalformedCommand("empty command name"));
    }
    if rest.len() < len {
        return Err(Error::MalformedCommand("command name longer than frame"));
    }
    Ok(rest.split_at(len))
}

/// Reason of an ERROR command body; lenient about a bad length.
pub(super) fn error_reason(data: &[u8]) -> String {
    let reason = match data.split_first() {
        Some((&len, rest)) => rest.get(..usize::from(len)).unwrap_or(rest),
        None => &[],
    };
    String::from_utf8_lossy(reason).into_owned()
}
