//! What one connection may cost the node, counted and timed by the engine
//! from the moment the driver opens it ([`Engine::handle_opened`]):
//!
//! - its handshake must end within `limits/handshake-timeout`;
//! - a frame must not stay incomplete for longer than
//!   `limits/frame-timeout` with no frame completing meanwhile (the driver
//!   says what its codec holds after each read, [`Engine::handle_partial`]);
//! - it may send at most `limits/tuples-per-second` tuples and
//!   `limits/bytes-per-second` bytes in a second (the driver reports the
//!   bytes it reads, [`Engine::handle_read`]); a reconnection from the same
//!   address within that second carries on its tuple count.
//!
//! A connection over a limit is closed with an [`Action::Close`] whose
//! `error` the driver sends the peer (a ZMTP `ERROR`) before it closes.

use std::collections::HashMap;
use std::net::IpAddr;

use super::*;

/// Per-connection usage in the current one-second window.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Usage {
    window_start_ms: u64,
    bytes: u64,
    tuples_base: u64,
}

impl Usage {
    /// Whether this window is still the current one at `now_ms` (a window
    /// lasts one second).
    pub(super) fn current(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.window_start_ms) < 1000
    }

    /// The usage a new connection from the same address starts with: this
    /// window's tuples, up to the limit, so that reconnecting does not
    /// reset `limits/tuples-per-second` (the new connection may talk, but
    /// not send another tuple this second). Bytes start afresh: a
    /// handshake must stay possible.
    pub(super) fn carried_over(&self, tuples_spent: u64, settings: &Settings) -> Usage {
        let spent = match settings.tuples_per_second {
            0 => 0,
            limit => tuples_spent.min(limit),
        };
        Usage {
            window_start_ms: self.window_start_ms,
            bytes: 0,
            // The new connection counts from 0: start its base below 0's
            // by what was already spent (as a wrapping offset).
            tuples_base: 0u64.wrapping_sub(spent),
        }
    }

    /// Tuples counted in this window, given the connection's running count.
    pub(super) fn tuples_in_window(&self, tuples_total: u64) -> u64 {
        tuples_total.wrapping_sub(self.tuples_base)
    }

    /// Accounts `bytes` read and the connection's running tuple count at
    /// `now_ms`; `Err` names the limit exceeded.
    pub(super) fn account(
        &mut self,
        settings: &Settings,
        now_ms: u64,
        bytes: u64,
        tuples_total: u64,
    ) -> Result<(), String> {
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            self.window_start_ms = now_ms;
            self.bytes = 0;
            self.tuples_base = tuples_total;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        if settings.bytes_per_second > 0 && self.bytes > settings.bytes_per_second {
            return Err(format!(
                "limits/bytes-per-second exceeded ({} bytes in a second, limit {})",
                self.bytes, settings.bytes_per_second
            ));
        }
        let tuples = tuples_total.wrapping_sub(self.tuples_base);
        if settings.tuples_per_second > 0 && tuples > settings.tuples_per_second {
            return Err(format!(
                "limits/tuples-per-second exceeded ({tuples} tuples in a second, limit {})",
                settings.tuples_per_second
            ));
        }
        Ok(())
    }
}

/// What the limits count and time for one connection, from its opening to
/// its close (it moves into the [`Conn`] when the handshake ends).
#[derive(Debug, Default)]
pub(super) struct Meter {
    /// The peer's address, if the driver gave one: its usage is carried
    /// over to a reconnection from there.
    addr: Option<IpAddr>,
    usage: Usage,
    /// Tuples received so far.
    tuples: u64,
    /// Bytes of an incomplete frame the driver's codec holds (as last
    /// reported), and since when a frame has been incomplete with no frame
    /// completing.
    held: usize,
    partial_since: Option<u64>,
    /// A frame was handled since the driver last reported what it holds.
    pub(super) framed: bool,
    /// Bytes read from the connection so far (for `METRICS`).
    pub(super) bytes_read: u64,
}

impl Meter {
    /// The peer's address, if the driver gave one.
    pub(super) fn addr(&self) -> Option<IpAddr> {
        self.addr
    }
}

/// A connection the driver opened whose handshake has not ended yet.
#[derive(Debug)]
pub(super) struct Opening {
    role: Role,
    born_ms: u64,
    meter: Meter,
}

/// The limits' state that outlives connections: the usage of connections
/// from an address that closed within the current second (a reconnection
/// carries it on), and when the limits next need a look.
#[derive(Debug, Default)]
pub(super) struct Guards {
    /// Connections opened, handshake not ended, in id order.
    opening: std::collections::BTreeMap<ConnId, Opening>,
    recent_usage: HashMap<IpAddr, (Usage, u64)>,
    /// The earliest handshake or frame deadline, or when the recent usage
    /// is pruned (never later than the first of them; a deadline that has
    /// gone, a frame that completed, only makes it early).
    at: Option<u64>,
    /// The connection the frame being handled made exceed a limit.
    refused: Option<ConnId>,
}

impl Guards {
    fn plan(&mut self, at: u64) {
        if self.at.is_none_or(|t| t > at) {
            self.at = Some(at);
        }
    }

    /// When [`Engine::run_guards`] wants to run.
    pub(super) fn poll_timeout(&self) -> Option<u64> {
        self.at
    }
}

impl Engine {
    /// A connection was opened (dialled or accepted), before its handshake:
    /// the engine times the handshake (`limits/handshake-timeout`) and
    /// counts what the connection costs from now on. `addr` is the peer's
    /// address, if it has one (an inbound TCP connection): a connection
    /// from an address whose connection closed within the current second
    /// carries on that connection's tuple count. Then
    /// [`Engine::handle_connected`] when the handshake ends, or
    /// [`Engine::handle_closed`].
    pub fn handle_opened(&mut self, conn: ConnId, role: Role, addr: Option<IpAddr>, now: Now) {
        self.last_now = now;
        let g = &mut self.guards;
        let usage = addr
            .and_then(|ip| g.recent_usage.get(&ip))
            .filter(|(u, _)| u.current(now.mono_ms))
            .map_or_else(Usage::default, |(u, spent)| {
                u.carried_over(*spent, &self.settings)
            });
        let meter = Meter {
            addr,
            usage,
            ..Meter::default()
        };
        g.opening.insert(
            conn,
            Opening {
                role,
                born_ms: now.mono_ms,
                meter,
            },
        );
        g.plan(handshake_deadline(now.mono_ms, &self.settings));
    }

    /// What the limits counted for `conn` before its handshake ended (a
    /// fresh count if the driver never said it opened it). A frame
    /// incomplete since then is timed on.
    /// With the meter, how long the handshake took (ms), if the driver
    /// said when it opened the connection.
    pub(super) fn take_opening(&mut self, conn: ConnId, now: Now) -> (Meter, Option<u64>) {
        let Some(o) = self.guards.opening.remove(&conn) else {
            return (Meter::default(), None);
        };
        if let Some(since) = o.meter.partial_since {
            self.guards.plan(frame_deadline(since, &self.settings));
        }
        (o.meter, Some(now.mono_ms.saturating_sub(o.born_ms)))
    }

    /// `bytes` were read from `conn`, before they are handled: counted
    /// against `limits/bytes-per-second`. False when that closes the
    /// connection (an [`Action::Close`] is queued): the driver hands
    /// nothing more of it to the engine.
    pub fn handle_read(&mut self, conn: ConnId, bytes: usize, now: Now) -> bool {
        let meter = match self.conns.get_mut(&conn) {
            Some(c) if c.closing => return true,
            Some(c) => {
                c.traffic.bytes_in += bytes as u64;
                &mut c.meter
            }
            None => match self.guards.opening.get_mut(&conn) {
                Some(o) => {
                    o.meter.bytes_read += bytes as u64;
                    &mut o.meter
                }
                None => return true,
            },
        };
        let why = match meter
            .usage
            .account(&self.settings, now.mono_ms, bytes as u64, meter.tuples)
        {
            Ok(()) => return true,
            Err(why) => why,
        };
        if self.guards.opening.contains_key(&conn) {
            self.drop_opening(conn, why.clone(), why, now);
        } else {
            self.close_with(conn, why.clone(), Some(why), now);
        }
        false
    }

    /// After a read from `conn`, the driver's codec holds `held` bytes of
    /// an incomplete frame: a frame that stays incomplete, with no frame
    /// completing, for longer than `limits/frame-timeout` closes the
    /// connection. (A driver may skip the call while nothing was held
    /// before or after.)
    pub fn handle_partial(&mut self, conn: ConnId, held: usize, now: Now) {
        let meter = match self.conns.get_mut(&conn) {
            Some(c) => &mut c.meter,
            None => match self.guards.opening.get_mut(&conn) {
                Some(o) => &mut o.meter,
                None => return,
            },
        };
        let progressed = held < meter.held || std::mem::take(&mut meter.framed);
        meter.partial_since = match (held, meter.partial_since) {
            (0, _) => None,
            (_, Some(since)) if !progressed => Some(since),
            _ => Some(now.mono_ms),
        };
        meter.held = held;
        if let Some(since) = meter.partial_since {
            let at = frame_deadline(since, &self.settings);
            self.guards.plan(at);
        }
    }

    /// Counts a tuple received on `conn` against
    /// `limits/tuples-per-second`; over it, the connection is closed and
    /// [`Engine::handle_frame`] tells the driver to stop.
    pub(super) fn count_tuple_in(&mut self, conn: ConnId, now: Now) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let m = &mut c.meter;
        m.tuples += 1;
        if let Err(why) = m.usage.account(&self.settings, now.mono_ms, 0, m.tuples) {
            self.guards.refused = Some(conn);
            self.close_with(conn, why.clone(), Some(why), now);
        }
    }

    /// Whether the frame just handled made `conn` exceed a limit (and
    /// clears that).
    pub(super) fn take_refused(&mut self, conn: ConnId) -> bool {
        self.guards.refused.take() == Some(conn)
    }

    /// A connection is forgotten: if its peer has an address and the
    /// current second's usage, a reconnection from there carries it on.
    pub(super) fn remember_usage(&mut self, meter: &Meter, now: Now) {
        let Some(ip) = meter.addr else {
            return;
        };
        if meter.usage.current(now.mono_ms) {
            let spent = meter.usage.tuples_in_window(meter.tuples);
            self.guards.recent_usage.insert(ip, (meter.usage, spent));
            // Pruned once the second is over (at most once a second).
            self.guards.plan(now.mono_ms + 1000);
        }
    }

    /// Forgets a connection whose handshake has not ended, if it is one
    /// (the driver closed it); true if it was.
    pub(super) fn forget_opening(&mut self, conn: ConnId, now: Now) -> bool {
        let Some(o) = self.guards.opening.remove(&conn) else {
            return false;
        };
        self.remember_usage(&o.meter, now);
        true
    }

    /// Closes a connection whose handshake has not ended, sending the
    /// peer `error` first.
    fn drop_opening(&mut self, conn: ConnId, reason: String, error: String, now: Now) {
        let Some(o) = self.guards.opening.remove(&conn) else {
            return;
        };
        self.remember_usage(&o.meter, now);
        self.trace(format_args!(
            "closing {} {conn} before its handshake ended: {reason}",
            role_name(o.role)
        ));
        self.actions.push_back(Action::Close {
            conn,
            reason,
            error: Some(error),
        });
    }

    /// Closes the connections whose handshake or a frame took too long,
    /// and forgets usage of a second that is over. Runs when
    /// [`Guards::poll_timeout`] is due.
    pub(super) fn run_guards(&mut self, now: Now) {
        if self.guards.at.is_none_or(|at| at > now.mono_ms) {
            return;
        }
        let t = now.mono_ms;
        let limit = self.settings.handshake_timeout_ms;
        let late: Vec<ConnId> = self
            .guards
            .opening
            .iter()
            .filter(|(_, o)| t.saturating_sub(o.born_ms) > limit)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            let why = format!("limits/handshake-timeout ({limit} ms) exceeded");
            self.drop_opening(id, why, "handshake timed out".into(), now);
        }
        let limit = self.settings.frame_timeout_ms;
        let stalled: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !c.closing
                    && c.meter
                        .partial_since
                        .is_some_and(|since| t.saturating_sub(since) > limit)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in stalled {
            self.stats.stalled_closed += 1;
            let why = format!("limits/frame-timeout ({limit} ms): a frame stalled");
            self.close_with(id, why, Some("frame timed out".into()), now);
        }
        self.guards.recent_usage.retain(|_, (u, _)| u.current(t));
        self.guards.at = self.next_guard(now);
    }

    /// Plans the limits' deadlines again (the limits changed).
    pub(super) fn replan_guards(&mut self) {
        self.guards.at = self.next_guard(self.last_now);
    }

    /// The earliest of the handshake and frame deadlines, and of the next
    /// pruning of the recent usage.
    fn next_guard(&self, now: Now) -> Option<u64> {
        let s = &self.settings;
        let handshakes = self
            .guards
            .opening
            .values()
            .map(|o| handshake_deadline(o.born_ms, s));
        let frames = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing)
            .filter_map(|(_, c)| c.meter.partial_since)
            .map(|since| frame_deadline(since, s));
        let prune = (!self.guards.recent_usage.is_empty()).then_some(now.mono_ms + 1000);
        handshakes.chain(frames).chain(prune).min()
    }
}

/// When a connection opened at `born_ms` has run out of
/// `limits/handshake-timeout` (the first millisecond past it).
fn handshake_deadline(born_ms: u64, s: &Settings) -> u64 {
    born_ms
        .saturating_add(s.handshake_timeout_ms)
        .saturating_add(1)
}

/// When a frame incomplete since `since` has stalled past
/// `limits/frame-timeout`.
fn frame_deadline(since: u64, s: &Settings) -> u64 {
    since.saturating_add(s.frame_timeout_ms).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reconnection within the same second carries on the tuple count of
    /// the connection it replaces: the per-second limit does not reset.
    #[test]
    fn a_per_second_limit_survives_a_reconnection() {
        let limits = Settings {
            tuples_per_second: 100,
            ..Settings::default()
        };
        let mut first = Usage::default();
        assert!(first.account(&limits, 5_000, 0, 0).is_ok());
        assert!(first.account(&limits, 5_005, 0, 100).is_ok());
        assert!(first.account(&limits, 5_010, 0, 101).is_err());
        let spent = first.tuples_in_window(101);
        assert_eq!(spent, 101);
        assert!(first.current(5_999) && !first.current(6_000));
        // The new connection counts its tuples from 0: it may talk, not
        // send another tuple this second.
        let mut second = first.carried_over(spent, &limits);
        assert!(second.account(&limits, 5_020, 64, 0).is_ok());
        assert!(second.account(&limits, 5_021, 0, 1).is_err());
        // The next second starts afresh.
        let mut third = first.carried_over(spent, &limits);
        assert!(third.account(&limits, 6_001, 0, 1).is_ok());
        assert!(third.account(&limits, 6_002, 0, 100).is_ok());
    }

    #[test]
    fn usage_windows() {
        let limits = Settings {
            bytes_per_second: 100,
            tuples_per_second: 3,
            ..Settings::default()
        };
        let mut u = Usage::default();
        assert!(u.account(&limits, 0, 60, 0).is_ok());
        assert!(u.account(&limits, 500, 60, 0).is_err());
        let mut u = Usage::default();
        assert!(u.account(&limits, 0, 1, 3).is_ok());
        assert!(u
            .account(&limits, 999, 1, 4)
            .unwrap_err()
            .contains("tuples"));
        assert!(u.account(&limits, 1000, 1, 7).is_ok(), "new window");
    }
}
