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
    /// The CURVE public key of the server at `endpoint`: dialled as a
    /// CURVE client of it (`None`: plain).
    pub(super) server_key: Option<[u8; 32]>,
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
            server_key: None,
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
        if let Some(r) = self.remotes.get_mut(remote) {
            r.server_key = key;
        }
    }

    /// The server key `remote` is dialled with (`None`: plain).
    pub fn remote_key(&self, remote: RemoteId) -> Option<[u8; 32]> {
        self.remotes.get(remote).and_then(|r| r.server_key)
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
        self.trace(format_args!("cannot reach remote {remote}: {reason}"));
        let overlay = self
            .remotes
            .get(remote)
            .filter(|r| r.overlay && !r.removed)
            .map(|r| r.endpoint.clone());
        self.schedule_redial(remote, now);
        if let Some(endpoint) = overlay {
            self.overlay_dial_failed(&endpoint, now);
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
