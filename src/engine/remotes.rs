//! Remotes: the endpoints the node keeps connected (`CONNECT`, discovery),
//! dialled again with a backoff when their connection fails.

use super::*;

#[derive(Debug)]
pub(super) struct Remote {
    pub(super) endpoint: String,
    pub(super) conn: Option<ConnId>,
    pub(super) dialing: bool,
    pub(super) backoff_ms: u64,
    pub(super) redial_at: Option<u64>,
    /// Removed by [`Engine::remove_remote`]: never dialled again; the slot
    /// is reused once no dial is in flight.
    pub(super) removed: bool,
    /// The CURVE public keys of the server at `endpoint`: dialled as a
    /// CURVE client of one of them (empty: plain). Several during the
    /// server's key rotation: a dial that fails tries the next one.
    pub(super) server_keys: Vec<[u8; 32]>,
    /// Which of `server_keys` the next dial uses.
    pub(super) key_at: usize,
    /// Dialled for the overlay's views: tried once, never redialled (a
    /// peer that cannot be reached is replaced from the passive view).
    pub(super) overlay: bool,
}

impl Engine {
    /// Adds a remote endpoint to keep connected. Adding an endpoint that is
    /// already known sends HELLO and every tuple again on its connection
    /// (CZMQ's behaviour) instead of opening a second connection.
    pub fn add_remote(&mut self, endpoint: &str, now: Now) -> RemoteId {
        if let Some(id) = self
            .remotes
            .iter()
            .position(|r| !r.removed && !r.overlay && r.endpoint == endpoint)
        {
            if let Some(conn) = self.remotes[id].conn {
                self.send_hello_and_tuples(conn, now);
            }
            return id;
        }
        let remote = Remote {
            endpoint: endpoint.to_string(),
            conn: None,
            dialing: true,
            backoff_ms: self.settings.reconnect_ivl_ms,
            redial_at: None,
            removed: false,
            server_keys: Vec::new(),
            key_at: 0,
            overlay: false,
        };
        let id = self.add_remote_slot(remote);
        self.trace(format_args!("connecting to {endpoint}"));
        self.actions.push_back(Action::Dial {
            remote: id,
            endpoint: endpoint.to_string(),
        });
        id
    }

    /// Keeps `remote` in a free slot (one whose remote was removed and
    /// whose dial is over), or a new one.
    pub(super) fn add_remote_slot(&mut self, remote: Remote) -> RemoteId {
        let free = self
            .remotes
            .iter()
            .position(|r| r.removed && !r.dialing && r.conn.is_none());
        match free {
            Some(id) => {
                self.remotes[id] = remote;
                id
            }
            None => {
                self.remotes.push(remote);
                self.remotes.len() - 1
            }
        }
    }

    /// Stops keeping a remote connected: its connection is closed and it
    /// is never redialled. A dial in flight is closed when it completes.
    /// Unknown or already removed ids are ignored.
    pub fn remove_remote(&mut self, remote: RemoteId, now: Now) {
        let Some(r) = self.remotes.get_mut(remote).filter(|r| !r.removed) else {
            return;
        };
        r.removed = true;
        r.redial_at = None;
        let conn = r.conn.take();
        let endpoint = std::mem::take(&mut r.endpoint);
        self.trace(format_args!("forgetting remote {endpoint}"));
        if let Some(conn) = conn {
            self.close(conn, "remote removed".to_string(), now);
        }
    }

    /// Dials `remote` as a CURVE client of the server with this public key.
    pub fn set_remote_key(&mut self, remote: RemoteId, key: Option<[u8; 32]>) {
        self.set_remote_keys(remote, key.into_iter().collect());
    }

    /// Dials `remote` as a CURVE client of the server, which holds one of
    /// these public keys (empty: plain): the first first, the next one
    /// after a dial that fails (a server rotating its key holds the new
    /// and the old key for a while). A connection that is up stays.
    pub fn set_remote_keys(&mut self, remote: RemoteId, keys: Vec<[u8; 32]>) {
        if let Some(r) = self.remotes.get_mut(remote) {
            r.server_keys = keys;
            r.key_at = 0;
        }
    }

    /// The server key `remote`'s next dial uses (`None`: plain).
    pub fn remote_key(&self, remote: RemoteId) -> Option<[u8; 32]> {
        let r = self.remotes.get(remote)?;
        r.server_keys.get(r.key_at).copied()
    }

    /// The endpoint a remote dials (`None`: unknown or removed).
    pub fn remote_endpoint(&self, remote: RemoteId) -> Option<&str> {
        self.remotes
            .get(remote)
            .filter(|r| !r.removed)
            .map(|r| r.endpoint.as_str())
    }

    /// Endpoints of every remote, in the order they were added.
    pub fn remote_endpoints(&self) -> impl Iterator<Item = &str> {
        self.remotes
            .iter()
            .filter(|r| !r.removed && !r.overlay)
            .map(|r| r.endpoint.as_str())
    }

    /// Dialling a remote failed before its handshake completed.
    pub fn handle_dial_failed(&mut self, remote: RemoteId, reason: &str, now: Now) {
        self.dial_failed_as(remote, reason, false, now);
    }

    /// A dial found nobody there: the connection was refused, or went
    /// unanswered (timed out, host unreachable). Unlike other failures (no
    /// route from here, a handshake refused), this is evidence that the
    /// peer is down: an overlay dial of a member accuses it (see
    /// `docs/membership.md`).
    pub fn handle_dial_unanswered(&mut self, remote: RemoteId, reason: &str, now: Now) {
        self.dial_failed_as(remote, reason, true, now);
    }

    fn dial_failed_as(&mut self, remote: RemoteId, reason: &str, nobody_there: bool, now: Now) {
        self.trace(format_args!("cannot reach remote {remote}: {reason}"));
        if let Some(r) = self.remotes.get_mut(remote) {
            // The server may hold another of its keys by now.
            r.key_at = (r.key_at + 1) % r.server_keys.len().max(1);
        }
        let overlay = self
            .remotes
            .get(remote)
            .filter(|r| r.overlay && !r.removed)
            .map(|r| r.endpoint.clone());
        self.schedule_redial(remote, now);
        if let Some(endpoint) = overlay {
            self.overlay_dial_failed(&endpoint, nobody_there, now);
        }
    }

    pub(super) fn schedule_redial(&mut self, remote: RemoteId, now: Now) {
        let max = self.settings.reconnect_ivl_max_ms.max(1);
        if let Some(r) = self.remotes.get_mut(remote) {
            r.conn = None;
            r.dialing = false;
            if r.overlay {
                // One-shot: the slot is free again.
                r.removed = true;
                r.endpoint.clear();
            }
            if r.removed {
                r.redial_at = None;
                return;
            }
            let delay = r.backoff_ms.clamp(1, max);
            r.redial_at = Some(now.mono_ms + delay);
            r.backoff_ms = (delay * 2).min(max);
        }
        self.ensure_tick(now);
    }
}
