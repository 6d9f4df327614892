//! The discovery state machine, sans-IO: beacons heard go in (with the
//! address they came from and the time), decisions come out as
//! [`DiscoveryAction`]s (a new peer for the overlay, a peer at a new
//! address, a silent peer to forget). Time is passed in, never read. The
//! overlay (`engine::views`) decides which of the peers found become
//! links: discovery only finds them.
//!
//! Rules:
//! - our own beacons (our node id) and anything that is not a valid
//!   beacon are ignored and counted;
//! - a node with a CURVE key pair hears only beacons that carry a public
//!   key (version 2) and dials their senders as a CURVE client of that
//!   key; a node without one hears only beacons without a key. A beacon of
//!   the other kind is ignored and counted, so a secured node never speaks
//!   NULL to a peer it discovered, and a plain node never dials a secured
//!   one it cannot talk to;
//! - a beacon of another cluster (`cluster/name`; empty for nodes without
//!   one) is ignored and counted;
//! - the node's access rules decide too (`admit`: the sender's address and
//!   key, as `ALLOW`/`DENY` and `CURVE ALLOW` decide for a client): a peer
//!   they refuse is ignored and counted, never dialled;
//! - every peer heard is handed to the overlay once, and again when it
//!   moves; a node that is alone joins the network through the first;
//! - a peer keeps its address (and key) while it beacons from it; when the
//!   address has been silent for `stale_ms` and the peer beacons from
//!   another one (a new IP address or TCP port, or a new key), it is
//!   followed there;
//! - a new peer that beacons from the address of a known one replaces it
//!   (a node restarted: same endpoint, new id);
//! - peers are told apart by node id alone: a node heard over IPv4 and
//!   IPv6 (`DISCOVER ipv6=both`) is one peer, handed on once, at one
//!   address. With [`Discovery::preferring_ipv4`], an IPv4 beacon of a
//!   peer known at an IPv6 address (same key, same advertised endpoint)
//!   takes it there at once; otherwise the other family is a second
//!   address like any, followed only once the first falls silent;
//! - a peer that beacons an advertised endpoint (version 5) is dialled
//!   there rather than at the beacon's source; when the endpoint names an
//!   address, the access rules apply to it too;
//! - a peer silent for `expiry_ms` is forgotten;
//! - a node that has overlay links beacons quietly (the driver's
//!   business); when it hears a beacon flagged "looking for peers" it
//!   answers with a beacon of its own at once, with a probability chosen
//!   so that about `ANSWERS` of the nodes that hear it answer, and at most
//!   once per `answer_gap_ms`: a newcomer finds a quiet network within
//!   about one of its own beacon intervals;
//! - at most `max_peers` peers are tracked, and at most `dials_per_sec`
//!   peers (new and moved) are handed on per second, so a flood of
//!   beacons cannot make the node open unbounded connections.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use super::frame;
use crate::rng::Rng;

/// How many of the nodes that hear a newcomer should answer it, on
/// average.
pub const ANSWERS: u64 = 3;

/// How many of the nodes that hear a beacon of a smaller overlay anchor
/// should hand it on (and so merge their part of the overlay into the
/// beacon's), on average: every node of a LAN hears each beacon, and one
/// merge is enough (its anchor then spreads through the part).
pub const MERGERS: u64 = 2;

/// Tunables; see the module comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySettings {
    pub stale_ms: u64,
    pub expiry_ms: u64,
    pub max_peers: usize,
    pub dials_per_sec: u32,
}

impl DiscoverySettings {
    /// Defaults for a beacon interval: a move is followed after three
    /// silent intervals, a peer forgotten after 30 s (at least ten
    /// intervals).
    pub fn for_interval(interval_ms: u64) -> DiscoverySettings {
        DiscoverySettings {
            stale_ms: interval_ms.saturating_mul(3).max(1),
            expiry_ms: interval_ms.saturating_mul(10).max(30_000),
            max_peers: 256,
            dials_per_sec: 10,
        }
    }
}

impl Default for DiscoverySettings {
    fn default() -> DiscoverySettings {
        DiscoverySettings::for_interval(1_000)
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryAction {
    /// A new peer, for the overlay: dialled (if the overlay wants it) as
    /// a CURVE client of `server_key` when it has one.
    Found {
        peer: u64,
        endpoint: SocketAddr,
        server_key: Option<[u8; 32]>,
        /// The endpoint the peer asks to be dialled at, if any (then
        /// `endpoint` is only where its beacon came from).
        advertised: Option<String>,
    },
    /// A known peer beacons from a new address (or with a new key, or a
    /// new advertised endpoint).
    Moved {
        peer: u64,
        endpoint: SocketAddr,
        server_key: Option<[u8; 32]>,
        advertised: Option<String>,
    },
    /// A peer went silent: not worth dialling any more.
    Forget { peer: u64 },
    /// A peer with overlay links beacons an anchor smaller than ours: it
    /// is in another part of the overlay (see `Views::heard_anchor`).
    Anchor {
        peer: u64,
        endpoint: SocketAddr,
        server_key: Option<[u8; 32]>,
        advertised: Option<String>,
        anchor: u64,
    },
}

impl DiscoveryAction {
    /// The endpoint to dial for `Found`, `Moved` and `Anchor`: the
    /// advertised one when the peer beaconed one, else its beacon's
    /// source address at its port.
    pub fn dial_endpoint(&self) -> Option<String> {
        match self {
            DiscoveryAction::Found {
                endpoint,
                advertised,
                ..
            }
            | DiscoveryAction::Moved {
                endpoint,
                advertised,
                ..
            }
            | DiscoveryAction::Anchor {
                endpoint,
                advertised,
                ..
            } => Some(
                advertised
                    .clone()
                    .unwrap_or_else(|| endpoint_string(*endpoint)),
            ),
            DiscoveryAction::Forget { .. } => None,
        }
    }
}

/// What became of one datagram (for tracing and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Rejected(frame::Rejected),
    /// From an address a peer cannot be reached at (unspecified, multicast).
    BadSource,
    Own,
    /// A beacon without a key, and this node speaks only CURVE.
    Plain,
    /// A beacon with a key, and this node has no key pair to speak CURVE.
    Curve,
    /// The node's access rules refuse the sender's address or key.
    NotAllowed,
    /// A node of another cluster.
    OtherCluster,
    New,
    Known,
    /// A known peer from another address, not followed (yet).
    Elsewhere,
    Moved,
    /// A new peer, but the table is full.
    Full,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    pub beacons: u64,
    pub rejected: u64,
    pub own: u64,
    /// Beacons without a key heard by a node that speaks only CURVE.
    pub ignored_plain: u64,
    /// Beacons with a key heard by a node without a key pair.
    pub ignored_curve: u64,
    /// Beacons whose sender the access rules refuse.
    pub not_allowed: u64,
    /// Beacons of nodes of another cluster.
    pub other_cluster: u64,
    pub peers_found: u64,
    pub refused_full: u64,
    pub moves: u64,
    pub expired: u64,
    pub dials: u64,
    /// Beacons sent at once to answer a newcomer.
    pub answers: u64,
    /// Peers taken to an IPv4 address from an IPv6 one at once
    /// (`preferring_ipv4`).
    pub family_switches: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Waiting to be handed on, waiting for a dial token; `moved` when a link existed.
    Pending { moved: bool },
    /// Handed on to the overlay.
    Dialed,
}

/// A node heard over discovery, and our link to it.
#[derive(Debug)]
struct DiscoveredPeer {
    endpoint: SocketAddr,
    /// Its CURVE public key, from its beacons.
    key: Option<[u8; 32]>,
    /// The endpoint it asks to be dialled at (version 5 beacons).
    advertised: Option<String>,
    /// Last beacon from `endpoint`.
    seen_ms: u64,
    /// Last beacon from anywhere.
    heard_ms: u64,
    link: Link,
}

/// Peers found by their beacons.
#[derive(Debug)]
pub struct Discovery {
    own_id: u64,
    /// This node speaks only CURVE (it has a key pair).
    curve: bool,
    /// This node's cluster name (empty: none).
    cluster: String,
    /// A peer heard over both families is kept at its IPv4 address.
    prefer_ipv4: bool,
    /// The node has overlay links: it answers newcomers.
    joined: bool,
    /// The node's overlay anchor, while it has overlay links.
    anchor: Option<u64>,
    /// An answer (our beacon, now) is due.
    answer: bool,
    /// When we last answered; at most one answer per `answer_gap_ms`.
    answered_ms: Option<u64>,
    answer_gap_ms: u64,
    rng: Rng,
    settings: DiscoverySettings,
    peers: HashMap<u64, DiscoveredPeer>,
    /// Peers waiting for a dial token, oldest first.
    queue: VecDeque<u64>,
    /// Dial tokens in thousandths.
    tokens_milli: u64,
    refilled_ms: u64,
    next_expiry_check: u64,
    actions: VecDeque<DiscoveryAction>,
    stats: DiscoveryStats,
}

/// How often silent peers are looked for.
const EXPIRY_CHECK_MS: u64 = 500;

impl Discovery {
    /// Discovery for node `own_id`; `curve` when the node has a CURVE key
    /// pair (its peers must announce theirs).
    pub fn new(own_id: u64, curve: bool, settings: DiscoverySettings, now_ms: u64) -> Discovery {
        let tokens_milli = u64::from(settings.dials_per_sec.max(1)) * 1000;
        Discovery {
            own_id,
            curve,
            cluster: String::new(),
            prefer_ipv4: false,
            joined: false,
            anchor: None,
            answer: false,
            answered_ms: None,
            answer_gap_ms: settings.stale_ms.div_ceil(3).max(1),
            rng: Rng::new(own_id),
            settings,
            peers: HashMap::new(),
            queue: VecDeque::new(),
            tokens_milli,
            refilled_ms: now_ms,
            next_expiry_check: now_ms + EXPIRY_CHECK_MS,
            actions: VecDeque::new(),
            stats: DiscoveryStats::default(),
        }
    }

    /// Hears only nodes of the cluster `name` (empty: nodes of none).
    pub fn in_cluster(mut self, name: &str) -> Discovery {
        self.cluster = name.to_string();
        self
    }

    /// Keeps a peer heard over both IPv4 and IPv6 at its IPv4 address
    /// (`DISCOVER ipv6=both`; see the module comment).
    pub fn preferring_ipv4(mut self) -> Discovery {
        self.prefer_ipv4 = true;
        self
    }

    /// Whether the node has overlay links (then it answers newcomers).
    pub fn set_joined(&mut self, joined: bool) {
        self.joined = joined;
    }

    /// The node's overlay anchor while it has overlay links (`None`
    /// without): beacons of linked peers with a smaller one are handed on.
    pub fn set_anchor(&mut self, anchor: Option<u64>) {
        self.anchor = anchor;
    }

    /// Whether a beacon should go out now, answering a newcomer (taken:
    /// the next call says false until another is due).
    pub fn take_answer(&mut self) -> bool {
        std::mem::take(&mut self.answer)
    }

    pub fn stats(&self) -> DiscoveryStats {
        self.stats
    }

    pub fn settings(&self) -> &DiscoverySettings {
        &self.settings
    }

    /// Peers currently known.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The address a peer is known at.
    pub fn endpoint(&self, peer: u64) -> Option<SocketAddr> {
        self.peers.get(&peer).map(|p| p.endpoint)
    }

    /// A datagram arrived from `source`. `admit` applies the node's access
    /// rules to the sender's address and public key.
    pub fn handle_datagram(
        &mut self,
        source: IpAddr,
        data: &[u8],
        now_ms: u64,
        admit: &dyn Fn(IpAddr, Option<&[u8; 32]>) -> bool,
    ) -> Heard {
        self.stats.beacons += 1;
        let heard = match frame::decode(data) {
            Ok(announce) => self.classify(source, announce, now_ms, admit),
            Err(r) => Heard::Rejected(r),
        };
        self.count(heard, now_ms)
    }

    /// A node announced itself other than by beacon (a DNS-SD service,
    /// `dnssd`) at `endpoint`: taken by the very rules beacons follow
    /// (own id, cluster, key, access rules, `max_peers`, `dials_per_sec`),
    /// and dialled at its advertised endpoint when it has one, as a
    /// version 5 beacon's sender is.
    pub fn handle_announce(
        &mut self,
        endpoint: SocketAddr,
        announce: &frame::Announce,
        now_ms: u64,
        admit: &dyn Fn(IpAddr, Option<&[u8; 32]>) -> bool,
    ) -> Heard {
        let announce = frame::Announce {
            port: endpoint.port(),
            ..announce.clone()
        };
        let heard = self.classify(endpoint.ip(), announce, now_ms, admit);
        self.count(heard, now_ms)
    }

    fn count(&mut self, heard: Heard, now_ms: u64) -> Heard {
        match heard {
            Heard::Rejected(_) | Heard::BadSource => self.stats.rejected += 1,
            Heard::Own => self.stats.own += 1,
            Heard::Plain => self.stats.ignored_plain += 1,
            Heard::Curve => self.stats.ignored_curve += 1,
            Heard::NotAllowed => self.stats.not_allowed += 1,
            Heard::OtherCluster => self.stats.other_cluster += 1,
            Heard::Full => self.stats.refused_full += 1,
            _ => {}
        }
        self.pump(now_ms);
        heard
    }

    fn classify(
        &mut self,
        source: IpAddr,
        announce: frame::Announce,
        now_ms: u64,
        admit: &dyn Fn(IpAddr, Option<&[u8; 32]>) -> bool,
    ) -> Heard {
        if announce.node_id == self.own_id {
            return Heard::Own;
        }
        if source.is_unspecified() || source.is_multicast() || is_broadcast(source) {
            return Heard::BadSource;
        }
        if announce.cluster != self.cluster {
            return Heard::OtherCluster;
        }
        let key = announce.public_key;
        match (self.curve, key.is_some()) {
            (true, false) => return Heard::Plain,
            (false, true) => return Heard::Curve,
            _ => {}
        }
        let advertised = announce.advertised;
        let advertised_ip = advertised.as_deref().and_then(frame::advertised_ip);
        if !admit(source, key.as_ref()) || advertised_ip.is_some_and(|ip| !admit(ip, key.as_ref()))
        {
            return Heard::NotAllowed;
        }
        if announce.flags & frame::FLAG_LOOKING != 0 {
            self.consider_answering(now_ms);
        }
        let id = announce.node_id;
        let endpoint = SocketAddr::new(source, announce.port);
        let linked = announce.flags & frame::FLAG_LOOKING == 0;
        if let (Some(theirs), Some(ours), true) = (announce.anchor, self.anchor, linked) {
            let hearers = self.peers.len() as u64 + 1;
            if theirs < ours && (hearers <= MERGERS || self.rng.below(hearers) < MERGERS) {
                self.actions.push_back(DiscoveryAction::Anchor {
                    peer: id,
                    endpoint,
                    server_key: key,
                    advertised: advertised.clone(),
                    anchor: theirs,
                });
            }
        }
        if let Some(p) = self.peers.get_mut(&id) {
            p.heard_ms = now_ms;
            if p.endpoint == endpoint && p.key == key && p.advertised == advertised {
                p.seen_ms = now_ms;
                return Heard::Known;
            }
            // The same node over the preferred family: taken at once.
            let to_ipv4 = self.prefer_ipv4
                && endpoint.is_ipv4()
                && p.endpoint.is_ipv6()
                && p.key == key
                && p.advertised == advertised;
            if !to_ipv4 && now_ms.saturating_sub(p.seen_ms) < self.settings.stale_ms {
                return Heard::Elsewhere;
            }
            if to_ipv4 {
                self.stats.family_switches += 1;
            }
            p.endpoint = endpoint;
            p.key = key;
            p.advertised = advertised;
            p.seen_ms = now_ms;
            let requeue = match p.link {
                Link::Pending { .. } => false,
                Link::Dialed => {
                    p.link = Link::Pending { moved: true };
                    true
                }
            };
            self.stats.moves += 1;
            if requeue {
                self.queue.push_back(id);
            }
            self.evict_at(endpoint, id);
            return Heard::Moved;
        }
        self.evict_at(endpoint, id);
        if self.peers.len() >= self.settings.max_peers {
            return Heard::Full;
        }
        self.queue.push_back(id);
        let link = Link::Pending { moved: false };
        self.peers.insert(
            id,
            DiscoveredPeer {
                endpoint,
                key,
                advertised,
                seen_ms: now_ms,
                heard_ms: now_ms,
                link,
            },
        );
        self.stats.peers_found += 1;
        Heard::New
    }

    /// A newcomer looks for peers: answer it, maybe. Every node that
    /// hears it draws, with a chance of `ANSWERS` in the nodes it knows
    /// (all of which hear the newcomer too, on one LAN).
    fn consider_answering(&mut self, now_ms: u64) {
        if !self.joined {
            return;
        }
        let gap = self.answer_gap_ms;
        if self
            .answered_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < gap)
        {
            return;
        }
        let hearers = self.peers.len() as u64 + 1;
        if hearers <= ANSWERS || self.rng.below(hearers) < ANSWERS {
            self.answer = true;
            self.answered_ms = Some(now_ms);
            self.stats.answers += 1;
        }
    }

    /// Forgets any peer other than `keep` known at `endpoint`: two live
    /// nodes cannot listen on one TCP endpoint, so that one is gone.
    fn evict_at(&mut self, endpoint: SocketAddr, keep: u64) {
        let old: Vec<u64> = self
            .peers
            .iter()
            .filter(|(&id, p)| id != keep && p.endpoint == endpoint)
            .map(|(&id, _)| id)
            .collect();
        for id in old {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(p) = self.peers.remove(&id) {
            self.queue.retain(|&q| q != id);
            if matches!(p.link, Link::Dialed | Link::Pending { moved: true }) {
                self.actions.push_back(DiscoveryAction::Forget { peer: id });
            }
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let rate = u64::from(self.settings.dials_per_sec.max(1));
        let elapsed = now_ms.saturating_sub(self.refilled_ms);
        self.refilled_ms = self.refilled_ms.max(now_ms);
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed.saturating_mul(rate))
            .min(rate * 1000);
    }

    /// Lets waiting dials go while tokens last.
    fn pump(&mut self, now_ms: u64) {
        self.refill(now_ms);
        while self.tokens_milli >= 1000 {
            let Some(id) = self.queue.pop_front() else {
                return;
            };
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            let Link::Pending { moved } = p.link else {
                continue;
            };
            p.link = Link::Dialed;
            self.tokens_milli -= 1000;
            self.stats.dials += 1;
            let (endpoint, server_key) = (p.endpoint, p.key);
            let advertised = p.advertised.clone();
            self.actions.push_back(if moved {
                DiscoveryAction::Moved {
                    peer: id,
                    endpoint,
                    server_key,
                    advertised,
                }
            } else {
                DiscoveryAction::Found {
                    peer: id,
                    endpoint,
                    server_key,
                    advertised,
                }
            });
        }
    }

    /// Runs timers: forgets silent peers, lets waiting dials go.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if now_ms >= self.next_expiry_check {
            self.next_expiry_check = now_ms + EXPIRY_CHECK_MS;
            let expiry = self.settings.expiry_ms;
            let silent: Vec<u64> = self
                .peers
                .iter()
                .filter(|(_, p)| now_ms.saturating_sub(p.heard_ms) >= expiry)
                .map(|(&id, _)| id)
                .collect();
            for id in silent {
                self.stats.expired += 1;
                self.remove(id);
            }
        }
        self.pump(now_ms);
    }

    /// When [`Discovery::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut at = None;
        if !self.peers.is_empty() {
            at = Some(self.next_expiry_check);
        }
        if !self.queue.is_empty() {
            let rate = u64::from(self.settings.dials_per_sec.max(1));
            let missing = 1000u64.saturating_sub(self.tokens_milli);
            let t = self.refilled_ms + missing.div_ceil(rate);
            at = Some(at.map_or(t, |a: u64| a.min(t)));
        }
        at
    }

    pub fn poll_action(&mut self) -> Option<DiscoveryAction> {
        self.actions.pop_front()
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// The gossip endpoint for a peer's address.
pub fn endpoint_string(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("tcp://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("tcp://[{}]:{}", a.ip(), a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const ANY: &dyn Fn(IpAddr, Option<&[u8; 32]>) -> bool = &|_, _| true;

    fn actions(d: &mut Discovery) -> Vec<DiscoveryAction> {
        std::iter::from_fn(|| d.poll_action()).collect()
    }

    #[test]
    fn linked_peers_of_a_smaller_anchor_are_handed_on_while_joined() {
        let mut d = Discovery::new(50, false, DiscoverySettings::default(), 0);
        let beacon = |anchor: u64, looking: bool| {
            let mut b = frame::encode_for(7000, 5, None, "", Some(anchor));
            frame::set_flag(&mut b, frame::FLAG_LOOKING, looking);
            b
        };
        let anchors = |d: &mut Discovery| -> Vec<DiscoveryAction> {
            actions(d)
                .into_iter()
                .filter(|a| matches!(a, DiscoveryAction::Anchor { .. }))
                .collect()
        };
        // Alone: the overlay joins through what it finds; anchors wait.
        d.handle_datagram(ip("10.0.0.2"), &beacon(3, false), 0, ANY);
        assert_eq!(anchors(&mut d), []);
        d.set_joined(true);
        d.set_anchor(Some(10));
        d.handle_datagram(ip("10.0.0.2"), &beacon(3, false), 10, ANY);
        assert_eq!(
            anchors(&mut d),
            [DiscoveryAction::Anchor {
                peer: 5,
                endpoint: sa("10.0.0.2:7000"),
                server_key: None,
                advertised: None,
                anchor: 3
            }]
        );
        // Ours or larger: the same part, or one that will come to us; a
        // node still looking is in no part.
        for (anchor, looking) in [(10, false), (11, false), (3, true)] {
            d.handle_datagram(ip("10.0.0.2"), &beacon(anchor, looking), 20, ANY);
            assert_eq!(anchors(&mut d), [], "{anchor} {looking}");
        }
    }

    #[test]
    fn among_many_hearers_about_two_hand_a_smaller_anchor_on() {
        // 300 peers known: each beacon of a smaller anchor is handed on by
        // about MERGERS in 301 of the nodes that hear it.
        let settings = DiscoverySettings {
            max_peers: 1000,
            ..DiscoverySettings::default()
        };
        let mut d = Discovery::new(99_999, false, settings, 0);
        for id in 1..=300u64 {
            let b = frame::encode(7000, id);
            d.handle_datagram(
                ip(&format!("10.1.{}.{}", id / 200, id % 200 + 1)),
                &b,
                0,
                ANY,
            );
        }
        d.set_joined(true);
        d.set_anchor(Some(50));
        let mut b = frame::encode_for(7000, 5, None, "", Some(3));
        frame::set_flag(&mut b, frame::FLAG_LOOKING, false);
        let mut handed = 0;
        for t in 0..3_010 {
            d.handle_datagram(ip("10.0.0.2"), &b, t, ANY);
            handed += actions(&mut d)
                .iter()
                .filter(|a| matches!(a, DiscoveryAction::Anchor { .. }))
                .count();
        }
        // 3,010 beacons at 2 in 301: about 20.
        assert!((8..=35).contains(&handed), "{handed}");
    }

    #[test]
    fn each_side_hands_the_other_on_once() {
        let mut low = Discovery::new(10, false, DiscoverySettings::default(), 0);
        let mut high = Discovery::new(20, false, DiscoverySettings::default(), 0);
        let from_high = frame::encode(7000, 20);
        let from_low = frame::encode(6000, 10);
        for t in 0..5 {
            assert_eq!(
                low.handle_datagram(ip("10.0.0.2"), &from_high, t * 1000, ANY),
                if t == 0 { Heard::New } else { Heard::Known }
            );
            high.handle_datagram(ip("10.0.0.1"), &from_low, t * 1000, ANY);
        }
        assert_eq!(
            actions(&mut low),
            [DiscoveryAction::Found {
                peer: 20,
                endpoint: sa("10.0.0.2:7000"),
                server_key: None,
                advertised: None,
            }]
        );
        assert_eq!(
            actions(&mut high),
            [DiscoveryAction::Found {
                peer: 10,
                endpoint: sa("10.0.0.1:6000"),
                server_key: None,
                advertised: None,
            }]
        );
        assert_eq!(high.peer_count(), 1);
        assert_eq!(low.stats().dials, 1);
    }

    fn looking(port: u16, id: u64) -> Vec<u8> {
        let mut b = frame::encode(port, id).to_vec();
        frame::set_flag(&mut b, frame::FLAG_LOOKING, true);
        b
    }

    #[test]
    fn a_joined_node_answers_newcomers_now_and_then_and_others_never() {
        let s = DiscoverySettings::for_interval(1_000);
        let mut d = Discovery::new(1, false, s, 0);
        // Not joined: never answers.
        d.handle_datagram(ip("10.0.0.2"), &looking(7000, 5), 0, ANY);
        assert!(!d.take_answer());
        // Joined, few peers known: answers, once per interval at most.
        d.set_joined(true);
        d.handle_datagram(ip("10.0.0.2"), &looking(7000, 5), 10, ANY);
        assert!(d.take_answer());
        assert!(!d.take_answer(), "taken");
        d.handle_datagram(ip("10.0.0.3"), &looking(7000, 6), 500, ANY);
        assert!(!d.take_answer(), "within the gap");
        d.handle_datagram(ip("10.0.0.3"), &looking(7000, 6), 1_100, ANY);
        assert!(d.take_answer());
        // A beacon that does not look for peers is not answered.
        d.handle_datagram(ip("10.0.0.4"), &frame::encode(7000, 7), 5_000, ANY);
        assert!(!d.take_answer());
        assert_eq!(d.stats().answers, 2);
    }

    #[test]
    fn among_many_joined_nodes_about_three_answer_a_newcomer() {
        let mut answers = 0;
        let nodes = 200u64;
        for me in 1..=nodes {
            let mut d = Discovery::new(me, false, DiscoverySettings::default(), 0);
            d.set_joined(true);
            // Everyone knows everyone.
            for other in 1..=nodes {
                let last = (other % 250) as u8;
                let from = IpAddr::from([10, 0, (other / 250) as u8, last]);
                d.handle_datagram(from, &frame::encode(7000, 1000 + other), 0, ANY);
            }
            d.handle_datagram(ip("10.9.9.9"), &looking(7000, 99_999), 10, ANY);
            answers += u64::from(d.take_answer());
        }
        assert!((1..=10).contains(&answers), "{answers} of {nodes} answered");
    }

    #[test]
    fn beacons_of_another_cluster_are_ignored_and_counted() {
        let mut prod =
            Discovery::new(10, false, DiscoverySettings::default(), 0).in_cluster("prod");
        let mut plain = Discovery::new(11, false, DiscoverySettings::default(), 0);
        let from_prod = frame::encode_for(7000, 20, None, "prod", None);
        let from_test = frame::encode_for(7000, 21, None, "test", None);
        let from_none = frame::encode(7000, 22);
        assert_eq!(
            prod.handle_datagram(ip("10.0.0.2"), &from_prod, 0, ANY),
            Heard::New
        );
        assert_eq!(
            prod.handle_datagram(ip("10.0.0.3"), &from_test, 0, ANY),
            Heard::OtherCluster
        );
        assert_eq!(
            prod.handle_datagram(ip("10.0.0.4"), &from_none, 0, ANY),
            Heard::OtherCluster
        );
        assert_eq!(
            plain.handle_datagram(ip("10.0.0.2"), &from_prod, 0, ANY),
            Heard::OtherCluster
        );
        assert_eq!(
            plain.handle_datagram(ip("10.0.0.4"), &from_none, 0, ANY),
            Heard::New
        );
        assert_eq!(prod.stats().other_cluster, 2);
        assert_eq!(prod.peer_count(), 1);
        assert_eq!(actions(&mut prod).len(), 1);
    }

    #[test]
    fn own_and_garbage_are_ignored() {
        let mut d = Discovery::new(10, false, DiscoverySettings::default(), 0);
        assert_eq!(
            d.handle_datagram(ip("127.0.0.1"), &frame::encode(5000, 10), 0, ANY),
            Heard::Own
        );
        assert_eq!(
            d.handle_datagram(ip("127.0.0.1"), b"ZRE\x01garbage", 0, ANY),
            Heard::Rejected(frame::Rejected::Magic)
        );
        assert_eq!(
            d.handle_datagram(ip("127.0.0.1"), b"ZGD\x01", 0, ANY),
            Heard::Rejected(frame::Rejected::Short)
        );
        assert_eq!(
            d.handle_datagram(ip("0.0.0.0"), &frame::encode(5000, 11), 0, ANY),
            Heard::BadSource
        );
        assert_eq!(
            d.handle_datagram(ip("255.255.255.255"), &frame::encode(5000, 11), 0, ANY),
            Heard::BadSource
        );
        assert_eq!(d.peer_count(), 0);
        assert!(actions(&mut d).is_empty());
        assert_eq!(d.stats().rejected, 4);
        assert_eq!(d.stats().own, 1);
    }

    #[test]
    fn a_moved_peer_is_followed_after_its_old_address_falls_silent() {
        let s = DiscoverySettings::for_interval(100); // stale after 300 ms
        let mut d = Discovery::new(1, false, s, 0);
        d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), 0, ANY);
        assert_eq!(actions(&mut d).len(), 1);
        // Both addresses beacon (multi-homed): stay.
        for t in 1..10 {
            d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), t * 100, ANY);
            assert_eq!(
                d.handle_datagram(ip("10.0.0.3"), &frame::encode(7000, 5), t * 100 + 50, ANY),
                Heard::Elsewhere
            );
        }
        assert!(actions(&mut d).is_empty());
        // The old address falls silent: after 300 ms the new one wins.
        assert_eq!(
            d.handle_datagram(ip("10.0.0.3"), &frame::encode(7000, 5), 1_100, ANY),
            Heard::Elsewhere
        );
        assert_eq!(
            d.handle_datagram(ip("10.0.0.3"), &frame::encode(7000, 5), 1_200, ANY),
            Heard::Moved
        );
        assert_eq!(
            actions(&mut d),
            [DiscoveryAction::Moved {
                peer: 5,
                endpoint: sa("10.0.0.3:7000"),
                server_key: None,
                advertised: None,
            }]
        );
        // A new port counts as a move too.
        d.handle_datagram(ip("10.0.0.3"), &frame::encode(7001, 5), 2_000, ANY);
        assert_eq!(
            actions(&mut d),
            [DiscoveryAction::Moved {
                peer: 5,
                endpoint: sa("10.0.0.3:7001"),
                server_key: None,
                advertised: None,
            }]
        );
        assert_eq!(d.stats().moves, 2);
    }

    #[test]
    fn a_peer_with_a_lower_id_is_handed_on_and_followed_too() {
        let s = DiscoverySettings::for_interval(100);
        let mut d = Discovery::new(9, false, s, 0);
        d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), 0, ANY);
        d.handle_datagram(ip("10.0.0.3"), &frame::encode(7000, 5), 1_000, ANY);
        assert_eq!(d.endpoint(5), Some(sa("10.0.0.3:7000")));
        assert_eq!(
            actions(&mut d),
            [
                DiscoveryAction::Found {
                    peer: 5,
                    endpoint: sa("10.0.0.2:7000"),
                    server_key: None,
                    advertised: None,
                },
                DiscoveryAction::Moved {
                    peer: 5,
                    endpoint: sa("10.0.0.3:7000"),
                    server_key: None,
                    advertised: None,
                }
            ]
        );
    }

    #[test]
    fn silent_peers_are_forgotten() {
        let s = DiscoverySettings {
            expiry_ms: 2_000,
            ..DiscoverySettings::for_interval(100)
        };
        let mut d = Discovery::new(1, false, s, 0);
        d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), 0, ANY);
        d.handle_datagram(ip("10.0.0.3"), &frame::encode(7000, 0xff), 0, ANY);
        actions(&mut d);
        d.handle_timeout(1_500);
        d.handle_datagram(ip("10.0.0.3"), &frame::encode(7000, 0xff), 1_500, ANY);
        d.handle_timeout(2_500);
        assert_eq!(actions(&mut d), [DiscoveryAction::Forget { peer: 5 }]);
        assert_eq!(d.peer_count(), 1);
        d.handle_timeout(10_000);
        assert_eq!(actions(&mut d), [DiscoveryAction::Forget { peer: 0xff }]);
        assert_eq!(d.peer_count(), 0);
        assert_eq!(d.poll_timeout(), None);
        // Heard again: a new peer, dialed again.
        d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), 11_000, ANY);
        assert!(matches!(
            &actions(&mut d)[..],
            [DiscoveryAction::Found { peer: 5, .. }]
        ));
    }

    #[test]
    fn a_restarted_node_on_the_same_endpoint_replaces_the_old_one() {
        let mut d = Discovery::new(1, false, DiscoverySettings::default(), 0);
        d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), 0, ANY);
        d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 6), 10, ANY);
        assert_eq!(
            actions(&mut d),
            [
                DiscoveryAction::Found {
                    peer: 5,
                    endpoint: sa("10.0.0.2:7000"),
                    server_key: None,
                    advertised: None,
                },
                DiscoveryAction::Forget { peer: 5 },
                DiscoveryAction::Found {
                    peer: 6,
                    endpoint: sa("10.0.0.2:7000"),
                    server_key: None,
                    advertised: None,
                },
            ]
        );
        assert_eq!(d.peer_count(), 1);
    }

    #[test]
    fn a_flood_is_capped_in_peers_and_in_dials_per_second() {
        let s = DiscoverySettings {
            max_peers: 50,
            dials_per_sec: 5,
            ..DiscoverySettings::default()
        };
        let mut d = Discovery::new(1, false, s, 0);
        for id in 2..10_000u64 {
            let src = IpAddr::from([10, 0, (id >> 8) as u8, id as u8]);
            d.handle_datagram(src, &frame::encode(7000, id), 0, ANY);
        }
        assert_eq!(d.peer_count(), 50);
        assert_eq!(d.stats().refused_full, 10_000 - 2 - 50);
        // A burst of 5 at once, then 5 a second.
        assert_eq!(actions(&mut d).len(), 5);
        let mut t = 0;
        let mut per_second = Vec::new();
        for _ in 0..20 {
            let mut n = 0;
            for _ in 0..10 {
                t += 100;
                d.handle_timeout(t);
                n += actions(&mut d).len();
            }
            per_second.push(n);
        }
        assert!(per_second.iter().all(|&n| n <= 5), "{per_second:?}");
        assert_eq!(d.stats().dials, 50);
        assert_eq!(d.poll_timeout(), Some(d.next_expiry_check));
    }

    #[test]
    fn waiting_dials_ask_for_a_timeout() {
        let s = DiscoverySettings {
            dials_per_sec: 1,
            ..DiscoverySettings::default()
        };
        let mut d = Discovery::new(1, false, s, 0);
        d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), 0, ANY);
        d.handle_datagram(ip("10.0.0.3"), &frame::encode(7000, 6), 0, ANY);
        assert_eq!(actions(&mut d).len(), 1);
        assert_eq!(d.poll_timeout(), Some(500)); // the expiry check comes first
        d.handle_timeout(999);
        assert!(actions(&mut d).is_empty());
        d.handle_timeout(1000);
        assert_eq!(actions(&mut d).len(), 1);
    }

    #[test]
    fn a_curve_node_dials_only_keyed_beacons_as_their_client() {
        let key = [0x42u8; 32];
        let mut d = Discovery::new(1, true, DiscoverySettings::default(), 0);
        assert_eq!(
            d.handle_datagram(ip("10.0.0.2"), &frame::encode(7000, 5), 0, ANY),
            Heard::Plain
        );
        assert_eq!(d.peer_count(), 0);
        assert_eq!(
            d.handle_datagram(ip("10.0.0.3"), &frame::encode_curve(7000, 6, &key), 0, ANY),
            Heard::New
        );
        assert_eq!(
            actions(&mut d),
            [DiscoveryAction::Found {
                peer: 6,
                endpoint: sa("10.0.0.3:7000"),
                server_key: Some(key),
                advertised: None,
            }]
        );
        let st = d.stats();
        assert_eq!((st.ignored_plain, st.ignored_curve, st.dials), (1, 0, 1));
    }

    #[test]
    fn a_plain_node_ignores_keyed_beacons() {
        let mut d = Discovery::new(1, false, DiscoverySettings::default(), 0);
        assert_eq!(
            d.handle_datagram(
                ip("10.0.0.3"),
                &frame::encode_curve(7000, 6, &[1; 32]),
                0,
                ANY
            ),
            Heard::Curve
        );
        assert_eq!(d.peer_count(), 0);
        assert!(actions(&mut d).is_empty());
        assert_eq!(d.stats().ignored_curve, 1);
    }

    #[test]
    fn access_rules_refuse_a_sender_before_it_is_tracked() {
        let allowed = [0x11u8; 32];
        let admit = |_: IpAddr, k: Option<&[u8; 32]>| k == Some(&allowed);
        let mut d = Discovery::new(1, true, DiscoverySettings::default(), 0);
        for id in 2..20u64 {
            let h = d.handle_datagram(
                ip("10.0.0.9"),
                &frame::encode_curve(7000, id, &[0x22; 32]),
                0,
                &admit,
            );
            assert_eq!(h, Heard::NotAllowed);
        }
        assert_eq!(d.peer_count(), 0);
        assert!(actions(&mut d).is_empty());
        assert_eq!(d.stats().not_allowed, 18);
        assert_eq!(
            d.handle_datagram(
                ip("10.0.0.2"),
                &frame::encode_curve(7000, 5, &allowed),
                0,
                &admit
            ),
            Heard::New
        );
        assert_eq!(actions(&mut d).len(), 1);
    }

    #[test]
    fn a_new_key_from_a_known_peer_is_followed_only_once_its_old_one_is_silent() {
        let s = DiscoverySettings::for_interval(100); // stale after 300 ms
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let mut d = Discovery::new(1, true, s, 0);
        d.handle_datagram(ip("10.0.0.2"), &frame::encode_curve(7000, 5, &old), 0, ANY);
        assert_eq!(actions(&mut d).len(), 1);
        // A forged beacon (same id, another key) while the real one beacons.
        for t in 1..10 {
            d.handle_datagram(
                ip("10.0.0.2"),
                &frame::encode_curve(7000, 5, &old),
                t * 100,
                ANY,
            );
            assert_eq!(
                d.handle_datagram(
                    ip("10.0.0.2"),
                    &frame::encode_curve(7000, 5, &new),
                    t * 100 + 50,
                    ANY
                ),
                Heard::Elsewhere
            );
        }
        assert!(actions(&mut d).is_empty());
        // The node restarted with a new key: followed, as a CURVE client of it.
        d.handle_datagram(
            ip("10.0.0.2"),
            &frame::encode_curve(7000, 5, &new),
            1_300,
            ANY,
        );
        assert_eq!(
            actions(&mut d),
            [DiscoveryAction::Moved {
                peer: 5,
                endpoint: sa("10.0.0.2:7000"),
                server_key: Some(new),
                advertised: None,
            }]
        );
    }

    #[test]
    fn announcements_other_than_beacons_follow_the_beacons_rules() {
        let key = [5u8; 32];
        let announce = |id: u64, key: Option<[u8; 32]>, cluster: &str| frame::Announce {
            version: 0,
            flags: 0,
            port: 0,
            node_id: id,
            public_key: key,
            cluster: cluster.into(),
            anchor: None,
            advertised: None,
        };
        let s = DiscoverySettings {
            max_peers: 2,
            ..DiscoverySettings::default()
        };
        let mut d = Discovery::new(1, true, s, 0).in_cluster("lab");
        let at = sa("10.0.0.2:7000");
        assert_eq!(
            d.handle_announce(at, &announce(1, Some(key), "lab"), 0, ANY),
            Heard::Own
        );
        assert_eq!(
            d.handle_announce(at, &announce(2, None, "lab"), 0, ANY),
            Heard::Plain
        );
        assert_eq!(
            d.handle_announce(at, &announce(3, Some(key), "other"), 0, ANY),
            Heard::OtherCluster
        );
        let refuse = |_: IpAddr, _: Option<&[u8; 32]>| false;
        assert_eq!(
            d.handle_announce(at, &announce(4, Some(key), "lab"), 0, &refuse),
            Heard::NotAllowed
        );
        assert_eq!(
            d.handle_announce(at, &announce(5, Some(key), "lab"), 0, ANY),
            Heard::New
        );
        assert_eq!(
            actions(&mut d),
            [DiscoveryAction::Found {
                peer: 5,
                endpoint: at,
                server_key: Some(key),
                advertised: None,
            }]
        );
        // Heard again: known, not handed on twice; the table is bounded.
        assert_eq!(
            d.handle_announce(at, &announce(5, Some(key), "lab"), 9, ANY),
            Heard::Known
        );
        let far = sa("10.0.0.3:7000");
        d.handle_announce(far, &announce(6, Some(key), "lab"), 9, ANY);
        let farther = sa("10.0.0.4:7000");
        assert_eq!(
            d.handle_announce(farther, &announce(7, Some(key), "lab"), 9, ANY),
            Heard::Full
        );
        let st = d.stats();
        assert_eq!(st.beacons, 0, "not beacons");
        assert_eq!(
            (
                st.own,
                st.ignored_plain,
                st.other_cluster,
                st.not_allowed,
                st.refused_full
            ),
            (1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn a_peer_heard_over_both_families_is_one_peer_kept_at_its_ipv4_address() {
        let s = DiscoverySettings::for_interval(100); // stale after 300 ms
        let b = frame::encode(7000, 5);
        // Heard over IPv6 first: handed on there, then taken to IPv4 at
        // once; IPv6 beacons after that change nothing.
        let mut d = Discovery::new(1, false, s.clone(), 0).preferring_ipv4();
        assert_eq!(d.handle_datagram(ip("fd00::5"), &b, 0, ANY), Heard::New);
        assert_eq!(d.handle_datagram(ip("10.0.0.5"), &b, 1, ANY), Heard::Moved);
        for t in 2..20 {
            assert_eq!(
                d.handle_datagram(ip("fd00::5"), &b, t * 50, ANY),
                Heard::Elsewhere
            );
            assert_eq!(
                d.handle_datagram(ip("10.0.0.5"), &b, t * 50 + 1, ANY),
                Heard::Known
            );
        }
        assert_eq!(d.peer_count(), 1);
        assert_eq!(
            actions(&mut d),
            [
                DiscoveryAction::Found {
                    peer: 5,
                    endpoint: sa("[fd00::5]:7000"),
                    server_key: None,
                    advertised: None,
                },
                DiscoveryAction::Moved {
                    peer: 5,
                    endpoint: sa("10.0.0.5:7000"),
                    server_key: None,
                    advertised: None,
                },
            ]
        );
        assert_eq!(d.stats().family_switches, 1);
        // IPv4 falls silent: IPv6 takes over after the stale time, and
        // IPv4 takes it back as soon as it is heard again.
        assert_eq!(
            d.handle_datagram(ip("fd00::5"), &b, 1_500, ANY),
            Heard::Moved
        );
        assert_eq!(
            d.handle_datagram(ip("10.0.0.5"), &b, 1_600, ANY),
            Heard::Moved
        );
        assert_eq!(d.endpoint(5), Some(sa("10.0.0.5:7000")));
        assert_eq!(d.peer_count(), 1);
        // Heard over IPv4 first: one peer, one hand-on, IPv6 ignored.
        let mut d = Discovery::new(1, false, s.clone(), 0).preferring_ipv4();
        assert_eq!(d.handle_datagram(ip("10.0.0.5"), &b, 0, ANY), Heard::New);
        assert_eq!(
            d.handle_datagram(ip("fd00::5"), &b, 1, ANY),
            Heard::Elsewhere
        );
        assert_eq!(actions(&mut d).len(), 1);
        // A forged IPv4 beacon with another key is not taken at once.
        let mut d = Discovery::new(1, true, s.clone(), 0).preferring_ipv4();
        let real = frame::encode_curve(7000, 5, &[1; 32]);
        let forged = frame::encode_curve(7000, 5, &[2; 32]);
        d.handle_datagram(ip("fd00::5"), &real, 0, ANY);
        assert_eq!(
            d.handle_datagram(ip("10.0.0.9"), &forged, 1, ANY),
            Heard::Elsewhere
        );
        // Without the preference: the first address heard stays.
        let mut d = Discovery::new(1, false, s, 0);
        d.handle_datagram(ip("fd00::5"), &b, 0, ANY);
        assert_eq!(
            d.handle_datagram(ip("10.0.0.5"), &b, 1, ANY),
            Heard::Elsewhere
        );
        assert_eq!(d.endpoint(5), Some(sa("[fd00::5]:7000")));
    }

    #[test]
    fn an_advertised_endpoint_is_dialled_instead_of_the_source() {
        let ep = "tcp://198.51.100.7:7000";
        let b = frame::encode_advertised(7000, 5, None, "", 5, ep);
        let mut d = Discovery::new(1, false, DiscoverySettings::default(), 0);
        assert_eq!(d.handle_datagram(ip("10.0.0.5"), &b, 0, ANY), Heard::New);
        let found = actions(&mut d);
        assert_eq!(
            found,
            [DiscoveryAction::Found {
                peer: 5,
                endpoint: sa("10.0.0.5:7000"),
                server_key: None,
                advertised: Some(ep.into()),
            }]
        );
        assert_eq!(found[0].dial_endpoint().as_deref(), Some(ep));
        // Heard over the other family too: the same peer, nothing new.
        assert_eq!(
            d.handle_datagram(ip("fd00::5"), &b, 10, ANY),
            Heard::Elsewhere
        );
        // A new advertised endpoint is a move (once the old one is silent).
        let other = frame::encode_advertised(7000, 5, None, "", 5, "tcp://peer.example:7000");
        d.handle_datagram(ip("10.0.0.5"), &other, 60_000, ANY);
        assert_eq!(
            actions(&mut d)
                .iter()
                .map(DiscoveryAction::dial_endpoint)
                .collect::<Vec<_>>(),
            [Some("tcp://peer.example:7000".to_string())]
        );
        // Without one: the source address.
        let plain = DiscoveryAction::Found {
            peer: 6,
            endpoint: sa("[fd00::6]:7000"),
            server_key: None,
            advertised: None,
        };
        assert_eq!(
            plain.dial_endpoint().as_deref(),
            Some("tcp://[fd00::6]:7000")
        );
        assert_eq!(DiscoveryAction::Forget { peer: 6 }.dial_endpoint(), None);
    }

    #[test]
    fn access_rules_apply_to_an_advertised_address_and_bad_ones_are_counted() {
        let admit =
            |ip: IpAddr, _: Option<&[u8; 32]>| ip != "203.0.113.66".parse::<IpAddr>().unwrap();
        let mut d = Discovery::new(1, false, DiscoverySettings::default(), 0);
        let denied = frame::encode_advertised(7000, 5, None, "", 5, "tcp://203.0.113.66:7000");
        assert_eq!(
            d.handle_datagram(ip("10.0.0.5"), &denied, 0, &admit),
            Heard::NotAllowed
        );
        let mut bad = frame::encode_advertised(7000, 6, None, "", 6, "tcp://10.0.0.6:7000");
        let n = bad.len();
        bad[n - 1] = b'1'; // another port than the beacon's
        assert_eq!(
            d.handle_datagram(ip("10.0.0.6"), &bad, 0, &admit),
            Heard::Rejected(frame::Rejected::Advertise)
        );
        assert_eq!(d.peer_count(), 0);
        assert_eq!((d.stats().not_allowed, d.stats().rejected), (1, 1));
        assert!(actions(&mut d).is_empty());
    }

    #[test]
    fn endpoints_format_for_connect() {
        assert_eq!(endpoint_string(sa("10.0.0.1:5")), "tcp://10.0.0.1:5");
        assert_eq!(endpoint_string(sa("[fd00::1]:5")), "tcp://[fd00::1]:5");
    }
}
