use zgossip::engine::Settings;
use zgossip::sim::Sim;
use zgossip::wire::membership::MemberState;
fn overlay(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(n, seed, Settings::default());
    sim.conditions.latency_ms = (10, 50);
    sim.conditions.in_order = true;
    for i in 1..n {
        let contact = sim.rng.below(i as u64) as usize;
        sim.join(i, contact);
        if i % 10 == 0 {
            let t = sim.now_ms() + 100;
            sim.run_until(t);
        }
    }
    let t = sim.now_ms() + 30_000;
    sim.run_until(t);
    sim
}
#[test]
fn fp() {
    let n = 1000;
    let mut sim = overlay(n, 26);
    sim.conditions.loss = 0.05;
    let everyone: Vec<usize> = (0..n).collect();
    let pausers = sim.rng.sample(&everyone, n / 10);
    let mut paused_at: Vec<Vec<u64>> = vec![vec![]; n];
    let mut reported = std::collections::BTreeSet::new();
    for _sec in 0..3600u64 {
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
            paused_at[node].push(sim.now_ms());
        }
        sim.run_until(start + 1_000);
        let e = sim.engine(0).unwrap();
        for m in e.members() {
            if m.state == MemberState::Failed && reported.insert((m.id, m.incarnation)) {
                let idx = (m.id >> 20) as usize;
                let x = sim.engine(idx).unwrap();
                eprintln!(
                    "FAIL t={} node {idx} inc {} by {:x}; pauses {:?}; active {}; stats {:?}",
                    sim.now_ms(),
                    m.incarnation,
                    m.by,
                    paused_at[idx].iter().rev().take(4).collect::<Vec<_>>(),
                    x.overlay_stats().active,
                    x.membership_stats()
                );
            }
        }
    }
}
