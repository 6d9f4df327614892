//! A received message borrowed from the connection's buffers
//! ([`MessageRef`]) and the iterator over its frame bodies ([`Parts`]).

use super::frame::parse_header;

/// One received message: one or more frames, borrowed from the
/// connection's input buffer (valid until the next `feed` or `poll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef<'a> {
    pub(super) first: &'a [u8],
    pub(super) raw: &'a [u8],
    pub(super) count: usize,
}

impl<'a> MessageRef<'a> {
    /// Body of the first frame (for a single-frame message, the message).
    pub fn first(&self) -> &'a [u8] {
        self.first
    }

    /// Number of frames, at least 1.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a message has at least one frame.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the message has more than one frame.
    pub fn is_multipart(&self) -> bool {
        self.count > 1
    }

    /// The frame bodies, in order.
    pub fn parts(&self) -> Parts<'a> {
        Parts { rest: self.raw }
    }

    /// Copies the frame bodies out.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.parts().map(<[u8]>::to_vec).collect()
    }
}

/// Iterator over the frame bodies of a [`MessageRef`].
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // The frames were validated when the message was parsed; any
        // inconsistency here just ends the iteration.
        let hdr = parse_header(self.rest, usize::MAX).ok()??;
        let end = hdr.header_len.checked_add(hdr.body_len)?;
        let body = self.rest.get(hdr.header_len..end)?;
        self.rest = self.rest.get(end..).unwrap_or(&[]);
        Some(body)
    }
}
