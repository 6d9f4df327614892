//! Randomised scenarios on the deterministic simulator: concurrent writes,
//! deletes, TTLs, partitions, restarts, crashes, pauses, nodes joining,
//! loss and reordering, across 40+ nodes. Every run prints its seed;
//! `ZGOSSIP_SIM_SEED=n cargo test --test sim` replays one,
//! `ZGOSSIP_SIM_RUNS=n` changes how many seeds run.

use zgossip::engine::Event;
use zgossip::sim::{Conditions, Rng, Sim};

fn seeds(default_runs: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("ZGOSSIP_SIM_SEED") {
        return vec![s.parse().expect("ZGOSSIP_SIM_SEED is a number")];
    }
    let runs = std::env::var("ZGOSSIP_SIM_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default_runs);
    (0..runs).map(|i| 0x5eed_0000 + i * 7919).collect()
}

/// A random connected topology: a random tree plus extra links.
fn topology(sim: &mut Sim, rng: &mut Rng, extra: usize) {
    let n = sim.len();
    for i in 1..n {
        let j = rng.below(i as u64) as usize;
        sim.connect(i, j);
    }
    for _ in 0..extra {
        let a = rng.below(n as u64) as usize;
        let b = rng.below(n as u64) as usize;
        if a != b {
            sim.connect(a, b);
        }
    }
}

fn scenario(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let n = 50 + rng.below(30) as usize;
    let mut sim = Sim::new(n, seed, Sim::fast_settings());
    topology(&mut sim, &mut rng, n / 5);
    sim.conditions = Conditions {
        latency_ms: (1, 2 + rng.below(30)),
        loss: rng.below(6) as f64 / 100.0,
        ..Conditions::default()
    };
    for i in 0..n {
        sim.set_skew(i, rng.below(100) as i64 - 50);
    }
    let mut log = Vec::new();
    for step in 0..150u64 {
        let node = rng.below(n as u64) as usize;
        let key = format!("k{}", rng.below(40));
        match rng.below(100) {
            0..=49 => sim.publish(node, &key, &format!("n{node}-s{step}"), None),
            50..=61 => {
                let ttl = 500 + rng.below(4500);
                sim.publish(node, &key, &format!("ttl-n{node}-s{step}"), Some(ttl));
            }
            62..=71 => sim.unpublish(node, &key),
            72..=74 => {
                log.push(format!("t={} restart n{node}", sim.now_ms()));
                sim.restart(node);
            }
            75..=77 => {
                let size = 1 + rng.below(n as u64 / 3) as usize;
                let side: Vec<usize> = (0..size).map(|_| rng.below(n as u64) as usize).collect();
                log.push(format!("t={} partition {side:?}", sim.now_ms()));
                sim.partition(&side);
            }
            78..=80 => {
                log.push(format!("t={} heal", sim.now_ms()));
                sim.heal();
            }
            _ => {}
        }
        // Concurrent writes: several nodes write one key at one instant.
        if step % 25 == 0 {
            for w in 0..4 {
                let at = rng.below(n as u64) as usize;
                sim.publish(at, "contended", &format!("writer-{w}-n{at}-s{step}"), None);
            }
        }
        let t = sim.now_ms() + 100;
        sim.run_until(t);
    }
    sim.heal();
    sim.conditions.loss = 0.0;
    // Let every TTL run out, then let the network settle.
    let t = sim.now_ms() + 6_000;
    sim.run_until(t);
    if !sim.settle(7_000, 120_000) {
        return Err(format!("seed {seed}: no quiescence after 120 s virtual"));
    }
    sim.check_converged().map_err(|e| {
        format!(
            "seed {seed} ({n} nodes, {:?}): {e}\nevents: {log:?}",
            sim.conditions
        )
    })?;
    // Nothing live is left of TTL'd tuples.
    let state = sim.state(0).unwrap();
    for (k, (_, deleted, v)) in &state {
        if v.starts_with("ttl-") && !deleted {
            return Err(format!("seed {seed}: {k} = {v} outlived its ttl"));
        }
    }
    eprintln!(
        "seed {seed}: {n} nodes converged on {} entries; {:?}",
        state.len(),
        sim.stats
    );
    Ok(())
}

#[test]
fn randomized_scenarios_converge() {
    for seed in seeds(20) {
        eprintln!("sim seed {seed}");
        if let Err(e) = scenario(seed) {
            panic!("{e}\nreplay with ZGOSSIP_SIM_SEED={seed}");
        }
    }
}

/// The failure tools at random: nodes crash (and are revived later, with
/// empty stores), pause for up to three seconds (longer than the session
/// timeout), join over time and are cut off, while writes go on; once
/// every node runs again and the network heals, all converge.
fn failures_scenario(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let n = 40 + rng.below(30) as usize;
    let mut sim = Sim::new(n, seed, Sim::fast_settings());
    topology(&mut sim, &mut rng, n / 4);
    sim.conditions = Conditions {
        latency_ms: (1, 2 + rng.below(30)),
        loss: rng.below(4) as f64 / 100.0,
        ..Conditions::default()
    };
    let mut log = Vec::new();
    for step in 0..150u64 {
        let node = rng.below(sim.len() as u64) as usize;
        let key = format!("k{}", rng.below(30));
        match rng.below(100) {
            0..=54 => sim.publish(node, &key, &format!("n{node}-s{step}"), None),
            55..=61 => sim.unpublish(node, &key),
            62..=66 => {
                log.push(format!("t={} crash n{node}", sim.now_ms()));
                sim.crash(node);
            }
            67..=71 => {
                log.push(format!("t={} revive n{node}", sim.now_ms()));
                sim.revive(node);
            }
            72..=76 => {
                let ms = rng.below(3_000);
                log.push(format!("t={} pause n{node} {ms} ms", sim.now_ms()));
                sim.pause(node, ms);
            }
            77..=80 => {
                let new = sim.add_node();
                let other = rng.below(new as u64) as usize;
                log.push(format!("t={} add n{new} -> n{other}", sim.now_ms()));
                sim.connect(new, other);
                sim.connect(other, new);
            }
            81..=82 => {
                let size = 1 + rng.below(sim.len() as u64 / 3) as usize;
                let side: Vec<usize> = (0..size)
                    .map(|_| rng.below(sim.len() as u64) as usize)
                    .collect();
                log.push(format!("t={} partition {side:?}", sim.now_ms()));
                sim.partition(&side);
            }
            83..=85 => {
                log.push(format!("t={} heal", sim.now_ms()));
                sim.heal();
            }
            _ => {}
        }
        let t = sim.now_ms() + 100;
        sim.run_until(t);
    }
    sim.heal();
    sim.conditions.loss = 0.0;
    for i in 0..sim.len() {
        sim.revive(i);
        sim.resume(i);
    }
    if !sim.settle(7_000, 120_000) {
        return Err(format!("seed {seed}: no quiescence after 120 s virtual"));
    }
    sim.check_converged().map_err(|e| {
        format!(
            "seed {seed} ({} nodes, {:?}): {e}\nevents: {log:?}",
            sim.len(),
            sim.conditions
        )
    })?;
    eprintln!(
        "seed {seed}: {} nodes converged on {} entries; {:?}",
        sim.len(),
        sim.state(0).map_or(0, |s| s.len()),
        sim.stats
    );
    Ok(())
}

#[test]
fn randomized_failures_converge() {
    for seed in seeds(8) {
        eprintln!("sim seed {seed}");
        if let Err(e) = failures_scenario(seed) {
            panic!("{e}\nreplay with ZGOSSIP_SIM_SEED={seed}");
        }
    }
}

#[test]
fn concurrent_writes_settle_on_one_value_without_flapping() {
    for seed in seeds(3) {
        let mut rng = Rng::new(seed);
        let n = 60;
        let mut sim = Sim::new(n, seed, Sim::fast_settings());
        topology(&mut sim, &mut rng, 12);
        sim.conditions.latency_ms = (1, 20);
        sim.run_until(500);
        // Ten nodes write the same key at the same instant.
        let writers: Vec<usize> = (0..10).map(|_| rng.below(n as u64) as usize).collect();
        for &w in &writers {
            sim.publish(w, "config/leader", &format!("n{w}"), None);
        }
        assert!(sim.settle(3_000, 60_000), "seed {seed}");
        sim.check_converged()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // Each node changed its value at most once per writer: no flapping.
        for i in 0..n {
            let e = sim.engine_mut(i).unwrap();
            let delivered = std::iter::from_fn(|| e.poll_event())
                .filter(|ev| matches!(ev, Event::Deliver { .. }))
                .count();
            assert!(
                delivered <= writers.len(),
                "seed {seed}: n{i} delivered {delivered} times"
            );
        }
    }
}

#[test]
fn ttl_expires_everywhere_at_about_the_same_time() {
    let seed = seeds(1)[0];
    let mut rng = Rng::new(seed);
    let n = 50;
    let mut sim = Sim::new(n, seed, Sim::fast_settings());
    topology(&mut sim, &mut rng, 10);
    for i in 0..n {
        sim.set_skew(i, rng.below(40) as i64 - 20); // +-20 ms
    }
    sim.run_until(500);
    sim.publish(7, "presence/n7", "alive", Some(3_000));
    let published = sim.now_ms();
    sim.run_until(published + 2_900);
    for i in 0..n {
        let e = sim.engine(i).unwrap();
        assert_eq!(
            e.store().value("presence/n7"),
            Some("alive"),
            "n{i} at 2.9 s"
        );
    }
    sim.run_until(published + 3_100);
    for i in 0..n {
        let e = sim.engine(i).unwrap();
        assert_eq!(e.store().value("presence/n7"), None, "n{i} at 3.1 s");
    }
    assert!(sim.settle(3_000, 30_000));
    sim.check_converged().unwrap();
}

#[test]
fn deleted_tuple_does_not_come_back_from_a_node_that_missed_the_delete() {
    let seed = seeds(1)[0];
    let mut rng = Rng::new(seed);
    let n = 50;
    let mut sim = Sim::new(n, seed, Sim::fast_settings());
    topology(&mut sim, &mut rng, 10);
    sim.publish(3, "service/old", "10.0.0.1", None);
    assert!(sim.settle(2_000, 30_000));
    // Node 9 is cut off; the key is deleted elsewhere.
    sim.partition(&[9]);
    let t = sim.now_ms() + 4_000;
    sim.run_until(t);
    sim.unpublish(20, "service/old");
    let t = sim.now_ms() + 2_000;
    sim.run_until(t);
    assert_eq!(
        sim.engine(9).unwrap().store().value("service/old"),
        Some("10.0.0.1")
    );
    sim.heal();
    assert!(sim.settle(5_000, 60_000));
    sim.check_converged().unwrap();
    for i in 0..n {
        assert_eq!(
            sim.engine(i).unwrap().store().value("service/old"),
            None,
            "n{i}"
        );
    }
}

#[test]
fn rejoin_moves_only_the_missing_tuples() {
    let seed = seeds(1)[0];
    let mut sim = Sim::new(2, seed, Sim::fast_settings());
    sim.connect(1, 0);
    for i in 0..20_000 {
        sim.publish(0, &format!("key/{i}"), "v", None);
    }
    assert!(sim.settle(3_000, 120_000));
    sim.check_converged().unwrap();
    sim.partition(&[1]);
    let t = sim.now_ms() + 4_000;
    sim.run_until(t); // the link times out
    for i in 0..10 {
        sim.publish(0, &format!("key/{i}"), "updated", None);
    }
    let before = sim.engine(0).unwrap().stats().sync_tuples_out
        + sim.engine(1).unwrap().stats().sync_tuples_out;
    let frames_before = sim.stats.frames_sent;
    sim.heal();
    assert!(sim.settle(3_000, 60_000));
    sim.check_converged().unwrap();
    let moved = sim.engine(0).unwrap().stats().sync_tuples_out
        + sim.engine(1).unwrap().stats().sync_tuples_out
        - before;
    let frames = sim.stats.frames_sent - frames_before;
    eprintln!("rejoin after 10 missed updates of 20000: {moved} tuples, {frames} frames");
    assert!((10..=30).contains(&moved), "moved {moved} tuples");
    assert!(frames < 400, "{frames} frames");
}

/// The churn of issue 22 on the simulated network: twenty nodes around a
/// hub, one of them recreated (a new node id, an empty store) every
/// second, each publishing its presence with a 2 s time to live every
/// second. What every node holds must level off: tombstones of expired
/// presence go after the short grace, the ids of gone nodes with them.
#[test]
fn nodes_recreated_every_second_with_short_ttls_keep_stores_bounded() {
    let seed = seeds(1)[0];
    let n = 21;
    let mut sim = Sim::new(n, seed, Sim::fast_settings());
    for i in 1..n {
        sim.connect(i, 0);
    }
    let mut peak = (0, 0);
    for second in 0..600u64 {
        sim.restart(1 + (second % 20) as usize);
        for i in 1..n {
            let id = sim.engine(i).unwrap().id();
            sim.publish(i, &format!("presence/{id:x}"), "here", Some(2_000));
        }
        let t = sim.now_ms() + 1_000;
        sim.run_until(t);
        if second >= 120 {
            for i in 0..n {
                let store = sim.engine(i).unwrap().store();
                peak = (
                    peak.0.max(store.entries()),
                    peak.1.max(store.origin_count()),
                );
            }
        }
    }
    // 20 live presence records, and the one a recreated node left each
    // second, kept for its 2 s, the 60 s grace and a collection interval
    // (6 s) after it expired; before, such tombstones stayed for the
    // full grace (an hour here) and grew with time.
    let bound = 20 + (2 + 60 + 6) + 12;
    eprintln!(
        "peak over every node: {} entries, {} node ids",
        peak.0, peak.1
    );
    assert!(peak.0 <= bound, "{} entries (bound {bound})", peak.0);
    assert!(peak.1 <= bound, "{} node ids (bound {bound})", peak.1);
}
