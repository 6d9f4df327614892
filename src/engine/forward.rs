//! Sending: a write forwarded to every peer that needs it (the ZGP/2
//! frame as it arrived, or a plain PUBLISH), and messages to one peer.

use super::*;

impl Engine {
    /// Sends the current write of `key` to every peer except `from`: ZGP/2
    /// peers get the versioned tuple (`raw` as it is when given: the frame
    /// this very write arrived in), plain peers the live value only. The
    /// entry is read only once a peer needs it (a node whose only peer sent
    /// the write reads nothing; a relay between ZGP/2 peers neither reads
    /// nor encodes).
    pub(super) fn forward(&mut self, entry: usize, arrival: writes::Arrival<'_>, now: Now) {
        let writes::Arrival { from, raw, pushed } = arrival;
        let Engine {
            store,
            conns,
            scratch,
            dirty,
            settings,
            tree,
            ..
        } = self;
        let max = settings.max_backlog_bytes;
        // The tuple, read at the first peer that needs it; the ZGP/2 frame,
        // encoded there once (unless given) and copied to the others.
        let mut current: Option<(&str, Tuple<'_>)> = None;
        let mut v2 = std::mem::take(scratch);
        v2.clear();
        let mut sent = 0;
        let mut skipped = 0;
        let mut announced = false;
        for (&id, c) in conns.iter_mut() {
            let eligible = Some(id) != from
                && !c.closing
                && (matches!(c.role, Role::Outbound(_)) || c.session != Session::Start);
            if !eligible {
                continue;
            }
            let speaks_zgp2 = c.peer.zgp2;
            if speaks_zgp2 && tree.mode(id) == Some(tree::Mode::Lazy) {
                // A lazy link of the broadcast tree: announced, not sent.
                let (key, t) = match current {
                    Some(kt) => kt,
                    None => match store.entry(entry) {
                        Some(kt) => *current.insert(kt),
                        None => break,
                    },
                };
                let id_of_write = crate::wire::overlay::WriteId {
                    key: key.to_string(),
                    clock: t.version.clock,
                    origin: t.version.origin,
                };
                // The writer's node has it first: it always leads.
                let dialled = matches!(c.role, Role::Outbound(_));
                let leads = from.is_none() || tree::leads(&id_of_write, dialled);
                tree.announce(id, id_of_write, leads, now.mono_ms);
                announced = true;
                continue;
            }
            if !speaks_zgp2 || (raw.is_none() && v2.is_empty()) {
                let (key, t) = match current {
                    Some(kt) => kt,
                    None => match store.entry(entry) {
                        Some(kt) => *current.insert(kt),
                        None => break,
                    },
                };
                if !speaks_zgp2 && t.deleted {
                    continue;
                }
                if speaks_zgp2 {
                    zgp2::encode_tuple(&zgp2_tuple(key, t), &mut v2);
                }
            }
            let frame = raw.unwrap_or(&v2);
            let len = match current {
                Some((key, t)) if !speaks_zgp2 => plain_publish(key, t, now).encoded_len(),
                _ => frame.len(),
            };
            if !c.peer.accepts(len) {
                skipped += 1;
                continue;
            }
            // A push of the broadcast tree is marked so: the frame, as it
            // ends the queue, gets the flag (its last byte is the flags).
            // A frame that came pushed already has it.
            if let Some(held) = c.held.as_mut() {
                push_raw(held, frame);
                if pushed {
                    zgp2::mark_pushed(held);
                }
                c.traffic.frames_out += 1;
                sent += 1;
                continue;
            }
            let (out, notify) = c.queue(max);
            if speaks_zgp2 {
                push_raw(out, frame);
                if pushed {
                    zgp2::mark_pushed(out);
                }
            } else if let Some((key, t)) = current {
                push_frame(out, &plain_publish(key, t, now));
            }
            if notify {
                dirty.push(id);
            }
            c.last_tx = now.mono_ms;
            c.traffic.frames_out += 1;
            sent += 1;
        }
        *scratch = v2;
        self.stats.frames_out += sent;
        self.stats.oversize_skipped += skipped;
        if announced {
            self.run_overlay(now);
        }
        if self.tracing_messages() {
            if let Some((key, t)) = self.store.entry(entry) {
                let what = describe(&plain_publish(key, t, now));
                self.trace_message(format_args!("forwarded {what} to {sent} peers"));
            }
        }
    }

    /// Sends our write of `key` to one ZGP/2 connection.
    pub(super) fn send_tuple_to(&mut self, conn: ConnId, key: &str, now: Now) {
        let Some(t) = self.store.get(key) else {
            return;
        };
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        zgp2::encode_tuple(&zgp2_tuple(key, t), &mut frame);
        self.queue_frame(conn, &frame, now);
        self.scratch = frame;
    }

    /// What a remote sends on connect and after INVALID: HELLO, then on a
    /// plain connection every tuple (CZMQ's way); on a ZGP/2 one the
    /// server answers HELLO with a set reconciliation instead.
    pub(super) fn send_hello_and_tuples(&mut self, conn: ConnId, now: Now) {
        self.send(conn, &Message::Hello, now);
        if !self.speaks_zgp2(conn) {
            self.send_all_tuples(conn, now);
        }
    }

    /// Every live tuple to a plain peer, as PUBLISH (CZMQ's way), encoded
    /// as the connection takes them: a CZMQ node joining a large store
    /// costs a few hundred KiB of output, not a second copy of the store.
    pub(super) fn send_all_tuples(&mut self, conn: ConnId, now: Now) {
        if self.tracing_messages() {
            let role = self.conns.get(&conn).map_or("?", |c| role_name(c.role));
            self.trace_message(format_args!(
                "{role} {conn}: send every tuple ({} x PUBLISH)",
                self.store.len()
            ));
        }
        self.send_matching(conn, sync::Filter::All, now);
    }

    pub(super) fn send(&mut self, conn: ConnId, msg: &Message<'_>, now: Now) {
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        msg.encode(&mut frame);
        self.queue_frame(conn, &frame, now);
        self.scratch = frame;
    }

    /// Sends an overlay or membership message on a ZGP/2 connection; one
    /// longer than the peer accepts goes in halves.
    pub(super) fn send_zgp2<M: Outgoing>(&mut self, conn: ConnId, msg: M, now: Now) {
        let Some(c) = self.conns.get(&conn).filter(|c| c.peer.zgp2 && !c.closing) else {
            return;
        };
        let peer = c.peer;
        if self.tracing_messages() {
            self.trace_message(format_args!(
                "{} {conn}: send {}",
                role_name(c.role),
                msg.name()
            ));
        }
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        msg.encode(&mut frame);
        if !peer.accepts(frame.len()) {
            if let Ok((a, b)) = msg.halve() {
                self.scratch = frame;
                self.send_zgp2(conn, a, now);
                self.send_zgp2(conn, b, now);
                return;
            }
        }
        self.queue_frame(conn, &frame, now);
        self.scratch = frame;
    }

    pub(super) fn queue_frame(&mut self, conn: ConnId, frame: &[u8], now: Now) {
        if self.tracing_messages() {
            if let (Some(c), Ok(msg)) = (self.conns.get(&conn), gossip::decode(frame)) {
                self.trace_message(format_args!(
                    "{} {conn}: send {}",
                    role_name(c.role),
                    describe(&msg)
                ));
            }
        }
        let max = self.settings.max_backlog_bytes;
        if let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) {
            if !c.peer.accepts(frame.len()) {
                self.stats.oversize_skipped += 1;
                return;
            }
            let (out, dirty) = c.queue(max);
            push_raw(out, frame);
            c.last_tx = now.mono_ms;
            c.traffic.frames_out += 1;
            self.stats.frames_out += 1;
            if dirty {
                self.dirty.push(conn);
            }
        }
    }
}

/// A ZGP/2 message of the overlay or the membership, which the engine cuts
/// in two when it is longer than the peer accepts.
pub(super) trait Outgoing: Sized {
    fn name(&self) -> &'static str;
    fn encode(&self, out: &mut Vec<u8>);
    /// The message in two halves, if it carries a list of more than one.
    fn halve(self) -> Result<(Self, Self), Self>;
}

impl Outgoing for crate::wire::overlay::Message {
    fn name(&self) -> &'static str {
        crate::wire::overlay::Message::name(self)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        crate::wire::overlay::Message::encode(self, out)
    }
    fn halve(self) -> Result<(Self, Self), Self> {
        use crate::wire::overlay::Message::{Graft, IHave};
        match self {
            IHave(mut a) if a.len() > 1 => {
                let b = a.split_off(a.len() / 2);
                Ok((IHave(a), IHave(b)))
            }
            Graft(mut a) if a.len() > 1 => {
                let b = a.split_off(a.len() / 2);
                Ok((Graft(a), Graft(b)))
            }
            other => Err(other),
        }
    }
}

impl Outgoing for crate::wire::membership::Message {
    fn name(&self) -> &'static str {
        crate::wire::membership::Message::name(self)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        crate::wire::membership::Message::encode(self, out)
    }
    fn halve(self) -> Result<(Self, Self), Self> {
        use crate::wire::membership::Message::Members;
        match self {
            Members(mut a) if a.len() > 1 => {
                let b = a.split_off(a.len() / 2);
                Ok((Members(a), Members(b)))
            }
            other => Err(other),
        }
    }
}

pub(super) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Inbound => "client",
        Role::Outbound(_) => "remote",
    }
}

/// A message for the trace: name, and key and value size for PUBLISH.
pub(super) fn describe(msg: &Message<'_>) -> String {
    match msg {
        Message::Publish { key, value, ttl } => {
            format!("PUBLISH key={key} value={} bytes ttl={ttl}", value.len())
        }
        other => other.name().to_string(),
    }
}

pub(super) fn zgp2_tuple<'a>(key: &'a str, t: Tuple<'a>) -> zgp2::Tuple<'a> {
    zgp2::Tuple {
        key,
        value: t.value,
        clock: t.version.clock,
        origin: t.version.origin,
        expires: t.expires,
        deleted: t.deleted,
        ephemeral: t.ephemeral,
    }
}

/// The plain (ZGP v1) PUBLISH of a stored tuple: its ttl field is the time
/// left to live in ms, 0 for none.
pub(super) fn plain_publish<'a>(key: &'a str, t: Tuple<'a>, now: Now) -> Message<'a> {
    let ttl = if t.expires == 0 {
        0
    } else {
        t.expires
            .saturating_sub(now.wall_ms)
            .clamp(1, u64::from(u32::MAX)) as u32
    };
    Message::Publish {
        key,
        value: t.value,
        ttl,
    }
}
