//! The overlay of issue 24 (HyParView views, a Plumtree broadcast tree) in
//! the simulator: real engines with their default settings
//! (`Settings::default()`), links of 10 to 50 ms that keep their frames in
//! order (as TCP), fixed seeds. Four parts:
//!
//! 1. **Scale** (N = 1,000 and 10,000): nodes join through random earlier
//!    nodes, ten per 100 virtual ms, then settle; the views (active and
//!    passive sizes, whether the active links make one graph) and the
//!    wall time of the formation; then writes at random nodes, one after
//!    the other (each until every node holds it or 3 s) and concurrently
//!    (one every 20 ms): reach, frames per node per write, the last
//!    delivery hop against the source's eccentricity, delivery times.
//! 2. **iroh-gossip's scenarios** (its `simulations/all.toml`: 100 and
//!    1,000 nodes, its 4 seeds, 30 rounds): relative message redundancy
//!    RMR = payload frames / (N - 1) - 1 and last delivery hop, one sender
//!    and random senders, one message per round.
//! 3. **Failures** (1,000 nodes; 10,000 too in the full run): 20 %, 50 %
//!    and 80 % of the nodes crash at once; a write right after the crash,
//!    its reach 3 s later (before any repair); then one write per shuffle
//!    period and whether the live nodes' active links make one graph.
//! 4. **Flooding against the tree** (N = 16 to 128): a full mesh of
//!    `CONNECT` links against the overlay, frames per node per write.
//!
//! A write's *hops* come from the frames: the first tuple of its key
//! delivered to a node puts it one hop beyond the sender (the source is
//! at 0). *Payload* frames are tuples (pushed by the tree, or sent by a
//! graft or a reconciliation); *announcements* are IHAVE frames.
//!
//! Prints tables; the full run also writes one JSON line per measurement
//! to target/bench/overlay_sim.jsonl and part 4 to
//! target/bench/frames_per_write.csv, then runs
//! bench/plot_frames_per_write.py (docs/img/frames_per_write.png, when
//! python3 has matplotlib). `cargo test --benches` runs a quick version
//! that writes nothing.
//!
//!   cargo bench --bench overlay_sim
//!   OVERLAY_NODES=1000 OVERLAY_FAILURE_NODES=1000 OVERLAY_PARTS=scale,failures \
//!     cargo bench --bench overlay_sim

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use zgossip::engine::Settings;
use zgossip::sim::{FrameKind, Rng, Sim};

// ZGP/2 message ids (docs/protocol.md, sections 3 and 12).
const TUPLE: u8 = 6;
const IHAVE: u8 = 17;
const GRAFT: u8 = 18;
const PRUNE: u8 = 19;
/// Flags bit 1 of a tuple: pushed by the tree.
const PUSHED: u8 = 2;

/// How long a write may take to count as delivered.
const DEADLINE_MS: u64 = 3_000;
/// Run after the last write of a series, for its announcements and grafts.
const TAIL_MS: u64 = 1_000;
/// Step of the virtual clock while waiting for a write.
const STEP_MS: u64 = 10;
/// After the last join: three shuffle periods.
const SETTLE_MS: u64 = 30_000;
/// The seeds of iroh-gossip's `simulations/all.toml`.
const IROH_SEEDS: [u64; 4] = [0, 1, 212_312_388_123, 123];

// ---------------------------------------------------------------- frames

/// The ZGP/2 message id of a frame (signature AA A0, id, version 2).
fn frame_id(frame: &[u8]) -> Option<u8> {
    (frame.len() >= 4 && frame[..2] == [0xAA, 0xA0] && frame[3] == 2).then_some(frame[2])
}

/// The key of a tuple frame (a length octet, then the key).
fn tuple_key(frame: &[u8]) -> Option<&[u8]> {
    let len = *frame.get(4)? as usize;
    frame.get(5..5 + len)
}

/// The keys named in an IHAVE frame (a count, then per write: a length
/// octet, the key, clock and origin).
fn announced_keys(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 6;
    std::iter::from_fn(move || {
        let len = *frame.get(at)? as usize;
        let key = frame.get(at + 1..at + 1 + len)?;
        at += 1 + len + 16;
        Some(key)
    })
}

/// Frames sent, by kind.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Tuples pushed by the tree.
    pushed: u64,
    /// Every tuple (pushed, grafted, reconciled).
    tuples: u64,
    ihave: u64,
    /// Write ids named in the IHAVE frames.
    ihave_ids: u64,
    /// Of those delivered (tracked writes only), the ones the receiver
    /// already had.
    ihave_ids_tracked: u64,
    ihave_ids_held: u64,
    graft: u64,
    prune: u64,
    /// First deliveries of tracked writes by a tuple that was not pushed
    /// (a graft's answer or a reconciliation's).
    first_unpushed: u64,
}

impl Tally {
    fn since(self, before: Tally) -> Tally {
        Tally {
            pushed: self.pushed - before.pushed,
            tuples: self.tuples - before.tuples,
            ihave: self.ihave - before.ihave,
            ihave_ids: self.ihave_ids - before.ihave_ids,
            ihave_ids_tracked: self.ihave_ids_tracked - before.ihave_ids_tracked,
            ihave_ids_held: self.ihave_ids_held - before.ihave_ids_held,
            graft: self.graft - before.graft,
            prune: self.prune - before.prune,
            first_unpushed: self.first_unpushed - before.first_unpushed,
        }
    }

    /// Frames that carry or repair writes: tuples, IHAVE, GRAFT, PRUNE.
    fn write_frames(self) -> u64 {
        self.tuples + self.ihave + self.graft + self.prune
    }
}

/// One tracked write: when and in how many hops each node first got it.
struct Track {
    source: usize,
    start_ms: u64,
    /// Eccentricity of the source in the active graph at the write.
    eccentricity: u32,
    /// The same over eager links only (the tree as the source sees it),
    /// and whether they reach every live node.
    tree_depth: u32,
    tree_spans: bool,
    /// Per node; `u32::MAX`: not yet.
    hops: Vec<u32>,
    at_ms: Vec<u64>,
    /// Nodes that got it (the source included).
    reached: usize,
}

/// What the observer collects: every frame sent, and the first delivery
/// of each tracked key to each node.
#[derive(Default)]
struct Recorder {
    tally: Tally,
    by_key: HashMap<Vec<u8>, usize>,
    tracks: Vec<Track>,
}

impl Recorder {
    fn sent(&mut self, frame: &[u8]) {
        let t = &mut self.tally;
        match frame_id(frame) {
            Some(TUPLE) => {
                t.tuples += 1;
                if frame.last().is_some_and(|f| f & PUSHED != 0) {
                    t.pushed += 1;
                }
            }
            Some(IHAVE) => {
                t.ihave += 1;
                if let Some(n) = frame.get(4..6) {
                    t.ihave_ids += u64::from(u16::from_be_bytes([n[0], n[1]]));
                }
            }
            Some(GRAFT) => t.graft += 1,
            Some(PRUNE) => t.prune += 1,
            _ => {}
        }
    }

    fn delivered(&mut self, from: usize, to: usize, now_ms: u64, frame: &[u8]) {
        match frame_id(frame) {
            Some(TUPLE) => self.first_delivery(from, to, now_ms, frame),
            Some(IHAVE) => {
                for key in announced_keys(frame) {
                    if let Some(&i) = self.by_key.get(key) {
                        self.tally.ihave_ids_tracked += 1;
                        let held = self.tracks[i].hops[to] != u32::MAX;
                        self.tally.ihave_ids_held += u64::from(held);
                    }
                }
            }
            _ => {}
        }
    }

    fn first_delivery(&mut self, from: usize, to: usize, now_ms: u64, frame: &[u8]) {
        let Some(&i) = tuple_key(frame).and_then(|k| self.by_key.get(k)) else {
            return;
        };
        let t = &mut self.tracks[i];
        if t.hops[to] == u32::MAX && t.hops[from] != u32::MAX {
            t.hops[to] = t.hops[from] + 1;
            t.at_ms[to] = now_ms;
            t.reached += 1;
            let pushed = frame.last().is_some_and(|f| f & PUSHED != 0);
            self.tally.first_unpushed += u64::from(!pushed);
        }
    }
}

type Shared = Rc<RefCell<Recorder>>;

/// Installs a recorder as the simulator's observer.
fn record(sim: &mut Sim) -> Shared {
    let rec: Shared = Rc::default();
    let r = rec.clone();
    sim.set_observer(move |ev| match ev.kind {
        FrameKind::Sent => r.borrow_mut().sent(ev.frame),
        FrameKind::Delivered => r
            .borrow_mut()
            .delivered(ev.from, ev.to, ev.now_ms, ev.frame),
        FrameKind::Dropped => {}
    });
    rec
}

// ----------------------------------------------------------- the network

/// Node index of a simulated node id (`index << 20 | generation`).
fn index_of(id: u64) -> usize {
    (id >> 20) as usize
}

fn run_for(sim: &mut Sim, ms: u64) {
    let t = sim.now_ms() + ms;
    sim.run_until(t);
}

/// `n` unconnected nodes: default settings, 10-50 ms links, in order.
/// `OVERLAY_ROOT_INTERVAL=0` runs them without the tree's root (Plumtree's
/// rules alone), for comparison.
fn network(n: usize, seed: u64) -> Sim {
    let mut settings = Settings::default();
    if let Some(&ms) = env_list::<u64>("OVERLAY_ROOT_INTERVAL")
        .as_deref()
        .and_then(|v| v.first())
    {
        settings.tree.root_interval_ms = ms;
    }
    let mut sim = Sim::new(n, seed, settings);
    sim.conditions.latency_ms = (10, 50);
    sim.conditions.in_order = true;
    sim
}

/// The overlay: each node joins through a random earlier one, ten per
/// 100 ms, then three shuffle periods to settle.
fn overlay(n: usize, seed: u64) -> Sim {
    let mut sim = network(n, seed);
    sim.join_all(SETTLE_MS);
    sim
}

/// A full mesh of `CONNECT` links, a few seconds for the handshakes.
fn mesh(n: usize, seed: u64) -> Sim {
    let mut sim = network(n, seed);
    for a in 0..n {
        for b in a + 1..n {
            sim.connect(a, b);
        }
    }
    run_for(&mut sim, 5_000);
    sim
}

fn live(sim: &Sim) -> Vec<usize> {
    (0..sim.len()).filter(|&i| !sim.is_down(i)).collect()
}

/// The live nodes' active links, both ways (a link either end lists).
fn active_graph(sim: &Sim) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); sim.len()];
    for i in live(sim) {
        for (_, id, _) in sim.engine(i).unwrap().active_peers() {
            let j = index_of(id);
            if j != i && !sim.is_down(j) {
                adj[i].push(j);
                adj[j].push(i);
            }
        }
    }
    for a in &mut adj {
        a.sort_unstable();
        a.dedup();
    }
    adj
}

/// Who pushes to whom: `i -> j` when `i`'s link to live `j` is eager.
fn push_graph(sim: &Sim) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); sim.len()];
    for i in live(sim) {
        let e = sim.engine(i).unwrap();
        for (conn, id, _) in e.active_peers() {
            let j = index_of(id);
            if e.link_is_eager(conn) == Some(true) && !sim.is_down(j) {
                adj[i].push(j);
            }
        }
    }
    adj
}

/// Hops from `from` to every node (`u32::MAX`: unreachable).
fn bfs(adj: &[Vec<usize>], from: usize) -> Vec<u32> {
    let mut dist = vec![u32::MAX; adj.len()];
    dist[from] = 0;
    let mut queue = VecDeque::from([from]);
    while let Some(i) = queue.pop_front() {
        for &j in &adj[i] {
            if dist[j] == u32::MAX {
                dist[j] = dist[i] + 1;
                queue.push_back(j);
            }
        }
    }
    dist
}

/// The greatest distance from `from` and how many nodes it reaches.
fn eccentricity(adj: &[Vec<usize>], from: usize) -> (u32, usize) {
    let d: Vec<u32> = bfs(adj, from)
        .into_iter()
        .filter(|&d| d != u32::MAX)
        .collect();
    (d.iter().copied().max().unwrap_or(0), d.len())
}

/// Connected components of the live nodes' active graph.
fn components(sim: &Sim, adj: &[Vec<usize>]) -> usize {
    let mut seen = vec![false; adj.len()];
    let mut count = 0;
    for i in live(sim) {
        if seen[i] {
            continue;
        }
        count += 1;
        for (j, d) in bfs(adj, i).into_iter().enumerate() {
            if d != u32::MAX {
                seen[j] = true;
            }
        }
    }
    count
}

/// The views of the live nodes.
struct Views {
    active_min: usize,
    active_median: usize,
    active_max: usize,
    passive_median: usize,
    passive_max: usize,
    /// Active links only one end lists.
    one_sided: usize,
    components: usize,
}

fn median(mut v: Vec<usize>) -> usize {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn views(sim: &Sim) -> Views {
    let nodes = live(sim);
    let stats: Vec<_> = nodes
        .iter()
        .map(|&i| sim.engine(i).unwrap().overlay_stats())
        .collect();
    let active: Vec<usize> = stats.iter().map(|s| s.active).collect();
    let passive: Vec<usize> = stats.iter().map(|s| s.passive).collect();
    let mut one_sided = 0;
    for &i in &nodes {
        for (_, id, _) in sim.engine(i).unwrap().active_peers() {
            let j = index_of(id);
            let back = sim
                .engine(j)
                .is_some_and(|e| e.active_peers().iter().any(|p| index_of(p.1) == i));
            one_sided += usize::from(!back);
        }
    }
    let adj = active_graph(sim);
    Views {
        active_min: active.iter().copied().min().unwrap_or(0),
        active_median: median(active.clone()),
        active_max: active.iter().copied().max().unwrap_or(0),
        passive_median: median(passive.clone()),
        passive_max: passive.iter().copied().max().unwrap_or(0),
        one_sided,
        components: components(sim, &adj),
    }
}

// ---------------------------------------------------------------- writes

/// Who writes.
#[derive(Clone, Copy)]
enum Senders {
    Random,
    /// Node 0 (as iroh-gossip's single sender).
    One,
}

/// How writes follow each other.
#[derive(Clone, Copy)]
enum Pace {
    /// The next once every live node holds the last, or after 3 s.
    Sequential,
    /// One every so many milliseconds.
    Every(u64),
}

#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    senders: Senders,
    pace: Pace,
    /// Writes before counting (the tree forms on the first ones).
    warmup: usize,
    writes: usize,
}

/// Publishes a write of a new key at `node` and tracks it.
fn publish_tracked(sim: &mut Sim, rec: &Shared, node: usize, key: &str) -> usize {
    let (ecc, _) = eccentricity(&active_graph(sim), node);
    let (tree_depth, tree_reach) = eccentricity(&push_graph(sim), node);
    let n = sim.len();
    let mut r = rec.borrow_mut();
    let mut track = Track {
        source: node,
        start_ms: sim.now_ms(),
        eccentricity: ecc,
        tree_depth,
        tree_spans: tree_reach == live(sim).len(),
        hops: vec![u32::MAX; n],
        at_ms: vec![0; n],
        reached: 1,
    };
    track.hops[node] = 0;
    track.at_ms[node] = sim.now_ms();
    let i = r.tracks.len();
    r.tracks.push(track);
    r.by_key.insert(key.as_bytes().to_vec(), i);
    drop(r);
    sim.publish(node, key, "v", None);
    i
}

/// Runs until every live node got the writes `tracks` or each is past
/// its deadline.
fn wait_for(sim: &mut Sim, rec: &Shared, tracks: std::ops::Range<usize>) {
    let live = live(sim).len();
    loop {
        let pending = {
            let r = rec.borrow();
            r.tracks[tracks.clone()]
                .iter()
                .any(|t| t.reached < live && sim.now_ms() < t.start_ms + DEADLINE_MS)
        };
        if !pending {
            return;
        }
        run_for(sim, STEP_MS);
    }
}

/// Publishes `count` writes as the workload says; returns their tracks.
fn publish_series(
    sim: &mut Sim,
    rec: &Shared,
    w: &Workload,
    prefix: &str,
    count: usize,
) -> std::ops::Range<usize> {
    let first = rec.borrow().tracks.len();
    for k in 0..count {
        let nodes = live(sim);
        let node = match w.senders {
            Senders::Random => nodes[sim.rng.index(nodes.len())],
            Senders::One => nodes[0],
        };
        let t = publish_tracked(sim, rec, node, &format!("{prefix}/{k}"));
        match w.pace {
            Pace::Sequential => wait_for(sim, rec, t..t + 1),
            Pace::Every(ms) => run_for(sim, ms),
        }
    }
    let tracks = first..first + count;
    wait_for(sim, rec, tracks.clone());
    tracks
}

/// What a series of writes cost and how they travelled.
#[derive(Default)]
struct Figures {
    writes: usize,
    live: usize,
    /// % of live nodes that got a write within 3 s: mean and least.
    reach_mean: f64,
    reach_min: f64,
    /// Writes that got to every live node within 3 s.
    complete: usize,
    tally: Tally,
    /// Last delivery hop: mean and greatest over the writes.
    ldh_mean: f64,
    ldh_max: u32,
    eccentricity_mean: f64,
    /// Depth of the eager links from the source, and writes whose source
    /// reached every live node by eager links alone.
    tree_depth_mean: f64,
    tree_spans: usize,
    /// Eager link ends per live node after the writes (a spanning tree:
    /// 2 (N - 1) / N).
    eager_ends: f64,
    /// Last delivery hop over the source's eccentricity.
    ldh_ratio_mean: f64,
    ldh_ratio_max: f64,
    /// The active graph's diameter (its greatest eccentricity) after the
    /// writes: the overlay's own eccentricity, whoever writes.
    diameter: u32,
    /// Mean time to a node, and to the last one (ms, mean over writes).
    delivery_ms_mean: f64,
    last_ms_mean: f64,
    wall_s: f64,
}

impl Figures {
    /// Frames of a kind per live node per write.
    fn per_node(&self, frames: u64) -> f64 {
        frames as f64 / (self.live * self.writes).max(1) as f64
    }

    /// Frames of a kind per write.
    fn per_write(&self, frames: u64) -> f64 {
        frames as f64 / self.writes.max(1) as f64
    }

    /// % of the write ids announced (tracked writes) that the receiver
    /// already had.
    fn useless_announcements(&self) -> f64 {
        let t = self.tally;
        100.0 * t.ihave_ids_held as f64 / t.ihave_ids_tracked.max(1) as f64
    }

    /// Relative message redundancy: payload frames / (N - 1) - 1.
    fn rmr(&self) -> f64 {
        self.tally.tuples as f64 / (self.writes * self.live.saturating_sub(1)).max(1) as f64 - 1.0
    }

    fn json(&self, j: Json) -> Json {
        j.num("writes", self.writes)
            .num("live", self.live)
            .f("reach_pct_mean", self.reach_mean, 3)
            .f("reach_pct_min", self.reach_min, 3)
            .num("complete", self.complete)
            .f("pushed_per_node", self.per_node(self.tally.pushed), 3)
            .f("payload_per_node", self.per_node(self.tally.tuples), 3)
            .f("ihave_per_node", self.per_node(self.tally.ihave), 3)
            .f("ihave_ids_per_node", self.per_node(self.tally.ihave_ids), 3)
            .f(
                "ihave_ids_already_held_pct",
                self.useless_announcements(),
                1,
            )
            .f("grafts_per_write", self.per_write(self.tally.graft), 2)
            .f("prunes_per_write", self.per_write(self.tally.prune), 2)
            .f(
                "first_unpushed_per_write",
                self.per_write(self.tally.first_unpushed),
                2,
            )
            .f("rmr", self.rmr(), 3)
            .f("ldh_mean", self.ldh_mean, 2)
            .num("ldh_max", self.ldh_max)
            .f("eccentricity_mean", self.eccentricity_mean, 2)
            .f("tree_depth_mean", self.tree_depth_mean, 2)
            .num("tree_spans", self.tree_spans)
            .f("eager_ends_per_node", self.eager_ends, 3)
            .f("ldh_over_eccentricity_mean", self.ldh_ratio_mean, 2)
            .f("ldh_over_eccentricity_max", self.ldh_ratio_max, 2)
            .num("diameter", self.diameter)
            .f("delivery_ms_mean", self.delivery_ms_mean, 1)
            .f("last_delivery_ms_mean", self.last_ms_mean, 1)
            .f("wall_s", self.wall_s, 2)
    }
}

/// One write's figures over the live nodes: reach %, last delivery hop,
/// mean and last delivery time (ms).
fn one_write(t: &Track, live: &[usize]) -> (f64, u32, f64, u64) {
    let got: Vec<usize> = live
        .iter()
        .copied()
        .filter(|&i| t.hops[i] != u32::MAX && t.at_ms[i] <= t.start_ms + DEADLINE_MS)
        .collect();
    let reach = 100.0 * got.len() as f64 / live.len().max(1) as f64;
    let ldh = got.iter().map(|&i| t.hops[i]).max().unwrap_or(0);
    let times: Vec<u64> = got
        .iter()
        .filter(|&&i| i != t.source)
        .map(|&i| t.at_ms[i] - t.start_ms)
        .collect();
    let mean = times.iter().sum::<u64>() as f64 / times.len().max(1) as f64;
    (reach, ldh, mean, times.iter().copied().max().unwrap_or(0))
}

fn figures(sim: &Sim, rec: &Shared, tracks: std::ops::Range<usize>, tally: Tally) -> Figures {
    let live = live(sim);
    let eager: usize = live
        .iter()
        .map(|&i| sim.engine(i).unwrap().overlay_stats().eager)
        .sum();
    let adj = active_graph(sim);
    let diameter = live
        .iter()
        .map(|&i| eccentricity(&adj, i).0)
        .max()
        .unwrap_or(0);
    let r = rec.borrow();
    let tracks = &r.tracks[tracks];
    let writes = tracks.len().max(1) as f64;
    let mut f = Figures {
        writes: tracks.len(),
        live: live.len(),
        reach_min: 100.0,
        tally,
        eager_ends: eager as f64 / live.len().max(1) as f64,
        diameter,
        ..Figures::default()
    };
    for t in tracks {
        let (reach, ldh, mean_ms, last_ms) = one_write(t, &live);
        let ratio = f64::from(ldh) / f64::from(t.eccentricity.max(1));
        f.reach_mean += reach / writes;
        f.reach_min = f.reach_min.min(reach);
        f.complete += usize::from(reach >= 100.0);
        f.ldh_mean += f64::from(ldh) / writes;
        f.ldh_max = f.ldh_max.max(ldh);
        f.eccentricity_mean += f64::from(t.eccentricity) / writes;
        f.tree_depth_mean += f64::from(t.tree_depth) / writes;
        f.tree_spans += usize::from(t.tree_spans);
        f.ldh_ratio_mean += ratio / writes;
        f.ldh_ratio_max = f.ldh_ratio_max.max(ratio);
        f.delivery_ms_mean += mean_ms / writes;
        f.last_ms_mean += last_ms as f64 / writes;
    }
    f
}

/// Runs a workload: its warm-up, then the counted writes and a tail for
/// their last announcements.
fn run_workload(sim: &mut Sim, rec: &Shared, w: &Workload) -> Figures {
    let wall = Instant::now();
    publish_series(sim, rec, w, &format!("{}-warm", w.name), w.warmup);
    let before = rec.borrow().tally;
    let tracks = publish_series(sim, rec, w, w.name, w.writes);
    run_for(sim, TAIL_MS);
    let tally = rec.borrow().tally.since(before);
    let mut f = figures(sim, rec, tracks, tally);
    f.wall_s = wall.elapsed().as_secs_f64();
    f
}

// ---------------------------------------------------------------- output

/// One JSON line, fields in order.
struct Json(String);

impl Json {
    fn new(part: &str) -> Json {
        Json(format!("{{\"part\":\"{part}\""))
    }

    fn num(mut self, key: &str, v: impl Display) -> Json {
        self.0 += &format!(",\"{key}\":{v}");
        self
    }

    fn f(self, key: &str, v: f64, digits: usize) -> Json {
        self.num(key, format!("{v:.digits$}"))
    }

    fn s(mut self, key: &str, v: &str) -> Json {
        self.0 += &format!(",\"{key}\":\"{v}\"");
        self
    }

    fn end(self) -> String {
        self.0 + "}"
    }
}

/// Where JSON lines go: the file in the full run, nowhere in the quick one.
struct Out(Option<std::fs::File>);

impl Out {
    fn emit(&mut self, j: Json) {
        if let Some(f) = self.0.as_mut() {
            let _ = writeln!(f, "{}", j.end());
        }
    }
}

fn row(cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| format!("{c:>9}")).collect();
    println!("{}", line.join(" "));
}

fn header(title: &str, cells: &[&str]) {
    println!("\n{title}");
    row(&cells.iter().map(|c| c.to_string()).collect::<Vec<_>>());
}

const WRITE_COLUMNS: [&str; 19] = [
    "N", "workload", "reach%", "min%", "pushed/n", "tuples/n", "ihave/n", "held%", "grafts/w",
    "unpush/w", "ldh", "ecc", "ldh/ecc", "ldh max", "diameter", "tree ecc", "tree ok", "eager/n",
    "ms mean",
];

fn write_row(n: usize, name: &str, f: &Figures) {
    row(&[
        n.to_string(),
        name.to_string(),
        format!("{:.2}", f.reach_mean),
        format!("{:.2}", f.reach_min),
        format!("{:.3}", f.per_node(f.tally.pushed)),
        format!("{:.3}", f.per_node(f.tally.tuples)),
        format!("{:.3}", f.per_node(f.tally.ihave)),
        format!("{:.0}", f.useless_announcements()),
        format!("{:.1}", f.per_write(f.tally.graft)),
        format!("{:.1}", f.per_write(f.tally.first_unpushed)),
        format!("{:.1}", f.ldh_mean),
        format!("{:.1}", f.eccentricity_mean),
        format!("{:.2}", f.ldh_ratio_mean),
        f.ldh_max.to_string(),
        f.diameter.to_string(),
        format!("{:.1}", f.tree_depth_mean),
        format!("{}/{}", f.tree_spans, f.writes),
        format!("{:.2}", f.eager_ends),
        format!("{:.0}", f.delivery_ms_mean),
    ]);
}

// ----------------------------------------------------------------- parts

/// Sizes and counts of a run.
struct Plan {
    quick: bool,
    parts: Vec<String>,
    scale_nodes: Vec<usize>,
    sequential: Workload,
    concurrent: Workload,
    iroh_nodes: Vec<usize>,
    iroh_seeds: Vec<u64>,
    iroh_rounds: usize,
    failure_nodes: Vec<usize>,
    /// Shuffle periods watched after a crash.
    failure_periods: u64,
    flood_nodes: Vec<usize>,
    flood: Workload,
}

fn env_list<T: std::str::FromStr>(name: &str) -> Option<Vec<T>> {
    let s = std::env::var(name).ok()?;
    Some(s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let pick = |q: usize, full: usize| if quick { q } else { full };
        let sequential = Workload {
            name: "sequential",
            senders: Senders::Random,
            pace: Pace::Sequential,
            warmup: pick(5, 20),
            writes: pick(10, 30),
        };
        Plan {
            quick,
            parts: env_list("OVERLAY_PARTS").unwrap_or_else(|| {
                ["scale", "iroh", "failures", "flood"]
                    .map(String::from)
                    .to_vec()
            }),
            scale_nodes: env_list("OVERLAY_NODES").unwrap_or(if quick {
                vec![150]
            } else {
                vec![1_000, 10_000]
            }),
            sequential,
            concurrent: Workload {
                name: "concurrent",
                pace: Pace::Every(20),
                warmup: 0,
                writes: pick(30, 200),
                ..sequential
            },
            iroh_nodes: if quick { vec![100] } else { vec![100, 1_000] },
            iroh_seeds: IROH_SEEDS[..pick(1, 4)].to_vec(),
            iroh_rounds: pick(10, 30),
            failure_nodes: env_list("OVERLAY_FAILURE_NODES").unwrap_or(if quick {
                vec![150]
            } else {
                vec![1_000, 10_000]
            }),
            failure_periods: if quick { 3 } else { 6 },
            flood_nodes: if quick {
                vec![16, 32]
            } else {
                vec![16, 32, 64, 128]
            },
            flood: Workload {
                name: "flood",
                warmup: pick(5, 10),
                writes: pick(5, 20),
                ..sequential
            },
        }
    }

    fn runs(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

fn scale(plan: &Plan, out: &mut Out) {
    header(
        "1. Scale: views after joins (ten per 100 ms) and three shuffle periods",
        &[
            "N", "active", "(median)", "(min)", "passive", "(median)", "1-sided", "graphs",
            "form s",
        ],
    );
    let mut results = Vec::new();
    for &n in &plan.scale_nodes {
        let wall = Instant::now();
        let mut sim = overlay(n, 1);
        let form_s = wall.elapsed().as_secs_f64();
        let v = views(&sim);
        row(&[
            n.to_string(),
            v.active_max.to_string(),
            v.active_median.to_string(),
            v.active_min.to_string(),
            v.passive_max.to_string(),
            v.passive_median.to_string(),
            v.one_sided.to_string(),
            v.components.to_string(),
            format!("{form_s:.1}"),
        ]);
        out.emit(
            Json::new("scale")
                .s("what", "views")
                .num("nodes", n)
                .num("seed", 1)
                .num("active_max", v.active_max)
                .num("active_median", v.active_median)
                .num("active_min", v.active_min)
                .num("passive_max", v.passive_max)
                .num("passive_median", v.passive_median)
                .num("one_sided_links", v.one_sided)
                .num("components", v.components)
                .num("virtual_ms", sim.now_ms())
                .f("formation_wall_s", form_s, 2),
        );
        let rec = record(&mut sim);
        for w in [&plan.sequential, &plan.concurrent] {
            let f = run_workload(&mut sim, &rec, w);
            out.emit(f.json(Json::new("scale").s("what", w.name).num("nodes", n)));
            results.push((n, w.name, f));
        }
    }
    header(
        "   writes at random nodes (per node per write: /n)",
        &WRITE_COLUMNS,
    );
    for (n, name, f) in &results {
        write_row(*n, name, f);
    }
}

/// iroh-gossip's GossipSingle and GossipMulti: a fresh overlay per seed
/// and scenario, one message per round, no warm-up.
fn iroh_like(plan: &Plan, out: &mut Out) {
    header(
        "2. iroh-gossip's scenarios (mean over seeds; RMR = payload / (N-1) - 1)",
        &[
            "N", "senders", "seeds", "rounds", "RMR", "LDH", "missed", "reach%",
        ],
    );
    for &n in &plan.iroh_nodes {
        for (label, senders) in [("one", Senders::One), ("random", Senders::Random)] {
            let w = Workload {
                name: "round",
                senders,
                pace: Pace::Sequential,
                warmup: 0,
                writes: plan.iroh_rounds,
            };
            let (mut rmr, mut ldh, mut reach, mut missed) = (0.0, 0.0, 0.0, 0);
            for &seed in &plan.iroh_seeds {
                let mut sim = overlay(n, seed);
                let rec = record(&mut sim);
                let f = run_workload(&mut sim, &rec, &w);
                out.emit(
                    f.json(
                        Json::new("iroh")
                            .num("nodes", n)
                            .s("senders", label)
                            .num("seed", seed),
                    ),
                );
                let k = plan.iroh_seeds.len() as f64;
                rmr += f.rmr() / k;
                ldh += f.ldh_mean / k;
                reach += f.reach_mean / k;
                missed += f.writes - f.complete;
            }
            row(&[
                n.to_string(),
                label.to_string(),
                plan.iroh_seeds.len().to_string(),
                plan.iroh_rounds.to_string(),
                format!("{rmr:.3}"),
                format!("{ldh:.1}"),
                missed.to_string(),
                format!("{reach:.2}"),
            ]);
        }
    }
}

/// Crashes `pct` % of the nodes, chosen at random, at once.
fn crash_share(sim: &mut Sim, pct: usize) {
    let all: Vec<usize> = (0..sim.len()).collect();
    let mut rng = Rng::new(0xc4a5 ^ pct as u64);
    for i in rng.sample(&all, sim.len() * pct / 100) {
        sim.crash(i);
    }
}

/// Reach (%) of a tracked write over the live nodes, within 3 s.
fn reach_of(sim: &Sim, rec: &Shared, track: usize) -> f64 {
    one_write(&rec.borrow().tracks[track], &live(sim)).0
}

fn failures(plan: &Plan, out: &mut Out) {
    let period = Settings::default().views.shuffle_interval_ms;
    header(
        &format!(
            "3. Failures: a share crashed at once; writes after 0, 1, 2 ... shuffle periods ({} s)",
            period / 1000
        ),
        &[
            "N",
            "crashed%",
            "live",
            "next w%",
            "100% at",
            "graph at",
            "reach% by period, graphs",
        ],
    );
    for &n in &plan.failure_nodes {
        for pct in [20, 50, 80] {
            let wall = Instant::now();
            let mut sim = overlay(n, 2);
            let rec = record(&mut sim);
            let warm = Workload {
                warmup: 0,
                writes: 10,
                ..plan.sequential
            };
            publish_series(&mut sim, &rec, &warm, "before", warm.writes);
            crash_share(&mut sim, pct);
            let crash_ms = sim.now_ms();
            let nodes = live(&sim);
            // Period 0: right after the crash, before any repair.
            let (mut reaches, mut graphs) = (Vec::new(), Vec::new());
            for k in 0..=plan.failure_periods {
                let at = crash_ms + k * period;
                sim.run_until(at);
                graphs.push(components(&sim, &active_graph(&sim)));
                let node = nodes[sim.rng.index(nodes.len())];
                let t = publish_tracked(&mut sim, &rec, node, &format!("crash{pct}/{k}"));
                wait_for(&mut sim, &rec, t..t + 1);
                reaches.push(reach_of(&sim, &rec, t));
            }
            let first = |ok: &dyn Fn(usize) -> bool| {
                (0..reaches.len())
                    .find(|&k| ok(k))
                    .map_or("never".to_string(), |k| k.to_string())
            };
            let all_at = first(&|k| reaches[k] >= 100.0);
            let one_at = first(&|k| graphs[k] == 1);
            let by_period: Vec<String> = reaches
                .iter()
                .zip(&graphs)
                .map(|(r, g)| format!("{r:.1}/{g}"))
                .collect();
            row(&[
                n.to_string(),
                pct.to_string(),
                nodes.len().to_string(),
                format!("{:.2}", reaches[0]),
                all_at.clone(),
                one_at.clone(),
                by_period.join(" "),
            ]);
            let list = |v: Vec<String>| format!("[{}]", v.join(","));
            out.emit(
                Json::new("failures")
                    .num("nodes", n)
                    .num("crashed_pct", pct)
                    .num("live", nodes.len())
                    .num("shuffle_interval_ms", period)
                    .f("next_write_reach_pct", reaches[0], 3)
                    .s("all_reached_from_period", &all_at)
                    .s("one_graph_from_period", &one_at)
                    .num(
                        "reach_pct_by_period",
                        list(reaches.iter().map(|r| format!("{r:.3}")).collect()),
                    )
                    .num(
                        "components_by_period",
                        list(graphs.iter().map(|g| g.to_string()).collect()),
                    )
                    .f("wall_s", wall.elapsed().as_secs_f64(), 1),
            );
        }
    }
}

/// Frames per node per write on a full mesh of CONNECT links and on the
/// overlay: the first write (every link still eager: flooding) and the
/// steady state.
fn flood(plan: &Plan, out: &mut Out) {
    header(
        "4. Full mesh of CONNECT links against the overlay, per node per write",
        &[
            "N", "topology", "links/n", "first w", "tuples/n", "ihave/n", "all/n", "reach%",
        ],
    );
    let mut csv = String::from(
        "nodes,topology,links_per_node,first_write_payload_per_node,\
         payload_per_node,ihave_per_node,write_frames_per_node\n",
    );
    for &n in &plan.flood_nodes {
        for topology in ["mesh", "overlay"] {
            let mut sim = match topology {
                "mesh" => mesh(n, 3),
                _ => overlay(n, 3),
            };
            let links = (0..n)
                .map(|i| sim.engine(i).unwrap().connection_count())
                .sum::<usize>() as f64
                / n as f64;
            let rec = record(&mut sim);
            let first = Workload {
                name: "first",
                warmup: 0,
                writes: 1,
                ..plan.flood
            };
            let cold = run_workload(&mut sim, &rec, &first);
            let f = run_workload(&mut sim, &rec, &plan.flood);
            let cold_payload = cold.per_node(cold.tally.tuples);
            let (payload, ihave, all) = (
                f.per_node(f.tally.tuples),
                f.per_node(f.tally.ihave),
                f.per_node(f.tally.write_frames()),
            );
            row(&[
                n.to_string(),
                topology.to_string(),
                format!("{links:.1}"),
                format!("{cold_payload:.2}"),
                format!("{payload:.3}"),
                format!("{ihave:.3}"),
                format!("{all:.3}"),
                format!("{:.2}", f.reach_min),
            ]);
            csv += &format!(
                "{n},{topology},{links:.2},{cold_payload:.3},{payload:.3},{ihave:.3},{all:.3}\n"
            );
            out.emit(
                f.json(
                    Json::new("flood")
                        .num("nodes", n)
                        .s("topology", topology)
                        .f("links_per_node", links, 2)
                        .f("first_write_payload_per_node", cold_payload, 3)
                        .f("write_frames_per_node", all, 3),
                ),
            );
        }
    }
    if !plan.quick {
        let _ = std::fs::write("target/bench/frames_per_write.csv", csv);
        plot();
    }
}

/// docs/img/frames_per_write.png from the CSV, if python3 has matplotlib.
fn plot() {
    let run = std::process::Command::new("python3")
        .args([
            "bench/plot_frames_per_write.py",
            "target/bench/frames_per_write.csv",
        ])
        .status();
    if !run.is_ok_and(|s| s.success()) {
        println!("(no plot: python3 bench/plot_frames_per_write.py did not run)");
    }
}

/// One part of the benchmark.
type Part = fn(&Plan, &mut Out);

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs a quick one.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let plan = Plan::new(quick);
    let wall = Instant::now();
    // The quick run only prints: it must not replace a full run's figures.
    let mut out = Out(if quick {
        None
    } else {
        let _ = std::fs::create_dir_all("target/bench");
        std::fs::File::create("target/bench/overlay_sim.jsonl").ok()
    });
    let parts: [(&str, Part); 4] = [
        ("scale", scale),
        ("iroh", iroh_like),
        ("failures", failures),
        ("flood", flood),
    ];
    for (name, part) in parts {
        if plan.runs(name) {
            let t = Instant::now();
            part(&plan, &mut out);
            println!("   ({name}: {:.1} s)", t.elapsed().as_secs_f64());
        }
    }
    println!("\noverlay_sim: {:.1} s", wall.elapsed().as_secs_f64());
}
