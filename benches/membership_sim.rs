//! The membership of issue 25 in the simulator (`docs/membership.md`):
//! real engines with their default settings, links of 10 to 50 ms kept in
//! order (as TCP), fixed seeds. Two parts:
//!
//! 1. **Detection** (N = 1,000 and 10,000): nodes join through random
//!    earlier nodes, ten per 100 virtual ms, then settle; whether every
//!    node lists every other alive; the steady load per node (all frames,
//!    and the membership's own) over 10 idle seconds; then five crashes
//!    one after another (kill -9: links reset) and five graceful leaves:
//!    for each, when every live node lists the member failed (left), and
//!    the per-node times' median, 99th percentile and maximum.
//! 2. **False positives** (N = 1,000): 5 % of frames lost on every link,
//!    a node in ten pausing for 2 s at random moments (once every 10 s on
//!    average) for a simulated hour: failures declared (none allowed),
//!    suspicions and refutations.
//!
//! `cargo test --benches` runs a quick version (150 nodes, one minute).
//!
//!   cargo bench --bench membership_sim
//!   MEMBERS_NODES=1000 MEMBERS_FP_SECONDS=600 cargo bench --bench membership_sim
//!   MEMBERS_PARTS=detect (or fp)

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use zgossip::engine::{Now, Settings};
use zgossip::sim::{FrameKind, Sim};
use zgossip::wire::membership::MemberState;

const MEMBERS: u8 = 23;
const DIGEST: u8 = 24;

fn frame_id(frame: &[u8]) -> Option<u8> {
    (frame.len() >= 4 && frame[..2] == [0xAA, 0xA0] && frame[3] == 2).then_some(frame[2])
}

fn env_list(name: &str) -> Option<Vec<usize>> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn overlay(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(n, seed, Settings::default());
    sim.conditions.latency_ms = (10, 50);
    sim.conditions.in_order = true;
    sim.join_all(30_000);
    sim
}

fn live(sim: &Sim) -> Vec<usize> {
    (0..sim.len()).filter(|&i| !sim.is_down(i)).collect()
}

fn state(sim: &Sim, at: usize, id: u64) -> Option<MemberState> {
    sim.engine(at)?.member(id).map(|m| m.record.state)
}

/// Runs in steps of 20 ms until every live node lists `id` as `want` (at
/// most `limit_ms`); each node's time, and the time until all did.
fn times_until(
    sim: &mut Sim,
    id: u64,
    want: MemberState,
    limit_ms: u64,
) -> (Vec<u64>, Option<u64>) {
    let start = sim.now_ms();
    let nodes = live(sim);
    let mut seen: Vec<Option<u64>> = vec![None; nodes.len()];
    loop {
        let t = sim.now_ms() - start;
        for (k, &i) in nodes.iter().enumerate() {
            if seen[k].is_none() && !sim.is_down(i) && state(sim, i, id) == Some(want) {
                seen[k] = Some(t);
            }
        }
        if seen.iter().all(Option::is_some) {
            return (seen.into_iter().flatten().collect(), Some(t));
        }
        if t >= limit_ms {
            return (seen.into_iter().flatten().collect(), None);
        }
        let next = sim.now_ms() + 20;
        sim.run_until(next);
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[derive(Default, Clone, Copy)]
struct Load {
    frames: u64,
    bytes: u64,
    member_frames: u64,
    member_bytes: u64,
}

/// Resident memory of this process, in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn detect(n: usize, quick: bool) {
    let wall = Instant::now();
    let before = rss_bytes();
    let mut sim = overlay(n, 25);
    let formed = wall.elapsed().as_secs_f64();
    let entries = (n * (n - 1)) as f64;
    println!(
        "resident memory {:.0} MiB for {} member entries: at most {:.0} bytes each \
         (the engines, links and stores counted in)",
        (rss_bytes().saturating_sub(before)) as f64 / (1 << 20) as f64,
        n * (n - 1),
        rss_bytes().saturating_sub(before) as f64 / entries
    );
    let complete = (0..n)
        .filter(|&i| sim.engine(i).unwrap().member_counts() == (n - 1, 0, 0))
        .count();
    println!(
        "\n## {n} nodes: formed in {formed:.1} s of wall time; {complete} of {n} list every other member alive"
    );
    // Steady load: 10 idle seconds.
    let load = Rc::new(RefCell::new(Load::default()));
    let l = load.clone();
    sim.set_observer(move |ev| {
        if ev.kind != FrameKind::Sent {
            return;
        }
        let mut l = l.borrow_mut();
        l.frames += 1;
        l.bytes += ev.frame.len() as u64;
        if matches!(frame_id(ev.frame), Some(MEMBERS | DIGEST)) {
            l.member_frames += 1;
            l.member_bytes += ev.frame.len() as u64;
        }
    });
    let seconds = 10;
    let t = sim.now_ms() + seconds * 1_000;
    sim.run_until(t);
    sim.clear_observer();
    let l = *load.borrow();
    let per = (n as u64 * seconds) as f64;
    println!(
        "steady load per node: {:.1} frames/s, {:.0} B/s in all; membership {:.2} frames/s, {:.0} B/s",
        l.frames as f64 / per,
        l.bytes as f64 / per,
        l.member_frames as f64 / per,
        l.member_bytes as f64 / per
    );
    let rounds = if quick { 2 } else { 5 };
    for (what, graceful) in [("crash", false), ("leave", true)] {
        let mut all = Vec::new();
        let mut everywhere = Vec::new();
        for _ in 0..rounds {
            let nodes = live(&sim);
            let victim = nodes[sim.rng.index(nodes.len())];
            let id = sim.engine(victim).unwrap().id();
            let want = if graceful {
                let now = Now {
                    mono_ms: sim.now_ms(),
                    wall_ms: sim.now_ms(),
                };
                sim.engine_mut(victim).unwrap().leave(now);
                // The process exits once its leave is sent: a real node
                // lingers until its output is written, and the kernel
                // delivers it before the close (the simulator's crash
                // drops what is in flight, so wait the links' latency).
                let t = sim.now_ms() + 100;
                sim.run_until(t);
                MemberState::Left
            } else {
                MemberState::Failed
            };
            sim.crash(victim);
            let (mut times, all_at) = times_until(&mut sim, id, want, 30_000);
            times.sort_unstable();
            everywhere.push(all_at);
            all.extend(times);
            let t = sim.now_ms() + 15_000;
            sim.run_until(t);
        }
        all.sort_unstable();
        let ev: Vec<String> = everywhere
            .iter()
            .map(|e| e.map_or("never".into(), |t| format!("{:.2}", t as f64 / 1e3)))
            .collect();
        println!(
            "{what}: everywhere after {} s; per node median {:.2} s, p99 {:.2} s, max {:.2} s ({} samples)",
            ev.join(", "),
            percentile(&all, 0.5) as f64 / 1e3,
            percentile(&all, 0.99) as f64 / 1e3,
            all.last().copied().unwrap_or(0) as f64 / 1e3,
            all.len()
        );
    }
    let false_failures: u64 = live(&sim)
        .iter()
        .map(|&i| sim.engine(i).unwrap().membership_stats().refutations)
        .sum();
    println!("refutations during the run: {false_failures}");
    println!("wall time {:.1} s", wall.elapsed().as_secs_f64());
}

fn false_positives(n: usize, seconds: u64) {
    let wall = Instant::now();
    let mut sim = overlay(n, 26);
    sim.conditions.loss = 0.05;
    let everyone: Vec<usize> = (0..n).collect();
    let pausers = sim.rng.sample(&everyone, n / 10);
    let mut pauses = 0;
    for _ in 0..seconds {
        let start = sim.now_ms();
        let mut pausing = Vec::new();
        for &p in &pausers {
            if !sim.is_paused(p) && sim.rng.chance(0.1) {
                pausing.push(p);
            }
        }
        let mut at: Vec<(u64, usize)> = pausing
            .into_iter()
            .map(|p| (sim.rng.below(1_000), p))
            .collect();
        at.sort_unstable();
        for (ms, node) in at {
            sim.run_until(start + ms);
            sim.pause(node, 2_000);
            pauses += 1;
        }
        sim.run_until(start + 1_000);
    }
    sim.conditions.loss = 0.0;
    let t = sim.now_ms() + 10_000;
    sim.run_until(t);
    let stats: Vec<_> = (0..n)
        .map(|i| sim.engine(i).unwrap().membership_stats())
        .collect();
    let failures: u64 = stats.iter().map(|s| s.failures).sum();
    let suspicions: u64 = stats.iter().map(|s| s.suspicions).sum();
    let refutations: u64 = stats.iter().map(|s| s.refutations).sum();
    let withheld: u64 = stats.iter().map(|s| s.suspicions_withheld).sum();
    let not_alive = (0..n)
        .filter(|&i| sim.engine(i).unwrap().member_counts() != (n - 1, 0, 0))
        .count();
    println!(
        "\n## false positives: {n} nodes, {seconds} s, 5 % loss, {pauses} pauses of 2 s by {} nodes\n\
         failures declared {failures}; suspicions heard {suspicions}; refutations {refutations}; \
         suspicions withheld (stalled) {withheld}; nodes not listing all alive at the end {not_alive}; \
         wall time {:.1} s",
        pausers.len(),
        wall.elapsed().as_secs_f64()
    );
}

fn main() {
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let parts = std::env::var("MEMBERS_PARTS").unwrap_or_else(|_| "detect,fp".into());
    if parts.contains("detect") {
        let sizes = env_list("MEMBERS_NODES").unwrap_or(if quick {
            vec![150]
        } else {
            vec![1_000, 10_000]
        });
        for n in sizes {
            detect(n, quick);
        }
    }
    if parts.contains("fp") {
        let n = env_u64("MEMBERS_FP_NODES").unwrap_or(if quick { 150 } else { 1_000 }) as usize;
        let seconds = env_u64("MEMBERS_FP_SECONDS").unwrap_or(if quick { 60 } else { 3_600 });
        false_positives(n, seconds);
    }
}
