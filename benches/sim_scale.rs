//! The simulator at scale, two parts.
//!
//! Dissemination: random sparse topologies of 1,000 to 100,000 nodes, a
//! few tuples published at random nodes; reports how long (in virtual
//! milliseconds, one per hop) and how many messages it takes until every
//! node holds every tuple. One JSON line per N, also written to
//! target/bench/sim.jsonl for bench/report.py.
//!
//! Broadcast: 10,000 nodes (by default) in a random tree plus N/2 extra
//! links, the simulator's usual timers (pings, reconciliation rounds),
//! 5 to 50 ms per frame; one write at a random node, run until every node
//! holds it. Reports the wall time of the setup (a virtual second of
//! handshakes and first rounds) and of the broadcast, the events (calls
//! into engines) processed, and when the nodes first held the write
//! ([`Sim::first_held`]). One JSON line per N, also written to
//! target/bench/sim_broadcast.jsonl.
//!
//!   cargo bench --bench sim_scale            # N = 1k, 10k, 100k; 10k
//!   SIM_NODES=1000,5000 SIM_BROADCAST_NODES=10000,30000 \
//!     cargo bench --bench sim_scale

use std::io::Write;
use std::time::Instant;

use zgossip::engine::Settings;
use zgossip::sim::{Rng, Sim};

const TUPLES: usize = 10;

fn run(n: usize, seed: u64) -> String {
    let wall = Instant::now();
    // Timers out of the way: this measures dissemination, not liveness.
    let settings = Settings {
        session_timeout_ms: 600_000,
        ping_interval_ms: 600_000,
        remote_timeout_ms: 1_200_000,
        sync_interval_ms: 600_000,
        ..Sim::fast_settings()
    };
    let mut sim = Sim::new(n, seed, settings);
    let mut rng = Rng::new(seed);
    for i in 1..n {
        sim.connect(i, rng.below(i as u64) as usize);
    }
    for _ in 0..n / 10 {
        let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
        if a != b {
            sim.connect(a, b);
        }
    }
    sim.run_until(50);
    let frames_before = sim.stats.frames_sent;
    let start = sim.now_ms();
    for t in 0..TUPLES {
        let at = rng.below(n as u64) as usize;
        sim.publish(at, &format!("tuple-{t}"), "v", None);
    }
    let mut done_at = None;
    while sim.now_ms() < start + 10_000 {
        let t = sim.now_ms() + 1;
        sim.run_until(t);
        let complete = (0..n).all(|i| sim.engine(i).is_some_and(|e| e.store().len() == TUPLES));
        if complete {
            done_at = Some(sim.now_ms());
            break;
        }
    }
    let frames = sim.stats.frames_sent - frames_before;
    let rounds = done_at.map(|d| (d - start) as f64);
    format!(
        "{{\"nodes\":{n},\"tuples\":{TUPLES},\"converged\":{},\"rounds\":{},\"messages_per_tuple\":{:.1},\"wall_seconds\":{:.2}}}",
        done_at.is_some(),
        rounds.unwrap_or(-1.0),
        frames as f64 / TUPLES as f64,
        wall.elapsed().as_secs_f64()
    )
}

fn broadcast(n: usize, seed: u64) -> String {
    let wall = Instant::now();
    let mut sim = Sim::new(n, seed, Sim::fast_settings());
    sim.conditions.latency_ms = (5, 50);
    let mut rng = Rng::new(seed);
    let mut links = 0;
    for i in 1..n {
        sim.connect(i, rng.below(i as u64) as usize);
        links += 1;
    }
    for _ in 0..n / 2 {
        let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
        if a != b {
            sim.connect(a, b);
            links += 1;
        }
    }
    sim.run_until(1_000);
    let setup_s = wall.elapsed().as_secs_f64();
    let wall = Instant::now();
    let (calls, frames) = (sim.stats.engine_calls, sim.stats.frames_sent);
    let key = "broadcast";
    sim.watch(key);
    let start = sim.now_ms();
    let origin = rng.below(n as u64) as usize;
    sim.publish(origin, key, "v", None);
    let version = sim.version(origin, key).expect("just written");
    let mut held = Vec::new();
    while sim.now_ms() < start + 30_000 {
        let t = sim.now_ms() + 10;
        sim.run_until(t);
        held = sim.first_held(key, version);
        if held.iter().all(Option::is_some) {
            break;
        }
    }
    let wall_s = wall.elapsed().as_secs_f64();
    let events = sim.stats.engine_calls - calls;
    let mut times: Vec<u64> = held.iter().flatten().map(|t| t - start).collect();
    times.sort_unstable();
    let pct = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len().max(1));
        times.get(i - 1).copied().unwrap_or(0)
    };
    format!(
        "{{\"nodes\":{n},\"links\":{links},\"latency_ms\":[5,50],\"converged\":{},\
         \"virtual_ms_p50\":{},\"virtual_ms_p99\":{},\"virtual_ms_all\":{},\
         \"frames\":{},\"events\":{events},\"setup_wall_seconds\":{setup_s:.2},\
         \"wall_seconds\":{wall_s:.3},\"events_per_second\":{:.0}}}",
        times.len() == n,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        sim.stats.frames_sent - frames,
        events as f64 / wall_s.max(1e-9),
    )
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs a quick one.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("SIM_NODES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) if quick => vec![200],
        Err(_) => vec![1_000, 10_000, 100_000],
    };
    // The quick run (tests) prints only: it must not replace the figures
    // of a real run that bench/report.py reads.
    let mut out = if quick {
        None
    } else {
        let _ = std::fs::create_dir_all("target/bench");
        std::fs::File::create("target/bench/sim.jsonl").ok()
    };
    for n in sizes {
        let line = run(n, 42);
        println!("{line}");
        if let Some(f) = out.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
    let sizes: Vec<usize> = match std::env::var("SIM_BROADCAST_NODES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) if quick => vec![300],
        Err(_) => vec![10_000],
    };
    let mut out = if quick {
        None
    } else {
        std::fs::File::create("target/bench/sim_broadcast.jsonl").ok()
    };
    for n in sizes {
        let line = broadcast(n, 42);
        println!("{line}");
        if let Some(f) = out.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
}
