//! The overlay in the engine: the views (`views.rs`) and the broadcast
//! tree (`tree.rs`) joined to connections, remotes and the store.
//!
//! - The views' dials become one-shot remotes (never redialled: a failed
//!   overlay peer is replaced from the passive view instead); their
//!   connections are handed to the views once the handshake is done, and
//!   closed connections are reported back.
//! - Every ZGP/2 connection is a tree link, fixed (`CONNECT`) or made by
//!   the views alike; plain (ZGP v1) connections are not, and get every
//!   write as before.
//! - The tree asks whether a write is held; the store answers (a version of
//!   the key at least as new).

use super::tree::Mode;
use super::views::{Intent, ViewAction};
use super::*;
use crate::wire::overlay::{self, PeerEntry, WriteId};

/// Counters and sizes of the overlay, for `STATS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverlayStats {
    pub active: usize,
    pub passive: usize,
    pub eager: usize,
    pub lazy: usize,
    /// How long an announced write may take before it is pulled, now.
    pub graft_timeout_ms: u64,
    pub views: views::ViewStats,
    pub tree: tree::TreeStats,
    pub root: tree_root::RootStats,
}

impl Engine {
    /// The endpoint other nodes dial to reach this one (the overlay tells
    /// it to them). Empty: this node does not listen.
    pub fn set_endpoint(&mut self, endpoint: &str) {
        self.views.set_endpoint(endpoint);
        // Only a node that listens may root the broadcast tree.
        let now = self.last_now;
        self.tree_root
            .set_candidate(!endpoint.is_empty(), now.mono_ms);
        self.guide_tree();
        self.run_overlay(now);
        self.membership.set_endpoint(endpoint, now.mono_ms);
        self.run_membership(now);
    }

    /// This node's CURVE public key, told to overlay peers (`None`: the
    /// node speaks plain).
    pub fn set_public_key(&mut self, key: Option<[u8; 32]>) {
        self.views.set_key(key);
    }

    /// This node's primary key changed on a running node (`KEYRING USE`):
    /// told to overlay peers from now on, and re-announced at once to the
    /// active ones, so they dial it with the new key.
    pub fn announce_public_key(&mut self, key: Option<[u8; 32]>, now: Now) {
        self.views.announce_key(key);
        self.run_overlay(now);
    }

    /// The endpoint the overlay tells others (empty until set).
    pub fn endpoint(&self) -> &str {
        &self.views.me().endpoint
    }

    /// Joins the overlay through a member at `endpoint` (`JOIN`), dialled
    /// as a CURVE client of `key` when given.
    pub fn join(&mut self, endpoint: &str, key: Option<[u8; 32]>, now: Now) {
        self.views.join(endpoint, key, now.mono_ms);
        self.run_overlay(now);
    }

    /// A DNS seed (`JOIN dns:NAME:PORT`) resolved to `endpoints`
    /// (`tcp://address:port`): addresses new since its last answer are
    /// joined through, within the views' bounds (`Views::seed_resolved`).
    /// The driver resolves; the engine only hears the answers.
    pub fn seed_resolved(
        &mut self,
        seed: &str,
        endpoints: &[String],
        key: Option<[u8; 32]>,
        now: Now,
    ) {
        self.views.seed_resolved(seed, endpoints, key, now.mono_ms);
        self.run_overlay(now);
    }

    /// A member heard of by discovery: joined through if this node is
    /// alone, else kept as a passive peer.
    pub fn add_candidate(&mut self, id: u64, endpoint: &str, key: Option<[u8; 32]>, now: Now) {
        let peer = PeerEntry {
            id,
            endpoint: endpoint.to_string(),
            key,
        };
        self.views.candidate(peer, now.mono_ms);
        self.run_overlay(now);
    }

    /// Discovery heard `id`, a node with overlay links whose part of the
    /// overlay has anchor `anchor`: a smaller anchor than ours is another
    /// part, joined through it (see `Views::heard_anchor`).
    pub fn heard_anchor(
        &mut self,
        id: u64,
        endpoint: &str,
        key: Option<[u8; 32]>,
        anchor: u64,
        now: Now,
    ) {
        let peer = PeerEntry {
            id,
            endpoint: endpoint.to_string(),
            key,
        };
        self.views.heard_anchor(peer, anchor, now.mono_ms);
        self.run_overlay(now);
    }

    /// The smallest node id this node knows in its part of the overlay
    /// (its own while it has no overlay link). Discovery beacons it.
    pub fn overlay_anchor(&self) -> u64 {
        self.views.anchor()
    }

    /// Leaves the overlay and starts over: every link the views made is
    /// closed (with `reason`), the views forget every member; `JOIN`
    /// contacts stay and are dialled again. `CONNECT` links stay.
    pub fn restart_overlay(&mut self, reason: &str, now: Now) {
        for conn in self.views.reset() {
            self.close(conn, reason.to_string(), now);
        }
        self.run_overlay(now);
    }

    /// A member heard of by discovery went silent: not dialled any more
    /// (a link to it stays while it works).
    pub fn forget_candidate(&mut self, id: u64) {
        self.views.forget(id);
    }

    /// The overlay's sizes and counters.
    pub fn overlay_stats(&self) -> OverlayStats {
        let (eager, lazy) = self.tree.counts();
        OverlayStats {
            active: self.views.active_len(),
            passive: self.views.passive().len(),
            eager,
            lazy,
            graft_timeout_ms: self.tree.graft_timeout(),
            views: self.views.stats,
            tree: self.tree.stats,
            root: self.tree_root.stats,
        }
    }

    /// The active peers: (connection, node id, endpoint).
    pub fn active_peers(&self) -> Vec<(ConnId, u64, String)> {
        self.views
            .active()
            .map(|(c, p)| (c, p.id, p.endpoint.clone()))
            .collect()
    }

    /// The passive peers: (node id, endpoint).
    pub fn passive_peers(&self) -> Vec<(u64, String)> {
        self.views
            .passive()
            .iter()
            .map(|p| (p.id, p.endpoint.clone()))
            .collect()
    }

    /// How writes go on `conn`: `Some(true)` pushed, `Some(false)`
    /// announced, `None` not a tree link (plain peers get every write).
    pub fn link_is_eager(&self, conn: ConnId) -> Option<bool> {
        self.tree.mode(conn).map(|m| m == Mode::Eager)
    }

    /// An overlay message arrived on a ZGP/2 connection.
    pub(super) fn on_overlay(&mut self, conn: ConnId, msg: overlay::Message, now: Now) {
        match msg {
            overlay::Message::IHave(ids) => {
                let store = &self.store;
                let held = |id: &WriteId| {
                    store.get(&id.key).is_some_and(|t| {
                        t.version
                            >= Version {
                                clock: id.clock,
                                origin: id.origin,
                            }
                    })
                };
                self.tree.announced(conn, ids, held, now.mono_ms);
            }
            overlay::Message::Graft(ids) => {
                self.tree.grafted(conn);
                for id in ids {
                    let wanted = Version {
                        clock: id.clock,
                        origin: id.origin,
                    };
                    if self.store.get(&id.key).is_some_and(|t| t.version >= wanted) {
                        self.send_tuple_to(conn, &id.key, now);
                    }
                }
            }
            overlay::Message::Prune => self.tree.pruned(conn),
            overlay::Message::Root(advert) => {
                self.tree_root.heard(conn, advert, now.mono_ms);
                self.guide_tree();
            }
            overlay::Message::RootRequest { root, seq } => {
                self.tree_root.request(conn, root, seq, now.mono_ms);
            }
            mut other => {
                if let overlay::Message::Disconnect { .. } = other {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.farewell = true;
                    }
                }
                // A node bound to a wildcard address names itself
                // `tcp://*:PORT`: it is where this connection comes from.
                if let overlay::Message::Join(peer)
                | overlay::Message::Neighbor { peer, .. }
                | overlay::Message::NeighborReply { peer, .. } = &mut other
                {
                    let addr = self.conns.get(&conn).and_then(|c| c.peer.addr);
                    peer.endpoint = overlay::resolve_wildcard(&peer.endpoint, addr);
                }
                self.views.handle_message(conn, other, now.mono_ms);
                if self.views.is_active(conn) && !self.tree_root.has_link(conn) {
                    self.overlay_session_started(conn, now);
                }
            }
        }
        self.run_overlay(now);
    }

    /// A connection finished its handshake: a ZGP/2 one joins the tree,
    /// and one the views dialled carries their request.
    pub(super) fn overlay_connected(&mut self, conn: ConnId, role: Role, zgp2: bool, now: Now) {
        if zgp2 {
            self.tree.link_up(conn);
        }
        let Role::Outbound(remote) = role else {
            // The root is told once the client's HELLO has come
            // (`overlay_session_started`).
            return;
        };
        let Some(r) = self.remotes.get(remote).filter(|r| r.overlay) else {
            // A fixed link (`CONNECT`): in the root's tree once the server
            // has answered (`overlay_server_answered`).
            return;
        };
        let endpoint = r.endpoint.clone();
        if zgp2 {
            self.views.link_up(conn, &endpoint, now.mono_ms);
        } else {
            self.views.dial_useless(&endpoint, now.mono_ms);
            self.close(conn, "overlay peer does not speak ZGP/2".into(), now);
        }
        self.run_overlay(now);
    }

    /// The server of a link this node dialled answered its HELLO (a
    /// reconciliation round): a fixed link joins the root's tree. Not
    /// before: a `ROOT` that overtook the HELLO would be refused.
    pub(super) fn overlay_server_answered(&mut self, conn: ConnId, role: Role, now: Now) {
        let Role::Outbound(remote) = role else {
            return;
        };
        let fixed = self.remotes.get(remote).is_some_and(|r| !r.overlay);
        if fixed && !self.tree_root.has_link(conn) {
            self.overlay_session_started(conn, now);
        }
    }

    /// ZGP/2 messages may flow on `conn` both ways (the client sent HELLO,
    /// the server of a fixed link answered, or the views made the link
    /// they dialled active): it joins the root's tree, and is told the
    /// root. A link the views dialled joins only once its request is
    /// accepted: a neighbour request may be refused and the link closed,
    /// and a link taken as the way to the root for that moment would
    /// detach the node.
    pub(super) fn overlay_session_started(&mut self, conn: ConnId, now: Now) {
        if self.tree.mode(conn).is_some() {
            self.tree_root.link_up(conn, now.mono_ms, now.wall_ms);
            self.guide_tree();
            self.run_overlay(now);
            self.membership_link_up(conn, now);
        }
    }

    /// A connection closed (either side): the tree and the views forget
    /// it; an active peer lost is replaced.
    pub(super) fn overlay_closed(&mut self, conn: ConnId, end: membership::LinkEnd, now: Now) {
        self.membership_link_down(conn, end, now);
        self.tree.link_down(conn);
        self.tree_root.link_down(conn, now.mono_ms);
        self.guide_tree();
        self.views.link_down(conn, now.mono_ms);
        self.run_overlay(now);
    }

    /// A dial of the views failed (`nobody_there`: refused or unanswered).
    pub(super) fn overlay_dial_failed(&mut self, endpoint: &str, nobody_there: bool, now: Now) {
        self.views.dial_failed(endpoint, nobody_there, now.mono_ms);
        self.run_overlay(now);
    }

    /// The overlay's timers.
    pub(super) fn overlay_timeout(&self) -> Option<u64> {
        [
            self.views.poll_timeout(),
            self.tree.poll_timeout(),
            self.tree_root.poll_timeout(),
            self.membership.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn handle_overlay_timeout(&mut self, now: Now) {
        if self.views.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
            self.views.handle_timeout(now.mono_ms);
        }
        if self.tree.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
            self.tree.handle_timeout(now.mono_ms);
        }
        if self
            .tree_root
            .poll_timeout()
            .is_some_and(|t| t <= now.mono_ms)
        {
            self.tree_root.handle_timeout(now.mono_ms);
            self.guide_tree();
        }
        self.handle_membership_timeout(now);
        self.run_overlay(now);
    }

    /// A write we held came again on `conn`.
    pub(super) fn overlay_duplicate(&mut self, conn: ConnId, now: Now) {
        self.tree.duplicate(conn, now.mono_ms);
        self.run_overlay(now);
    }

    /// A write reached the store (from anywhere): it is no longer waited
    /// for.
    pub(super) fn overlay_received(&mut self, key: &str, version: Version, now: Now) {
        if self.tree.missing_len() > 0 {
            self.tree
                .received(key, version.clock, version.origin, now.mono_ms);
        }
    }

    /// Carries out what the views and the tree asked for.
    pub(super) fn run_overlay(&mut self, now: Now) {
        loop {
            let mut acted = false;
            while let Some(a) = self.views.poll_action() {
                acted = true;
                match a {
                    ViewAction::Send { conn, msg } => self.send_overlay(conn, msg, now),
                    ViewAction::Dial { endpoint, intent } => self.dial_overlay(endpoint, intent),
                    ViewAction::Close { conn, reason } => self.close(conn, reason.into(), now),
                    ViewAction::Unreachable { id } => self.member_unreachable(id, now),
                }
            }
            while let Some(tree::TreeAction::Send { conn, msg }) = self.tree.poll_action() {
                acted = true;
                self.send_overlay(conn, msg, now);
            }
            while let Some((conn, msg)) = self.tree_root.poll_action() {
                acted = true;
                self.send_overlay(conn, msg, now);
            }
            if !acted {
                return;
            }
        }
    }

    /// Tells the tree which links the root's tree is made of.
    fn guide_tree(&mut self) {
        let Engine {
            tree, tree_root, ..
        } = self;
        for conn in tree_root.link_ids() {
            tree.guide(conn, tree_root.is_tree_link(conn));
        }
    }

    /// The node is shutting down: it takes no more part in the root's
    /// election (it would keep answering every wave of `ROOT` with its
    /// own, and its output would never drain while it lingers).
    pub fn quiet_overlay(&mut self) {
        let now = self.last_now;
        self.tree_root
            .set_settings(0, self.settings.tree.root_timeout_ms, now.mono_ms);
        self.guide_tree();
    }

    /// The tree's root as this node knows it: (root id, level, detached).
    pub fn tree_root(&self) -> (u64, u8, bool) {
        self.tree_root.root()
    }

    /// Whether `conn` joins this node to its parent or to a child in the
    /// root's tree (`None`: the root has no word of it yet, or it is not
    /// a tree link).
    pub fn tree_link(&self, conn: ConnId) -> Option<bool> {
        self.tree_root.is_tree_link(conn)
    }

    fn dial_overlay(&mut self, endpoint: String, intent: Intent) {
        let (what, server_key) = match intent {
            Intent::Join { key } => ("join through", key),
            Intent::Neighbor { peer, .. } => ("ask to be a neighbour", peer.key),
        };
        self.trace(format_args!("overlay: {what} {endpoint}"));
        let remote = Remote {
            endpoint: endpoint.clone(),
            conn: None,
            dialing: true,
            backoff_ms: self.settings.reconnect_ivl_ms,
            redial_at: None,
            removed: false,
            server_keys: server_key.into_iter().collect(),
            key_at: 0,
            overlay: true,
        };
        let id = self.add_remote_slot(remote);
        self.actions.push_back(Action::Dial {
            remote: id,
            endpoint,
        });
    }

    /// Sends an overlay message on a ZGP/2 connection; an announcement
    /// longer than the peer accepts goes in several.
    fn send_overlay(&mut self, conn: ConnId, msg: overlay::Message, now: Now) {
        self.send_zgp2(conn, msg, now);
    }
}
