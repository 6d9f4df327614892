//! The simulator at scale: random sparse topologies of 1,000 to 100,000
//! nodes, a few tuples published at random nodes; reports how long (in
//! virtual milliseconds, one per hop) and how many messages it takes until
//! every node holds every tuple. One JSON line per N, also written to
//! target/bench/sim.jsonl for bench/report.py.
//!
//!   cargo bench --bench sim_scale            # N = 1k, 10k, 100k
//!   SIM_NODES=1000,5000 cargo bench --bench sim_scale

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
}
