//! The state machine of one connection ([`Connection`]): greeting,
//! security handshake, then messages and commands, sans-IO.
//!
//! Fast path: the short-message pass. On a ready NULL connection a whole
//! one-frame message of at most 255 bytes skips the general state machine
//! ([`Connection::poll`]'s first step), and whole ones at the front of
//! freshly read bytes are handed out without being copied in at all
//! ([`Connection::take_short_messages_from`], used by the reactor's
//! `take_in`). Measured gain (issue 23's review, one node per process,
//! callgrind): 16 to 19 % fewer event-loop instructions per tuple in a star
//! (hub 2,085 -> 1,765, subscriber 1,888 -> 1,617), 4 % per hop of a chain
//! (8,806 -> 8,457); see docs/benchmarks.md, "Fast-path review".

use super::config::ConnectionConfig;
use super::error::Error;
use super::frame::{
    error_reason, is_framed_run, parse_header, push_error, push_frame, split_command,
    split_single_frame, FLAG_COMMAND, FLAG_MORE, MAX_HEADER_LEN,
};
use super::mechanism::{Handshake, Mechanism};
use super::message::MessageRef;
use super::metadata::{supports_ping, PeerInfo};
use crate::wire::curve;

/// Length of a ZMTP 3.x greeting.
pub const GREETING_LEN: usize = 64;
/// Longest PING context that RFC 37 allows (and that we echo).
pub const MAX_PING_CONTEXT: usize = 16;

/// The padding libzmq sends in the greeting signature (octets 1..=8).
const SIGNATURE_PADDING: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
const OUR_MAJOR: u8 = 3;
const OUR_MINOR: u8 = 1;
const MECHANISM_LEN: usize = 20;

/// Something the connection has to tell the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent<'a> {
    /// The handshake completed; messages may now be sent and received.
    Ready(PeerInfo),
    /// A whole message arrived.
    Message(MessageRef<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the peer's greeting.
    Greeting,
    /// Greeting exchanged, security handshake running.
    Handshake,
    /// Handshake complete: traffic.
    Ready,
    /// Failed or closed; nothing more is read or accepted.
    Closed,
}

/// Result of one parsing step, as offsets into the input buffer (so that
/// the borrow of the buffer is taken only once, at the end of `poll`).
enum Step {
    NeedMore,
    Continue,
    Ready(PeerInfo),
    Message {
        first: (usize, usize),
        raw: (usize, usize),
        count: usize,
        /// The ranges are in the plaintext buffer (CURVE), not the input.
        plain: bool,
    },
}

/// One ZMTP connection, sans-IO. See the module documentation.
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    mechanism: Mechanism,
    state: State,
    /// Received bytes; `inbuf[start..]` is not yet consumed.
    inbuf: Vec<u8>,
    start: usize,
    /// Progress through a multipart message that is not complete yet:
    /// bytes (from `start`) of whole frames already checked, and their count.
    scan_len: usize,
    scan_count: usize,
    /// Bytes to send; `out[out_pos..]` is not yet written.
    out: Vec<u8>,
    out_pos: usize,
    peer_major: u8,
    peer_minor: u8,
    /// The error that killed the connection, returned again by `poll`.
    error: Option<Error>,
    /// CURVE: opened frames of the message being received, framed as on a
    /// NULL connection (header + body), and their count.
    plain: Vec<u8>,
    plain_count: usize,
    /// Body range of the first frame in `plain`.
    plain_first: (usize, usize),
    /// `plain` holds a message already returned by `poll`.
    plain_delivered: bool,
}

impl Connection {
    /// Creates a connection and queues our greeting.
    pub fn new(config: ConnectionConfig) -> Self {
        let mechanism = Mechanism::new(&config.mechanism);
        let mut out = Vec::with_capacity(256);
        out.push(0xFF);
        out.extend_from_slice(&SIGNATURE_PADDING);
        out.push(0x7F);
        out.push(OUR_MAJOR);
        out.push(OUR_MINOR);
        let mut mech = [0u8; MECHANISM_LEN];
        for (slot, b) in mech.iter_mut().zip(mechanism.name().bytes()) {
            *slot = b;
        }
        out.extend_from_slice(&mech);
        out.push(u8::from(mechanism.as_server(&config)));
        out.extend_from_slice(&[0u8; 31]);
        debug_assert_eq!(out.len(), GREETING_LEN);
        Connection {
            config,
            mechanism,
            state: State::Greeting,
            inbuf: Vec::new(),
            start: 0,
            scan_len: 0,
            scan_count: 0,
            out,
            out_pos: 0,
            peer_major: 0,
            peer_minor: 0,
            error: None,
            plain: Vec::new(),
            plain_count: 0,
            plain_first: (0, 0),
            plain_delivered: false,
        }
    }

    /// The configuration this connection was created with.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Appends received bytes. Call [`poll`](Self::poll) until it returns
    /// `Ok(None)` before feeding more, so the buffer stays bounded by one
    /// frame plus what was fed. Bytes fed after the connection closed are
    /// dropped.
    pub fn feed(&mut self, data: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        let unread = self.inbuf.len() - self.start;
        if self.start > 0 && self.start >= unread {
            // Consumed part at least as big as what is left: moving the
            // rest costs no more than what was consumed (amortized O(1)).
            self.inbuf.drain(..self.start);
            self.start = 0;
        }
        self.inbuf.extend_from_slice(data);
    }

    /// Number of received bytes not yet consumed by `poll`.
    pub fn buffered_input(&self) -> usize {
        self.inbuf.len() - self.start
    }

    /// Processes buffered input and returns the next event, `Ok(None)` when
    /// more input is needed (or the connection was closed with
    /// [`fail`](Self::fail)). Handshake commands and PING are handled
    /// internally (their replies go to the output buffer).
    ///
    /// After an `Err` the connection is closed: later calls return the same
    /// error. Output queued before the error (and an `ERROR` command for
    /// handshake failures) is still available to flush.
    pub fn poll(&mut self) -> Result<Option<ConnectionEvent<'_>>, Error> {
        if let Some((at, len)) = self.take_short_message() {
            let raw = &self.inbuf[at..at + 2 + len];
            return Ok(Some(ConnectionEvent::Message(MessageRef {
                first: &raw[2..],
                raw,
                count: 1,
            })));
        }
        self.poll_general()
    }

    /// What [`poll`](Self::poll) does with anything its short-message path
    /// does not take: the general state machine, which decides every
    /// message the same way (the tests check that it does).
    fn poll_general(&mut self) -> Result<Option<ConnectionEvent<'_>>, Error> {
        loop {
            if self.state == State::Closed {
                return match &self.error {
                    Some(e) => Err(e.clone()),
                    None => Ok(None),
                };
            }
            match self.step() {
                Ok(Step::Continue) => continue,
                Ok(Step::NeedMore) => return Ok(None),
                Ok(Step::Ready(info)) => return Ok(Some(ConnectionEvent::Ready(info))),
                Ok(Step::Message {
                    first,
                    raw,
                    count,
                    plain,
                }) => {
                    let buf = if plain { &self.plain } else { &self.inbuf };
                    let first = buf.get(first.0..first.1).unwrap_or(&[]);
                    let raw = buf.get(raw.0..raw.1).unwrap_or(&[]);
                    return Ok(Some(ConnectionEvent::Message(MessageRef {
                        first,
                        raw,
                        count,
                    })));
                }
                Err(e) => {
                    if self.state != State::Greeting && !matches!(e, Error::PeerError(_)) {
                        push_error(&mut self.out, &e.to_string());
                    }
                    self.close(Some(e.clone()));
                    return Err(e);
                }
            }
        }
    }

    /// The common case, without the general state machine: on a NULL
    /// connection past the handshake, with no multipart message half read,
    /// a whole one-frame message of at most 255 bytes at the front of the
    /// input (flags 0: no MORE, short size, not a command). It is consumed;
    /// its offset and body length are returned. Anything else is left to
    /// the general path, which decides exactly as it would have.
    #[inline]
    fn take_short_message(&mut self) -> Option<(usize, usize)> {
        if !self.short_path_open() {
            return None;
        }
        let at = self.start;
        let len = self.short_message_len(&self.inbuf[at..])?;
        self.start = at + 2 + len;
        Some((at, len))
    }

    /// Whether short messages may skip the general state machine: a ready
    /// NULL connection with no multipart message half read.
    #[inline]
    fn short_path_open(&self) -> bool {
        self.state == State::Ready
            && self.scan_len == 0
            && matches!(self.mechanism, Mechanism::Null(_))
    }

    /// The body length of the whole short one-frame message at the front of
    /// `buf` (flags 0: no MORE, short size, not a command; within the frame
    /// limit), if there is one.
    #[inline]
    fn short_message_len(&self, buf: &[u8]) -> Option<usize> {
        let [flags, len, ..] = *buf else {
            return None;
        };
        let len = usize::from(len);
        (flags == 0 && len <= self.config.max_frame && buf.len() - 2 >= len).then_some(len)
    }

    /// Takes the whole one-frame messages of at most 255 bytes at the front
    /// of freshly read `data` (those [`poll`](Self::poll) would take by its
    /// short-message path) without copying them in, when nothing is
    /// buffered: each body goes to `f`, until `f` returns false or a
    /// message of another kind (or a partial one) comes. Returns the bytes
    /// taken; the rest of `data` must then go to [`feed`](Self::feed).
    pub fn take_short_messages_from(
        &mut self,
        data: &[u8],
        mut f: impl FnMut(&[u8]) -> bool,
    ) -> usize {
        let mut taken = 0;
        for (end, body) in self.short_messages(data) {
            taken = end;
            if !f(body) {
                break;
            }
        }
        taken
    }

    /// The whole short messages at the front of `data` when the short path
    /// is open and nothing is buffered: each body, with where it ends.
    fn short_messages<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = (usize, &'a [u8])> {
        let open = self.short_path_open() && self.start == self.inbuf.len();
        let mut at = 0;
        std::iter::from_fn(move || {
            let len = self.short_message_len(data.get(at..).filter(|_| open)?)?;
            let body = &data[at + 2..at + 2 + len];
            at += 2 + len;
            Some((at, body))
        })
    }

    fn close(&mut self, error: Option<Error>) {
        self.state = State::Closed;
        self.error = error;
        self.inbuf = Vec::new();
        self.start = 0;
        self.scan_len = 0;
        self.scan_count = 0;
        self.plain = Vec::new();
        self.plain_count = 0;
    }

    fn step(&mut self) -> Result<Step, Error> {
        match self.state {
            State::Greeting => self.step_greeting(),
            State::Ready if matches!(self.mechanism, Mechanism::Curve(_)) => self.step_boxes(),
            State::Handshake | State::Ready => self.step_frames(),
            State::Closed => Ok(Step::NeedMore),
        }
    }

    fn step_greeting(&mut self) -> Result<Step, Error> {
        let buf = self.inbuf.get(self.start..).unwrap_or(&[]);
        // Check what we can as early as we can: a ZMTP 1.0/2.0 peer or a
        // stranger is refused without waiting for 64 bytes.
        if buf.first().is_some_and(|&b| b != 0xFF) || buf.get(9).is_some_and(|&b| b != 0x7F) {
            return Err(Error::BadSignature);
        }
        if let Some(&major) = buf.get(10) {
            if major < 3 {
                return Err(Error::UnsupportedVersion { major });
            }
        }
        let Some(greeting) = buf.get(..GREETING_LEN) else {
            return Ok(Step::NeedMore);
        };
        let major = greeting.get(10).copied().unwrap_or(0);
        let minor = greeting.get(11).copied().unwrap_or(0);
        let mech = greeting.get(12..12 + MECHANISM_LEN).unwrap_or(&[]);
        let ours = self.mechanism.name();
        let mut expected = [0u8; MECHANISM_LEN];
        for (slot, b) in expected.iter_mut().zip(ours.bytes()) {
            *slot = b;
        }
        if mech != expected {
            let end = mech.iter().position(|&b| b == 0).unwrap_or(mech.len());
            let peer = String::from_utf8_lossy(mech.get(..end).unwrap_or(mech)).into_owned();
            return Err(Error::MechanismMismatch { ours, peer });
        }
        if let Some(reason) = &self.config.refuse {
            // Past the greeting, so `poll` sends the ERROR.
            let e = Error::Refused(reason.clone());
            self.state = State::Handshake;
            return Err(e);
        }
        // as-server and filler are not validated: libzmq 4.3 sends
        // as-server = 0 even as a CURVE server (seen on the wire), so a
        // role mix-up shows as an unexpected handshake command instead.
        self.peer_major = major;
        self.peer_minor = minor;
        self.start += GREETING_LEN;
        self.state = State::Handshake;
        self.mechanism.start(&self.config, &mut self.out)?;
        Ok(Step::Continue)
    }

    fn step_frames(&mut self) -> Result<Step, Error> {
        let limit = self.config.max_frame;
        let message_limit = limit.saturating_add(MAX_HEADER_LEN);
        let base = self.start;
        let mut off = self.scan_len;
        let mut count = self.scan_count;
        let mut first = (0, 0);
        loop {
            let buf = self.inbuf.get(base + off..).unwrap_or(&[]);
            let Some(hdr) = parse_header(buf, limit)? else {
                return Ok(self.need_more(off, count));
            };
            // Every check that the header allows is done before the body
            // is buffered.
            let is_command = hdr.flags & FLAG_COMMAND != 0;
            if is_command && count > 0 {
                return Err(Error::CommandInsideMessage);
            }
            if !is_command && self.state != State::Ready {
                return Err(Error::UnexpectedMessage);
            }
            let end = off + hdr.header_len + hdr.body_len;
            if !is_command && end > message_limit {
                return Err(Error::MessageTooLarge {
                    size: end,
                    limit: message_limit,
                });
            }
            if buf.len() - hdr.header_len < hdr.body_len {
                return Ok(self.need_more(off, count));
            }
            let body_start = base + off + hdr.header_len;
            let body_end = body_start + hdr.body_len;
            if is_command {
                self.start = body_end;
                return self.on_command(body_start, body_end);
            }
            if count == 0 {
                first = (body_start, body_end);
            }
            count += 1;
            off = end;
            if hdr.flags & FLAG_MORE == 0 {
                if count > 1 {
                    // The first frame was scanned by an earlier poll.
                    first = self.first_frame_range(base);
                }
                self.start = base + off;
                self.scan_len = 0;
                self.scan_count = 0;
                return Ok(Step::Message {
                    first,
                    raw: (base, base + off),
                    count,
                    plain: false,
                });
            }
        }
    }

    /// CURVE after the handshake: each frame is one MESSAGE box, opened
    /// into `plain` until a frame without MORE completes the message.
    fn step_boxes(&mut self) -> Result<Step, Error> {
        if self.plain_delivered {
            self.plain.clear();
            self.plain_count = 0;
            self.plain_delivered = false;
        }
        let limit = self.config.max_frame;
        let message_limit = limit.saturating_add(MAX_HEADER_LEN);
        let buf = self.inbuf.get(self.start..).unwrap_or(&[]);
        let Some(hdr) = parse_header(buf, limit.saturating_add(curve::MESSAGE_OVERHEAD))? else {
            return Ok(Step::NeedMore);
        };
        let end = hdr.header_len + hdr.body_len;
        let Some(body) = buf.get(hdr.header_len..end) else {
            return Ok(Step::NeedMore);
        };
        let Mechanism::Curve(c) = &mut self.mechanism else {
            return Err(Error::Crypto("not a CURVE connection"));
        };
        let (flags, data) = c.open_message(body)?;
        self.start += end;
        if flags & curve::INNER_COMMAND != 0 {
            if self.plain_count > 0 {
                return Err(Error::CommandInsideMessage);
            }
            return self.on_ready_command(&data);
        }
        let size = self.plain.len() + MAX_HEADER_LEN + data.len();
        if size > message_limit {
            return Err(Error::MessageTooLarge {
                size,
                limit: message_limit,
            });
        }
        let more = flags & curve::INNER_MORE != 0;
        push_frame(
            &mut self.plain,
            if more { FLAG_MORE } else { 0 },
            data.len(),
        );
        let body_start = self.plain.len();
        self.plain.extend_from_slice(&data);
        if self.plain_count == 0 {
            self.plain_first = (body_start, self.plain.len());
        }
        self.plain_count += 1;
        if more {
            return Ok(Step::Continue);
        }
        self.plain_delivered = true;
        Ok(Step::Message {
            first: self.plain_first,
            raw: (0, self.plain.len()),
            count: self.plain_count,
            plain: true,
        })
    }

    /// Remembers how far a multipart message was scanned.
    fn need_more(&mut self, off: usize, count: usize) -> Step {
        self.scan_len = off;
        self.scan_count = count;
        Step::NeedMore
    }

    /// Body range of the frame at `base` (already validated).
    fn first_frame_range(&self, base: usize) -> (usize, usize) {
        let buf = self.inbuf.get(base..).unwrap_or(&[]);
        match parse_header(buf, usize::MAX) {
            Ok(Some(h)) => (base + h.header_len, base + h.header_len + h.body_len),
            _ => (base, base),
        }
    }

    fn on_command(&mut self, body_start: usize, body_end: usize) -> Result<Step, Error> {
        let body = self.inbuf.get(body_start..body_end).unwrap_or(&[]);
        if self.state == State::Handshake {
            let (name, data) = split_command(body)?;
            let versions = (self.peer_major, self.peer_minor);
            return match self.mechanism.on_handshake_command(
                &self.config,
                name,
                data,
                versions,
                &mut self.out,
            )? {
                Handshake::Continue => Ok(Step::Continue),
                Handshake::Done(info) => {
                    self.state = State::Ready;
                    Ok(Step::Ready(info))
                }
            };
        }
        let body = body.to_vec();
        self.on_ready_command(&body)
    }

    /// A command after the handshake (from a command frame, or from a
    /// CURVE box flagged COMMAND).
    fn on_ready_command(&mut self, body: &[u8]) -> Result<Step, Error> {
        let (name, data) = split_command(body)?;
        match name {
            b"PING" => {
                let context = data
                    .get(2..)
                    .ok_or(Error::MalformedCommand("PING shorter than its TTL"))?;
                // RFC 37 caps the context at 16 octets; echo at most that.
                let context = context.get(..MAX_PING_CONTEXT).unwrap_or(context);
                self.mechanism
                    .encode_command(b"PONG", &[context], &mut self.out)?;
            }
            b"ERROR" => return Err(Error::PeerError(error_reason(data))),
            // PONG: any traffic is a sign of life, nothing else to do.
            // Anything else (SUBSCRIBE, CANCEL, JOIN, ... or commands of
            // later versions) is ignored, as libzmq does.
            _ => {}
        }
        Ok(Step::Continue)
    }

    /// Whether the handshake completed and the connection is open.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Under CURVE as server: the public key of ours the peer's HELLO was
    /// addressed to (one of several a server may hold during a key
    /// rotation), once a HELLO opened. `None` otherwise.
    pub fn curve_server_key(&self) -> Option<[u8; curve::KEY_LEN]> {
        self.mechanism.curve_server_key()
    }

    /// Whether the connection failed or was closed with [`fail`](Self::fail).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Queues one message (one frame per part, MORE on all but the last).
    pub fn queue_message(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        match self.state {
            State::Ready => {}
            State::Closed => return Err(Error::Closed),
            State::Greeting | State::Handshake => return Err(Error::NotReady),
        }
        let Some((last, init)) = parts.split_last() else {
            return Err(Error::EmptyMessage);
        };
        let total: usize = parts.iter().map(|p| p.len() + MAX_HEADER_LEN).sum();
        self.out.reserve(total);
        for part in init {
            self.mechanism
                .encode_message_frame(true, part, &mut self.out)?;
        }
        self.mechanism
            .encode_message_frame(false, last, &mut self.out)?;
        Ok(())
    }

    /// Queues messages already framed as one-frame messages (see
    /// [`push_single_frame_header`]), in order: on a NULL connection the
    /// bytes go out as they are (one copy for any number of messages), on
    /// a CURVE connection each is sealed. Nothing is queued if `frames` is
    /// not a run of whole such messages.
    ///
    /// [`push_single_frame_header`]: super::push_single_frame_header
    pub fn queue_framed(&mut self, frames: &[u8]) -> Result<(), Error> {
        match self.state {
            State::Ready => {}
            State::Closed => return Err(Error::Closed),
            State::Greeting | State::Handshake => return Err(Error::NotReady),
        }
        // Checked whole first, so that a bad run queues nothing.
        if !is_framed_run(frames) {
            return Err(Error::BadFraming);
        }
        match &mut self.mechanism {
            Mechanism::Null(_) => self.out.extend_from_slice(frames),
            Mechanism::Curve(c) => {
                let mut rest = frames;
                while let Some((body, len)) = split_single_frame(rest) {
                    c.seal_message(0, &[body], &mut self.out)?;
                    rest = &rest[len..];
                }
            }
        }
        Ok(())
    }

    /// True when a run of framed messages (see [`queue_framed`]) may go to
    /// the socket as it is, without passing through this codec: the
    /// connection is ready, NULL (framed messages are their own wire
    /// form) and nothing of its own output is pending (nothing would be
    /// overtaken). What the socket does not take goes to
    /// [`queue_unwritten`](Self::queue_unwritten).
    ///
    /// [`queue_framed`]: Self::queue_framed
    pub fn passes_framed_through(&self) -> bool {
        self.state == State::Ready
            && matches!(self.mechanism, Mechanism::Null(_))
            && self.out_pos == self.out.len()
    }

    /// Queues the rest of a run written in part straight to the socket
    /// (allowed by [`passes_framed_through`](Self::passes_framed_through)):
    /// wire bytes, possibly starting inside a message.
    pub fn queue_unwritten(&mut self, rest: &[u8]) {
        debug_assert!(self.passes_framed_through());
        self.out.extend_from_slice(rest);
    }

    /// Queues a PING (RFC 37) with a TTL in tenths of a second and a
    /// context of at most [`MAX_PING_CONTEXT`] bytes. Returns false and
    /// queues nothing when the handshake is not complete, the peer speaks
    /// ZMTP 3.0, or the context is too long.
    pub fn queue_ping(&mut self, ttl_ds: u16, context: &[u8]) -> bool {
        if self.state != State::Ready
            || !supports_ping(self.peer_major, self.peer_minor)
            || context.len() > MAX_PING_CONTEXT
        {
            return false;
        }
        self.mechanism
            .encode_command(b"PING", &[&ttl_ds.to_be_bytes(), context], &mut self.out)
            .is_ok()
    }

    /// Bytes waiting to be written to the peer.
    pub fn pending_output(&self) -> &[u8] {
        self.out.get(self.out_pos..).unwrap_or(&[])
    }

    /// Reports that the first `n` bytes of [`pending_output`](Self::pending_output)
    /// were written. Larger `n` are clamped.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = self.out_pos.saturating_add(n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= self.out.len() - self.out_pos {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Closes the connection on our side: queues an `ERROR` command with
    /// `reason` (cut to 255 bytes) when the peer's greeting has arrived, and
    /// stops reading. Pending output stays available to flush. Does nothing
    /// if already closed.
    pub fn fail(&mut self, reason: &str) {
        match self.state {
            State::Closed => return,
            State::Greeting => {}
            State::Handshake => push_error(&mut self.out, reason),
            State::Ready => {
                // After the handshake the ERROR goes through the mechanism
                // (boxed under CURVE).
                let bytes = reason.as_bytes();
                let reason = bytes.get(..255).unwrap_or(bytes);
                let _ = self.mechanism.encode_command(
                    b"ERROR",
                    &[&[reason.len() as u8], reason],
                    &mut self.out,
                );
            }
        }
        self.close(None);
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{MechanismConfig, DEFAULT_MAX_FRAME};
    use super::super::frame::{push_command, push_single_frame_header, FLAG_LONG};
    use super::super::metadata::metadata;
    use super::super::socket_type::SocketType;
    use super::super::test_support::{
        cfg, connected, drain, drain_with, peer_bytes, pump, pump_result, ready_dealer,
        take_output, Seen,
    };
    use super::*;
    use crate::wire::curve::{ClientCheck, Keypair};

    #[test]
    fn greeting_bytes() {
        let c = Connection::new(cfg(SocketType::Dealer));
        let g = c.pending_output();
        assert_eq!(g.len(), 64);
        assert_eq!(&g[..12], &[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 1]);
        assert_eq!(&g[12..16], b"NULL");
        assert!(g[16..].iter().all(|&b| b == 0));
        let mut s = cfg(SocketType::Dealer);
        s.as_server = true;
        assert_eq!(Connection::new(s).pending_output()[32], 1);
    }

    #[test]
    fn handshake_and_messages() {
        let (mut a, mut b) = connected(SocketType::Dealer, SocketType::Router);
        let long = vec![7u8; 300];
        a.queue_message(&[b"hello"]).unwrap();
        a.queue_message(&[b"", b"two", &long]).unwrap();
        let wire = a.pending_output().to_vec();
        // short frame, then MORE frames, then a long (8-byte size) frame.
        assert_eq!(&wire[..7], &[0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert_eq!(&wire[7..9], &[FLAG_MORE, 0]);
        assert_eq!(&wire[9..14], &[FLAG_MORE, 3, b't', b'w', b'o']);
        assert_eq!(wire[14], FLAG_LONG);
        assert_eq!(&wire[15..23], &300u64.to_be_bytes());
        let (_, sb) = pump(&mut a, &mut b);
        assert_eq!(
            sb,
            vec![
                Seen::Msg(vec![b"hello".to_vec()]),
                Seen::Msg(vec![vec![], b"two".to_vec(), long.clone()]),
            ]
        );
        assert_eq!(b.buffered_input(), 0);
    }

    proptest::proptest! {
        /// Messages of every kind (short, long, multipart) and PINGs, cut
        /// into random pieces: the short-message path gives exactly what
        /// the general one gives, events and replies alike.
        #[test]
        fn the_short_message_path_agrees_with_the_general_one(
            msgs in proptest::collection::vec(
                (0u8..4, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)),
                1..40,
            ),
            cuts in proptest::collection::vec(1usize..80, 1..50),
        ) {
            let (mut a1, mut b1) = connected(SocketType::Dealer, SocketType::Router);
            // b2 is polled through the general path alone.
            let (mut a2, mut b2) = connected(SocketType::Dealer, SocketType::Router);
            // b3 takes what it can straight from each piece read.
            let (_, mut b3) = connected(SocketType::Dealer, SocketType::Router);
            for (kind, body) in &msgs {
                for a in [&mut a1, &mut a2] {
                    match kind {
                        0 | 1 => a.queue_message(&[body]).unwrap(),
                        2 => a.queue_message(&[body, b"x"]).unwrap(),
                        _ => assert!(a.queue_ping(10, b"ctx")),
                    }
                }
            }
            let wire = take_output(&mut a1);
            proptest::prop_assert_eq!(&wire, &take_output(&mut a2));
            let (mut seen1, mut seen2, mut seen3) = (Vec::new(), Vec::new(), Vec::new());
            let (mut at, mut i) = (0, 0);
            while at < wire.len() {
                let n = cuts[i % cuts.len()].min(wire.len() - at);
                let piece = &wire[at..at + n];
                b1.feed(piece);
                b2.feed(piece);
                let taken = b3.take_short_messages_from(piece, |body| {
                    seen3.push(Seen::Msg(vec![body.to_vec()]));
                    true
                });
                b3.feed(&piece[taken..]);
                drain(&mut b1, &mut seen1).unwrap();
                drain_with(&mut b2, &mut seen2, Connection::poll_general).unwrap();
                drain(&mut b3, &mut seen3).unwrap();
                at += n;
                i += 1;
            }
            proptest::prop_assert_eq!(seen1.len(), msgs.iter().filter(|(k, _)| *k < 3).count());
            proptest::prop_assert_eq!(&seen1, &seen2);
            proptest::prop_assert_eq!(&seen3, &seen2);
            let replies = take_output(&mut b2);
            proptest::prop_assert_eq!(take_output(&mut b1), replies.clone());
            proptest::prop_assert_eq!(take_output(&mut b3), replies);
            proptest::prop_assert_eq!(b3.buffered_input(), 0);
            proptest::prop_assert_eq!(b1.buffered_input(), 0);
            proptest::prop_assert_eq!(b2.buffered_input(), 0);
        }
    }

    #[test]
    fn short_messages_taken_from_read_data_stop_where_asked_or_at_anything_else() {
        let (mut a, mut b) = connected(SocketType::Dealer, SocketType::Router);
        a.queue_message(&[b"one"]).unwrap();
        a.queue_message(&[b"two"]).unwrap();
        a.queue_message(&[b"three", b"more"]).unwrap();
        let wire = take_output(&mut a);
        // The callback says stop after the first: one message taken.
        let mut got = Vec::new();
        let taken = b.take_short_messages_from(&wire, |m| {
            got.push(m.to_vec());
            false
        });
        assert_eq!((taken, got), (5, vec![b"one".to_vec()]));
        // Then up to the multipart message, which is left to poll.
        let mut got = Vec::new();
        let more = b.take_short_messages_from(&wire[taken..], |m| {
            got.push(m.to_vec());
            true
        });
        assert_eq!((more, got), (5, vec![b"two".to_vec()]));
        b.feed(&wire[taken + more..]);
        // With input buffered, nothing is taken from new data.
        assert_eq!(b.take_short_messages_from(&wire, |_| true), 0);
        let mut seen = Vec::new();
        drain(&mut b, &mut seen).unwrap();
        assert_eq!(
            seen,
            vec![Seen::Msg(vec![b"three".to_vec(), b"more".to_vec()])]
        );
    }

    /// One-frame messages of every header size, framed for queue_framed.
    fn framed_bodies() -> (Vec<Vec<u8>>, Vec<u8>) {
        let bodies = vec![
            b"a".to_vec(),
            vec![7u8; 255],
            vec![9u8; 256],
            vec![],
            vec![1u8; 70_000],
        ];
        let mut framed = Vec::new();
        for b in &bodies {
            push_single_frame_header(&mut framed, b.len());
            framed.extend_from_slice(b);
        }
        (bodies, framed)
    }

    #[test]
    fn framed_runs_go_out_as_messages_queued_one_by_one() {
        let (bodies, framed) = framed_bodies();
        let mut rest = &framed[..];
        let mut split = Vec::new();
        while let Some((body, len)) = split_single_frame(rest) {
            split.push(body.to_vec());
            rest = &rest[len..];
        }
        assert!(rest.is_empty());
        assert_eq!(split, bodies);

        let (mut one_by_one, _) = connected(SocketType::Dealer, SocketType::Router);
        for b in &bodies {
            one_by_one.queue_message(&[b]).unwrap();
        }
        let (mut a, mut b) = connected(SocketType::Dealer, SocketType::Router);
        a.queue_framed(&framed).unwrap();
        assert_eq!(a.pending_output(), one_by_one.pending_output());
        let (_, sb) = pump(&mut a, &mut b);
        let want: Vec<Seen> = bodies.iter().map(|b| Seen::Msg(vec![b.clone()])).collect();
        assert_eq!(sb, want);
    }

    #[test]
    fn framed_runs_are_sealed_one_box_per_message_on_curve() {
        let (bodies, framed) = framed_bodies();
        let (mut a, mut b) = curve_connected();
        a.queue_framed(&framed).unwrap();
        let (_, sb) = pump(&mut a, &mut b);
        let want: Vec<Seen> = bodies.iter().map(|b| Seen::Msg(vec![b.clone()])).collect();
        assert_eq!(sb, want);
    }

    #[test]
    fn framed_output_that_is_not_whole_messages_queues_nothing() {
        let (mut a, _) = connected(SocketType::Dealer, SocketType::Router);
        let (mut c, _) = curve_connected();
        let mut good = Vec::new();
        push_single_frame_header(&mut good, 2);
        good.extend_from_slice(b"ok");
        let long_lie = {
            let mut v = vec![FLAG_LONG];
            v.extend_from_slice(&u64::MAX.to_be_bytes());
            v
        };
        for bad in [
            vec![FLAG_COMMAND, 1, 0],
            vec![FLAG_MORE, 1, 0],
            vec![0, 5, 1, 2],
            vec![0],
            long_lie,
        ] {
            let mut run = good.clone();
            run.extend_from_slice(&bad);
            for conn in [&mut a, &mut c] {
                let before = conn.pending_output().len();
                assert_eq!(conn.queue_framed(&run), Err(Error::BadFraming), "{bad:?}");
                assert_eq!(conn.pending_output().len(), before);
            }
            assert!(split_single_frame(&bad).is_none(), "{bad:?}");
        }
        let mut fresh = Connection::new(cfg(SocketType::Dealer));
        assert_eq!(fresh.queue_framed(&good), Err(Error::NotReady));
    }

    #[test]
    fn byte_by_byte_and_every_prefix() {
        let (mut a, _) = connected(SocketType::Dealer, SocketType::Router);
        let mut stream = Connection::new(cfg(SocketType::Dealer))
            .pending_output()
            .to_vec();
        push_command(
            &mut stream,
            b"READY",
            &[&metadata(&cfg(SocketType::Dealer))],
        );
        take_output(&mut a);
        a.queue_message(&[b"one"]).unwrap();
        a.queue_message(&[b"a", &[9u8; 400], b"c"]).unwrap();
        push_command(&mut a.out, b"PING", &[&[0, 10], b"ctx"]);
        a.queue_message(&[b"three"]).unwrap();
        stream.extend_from_slice(&take_output(&mut a));

        let mut whole = Connection::new(cfg(SocketType::Router));
        whole.feed(&stream);
        let mut want = Vec::new();
        drain(&mut whole, &mut want).unwrap();
        assert_eq!(want.len(), 4);

        let mut bytewise = Connection::new(cfg(SocketType::Router));
        let mut got = Vec::new();
        for b in &stream {
            bytewise.feed(&[*b]);
            drain(&mut bytewise, &mut got).unwrap();
        }
        assert_eq!(got, want);
        assert_eq!(bytewise.buffered_input(), 0);
        assert!(
            bytewise.inbuf.capacity() < 2048,
            "input buffer not compacted"
        );

        for n in 0..stream.len() {
            let mut c = Connection::new(cfg(SocketType::Router));
            c.feed(&stream[..n]);
            let mut seen = Vec::new();
            drain(&mut c, &mut seen).unwrap();
            assert_eq!(seen[..], want[..seen.len()], "prefix {n}");
        }
    }

    #[test]
    fn bad_greetings() {
        let mut c = Connection::new(cfg(SocketType::Dealer));
        c.feed(&[0x01, 0x00]); // ZMTP 1.0: short identity frame
        assert_eq!(c.poll(), Err(Error::BadSignature));
        assert_eq!(c.poll(), Err(Error::BadSignature));
        assert!(c.is_closed());
        assert_eq!(c.pending_output().len(), 64, "no ERROR before greeting");

        let mut c = Connection::new(cfg(SocketType::Dealer));
        c.feed(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1]); // ZMTP 2.0
        let e = c.poll().unwrap_err();
        assert_eq!(e, Error::UnsupportedVersion { major: 1 });

        let mut c = Connection::new(cfg(SocketType::Dealer));
        let mut g = peer_bytes(1, "ROUTER");
        g[12..16].copy_from_slice(b"PLAI");
        c.feed(&g[..64]);
        assert!(matches!(
            c.poll(),
            Err(Error::MechanismMismatch { ours: "NULL", .. })
        ));
        assert_eq!(
            Error::BadSignature.to_string(),
            "peer greeting has bad signature"
        );

        // Needs more until the 64th byte; version 3.0 and 4.x accepted.
        for (major, minor) in [(3u8, 0u8), (4, 7)] {
            let mut g = peer_bytes(minor, "ROUTER");
            g[10] = major;
            let mut c = Connection::new(cfg(SocketType::Dealer));
            c.feed(&g[..63]);
            assert_eq!(c.poll(), Ok(None));
            assert_eq!(c.pending_output().len(), 64);
            c.feed(&g[63..]);
            match c.poll() {
                Ok(Some(ConnectionEvent::Ready(p))) => {
                    assert_eq!((p.major_version, p.minor_version), (major, minor));
                    assert_eq!(p.supports_ping(), minor >= 1);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn peer_error_command() {
        let mut v = peer_bytes(1, "ROUTER");
        v.truncate(64);
        push_error(&mut v, "no thanks");
        let mut c = Connection::new(cfg(SocketType::Dealer));
        c.feed(&v);
        let e = c.poll().unwrap_err();
        assert_eq!(e.to_string(), "peer sent ERROR: no thanks");
        assert!(!c.pending_output().ends_with(b"no thanks"));

        let mut c = ready_dealer(1);
        let mut v = Vec::new();
        push_error(&mut v, "bye");
        c.feed(&v);
        assert_eq!(c.poll(), Err(Error::PeerError("bye".into())));
    }

    #[test]
    fn ping_gets_pong() {
        let mut c = ready_dealer(1);
        let mut v = Vec::new();
        push_command(&mut v, b"PING", &[&[0, 50], b"context"]);
        push_command(&mut v, b"PING", &[&[0, 0], &[1u8; 20]]);
        push_command(&mut v, b"PONG", &[b"x"]);
        push_command(&mut v, b"SUBSCRIBE", &[b"x"]);
        c.feed(&v);
        assert_eq!(c.poll(), Ok(None));
        let mut want = Vec::new();
        push_command(&mut want, b"PONG", &[b"context"]);
        push_command(&mut want, b"PONG", &[&[1u8; 16]]);
        assert_eq!(c.pending_output(), &want[..]);

        let mut v = Vec::new();
        push_command(&mut v, b"PING", &[&[0]]);
        c.feed(&v);
        assert!(matches!(c.poll(), Err(Error::MalformedCommand(_))));
    }

    #[test]
    fn queue_ping_only_to_31() {
        let mut c = ready_dealer(1);
        assert!(c.queue_ping(30, b"abc"));
        let mut want = Vec::new();
        push_command(&mut want, b"PING", &[&[0, 30], b"abc"]);
        assert_eq!(c.pending_output(), &want[..]);
        assert!(!c.queue_ping(30, &[0; 17]));
        let mut c = ready_dealer(0);
        assert!(!c.queue_ping(30, b""));
        assert!(c.pending_output().is_empty());
        let mut c = Connection::new(cfg(SocketType::Dealer));
        assert!(!c.queue_ping(1, b""));
    }

    #[test]
    fn frame_limits() {
        let mut config = cfg(SocketType::Dealer);
        config.max_frame = 1_048_576;
        let mut c = Connection::new(config);
        c.feed(&peer_bytes(1, "ROUTER"));
        assert!(matches!(c.poll(), Ok(Some(ConnectionEvent::Ready(_)))));
        let mut hdr = vec![FLAG_LONG];
        hdr.extend_from_slice(&9_999_999u64.to_be_bytes());
        c.feed(&hdr); // header only: refused before any body arrives
        let e = c.poll().unwrap_err();
        assert_eq!(
            e.to_string(),
            "frame of 9999999 bytes exceeds limit 1048576"
        );

        let mut c = ready_dealer(1);
        let mut hdr = vec![FLAG_LONG];
        hdr.extend_from_slice(&u64::MAX.to_be_bytes());
        c.feed(&hdr);
        assert!(matches!(c.poll(), Err(Error::FrameTooLarge { .. })));

        // Multipart budget.
        let mut config = cfg(SocketType::Dealer);
        config.max_frame = 1000;
        let mut c = Connection::new(config);
        c.feed(&peer_bytes(1, "ROUTER"));
        assert!(matches!(c.poll(), Ok(Some(ConnectionEvent::Ready(_)))));
        for _ in 0..4 {
            c.feed(&[FLAG_MORE, 250]);
            c.feed(&[0; 250]);
        }
        assert_eq!(c.poll(), Ok(None));
        c.feed(&[FLAG_MORE, 250]); // refused on the header alone
        assert!(matches!(c.poll(), Err(Error::MessageTooLarge { .. })));
    }

    #[test]
    fn bad_frames() {
        for (bytes, want) in [
            (vec![0x08, 0], Error::BadFlags(0x08)),
            (vec![0x05, 1, 0], Error::BadFlags(0x05)),
            (vec![0x01, 0, 0x04, 1, 1], Error::CommandInsideMessage),
            (
                vec![0x04, 0],
                Error::MalformedCommand("empty command frame"),
            ),
            (
                vec![0x04, 1, 0],
                Error::MalformedCommand("empty command name"),
            ),
            (
                vec![0x04, 2, 5, b'x'],
                Error::MalformedCommand("command name longer than frame"),
            ),
        ] {
            let mut c = ready_dealer(1);
            c.feed(&bytes);
            assert_eq!(c.poll(), Err(want.clone()), "{bytes:?}");
            assert_eq!(c.poll(), Err(want));
        }
        // Message before handshake; unknown handshake command.
        let mut c = Connection::new(cfg(SocketType::Dealer));
        let mut v = peer_bytes(1, "ROUTER");
        v.truncate(64);
        v.extend_from_slice(&[0, 1, 0]);
        c.feed(&v);
        assert_eq!(c.poll(), Err(Error::UnexpectedMessage));
        let mut c = Connection::new(cfg(SocketType::Dealer));
        v.truncate(64);
        push_command(&mut v, b"HELLO", &[]);
        c.feed(&v);
        assert_eq!(c.poll(), Err(Error::UnexpectedCommand("HELLO".into())));
    }

    #[test]
    fn fail_and_not_ready() {
        let mut c = Connection::new(cfg(SocketType::Dealer));
        assert_eq!(c.queue_message(&[b"x"]), Err(Error::NotReady));
        c.fail("early");
        assert!(c.is_closed());
        assert_eq!(c.pending_output().len(), 64);
        assert_eq!(c.poll(), Ok(None));

        let mut c = ready_dealer(1);
        assert_eq!(c.queue_message(&[]), Err(Error::EmptyMessage));
        c.fail(&"x".repeat(300));
        let out = c.pending_output();
        assert_eq!(
            &out[..9],
            &[FLAG_COMMAND | FLAG_LONG, 0, 0, 0, 0, 0, 0, 1, 6]
        );
        assert_eq!(out.len(), 9 + 6 + 1 + 255);
        c.feed(b"ignored");
        assert_eq!(c.poll(), Ok(None));
        assert!(!c.is_ready());
    }

    // ------------------------------------------------------------------
    // CURVE

    fn curve_cfgs(
        check: Option<ClientCheck>,
        server_key: Option<[u8; 32]>,
    ) -> (ConnectionConfig, ConnectionConfig, Keypair, Keypair) {
        let server = Keypair::generate().unwrap();
        let client = Keypair::generate().unwrap();
        let mut c = cfg(SocketType::Dealer);
        c.properties.push(("X-ZGossip".into(), b"2".to_vec()));
        c.mechanism = MechanismConfig::CurveClient {
            keys: client.clone(),
            server_key: server_key.unwrap_or(server.public),
        };
        let mut s = cfg(SocketType::Router);
        s.mechanism = MechanismConfig::CurveServer {
            keys: server.clone(),
            also: Vec::new(),
            retired: Vec::new(),
            check,
        };
        (c, s, client, server)
    }

    /// How a handshake ended on one side.
    type Outcome = Result<Vec<Seen>, Error>;

    /// A server holding `primary` and `also` (retired: `retired`), and a
    /// client dialling it with `server_key`: how the handshake ends on
    /// each side, and the key the server says the HELLO was addressed to.
    fn curve_with_held_keys(
        primary: &Keypair,
        also: &[Keypair],
        retired: &[Keypair],
        server_key: [u8; 32],
    ) -> (Outcome, Outcome, Option<[u8; 32]>) {
        let mut c = cfg(SocketType::Dealer);
        c.mechanism = MechanismConfig::CurveClient {
            keys: Keypair::generate().unwrap(),
            server_key,
        };
        let mut s = cfg(SocketType::Router);
        s.mechanism = MechanismConfig::CurveServer {
            keys: primary.clone(),
            also: also.to_vec(),
            retired: retired.to_vec(),
            check: None,
        };
        let mut a = Connection::new(c);
        let mut b = Connection::new(s);
        let (ra, rb) = pump_result(&mut a, &mut b);
        (ra, rb, b.curve_server_key())
    }

    #[test]
    fn curve_hello_to_a_secondary_held_key_opens() {
        let (old, new) = (Keypair::generate().unwrap(), Keypair::generate().unwrap());
        // Primary old, new held beside it: a client of either gets in,
        // and the server says which key it was addressed to.
        for (addressed, want) in [(&old, &old), (&new, &new)] {
            let (ra, rb, used) =
                curve_with_held_keys(&old, std::slice::from_ref(&new), &[], addressed.public);
            assert!(matches!(ra.unwrap()[..], [Seen::Ready(..)]));
            assert!(matches!(rb.unwrap()[..], [Seen::Ready(..)]));
            assert_eq!(used, Some(want.public));
        }
    }

    #[test]
    fn curve_hello_to_a_retired_key_is_refused_and_named() {
        let (old, new) = (Keypair::generate().unwrap(), Keypair::generate().unwrap());
        let (ra, rb, used) =
            curve_with_held_keys(&new, &[], std::slice::from_ref(&old), old.public);
        assert_eq!(rb, Err(Error::Crypto(curve::HELLO_RETIRED)));
        assert!(
            matches!(ra, Err(Error::PeerError(ref r)) if r.contains("retired")),
            "{ra:?}"
        );
        assert_eq!(used, None);
        // A key the server never held: the usual refusal.
        let stranger = Keypair::generate().unwrap();
        let (_, rb, _) = curve_with_held_keys(&new, &[], &[old], stranger.public);
        assert_eq!(rb, Err(Error::Crypto(curve::HELLO_UNKNOWN)));
    }

    #[test]
    fn curve_handshake_and_messages() {
        let (c, s, client, server) = curve_cfgs(None, None);
        let mut a = Connection::new(c);
        let mut b = Connection::new(s);
        assert_eq!(&a.pending_output()[12..17], b"CURVE");
        assert_eq!(a.pending_output()[32], 0);
        assert_eq!(b.pending_output()[32], 1, "server sets as-server");
        // HELLO is exactly 200 bytes of command body, as libzmq checks.
        b.feed(&take_output(&mut a)[..64]);
        a.feed(&take_output(&mut b));
        assert_eq!(a.poll(), Ok(None));
        let hello = take_output(&mut a);
        assert_eq!(&hello[..2], &[FLAG_COMMAND, 200]);
        assert_eq!(&hello[2..8], b"\x05HELLO");
        b.feed(&hello);
        assert_eq!(b.poll(), Ok(None));
        let welcome = take_output(&mut b);
        assert_eq!(&welcome[..2], &[FLAG_COMMAND, 168]);
        a.feed(&welcome);
        let mut ready_a = None;
        let mut ready_b = None;
        for _ in 0..10 {
            let ab = take_output(&mut a);
            let ba = take_output(&mut b);
            b.feed(&ab);
            a.feed(&ba);
            if let Ok(Some(ConnectionEvent::Ready(p))) = a.poll() {
                ready_a = Some(p);
            }
            if let Ok(Some(ConnectionEvent::Ready(p))) = b.poll() {
                ready_b = Some(p);
            }
        }
        let (pa, pb) = (ready_a.unwrap(), ready_b.unwrap());
        assert_eq!(pa.socket_type, SocketType::Router);
        assert_eq!(pa.curve_key, Some(server.public));
        assert_eq!(pb.socket_type, SocketType::Dealer);
        assert_eq!(pb.curve_key, Some(client.public), "server learns C");
        assert_eq!(pb.property("X-ZGossip"), Some(&b"2"[..]));

        let long = vec![9u8; 70_000];
        a.queue_message(&[b"hello"]).unwrap();
        a.queue_message(&[b"", b"two", &long]).unwrap();
        b.queue_message(&[b"back"]).unwrap();
        let wire = a.pending_output().to_vec();
        assert!(!wire.windows(5).any(|w| w == b"hello"), "plaintext on wire");
        assert_eq!(&wire[..2], &[0, 8 + 8 + 16 + 1 + 5]);
        assert_eq!(&wire[2..10], b"\x07MESSAGE");
        assert_eq!(&wire[10..18], &3u64.to_be_bytes(), "client nonce 3");
        assert!(a.queue_ping(10, b"ctx"));
        let (sa, sb) = pump_result(&mut a, &mut b);
        assert_eq!(sa.unwrap(), vec![Seen::Msg(vec![b"back".to_vec()])]);
        assert_eq!(
            sb.unwrap(),
            vec![
                Seen::Msg(vec![b"hello".to_vec()]),
                Seen::Msg(vec![vec![], b"two".to_vec(), long]),
            ]
        );
        assert!(a.is_ready() && b.is_ready());
    }

    fn curve_connected() -> (Connection, Connection) {
        let (c, s, _, _) = curve_cfgs(None, None);
        let mut a = Connection::new(c);
        let mut b = Connection::new(s);
        let (sa, sb) = pump_result(&mut a, &mut b);
        assert!(matches!(sa.unwrap()[..], [Seen::Ready(..)]));
        assert!(matches!(sb.unwrap()[..], [Seen::Ready(..)]));
        (a, b)
    }

    #[test]
    fn curve_wrong_server_key_refused_with_error() {
        let other = Keypair::generate().unwrap();
        let (c, s, _, _) = curve_cfgs(None, Some(other.public));
        let mut a = Connection::new(c);
        let mut b = Connection::new(s);
        let (ra, rb) = pump_result(&mut a, &mut b);
        assert_eq!(
            rb,
            Err(Error::Crypto("cannot open HELLO box (wrong server key?)"))
        );
        assert!(matches!(ra, Err(Error::PeerError(ref r)) if r.contains("wrong server key")));
    }

    #[test]
    fn curve_client_check_refuses() {
        let check = ClientCheck(std::sync::Arc::new(|_: &[u8; 32]| {
            Err("key not allowed".to_string())
        }));
        let (c, s, _, _) = curve_cfgs(Some(check), None);
        let mut a = Connection::new(c);
        let mut b = Connection::new(s);
        let (ra, rb) = pump_result(&mut a, &mut b);
        assert_eq!(rb, Err(Error::Refused("key not allowed".into())));
        assert_eq!(
            ra,
            Err(Error::PeerError("access denied: key not allowed".into()))
        );
    }

    #[test]
    fn curve_against_null_and_same_roles() {
        let (c, s, _, _) = curve_cfgs(None, None);
        let mut a = Connection::new(cfg(SocketType::Dealer));
        let mut b = Connection::new(s.clone());
        let (ra, rb) = pump_result(&mut a, &mut b);
        assert!(matches!(
            rb,
            Err(Error::MechanismMismatch { ours: "CURVE", .. })
        ));
        assert!(matches!(
            ra,
            Err(Error::MechanismMismatch { ours: "NULL", .. })
        ));
        let mut a = Connection::new(s.clone());
        let mut b = Connection::new(s);
        // Two servers wait for a HELLO (the handshake timeout ends it);
        // two clients refuse each other's HELLO.
        let (ra, rb) = pump_result(&mut a, &mut b);
        assert_eq!((ra, rb), (Ok(vec![]), Ok(vec![])));
        assert!(!a.is_ready() && !b.is_ready());
        let mut a = Connection::new(c.clone());
        let mut b = Connection::new(c);
        assert_eq!(
            pump_result(&mut a, &mut b).0,
            Err(Error::UnexpectedCommand("HELLO".into()))
        );
    }

    #[test]
    fn curve_replayed_and_forged_boxes_refused() {
        let (mut a, mut b) = curve_connected();
        a.queue_message(&[b"one"]).unwrap();
        let first = take_output(&mut a);
        b.feed(&first);
        assert!(matches!(b.poll(), Ok(Some(ConnectionEvent::Message(_)))));
        b.feed(&first); // replay
        assert_eq!(
            b.poll(),
            Err(Error::Crypto("short nonce not increasing (replayed box?)"))
        );

        let (mut a, mut b) = curve_connected();
        a.queue_message(&[b"two"]).unwrap();
        let mut forged = take_output(&mut a);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        b.feed(&forged);
        assert_eq!(
            b.poll(),
            Err(Error::Crypto(
                "cannot open MESSAGE box (forged or corrupted)"
            ))
        );

        // A box sealed for the other direction does not open either.
        let (mut a, mut b) = curve_connected();
        b.queue_message(&[b"reflect"]).unwrap();
        let reflected = take_output(&mut b);
        b.feed(&reflected);
        assert!(matches!(b.poll(), Err(Error::Crypto(_))));
        drop(a.poll());

        // A plain frame on a CURVE connection.
        let (mut a, mut b) = curve_connected();
        let mut plain = Vec::new();
        push_frame(&mut plain, 0, 5);
        plain.extend_from_slice(b"hello");
        b.feed(&plain);
        assert_eq!(b.poll(), Err(Error::Crypto("expected a MESSAGE command")));
        let mut short = Vec::new();
        push_frame(&mut short, 0, 10);
        short.extend_from_slice(b"\x07MESSAGEab");
        a.feed(&short);
        assert_eq!(a.poll(), Err(Error::MalformedCommand("MESSAGE too short")));
    }

    #[test]
    fn curve_every_prefix_and_byte_by_byte() {
        let (c, s, _, _) = curve_cfgs(None, None);
        let mut a = Connection::new(c);
        let mut b = Connection::new(s.clone());
        // Record what the client sends until ready plus two messages.
        let mut stream = Vec::new();
        for _ in 0..10 {
            let ab = take_output(&mut a);
            stream.extend_from_slice(&ab);
            b.feed(&ab);
            a.feed(&take_output(&mut b));
            let _ = a.poll();
            let _ = b.poll();
        }
        assert!(a.is_ready());
        a.queue_message(&[b"x", b"y"]).unwrap();
        stream.extend_from_slice(&take_output(&mut a));
        // The recorded stream only opens for the server that saw it, so
        // every prefix fed to a fresh server must fail or wait, never panic.
        for n in 0..stream.len() {
            let mut fresh = Connection::new(s.clone());
            fresh.feed(&stream[..n]);
            let _ = fresh.poll();
        }
        let mut fresh = Connection::new(s);
        for byte in &stream {
            fresh.feed(&[*byte]);
            if fresh.poll().is_err() {
                break;
            }
        }
        assert!(fresh.is_closed(), "a recorded stream was accepted again");
    }

    #[test]
    fn refused_peer_gets_error_only() {
        let (c, s, _, _) = curve_cfgs(None, None);
        let mut refusing = s;
        refusing.refuse = Some("address 10.0.0.9 is denied".into());
        let mut a = Connection::new(c);
        let mut b = Connection::new(refusing);
        let (ra, rb) = pump_result(&mut a, &mut b);
        assert_eq!(rb, Err(Error::Refused("address 10.0.0.9 is denied".into())));
        assert_eq!(
            ra,
            Err(Error::PeerError(
                "access denied: address 10.0.0.9 is denied".into()
            ))
        );
    }

    #[test]
    fn curve_frame_limit_and_ping() {
        let (mut a, mut b) = curve_connected();
        let mut hdr = vec![FLAG_LONG];
        hdr.extend_from_slice(&(DEFAULT_MAX_FRAME as u64 + 1000).to_be_bytes());
        b.feed(&hdr);
        assert!(matches!(b.poll(), Err(Error::FrameTooLarge { .. })));
        assert!(a.queue_ping(10, b"abc"));
        let ping = take_output(&mut a);
        assert_eq!(&ping[2..10], b"\x07MESSAGE", "PING travels boxed");
        let (mut a, mut b) = curve_connected();
        assert!(a.queue_ping(10, b"abc"));
        let (ra, rb) = pump_result(&mut a, &mut b);
        assert_eq!((ra.unwrap(), rb.unwrap()), (vec![], vec![]));
    }

    #[test]
    fn output_partial_consume() {
        let mut c = Connection::new(cfg(SocketType::Dealer));
        let all = c.pending_output().to_vec();
        c.consume_output(10);
        assert_eq!(c.pending_output(), &all[10..]);
        c.consume_output(40);
        assert_eq!(c.pending_output(), &all[50..]);
        c.consume_output(1000);
        assert!(c.pending_output().is_empty());
    }
}
