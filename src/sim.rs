//! A deterministic network simulator for the gossip engine.
//!
//! Many [`Engine`]s run in one thread on a virtual clock, joined by virtual
//! connections with latency, loss and reordering; nodes can be partitioned,
//! restarted, crashed and revived, paused, and added over time. Everything
//! random comes from one seeded generator, so a seed replays a run exactly.
//! Tests use it to check convergence under hostile conditions; benchmarks
//! use it to measure rounds and messages.
//!
//! The cost of a step follows the work done in it, not the number of
//! nodes: timers wait in one queue (each node's [`Engine::poll_timeout`] is
//! read again after every call into it), only the nodes called since the
//! last flush are drained, and a partition is a group label per node.
//! Whatever the order of work inside an instant, it never depends on a
//! hash: nodes are taken by index, frames by delivery time then sending
//! order.
//!
//! For measurements, [`Sim::node_stats`] counts each node's frames,
//! [`Sim::set_observer`] sees every frame sent, dropped or delivered, and
//! [`Sim::watch`] with [`Sim::first_held`] tells when each node first held
//! a version of a key.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use crate::engine::{Action, ConnId, Engine, Now, Peer, RemoteId, Role, Settings};
use crate::store::Version;

#[cfg(test)]
mod tests;

/// The simulator's seeded generator (the one the overlay uses too).
pub use crate::rng::Rng;

/// Network conditions.
#[derive(Debug, Clone)]
pub struct Conditions {
    /// One-way latency of a frame, drawn uniformly per frame (so frames on
    /// one connection can overtake each other when `min < max`). Per node
    /// and per pair overrides: [`Sim::set_node_latency`],
    /// [`Sim::set_link_latency`].
    pub latency_ms: (u64, u64),
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Frames on one connection arrive in the order they were sent, as on
    /// TCP (each waits for the one before it), instead of overtaking each
    /// other.
    pub in_order: bool,
}

impl Default for Conditions {
    fn default() -> Conditions {
        Conditions {
            latency_ms: (1, 1),
            loss: 0.0,
            in_order: false,
        }
    }
}

/// Counters of one node (by index, over every life of the node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Frames the node sent (taken from its outbox, lost ones included).
    pub frames_sent: u64,
    pub bytes_sent: u64,
    /// Frames handed to the node's engine.
    pub frames_received: u64,
    pub bytes_received: u64,
}

/// What happened to a frame, for [`Sim::set_observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Taken from the sender's outbox (reported before loss is drawn).
    Sent,
    /// Lost: drawn by [`Conditions::loss`], cut by a partition, or on a
    /// link that closed while the frame was in flight.
    Dropped,
    /// Handed to the receiver's engine.
    Delivered,
}

/// One frame seen by the observer ([`Sim::set_observer`]).
#[derive(Debug, Clone, Copy)]
pub struct FrameEvent<'a> {
    /// Virtual time of the event.
    pub now_ms: u64,
    pub kind: FrameKind,
    /// Sending node and its connection id.
    pub from: usize,
    pub from_conn: ConnId,
    /// Receiving node and its connection id.
    pub to: usize,
    pub to_conn: ConnId,
    /// The ZGP frame.
    pub frame: &'a [u8],
}

/// A change of a watched key on one node ([`Sim::watch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    pub at_ms: u64,
    pub node: usize,
    /// The version the node holds from then on (a tombstone too); None
    /// when it holds nothing for the key (a restart or a crash emptied it).
    pub version: Option<Version>,
}

/// A frame observer: see [`Sim::set_observer`].
pub type Observer = Box<dyn FnMut(&FrameEvent<'_>)>;

/// A call into an engine. Calls to a paused node wait, in order, until it
/// resumes.
enum Call {
    Frame {
        conn: ConnId,
        frame: Vec<u8>,
        from: usize,
        from_conn: ConnId,
    },
    Connected {
        conn: ConnId,
        role: Role,
        peer: Peer,
    },
    Closed {
        conn: ConnId,
    },
    DialFailed {
        remote: RemoteId,
    },
    Publish {
        key: String,
        value: String,
        ttl_ms: Option<u64>,
        ephemeral: bool,
    },
    Leave,
    Unpublish {
        key: String,
    },
    AddRemote {
        endpoint: String,
    },
    Join {
        endpoint: String,
    },
    Candidate {
        id: u64,
        endpoint: String,
    },
    HeardAnchor {
        id: u64,
        endpoint: String,
        anchor: u64,
    },
}

struct SimNode {
    engine: Option<Engine>,
    /// Servers this node keeps connected (re-added after a restart).
    remotes: Vec<usize>,
    /// Contacts this node joins through (joined again after a restart).
    contacts: Vec<usize>,
    /// This node's wall clock minus the true one.
    skew_ms: i64,
    generation: u64,
    /// The deadline last pushed on the timer queue for this node; an entry
    /// of the queue counts only while it equals this.
    armed: Option<u64>,
    /// Paused until then: calls wait in `held`, timers do not fire.
    paused_until: Option<u64>,
    held: VecDeque<Call>,
    /// Partition group: nodes of different groups cannot reach each other.
    group: u64,
    /// Latency of the links of this node, instead of the conditions'.
    latency: Option<(u64, u64)>,
    /// Open links, by id (ascending: closes run in link order).
    links: BTreeSet<u64>,
    stats: NodeStats,
    /// This node's share of the store fingerprint, and whether it must be
    /// computed again.
    fp: u64,
    fp_stale: bool,
}

impl SimNode {
    fn new(group: u64) -> SimNode {
        SimNode {
            engine: None,
            remotes: Vec::new(),
            contacts: Vec::new(),
            skew_ms: 0,
            generation: 0,
            armed: None,
            paused_until: None,
            held: VecDeque::new(),
            group,
            latency: None,
            links: BTreeSet::new(),
            stats: NodeStats::default(),
            fp: 0,
            fp_stale: false,
        }
    }
}

/// A connection: link `id` has conn ids `2 * id` (the client's end) and
/// `2 * id + 1` (the server's); conn ids are never reused.
#[derive(Clone, Copy)]
struct Link {
    client: usize,
    server: usize,
    /// When the last frame sent each way arrives (to the client, to the
    /// server), for `Conditions::in_order`.
    last_at: [u64; 2],
    /// The node that closed the link: what it sent before still arrives,
    /// then its peer learns of the close; what its peer sends is lost.
    closed_by: Option<usize>,
}

fn client_conn(link: u64) -> ConnId {
    link * 2
}

fn server_conn(link: u64) -> ConnId {
    link * 2 + 1
}

/// Something on the virtual wire.
enum Wire {
    Frame {
        link: u64,
        to_server: bool,
        from: usize,
        to: usize,
        frame: Vec<u8>,
    },
    /// Connection `conn` of `node` was reset by a crash of node `from`,
    /// or closed by it (then `link` is forgotten when this arrives).
    Reset {
        from: usize,
        node: usize,
        conn: ConnId,
        link: Option<u64>,
    },
}

/// An item on the wire, ordered by delivery time, then sending order.
struct InFlight {
    at: u64,
    seq: u64,
    what: Wire,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A watched key: what each node holds, and every change.
struct Watch {
    last: Vec<Option<Version>>,
    log: Vec<Sighting>,
}

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
    /// Frames handed to an engine.
    pub frames_delivered: u64,
    /// Calls of [`Engine::handle_timeout`].
    pub timer_calls: u64,
    /// Every call into an engine: frames, timers, connections opened and
    /// closed, failed dials, publishes, starts: the events the run
    /// processed.
    pub engine_calls: u64,
    pub crashes: u64,
    pub revives: u64,
    pub pauses: u64,
}

/// The simulated network.
pub struct Sim {
    pub rng: Rng,
    pub conditions: Conditions,
    settings: Settings,
    nodes: Vec<SimNode>,
    /// By link id; None once closed (ids are never reused).
    links: Vec<Option<Link>>,
    /// What is in flight, earliest first.
    wire: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Timers: (deadline, node); see `SimNode::armed`.
    timers: BinaryHeap<Reverse<(u64, usize)>>,
    /// Nodes called since their actions and output were last taken.
    touched: BTreeSet<usize>,
    /// The group of a node that no `partition` named since the last heal
    /// (where added nodes go).
    rest_group: u64,
    /// Latency per pair of nodes (smaller index first).
    pair_latency: BTreeMap<(usize, usize), (u64, u64)>,
    /// Sum of the nodes' `fp`.
    fp_total: u64,
    fp_stale: Vec<usize>,
    watches: BTreeMap<String, Watch>,
    observer: Option<Observer>,
    now_ms: u64,
    pub stats: SimStats,
    dirty: Vec<ConnId>,
}

/// Wall-clock origin of the simulation (2023-11-14), so versions look real.
const WALL_ORIGIN: u64 = 1_700_000_000_000;

fn observe(observer: &mut Option<Observer>, event: FrameEvent<'_>) {
    if let Some(o) = observer.as_mut() {
        o(&event);
    }
}

impl Sim {
    /// A network of `n` nodes, none connected yet.
    pub fn new(n: usize, seed: u64, settings: Settings) -> Sim {
        let mut sim = Sim {
            rng: Rng::new(seed),
            conditions: Conditions::default(),
            settings,
            nodes: Vec::new(),
            links: vec![None],
            wire: BinaryHeap::new(),
            seq: 0,
            timers: BinaryHeap::new(),
            touched: BTreeSet::new(),
            rest_group: 0,
            pair_latency: BTreeMap::new(),
            fp_total: 0,
            fp_stale: Vec::new(),
            watches: BTreeMap::new(),
            observer: None,
            now_ms: 0,
            stats: SimStats::default(),
            dirty: Vec::new(),
        };
        for _ in 0..n {
            sim.nodes.push(SimNode::new(0));
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

    /// Adds a node, running and unconnected, and returns its index. While
    /// a partition holds, it is on the side of the nodes no
    /// [`Sim::partition`] named.
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        self.nodes.push(SimNode::new(self.rest_group));
        for w in self.watches.values_mut() {
            w.last.push(None);
        }
        self.start(i);
        i
    }

    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.generation += 1;
        n.paused_until = None;
        n.held.clear();
        let id = ((i as u64) << 20) | n.generation;
        let mut engine = Engine::new(&format!("n{i}"), id, self.settings.clone());
        engine.set_endpoint(&Sim::endpoint(i));
        n.engine = Some(engine);
        let now = self.now_of(i);
        let remotes = self.nodes[i].remotes.clone();
        let contacts = self.nodes[i].contacts.clone();
        if let Some(e) = self.nodes[i].engine.as_mut() {
            for server in remotes {
                e.add_remote(&format!("sim://{server}"), now);
            }
            for contact in contacts {
                e.join(&Sim::endpoint(contact), None, now);
            }
        }
        self.called(i);
    }

    /// The engine of node `i` (None while it is down).
    pub fn engine(&self, i: usize) -> Option<&Engine> {
        self.nodes[i].engine.as_ref()
    }

    /// The engine of node `i`, to call directly (None while it is down).
    /// Whatever the call makes the engine do is carried out at the next
    /// [`Sim::run_until`]; it bypasses a pause.
    pub fn engine_mut(&mut self, i: usize) -> Option<&mut Engine> {
        if self.nodes[i].engine.is_some() {
            self.touched.insert(i);
            self.mark_fp(i);
        }
        self.nodes[i].engine.as_mut()
    }

    /// The endpoint node `i` listens at, as the overlay names it.
    pub fn endpoint(i: usize) -> String {
        format!("tcp://n{i}.sim:5670")
    }

    /// Node `node` joins the overlay through node `contact` (`JOIN`), now
    /// and after each restart.
    pub fn join(&mut self, node: usize, contact: usize) {
        if !self.nodes[node].contacts.contains(&contact) {
            self.nodes[node].contacts.push(contact);
        }
        let endpoint = Sim::endpoint(contact);
        self.call(node, Call::Join { endpoint });
    }

    /// Node `node` hears of node `other` as discovery would (a beacon).
    pub fn discover(&mut self, node: usize, other: usize) {
        let Some(id) = self.nodes[other].engine.as_ref().map(|e| e.id()) else {
            return;
        };
        let endpoint = Sim::endpoint(other);
        self.call(node, Call::Candidate { id, endpoint });
    }

    /// Node `node` hears node `other`'s discovery beacon: a node with
    /// overlay links beacons its anchor (see `Engine::heard_anchor`), a
    /// node without looks for peers (a candidate, as [`Sim::discover`]).
    pub fn hear(&mut self, node: usize, other: usize) {
        let Some(e) = self.nodes[other].engine.as_ref() else {
            return;
        };
        if e.overlay_stats().active == 0 {
            return self.discover(node, other);
        }
        let (id, anchor) = (e.id(), e.overlay_anchor());
        let endpoint = Sim::endpoint(other);
        self.call(
            node,
            Call::HeardAnchor {
                id,
                endpoint,
                anchor,
            },
        );
    }

    /// Node `client` keeps a connection to node `server`.
    pub fn connect(&mut self, client: usize, server: usize) {
        self.nodes[client].remotes.push(server);
        let endpoint = format!("sim://{server}");
        self.call(client, Call::AddRemote { endpoint });
    }

    pub fn publish(&mut self, node: usize, key: &str, value: &str, ttl_ms: Option<u64>) {
        let call = Call::Publish {
            key: key.to_string(),
            value: value.to_string(),
            ttl_ms,
            ephemeral: false,
        };
        self.call(node, call);
    }

    /// Publishes a tuple tied to node `node`'s life (`EPHEMERAL`).
    pub fn publish_ephemeral(&mut self, node: usize, key: &str, value: &str) {
        let call = Call::Publish {
            key: key.to_string(),
            value: value.to_string(),
            ttl_ms: None,
            ephemeral: true,
        };
        self.call(node, call);
    }

    /// Nodes 1 to the last join, each through a random earlier node
    /// ([`Sim::join`]), ten per 100 virtual ms, as a network that grows;
    /// then the simulation runs `settle_ms` more.
    pub fn join_all(&mut self, settle_ms: u64) {
        for i in 1..self.len() {
            let contact = self.rng.index(i);
            self.join(i, contact);
            if i % 10 == 0 {
                let t = self.now_ms() + 100;
                self.run_until(t);
            }
        }
        let t = self.now_ms() + settle_ms;
        self.run_until(t);
    }

    /// Node `node` announces its leave (as a node shutting down does
    /// before it closes its links).
    pub fn leave(&mut self, node: usize) {
        self.call(node, Call::Leave);
    }

    pub fn unpublish(&mut self, node: usize, key: &str) {
        let key = key.to_string();
        self.call(node, Call::Unpublish { key });
    }

    /// Stops node `i` and starts it again with an empty store (as a process
    /// restart): its connections close at once on both ends and are
    /// redialled. Ends a pause; starts a crashed node.
    pub fn restart(&mut self, i: usize) {
        self.stats.restarts += 1;
        let links: Vec<u64> = self.nodes[i].links.iter().copied().collect();
        // The old engine is dropped: it need not hear of the closes.
        self.nodes[i].engine = None;
        for id in links {
            self.close_link(id);
        }
        self.start(i);
    }

    /// Node `i` stops dead (a crash, a kill -9, a power cut): its
    /// connections are reset, so each peer learns it after the link's
    /// latency (unless a partition lies between them: then only by its own
    /// timeouts), frames in flight on its links are lost, and dials to it
    /// fail until [`Sim::revive`]. [`Sim::engine`] is None meanwhile.
    pub fn crash(&mut self, i: usize) {
        if self.nodes[i].engine.is_none() {
            return;
        }
        self.stats.crashes += 1;
        let links: Vec<u64> = std::mem::take(&mut self.nodes[i].links)
            .into_iter()
            .collect();
        for id in links {
            let Some(l) = self.links[id as usize].take() else {
                continue;
            };
            let (peer, conn) = if l.client == i {
                (l.server, server_conn(id))
            } else {
                (l.client, client_conn(id))
            };
            self.nodes[peer].links.remove(&id);
            let lat = self.draw_latency(i, peer);
            self.seq += 1;
            self.wire.push(Reverse(InFlight {
                at: self.now_ms + lat,
                seq: self.seq,
                what: Wire::Reset {
                    from: i,
                    node: peer,
                    conn,
                    link: None,
                },
            }));
        }
        let n = &mut self.nodes[i];
        n.engine = None;
        n.armed = None;
        n.paused_until = None;
        n.held.clear();
        self.touched.remove(&i);
        self.mark_fp(i);
        self.check_watches(i);
    }

    /// Starts a crashed node again, with an empty store (as
    /// [`Sim::restart`]); it dials its servers again. Does nothing to a
    /// running node.
    pub fn revive(&mut self, i: usize) {
        if self.nodes[i].engine.is_some() {
            return;
        }
        self.stats.revives += 1;
        self.start(i);
    }

    /// True while node `i` is down (crashed and not revived).
    pub fn is_down(&self, i: usize) -> bool {
        self.nodes[i].engine.is_none()
    }

    /// Node `i` gets no calls for `ms` virtual milliseconds (a GC pause,
    /// SIGSTOP): frames, connections and closes for it wait, in order, and
    /// its timers do not fire; when the pause ends it gets everything that
    /// waited, then its due timers. Its connections stay open (peers may
    /// time them out). Pausing a paused node extends the pause if the new
    /// end is later.
    pub fn pause(&mut self, i: usize, ms: u64) {
        if self.nodes[i].engine.is_none() {
            return;
        }
        self.stats.pauses += 1;
        let until = self.now_ms + ms;
        let n = &mut self.nodes[i];
        n.paused_until = Some(n.paused_until.map_or(until, |p| p.max(until)));
        self.rearm(i);
    }

    /// Ends a pause now (at the next [`Sim::run_until`]).
    pub fn resume(&mut self, i: usize) {
        if self.nodes[i].paused_until.is_some() {
            self.nodes[i].paused_until = Some(self.now_ms);
            self.rearm(i);
        }
    }

    /// True while node `i` is paused.
    pub fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].paused_until.is_some()
    }

    /// Cuts every link between the nodes in `side` and the rest: frames
    /// between them are lost and dials fail, until [`Sim::heal`].
    /// Partitions add up: two nodes reach each other only if every
    /// partition since the last heal put them on the same side.
    pub fn partition(&mut self, side: &[usize]) {
        let mut inside = vec![false; self.nodes.len()];
        for &s in side {
            if let Some(x) = inside.get_mut(s) {
                *x = true;
            }
        }
        // New group = (old group, side), numbered densely.
        let mut groups: BTreeMap<(u64, bool), u64> = BTreeMap::new();
        let mut label = |g: u64, side: bool| {
            let next = groups.len() as u64;
            *groups.entry((g, side)).or_insert(next)
        };
        for (n, &inside) in self.nodes.iter_mut().zip(&inside) {
            n.group = label(n.group, inside);
        }
        self.rest_group = label(self.rest_group, false);
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.group = 0;
        }
        self.rest_group = 0;
    }

    /// Whether nodes `a` and `b` are on the same side of every partition.
    pub fn reachable(&self, a: usize, b: usize) -> bool {
        self.nodes[a].group == self.nodes[b].group
    }

    /// Latency of every link of node `i` (None: back to the conditions').
    /// A link between two nodes that both have one takes the larger bounds.
    pub fn set_node_latency(&mut self, i: usize, latency_ms: Option<(u64, u64)>) {
        self.nodes[i].latency = latency_ms;
    }

    /// Latency between nodes `a` and `b`, both ways, before any per-node
    /// one (None: removes it).
    pub fn set_link_latency(&mut self, a: usize, b: usize, latency_ms: Option<(u64, u64)>) {
        let pair = (a.min(b), a.max(b));
        match latency_ms {
            Some(l) => self.pair_latency.insert(pair, l),
            None => self.pair_latency.remove(&pair),
        };
    }

    fn latency(&self, a: usize, b: usize) -> (u64, u64) {
        if !self.pair_latency.is_empty() {
            if let Some(&l) = self.pair_latency.get(&(a.min(b), a.max(b))) {
                return l;
            }
        }
        match (self.nodes[a].latency, self.nodes[b].latency) {
            (None, None) => self.conditions.latency_ms,
            (Some(l), None) | (None, Some(l)) => l,
            (Some(x), Some(y)) => (x.0.max(y.0), x.1.max(y.1)),
        }
    }

    fn draw_latency(&mut self, a: usize, b: usize) -> u64 {
        let (lo, hi) = self.latency(a, b);
        lo + self.rng.below(hi.saturating_sub(lo) + 1)
    }

    /// Counters of node `i`.
    pub fn node_stats(&self, i: usize) -> NodeStats {
        self.nodes[i].stats
    }

    /// Calls `observer` for every frame sent, dropped or delivered, from
    /// now on (replacing any other). It must not need the simulator: share
    /// what it collects through an `Rc<RefCell<_>>`, say.
    pub fn set_observer(&mut self, observer: impl FnMut(&FrameEvent<'_>) + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Removes the observer.
    pub fn clear_observer(&mut self) {
        self.observer = None;
    }

    /// Follows `key` from now on: after every call into a node, what it
    /// holds for the key is compared with what it held, and changes are
    /// logged ([`Sim::sightings`], [`Sim::first_held`]). Costs one lookup
    /// per watched key per call.
    pub fn watch(&mut self, key: &str) {
        if self.watches.contains_key(key) {
            return;
        }
        let mut w = Watch {
            last: vec![None; self.nodes.len()],
            log: Vec::new(),
        };
        for (i, n) in self.nodes.iter().enumerate() {
            let v = n
                .engine
                .as_ref()
                .and_then(|e| e.store().get(key))
                .map(|t| t.version);
            if v.is_some() {
                w.last[i] = v;
                w.log.push(Sighting {
                    at_ms: self.now_ms,
                    node: i,
                    version: v,
                });
            }
        }
        self.watches.insert(key.to_string(), w);
    }

    /// Every change of a watched key, in time order (empty if not watched).
    pub fn sightings(&self, key: &str) -> &[Sighting] {
        self.watches.get(key).map_or(&[], |w| &w.log)
    }

    /// For each node, the virtual time at which it first held exactly
    /// `version` of `key` (None: never, so far). The key must be watched
    /// ([`Sim::watch`]) from before the write.
    pub fn first_held(&self, key: &str, version: Version) -> Vec<Option<u64>> {
        let mut out = vec![None; self.nodes.len()];
        for s in self.sightings(key) {
            if s.version == Some(version) && out[s.node].is_none() {
                out[s.node] = Some(s.at_ms);
            }
        }
        out
    }

    /// The version node `i` holds for `key` (a tombstone's too).
    pub fn version(&self, i: usize, key: &str) -> Option<Version> {
        let e = self.nodes[i].engine.as_ref()?;
        e.store().get(key).map(|t| t.version)
    }

    fn check_watches(&mut self, i: usize) {
        if self.watches.is_empty() {
            return;
        }
        let engine = self.nodes[i].engine.as_ref();
        for (key, w) in self.watches.iter_mut() {
            let v = engine.and_then(|e| e.store().get(key)).map(|t| t.version);
            if w.last[i] != v {
                w.last[i] = v;
                w.log.push(Sighting {
                    at_ms: self.now_ms,
                    node: i,
                    version: v,
                });
            }
        }
    }

    fn mark_fp(&mut self, i: usize) {
        if !self.nodes[i].fp_stale {
            self.nodes[i].fp_stale = true;
            self.fp_stale.push(i);
        }
    }

    /// Pushes node `i`'s next deadline on the timer queue if it changed:
    /// the end of its pause, or what its engine wants.
    fn rearm(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let want = match n.paused_until {
            Some(p) => Some(p),
            None => n.engine.as_ref().and_then(|e| e.poll_timeout()),
        };
        if want != n.armed {
            n.armed = want;
            if let Some(d) = want {
                self.timers.push(Reverse((d, i)));
            }
        }
    }

    /// Bookkeeping after any call into node `i`.
    fn called(&mut self, i: usize) {
        self.stats.engine_calls += 1;
        self.touched.insert(i);
        self.mark_fp(i);
        self.rearm(i);
        self.check_watches(i);
    }

    /// Calls into node `i`, or queues the call while it is paused; a call
    /// to a node that is down is dropped.
    fn call(&mut self, i: usize, call: Call) {
        let n = &mut self.nodes[i];
        if n.engine.is_none() {
            return;
        }
        if n.paused_until.is_some() {
            n.held.push_back(call);
            return;
        }
        self.apply(i, call);
    }

    fn apply(&mut self, i: usize, call: Call) {
        let now = self.now_of(i);
        let Some(e) = self.nodes[i].engine.as_mut() else {
            return;
        };
        match call {
            Call::Frame {
                conn,
                frame,
                from,
                from_conn,
            } => {
                e.handle_frame(conn, &frame, false, now);
                self.stats.frames_delivered += 1;
                let st = &mut self.nodes[i].stats;
                st.frames_received += 1;
                st.bytes_received += frame.len() as u64;
                let event = FrameEvent {
                    now_ms: self.now_ms,
                    kind: FrameKind::Delivered,
                    from,
                    from_conn,
                    to: i,
                    to_conn: conn,
                    frame: &frame,
                };
                observe(&mut self.observer, event);
            }
            Call::Connected { conn, role, peer } => e.handle_connected(conn, role, peer, now),
            Call::Closed { conn } => e.handle_closed(conn, now),
            Call::DialFailed { remote } => e.handle_dial_unanswered(remote, "unreachable", now),
            Call::Publish {
                key,
                value,
                ttl_ms,
                ephemeral,
            } => e.publish_with(&key, &value, ttl_ms, ephemeral, now),
            Call::Leave => e.leave(now),
            Call::Unpublish { key } => e.unpublish(&key, now),
            Call::AddRemote { endpoint } => {
                e.add_remote(&endpoint, now);
            }
            Call::Join { endpoint } => e.join(&endpoint, None, now),
            Call::Candidate { id, endpoint } => e.add_candidate(id, &endpoint, None, now),
            Call::HeardAnchor {
                id,
                endpoint,
                anchor,
            } => e.heard_anchor(id, &endpoint, None, anchor, now),
        }
        self.called(i);
    }

    /// Node `i`'s timer is due: ends its pause if that is what was due,
    /// then runs its engine's timers if due.
    fn fire(&mut self, i: usize) {
        if self.nodes[i].engine.is_none() {
            return;
        }
        if let Some(until) = self.nodes[i].paused_until {
            if until > self.now_ms {
                self.rearm(i);
                return;
            }
            self.nodes[i].paused_until = None;
            while let Some(call) = self.nodes[i].held.pop_front() {
                self.apply(i, call);
            }
        }
        let now = self.now_of(i);
        let Some(e) = self.nodes[i].engine.as_mut() else {
            return;
        };
        if e.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
            e.handle_timeout(now);
            self.stats.timer_calls += 1;
            self.called(i);
        } else {
            self.rearm(i);
        }
    }

    /// The earliest deadline on the timer queue, stale entries dropped.
    fn next_timer(&mut self) -> Option<u64> {
        while let Some(&Reverse((d, i))) = self.timers.peek() {
            if self.nodes[i].armed == Some(d) {
                return Some(d);
            }
            self.timers.pop();
        }
        None
    }

    /// Moves what node `i` queued on `conn` onto the wire.
    fn send_queued(&mut self, i: usize, conn: ConnId, frames: &mut Vec<Vec<u8>>) {
        let Some(e) = self.nodes[i].engine.as_mut() else {
            return;
        };
        let link = conn / 2;
        let Some(l) = self.links.get(link as usize).copied().flatten() else {
            // Closed meanwhile: drop what was queued.
            e.drain_outbox(conn, |_| true);
            return;
        };
        let to_server = conn == client_conn(link);
        let (to, to_conn) = if to_server {
            (l.server, server_conn(link))
        } else {
            (l.client, client_conn(link))
        };
        e.drain_outbox(conn, |f| {
            frames.push(f.to_vec());
            true
        });
        for f in frames.drain(..) {
            self.stats.frames_sent += 1;
            self.stats.bytes_sent += f.len() as u64;
            let st = &mut self.nodes[i].stats;
            st.frames_sent += 1;
            st.bytes_sent += f.len() as u64;
            let mut event = FrameEvent {
                now_ms: self.now_ms,
                kind: FrameKind::Sent,
                from: i,
                from_conn: conn,
                to,
                to_conn,
                frame: &f,
            };
            observe(&mut self.observer, event);
            if self.rng.chance(self.conditions.loss) {
                self.stats.frames_lost += 1;
                event.kind = FrameKind::Dropped;
                observe(&mut self.observer, event);
                continue;
            }
            let lat = self.draw_latency(i, to);
            let mut at = self.now_ms + lat;
            if self.conditions.in_order {
                if let Some(Some(l)) = self.links.get_mut(link as usize) {
                    let last = &mut l.last_at[usize::from(to_server)];
                    at = at.max(*last);
                    *last = at;
                }
            }
            self.seq += 1;
            let what = Wire::Frame {
                link,
                to_server,
                from: i,
                to,
                frame: f,
            };
            self.wire.push(Reverse(InFlight {
                at,
                seq: self.seq,
                what,
            }));
        }
    }

    /// Node `i` closes `conn` (its engine asked): what it queued goes
    /// first, then the peer learns of the close, after the last frame.
    fn close_gracefully(&mut self, i: usize, conn: ConnId) {
        let id = conn / 2;
        let Some(l) = self.links.get(id as usize).copied().flatten() else {
            return;
        };
        if l.closed_by.is_some() {
            // Both ends closed: nothing more to wait for.
            self.close_link(id);
            return;
        }
        let mut frames = Vec::new();
        self.send_queued(i, conn, &mut frames);
        let to_server = conn == client_conn(id);
        let (peer, peer_conn) = if to_server {
            (l.server, server_conn(id))
        } else {
            (l.client, client_conn(id))
        };
        let lat = self.draw_latency(i, peer);
        let mut at = self.now_ms + lat;
        if let Some(Some(l)) = self.links.get_mut(id as usize) {
            l.closed_by = Some(i);
            at = at.max(l.last_at[usize::from(to_server)]);
        }
        self.nodes[i].links.remove(&id);
        self.call(i, Call::Closed { conn });
        self.seq += 1;
        self.wire.push(Reverse(InFlight {
            at,
            seq: self.seq,
            what: Wire::Reset {
                from: i,
                node: peer,
                conn: peer_conn,
                link: Some(id),
            },
        }));
    }

    fn close_link(&mut self, id: u64) {
        let Some(l) = self.links.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        self.nodes[l.client].links.remove(&id);
        self.nodes[l.server].links.remove(&id);
        self.call(
            l.client,
            Call::Closed {
                conn: client_conn(id),
            },
        );
        self.call(
            l.server,
            Call::Closed {
                conn: server_conn(id),
            },
        );
    }

    fn dial(&mut self, client: usize, remote: RemoteId, endpoint: &str) {
        // `sim://N` (CONNECT) or `tcp://nN.sim:5670` (the overlay).
        let server = endpoint
            .strip_prefix("sim://")
            .or_else(|| {
                endpoint
                    .strip_prefix("tcp://n")
                    .and_then(|s| s.strip_suffix(".sim:5670"))
            })
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&s| s < self.nodes.len());
        let reachable = server.filter(|&s| {
            self.nodes[s].engine.is_some() && self.nodes[s].group == self.nodes[client].group
        });
        let Some(server) = reachable else {
            self.stats.dials_failed += 1;
            self.call(client, Call::DialFailed { remote });
            return;
        };
        let id = self.links.len() as u64;
        self.links.push(Some(Link {
            client,
            server,
            last_at: [0; 2],
            closed_by: None,
        }));
        self.nodes[client].links.insert(id);
        self.nodes[server].links.insert(id);
        self.stats.links_opened += 1;
        let peer = Peer {
            addr: None,
            zgp2: true,
            timeout_ms: Some(self.settings.link_timeout_ms),
            max_frame: None,
        };
        let conn = server_conn(id);
        let role = Role::Inbound;
        self.call(server, Call::Connected { conn, role, peer });
        let conn = client_conn(id);
        let role = Role::Outbound(remote);
        self.call(client, Call::Connected { conn, role, peer });
    }

    /// Carries out node `i`'s actions and moves its queued frames onto the
    /// wire.
    fn flush_node(&mut self, i: usize) {
        while let Some(a) = self.nodes[i].engine.as_mut().and_then(|e| e.poll_action()) {
            match a {
                Action::Dial { remote, endpoint } => self.dial(i, remote, &endpoint),
                Action::Close { conn, .. } => self.close_gracefully(i, conn),
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut frames = Vec::new();
        if let Some(e) = self.nodes[i].engine.as_mut() {
            e.take_dirty(&mut dirty);
        }
        for &conn in &dirty {
            if self.nodes[i].engine.is_none() {
                break;
            }
            self.send_queued(i, conn, &mut frames);
        }
        dirty.clear();
        self.dirty = dirty;
        // Taking the output may have closed a connection (a backlog over
        // its limit).
        while let Some(a) = self.nodes[i].engine.as_mut().and_then(|e| e.poll_action()) {
            match a {
                Action::Dial { remote, endpoint } => self.dial(i, remote, &endpoint),
                Action::Close { conn, .. } => self.close_gracefully(i, conn),
            }
            self.touched.insert(i);
        }
        self.rearm(i);
    }

    /// Carries out actions and moves queued frames onto the wire, until
    /// nothing is left to do at this instant. Only nodes called since the
    /// last flush have anything to do; they are taken by index, in passes,
    /// as if every node were visited in order.
    fn flush(&mut self) {
        while !self.touched.is_empty() {
            let mut cursor = 0;
            while let Some(&i) = self.touched.range(cursor..).next() {
                self.touched.remove(&i);
                cursor = i + 1;
                self.flush_node(i);
            }
        }
    }

    fn deliver(&mut self, what: Wire) {
        match what {
            Wire::Frame {
                link,
                to_server,
                from,
                to,
                frame,
            } => {
                let (from_conn, to_conn) = if to_server {
                    (client_conn(link), server_conn(link))
                } else {
                    (server_conn(link), client_conn(link))
                };
                let alive = self
                    .links
                    .get(link as usize)
                    .is_some_and(|l| l.is_some_and(|l| l.closed_by != Some(to)));
                let cut = self.nodes[from].group != self.nodes[to].group;
                if !alive || cut {
                    if alive {
                        self.stats.frames_lost += 1;
                    }
                    let event = FrameEvent {
                        now_ms: self.now_ms,
                        kind: FrameKind::Dropped,
                        from,
                        from_conn,
                        to,
                        to_conn,
                        frame: &frame,
                    };
                    observe(&mut self.observer, event);
                    return;
                }
                let call = Call::Frame {
                    conn: to_conn,
                    frame,
                    from,
                    from_conn,
                };
                self.call(to, call);
            }
            Wire::Reset {
                from,
                node,
                conn,
                link,
            } => {
                if let Some(id) = link {
                    if let Some(slot) = self.links.get_mut(id as usize) {
                        *slot = None;
                    }
                    self.nodes[node].links.remove(&id);
                }
                // Lost across a partition: the peer finds out by its own
                // timeouts then.
                if self.nodes[from].group == self.nodes[node].group {
                    self.call(node, Call::Closed { conn });
                }
            }
        }
    }

    /// Advances virtual time to `until_ms`, delivering frames and running
    /// timers in order. Bounded: it always ends.
    pub fn run_until(&mut self, until_ms: u64) {
        self.flush();
        let mut due = Vec::new();
        while self.now_ms < until_ms {
            let mut next = until_ms;
            if let Some(Reverse(f)) = self.wire.peek() {
                next = next.min(f.at);
            }
            if let Some(t) = self.next_timer() {
                next = next.min(t);
            }
            self.now_ms = next.max(self.now_ms);
            while self
                .wire
                .peek()
                .is_some_and(|Reverse(f)| f.at <= self.now_ms)
            {
                let Some(Reverse(f)) = self.wire.pop() else {
                    break;
                };
                self.deliver(f.what);
            }
            while let Some(&Reverse((d, i))) = self.timers.peek() {
                if d > self.now_ms {
                    break;
                }
                self.timers.pop();
                if self.nodes[i].armed == Some(d) {
                    self.nodes[i].armed = None;
                    due.push(i);
                }
            }
            due.sort_unstable();
            due.dedup();
            for i in due.drain(..) {
                self.fire(i);
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

    /// A digest of every running node's store, recomputed for the nodes
    /// called since the last one.
    fn fingerprint(&mut self) -> u64 {
        for i in std::mem::take(&mut self.fp_stale) {
            let n = &mut self.nodes[i];
            n.fp_stale = false;
            let mut h = 0u64;
            if let Some(e) = &n.engine {
                for (_, t) in e.store().iter() {
                    h = h.wrapping_add(t.fingerprint().wrapping_mul(i as u64 + 1));
                }
            }
            self.fp_total = self.fp_total.wrapping_sub(n.fp).wrapping_add(h);
            n.fp = h;
        }
        self.fp_total
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
