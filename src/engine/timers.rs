//! Timers: session expiry, idle connections, pings, reconciliation rounds,
//! redials, tombstone collection and time to live; and the deadlines of
//! the limits (handshakes, stalled frames; see `limits`).
//! [`Engine::poll_timeout`] covers them all.

use super::*;

impl Engine {
    /// When [`Engine::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let expiry = self.expiries.peek().map(|Reverse((wall, _))| {
            let n = self.last_now;
            n.mono_ms + wall.saturating_sub(n.wall_ms)
        });
        // Work but no tick planned (new settings, a tombstone on an idle
        // node): the next tick is due now.
        let tick = self
            .next_tick
            .or_else(|| self.busy().then_some(self.last_now.mono_ms));
        [
            tick,
            expiry,
            self.guards.poll_timeout(),
            self.overlay_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the ticks have something to look after: connections,
    /// redials, tombstones to collect.
    fn busy(&self) -> bool {
        !self.conns.is_empty()
            || self.remotes.iter().any(|r| r.redial_at.is_some())
            || self.store.entries() > self.store.len()
    }

    pub(super) fn tick_interval(&self) -> u64 {
        let s = &self.settings;
        (s.session_timeout_ms.min(s.ping_interval_ms) / 4).clamp(1, 250)
    }

    pub(super) fn ensure_tick(&mut self, now: Now) {
        let at = now.mono_ms + self.tick_interval();
        if self.next_tick.is_none_or(|t| t > at) {
            self.next_tick = Some(at);
        }
    }

    /// Runs timers due at `now`: expires silent inbound sessions, pings idle
    /// remotes, closes dead ones and redials those whose backoff ran out;
    /// closes connections whose handshake or a frame took too long.
    pub fn handle_timeout(&mut self, now: Now) {
        self.last_now = now;
        self.run_expiries(now);
        self.handle_overlay_timeout(now);
        if self.next_tick.is_none_or(|t| t <= now.mono_ms) {
            self.tick(now);
        }
        self.run_guards(now);
    }

    /// The periodic tick: sessions, pings, rounds, redials, collection.
    fn tick(&mut self, now: Now) {
        self.next_tick = None;
        if now.mono_ms >= self.next_gc {
            let s = &self.settings;
            let shortest = s.tombstone_grace_ms.min(s.expired_grace_ms);
            self.next_gc = now.mono_ms + (shortest / 10).clamp(1_000, 60_000);
            let n = self.store.collect_tombstones(
                now.wall_ms,
                s.tombstone_grace_ms,
                s.expired_grace_ms,
            );
            self.stats.tombstones_collected += n as u64;
        }
        let t = now.mono_ms;
        let s = self.settings.clone();
        let mut expire = Vec::new();
        let mut ping = Vec::new();
        let mut dead = Vec::new();
        let mut sync = Vec::new();
        let mut rehello = Vec::new();
        let mut idle = Vec::new();
        for (&id, c) in &self.conns {
            if c.closing {
                continue;
            }
            match c.role {
                Role::Inbound => {
                    // A ZGP/2 client PINGs three times per link timeout:
                    // silence that long means it is gone. A plain client
                    // may be silent for long (CZMQ's never PING); its
                    // session expires after the session timeout.
                    let limit = if c.peer.zgp2 {
                        s.link_timeout_ms
                    } else {
                        s.idle_timeout_ms.max(s.session_timeout_ms)
                    };
                    let silent = t.saturating_sub(c.last_rx);
                    if silent > limit {
                        idle.push((id, limit));
                    } else if !c.peer.zgp2
                        && c.session == Session::Connected
                        && silent > s.session_timeout_ms
                    {
                        expire.push(id);
                    } else if c.session == Session::Connected && c.peer.zgp2 && t >= c.next_sync {
                        sync.push(id);
                    }
                }
                Role::Outbound(_) => {
                    // A ZGP/2 server announced its link timeout: ping at a
                    // third of it, and give it up after twice that much
                    // silence (the server closes a silent link after its
                    // timeout; here an answer can be lost too, so one
                    // timeout of silence would come twice as often).
                    // A plain server gets `remote/ping-interval`.
                    let (interval, dead_after) = match c.peer.timeout_ms {
                        Some(peer) if c.peer.zgp2 => (
                            (peer / 3).max(1),
                            s.remote_timeout_ms.min(peer.max(1).saturating_mul(2)),
                        ),
                        Some(peer) => (
                            (peer / 3).clamp(1, s.ping_interval_ms.max(1)),
                            s.remote_timeout_ms,
                        ),
                        None => (s.ping_interval_ms, s.remote_timeout_ms),
                    };
                    if t.saturating_sub(c.last_rx) > dead_after {
                        dead.push(id);
                    } else if c.peer.zgp2
                        && t.saturating_sub(c.last_sync_rx) > s.sync_interval_ms.saturating_mul(3)
                    {
                        rehello.push(id);
                    } else if t.saturating_sub(c.last_tx) >= interval
                        || (t.saturating_sub(c.last_rx) >= interval
                            && c.ping_sent_at
                                .is_none_or(|p| t.saturating_sub(p) >= interval))
                    {
                        // Quiet one way or the other: a client that only
                        // sends (pushing writes its server already has)
                        // hears nothing back but PONGs, and must not take
                        // the silence for a dead link.
                        ping.push(id);
                    }
                }
            }
        }
        for id in expire {
            self.trace(format_args!("client {id} silent too long: session expired"));
            self.stats.sessions_expired += 1;
            if let Some(c) = self.conns.get_mut(&id) {
                c.session = Session::Expired;
            }
        }
        for id in ping {
            self.send(id, &Message::Ping, now);
            if let Some(c) = self.conns.get_mut(&id) {
                c.ping_sent_at.get_or_insert(now.mono_ms);
            }
        }
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.held.is_some() && t >= c.hold_until)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.release_held(id);
        }
        for id in rehello {
            self.trace(format_args!(
                "remote {id}: no sync round for long, HELLO again"
            ));
            if let Some(c) = self.conns.get_mut(&id) {
                c.last_sync_rx = t;
            }
            self.send(id, &Message::Hello, now);
        }
        for id in sync {
            if let Some(c) = self.conns.get_mut(&id) {
                c.next_sync = t + s.sync_interval_ms;
            }
            self.start_sync(id, now);
        }
        for id in dead {
            self.close_silent(id, "remote silent too long".to_string(), now);
        }
        for (id, limit) in idle {
            self.stats.idle_closed += 1;
            self.close_silent(id, format!("client silent for more than {limit} ms"), now);
        }
        self.bound_backlogs(now);
        for (id, r) in self.remotes.iter_mut().enumerate() {
            if r.redial_at.is_some_and(|at| at <= t) {
                r.redial_at = None;
                r.dialing = true;
                self.actions.push_back(Action::Dial {
                    remote: id,
                    endpoint: r.endpoint.clone(),
                });
            }
        }
        if self.busy() {
            self.ensure_tick(now);
        }
    }

    /// Rebuilds the expiry queue from the store when most of it is stale:
    /// a key refreshed with a long time to live leaves an element per
    /// refresh, and they must not pile up until the first one is due. The
    /// queue then holds one element per live tuple with an expiry; the
    /// rebuild costs a pass over the store once per that many refreshes.
    pub(super) fn prune_expiries(&mut self) {
        if self.expiries.len() <= 2 * self.store.len() + 1024 {
            return;
        }
        self.expiries = self
            .store
            .live()
            .filter(|(_, t)| t.expires != 0)
            .map(|(key, t)| Reverse((t.expires, key.into())))
            .collect();
    }

    /// Turns tuples whose time ran out into tombstones and tells the
    /// application. Every node does this at the same wall time, so no
    /// message is needed.
    pub(super) fn run_expiries(&mut self, now: Now) {
        while let Some(Reverse((wall, _))) = self.expiries.peek() {
            if *wall > now.wall_ms {
                break;
            }
            let Some(Reverse((_, key))) = self.expiries.pop() else {
                break;
            };
            if self.store.expire(&key, now.wall_ms) {
                if self.journal.is_some() {
                    if let Some(t) = self.store.get(&key) {
                        let w = Write {
                            value: "",
                            version: t.version,
                            expires: t.expires,
                            deleted: true,
                            ephemeral: false,
                        };
                        self.journal(&key, &w, now.wall_ms);
                    }
                }
                self.stats.expired += 1;
                self.trace(format_args!("{key} expired"));
                self.news.push(Kind::Expire, &key, "");
            }
        }
    }
}
