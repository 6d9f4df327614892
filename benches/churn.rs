//! Churn for a simulated hour: a hub and twenty nodes, one of them
//! recreated every second (a new node id), each publishing a presence
//! record with a 2 s time to live, as issue 22's scenario (where a
//! process grew by about 230 MB an hour). Reports, every ten simulated
//! minutes, the largest store over the nodes (entries, live or tombstone)
//! and its table of node ids, with the default graces and, for
//! comparison, with expired tuples kept as long as deletes (the old rule).
//! One JSON line per checkpoint.
//!
//!   cargo bench --bench churn                 # 3600 simulated seconds
//!   CHURN_SECONDS=600 cargo bench --bench churn

use std::time::Instant;

use zgossip::engine::Settings;
use zgossip::sim::Sim;

fn run(label: &str, settings: Settings, seconds: u64) {
    let wall = Instant::now();
    let n = 21;
    let mut sim = Sim::new(n, 0x5eed_c4c4, settings);
    for i in 1..n {
        sim.connect(i, 0);
    }
    for second in 1..=seconds {
        sim.restart(1 + (second % 20) as usize);
        for i in 1..n {
            let id = sim.engine(i).unwrap().id();
            sim.publish(i, &format!("presence/{id:x}"), "here", Some(2_000));
        }
        let t = sim.now_ms() + 1_000;
        sim.run_until(t);
        if second % 600 == 0 || second == seconds {
            let (mut entries, mut ids) = (0, 0);
            for i in 0..n {
                let store = sim.engine(i).unwrap().store();
                entries = entries.max(store.entries());
                ids = ids.max(store.origin_count());
            }
            println!(
                "{{\"rule\":\"{label}\",\"simulated_s\":{second},\"max_entries\":{entries},\
                 \"max_node_ids\":{ids},\"wall_s\":{:.1}}}",
                wall.elapsed().as_secs_f64()
            );
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs a quick one.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let seconds = std::env::var("CHURN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 120 } else { 3_600 });
    let now = Settings {
        tombstone_grace_ms: Settings::default().tombstone_grace_ms,
        expired_grace_ms: Settings::default().expired_grace_ms,
        ..Sim::fast_settings()
    };
    run("expired-grace 60 s", now.clone(), seconds);
    let old = Settings {
        expired_grace_ms: now.tombstone_grace_ms,
        ..now
    };
    run("old: expired kept 24 h", old, seconds);
}
