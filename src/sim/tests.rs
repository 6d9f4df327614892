//! The simulator's own tests: partitions as groups, its failure tools
//! (crash, revive, pause, nodes added over time, latency per node and per
//! pair) and its measurement hooks. Every test has a fixed seed, named in
//! its assertions.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;

/// `n` nodes in a line, each a client of the previous one.
fn line(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(n, seed, Sim::fast_settings());
    for i in 1..n {
        sim.connect(i, i - 1);
    }
    sim
}

fn value(sim: &Sim, i: usize, key: &str) -> Option<String> {
    sim.engine(i)
        .and_then(|e| e.store().value(key))
        .map(str::to_string)
}

#[test]
fn partitions_add_up_as_groups_and_heal() {
    let seed = 11;
    let mut sim = Sim::new(6, seed, Sim::fast_settings());
    sim.partition(&[0, 1]);
    sim.partition(&[1, 2]);
    // Sides: 0 (in, out), 1 (in, in), 2 (out, in), 3..5 (out, out).
    assert!(!sim.reachable(0, 1), "seed {seed}");
    assert!(!sim.reachable(1, 2), "seed {seed}");
    assert!(!sim.reachable(0, 2), "seed {seed}");
    assert!(!sim.reachable(0, 3), "seed {seed}");
    assert!(sim.reachable(3, 5), "seed {seed}");
    assert!(sim.reachable(4, 4), "seed {seed}");
    // A node added meanwhile is with those no partition named.
    let new = sim.add_node();
    assert_eq!(new, 6);
    assert!(sim.reachable(new, 3), "seed {seed}");
    assert!(!sim.reachable(new, 1), "seed {seed}");
    sim.heal();
    for a in 0..sim.len() {
        for b in 0..sim.len() {
            assert!(sim.reachable(a, b), "seed {seed}: {a} {b}");
        }
    }
}

#[test]
fn writes_do_not_cross_a_partition_until_it_heals() {
    let seed = 12;
    let mut sim = line(6, seed);
    sim.run_until(500);
    sim.partition(&[0, 1, 2]);
    let failed = sim.stats.dials_failed;
    let t = sim.now_ms() + 4_000;
    sim.run_until(t); // the link 3 -> 2 times out; redials fail
    assert!(sim.stats.dials_failed > failed, "seed {seed}");
    sim.publish(0, "left", "l", None);
    sim.publish(5, "right", "r", None);
    let t = sim.now_ms() + 2_000;
    sim.run_until(t);
    for i in 0..3 {
        assert_eq!(
            value(&sim, i, "left").as_deref(),
            Some("l"),
            "seed {seed} n{i}"
        );
        assert_eq!(value(&sim, i, "right"), None, "seed {seed} n{i}");
    }
    for i in 3..6 {
        assert_eq!(value(&sim, i, "left"), None, "seed {seed} n{i}");
        assert_eq!(
            value(&sim, i, "right").as_deref(),
            Some("r"),
            "seed {seed} n{i}"
        );
    }
    sim.heal();
    assert!(sim.settle(2_000, 30_000), "seed {seed}");
    sim.check_converged()
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(value(&sim, 5, "left").as_deref(), Some("l"), "seed {seed}");
}

#[test]
fn a_crash_resets_links_after_the_latency_and_revive_starts_empty() {
    let seed = 13;
    let mut sim = Sim::new(3, seed, Sim::fast_settings());
    sim.conditions.latency_ms = (50, 50);
    sim.connect(1, 0);
    sim.connect(2, 0);
    sim.publish(0, "before", "x", None);
    sim.run_until(1_000);
    assert_eq!(
        value(&sim, 2, "before").as_deref(),
        Some("x"),
        "seed {seed}"
    );
    let t = sim.now_ms();
    sim.crash(0);
    assert!(sim.is_down(0) && sim.engine(0).is_none(), "seed {seed}");
    assert_eq!(sim.stats.crashes, 1);
    // The peers learn it one latency later, not at once (restart) and
    // not only by their timeouts.
    sim.run_until(t + 49);
    assert_eq!(sim.engine(1).unwrap().connection_count(), 1, "seed {seed}");
    sim.run_until(t + 50);
    assert_eq!(sim.engine(1).unwrap().connection_count(), 0, "seed {seed}");
    assert_eq!(sim.engine(2).unwrap().connection_count(), 0, "seed {seed}");
    // Dials to it fail meanwhile; a write at node 1 reaches nobody.
    let failed = sim.stats.dials_failed;
    sim.publish(1, "during", "y", None);
    sim.run_until(t + 2_000);
    assert!(sim.stats.dials_failed > failed, "seed {seed}");
    assert_eq!(value(&sim, 2, "during"), None, "seed {seed}");
    // Revived: an empty store, then everything again.
    sim.revive(0);
    assert_eq!(sim.stats.revives, 1);
    assert!(sim.engine(0).unwrap().store().is_empty(), "seed {seed}");
    assert!(sim.settle(2_000, 30_000), "seed {seed}");
    sim.check_converged()
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(
        value(&sim, 2, "during").as_deref(),
        Some("y"),
        "seed {seed}"
    );
    assert_eq!(
        value(&sim, 0, "before").as_deref(),
        Some("x"),
        "seed {seed}"
    );
    // Reviving a running node does nothing.
    sim.revive(0);
    assert_eq!(sim.stats.revives, 1);
}

#[test]
fn a_paused_node_gets_nothing_until_the_pause_ends() {
    let seed = 14;
    let mut sim = line(2, seed);
    sim.run_until(1_000);
    sim.watch("k");
    let t = sim.now_ms();
    let before = sim.engine(1).unwrap().stats();
    sim.pause(1, 500);
    assert!(sim.is_paused(1));
    sim.publish(0, "k", "v", None);
    let version = sim.version(0, "k").unwrap();
    sim.run_until(t + 499);
    // No frame handled, no timer run: its counters did not move.
    assert_eq!(sim.engine(1).unwrap().stats(), before, "seed {seed}");
    assert_eq!(value(&sim, 1, "k"), None, "seed {seed}");
    sim.run_until(t + 500);
    assert!(!sim.is_paused(1));
    assert_eq!(value(&sim, 1, "k").as_deref(), Some("v"), "seed {seed}");
    let held = sim.first_held("k", version);
    assert_eq!(held, vec![Some(t), Some(t + 500)], "seed {seed}");
    assert_eq!(sim.stats.pauses, 1);
}

#[test]
fn a_long_pause_is_timed_out_by_the_peer_and_the_node_recovers() {
    let seed = 15;
    let mut sim = line(2, seed);
    sim.run_until(1_000);
    let opened = sim.stats.links_opened;
    let t = sim.now_ms();
    sim.pause(1, 5_000);
    sim.publish(0, "k", "v", None);
    // The server closes the silent connection after its link timeout.
    sim.run_until(t + 3_500);
    assert_eq!(sim.engine(0).unwrap().connection_count(), 0, "seed {seed}");
    assert_eq!(sim.engine(1).unwrap().connection_count(), 1, "seed {seed}");
    // Resumed: the node hears of the close, redials and catches up.
    assert!(sim.settle(2_000, 30_000), "seed {seed}");
    assert!(sim.stats.links_opened > opened, "seed {seed}");
    assert_eq!(value(&sim, 1, "k").as_deref(), Some("v"), "seed {seed}");
    sim.check_converged()
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
}

#[test]
fn resume_ends_a_pause_early() {
    let seed = 16;
    let mut sim = line(2, seed);
    sim.run_until(1_000);
    sim.pause(1, 60_000);
    sim.publish(0, "k", "v", None);
    sim.run_until(1_200);
    assert_eq!(value(&sim, 1, "k"), None, "seed {seed}");
    sim.resume(1);
    sim.run_until(1_201);
    assert_eq!(value(&sim, 1, "k").as_deref(), Some("v"), "seed {seed}");
}

#[test]
fn nodes_added_over_time_join_and_converge() {
    let seed = 17;
    let mut sim = line(3, seed);
    sim.publish(0, "k", "v", None);
    assert!(sim.settle(1_000, 10_000), "seed {seed}");
    for round in 0..5 {
        let i = sim.add_node();
        assert_eq!(i, 3 + round);
        sim.connect(i, round % 3);
        sim.publish(i, &format!("from/{i}"), "here", None);
        let t = sim.now_ms() + 300;
        sim.run_until(t);
    }
    assert_eq!(sim.len(), 8);
    assert!(sim.settle(1_000, 20_000), "seed {seed}");
    sim.check_converged()
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(sim.engine(7).unwrap().store().len(), 6, "seed {seed}");
}

#[test]
fn latency_per_pair_and_per_node_apply() {
    let seed = 18;
    let mut sim = line(3, seed);
    sim.set_link_latency(1, 0, Some((100, 100)));
    sim.set_node_latency(2, Some((30, 30)));
    sim.run_until(2_000);
    sim.watch("k");
    let t = sim.now_ms();
    sim.publish(0, "k", "v", None);
    let version = sim.version(0, "k").unwrap();
    sim.run_until(t + 1_000);
    let held = sim.first_held("k", version);
    assert_eq!(
        held,
        vec![Some(t), Some(t + 100), Some(t + 130)],
        "seed {seed}"
    );
    // Removed: back to the conditions (1 ms).
    sim.set_link_latency(0, 1, None);
    sim.set_node_latency(2, None);
    let t = sim.now_ms();
    sim.publish(0, "k", "w", None);
    let version = sim.version(0, "k").unwrap();
    sim.run_until(t + 1_000);
    let held = sim.first_held("k", version);
    assert_eq!(held, vec![Some(t), Some(t + 1), Some(t + 2)], "seed {seed}");
}

#[test]
fn observer_and_counters_agree() {
    let seed = 19;
    let mut sim = line(5, seed);
    sim.conditions.loss = 0.05;
    sim.conditions.latency_ms = (1, 10);
    type Seen = Vec<(FrameKind, usize, usize, usize)>;
    let seen: Rc<RefCell<Seen>> = Rc::default();
    let log = seen.clone();
    sim.set_observer(move |ev: &FrameEvent<'_>| {
        log.borrow_mut()
            .push((ev.kind, ev.from, ev.to, ev.frame.len()));
    });
    for i in 0..5 {
        sim.publish(i, &format!("k{i}"), "v", None);
    }
    assert!(sim.settle(2_000, 30_000), "seed {seed}");
    let seen = seen.borrow();
    let count = |k: FrameKind| seen.iter().filter(|e| e.0 == k).count() as u64;
    let s = sim.stats;
    assert_eq!(count(FrameKind::Sent), s.frames_sent, "seed {seed}");
    assert_eq!(
        count(FrameKind::Delivered),
        s.frames_delivered,
        "seed {seed}"
    );
    assert!(s.frames_lost > 0, "seed {seed}");
    assert!(count(FrameKind::Dropped) >= s.frames_lost, "seed {seed}");
    let sent: u64 = (0..5).map(|i| sim.node_stats(i).frames_sent).sum();
    let received: u64 = (0..5).map(|i| sim.node_stats(i).frames_received).sum();
    let bytes: u64 = (0..5).map(|i| sim.node_stats(i).bytes_sent).sum();
    assert_eq!(sent, s.frames_sent, "seed {seed}");
    assert_eq!(received, s.frames_delivered, "seed {seed}");
    assert_eq!(bytes, s.bytes_sent, "seed {seed}");
    // Deliveries go along the line only.
    for &(kind, from, to, _) in seen.iter() {
        if kind == FrameKind::Delivered {
            assert_eq!(from.abs_diff(to), 1, "seed {seed}: {from} -> {to}");
        }
    }
    assert!(s.engine_calls >= s.frames_delivered + s.timer_calls);
}

/// Everything at once, twice with one seed: the same run.
#[test]
fn failure_tools_replay_exactly_from_a_seed() {
    fn run(seed: u64) -> (SimStats, Vec<Option<StoreState>>, Vec<Sighting>) {
        let mut rng = Rng::new(seed);
        let n = 20;
        let mut sim = Sim::new(n, seed, Sim::fast_settings());
        sim.conditions = Conditions {
            latency_ms: (1, 20),
            loss: 0.02,
            in_order: false,
        };
        for i in 1..n {
            sim.connect(i, rng.below(i as u64) as usize);
        }
        sim.watch("k");
        for step in 0..60u64 {
            let i = rng.below(sim.len() as u64) as usize;
            match rng.below(10) {
                0 => sim.crash(i),
                1 => sim.revive(i),
                2 => sim.pause(i, rng.below(2_000)),
                3 => sim.partition(&[i, (i + 1) % n]),
                4 => sim.heal(),
                5 => {
                    let j = sim.add_node();
                    sim.connect(j, i);
                }
                _ => sim.publish(i, "k", &format!("s{step}"), None),
            }
            let t = sim.now_ms() + 100;
            sim.run_until(t);
        }
        let states = (0..sim.len()).map(|i| sim.state(i)).collect();
        (sim.stats, states, sim.sightings("k").to_vec())
    }
    let seed = 20;
    let a = run(seed);
    let b = run(seed);
    assert_eq!(a.0, b.0, "seed {seed}");
    assert_eq!(a.1, b.1, "seed {seed}");
    assert_eq!(a.2, b.2, "seed {seed}");
    assert!(a.0.crashes > 0 && a.0.pauses > 0, "seed {seed}: {:?}", a.0);
}
