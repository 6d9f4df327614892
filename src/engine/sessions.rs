//! Connections from handshake to close, and the ZGP state machines on
//! them: the server side (zgossip.xml) and the client side (a remote).

use super::*;

impl Engine {
    /// A connection finished its handshake. For an outbound one we send
    /// HELLO, then every tuple we hold (plain ZGP) or nothing (ZGP/2: the
    /// server starts a set reconciliation).
    ///
    /// A driver that said when it opened the connection
    /// ([`Engine::handle_opened`]) has the limits counted from then on;
    /// otherwise they count from here.
    pub fn handle_connected(&mut self, conn: ConnId, role: Role, peer: Peer, now: Now) {
        self.last_now = now;
        let (meter, handshake_ms) = self.take_opening(conn, now);
        let handshake_bytes = meter.bytes_read;
        if let Some(ms) = handshake_ms {
            // A handshake takes two round trips or so (greeting, then
            // READY; CURVE a little more): a first measure of the link's,
            // for the tree's timers, on both sides of every connection.
            self.tree.observe_rtt(ms / 2);
        }
        self.conns.insert(
            conn,
            Conn {
                role,
                session: Session::Start,
                peer,
                next_sync: now.mono_ms + self.settings.sync_interval_ms,
                last_sync_rx: now.mono_ms,
                held: (peer.zgp2 && matches!(role, Role::Outbound(_))).then(Vec::new),
                hold_until: now.mono_ms + HOLD_MS,
                outbox: Vec::new(),
                outbox_pos: 0,
                last_rx: now.mono_ms,
                last_tx: now.mono_ms,
                closing: false,
                lost: false,
                farewell: false,
                rehello_until: 0,
                meter,
                sends: VecDeque::new(),
                after_sends: Vec::new(),
                over_limit: false,
                ping_sent_at: None,
                since_ms: now.mono_ms,
                traffic: metrics::Traffic {
                    // What the handshake read counts too.
                    bytes_in: handshake_bytes,
                    ..Default::default()
                },
                rtt_ms: None,
            },
        );
        if let Role::Outbound(remote) = role {
            if self.remotes.get(remote).is_some_and(|r| r.removed) {
                // Dialled before the remote was removed: not wanted now.
                if let Some(r) = self.remotes.get_mut(remote) {
                    r.dialing = false;
                }
                self.close(conn, "remote removed".to_string(), now);
                return;
            }
            if let Some(r) = self.remotes.get_mut(remote) {
                r.conn = Some(conn);
                r.dialing = false;
                r.redial_at = None;
                r.backoff_ms = self.settings.reconnect_ivl_ms;
            }
            self.trace(format_args!(
                "remote {conn} connected ({})",
                if peer.zgp2 { "ZGP/2" } else { "ZGP v1" }
            ));
            self.send_hello_and_tuples(conn, now);
        } else {
            self.trace(format_args!("client {conn} connected"));
        }
        self.ensure_tick(now);
        self.overlay_connected(conn, role, peer.zgp2, now);
    }

    /// A connection closed (by the peer or an error), whether its handshake
    /// had ended or not. Unknown ids are ignored.
    pub fn handle_closed(&mut self, conn: ConnId, now: Now) {
        if self.forget_opening(conn, now) {
            return;
        }
        if let Some(c) = self.conns.remove(&conn) {
            self.remember_usage(&c.meter, now);
            if c.closing {
                return;
            }
            self.trace(format_args!("connection {conn} closed"));
            if let Role::Outbound(remote) = c.role {
                self.schedule_redial(remote, now);
            }
            // Not this end's choice: the peer's, if it said so first;
            // else a reset, or the peer's end failed.
            let end = if c.farewell {
                membership::LinkEnd::Chosen
            } else {
                membership::LinkEnd::Reset
            };
            self.overlay_closed(conn, end, now);
        }
    }

    /// Asks the driver to flush and close a connection; from now on the
    /// engine sends nothing more on it and ignores what it receives.
    pub(super) fn close(&mut self, conn: ConnId, reason: String, now: Now) {
        self.close_with(conn, reason, None, now);
    }

    /// As [`close`](Self::close); with an `error` for the peer, the driver
    /// fails the connection with it instead of flushing (see
    /// [`Action::Close`]).
    pub(super) fn close_with(
        &mut self,
        conn: ConnId,
        reason: String,
        error: Option<String>,
        now: Now,
    ) {
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else {
            return;
        };
        c.closing = true;
        let role = c.role;
        let end = if c.lost {
            membership::LinkEnd::Silent
        } else {
            membership::LinkEnd::Chosen
        };
        self.trace(format_args!("closing connection {conn}: {reason}"));
        self.actions.push_back(Action::Close {
            conn,
            reason,
            error,
        });
        if let Role::Outbound(remote) = role {
            self.schedule_redial(remote, now);
        }
        self.overlay_closed(conn, end, now);
    }

    /// Closes a connection whose peer went silent past its timeout.
    pub(super) fn close_silent(&mut self, conn: ConnId, reason: String, now: Now) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.lost = true;
        }
        self.close(conn, reason, now);
    }

    /// One ZGP frame arrived on `conn`. `multipart` says the ZMTP message
    /// had more than one frame, which ZGP never sends. False when the frame
    /// made the connection exceed a limit (`limits/tuples-per-second`): it
    /// is closed (an [`Action::Close`] is queued) and the driver hands
    /// nothing more of it to the engine.
    pub fn handle_frame(&mut self, conn: ConnId, frame: &[u8], multipart: bool, now: Now) -> bool {
        self.frame(conn, frame, multipart, now);
        !self.take_refused(conn)
    }

    fn frame(&mut self, conn: ConnId, frame: &[u8], multipart: bool, now: Now) {
        self.last_now = now;
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else {
            return;
        };
        c.last_rx = now.mono_ms;
        c.meter.framed = true;
        c.traffic.frames_in += 1;
        let role = c.role;
        let session = c.session;
        self.stats.frames_in += 1;
        let speaks_zgp2 = c.peer.zgp2;
        if speaks_zgp2 && !multipart && zgp2::is_zgp2(frame) {
            match zgp2::decode(frame) {
                Ok(m) => self.zgp2_message(conn, role, session, m, frame, now),
                Err(e) => {
                    self.stats.malformed += 1;
                    self.close(conn, format!("malformed ZGP/2 message: {e}"), now);
                }
            }
            return;
        }
        let msg = if multipart {
            Err("multipart message (ZGP messages are one frame)".to_string())
        } else {
            gossip::decode(frame).map_err(|e| e.to_string())
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                self.trace(format_args!("malformed message on {conn}: {e}"));
                if role == Role::Inbound {
                    self.send(conn, &Message::Invalid, now);
                    self.stats.invalid_sent += 1;
                }
                self.close(conn, format!("malformed message: {e}"), now);
                return;
            }
        };
        if self.tracing_messages() {
            self.trace_message(format_args!(
                "{} {conn}: recv {}",
                role_name(role),
                describe(&msg)
            ));
        }
        match role {
            Role::Inbound => self.server_message(conn, session, msg, now),
            Role::Outbound(_) => self.client_message(conn, msg, now),
        }
    }

    /// The ZGP server state machine (zgossip.xml).
    pub(super) fn server_message(
        &mut self,
        conn: ConnId,
        session: Session,
        msg: Message<'_>,
        now: Now,
    ) {
        match (session, msg) {
            (_, Message::Ping) => {
                if session == Session::Expired {
                    // Alive after all: the session goes on.
                    self.set_session(conn, Session::Connected);
                }
                self.send(conn, &Message::Pong, now);
            }
            (Session::Start | Session::Expired | Session::Invalidated, Message::Hello) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = Session::Connected;
                    c.next_sync = now.mono_ms + self.settings.sync_interval_ms;
                }
                if self.speaks_zgp2(conn) {
                    self.start_sync(conn, now);
                    self.overlay_session_started(conn, now);
                } else {
                    self.send_all_tuples(conn, now);
                }
            }
            (Session::Connected, Message::Publish { key, value, ttl }) => {
                self.accept_v1(key, value, ttl, conn, now);
            }
            (Session::Expired, Message::Publish { key, value, ttl }) => {
                // CZMQ would drop this tuple for good. Keep it, and answer
                // INVALID as CZMQ does, so the client resends HELLO and
                // gets every tuple again.
                self.accept_v1(key, value, ttl, conn, now);
                self.send(conn, &Message::Invalid, now);
                self.stats.invalid_sent += 1;
                self.set_session(conn, Session::Invalidated);
            }
            (Session::Invalidated, Message::Publish { key, value, ttl }) => {
                self.accept_v1(key, value, ttl, conn, now);
            }
            (_, other) => {
                self.trace(format_args!(
                    "{} from client {conn} in state {:?}: INVALID, session forgotten",
                    other.name(),
                    session
                ));
                self.send(conn, &Message::Invalid, now);
                self.stats.invalid_sent += 1;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = Session::Start;
                }
            }
        }
    }

    /// Sends the forwards held on a new outbound connection.
    pub(super) fn release_held(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(held) = c.held.take() else {
            return;
        };
        if !held.is_empty() {
            let (out, dirty) = c.queue(self.settings.max_backlog_bytes);
            out.extend_from_slice(&held);
            if dirty {
                self.dirty.push(conn);
            }
        }
    }

    pub(super) fn set_session(&mut self, conn: ConnId, session: Session) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = session;
        }
    }

    /// What a remote (the ZGP client side) does with server messages.
    pub(super) fn client_message(&mut self, conn: ConnId, msg: Message<'_>, now: Now) {
        match msg {
            Message::Publish { key, value, ttl } => self.accept_v1(key, value, ttl, conn, now),
            // The server forgot our session: start over, resending every
            // tuple so that nothing sent into the forgotten session is lost.
            // Once per round trip: the INVALIDs that follow within it
            // answer frames sent before that HELLO (every tuple of the
            // restart among them, on a link that reorders), and starting
            // over for each would multiply the traffic without end.
            Message::Invalid => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if now.mono_ms < c.rehello_until {
                    return;
                }
                let hold = c.rtt_ms.unwrap_or(100).saturating_mul(2).clamp(20, 1_000);
                c.rehello_until = now.mono_ms + hold;
                self.send_hello_and_tuples(conn, now);
            }
            Message::Ping => self.send(conn, &Message::Pong, now),
            Message::Pong => {
                // The round trip of the link, for the tree's timers.
                if let Some(c) = self.conns.get_mut(&conn) {
                    if let Some(sent) = c.ping_sent_at.take() {
                        let rtt = now.mono_ms.saturating_sub(sent);
                        c.rtt_ms = Some(rtt);
                        self.tree.observe_rtt(rtt);
                    }
                }
            }
            Message::Hello => {
                self.trace(format_args!("unexpected HELLO from server {conn}, ignored"));
            }
        }
    }

    pub(super) fn speaks_zgp2(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.peer.zgp2)
    }
}
