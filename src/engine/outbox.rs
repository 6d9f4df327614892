//! What the driver takes from the engine: the frames queued per
//! connection (with the limits on what may wait), actions and news.
//!
//! Fast path: output is queued already framed (as on a NULL connection)
//! and moved to the codec or the socket in runs, not a call and a copy
//! per message; relays pass a ZGP/2 frame on as it came (`forward.rs`).
//! Measured gain: about a quarter of the event loop's instructions per
//! tuple (docs/benchmarks.md, "Output moves in runs").

use super::*;

impl Engine {
    /// Connections with frames waiting since the last call; the driver then
    /// calls [`Engine::drain_outbox`] for each. The vector is reused.
    /// A connection whose backlog passed `max_backlog_bytes` is closed
    /// here instead.
    pub fn take_dirty(&mut self, into: &mut Vec<ConnId>) {
        into.clear();
        std::mem::swap(into, &mut self.dirty);
        let max = self.settings.max_backlog_bytes;
        let mut k = 0;
        while let Some(&id) = into.get(k) {
            let over = self.conns.get_mut(&id).and_then(|c| {
                let queued = c.queued();
                // Under the limit again: the next time it passes counts.
                c.over_limit = queued > max;
                (queued > max && !c.closing).then_some(queued)
            });
            let Some(queued) = over else {
                k += 1;
                continue;
            };
            into.retain(|&c| c != id);
            let why = format!("peer too slow: {queued} bytes waiting (limit {max})");
            self.abandon(id, why, self.last_now);
        }
    }

    /// Keeps the bytes waiting for all connections within
    /// `max_backlog_total`: the connections with the largest backlogs are
    /// closed (they resynchronise when they come back) until the rest fits.
    pub(super) fn bound_backlogs(&mut self, now: Now) {
        let budget = self.settings.max_backlog_total;
        if budget == 0 {
            return;
        }
        let mut queued: Vec<(usize, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing)
            .map(|(&id, c)| (c.queued(), id))
            .filter(|&(q, _)| q > 0)
            .collect();
        let mut total: usize = queued.iter().map(|&(q, _)| q).sum();
        if total <= budget {
            return;
        }
        queued.sort_unstable_by(|a, b| b.cmp(a));
        for (q, id) in queued {
            if total <= budget {
                break;
            }
            total -= q;
            self.stats.backlog_closed += 1;
            let why = format!("limits/max-backlog-total reached: {q} bytes waiting here, the most");
            self.abandon(id, why, now);
        }
    }

    /// Closes a connection whose backlog is too large, dropping what waits
    /// for it: nothing more of it is sent, and the peer resynchronises when
    /// it comes back.
    fn abandon(&mut self, id: ConnId, why: String, now: Now) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.outbox.clear();
            c.outbox_pos = 0;
            c.discard_sends();
        }
        self.close(id, why, now);
    }

    /// Hands queued frames of `conn` to `sink`, oldest first, while it
    /// returns true; frames it refuses stay queued for a later call (the
    /// driver comes back when the connection can take more). Returns true
    /// when the outbox is now empty.
    pub fn drain_outbox(&mut self, conn: ConnId, mut sink: impl FnMut(&[u8]) -> bool) -> bool {
        // One message at a time through the framed path.
        loop {
            let mut refused = false;
            let empty = self.drain_outbox_framed(conn, 1, |run| {
                // A run of one message (the outbox holds whole ones).
                refused = !zmtp::split_single_frame(run).is_some_and(|(frame, _)| sink(frame));
                !refused
            });
            if empty || refused {
                return empty;
            }
        }
    }

    /// Like [`drain_outbox`](Self::drain_outbox), but hands the output as
    /// it is queued: runs of whole one-frame messages in ZMTP framing, for
    /// [`zmtp::Connection::queue_framed`]. Runs add up to at most `max`
    /// bytes (a single longer message goes alone, so that nothing stays
    /// stuck behind the bound). Returns true when the outbox is now empty.
    pub fn drain_outbox_framed(
        &mut self,
        conn: ConnId,
        max: usize,
        mut sink: impl FnMut(&[u8]) -> bool,
    ) -> bool {
        let mut room = max;
        loop {
            let drained = self.drain_queued_framed(conn, &mut room, &mut sink);
            let more = self.conns.get(&conn).is_some_and(|c| !c.sends.is_empty());
            if !drained || !more || room == 0 {
                return drained && !more;
            }
            self.fill_sends(conn, self.last_now);
        }
    }

    /// Hands one run of the messages already queued (at most `room` bytes,
    /// or one message) to `sink`; true if none is left.
    pub(super) fn drain_queued_framed(
        &mut self,
        conn: ConnId,
        room: &mut usize,
        sink: &mut impl FnMut(&[u8]) -> bool,
    ) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return true;
        };
        let pos = c.outbox_pos;
        let queued = &c.outbox[pos..];
        if *room == 0 {
            return queued.is_empty();
        }
        let take = if queued.len() <= *room {
            queued.len()
        } else {
            // The longest run of whole messages that fits (at least one).
            let mut end = 0;
            while let Some((_, len)) = zmtp::split_single_frame(&queued[end..]) {
                if end > 0 && end + len > *room {
                    break;
                }
                end += len;
            }
            end
        };
        if take > 0 {
            if !sink(&queued[..take]) {
                return false;
            }
            *room = room.saturating_sub(take);
        }
        c.consume_outbox(pos + take)
    }

    /// Bytes of frames queued for `conn` and not yet drained (sync sends
    /// not encoded yet are not counted: see [`Engine::has_output`]).
    pub fn outbox_len(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, Conn::queued)
    }

    /// True while `conn` has frames queued or sync sends still to encode.
    pub fn has_output(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.queued() > 0 || !c.sends.is_empty())
    }

    /// The next thing the driver must do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next news for the application, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.news.pop_with(|n| match n.kind {
            Kind::Deliver => Event::Deliver {
                key: n.key.to_string(),
                value: n.value.to_string(),
            },
            Kind::Expire => Event::Expire {
                key: n.key.to_string(),
            },
            Kind::Delete => Event::Delete {
                key: n.key.to_string(),
            },
        })
    }

    /// The news not yet taken, for a driver that moves it in batches
    /// without allocating (see [`NewsQueue::drain`]).
    pub fn news(&mut self) -> &mut NewsQueue {
        &mut self.news
    }
}

// An outbox holds one-frame messages framed as on the wire of a NULL
// connection (zmtp::push_single_frame_header), so that the driver can hand
// whole runs of them to the connection at once (zmtp::Connection::
// queue_framed) instead of one call and one copy per message.

/// Appends a message of `len` bytes to an outbox: its header, then what
/// `write` appends (exactly `len` bytes).
pub(super) fn push_message(outbox: &mut Vec<u8>, len: usize, write: impl FnOnce(&mut Vec<u8>)) {
    outbox.reserve(zmtp::MAX_HEADER_LEN + len);
    zmtp::push_single_frame_header(outbox, len);
    write(outbox);
}

pub(super) fn push_raw(outbox: &mut Vec<u8>, frame: &[u8]) {
    push_message(outbox, frame.len(), |o| o.extend_from_slice(frame));
}

/// Appends a ZGP/2 TUPLE to an outbox, encoded in place.
pub(super) fn push_tuple(outbox: &mut Vec<u8>, t: &zgp2::Tuple<'_>) {
    push_message(outbox, zgp2::tuple_len(t), |o| zgp2::encode_tuple(t, o));
}

pub(super) fn push_frame(outbox: &mut Vec<u8>, msg: &Message<'_>) {
    push_message(outbox, msg.encoded_len(), |o| msg.encode(o));
}
