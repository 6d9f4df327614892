//! Membership in the simulator: real engines on virtual links with
//! latency, loss, crashes, pauses and restarts (seeds printed, replayable).
//! Timing targets are the benchmark's (`cargo bench --bench
//! membership_sim`); these tests assert behaviour, with bounds loose
//! enough to hold for any seed.

use zgossip::engine::Settings;
use zgossip::sim::Sim;
use zgossip::wire::membership::MemberState;

/// `n` nodes on links of 10-50 ms, each joining through a random earlier
/// one, ten at a time; then time to settle.
fn overlay(n: usize, seed: u64) -> Sim {
    println!("seed {seed}");
    let mut sim = Sim::new(n, seed, Settings::default());
    sim.conditions.latency_ms = (10, 50);
    sim.conditions.in_order = true;
    sim.join_all(20_000);
    sim
}

fn id_of(sim: &Sim, i: usize) -> u64 {
    sim.engine(i).expect("up").id()
}

/// The state node `at` lists for member `id` (None: not listed).
fn state(sim: &Sim, at: usize, id: u64) -> Option<MemberState> {
    sim.engine(at)?
        .members()
        .into_iter()
        .find(|r| r.id == id)
        .map(|r| r.state)
}

fn live(sim: &Sim) -> Vec<usize> {
    (0..sim.len()).filter(|&i| !sim.is_down(i)).collect()
}

/// Runs until every live node but `except` lists `id` as `want`, in steps
/// of 50 ms, for at most `limit_ms`; returns the time it took.
fn until_everywhere(
    sim: &mut Sim,
    id: u64,
    want: MemberState,
    except: usize,
    limit_ms: u64,
) -> u64 {
    let start = sim.now_ms();
    loop {
        let missing: Vec<usize> = live(sim)
            .into_iter()
            .filter(|&i| i != except && state(sim, i, id) != Some(want))
            .collect();
        if missing.is_empty() {
            return sim.now_ms() - start;
        }
        assert!(
            sim.now_ms() - start < limit_ms,
            "after {limit_ms} ms, {} nodes do not list {id:x} as {want}: e.g. node {} says {:?}",
            missing.len(),
            missing[0],
            state(sim, missing[0], id)
        );
        let t = sim.now_ms() + 50;
        sim.run_until(t);
    }
}

#[test]
fn every_node_lists_every_other_as_alive() {
    let sim = overlay(150, 11);
    let n = sim.len();
    for i in 0..n {
        let e = sim.engine(i).unwrap();
        let members = e.members();
        assert_eq!(members.len(), n, "node {i} lists {}", members.len());
        assert_eq!(members[0].id, e.id(), "itself first");
        assert!(
            members.iter().all(|m| m.state == MemberState::Alive),
            "node {i}: {:?}",
            members.iter().find(|m| m.state != MemberState::Alive)
        );
        assert_eq!(e.member_counts(), (n - 1, 0, 0));
    }
    let names: std::collections::BTreeSet<String> = sim
        .engine(0)
        .unwrap()
        .members()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names.len(), n, "every name once");
}

#[test]
fn a_crash_is_failed_everywhere_a_leave_is_left_and_a_restart_is_alive_with_no_ghost() {
    let mut sim = overlay(150, 12);
    // kill -9: links reset.
    let victim = 37;
    let old = id_of(&sim, victim);
    sim.crash(victim);
    let took = until_everywhere(&mut sim, old, MemberState::Failed, victim, 20_000);
    println!("crash: failed everywhere after {took} ms");
    // A graceful leave: told first, then the process exits.
    let leaver = 80;
    let gone = id_of(&sim, leaver);
    sim.leave(leaver);
    // The process exits once what it queued is sent (it lingers for it).
    let t = sim.now_ms() + 100;
    sim.run_until(t);
    sim.crash(leaver);
    let took = until_everywhere(&mut sim, gone, MemberState::Left, leaver, 5_000);
    println!("leave: left everywhere after {took} ms");
    let t = sim.now_ms() + 20_000;
    sim.run_until(t);
    for i in live(&sim) {
        assert_eq!(state(&sim, i, gone), Some(MemberState::Left), "node {i}");
    }
    // The crashed one starts again: a new id under its name.
    sim.revive(victim);
    let new = id_of(&sim, victim);
    assert_ne!(new, old);
    let took = until_everywhere(&mut sim, new, MemberState::Alive, victim, 20_000);
    println!("restart: alive everywhere after {took} ms");
    for i in live(&sim) {
        let e = sim.engine(i).unwrap();
        assert_eq!(
            state(&sim, i, old),
            None,
            "node {i} lists the former self: {:?} / {:?}",
            e.members().into_iter().find(|m| m.id == old),
            e.members().into_iter().find(|m| m.id == new)
        );
    }
    let replaced: u64 = live(&sim)
        .iter()
        .map(|&i| sim.engine(i).unwrap().membership_stats().replaced)
        .sum();
    assert!(replaced >= live(&sim).len() as u64 - 1);
}

#[test]
fn loss_and_pauses_make_no_member_failed() {
    let seed = 13;
    let mut sim = overlay(100, seed);
    sim.conditions.loss = 0.05;
    let n = sim.len();
    // Two virtual minutes. A node in ten pauses for 2 s at random
    // moments, once every 10 s on average.
    let everyone: Vec<usize> = (0..n).collect();
    let pausers = sim.rng.sample(&everyone, n / 10);
    for _ in 0..120 {
        let start = sim.now_ms();
        let mut pausing = Vec::new();
        for &p in &pausers {
            if !sim.is_paused(p) && sim.rng.chance(0.1) {
                pausing.push(p);
            }
        }
        let mut pauses: Vec<(u64, usize)> = pausing
            .into_iter()
            .map(|p| (sim.rng.below(1_000), p))
            .collect();
        pauses.sort();
        for (at, node) in pauses {
            sim.run_until(start + at);
            sim.pause(node, 2_000);
        }
        sim.run_until(start + 1_000);
    }
    sim.conditions.loss = 0.0;
    let t = sim.now_ms() + 10_000;
    sim.run_until(t);
    let mut suspicions = 0;
    let mut refutations = 0;
    let total: Vec<_> = (0..n)
        .map(|i| sim.engine(i).unwrap().membership_stats())
        .collect();
    eprintln!(
        "failures {} suspicions {} refutations {} stalls {} withheld {}",
        total.iter().map(|s| s.failures).sum::<u64>(),
        total.iter().map(|s| s.suspicions).sum::<u64>(),
        total.iter().map(|s| s.refutations).sum::<u64>(),
        total.iter().map(|s| s.stalls).sum::<u64>(),
        total.iter().map(|s| s.suspicions_withheld).sum::<u64>()
    );
    for i in 0..n {
        let e = sim.engine(i).unwrap();
        let s = e.membership_stats();
        suspicions += s.suspicions;
        refutations += s.refutations;
        assert_eq!(s.failures, 0, "node {i} declared a failure");
        let (alive, suspect, gone) = e.member_counts();
        assert_eq!(
            (alive, suspect, gone),
            (n - 1, 0, 0),
            "node {i}: {:?}",
            e.members()
                .into_iter()
                .find(|m| m.state != MemberState::Alive)
        );
    }
    println!("{suspicions} suspicions heard, {refutations} refutations, no failure");
}

/// Whether every live node but `except` holds `key` live (`true`) or not
/// live (`false`).
fn everywhere_live(sim: &Sim, key: &str, live_want: bool, except: &[usize]) -> Result<(), usize> {
    for i in live(sim) {
        if except.contains(&i) {
            continue;
        }
        let is_live = sim
            .engine(i)
            .and_then(|e| e.store().get(key))
            .is_some_and(|t| t.is_live());
        if is_live != live_want {
            return Err(i);
        }
    }
    Ok(())
}

fn wait_for(
    sim: &mut Sim,
    what: &str,
    limit_ms: u64,
    mut check: impl FnMut(&Sim) -> Result<(), usize>,
) -> u64 {
    let start = sim.now_ms();
    loop {
        match check(sim) {
            Ok(()) => return sim.now_ms() - start,
            Err(node) => assert!(
                sim.now_ms() - start < limit_ms,
                "after {limit_ms} ms: {what} (node {node} is not there yet)"
            ),
        }
        let t = sim.now_ms() + 50;
        sim.run_until(t);
    }
}

#[test]
fn ephemeral_tuples_die_with_their_writer_and_live_again_if_it_was_only_cut_off() {
    let mut sim = overlay(120, 14);
    let (crasher, leaver, cut) = (10, 20, 30);
    for w in [crasher, leaver, cut] {
        sim.publish_ephemeral(w, &format!("svc/{w}"), "here");
        sim.publish(w, &format!("plain/{w}"), "stays", None);
    }
    wait_for(&mut sim, "every ephemeral tuple everywhere", 10_000, |s| {
        [crasher, leaver, cut]
            .iter()
            .try_for_each(|w| everywhere_live(s, &format!("svc/{w}"), true, &[]))
    });
    // kill -9: deleted everywhere once the writer is failed.
    sim.crash(crasher);
    let took = wait_for(&mut sim, "svc/10 deleted", 20_000, |s| {
        everywhere_live(s, "svc/10", false, &[])
    });
    println!("crash: its ephemeral tuple deleted everywhere after {took} ms");
    everywhere_live(&sim, "plain/10", true, &[]).expect("a plain tuple stays");
    // A graceful leave: deleted at once.
    sim.leave(leaver);
    let t = sim.now_ms() + 100;
    sim.run_until(t);
    sim.crash(leaver);
    let took = wait_for(&mut sim, "svc/20 deleted", 5_000, |s| {
        everywhere_live(s, "svc/20", false, &[])
    });
    println!("leave: its ephemeral tuple deleted everywhere after {took} ms");
    // Cut off long enough to be declared failed: the others delete its
    // tuple; once it is back it refutes and writes the tuple again.
    let others: Vec<usize> = (0..sim.len()).filter(|&i| i != cut).collect();
    sim.partition(&others);
    wait_for(&mut sim, "svc/30 deleted on the others", 30_000, |s| {
        everywhere_live(s, "svc/30", false, &[cut])
    });
    sim.heal();
    let took = wait_for(&mut sim, "svc/30 back everywhere", 60_000, |s| {
        everywhere_live(s, "svc/30", true, &[])
    });
    println!("healed: its ephemeral tuple back everywhere after {took} ms");
    let rewritten = sim.engine(cut).unwrap().stats().ephemeral_rewritten;
    assert!(rewritten >= 1, "{rewritten}");
    let id = sim.engine(cut).unwrap().id();
    until_everywhere(&mut sim, id, MemberState::Alive, usize::MAX, 30_000);
}

/// A node that crashes together with every node it linked to (a host, a
/// rack) leaves no observer to accuse it: the others find it when a dial
/// to it (from their passive views, refilling the links they lost) finds
/// no one, and it is failed everywhere; its neighbours, observed by the
/// survivors, are failed as usual.
#[test]
fn a_node_that_crashes_with_all_its_observers_is_still_failed_everywhere() {
    let mut sim = overlay(60, 17);
    let v = 7;
    let v_id = id_of(&sim, v);
    let neighbours: Vec<u64> = sim
        .engine(v)
        .unwrap()
        .active_peers()
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    assert!(!neighbours.is_empty());
    let group: Vec<usize> = (0..sim.len())
        .filter(|&i| i == v || neighbours.contains(&id_of(&sim, i)))
        .collect();
    for &i in &group {
        sim.crash(i);
    }
    let took = until_everywhere(&mut sim, v_id, MemberState::Failed, v, 120_000);
    println!(
        "{} crashed together; the one no survivor linked to failed everywhere after {took} ms",
        group.len()
    );
    let unreachable: u64 = live(&sim)
        .into_iter()
        .map(|i| sim.engine(i).unwrap().membership_stats().unreachable)
        .sum();
    assert!(unreachable > 0, "found by a dial");
}
