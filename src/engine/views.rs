//! The overlay's views, in the manner of HyParView (Leitao, Pereira,
//! Rodrigues, DSN 2007): a small *active view* of peers this node keeps a
//! connection to, and a larger *passive view* of members it knows of, kept
//! fresh by shuffles and used to replace an active peer that fails.
//!
//! A pure state machine: messages, link events and the time go in; what to
//! send, dial and close comes out ([`ViewAction`]). It knows peers by node
//! id and endpoint and links by the driver's connection ids; the engine
//! (`overlay.rs`) carries its actions out.
//!
//! Where this differs from the paper, and why (`docs/overlay.md` says more):
//! - Joining a peer means dialling it: an active link is one connection,
//!   and the connection doubles as the failure detector.
//! - A shuffle walks the active links like the paper's, but the node where
//!   it stops answers the node it came *from* (on that open connection)
//!   instead of opening a temporary connection to the origin. Both ends of
//!   every exchange learn a fresh sample, and no connection is made for it.
//! - A node below its active size asks a passive peer to join it (low
//!   priority, which a full node refuses) at every shuffle period, not only
//!   after a failure, so views heal after partitions too.
//! - When two nodes dial each other at once, both keep the connection
//!   dialled by the node with the smaller id.

use std::collections::{BTreeMap, VecDeque};

use super::ConnId;
use crate::rng::Rng;
use crate::wire::overlay::{endpoint_is_dialable, Message, PeerEntry};

/// The views' settings (`overlay/*`; `docs/overlay.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSettings {
    /// Most peers in the active view.
    pub active_max: usize,
    /// Most members in the passive view.
    pub passive_max: usize,
    /// Hops a forwarded join walks (ARWL).
    pub active_walk: u8,
    /// The hop count at which a forwarded join is kept in the passive view
    /// (PRWL).
    pub passive_walk: u8,
    /// Period of shuffles and of filling the active view.
    pub shuffle_interval_ms: u64,
    /// Active and passive peers a shuffle carries (besides the sender).
    pub shuffle_active: usize,
    pub shuffle_passive: usize,
    /// How long a dial and its JOIN or NEIGHBOR may take before it counts
    /// as failed.
    pub request_timeout_ms: u64,
    /// How long a peer whose link failed, or that could not be reached, is
    /// remembered and tried again now and then (one per shuffle period):
    /// so two sides of a healed partition find each other.
    pub failed_keep_ms: u64,
}

impl Default for ViewSettings {
    fn default() -> ViewSettings {
        ViewSettings {
            active_max: 5,
            passive_max: 30,
            active_walk: 6,
            passive_walk: 3,
            shuffle_interval_ms: 10_000,
            shuffle_active: 3,
            shuffle_passive: 4,
            request_timeout_ms: 5_000,
            failed_keep_ms: 3_600_000,
        }
    }
}

/// Why the views asked for a dial; said back with the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// A contact (`JOIN endpoint`, or the first node found by discovery):
    /// send JOIN. `key`: its CURVE public key, if known.
    Join { key: Option<[u8; 32]> },
    /// A known member asked to become an active peer.
    Neighbor { peer: PeerEntry, high: bool },
}

/// What the driver must do for the views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewAction {
    Send {
        conn: ConnId,
        msg: Message,
    },
    /// Open a connection to `endpoint`; report with [`Views::link_up`] or
    /// [`Views::dial_failed`].
    Dial {
        endpoint: String,
        intent: Intent,
    },
    /// Close this connection once what was sent on it has gone.
    Close {
        conn: ConnId,
        reason: &'static str,
    },
    /// A dial to member `id` found no one there (refused, or no answer
    /// within `overlay/request-timeout`): evidence for the membership that
    /// it may have failed, whoever else observes it.
    Unreachable {
        id: u64,
    },
}

/// Counters of the views.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewStats {
    pub joins: u64,
    pub forward_joins: u64,
    pub neighbors_accepted: u64,
    pub neighbors_refused: u64,
    pub shuffles: u64,
    pub disconnects: u64,
    pub promotions: u64,
    pub evictions: u64,
    /// Joins made to merge this node's part of the overlay with another
    /// that discovery heard of (a smaller anchor).
    pub merges: u64,
    /// Overlay messages that made no sense where they came (a forward join
    /// on a link that is not active, a reply nobody asked for, the node's
    /// own id): ignored.
    pub ignored: u64,
    /// Joins dialled to an address a DNS seed resolved to.
    pub seed_joins: u64,
    /// Peers' new keys taken from the peers themselves (a peer that
    /// rotated its key re-announced it, or its beacon carried it): every
    /// entry held for that node dials the new key from now on.
    pub rekeys: u64,
    /// Addresses of DNS answers left out: beyond what a seed keeps
    /// ([`Views::seed_limit`]) or not dialable.
    pub seed_dropped: u64,
}

/// A DNS seed (`JOIN dns:NAME:PORT`) as the views know it: the endpoints
/// of its last answer, at most [`Views::seed_limit`] of them, and the key
/// to dial them with.
#[derive(Debug, Clone, Default)]
struct Seed {
    endpoints: Vec<String>,
    key: Option<[u8; 32]>,
}

#[derive(Debug, Clone)]
struct ActivePeer {
    conn: ConnId,
    peer: PeerEntry,
    /// We dialled this connection.
    dialled: bool,
}

#[derive(Debug, Clone)]
struct Request {
    intent: Intent,
    since: u64,
}

/// The active and passive views of one node.
#[derive(Debug)]
pub struct Views {
    me: PeerEntry,
    settings: ViewSettings,
    rng: Rng,
    active: Vec<ActivePeer>,
    passive: Vec<PeerEntry>,
    /// Dials in flight, by endpoint.
    dialling: BTreeMap<String, Request>,
    /// Connections up on which our JOIN or NEIGHBOR waits for its answer.
    asking: BTreeMap<ConnId, Request>,
    /// Endpoints (and keys) given to `join`: dialled again while the node
    /// is alone.
    contacts: Vec<(String, Option<[u8; 32]>)>,
    /// DNS seeds, by name (`dns:NAME:PORT`): their addresses are joined
    /// when they first appear in an answer, and dialled again (a few)
    /// while the node is alone. The driver resolves; the views only get
    /// the answers ([`Views::seed_resolved`]).
    seeds: BTreeMap<String, Seed>,
    /// Peers whose link failed or that could not be reached, with when:
    /// tried again one per shuffle period, forgotten after
    /// `failed_keep_ms`; at most `passive_max`.
    failed: Vec<(PeerEntry, u64)>,
    /// What the last shuffle we started carried (evicted first when the
    /// answer arrives and the passive view is full).
    last_shuffle: Vec<PeerEntry>,
    next_shuffle: Option<u64>,
    /// The smallest node id known in this node's part of the overlay: its
    /// own while alone, then the smallest its active peers tell
    /// (`ANCHOR`). Nodes that start together may link up in separate
    /// groups, each full and none knowing of the others; discovery hears
    /// every node, so a node that hears a linked node with a smaller
    /// anchor joins through it, and the groups become one.
    anchor: u64,
    /// An active peer has told us its anchor since we last had none: our
    /// anchor is our part's, not only our own id. Until then a smaller
    /// anchor heard of proves nothing (it may be our new part's, on its
    /// way), and no merge is made.
    anchor_told: bool,
    /// A merge waiting to be made: the node heard of and its anchor, and
    /// when to join through it unless our anchor has come down by then.
    merge: Option<(PeerEntry, u64, u64)>,
    /// When the last merge was made (one per shuffle period at most).
    last_merge: Option<u64>,
    /// Keys nodes have moved away from, as the nodes themselves told
    /// (node id, old key, its key now): an entry heard second-hand (a
    /// shuffle sample taken before the rotation) that still carries an
    /// old key is taken with the new one, so hearsay never brings a
    /// retired key back. At most [`REKEYED_MAX`], oldest dropped first.
    rekeyed: VecDeque<(u64, [u8; 32], [u8; 32])>,
    out: VecDeque<ViewAction>,
    pub stats: ViewStats,
}

/// How long a merge waits, at least, for the smaller anchor to arrive
/// through the node's own links (it may be news in its own part,
/// spreading), ms; at most three times as long (drawn at random).
pub const MERGE_WAIT_MS: u64 = 1_000;

/// How many key changes of other nodes the views remember.
pub const REKEYED_MAX: usize = 64;

impl Views {
    pub fn new(me: PeerEntry, settings: ViewSettings, seed: u64) -> Views {
        Views {
            anchor: me.id,
            anchor_told: false,
            me,
            settings,
            rng: Rng::new(seed),
            active: Vec::new(),
            passive: Vec::new(),
            dialling: BTreeMap::new(),
            asking: BTreeMap::new(),
            contacts: Vec::new(),
            seeds: BTreeMap::new(),
            failed: Vec::new(),
            last_shuffle: Vec::new(),
            next_shuffle: None,
            merge: None,
            last_merge: None,
            rekeyed: VecDeque::new(),
            out: VecDeque::new(),
            stats: ViewStats::default(),
        }
    }

    pub fn me(&self) -> &PeerEntry {
        &self.me
    }

    /// The endpoint others dial to reach this node (set once it listens).
    pub fn set_endpoint(&mut self, endpoint: &str) {
        self.me.endpoint = endpoint.to_string();
    }

    /// This node's CURVE public key, told to others so they dial it as
    /// CURVE clients.
    pub fn set_key(&mut self, key: Option<[u8; 32]>) {
        self.me.key = key;
    }

    /// This node's primary key changed (`KEYRING USE`): from now on its
    /// entry carries `key`, and each active peer is told at once with an
    /// unrequested `NEIGHBOR-REPLY` (accepted) carrying the entry, so it
    /// dials the new key when the link is lost and passes it on in its
    /// shuffles. Peers that do not know this use of the message ignore it
    /// (and learn the key from the next JOIN, NEIGHBOR or shuffle).
    pub fn announce_key(&mut self, key: Option<[u8; 32]>) {
        if self.me.key == key {
            return;
        }
        self.me.key = key;
        let conns: Vec<ConnId> = self.active.iter().map(|a| a.conn).collect();
        for conn in conns {
            self.send(
                conn,
                Message::NeighborReply {
                    accepted: true,
                    peer: self.me.clone(),
                },
            );
        }
    }

    /// What node `peer.id` says of itself (its JOIN, NEIGHBOR or
    /// NEIGHBOR-REPLY on its own link, `on_link`; or its beacon): its key
    /// replaces the key of every entry held for it (active, passive,
    /// failed), and a key replaced is remembered as one it moved away
    /// from. A link's word also gives the key of a `JOIN` contact at its
    /// endpoint (a beacon's does not: anyone can send one).
    fn first_hand(&mut self, peer: &PeerEntry, on_link: bool) {
        let Some(key) = peer.key else {
            return;
        };
        if peer.id == self.me.id {
            return;
        }
        let mut old = Vec::new();
        let entries = self
            .active
            .iter_mut()
            .map(|a| &mut a.peer)
            .chain(self.passive.iter_mut())
            .chain(self.failed.iter_mut().map(|(p, _)| p));
        for p in entries.filter(|p| p.id == peer.id) {
            if let Some(k) = p.key.filter(|&k| k != key) {
                old.push(k);
            }
            p.key = Some(key);
        }
        if on_link && !peer.endpoint.is_empty() {
            for contact in self.contacts.iter_mut() {
                if contact.0 == peer.endpoint && contact.1.is_some_and(|k| k != key) {
                    contact.1 = Some(key);
                }
            }
        }
        // Back on a key it had: no longer one it moved away from.
        self.rekeyed.retain(|&(id, k, _)| id != peer.id || k != key);
        for (id, _, now) in self.rekeyed.iter_mut() {
            if *id == peer.id {
                *now = key;
            }
        }
        old.sort_unstable();
        old.dedup();
        if !old.is_empty() {
            self.stats.rekeys += 1;
        }
        for k in old {
            if !self
                .rekeyed
                .iter()
                .any(|&(id, o, _)| id == peer.id && o == k)
            {
                if self.rekeyed.len() >= REKEYED_MAX {
                    self.rekeyed.pop_front();
                }
                self.rekeyed.push_back((peer.id, k, key));
            }
        }
    }

    /// `peer` as heard second-hand, with the key its node moved to if the
    /// entry carries one it moved away from.
    fn current(&self, mut peer: PeerEntry) -> PeerEntry {
        if let Some(k) = peer.key {
            if let Some(&(_, _, now)) = self
                .rekeyed
                .iter()
                .find(|&&(id, old, _)| id == peer.id && old == k)
            {
                peer.key = Some(now);
            }
        }
        peer
    }

    pub fn settings(&self) -> &ViewSettings {
        &self.settings
    }

    pub fn set_settings(&mut self, settings: ViewSettings) {
        self.settings = settings;
        self.next_shuffle = None;
    }

    /// The active peers: (connection, peer).
    pub fn active(&self) -> impl Iterator<Item = (ConnId, &PeerEntry)> {
        self.active.iter().map(|a| (a.conn, &a.peer))
    }

    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    pub fn passive(&self) -> &[PeerEntry] {
        &self.passive
    }

    /// Whether `conn` is a link of the active view.
    pub fn is_active(&self, conn: ConnId) -> bool {
        self.active.iter().any(|a| a.conn == conn)
    }

    /// Whether `conn` belongs to the views (active, or asking to be).
    pub fn owns(&self, conn: ConnId) -> bool {
        self.is_active(conn) || self.asking.contains_key(&conn)
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<ViewAction> {
        self.out.pop_front()
    }

    /// When [`Views::handle_timeout`] must next be called: the next
    /// shuffle, or the first request to give up on.
    pub fn poll_timeout(&self) -> Option<u64> {
        let limit = self.settings.request_timeout_ms;
        let requests = self.dialling.values().chain(self.asking.values());
        let give_up = requests.map(|r| r.since.saturating_add(limit)).min();
        let merge = self.merge.as_ref().map(|m| m.2);
        // Each Option made a plain number first: the min of Options read
        // the bytes of a None (uninitialised, harmlessly) and branched on
        // them, which valgrind reports in the C tests.
        let next = [self.next_shuffle, give_up, merge]
            .into_iter()
            .map(|t| t.unwrap_or(u64::MAX))
            .min()
            .unwrap_or(u64::MAX);
        (next != u64::MAX).then_some(next)
    }

    /// Joins the network through a member at `endpoint` (`JOIN`): dialled
    /// now, and again whenever this node finds itself alone.
    pub fn join(&mut self, endpoint: &str, key: Option<[u8; 32]>, now: u64) {
        match self.contacts.iter_mut().find(|(c, _)| c == endpoint) {
            Some(contact) => contact.1 = key,
            None => self.contacts.push((endpoint.to_string(), key)),
        }
        self.dial(endpoint.to_string(), Intent::Join { key }, now);
        self.arm(now);
    }

    /// Most addresses kept of one DNS seed's answer: the active and passive
    /// views' sizes together (an answer with hundreds of records is cut to
    /// this, at random, keeping those already known).
    pub fn seed_limit(&self) -> usize {
        (self.settings.active_max + self.settings.passive_max).max(1)
    }

    /// The DNS seed `seed` (`dns:NAME:PORT`) resolved to `endpoints`
    /// (`tcp://address:port`), to be dialled as CURVE clients of `key`
    /// when given. The answer replaces the seed's previous one, cut to
    /// [`Views::seed_limit`] addresses; each address that was not in the
    /// previous answer is joined through as `JOIN` would, at most
    /// `active_max` of them per answer (the others wait as the seed's
    /// addresses, dialled when the node is alone). An empty answer (a
    /// failed resolution) keeps the previous one.
    pub fn seed_resolved(
        &mut self,
        seed: &str,
        endpoints: &[String],
        key: Option<[u8; 32]>,
        now: u64,
    ) {
        let limit = self.seed_limit();
        let known = self
            .seeds
            .get(seed)
            .map(|s| s.endpoints.clone())
            .unwrap_or_default();
        let mut fresh: Vec<String> = Vec::new();
        let mut kept: Vec<String> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for e in endpoints {
            if !endpoint_is_dialable(e) || *e == self.me.endpoint {
                self.stats.seed_dropped += 1;
                continue;
            }
            if !seen.insert(e.as_str()) {
                continue;
            }
            if known.contains(e) {
                kept.push(e.clone());
            } else {
                fresh.push(e.clone());
            }
        }
        if kept.is_empty() && fresh.is_empty() {
            if let Some(s) = self.seeds.get_mut(seed) {
                s.key = key;
            }
            return;
        }
        // Keep what was known first, then new addresses at random.
        kept.truncate(limit);
        let mut fresh = self.rng.sample(&fresh, fresh.len());
        let room = limit - kept.len();
        if fresh.len() > room {
            self.stats.seed_dropped += (fresh.len() - room) as u64;
            fresh.truncate(room);
        }
        let mut joins = 0;
        for e in &fresh {
            if joins >= self.settings.active_max {
                break;
            }
            let linked = self.active.iter().any(|a| a.peer.endpoint == *e);
            if !linked && !self.dialling.contains_key(e) {
                joins += 1;
                self.stats.seed_joins += 1;
                self.dial(e.clone(), Intent::Join { key }, now);
            }
        }
        kept.extend(fresh);
        self.seeds.insert(
            seed.to_string(),
            Seed {
                endpoints: kept,
                key,
            },
        );
        self.arm(now);
    }

    /// The addresses a DNS seed resolved to last (empty: none yet).
    pub fn seed_endpoints(&self, seed: &str) -> &[String] {
        self.seeds.get(seed).map_or(&[], |s| &s.endpoints)
    }

    /// A member heard of outside the overlay (discovery). A node that is
    /// alone joins through it; any other keeps it as a passive peer, and
    /// one with room asks a passive peer at once rather than at the next
    /// period: nodes that start together and pair up as they hear each
    /// other would otherwise stay in separate groups for a period.
    pub fn candidate(&mut self, peer: PeerEntry, now: u64) {
        if peer.id == self.me.id || !endpoint_is_dialable(&peer.endpoint) {
            return;
        }
        // Its beacon: the key it announces now.
        self.first_hand(&peer, false);
        if self.active.is_empty() && self.asking.is_empty() && self.dialling.is_empty() {
            let key = peer.key;
            self.dial(peer.endpoint, Intent::Join { key }, now);
        } else if !self.active.iter().any(|a| a.peer.id == peer.id) {
            self.add_passive(peer, &[]);
            self.fill(now);
        }
        self.arm(now);
    }

    /// This node's anchor: the smallest node id it knows in its part of
    /// the overlay (its own while alone). Discovery beacons it.
    pub fn anchor(&self) -> u64 {
        self.anchor
    }

    /// Discovery heard `peer`, a node with overlay links whose part of the
    /// overlay has anchor `anchor`. A smaller anchor than ours is another
    /// part: unless ours comes down within one to three [`MERGE_WAIT_MS`]
    /// (the news spreading in our own part), this node joins through
    /// `peer`. At most one merge per shuffle period.
    pub fn heard_anchor(&mut self, peer: PeerEntry, anchor: u64, now: u64) {
        if anchor >= self.anchor || peer.id == self.me.id || !endpoint_is_dialable(&peer.endpoint) {
            return;
        }
        if self.active.is_empty() {
            return self.candidate(peer, now);
        }
        if !self.anchor_told || self.active.iter().any(|a| a.peer.id == peer.id) {
            // Our part's anchor, or this neighbour's, is on its way to us.
            return;
        }
        if self.merge.as_ref().is_none_or(|m| anchor < m.1) {
            // Every node of a LAN hears a beacon at once: a random wait
            // lets the first merge's anchor reach the others first.
            let wait = MERGE_WAIT_MS + self.rng.below(2 * MERGE_WAIT_MS);
            let at = self.merge.as_ref().map_or(now + wait, |m| m.2);
            self.merge = Some((peer, anchor, at));
        }
        self.arm(now);
    }

    /// Makes a due merge, if our anchor is still larger.
    fn run_merge(&mut self, now: u64) {
        let Some((_, anchor, at)) = self.merge.as_ref() else {
            return;
        };
        if *anchor >= self.anchor || !self.anchor_told {
            self.merge = None;
            return;
        }
        if *at > now {
            return;
        }
        let period = self.settings.shuffle_interval_ms;
        if let Some(last) = self.last_merge.filter(|&l| now < l.saturating_add(period)) {
            if let Some(m) = self.merge.as_mut() {
                m.2 = last + period;
            }
            return;
        }
        let Some((peer, _, _)) = self.merge.take() else {
            return;
        };
        self.last_merge = Some(now);
        self.stats.merges += 1;
        let key = peer.key;
        self.dial(peer.endpoint, Intent::Join { key }, now);
    }

    /// An `ANCHOR` from an active peer: a smaller one is adopted and
    /// passed on to the other active peers.
    fn on_anchor(&mut self, conn: ConnId, anchor: u64) {
        if !self.is_active(conn) {
            self.stats.ignored += 1;
            return;
        }
        self.anchor_told = true;
        if anchor >= self.anchor {
            return;
        }
        self.anchor = anchor;
        let others = self.active_except(conn);
        for other in others {
            self.send(other, Message::Anchor(anchor));
        }
        if self.merge.as_ref().is_some_and(|m| m.1 >= anchor) {
            self.merge = None;
        }
    }

    /// A node left with no active peer is in no part of the overlay: its
    /// anchor is its own again (an old one would label the part it joins
    /// next, which may be another).
    fn check_alone(&mut self) {
        if self.active.is_empty() {
            self.anchor = self.me.id;
            self.anchor_told = false;
        }
    }

    /// Forgets every peer and request; returns the connections that were
    /// the views' (the driver closes them). Contacts stay: the node joins
    /// through them again at the next period.
    pub fn reset(&mut self) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = self.active.drain(..).map(|a| a.conn).collect();
        conns.extend(std::mem::take(&mut self.asking).into_keys());
        self.passive.clear();
        self.failed.clear();
        self.dialling.clear();
        self.last_shuffle.clear();
        self.anchor = self.me.id;
        self.anchor_told = false;
        self.merge = None;
        conns
    }

    /// A member is known to be gone (discovery stopped hearing it): no
    /// longer a passive peer, nor tried again.
    pub fn forget(&mut self, id: u64) {
        self.passive.retain(|p| p.id != id);
        self.failed.retain(|(p, _)| p.id != id);
    }

    /// A connection the views dialled is up and speaks ZGP/2: the request
    /// goes out on it.
    pub fn link_up(&mut self, conn: ConnId, endpoint: &str, now: u64) {
        let Some(req) = self.dialling.remove(endpoint) else {
            // Not ours (any more): nothing to ask on it.
            self.out.push_back(ViewAction::Close {
                conn,
                reason: "overlay dial no longer wanted",
            });
            return;
        };
        let msg = match &req.intent {
            Intent::Join { .. } => Message::Join(self.me.clone()),
            Intent::Neighbor { high, .. } => Message::Neighbor {
                high: *high,
                peer: self.me.clone(),
            },
        };
        self.send(conn, msg);
        self.asking.insert(
            conn,
            Request {
                intent: req.intent,
                since: now,
            },
        );
    }

    /// A dial the views asked for failed. `nobody_there`: the connection
    /// was refused or went unanswered (not a failure of this end, such as
    /// no route from here, nor a handshake refused): a member asked to
    /// become active is then reported [`ViewAction::Unreachable`].
    pub fn dial_failed(&mut self, endpoint: &str, nobody_there: bool, now: u64) {
        if let Some(req) = self.dialling.remove(endpoint) {
            if let (true, Intent::Neighbor { peer, .. }) = (nobody_there, &req.intent) {
                self.out.push_back(ViewAction::Unreachable { id: peer.id });
            }
            self.request_failed(req.intent, true, now);
        }
    }

    /// A dialled peer answered but does not speak ZGP/2: alive, but of no
    /// use to the overlay.
    pub fn dial_useless(&mut self, endpoint: &str, now: u64) {
        if let Some(req) = self.dialling.remove(endpoint) {
            self.request_failed(req.intent, true, now);
        }
    }

    /// A connection closed. Returns true if it was an active link.
    pub fn link_down(&mut self, conn: ConnId, now: u64) -> bool {
        if let Some(req) = self.asking.remove(&conn) {
            self.request_failed(req.intent, true, now);
            return false;
        }
        let Some(i) = self.active.iter().position(|a| a.conn == conn) else {
            return false;
        };
        // A peer whose link failed may be dead: not passive any more, but
        // tried again now and then (it may be across a partition).
        let gone = self.active.swap_remove(i);
        self.remember_failed(gone.peer, now);
        self.check_alone();
        self.fill(now);
        true
    }

    /// An overlay message of the views arrived on `conn`. Messages of the
    /// broadcast tree are not for the views.
    pub fn handle_message(&mut self, conn: ConnId, msg: Message, now: u64) {
        match msg {
            Message::Join(peer) => self.on_join(conn, peer, now),
            Message::ForwardJoin { ttl, peer } => self.on_forward_join(conn, ttl, peer, now),
            Message::Neighbor { high, peer } => self.on_neighbor(conn, high, peer, now),
            Message::NeighborReply { accepted, peer } => {
                self.on_neighbor_reply(conn, accepted, peer, now)
            }
            Message::Disconnect { alive } => self.on_disconnect(conn, alive, now),
            Message::Shuffle { ttl, peers } => self.on_shuffle(conn, ttl, peers),
            Message::ShuffleReply(peers) => {
                if self.is_active(conn) {
                    let sent = std::mem::take(&mut self.last_shuffle);
                    self.integrate(peers, &sent);
                } else {
                    self.stats.ignored += 1;
                }
            }
            Message::Anchor(anchor) => self.on_anchor(conn, anchor),
            Message::IHave(_)
            | Message::Graft(_)
            | Message::Prune
            | Message::Root(_)
            | Message::RootRequest { .. } => {}
        }
        self.arm(now);
    }

    /// Periodic work: shuffles, filling the active view, retrying contacts
    /// while alone, giving up on requests that take too long.
    pub fn handle_timeout(&mut self, now: u64) {
        let limit = self.settings.request_timeout_ms;
        let late: Vec<String> = self
            .dialling
            .iter()
            .filter(|(_, r)| now.saturating_sub(r.since) >= limit)
            .map(|(e, _)| e.clone())
            .collect();
        for endpoint in late {
            // No connection within the request timeout: unanswered.
            self.dial_failed(&endpoint, true, now);
        }
        let late: Vec<ConnId> = self
            .asking
            .iter()
            .filter(|(_, r)| now.saturating_sub(r.since) >= limit)
            .map(|(c, _)| *c)
            .collect();
        for conn in late {
            if let Some(req) = self.asking.remove(&conn) {
                self.out.push_back(ViewAction::Close {
                    conn,
                    reason: "overlay request unanswered",
                });
                self.request_failed(req.intent, true, now);
            }
        }
        self.run_merge(now);
        if self.next_shuffle.is_some_and(|t| t > now) {
            return;
        }
        self.next_shuffle = Some(now + self.settings.shuffle_interval_ms);
        self.shuffle();
        self.fill(now);
        self.probe_failed(now);
        if self.active.is_empty() && self.asking.is_empty() && self.dialling.is_empty() {
            for (c, key) in self.contacts.clone() {
                self.dial(c, Intent::Join { key }, now);
            }
            self.dial_seeds(now);
        }
    }

    /// A node alone dials a few addresses of each DNS seed again (at most
    /// `active_max` per seed, drawn at random).
    fn dial_seeds(&mut self, now: u64) {
        let seeds: Vec<Seed> = self.seeds.values().cloned().collect();
        for seed in seeds {
            let picks = self.rng.sample(&seed.endpoints, self.settings.active_max);
            for e in picks {
                self.dial(e, Intent::Join { key: seed.key }, now);
            }
        }
    }

    fn arm(&mut self, now: u64) {
        if self.next_shuffle.is_none() {
            self.next_shuffle = Some(now + self.settings.shuffle_interval_ms);
        }
    }

    fn send(&mut self, conn: ConnId, msg: Message) {
        self.out.push_back(ViewAction::Send { conn, msg });
    }

    fn dial(&mut self, endpoint: String, intent: Intent, now: u64) {
        if endpoint == self.me.endpoint || self.dialling.contains_key(&endpoint) {
            return;
        }
        self.dialling.insert(
            endpoint.clone(),
            Request {
                intent: intent.clone(),
                since: now,
            },
        );
        self.out.push_back(ViewAction::Dial { endpoint, intent });
    }

    /// A request to become neighbours failed: the peer could not be
    /// reached (then another is tried at once) or refused (then the next
    /// try waits for the next period: a node must not hammer full ones).
    fn request_failed(&mut self, intent: Intent, unreachable: bool, now: u64) {
        if let Intent::Neighbor { peer, .. } = intent {
            self.passive.retain(|p| p.id != peer.id);
            if unreachable {
                self.remember_failed(peer, now);
                self.fill(now);
            }
        }
    }

    fn remember_failed(&mut self, peer: PeerEntry, now: u64) {
        let peer = self.current(peer);
        if peer.id == self.me.id || !endpoint_is_dialable(&peer.endpoint) {
            return;
        }
        self.passive.retain(|p| p.id != peer.id);
        if self.failed.iter().any(|(p, _)| p.id == peer.id) {
            return; // keeps its first failure time
        }
        if self.failed.len() >= self.settings.passive_max.max(1) {
            self.failed.remove(0);
        }
        self.failed.push((peer, now));
    }

    /// Tries one remembered failed peer again, if nothing is under way.
    /// Even a full node does (with low priority): a node that restarted
    /// alone, or a side of a healed partition, is found this way. A peer
    /// that answers, even with a refusal, is alive: it leaves the list.
    fn probe_failed(&mut self, now: u64) {
        let keep = self.settings.failed_keep_ms;
        self.failed
            .retain(|(_, since)| now.saturating_sub(*since) < keep);
        let pending = self.asking.len() + self.dialling.len();
        if pending > 0 || self.failed.is_empty() {
            return;
        }
        let (peer, _) = self.failed[self.rng.index(self.failed.len())].clone();
        if self.active.iter().any(|a| a.peer.id == peer.id) {
            return;
        }
        let high = self.active.len() < self.settings.active_max.div_ceil(2);
        let endpoint = peer.endpoint.clone();
        self.dial(endpoint, Intent::Neighbor { peer, high }, now);
    }

    /// Asks one passive peer to become active when the active view has
    /// room and no request is under way. A node that lost every link (and
    /// is not joining) asks several at once, up to the room it has: one
    /// request that hangs, to a peer that is paused or gone, must not
    /// leave it cut off for a request timeout, since a node cut off that
    /// long is taken as failed by the membership (it cannot deny a
    /// suspicion).
    fn fill(&mut self, now: u64) {
        // Each round dials one more peer (its endpoint joins `dialling`),
        // so a node cut off asks at most `active-max` at once.
        for _ in 0..self.settings.active_max.max(1) {
            let pending = self.asking.len() + self.dialling.len();
            let joining = self
                .asking
                .values()
                .chain(self.dialling.values())
                .any(|r| matches!(r.intent, Intent::Join { .. }));
            let cut_off = self.active.is_empty() && !joining;
            if self.active.len() + pending >= self.settings.active_max || (pending > 0 && !cut_off)
            {
                return;
            }
            let candidates: Vec<usize> = (0..self.passive.len())
                .filter(|&i| {
                    let p = &self.passive[i];
                    !self.active.iter().any(|a| a.peer.id == p.id)
                        && !self.dialling.contains_key(&p.endpoint)
                        && p.endpoint != self.me.endpoint
                })
                .collect();
            if candidates.is_empty() {
                return;
            }
            let peer = self.passive[candidates[self.rng.index(candidates.len())]].clone();
            // High priority (a full node makes room) while the node has
            // fewer than half its links: one or two links are a thin
            // thread, and a small group of nodes that lost its links to the
            // rest would otherwise stay cut off, refused by full nodes for
            // ever.
            let high = self.active.len() < self.settings.active_max.div_ceil(2);
            self.stats.promotions += 1;
            self.dial(peer.endpoint.clone(), Intent::Neighbor { peer, high }, now);
            if !cut_off {
                return;
            }
        }
    }

    /// Adds `peer` on `conn` to the active view, dropping a random active
    /// peer if the view is full. A peer already active on another
    /// connection keeps one of the two: the one the smaller id dialled.
    fn add_active(&mut self, conn: ConnId, peer: PeerEntry, dialled: bool) {
        self.passive.retain(|p| p.id != peer.id);
        self.failed
            .retain(|(p, _)| p.id != peer.id && p.endpoint != peer.endpoint);
        if let Some(i) = self.active.iter().position(|a| a.peer.id == peer.id) {
            let old = &self.active[i];
            if old.conn == conn {
                return;
            }
            let dialler_of = |d: bool| if d { self.me.id } else { peer.id };
            // Both dialled by the same node: the newer request is the live
            // one, on both sides.
            let keep_new = dialler_of(dialled) <= dialler_of(old.dialled);
            let loser = if keep_new {
                let old_conn = old.conn;
                self.active[i] = ActivePeer {
                    conn,
                    peer,
                    dialled,
                };
                old_conn
            } else {
                conn
            };
            // Said before the close, so that the peer, which may not
            // have seen both links yet, takes it for a choice and not for
            // a failure (its membership would suspect this node). The
            // peer keeps this node active on the other link.
            self.send(loser, Message::Disconnect { alive: true });
            self.out.push_back(ViewAction::Close {
                conn: loser,
                reason: "second link to the same peer",
            });
            return;
        }
        if self.active.len() >= self.settings.active_max {
            let victim = self.active.swap_remove(self.rng.index(self.active.len()));
            self.stats.evictions += 1;
            self.send(victim.conn, Message::Disconnect { alive: true });
            self.out.push_back(ViewAction::Close {
                conn: victim.conn,
                reason: "active view full",
            });
            self.add_passive(victim.peer, &[]);
        }
        self.active.push(ActivePeer {
            conn,
            peer,
            dialled,
        });
    }

    /// Tells the peer of a new active link our anchor (after the reply
    /// that makes the link active at its end too): the end with the
    /// larger one adopts the smaller and passes it on.
    fn tell_anchor(&mut self, conn: ConnId) {
        if self.is_active(conn) {
            self.send(conn, Message::Anchor(self.anchor));
        }
    }

    /// Keeps `peer` in the passive view; when it is full, an entry of
    /// `prefer_evict` (what we just sent away in a shuffle) makes room
    /// first, else a random one.
    fn add_passive(&mut self, peer: PeerEntry, prefer_evict: &[PeerEntry]) {
        let peer = self.current(peer);
        if peer.id == self.me.id
            || !endpoint_is_dialable(&peer.endpoint)
            || self.active.iter().any(|a| a.peer.id == peer.id)
        {
            return;
        }
        self.failed
            .retain(|(p, _)| p.id != peer.id && p.endpoint != peer.endpoint);
        // One entry per node and per endpoint: the latest heard wins (a
        // node that moved, or restarted with a new id).
        if let Some(p) = self
            .passive
            .iter_mut()
            .find(|p| p.id == peer.id || p.endpoint == peer.endpoint)
        {
            *p = peer;
            return;
        }
        if self.settings.passive_max == 0 {
            return;
        }
        if self.passive.len() >= self.settings.passive_max {
            let i = self
                .passive
                .iter()
                .position(|p| prefer_evict.iter().any(|e| e.id == p.id))
                .unwrap_or_else(|| self.rng.index(self.passive.len()));
            self.passive.swap_remove(i);
        }
        self.passive.push(peer);
    }

    fn integrate(&mut self, peers: Vec<PeerEntry>, sent: &[PeerEntry]) {
        for p in peers {
            self.add_passive(p, sent);
        }
    }

    fn on_join(&mut self, conn: ConnId, peer: PeerEntry, _now: u64) {
        if self.owns(conn) {
            // One JOIN per connection: a second would make the node send
            // forward joins again (a peer could flood the network so).
            self.stats.ignored += 1;
            return;
        }
        if peer.id == self.me.id {
            return self.ignore_and_close(conn, "a JOIN from this node itself");
        }
        self.stats.joins += 1;
        self.first_hand(&peer, true);
        self.add_active(conn, peer.clone(), false);
        self.send(
            conn,
            Message::NeighborReply {
                accepted: true,
                peer: self.me.clone(),
            },
        );
        self.tell_anchor(conn);
        // And a sample of whom we know, so the newcomer's passive view is
        // not empty: a node whose first links fail can still find the
        // network.
        let known: Vec<PeerEntry> = self
            .active
            .iter()
            .filter(|a| a.conn != conn)
            .map(|a| a.peer.clone())
            .chain(self.passive.iter().cloned())
            .filter(|p| endpoint_is_dialable(&p.endpoint))
            .collect();
        let n = self.settings.shuffle_active + self.settings.shuffle_passive;
        let sample = self.rng.sample(&known, n);
        if !sample.is_empty() {
            self.send(conn, Message::ShuffleReply(sample));
        }
        let ttl = self.settings.active_walk;
        let others = self.active_except(conn);
        for other in others {
            self.send(
                other,
                Message::ForwardJoin {
                    ttl,
                    peer: peer.clone(),
                },
            );
        }
    }

    fn on_forward_join(&mut self, conn: ConnId, ttl: u8, peer: PeerEntry, now: u64) {
        if !self.is_active(conn) {
            self.stats.ignored += 1;
            return;
        }
        self.stats.forward_joins += 1;
        let known = peer.id == self.me.id || self.active.iter().any(|a| a.peer.id == peer.id);
        if !known && (ttl == 0 || self.active.len() <= 1) {
            if endpoint_is_dialable(&peer.endpoint) {
                self.passive.retain(|p| p.id != peer.id);
                let endpoint = peer.endpoint.clone();
                self.dial(endpoint, Intent::Neighbor { peer, high: true }, now);
            }
            return;
        }
        if ttl == 0 {
            return; // the walk ends at a node that has the new one already
        }
        if ttl == self.settings.passive_walk {
            self.add_passive(peer.clone(), &[]);
        }
        // On, to a random active peer other than the sender and the new
        // node itself.
        if let Some(next) = self.random_active_except(conn, Some(peer.id)) {
            self.send(next, Message::ForwardJoin { ttl: ttl - 1, peer });
        }
    }

    fn on_neighbor(&mut self, conn: ConnId, high: bool, peer: PeerEntry, _now: u64) {
        if self.owns(conn) {
            self.stats.ignored += 1;
            return;
        }
        self.first_hand(&peer, true);
        let already = self.active.iter().any(|a| a.peer.id == peer.id);
        let accept = peer.id != self.me.id
            && (high || already || self.active.len() < self.settings.active_max);
        if accept {
            self.stats.neighbors_accepted += 1;
            self.add_active(conn, peer, false);
        } else {
            self.stats.neighbors_refused += 1;
            if peer.id != self.me.id {
                self.add_passive(peer, &[]);
            }
        }
        self.send(
            conn,
            Message::NeighborReply {
                accepted: accept,
                peer: self.me.clone(),
            },
        );
        if accept {
            self.tell_anchor(conn);
        } else {
            self.out.push_back(ViewAction::Close {
                conn,
                reason: "neighbour request refused",
            });
        }
    }

    fn on_neighbor_reply(&mut self, conn: ConnId, accepted: bool, peer: PeerEntry, now: u64) {
        let Some(req) = self.asking.remove(&conn) else {
            // Unrequested, on an active link, from the node on it: the
            // node re-announces its entry (its key changed).
            let from_peer = self
                .active
                .iter()
                .any(|a| a.conn == conn && a.peer.id == peer.id);
            if accepted && from_peer {
                self.first_hand(&peer, true);
            } else {
                self.stats.ignored += 1;
            }
            return;
        };
        self.first_hand(&peer, true);
        if peer.id == self.me.id {
            // We dialled ourselves (our own endpoint under another name).
            return self.ignore_and_close(conn, "dialled this node itself");
        }
        if accepted {
            self.add_active(conn, peer, true);
            self.tell_anchor(conn);
        } else {
            self.out.push_back(ViewAction::Close {
                conn,
                reason: "neighbour request refused",
            });
            self.request_failed(req.intent, false, now);
            // Refused, but alive: worth keeping.
            self.add_passive(peer, &[]);
        }
    }

    fn on_disconnect(&mut self, conn: ConnId, alive: bool, now: u64) {
        let Some(i) = self.active.iter().position(|a| a.conn == conn) else {
            self.stats.ignored += 1;
            return;
        };
        self.stats.disconnects += 1;
        let gone = self.active.swap_remove(i);
        if alive {
            self.add_passive(gone.peer, &[]);
        }
        self.check_alone();
        self.out.push_back(ViewAction::Close {
            conn,
            reason: "peer left the active view",
        });
        self.fill(now);
    }

    fn on_shuffle(&mut self, conn: ConnId, ttl: u8, peers: Vec<PeerEntry>) {
        if !self.is_active(conn) {
            self.stats.ignored += 1;
            return;
        }
        if ttl > 0 && self.active.len() > 1 {
            if let Some(next) = self.random_active_except(conn, None) {
                self.send(
                    next,
                    Message::Shuffle {
                        ttl: ttl - 1,
                        peers,
                    },
                );
                return;
            }
        }
        self.stats.shuffles += 1;
        let reply = self.rng.sample(&self.passive, peers.len());
        self.send(conn, Message::ShuffleReply(reply.clone()));
        self.integrate(peers, &reply);
    }

    /// Starts a shuffle with a random active peer.
    fn shuffle(&mut self) {
        if self.active.is_empty() {
            return;
        }
        let actives: Vec<PeerEntry> = self.active.iter().map(|a| a.peer.clone()).collect();
        let mut peers = Vec::with_capacity(1 + self.settings.shuffle_active);
        if endpoint_is_dialable(&self.me.endpoint) {
            peers.push(self.me.clone());
        }
        peers.extend(
            self.rng
                .sample(&actives, self.settings.shuffle_active)
                .into_iter()
                .filter(|p| endpoint_is_dialable(&p.endpoint)),
        );
        peers.extend(
            self.rng
                .sample(&self.passive, self.settings.shuffle_passive),
        );
        let to = self.active[self.rng.index(self.active.len())].conn;
        self.last_shuffle = peers.clone();
        // A walk of `passive_walk` hops: each hop carries the whole sample
        // (a few hundred bytes), and on an idle network the shuffles' walks
        // are most of the traffic (`benches/idle_cost.rs`: 64 nodes, 13
        // KiB/s with walks of 6 hops).
        self.send(
            to,
            Message::Shuffle {
                ttl: self.settings.passive_walk,
                peers,
            },
        );
    }

    /// A random active link other than `conn` (and than the link to node
    /// `not_peer`, when given).
    /// The connections of the active peers but the one on `conn`.
    fn active_except(&self, conn: ConnId) -> Vec<ConnId> {
        self.active
            .iter()
            .filter(|a| a.conn != conn)
            .map(|a| a.conn)
            .collect()
    }

    fn random_active_except(&mut self, conn: ConnId, not_peer: Option<u64>) -> Option<ConnId> {
        let others: Vec<ConnId> = self
            .active
            .iter()
            .filter(|a| a.conn != conn && Some(a.peer.id) != not_peer)
            .map(|a| a.conn)
            .collect();
        (!others.is_empty()).then(|| others[self.rng.index(others.len())])
    }

    /// A message that makes no sense where it came: counted, and its
    /// connection closed.
    fn ignore_and_close(&mut self, conn: ConnId, reason: &'static str) {
        self.stats.ignored += 1;
        self.out.push_back(ViewAction::Close { conn, reason });
    }
}

#[cfg(test)]
#[path = "views_tests.rs"]
mod tests;
