//! The root of the broadcast tree, and each node's way to it.
//!
//! Plumtree alone keeps the eager links of whichever copies came first:
//! the tree takes the shape of the first senders' floods, then of every
//! repair, and from a random sender the last node is reached in 2.7 to 3
//! times the overlay's eccentricity (docs/benchmarks.md). With writes from
//! many senders at once, the duplicates of one write prune links that
//! carry another, and the tree is cut and repaired over and over.
//!
//! So the tree has a root: the node with the smallest id in the connected
//! overlay, elected as a distance vector. Each node takes as its *parent*
//! the tree link whose other end is nearest to the root (in hops), and the
//! tree links between parents and children are the eager ones; the others
//! only announce (`tree.rs`). A shortest-path tree of the root reaches any
//! node from any sender in at most the sender's distance to the root plus
//! the root's eccentricity, and it does not depend on who writes.
//!
//! Every link is told the node's root, the root's newest *sequence number*
//! it has taken, its *level* (hops to the root) and whether the receiver
//! is its parent (`ROOT`, docs/protocol.md section 12.2). The root counts
//! its sequence number up every `overlay/root-interval`; as in Babel
//! (RFC 8966) and DSDV, a node takes a way to the root only if it cannot
//! pass through the node itself: a newer sequence number, or the same one
//! from a link at most as far from the root as the node has been at that
//! number (its *feasibility distance*; every way down from the root at
//! one number goes one level further each hop, so no such link is below
//! the node). A
//! node that loses its parent and has no such way is *detached* (it tells
//! its links [`ROOT_UNREACHABLE`], so its children look elsewhere) until
//! the root's next number reaches it (it asks for one). A root whose
//! number has not advanced for `overlay/root-timeout` is gone: its numbers
//! so far are refused from then on, each node stands as its own root, and
//! the smallest id wins again. A parent whose way is cut tells so (it
//! detaches, or takes another way), so a node keeps its parent while the
//! parent's numbers lag behind others it hears: switching on every newer
//! number would move parents at every wave.
//!
//! Nothing here decides whether a write arrives: the root only says which
//! links push. A node with no word from a link (a peer that does not send
//! `ROOT`, or one with another root) leaves that link to Plumtree's own
//! rules, and lazy links, grafts and set reconciliation still bring what
//! a broken tree misses.
//!
//! A pure state machine: link events, adverts and the time (ms) go in,
//! adverts to send come out; [`TreeRoot::is_tree_link`] says which links
//! are the tree's.

use std::collections::{BTreeMap, VecDeque};

use super::ConnId;
use crate::wire::overlay::Message;
pub use crate::wire::overlay::{RootAdvert, ROOT_UNREACHABLE};

/// Roots whose numbers are refused, at most (beyond, the smallest id is
/// forgotten to make room).
const EXPIRED_KEPT: usize = 64;

/// The root a node names while it follows none: one that does not listen
/// never roots the tree (a client, a short-lived `zgossip put`: a root
/// that leaves costs the network a new election), and until it takes a
/// listening node's root it names this, which no one takes.
pub const NO_ROOT: u64 = u64::MAX;

/// Counters of the root's election.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootStats {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Adverts of a root gone (numbers already timed out).
    pub adverts_refused: u64,
    pub parent_changes: u64,
    pub root_changes: u64,
    /// Roots given up for silence.
    pub expiries: u64,
    /// Times the node lost its parent with no other way to the root.
    pub detachments: u64,
    /// ROOT-REQUESTs sent (a detached node's) or passed on to a parent.
    pub requests_sent: u64,
    /// New numbers this node sent, as the root, when asked.
    pub requests_answered: u64,
}

/// The node's way to the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    root: u64,
    seq: u64,
    level: u8,
    parent: Option<ConnId>,
}

/// The root of the broadcast tree as one node knows it.
#[derive(Debug)]
pub struct TreeRoot {
    me: u64,
    /// Whether this node may root the tree (it listens).
    candidate: bool,
    interval_ms: u64,
    timeout_ms: u64,
    /// The tree links, and what each other end last said.
    links: BTreeMap<ConnId, Option<RootAdvert>>,
    route: Route,
    detached: bool,
    /// The feasibility distance toward `route.root`: (seq, level).
    feasible: (u64, u8),
    /// The newest number of `route.root` heard, and when it first came.
    newest: (u64, u64),
    /// This node's own number, counted up while it is the root.
    own_seq: u64,
    next_emit: Option<u64>,
    /// Roots gone, and their last number.
    expired: BTreeMap<u64, u64>,
    /// What each link was last told.
    told: BTreeMap<ConnId, RootAdvert>,
    /// Adverts that came on connections not (yet) tree links: the other
    /// end may take the link into its tree first (a neighbour request is
    /// accepted before the asking end learns it), and tells it once.
    early: BTreeMap<ConnId, RootAdvert>,
    /// The number a request was last sent or passed on for.
    requested: Option<u64>,
    /// When this node, as the root, last sent a number it was asked for.
    answered_at: Option<u64>,
    out: VecDeque<(ConnId, Message)>,
    pub stats: RootStats,
}

impl TreeRoot {
    /// The root of node `me`. `interval_ms` 0: the node takes no part (it
    /// sends nothing and names no tree link).
    pub fn new(me: u64, interval_ms: u64, timeout_ms: u64) -> TreeRoot {
        let own_seq = 0;
        TreeRoot {
            me,
            candidate: false,
            interval_ms,
            timeout_ms,
            links: BTreeMap::new(),
            route: Route {
                root: NO_ROOT,
                seq: own_seq,
                level: 0,
                parent: None,
            },
            detached: false,
            feasible: (own_seq, 0),
            newest: (own_seq, 0),
            own_seq,
            next_emit: None,
            expired: BTreeMap::new(),
            told: BTreeMap::new(),
            early: BTreeMap::new(),
            requested: None,
            answered_at: None,
            out: VecDeque::new(),
            stats: RootStats::default(),
        }
    }

    /// Whether this node may root the tree: only a node that listens
    /// (others dial it; `Engine::set_endpoint`).
    pub fn set_candidate(&mut self, candidate: bool, now: u64) {
        if candidate == self.candidate {
            return;
        }
        let own_root = self.route.root == self.own();
        self.candidate = candidate;
        if own_root || self.route.root == self.me {
            self.become_root(now);
        }
        self.select(now);
    }

    /// The root this node stands as when it follows none.
    fn own(&self) -> u64 {
        if self.candidate {
            self.me
        } else {
            NO_ROOT
        }
    }

    /// Whether this node is the root.
    fn is_root(&self) -> bool {
        self.candidate && self.route.root == self.me
    }

    /// Whether the node takes part (`overlay/root-interval` above 0).
    pub fn enabled(&self) -> bool {
        self.interval_ms > 0
    }

    /// New settings; 0 turns the root off (every link is left to
    /// Plumtree's rules).
    pub fn set_settings(&mut self, interval_ms: u64, timeout_ms: u64, now: u64) {
        let was = self.enabled();
        self.interval_ms = interval_ms;
        self.timeout_ms = timeout_ms;
        if !self.enabled() {
            self.next_emit = None;
            self.told.clear();
        } else if !was {
            self.become_root(now);
        }
    }

    /// The root's id, this node's level, and whether it is detached.
    pub fn root(&self) -> (u64, u8, bool) {
        (self.route.root, self.route.level, self.detached)
    }

    /// The link to this node's parent (`None`: it is the root, or
    /// detached).
    pub fn parent(&self) -> Option<ConnId> {
        self.route.parent
    }

    /// Whether `conn` is one of the tree links.
    pub fn has_link(&self, conn: ConnId) -> bool {
        self.links.contains_key(&conn)
    }

    /// The tree links.
    pub fn link_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.links.keys().copied()
    }

    /// Whether `conn` joins this node to its parent or to a child: the
    /// tree's links push, the others announce. `None`: the root cannot
    /// say (the link has told nothing, names another root, or one of its
    /// ends is detached: the links it had keep pushing meanwhile, so a
    /// node cut from the root still sends its writes on), and Plumtree's
    /// rules decide.
    pub fn is_tree_link(&self, conn: ConnId) -> Option<bool> {
        if !self.enabled() {
            return None;
        }
        let heard = self.links.get(&conn)?;
        if self.route.parent == Some(conn) {
            return Some(true);
        }
        if self.route.root == NO_ROOT {
            return None;
        }
        let a = (*heard)?;
        if a.root != self.route.root || a.level == ROOT_UNREACHABLE {
            return None;
        }
        match (a.parent, self.detached) {
            (true, _) => Some(true),
            (false, true) => None,
            (false, false) => Some(false),
        }
    }

    /// The next message to send: `ROOT` or `ROOT-REQUEST`.
    pub fn poll_action(&mut self) -> Option<(ConnId, Message)> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let expiry = (self.route.root != self.own()).then(|| self.newest.1 + self.timeout_ms);
        [self.next_emit, expiry].into_iter().flatten().min()
    }

    /// A tree link opened (again: nothing changes): it is told the root
    /// at once. The node's own
    /// numbers start, at its first link, at `wall_ms` (the wall clock: a
    /// node that restarts goes on above the numbers it used before).
    pub fn link_up(&mut self, conn: ConnId, now: u64, wall_ms: u64) {
        if self.links.contains_key(&conn) {
            return;
        }
        if self.own_seq == 0 {
            self.own_seq = wall_ms.max(1);
            if self.route.root == self.own() {
                self.route.seq = self.own_seq;
                self.feasible = (self.own_seq, 0);
                self.newest = (self.own_seq, now);
            }
        }
        let early = self.early.remove(&conn);
        self.links.insert(conn, None);
        if self.enabled() && self.is_root() && self.next_emit.is_none() {
            self.next_emit = Some(now + self.interval_ms);
        }
        self.advertise();
        if let Some(advert) = early {
            self.heard(conn, advert, now);
        }
    }

    /// A tree link closed: a node whose parent it was looks for another
    /// way to the root.
    pub fn link_down(&mut self, conn: ConnId, now: u64) {
        self.early.remove(&conn);
        self.links.remove(&conn);
        self.told.remove(&conn);
        if self.route.parent == Some(conn) {
            self.select(now);
        }
    }

    /// The other end of `conn` told its root.
    /// (On a connection that is not a tree link yet, it is kept until the
    /// link joins the tree or closes.)
    pub fn heard(&mut self, conn: ConnId, advert: RootAdvert, now: u64) {
        let Some(slot) = self.links.get_mut(&conn) else {
            self.early.insert(conn, advert);
            return;
        };
        *slot = Some(advert);
        self.stats.adverts_received += 1;
        if !self.enabled() {
            return;
        }
        if self.is_refused(&advert) {
            self.stats.adverts_refused += 1;
        }
        if advert.root == self.route.root && advert.seq > self.newest.0 {
            self.newest = (advert.seq, now);
        }
        self.select(now);
    }

    /// A silent root is given up; the root counts its number up.
    pub fn handle_timeout(&mut self, now: u64) {
        if !self.enabled() {
            return;
        }
        if self.route.root != self.own() && now >= self.newest.1 + self.timeout_ms {
            self.stats.expiries += 1;
            if self.expired.len() >= EXPIRED_KEPT {
                if let Some(&oldest) = self.expired.keys().next() {
                    self.expired.remove(&oldest);
                }
            }
            self.expired.insert(self.route.root, self.newest.0);
            self.become_root(now);
            self.select(now);
        }
        if self.is_root() && self.next_emit.is_some_and(|t| t <= now) {
            self.emit(now);
        }
    }

    /// The root sends its next number.
    fn emit(&mut self, now: u64) {
        self.own_seq += 1;
        self.route.seq = self.own_seq;
        self.feasible = (self.own_seq, 0);
        self.newest = (self.own_seq, now);
        self.next_emit = Some(now + self.interval_ms);
        self.advertise();
    }

    /// The shortest time between two numbers the root sends when asked
    /// (a fifth of the interval): one lost link near the root detaches
    /// many nodes at once, and their requests meet on the way up.
    fn answer_gap(&self) -> u64 {
        self.interval_ms / 5
    }

    /// The other end of `conn` lost its way to `root` at number `seq` and
    /// asks for a newer one. The root sends one (at most one per
    /// [`Self::answer_gap`]); a node on its way passes the request to its
    /// parent, once per number; the others let it be.
    pub fn request(&mut self, conn: ConnId, root: u64, seq: u64, now: u64) {
        if !self.enabled() || !self.links.contains_key(&conn) || root != self.route.root {
            return;
        }
        if self.is_root() {
            if seq < self.own_seq {
                return; // a newer number is on its way
            }
            let due = self.answered_at.map_or(now, |t| t + self.answer_gap());
            if due <= now {
                self.answered_at = Some(now);
                self.stats.requests_answered += 1;
                self.emit(now);
            } else {
                self.next_emit = Some(self.next_emit.map_or(due, |t| t.min(due)));
            }
            return;
        }
        if let Some(parent) = self.route.parent {
            let on_its_way = !self.detached && seq >= self.route.seq;
            if on_its_way && self.requested != Some(seq) {
                self.requested = Some(seq);
                self.stats.requests_sent += 1;
                self.out
                    .push_back((parent, Message::RootRequest { root, seq }));
            }
        }
    }

    fn is_refused(&self, a: &RootAdvert) -> bool {
        self.expired.get(&a.root).is_some_and(|&s| a.seq <= s)
    }

    /// Whether the way through a link that said `a` may be taken.
    fn usable(&self, a: &RootAdvert) -> bool {
        a.level < ROOT_UNREACHABLE - 1
            && a.root != self.me
            && a.root != NO_ROOT
            && !self.is_refused(a)
    }

    /// Stands as its own root (a node that does not listen: as none).
    fn become_root(&mut self, now: u64) {
        if self.route.root != self.own() {
            self.stats.root_changes += 1;
        }
        self.route = Route {
            root: self.own(),
            seq: self.own_seq,
            level: 0,
            parent: None,
        };
        self.detached = false;
        self.feasible = (self.own_seq, 0);
        self.newest = (self.own_seq, now);
        self.next_emit = self.candidate.then_some(now + self.interval_ms);
        self.advertise();
    }

    /// Takes the best way to the smallest root known: among the links
    /// that name it, the nearest feasible one (the current parent while
    /// it is as near as any).
    fn select(&mut self, now: u64) {
        if !self.enabled() {
            return;
        }
        let before = (self.route, self.detached);
        // The root: the smallest of this node, the root it follows (until
        // that root times out: a detached node waits for it rather than
        // make a tree of its own) and the roots its links name.
        let mut best = self.own().min(self.route.root);
        for a in self.links.values().flatten() {
            if self.usable(a) {
                best = best.min(a.root);
            }
        }
        if best == self.own() {
            if self.route.root != self.own() {
                self.become_root(now);
            }
            self.finish(before);
            return;
        }
        let same = best == self.route.root;
        let mut pick: Option<(ConnId, RootAdvert)> = None;
        for (&conn, a) in &self.links {
            let Some(a) = a else { continue };
            if a.root != best || !self.usable(a) {
                continue;
            }
            if same {
                let (fseq, flevel) = self.feasible;
                // At one number, levels grow by one along every way
                // down from the root: a link at most as far as this node
                // ever was cannot lead back through it.
                let feasible = a.seq > fseq || (a.seq == fseq && a.level <= flevel);
                if !feasible {
                    continue;
                }
            }
            let rank = |c: ConnId, a: &RootAdvert| (a.level, self.route.parent != Some(c), c);
            if pick.is_none_or(|(pc, pa)| rank(conn, a) < rank(pc, &pa)) {
                pick = Some((conn, *a));
            }
        }
        match pick {
            Some((conn, a)) => {
                let level = a.level + 1;
                if !same {
                    self.stats.root_changes += 1;
                    self.feasible = (a.seq, level);
                    self.newest = (a.seq, now);
                    self.next_emit = None;
                } else if a.seq > self.feasible.0 {
                    self.feasible = (a.seq, level);
                } else {
                    self.feasible.1 = self.feasible.1.min(level);
                }
                if a.seq > self.newest.0 {
                    self.newest = (a.seq, now);
                }
                self.route = Route {
                    root: best,
                    seq: a.seq,
                    level,
                    parent: Some(conn),
                };
                self.detached = false;
            }
            None => {
                // Only a node that follows this root gets here (`same`):
                // it waits, detached, for the root's next number.
                self.route.parent = None;
                if !self.detached {
                    self.detached = true;
                    self.stats.detachments += 1;
                    self.ask_for_a_number();
                }
            }
        }
        self.finish(before);
    }

    /// A detached node asks its links (but its children) to have the root
    /// send a newer number.
    fn ask_for_a_number(&mut self) {
        if self.requested == Some(self.route.seq) {
            return;
        }
        self.requested = Some(self.route.seq);
        let (root, seq) = (self.route.root, self.route.seq);
        for (&conn, heard) in &self.links {
            if heard.is_some_and(|a| a.parent && a.root == root) {
                continue;
            }
            self.stats.requests_sent += 1;
            self.out
                .push_back((conn, Message::RootRequest { root, seq }));
        }
    }

    fn finish(&mut self, before: (Route, bool)) {
        if before.0.parent != self.route.parent {
            self.stats.parent_changes += 1;
        }
        if before != (self.route, self.detached) {
            self.advertise();
        }
    }

    /// Tells every link what it was not told yet.
    fn advertise(&mut self) {
        if !self.enabled() {
            return;
        }
        let level = if self.detached {
            ROOT_UNREACHABLE
        } else {
            self.route.level
        };
        for &conn in self.links.keys() {
            let a = RootAdvert {
                root: self.route.root,
                seq: self.route.seq,
                level,
                parent: !self.detached && self.route.parent == Some(conn),
            };
            if self.told.get(&conn) != Some(&a) {
                self.told.insert(conn, a);
                self.stats.adverts_sent += 1;
                self.out.push_back((conn, Message::Root(a)));
            }
        }
    }
}

#[cfg(test)]
#[path = "tree_root_tests.rs"]
mod tests;
