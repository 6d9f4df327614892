//! A deterministic network simulator for the gossip engine.
//!
//! Many [`Engine`]s run in one thread on a virtual clock, joined by virtual
//! connections with latency, loss and reordering; nodes can be partitioned
//! and restarted. Everything random comes from one seeded generator, so a
//! seed replays a run exactly. Tests use it to check convergence under
//! hostile conditions; benchmarks use it to measure rounds and messages.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};

use crate::engine::{Action, ConnId, Engine, Now, Peer, RemoteId, Role, Settings};
use crate::store::Version;

/// A small, fast, seeded generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Network conditions.
#[derive(Debug, Clone)]
pub struct Conditions {
    /// One-way latency of a frame, drawn uniformly per frame (so frames on
    /// one connection can overtake each other when `min < max`).
    pub latency_ms: (u64, u64),
    /// Probability that a frame is lost.
    pub loss: f64,
}

impl Default for Conditions {
    fn default() -> Conditions {
        Conditions {
            latency_ms: (1, 1),
            loss: 0.0,
        }
    }
}

struct SimNode {
    engine: Option<Engine>,
    /// Servers this node keeps connected (re-added after a restart).
    remotes: Vec<usize>,
    /// This node's wall clock minus the true one.
    skew_ms: i64,
    generation: u64,
}

struct Link {
    client: usize,
    server: usize,
    client_conn: ConnId,
    server_conn: ConnId,
}

/// A frame on the virtual wire: (deliver at, sequence, link, to server?,
/// bytes); ordered by delivery time, then sending order.
type InFlight = Reverse<(u64, u64, u64, bool, Vec<u8>)>;

/// A node's store for comparison: key -> (version, deleted, value).
pub type StoreState = BTreeMap<String, (Version, bool, String)>;

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    pub frames_sent: u64,
    pub frames_lost: u64,
    pub bytes_sent: u64,
    pub links_opened: u64,
    pub dials_failed: u64,
    pub restarts: u64,
}

/// The simulated network.
pub struct Sim {
    pub rng: Rng,
    pub conditions: Conditions,
    settings: Settings,
    nodes: Vec<SimNode>,
    links: BTreeMap<u64, Link>,
    /// conn id -> link id
    conn_link: BTreeMap<ConnId, u64>,
    next_id: u64,
    /// In-flight frames: (deliver at, sequence, link, to server?, frame).
    wire: BinaryHeap<InFlight>,
    seq: u64,
    /// Pairs of nodes that cannot reach each other.
    cut: HashSet<(usize, usize)>,
    now_ms: u64,
    pub stats: SimStats,
    dirty: Vec<ConnId>,
}

/// Wall-clock origin of the simulation (2023-11-14), so versions look real.
const WALL_ORIGIN: u64 = 1_700_000_000_000;

impl Sim {
    /// A network of `n` nodes, none connected yet.
    pub fn new(n: usize, seed: u64, settings: Settings) -> Sim {
        let mut sim = Sim {
            rng: Rng::new(seed),
            conditions: Conditions::default(),
            settings,
            nodes: Vec::new(),
            links: BTreeMap::new(),
            conn_link: BTreeMap::new(),
            next_id: 1,
            wire: BinaryHeap::new(),
            seq: 0,
            cut: HashSet::new(),
            now_ms: 0,
            stats: SimStats::default(),
            dirty: Vec::new(),
        };
        for _ in 0..n {
            sim.nodes.push(SimNode {
                engine: None,
                remotes: Vec::new(),
                skew_ms: 0,
                generation: 0,
            });
        }
        for i in 0..n {
            sim.start(i);
        }
        sim
    }

    /// Settings the simulator suggests: short timers so that virtual runs
    /// stay short.
    pub fn fast_settings() -> Settings {
        Settings {
            session_timeout_ms: 1_000,
            ping_interval_ms: 250,
            remote_timeout_ms: 3_000,
            reconnect_ivl_ms: 100,
            reconnect_ivl_max_ms: 1_000,
            sync_interval_ms: 2_000,
            tombstone_grace_ms: 3_600_000,
            expired_grace_ms: 60_000,
            max_clock_ahead_ms: 60_000,
            max_backlog_bytes: 256 << 20,
            ..Settings::default()
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Virtual milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn now_of(&self, node: usize) -> Now {
        let skew = self.nodes[node].skew_ms;
        Now {
            mono_ms: self.now_ms,
            wall_ms: (WALL_ORIGIN + self.now_ms).saturating_add_signed(skew),
        }
    }

    /// Sets a node's clock skew (its wall clock minus the true one).
    pub fn set_skew(&mut self, node: usize, skew_ms: i64) {
        self.nodes[node].skew_ms = skew_ms;
    }

    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.generation += 1;
        let id = ((i as u64) << 20) | n.generation;
        let engine = Engine::new(&format!("n{i}"), id, self.settings.clone());
        n.engine = Some(engine);
        let now = self.now_of(i);
        let remotes = self.nodes[i].remotes.clone();
        if let Some(e) = self.nodes[i].engine.as_mut() {
            for server in remotes {
                e.add_remote(&format!("sim://{server}"), now);
            }
        }
    }

    /// The engine of node `i` (None while it is down).
    pub fn engine(&self, i: usize) -> Option<&Engine> {
        self.nodes[i].engine.as_ref()
    }

    pub fn engine_mut(&mut self, i: usize) -> Option<&mut Engine> {
        self.nodes[i].engine.as_mut()
    }

    /// Node `client` keeps a connection to node `server`.
    pub fn connect(&mut self, client: usize, server: usize) {
        self.nodes[client].remotes.push(server);
        let now = self.now_of(client);
        if let Some(e) = self.nodes[client].engine.as_mut() {
            e.add_remote(&format!("sim://{server}"), now);
        }
    }

    pub fn publish(&mut self, node: usize, key: &str, value: &str, ttl_ms: Option<u64>) {
        let now = self.now_of(node);
        if let Some(e) = self.nodes[node].engine.as_mut() {
            e.publish(key, value, ttl_ms, now);
        }
    }

    pub fn unpublish(&mut self, node: usize, key: &str) {
        let now = self.now_of(node);
        if let Some(e) = self.nodes[node].engine.as_mut() {
            e.unpublish(key, now);
        }
    }

    /// Stops node `i` and starts it again with an empty store (as a process
    /// restart): its connections close and are redialled.
    pub fn restart(&mut self, i: usize) {
        self.stats.restarts += 1;
        let links: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.client == i || l.server == i)
            .map(|(id, _)| *id)
            .collect();
        for id in links {
            self.close_link(id);
        }
        self.nodes[i].engine = None;
        self.start(i);
    }

    /// Cuts every link between the nodes in `side` and the rest.
    pub fn partition(&mut self, side: &[usize]) {
        let inside: HashSet<usize> = side.iter().copied().collect();
        for a in 0..self.nodes.len() {
            for b in 0..self.nodes.len() {
                if inside.contains(&a) != inside.contains(&b) {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    fn close_link(&mut self, id: u64) {
        let Some(l) = self.links.remove(&id) else {
            return;
        };
        self.conn_link.remove(&l.client_conn);
        self.conn_link.remove(&l.server_conn);
        let (nc, ns) = (self.now_of(l.client), self.now_of(l.server));
        if let Some(e) = self.nodes[l.client].engine.as_mut() {
            e.handle_closed(l.client_conn, nc);
        }
        if let Some(e) = self.nodes[l.server].engine.as_mut() {
            e.handle_closed(l.server_conn, ns);
        }
    }

    fn dial(&mut self, client: usize, remote: RemoteId, endpoint: &str) {
        let server = endpoint
            .strip_prefix("sim://")
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&s| s < self.nodes.len());
        let now_c = self.now_of(client);
        let reachable =
            server.filter(|&s| self.nodes[s].engine.is_some() && !self.cut.contains(&(client, s)));
        let Some(server) = reachable else {
            self.stats.dials_failed += 1;
            if let Some(e) = self.nodes[client].engine.as_mut() {
                e.handle_dial_failed(remote, "unreachable", now_c);
            }
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        let (cc, sc) = (id * 2, id * 2 + 1);
        self.links.insert(
            id,
            Link {
                client,
                server,
                client_conn: cc,
                server_conn: sc,
            },
        );
        self.conn_link.insert(cc, id);
        self.conn_link.insert(sc, id);
        self.stats.links_opened += 1;
        let peer = Peer {
            addr: None,
            zgp2: true,
            timeout_ms: Some(self.settings.session_timeout_ms),
            max_frame: None,
        };
        let now_s = self.now_of(server);
        if let Some(e) = self.nodes[server].engine.as_mut() {
            e.handle_connected(sc, Role::Inbound, peer, now_s);
        }
        if let Some(e) = self.nodes[client].engine.as_mut() {
            e.handle_connected(cc, Role::Outbound(remote), peer, now_c);
        }
    }

    /// Carries out actions and moves queued frames onto the wire, until
    /// nothing is left to do at this instant.
    fn flush(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.nodes.len() {
                while let Some(a) = self.nodes[i].engine.as_mut().and_then(|e| e.poll_action()) {
                    busy = true;
                    match a {
                        Action::Dial { remote, endpoint } => self.dial(i, remote, &endpoint),
                        Action::Close { conn, .. } => {
                            if let Some(&id) = self.conn_link.get(&conn) {
                                self.close_link(id);
                            }
                        }
                    }
                }
                let Some(e) = self.nodes[i].engine.as_mut() else {
                    continue;
                };
                let mut dirty = std::mem::take(&mut self.dirty);
                e.take_dirty(&mut dirty);
                for &conn in &dirty {
                    let Some(&link) = self.conn_link.get(&conn) else {
                        // Closed meanwhile: drop what was queued.
                        e.drain_outbox(conn, |_| true);
                        continue;
                    };
                    let to_server = self.links[&link].client_conn == conn;
                    let mut frames = Vec::new();
                    e.drain_outbox(conn, |f| {
                        frames.push(f.to_vec());
                        true
                    });
                    for f in frames {
                        busy = true;
                        self.stats.frames_sent += 1;
                        self.stats.bytes_sent += f.len() as u64;
                        if self.rng.chance(self.conditions.loss) {
                            self.stats.frames_lost += 1;
                            continue;
                        }
                        let (lo, hi) = self.conditions.latency_ms;
                        let lat = lo + self.rng.below(hi.saturating_sub(lo) + 1);
                        self.seq += 1;
                        self.wire
                            .push(Reverse((self.now_ms + lat, self.seq, link, to_server, f)));
                    }
                }
                self.dirty = dirty;
            }
            if !busy {
                return;
            }
        }
    }

    /// Advances virtual time to `until_ms`, delivering frames and running
    /// timers in order. Bounded: it always ends.
    pub fn run_until(&mut self, until_ms: u64) {
        self.flush();
        while self.now_ms < until_ms {
            let mut next = until_ms;
            if let Some(Reverse((at, ..))) = self.wire.peek() {
                next = next.min(*at);
            }
            for n in &self.nodes {
                if let Some(t) = n.engine.as_ref().and_then(|e| e.poll_timeout()) {
                    next = next.min(t);
                }
            }
            self.now_ms = next.max(self.now_ms);
            while let Some(Reverse((at, ..))) = self.wire.peek() {
                if *at > self.now_ms {
                    break;
                }
                let Some(Reverse((_, _, link, to_server, frame))) = self.wire.pop() else {
                    break;
                };
                let Some(l) = self.links.get(&link) else {
                    continue; // link closed in flight
                };
                let (node, conn) = if to_server {
                    (l.server, l.server_conn)
                } else {
                    (l.client, l.client_conn)
                };
                if self.cut.contains(&(l.client, l.server)) {
                    self.stats.frames_lost += 1;
                    continue;
                }
                let now = self.now_of(node);
                if let Some(e) = self.nodes[node].engine.as_mut() {
                    e.handle_frame(conn, &frame, false, now);
                }
            }
            for i in 0..self.nodes.len() {
                let now = self.now_of(i);
                if let Some(e) = self.nodes[i].engine.as_mut() {
                    if e.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
                        e.handle_timeout(now);
                    }
                }
            }
            self.flush();
        }
    }

    /// Runs until no node has changed its store for `quiet_ms` (pings keep
    /// flowing forever, so frames in flight do not count), or until
    /// `limit_ms` passed. Returns true if quiet.
    pub fn settle(&mut self, quiet_ms: u64, limit_ms: u64) -> bool {
        let end = self.now_ms + limit_ms;
        let mut last = self.fingerprint();
        let mut quiet_since = self.now_ms;
        while self.now_ms < end {
            let step = (self.now_ms + 100).min(end);
            self.run_until(step);
            let f = self.fingerprint();
            if f != last {
                last = f;
                quiet_since = self.now_ms;
            } else if self.now_ms - quiet_since >= quiet_ms {
                return true;
            }
        }
        false
    }

    /// A digest of every running node's store.
    fn fingerprint(&self) -> u64 {
        let mut h = 0u64;
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(e) = &n.engine {
                for (_, t) in e.store().iter() {
                    h = h.wrapping_add(t.fingerprint().wrapping_mul(i as u64 + 1));
                }
            }
        }
        h
    }

    /// Every running node's store as `key -> (version, deleted, value)`,
    /// for comparison.
    pub fn state(&self, i: usize) -> Option<StoreState> {
        self.nodes[i].engine.as_ref().map(|e| {
            e.store()
                .iter()
                .map(|(k, t)| (k.to_string(), (t.version, t.deleted, t.value.to_string())))
                .collect()
        })
    }

    /// What must be the same on every node: [`Sim::state`] without the
    /// tombstones of writes whose time to live ran out. Those are kept for
    /// a short grace only, from when each node made them, and a node that
    /// gets such a write after it expired makes no entry for it: whether a
    /// node still holds one is its own bookkeeping (an older write it
    /// protects against would show as a difference in live values).
    fn converged_state(&self, i: usize) -> Option<StoreState> {
        self.nodes[i].engine.as_ref().map(|e| {
            e.store()
                .iter()
                .filter(|(_, t)| !(t.deleted && t.expires != 0))
                .map(|(k, t)| (k.to_string(), (t.version, t.deleted, t.value.to_string())))
                .collect()
        })
    }

    /// Checks that every running node holds the same store (tombstones of
    /// expired writes aside, see `converged_state`). On a mismatch,
    /// describes the first difference.
    pub fn check_converged(&self) -> Result<(), String> {
        let mut reference: Option<(usize, StoreState)> = None;
        for i in 0..self.nodes.len() {
            let Some(s) = self.converged_state(i) else {
                continue;
            };
            match &reference {
                None => reference = Some((i, s)),
                Some((r, rs)) => {
                    if *rs != s {
                        let diff = rs
                            .iter()
                            .find(|(k, v)| s.get(*k) != Some(v))
                            .map(|(k, v)| format!("{k}: n{r} has {v:?}, n{i} has {:?}", s.get(k)))
                            .or_else(|| {
                                s.iter()
                                    .find(|(k, _)| !rs.contains_key(*k))
                                    .map(|(k, v)| format!("{k}: n{r} lacks it, n{i} has {v:?}"))
                            })
                            .unwrap_or_default();
                        return Err(format!(
                            "n{r} ({} entries) and n{i} ({} entries) differ: {diff}",
                            rs.len(),
                            s.len()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
