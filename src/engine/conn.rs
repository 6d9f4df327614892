//! What the engine knows of one connection: the peer's handshake, the
//! ZGP session, the outbox; and the table of connections.

use super::*;

/// What the driver learned about a peer in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer {
    /// The peer announced ZGP/2 (and so did we): this connection speaks it.
    pub zgp2: bool,
    /// The session timeout the peer announced, in ms.
    pub timeout_ms: Option<u64>,
    /// The largest frame the peer announced it accepts: a tuple whose frame
    /// is longer is not offered to it (it would close the link, and meet
    /// the same tuple again when it comes back).
    pub max_frame: Option<usize>,
    /// The address the connection comes from, when the driver knows it:
    /// the overlay puts it in for a peer bound to a wildcard address.
    pub addr: Option<std::net::IpAddr>,
}

impl Peer {
    /// Whether the peer accepts a frame of `len` bytes.
    pub(super) fn accepts(&self, len: usize) -> bool {
        self.max_frame.is_none_or(|max| len <= max)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Session {
    /// No HELLO seen (or the session was forgotten): only PING is valid.
    Start,
    /// HELLO seen: PUBLISH accepted, tuples forwarded.
    Connected,
    /// Silent for longer than the session timeout. On the wire this is
    /// CZMQ's forgotten session (the next message gets INVALID, so the
    /// client says HELLO again and is resynchronised), but since the
    /// connection itself is still open nothing is dropped: tuples are still
    /// forwarded to it and a PUBLISH that arrives is kept.
    Expired,
    /// An expired session that got its INVALID: the client's HELLO is on
    /// its way. Whatever it published meanwhile (it cannot know yet; CZMQ
    /// echoes our forwards too) is kept without another INVALID.
    Invalidated,
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) role: Role,
    pub(super) session: Session,
    pub(super) peer: Peer,
    /// When the next anti-entropy round starts (server side, ZGP/2).
    pub(super) next_sync: u64,
    /// When the server last started a round with us (client side,
    /// ZGP/2): if rounds stop coming, our HELLO was lost; say it again.
    pub(super) last_sync_rx: u64,
    /// Outbound ZGP/2 connection before the server's first RANGES:
    /// forwards wait here (until that RANGES is answered, or
    /// `hold_until`), so that tuples published while the connection came
    /// up do not overtake older ones that travel by the reconciliation.
    pub(super) held: Option<Vec<u8>>,
    pub(super) hold_until: u64,
    /// Frames waiting for the driver, each a ZGP message framed as a
    /// single ZMTP frame (see [`push_message`]).
    pub(super) outbox: Vec<u8>,
    /// Read position in `outbox` (drained frames before it).
    pub(super) outbox_pos: usize,
    pub(super) last_rx: u64,
    pub(super) last_tx: u64,
    /// Asked the driver to close it: no traffic in or out any more.
    pub(super) closing: bool,
    /// Closed because the peer went silent past the link's timeout (its
    /// membership then suspects the peer).
    pub(super) lost: bool,
    /// The peer said DISCONNECT on it: its close, when it comes, is the
    /// peer's choice, not a failure.
    pub(super) farewell: bool,
    /// Until then (mono ms), an INVALID from the server answers a frame
    /// sent before our last HELLO again: it starts nothing over.
    pub(super) rehello_until: u64,
    /// What the limits count and time for it (see `limits`).
    pub(super) meter: Meter,
    /// Sync sends not yet encoded, in order (see `sync::fill_sends`).
    pub(super) sends: VecDeque<sync::SendJob>,
    /// Frames queued while sync sends are pending: they follow them, so
    /// nothing overtakes the tuples of a reconciliation.
    pub(super) after_sends: Vec<u8>,
    /// The backlog passed `max_backlog_bytes` and the driver was told.
    pub(super) over_limit: bool,
    /// When the handshake ended (monotonic ms).
    pub(super) since_ms: u64,
    /// When our unanswered PING left (client side): its PONG gives the
    /// link's round trip.
    pub(super) ping_sent_at: Option<u64>,
    /// Frames and bytes in and out, for `METRICS`.
    pub(super) traffic: metrics::Traffic,
    /// The last round trip measured by a PING (ms).
    pub(super) rtt_ms: Option<u64>,
}

impl Conn {
    /// Where the next frame goes, and whether the driver must look at the
    /// connection: it had nothing queued, or its backlog has just passed
    /// `max` bytes (said once, so that [`Engine::take_dirty`] closes it
    /// even while the outbox never empties).
    pub(super) fn queue(&mut self, max: usize) -> (&mut Vec<u8>, bool) {
        let over = !self.over_limit && self.queued() > max;
        self.over_limit |= over;
        if self.sends.is_empty() {
            let was_empty = self.outbox.len() == self.outbox_pos;
            (&mut self.outbox, was_empty || over)
        } else {
            (&mut self.after_sends, over)
        }
    }

    /// Forgets the sync sends still to encode and what waits behind them.
    pub(super) fn discard_sends(&mut self) {
        self.sends.clear();
        self.after_sends = Vec::new();
    }

    /// Bytes waiting to be drained, encoded sync sends aside.
    pub(super) fn queued(&self) -> usize {
        self.outbox.len() - self.outbox_pos + self.after_sends.len()
    }

    /// Marks the outbox drained up to `pos`; true if nothing is left.
    pub(super) fn consume_outbox(&mut self, pos: usize) -> bool {
        if pos >= self.outbox.len() {
            self.outbox.clear();
            self.outbox_pos = 0;
            if self.outbox.capacity() > 1 << 20 {
                self.outbox.shrink_to(64 << 10);
            }
            true
        } else {
            self.outbox_pos = pos;
            if pos > self.outbox.len() / 2 {
                self.outbox.drain(..pos);
                self.outbox_pos = 0;
            }
            false
        }
    }
}

/// The connections by id, walked in id order (as a `BTreeMap` would be,
/// so that what a node does is deterministic), kept in a sorted vector: a
/// node has few connections, and every forward walks all of them.
#[derive(Debug, Default)]
pub(super) struct ConnTable(Vec<(ConnId, Conn)>);

impl ConnTable {
    pub(super) fn find(&self, id: ConnId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |&(k, _)| k)
    }

    pub(super) fn get(&self, id: &ConnId) -> Option<&Conn> {
        self.find(*id).ok().map(|i| &self.0[i].1)
    }

    pub(super) fn get_mut(&mut self, id: &ConnId) -> Option<&mut Conn> {
        self.find(*id).ok().map(|i| &mut self.0[i].1)
    }

    pub(super) fn insert(&mut self, id: ConnId, conn: Conn) -> Option<Conn> {
        match self.find(id) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, conn)),
            Err(i) => {
                self.0.insert(i, (id, conn));
                None
            }
        }
    }

    pub(super) fn remove(&mut self, id: &ConnId) -> Option<Conn> {
        self.find(*id).ok().map(|i| self.0.remove(i).1)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&ConnId, &Conn)> {
        self.0.iter().map(|(k, c)| (k, c))
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&ConnId, &mut Conn)> {
        self.0.iter_mut().map(|(k, c)| (&*k, c))
    }
}

impl<'a> IntoIterator for &'a ConnTable {
    type Item = (&'a ConnId, &'a Conn);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (ConnId, Conn)>,
        fn(&'a (ConnId, Conn)) -> (&'a ConnId, &'a Conn),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, c)| (k, c))
    }
}

/// Longest time forwards wait on a new outbound ZGP/2 connection for
/// the server's first reconciliation message.
pub(super) const HOLD_MS: u64 = 500;
