//! Chaos: real `zgossip node` processes in network namespaces on a
//! bridge, with packet loss, latency, a partition made and healed, `kill -9`
//! and restarts, writes and deletes at random hosts. It asserts that after
//! healing every live node holds exactly the live tuples (every write
//! arrived, nothing deleted came back). The harness is
//! tests/support/chaos.rs; docs/chaos.md says how to run it.
//!
//! Membership (issue 25): a node `kill -9`'d is listed failed by every
//! other process, one stopped with SIGTERM left, and the killed one
//! restarted under its name alive again, with no ghost of its former id;
//! the ephemeral tuples of the two stopped nodes are deleted everywhere
//! with their failed and left lines, their plain ones stay, and the
//! restarted one's new ephemeral tuples are held everywhere; no member is
//! ever listed failed that was not killed (see `members_scenario`).
//!
//! CI size: 16 nodes (`CHAOS_NODES` for more, by hand), a seed printed
//! (`CHAOS_SEED` replays its choices). Without root, iproute2 or iptables
//! it skips saying so; under `CI=true` it fails naming what is missing.

#[path = "../../tests/support/chaos.rs"]
mod chaos;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos::{diff, env_usize, skip, Cluster, Mode, Rng};

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");
/// The test that is, when run again under `ZG_CHAOS_PROXY`, a delaying
/// proxy (see [`chaos::run_delay_proxy`]).
const PROXY_TEST: &str = "harness_delay_proxy_role";

/// Not a test: the delaying proxy of the harness, when this binary is run
/// again inside a host's namespace with `ZG_CHAOS_PROXY` set. Without it,
/// it returns at once.
#[test]
fn harness_delay_proxy_role() {
    chaos::run_delay_proxy();
}

/// One write as the scenario made it.
enum Op {
    Put(usize, String, String),
    Del(usize, String),
}

/// The tuples the network must converge to, and the keys deleted (never
/// written again).
#[derive(Clone, Default)]
struct Model {
    live: BTreeMap<String, String>,
    deleted: BTreeSet<String>,
    next_key: usize,
    writes: usize,
}

impl Model {
    /// `count` writes at random hosts of `hosts`: new keys, new values of
    /// live keys, and deletes of live keys, about 60/20/20.
    fn ops(&mut self, rng: &mut Rng, hosts: &[usize], count: usize) -> Vec<Op> {
        let mut ops = Vec::new();
        let mut touched = BTreeSet::new();
        for _ in 0..count {
            let at = hosts[rng.below(hosts.len())];
            self.writes += 1;
            let candidates: Vec<&String> = self
                .live
                .keys()
                .filter(|k| !touched.contains(*k) && !self.deleted.contains(*k))
                .collect();
            let dice = rng.below(10);
            if dice < 6 || candidates.len() < 4 {
                let key = format!("key/{:04}", self.next_key);
                self.next_key += 1;
                let value = format!("value-{}-h{at}", self.writes);
                touched.insert(key.clone());
                self.live.insert(key.clone(), value.clone());
                ops.push(Op::Put(at, key, value));
            } else {
                let key = candidates[rng.below(candidates.len())].clone();
                touched.insert(key.clone());
                if dice < 8 {
                    let value = format!("value-{}-h{at}", self.writes);
                    self.live.insert(key.clone(), value.clone());
                    ops.push(Op::Put(at, key, value));
                } else {
                    self.live.remove(&key);
                    self.deleted.insert(key.clone());
                    ops.push(Op::Del(at, key));
                }
            }
        }
        ops
    }
}

/// Runs `ops` (distinct keys) a few at once; writes of one key in two
/// calls are ordered, so the later wins everywhere (versions are hybrid
/// clocks, and every node here shares one clock).
fn apply(cluster: &Cluster, ops: &[Op], seed: u64) {
    for batch in ops.chunks(4) {
        std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|op| {
                    s.spawn(move || {
                        let (at, k, v) = match op {
                            Op::Put(at, k, v) => (*at, k, Some(v.as_str())),
                            Op::Del(at, k) => (*at, k, None),
                        };
                        match v {
                            Some(v) => cluster.put(at, k, v)?,
                            None => cluster.del(at, k)?,
                        }
                        cluster.wait_written(at, k, v, Duration::from_secs(5))
                    })
                })
                .collect();
            for h in handles {
                if let Err(e) = h.join().unwrap() {
                    panic!("CHAOS_SEED={seed}: a write failed: {e}");
                }
            }
        });
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The scenario: see the module's doc and docs/chaos.md.
fn scenario(mode: Mode, tag: &str, default_nodes: usize) {
    let n = env_usize("CHAOS_NODES", default_nodes).max(8);
    let seed = chaos::seed();
    let t0 = Instant::now();
    eprintln!("chaos {mode:?}: {n} nodes, CHAOS_SEED={seed}");
    let mut rng = Rng::new(seed);
    let mut c = match Cluster::new(Path::new(BIN), n, mode, tag) {
        Ok(c) => c,
        Err(why) => return skip(&why),
    };
    let all: Vec<usize> = (0..n).collect();
    // Contacts: host 0 joins through host 1, every other host through
    // host 0 and a random earlier host (a restarted host rejoins so).
    c.contacts(0, &[1]);
    for i in 1..n {
        let other = rng.below(i);
        if other == 0 {
            c.contacts(i, &[0]);
        } else {
            c.contacts(i, &[0, other]);
        }
    }
    // Latency: 2 hosts (n/8 at larger sizes) reached through a proxy that
    // holds every chunk 40 ms each way.
    let others: Vec<usize> = (1..n).collect();
    for i in rng.pick(&others, (n / 8).max(2)) {
        if let Err(e) = c.delay(i, 40, PROXY_TEST) {
            panic!("CHAOS_SEED={seed}: {e}");
        }
    }
    c.start_all();
    let fail = |what: &str, report: String| -> ! { panic!("CHAOS_SEED={seed}: {what}: {report}") };

    // Phase 1: writes at random hosts while the overlay forms.
    let mut model = Model::default();
    let ops = model.ops(&mut rng, &all, n);
    apply(&c, &ops, seed);
    let formed = c
        .wait_holding(&all, &model.live, Duration::from_secs(30))
        .unwrap_or_else(|r| fail("the first writes did not reach every node", r));
    eprintln!(
        "chaos: {} writes everywhere {} after the last (t={})",
        model.writes,
        secs(formed),
        secs(t0.elapsed())
    );

    // Phase 2: loss on some hosts, a partition of a quarter of the hosts
    // (4 of 16), a node of each side killed; writes on both sides,
    // including new values and deletes of keys both sides hold.
    for i in rng.pick(&all, (n / 5).max(3)) {
        c.loss(i, 5.0).unwrap_or_else(|e| fail("loss", e));
    }
    let minority = rng.pick(&all, n / 4);
    let majority: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !minority.contains(i))
        .collect();
    c.partition(&minority)
        .unwrap_or_else(|e| fail("partition", e));
    let killed_major = majority[rng.below(majority.len())];
    let killed_minor = minority[rng.below(minority.len())];
    c.kill9(killed_major);
    c.kill9(killed_minor);
    eprintln!(
        "chaos: loss 5% each way on {:?}, delay 40 ms each way into {:?}; \
         partition {minority:?} from the rest; kill -9 h{killed_major} and h{killed_minor}",
        c.lossy().iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        c.delayed().iter().map(|(i, _)| *i).collect::<Vec<_>>(),
    );
    let partitioned_at = Instant::now();
    // Each side's own view of the writes: the writes made on it.
    let mut side_major = model.clone();
    let mut side_minor = model.clone();
    let live_minor: Vec<usize> = minority
        .iter()
        .copied()
        .filter(|&i| i != killed_minor)
        .collect();
    for round in 0..2 {
        let live_major: Vec<usize> = majority.iter().copied().filter(|&i| c.is_live(i)).collect();
        // Both sides write keys of their own and of the common past.
        let ops_major = side_major.ops(&mut rng, &live_major, (n / 2).max(4));
        apply(&c, &ops_major, seed);
        // The minority's writes come after the majority's: a new key's
        // numbers must not collide, so they continue from there.
        // A key deleted on one side is never written again on the other.
        side_minor.next_key = side_major.next_key;
        side_minor.writes = side_major.writes;
        side_minor
            .deleted
            .extend(side_major.deleted.iter().cloned());
        let ops_minor = side_minor.ops(&mut rng, &live_minor, (n / 8).max(2));
        apply(&c, &ops_minor, seed);
        side_major.next_key = side_minor.next_key;
        side_major.writes = side_minor.writes;
        side_major
            .deleted
            .extend(side_minor.deleted.iter().cloned());
        model_merge(&mut model, &ops_major, &ops_minor);
        if round == 0 {
            // The majority's killed node comes back during the partition,
            // and the second round of writes comes after the links across
            // it timed out (server/timeout 1 s).
            c.restart(killed_major);
            let wait = Duration::from_secs(5).saturating_sub(partitioned_at.elapsed());
            std::thread::sleep(wait);
        }
    }
    let live_major: Vec<usize> = majority.iter().copied().filter(|&i| c.is_live(i)).collect();
    // How long each side is given to converge on its own writes during
    // the partition (reported, not asserted): CHAOS_SIDE_WAIT seconds.
    let side_wait = Duration::from_secs(env_usize("CHAOS_SIDE_WAIT", 10) as u64);
    for (name, hosts, m) in [
        ("majority", &live_major, &side_major),
        ("minority", &live_minor, &side_minor),
    ] {
        match c.wait_holding(hosts, &m.live, side_wait) {
            Ok(t) => eprintln!(
                "chaos: during the partition the {name} ({} live) holds its writes, {} after the last",
                hosts.len(),
                secs(t)
            ),
            Err(r) => eprintln!("chaos: during the partition the {name} did not converge (not asserted): {r}"),
        }
    }
    // Hold the partition past the links' timeouts (remote/timeout 10 s),
    // so that they break and the overlay must mend after the heal.
    let hold = Duration::from_secs(12);
    let held = partitioned_at.elapsed();
    if held < hold {
        std::thread::sleep(hold - held);
    }

    // Phase 3: heal, bring the minority's killed node back, write more.
    c.heal().unwrap_or_else(|e| fail("heal", e));
    let healed_at = Instant::now();
    eprintln!(
        "chaos: healed after {} of partition (t={})",
        secs(partitioned_at.elapsed()),
        secs(t0.elapsed())
    );
    c.restart(killed_minor);
    let live = c.live();
    let ops = model.ops(&mut rng, &live, (n / 4).max(4));
    apply(&c, &ops, seed);
    let took = c
        .wait_holding(&live, &model.live, Duration::from_secs(60))
        .unwrap_or_else(|r| fail("after healing, not every live node holds every write", r));
    eprintln!(
        "chaos: after the heal every live node ({}) holds the {} live tuples ({} deleted keys gone), \
         {} after the last write, {} after the heal (t={})",
        live.len(),
        model.live.len(),
        model.deleted.len(),
        secs(took),
        secs(healed_at.elapsed()),
        secs(t0.elapsed())
    );

    eprintln!(
        "chaos: the loss rules dropped {} packets; the delaying proxies relayed {} connections",
        c.dropped(),
        c.relayed()
    );
    // Nothing resurrected, ever: no node was told of a deleted key again.
    let resurrected = c.resurrections();
    if !resurrected.is_empty() {
        fail("deleted keys came back", format!("{resurrected:?}"));
    }
    let unknown = c.unknown_lines();
    assert!(unknown.is_empty(), "lines not understood: {unknown:?}");
    // The same, read from outside: each node's tuples through `zgossip
    // watch`, a few at once.
    for chunk in live.chunks(4) {
        std::thread::scope(|s| {
            let dumps: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let c = &c;
                    (i, s.spawn(move || c.dump(i, Duration::from_millis(1500))))
                })
                .collect();
            for (i, d) in dumps {
                let got = d.join().unwrap();
                if got != model.live {
                    fail(
                        &format!("h{i} read through `zgossip watch`"),
                        diff(&model.live, &got),
                    );
                }
            }
        });
    }
    eprintln!(
        "chaos {mode:?}: passed, {n} nodes, {} writes, {} s (CHAOS_SEED={seed})",
        model.writes,
        t0.elapsed().as_secs()
    );
}

/// Writes made on the two sides of a partition, in the order they were
/// made (majority first), applied to the model of the whole network.
fn model_merge(model: &mut Model, major: &[Op], minor: &[Op]) {
    for op in major.iter().chain(minor) {
        model.writes += 1;
        match op {
            Op::Put(_, k, v) => {
                model.live.insert(k.clone(), v.clone());
                let n: usize = k[4..].parse().unwrap();
                model.next_key = model.next_key.max(n + 1);
            }
            Op::Del(_, k) => {
                model.live.remove(k);
                model.deleted.insert(k.clone());
            }
        }
    }
}

#[test]
fn nodes_that_join_hold_every_write_and_nothing_deleted_after_chaos() {
    scenario(Mode::Join, "j", 16);
}

#[test]
fn nodes_that_discover_hold_every_write_and_nothing_deleted_after_chaos() {
    scenario(Mode::Discover, "d", 8);
}

/// Persistence (issue 26): every node of an overlay keeps a data
/// directory (`--data-dir`); after writes and deletes have reached every
/// node, every node is killed at once (a power cut), then started again
/// alone (no contacts): each holds every live tuple and nothing deleted,
/// from its directory only. Started again with its contacts, the network
/// takes new writes everywhere.
#[test]
fn a_network_with_data_directories_killed_at_once_holds_every_write_from_disk() {
    let n = 8;
    let seed = chaos::seed();
    eprintln!("chaos persistence: {n} nodes, CHAOS_SEED={seed}");
    let mut rng = Rng::new(seed);
    let mut c = match Cluster::new(Path::new(BIN), n, Mode::Join, "p") {
        Ok(c) => c,
        Err(why) => return skip(&why),
    };
    let fail = |what: &str, report: String| -> ! { panic!("CHAOS_SEED={seed}: {what}: {report}") };
    let all: Vec<usize> = (0..n).collect();
    let contacts = |c: &mut Cluster, rng: &mut Rng| {
        c.contacts(0, &[1]);
        for i in 1..n {
            c.contacts(i, &[0, rng.below(i)]);
        }
    };
    contacts(&mut c, &mut rng);
    for i in 0..n {
        let dir = c.host_dir(i);
        c.host_args(i, &["--data-dir", dir.to_str().unwrap()]);
    }
    c.start_all();
    let mut model = Model::default();
    let ops = model.ops(&mut rng, &all, n);
    apply(&c, &ops, seed);
    c.wait_holding(&all, &model.live, Duration::from_secs(30))
        .unwrap_or_else(|r| fail("the writes did not reach every node", r));
    // Past the fsync interval (100 ms): on disk everywhere.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..n {
        c.kill9(i);
    }
    // Alone: what each holds comes from its directory.
    for i in 0..n {
        c.contacts(i, &[]);
        c.start(i);
    }
    for i in 0..n {
        let held = c.dump(i, Duration::from_millis(500));
        if held != model.live {
            fail(&format!("h{i} restarted alone"), diff(&model.live, &held));
        }
    }
    // Together again: new writes reach every node (new values of keys
    // held, deletes, new keys).
    contacts(&mut c, &mut rng);
    for i in 0..n {
        c.restart(i);
    }
    let ops = model.ops(&mut rng, &all, n);
    apply(&c, &ops, seed);
    for i in 0..n {
        let held = c.dump(i, Duration::from_millis(500));
        let ok = held == model.live;
        if !ok {
            // Give the overlay time to form, then look again.
            std::thread::sleep(Duration::from_secs(5));
            let again = c.dump(i, Duration::from_millis(500));
            if again != model.live {
                fail(
                    &format!("h{i} after the restart"),
                    diff(&model.live, &again),
                );
            }
        }
    }
    eprintln!(
        "chaos persistence: {} writes held from disk by {n} nodes",
        model.writes
    );
}

/// A hand-driven ZGP v1 peer over TCP (ZMTP NULL, as a DEALER).
struct RawPeer {
    tcp: std::net::TcpStream,
    zmtp: zgossip::wire::zmtp::Connection,
}

impl RawPeer {
    fn connect(endpoint: &str, socket_type: zgossip::wire::zmtp::SocketType) -> RawPeer {
        use std::io::{Read, Write};
        use zgossip::wire::zmtp;
        let addr = endpoint.strip_prefix("tcp://").expect("a tcp endpoint");
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut p = RawPeer {
            tcp,
            zmtp: zmtp::Connection::new(zmtp::ConnectionConfig::new(socket_type)),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        while !p.zmtp.is_ready() {
            assert!(Instant::now() < deadline, "handshake timed out");
            p.zmtp.poll().expect("handshake");
            p.tcp.write_all(p.zmtp.pending_output()).unwrap();
            let n = p.zmtp.pending_output().len();
            p.zmtp.consume_output(n);
            if p.zmtp.is_ready() {
                break;
            }
            match p.tcp.read(&mut buf) {
                Ok(0) => panic!("closed during the handshake"),
                Ok(n) => p.zmtp.feed(&buf[..n]),
                Err(_) => {}
            }
        }
        p
    }

    fn send(&mut self, msg: &zgossip::wire::gossip::Message<'_>) {
        use std::io::Write;
        let mut frame = Vec::new();
        msg.encode(&mut frame);
        self.zmtp.queue_message(&[&frame]).unwrap();
        self.tcp.write_all(self.zmtp.pending_output()).unwrap();
        let n = self.zmtp.pending_output().len();
        self.zmtp.consume_output(n);
    }
}

/// Found by this harness: a node whose write to a peer failed (the peer
/// had just left, resetting the connection) closed the connection without
/// reading what the peer sent before, so a `zgossip put` that exited while
/// its node forwarded it something lost its write. Made deterministic
/// here: the node is paused while one peer publishes (the node will
/// forward that to the other) and the other publishes and resets; resumed,
/// the node handles the first peer's input first, and its forward to the
/// second fails before it reads the second's write.
#[test]
fn a_write_sent_just_before_a_reset_is_not_lost_to_a_forward() {
    use zgossip::wire::gossip::Message;
    use zgossip::wire::zmtp::SocketType;

    let mut node = Command::new(BIN)
        .args([
            "node",
            "--no-control",
            "--json",
            "--bind",
            "tcp://127.0.0.1:*",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = node.stdout.take().unwrap();
    let rx = chaos::lines_of(out);
    let wait_line = |what: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(_) => return String::new(),
            }
        }
    };
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &node.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig}");
    };
    let bound = wait_line("\"bound\"");
    let ep = bound
        .split("\"endpoint\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no endpoint in {bound:?}"))
        .to_string();

    let mut a = RawPeer::connect(&ep, SocketType::Dealer);
    a.send(&Message::Hello);
    a.send(&Message::Publish {
        key: "held",
        value: "1",
        ttl: 0,
    });
    assert!(!wait_line("\"held\"").is_empty());
    // B says HELLO and gets "held" (a server sends what it holds), which
    // it never reads: closing with unread input resets the connection.
    let mut b = RawPeer::connect(&ep, SocketType::Dealer);
    b.send(&Message::Hello);
    std::thread::sleep(Duration::from_millis(300));

    signal("-STOP");
    a.send(&Message::Publish {
        key: "from-a",
        value: "1",
        ttl: 0,
    });
    b.send(&Message::Publish {
        key: "from-b",
        value: "1",
        ttl: 0,
    });
    drop(b);
    std::thread::sleep(Duration::from_millis(200));
    signal("-CONT");

    let (mut got_a, mut got_b) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(got_a && got_b) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        got_a |= line.contains("\"from-a\"");
        got_b |= line.contains("\"from-b\"");
    }
    let _ = node.kill();
    let _ = node.wait();
    assert!(got_a, "the node did not deliver A's write");
    assert!(
        got_b,
        "the node lost the write B sent just before it reset the connection"
    );
}

// Membership (issue 25) on real processes.

/// How long the membership scenario gives each step, asserted. Issue 25's
/// targets are tighter (failed everywhere within 5 s of a `kill -9`, left
/// within 1 s of a SIGTERM): the scenario prints how many processes met
/// them, and asserts these looser bounds, which hold on a loaded 2-core
/// machine (CI runs the chaos scenarios two at a time).
const FAILED_WITHIN: Duration = Duration::from_secs(10);
const LEFT_WITHIN: Duration = Duration::from_secs(5);
const TARGET_FAILED: Duration = Duration::from_secs(5);
const TARGET_LEFT: Duration = Duration::from_secs(1);
/// A restarted node: started, joined, and listed alive everywhere.
const ALIVE_WITHIN: Duration = Duration::from_secs(20);
/// Every process holds the tuples expected (before the faults, after the
/// restart): bounded, and reported.
const HELD_WITHIN: Duration = Duration::from_secs(15);
/// Every process's `MEMBERS` shows what its member lines told (or, after
/// the restart, no longer lists the former self).
const MEMBERS_WITHIN: Duration = Duration::from_secs(15);
/// `zgossip members --timeout`: the short-lived node prints the table once
/// it stayed the same 300 ms, or as it stands at this timeout (when the
/// other readers' short-lived nodes keep changing it).
const MEMBERS_READ: Duration = Duration::from_millis(3000);
/// Member tables read at once (each read is a short-lived node that joins
/// and leaves, a change every table hears of).
const READERS: usize = 8;

/// The latest state of each member host `i`'s running node told of, by id.
fn told(c: &Cluster, i: usize) -> BTreeMap<String, chaos::Member> {
    let mut table = BTreeMap::new();
    for e in c.member_events(i) {
        table.insert(e.member.id.clone(), e.member);
    }
    table
}

/// When host `i`'s running node first printed a member line satisfying
/// `ok` at or after `since`.
fn first_told(
    c: &Cluster,
    i: usize,
    since: Instant,
    ok: impl Fn(&chaos::Member) -> bool,
) -> Option<Instant> {
    c.member_events(i)
        .into_iter()
        .find(|e| e.at >= since && ok(&e.member))
        .map(|e| e.at)
}

/// Waits (at most `limit`) until every host of `hosts` has shown what a
/// step expects: `seen(i)` is when host `i` first did (None: not yet).
/// Ok: each host's time after `since`; Err: who had not, and what
/// `report(i)` says of it. A step that expects several things of a
/// process (a member's state, and later the deletes of its ephemeral
/// tuples) gives as `seen` the latest of their times.
fn wait_each(
    hosts: &[usize],
    since: Instant,
    limit: Duration,
    seen: impl Fn(usize) -> Option<Instant>,
    report: impl Fn(usize) -> String,
) -> Result<Vec<(usize, Duration)>, String> {
    loop {
        let times: Vec<(usize, Option<Instant>)> = hosts.iter().map(|&i| (i, seen(i))).collect();
        if times.iter().all(|(_, t)| t.is_some()) {
            return Ok(times
                .into_iter()
                .map(|(i, t)| (i, t.unwrap().saturating_duration_since(since)))
                .collect());
        }
        if since.elapsed() >= limit {
            let missing: Vec<usize> = times
                .iter()
                .filter(|(_, t)| t.is_none())
                .map(|(i, _)| *i)
                .collect();
            let mut r = format!(
                "after {limit:?}, {} of {} processes had not: ",
                missing.len(),
                hosts.len()
            );
            for &i in missing.iter().take(8) {
                r.push_str(&format!("\n  h{i}: {}", report(i)));
            }
            return Err(r);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// "15 processes, median 2.31 s, max 2.62 s (h7)", and how many met
/// `target`: "; 15 of 15 within 5 s".
fn figures(times: &[(usize, Duration)], target: Option<Duration>) -> String {
    let mut sorted: Vec<(usize, Duration)> = times.to_vec();
    sorted.sort_by_key(|&(_, d)| d);
    let Some(&(slowest, max)) = sorted.last() else {
        return "no process".into();
    };
    let median = sorted[sorted.len() / 2].1;
    let mut out = format!(
        "{} processes, median {:.2} s, max {:.2} s (h{slowest})",
        sorted.len(),
        median.as_secs_f64(),
        max.as_secs_f64(),
    );
    if let Some(target) = target {
        let within = sorted.iter().filter(|(_, d)| *d <= target).count();
        out.push_str(&format!(
            "; {within} of {} within {} s (issue 25's target)",
            sorted.len(),
            target.as_secs_f64()
        ));
    }
    out
}

/// Reads the `MEMBERS` of every host of `hosts` (through `zgossip
/// members`, [`READERS`] at once) until `check` passes for each, at most
/// `limit`. The short-lived readers, named `cli`, are left out of the
/// lists `check` gets. Ok(how long it took); Err: who did not pass, why.
fn wait_members(
    c: &Cluster,
    hosts: &[usize],
    limit: Duration,
    killed_readers: &std::sync::atomic::AtomicUsize,
    check: impl Fn(usize, &[chaos::Member]) -> Result<(), String> + Sync,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut pending: Vec<usize> = hosts.to_vec();
    let mut why: BTreeMap<usize, String> = BTreeMap::new();
    // Bounded: each round reads the hosts still pending, until the limit.
    while !pending.is_empty() && start.elapsed() < limit {
        let mut still = Vec::new();
        for chunk in pending.chunks(READERS) {
            std::thread::scope(|s| {
                let reads: Vec<_> = chunk
                    .iter()
                    .map(|&i| (i, s.spawn(move || c.members(i, MEMBERS_READ))))
                    .collect();
                for (i, r) in reads {
                    let verdict = match r.join().unwrap() {
                        Ok(list) => {
                            let list: Vec<chaos::Member> =
                                list.into_iter().filter(|m| m.name != "cli").collect();
                            check(i, &list)
                        }
                        Err(e) => {
                            if e.contains("was killed") {
                                killed_readers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e)
                        }
                    };
                    match verdict {
                        Ok(()) => {
                            why.remove(&i);
                        }
                        Err(e) => {
                            why.insert(i, e);
                            still.push(i);
                        }
                    }
                }
            });
        }
        pending = still;
    }
    if pending.is_empty() {
        return Ok(start.elapsed());
    }
    let mut r = format!(
        "after {limit:?}, the MEMBERS of {} of {} processes did not show it:",
        pending.len(),
        hosts.len()
    );
    for (i, e) in why.iter().take(8) {
        r.push_str(&format!("\n  h{i}: {e}"));
    }
    Err(r)
}

/// The member named `name` in `list`, if exactly one is.
fn only<'a>(list: &'a [chaos::Member], name: &str) -> Result<&'a chaos::Member, String> {
    let of: Vec<&chaos::Member> = list.iter().filter(|m| m.name == name).collect();
    match of[..] {
        [m] => Ok(m),
        [] => Err(format!("{name} not listed")),
        _ => Err(format!("{name} listed {} times: {of:?}", of.len())),
    }
}

/// The tuples a node of the membership scenario publishes at its start
/// `start` (1 for its first): two ephemeral ones, `svc/NAME/a` and
/// `svc/NAME/b`, and one plain one, `conf/NAME`, each value naming the
/// start, so that a tuple of a restarted node differs from its former one.
struct Published {
    ephemeral: Vec<(String, String)>,
    plain: (String, String),
}

impl Published {
    fn of(name: &str, start: u32) -> Published {
        Published {
            ephemeral: ["a", "b"]
                .iter()
                .map(|s| (format!("svc/{name}/{s}"), format!("{name}-{start}-{s}")))
                .collect(),
            plain: (format!("conf/{name}"), format!("{name}-{start}-conf")),
        }
    }

    /// The `zgossip node` arguments that publish them.
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (k, v) in &self.ephemeral {
            args.push("--ephemeral".to_string());
            args.push(format!("{k}={v}"));
        }
        args.push("--publish".to_string());
        args.push(format!("{}={}", self.plain.0, self.plain.1));
        args
    }

    fn ephemeral_keys(&self) -> Vec<String> {
        self.ephemeral.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// When host `i`'s running node was told the last of `keys` deleted, at
/// or after `since`: None while it still holds one of them, or was not
/// told of its delete since.
fn deleted_since(c: &Cluster, i: usize, since: Instant, keys: &[String]) -> Option<Instant> {
    c.with_view(i, |v| {
        let mut last = since;
        for k in keys {
            if v.tuples.contains_key(k) {
                return None;
            }
            let at = v
                .tuple_events
                .iter()
                .rev()
                .find(|e| e.at >= since && e.event == "delete" && &e.key == k)?
                .at;
            last = last.max(at);
        }
        Some(last)
    })
    .flatten()
}

/// When host `i`'s running node was first told the last of `tuples`, at
/// or after `since`: None while it does not hold one of them, or was not
/// told of it since.
fn delivered_since(
    c: &Cluster,
    i: usize,
    since: Instant,
    tuples: &[(String, String)],
) -> Option<Instant> {
    c.with_view(i, |v| {
        let mut last = since;
        for (k, value) in tuples {
            if v.tuples.get(k) != Some(value) {
                return None;
            }
            let at = v
                .tuple_events
                .iter()
                .find(|e| {
                    e.at >= since
                        && e.event == "deliver"
                        && &e.key == k
                        && e.value.as_ref() == Some(value)
                })?
                .at;
            last = last.max(at);
        }
        Some(last)
    })
    .flatten()
}

/// What host `i`'s node holds of `keys`, for a report.
fn holds_of(c: &Cluster, i: usize, keys: &[String]) -> BTreeMap<String, String> {
    c.held(i)
        .into_iter()
        .filter(|(k, _)| keys.contains(k))
        .collect()
}

/// The largest gap between two times of each process (the member line and
/// the last tuple line): "at most 0.01 s apart (h3)".
fn apart(a: &[(usize, Duration)], b: &[(usize, Duration)]) -> String {
    let gap = a
        .iter()
        .zip(b)
        .map(|(&(i, x), &(_, y))| (x.abs_diff(y), i))
        .max();
    match gap {
        Some((d, i)) => format!("at most {:.3} s apart (h{i})", d.as_secs_f64()),
        None => "no process".into(),
    }
}

/// Issue 25 on real processes, `n` nodes joined in an overlay, each
/// printing its member changes (`zgossip node --members`, each line timed
/// as the harness reads it):
///
/// 1. every node lists every other alive; `MEMBERS` of each agrees, and
///    gives each node's id; every node holds the tuples the two nodes that
///    will be stopped published at their start (two ephemeral, one plain
///    each);
/// 2. `kill -9` of one: every other process lists it `failed` and deleted
///    its ephemeral tuples, and holds its plain one;
/// 3. SIGTERM of another: every other process lists it `left` and deleted
///    its ephemeral tuples, and holds its plain one;
/// 4. the killed one starts again under its name: listed `alive` (a new
///    id) everywhere, and no process lists its former id (no ghost); its
///    ephemeral tuples, published again by the new process, are held
///    everywhere;
/// 5. no process ever listed a member `failed` that was not killed, and
///    no tuple deleted came back but the restarted node's new writes.
///
/// Each step's time is taken per process, from the fault to the last line
/// that shows it (member line, deletes or deliveries); `MEMBERS` of every
/// process is then read (from outside, `zgossip members`) and must agree.
/// A member gone from the network: every process of `watchers` must list
/// `id` (host `who`) as `state` and have been told the delete of each of
/// `keys`, its ephemeral tuples, within `limit` of `at`. Returns "at N
/// processes, median ...; in each process the STATE line and the last
/// delete ... apart", or what was missing.
#[allow(clippy::too_many_arguments)]
fn wait_gone(
    c: &Cluster,
    watchers: &[usize],
    at: Instant,
    who: usize,
    id: &str,
    state: &str,
    keys: &[String],
    limit: Duration,
    target: Duration,
) -> Result<String, String> {
    let line = |i| first_told(c, i, at, |m| m.id == id && m.state == state);
    let done = wait_each(
        watchers,
        at,
        limit,
        |i| Some(line(i)?.max(deleted_since(c, i, at, keys)?)),
        |i| {
            format!(
                "lists h{who} as {:?}, holds {:?} of its ephemeral tuples",
                told(c, i).get(id),
                holds_of(c, i, keys)
            )
        },
    )?;
    let since = |t: Option<Instant>| t.unwrap().saturating_duration_since(at);
    let lines: Vec<(usize, Duration)> = watchers.iter().map(|&i| (i, since(line(i)))).collect();
    let deleted: Vec<(usize, Duration)> = watchers
        .iter()
        .map(|&i| (i, since(deleted_since(c, i, at, keys))))
        .collect();
    Ok(format!(
        "{}; in each process the {state} line and the last delete {}",
        figures(&done, Some(target)),
        apart(&lines, &deleted)
    ))
}

fn members_scenario(default_nodes: usize) {
    use std::sync::atomic::AtomicUsize;
    let n = env_usize("CHAOS_NODES", default_nodes).max(4);
    let seed = chaos::seed();
    let t0 = Instant::now();
    eprintln!("chaos members: {n} nodes, CHAOS_SEED={seed}");
    let mut rng = Rng::new(seed);
    let mut c = match Cluster::new(Path::new(BIN), n, Mode::Join, "m") {
        Ok(c) => c,
        Err(why) => return skip(&why),
    };
    let fail = |what: &str, report: String| -> ! { panic!("CHAOS_SEED={seed}: {what}: {report}") };
    let all: Vec<usize> = (0..n).collect();
    let name = |i: usize| format!("h{i}");
    c.contacts(0, &[1]);
    for i in 1..n {
        let other = rng.below(i);
        if other == 0 {
            c.contacts(i, &[0]);
        } else {
            c.contacts(i, &[0, other]);
        }
    }
    // The victim (kill -9, restarted later) and the leaver (SIGTERM): not
    // host 0, every other's contact. Each publishes its tuples at start.
    let picked = rng.pick(&all[1..], 2);
    let (victim, leaver) = (picked[0], picked[1]);
    let victim_first = Published::of(&name(victim), 1);
    let leaver_tuples = Published::of(&name(leaver), 1);
    for (i, p) in [(victim, &victim_first), (leaver, &leaver_tuples)] {
        let args = p.args();
        c.host_args(i, &args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    // What every node holds before the faults, after the kill, after the
    // leave and after the restart.
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for p in [&victim_first, &leaver_tuples] {
        expected.extend(p.ephemeral.iter().cloned());
        expected.insert(p.plain.0.clone(), p.plain.1.clone());
    }
    c.node_args(&["--members"]);
    c.start_all();
    let killed_readers = AtomicUsize::new(0);
    let endpoints: Vec<String> = all.iter().map(|&i| c.hosts[i].endpoint()).collect();

    // 1. Every node lists every other alive, as its lines told.
    let started = Instant::now();
    let formed = wait_each(
        &all,
        started,
        Duration::from_secs(30),
        |i| {
            let table = told(&c, i);
            let alive = all.iter().filter(|&&j| j != i).all(|&j| {
                table
                    .values()
                    .any(|m| m.name == name(j) && m.state == "alive")
            });
            alive.then(Instant::now)
        },
        |i| {
            let table = told(&c, i);
            let missing: Vec<String> = all
                .iter()
                .filter(|&&j| j != i)
                .filter(|&&j| {
                    !table
                        .values()
                        .any(|m| m.name == name(j) && m.state == "alive")
                })
                .map(|&j| name(j))
                .collect();
            format!("does not list alive {missing:?}")
        },
    )
    .unwrap_or_else(|r| fail("not every node listed every other alive", r));
    let formed_in = formed.iter().map(|(_, d)| *d).max().unwrap_or_default();
    // Each node's id, from its own MEMBERS (it lists itself), the same in
    // every other's.
    let ids: Vec<std::sync::Mutex<Option<String>>> =
        all.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let read = wait_members(&c, &all, MEMBERS_WITHIN, &killed_readers, |i, list| {
        for &j in &all {
            let m = only(list, &name(j))?;
            if m.state != "alive" || m.endpoint != endpoints[j] {
                return Err(format!("lists {m:?}"));
            }
        }
        let me = only(list, &name(i))?;
        *ids[i].lock().unwrap() = Some(me.id.clone());
        Ok(())
    })
    .unwrap_or_else(|r| fail("MEMBERS does not list every node alive", r));
    let ids: Vec<String> = ids
        .into_iter()
        .map(|m| m.into_inner().unwrap().expect("an id"))
        .collect();
    wait_members(&c, &all, MEMBERS_WITHIN, &killed_readers, |_, list| {
        for &j in &all {
            let m = only(list, &name(j))?;
            if m.id != ids[j] {
                return Err(format!("lists {m:?}, whose own MEMBERS says id {}", ids[j]));
            }
        }
        Ok(())
    })
    .unwrap_or_else(|r| fail("the processes do not agree on the ids", r));
    eprintln!(
        "chaos members: every node lists every other alive {:.2} s after the last started; \
         MEMBERS of all {n} read in {:.2} s (t={})",
        formed_in.as_secs_f64(),
        read.as_secs_f64(),
        secs(t0.elapsed())
    );
    // Every node holds the tuples of h{victim} and h{leaver}, ephemeral
    // and plain (they were published before the others started).
    let took = c
        .wait_holding(&all, &expected, HELD_WITHIN)
        .unwrap_or_else(|r| fail("not every node holds the published tuples", r));
    eprintln!(
        "chaos members: every node holds the {} tuples of h{victim} and h{leaver} \
         (ephemeral {:?}, {:?}; plain {:?}, {:?}), waited {:.2} s",
        expected.len(),
        victim_first.ephemeral_keys(),
        leaver_tuples.ephemeral_keys(),
        victim_first.plain.0,
        leaver_tuples.plain.0,
        took.as_secs_f64()
    );
    let old_id = ids[victim].clone();
    // The overlay settles (its views fill, shuffles go round) before the
    // faults: CHAOS_MEMBERS_SETTLE seconds, 5 by default.
    let settle = Duration::from_secs(env_usize("CHAOS_MEMBERS_SETTLE", 5) as u64);
    std::thread::sleep(settle);
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();

    // 2. kill -9: failed everywhere, and its ephemeral tuples deleted
    // everywhere (issue 25: both within 5 s); `seen` is the later of the
    // `failed` line and the last of those deletes.
    let victim_keys = victim_first.ephemeral_keys();
    let at = Instant::now();
    c.kill9(victim);
    let failed = wait_gone(
        &c,
        &others,
        at,
        victim,
        &old_id,
        "failed",
        &victim_keys,
        FAILED_WITHIN,
        TARGET_FAILED,
    )
    .unwrap_or_else(|r| {
        fail(
            &format!("kill -9 of h{victim}: not failed, its ephemeral tuples deleted, everywhere"),
            r,
        )
    });
    eprintln!(
        "chaos members: kill -9 h{victim}: failed and its {} ephemeral tuples deleted at {failed} (t={})",
        victim_keys.len(),
        secs(t0.elapsed())
    );
    // Its plain tuple stays, and so do the leaver's tuples.
    for (k, _) in &victim_first.ephemeral {
        expected.remove(k);
    }
    c.wait_holding(&others, &expected, Duration::ZERO)
        .unwrap_or_else(|r| fail(&format!("kill -9 of h{victim}: the tuples left"), r));
    let read = wait_members(&c, &others, MEMBERS_WITHIN, &killed_readers, |_, list| {
        let m = only(list, &name(victim))?;
        if m.id == old_id && m.state == "failed" {
            Ok(())
        } else {
            Err(format!("lists {m:?}"))
        }
    })
    .unwrap_or_else(|r| fail(&format!("kill -9 of h{victim}: MEMBERS"), r));
    eprintln!(
        "chaos members: MEMBERS of every other process lists h{victim} failed (read in {:.2} s)",
        read.as_secs_f64()
    );

    // 3. SIGTERM: left everywhere.
    let leaver_id = ids[leaver].clone();
    let live: Vec<usize> = others.iter().copied().filter(|&i| i != leaver).collect();
    let leaver_keys = leaver_tuples.ephemeral_keys();
    let at = Instant::now();
    match c.term(leaver) {
        Ok(Some(0)) => {}
        Ok(code) => fail(
            &format!("h{leaver} on SIGTERM"),
            format!("exit code {code:?}"),
        ),
        Err(e) => fail(&format!("h{leaver} on SIGTERM"), e),
    }
    let left = wait_gone(
        &c,
        &live,
        at,
        leaver,
        &leaver_id,
        "left",
        &leaver_keys,
        LEFT_WITHIN,
        TARGET_LEFT,
    )
    .unwrap_or_else(|r| {
        fail(
            &format!("SIGTERM of h{leaver}: not left, its ephemeral tuples deleted, everywhere"),
            r,
        )
    });
    eprintln!(
        "chaos members: SIGTERM h{leaver}: left and its {} ephemeral tuples deleted at {left} (t={})",
        leaver_keys.len(),
        secs(t0.elapsed())
    );
    for (k, _) in &leaver_tuples.ephemeral {
        expected.remove(k);
    }
    c.wait_holding(&live, &expected, Duration::ZERO)
        .unwrap_or_else(|r| fail(&format!("SIGTERM of h{leaver}: the tuples left"), r));
    let read = wait_members(&c, &live, MEMBERS_WITHIN, &killed_readers, |_, list| {
        let m = only(list, &name(leaver))?;
        if m.id == leaver_id && m.state == "left" {
            Ok(())
        } else {
            Err(format!("lists {m:?}"))
        }
    })
    .unwrap_or_else(|r| fail(&format!("SIGTERM of h{leaver}: MEMBERS"), r));
    eprintln!(
        "chaos members: MEMBERS of every other process lists h{leaver} left (read in {:.2} s)",
        read.as_secs_f64()
    );

    // 4. The victim starts again under its name: a new id, alive
    // everywhere, and the ephemeral tuples the new process publishes at
    // its start held everywhere; its former id listed nowhere.
    let victim_again = Published::of(&name(victim), 2);
    let args = victim_again.args();
    c.host_args(victim, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let at = Instant::now();
    c.start(victim);
    let alive_line = |i| {
        first_told(&c, i, at, |m| {
            m.name == name(victim) && m.id != old_id && m.state == "alive"
        })
    };
    let alive = wait_each(
        &live,
        at,
        ALIVE_WITHIN,
        |i| Some(alive_line(i)?.max(delivered_since(&c, i, at, &victim_again.ephemeral)?)),
        |i| {
            let of: Vec<chaos::Member> = told(&c, i)
                .into_values()
                .filter(|m| m.name == name(victim))
                .collect();
            format!(
                "lists {of:?}, holds {:?} of its ephemeral tuples",
                holds_of(&c, i, &victim_again.ephemeral_keys())
            )
        },
    )
    .unwrap_or_else(|r| {
        fail(
            &format!("h{victim} restarted: not alive, its ephemeral tuples held, everywhere"),
            r,
        )
    });
    let since = |t: Option<Instant>| t.unwrap().saturating_duration_since(at);
    let alive_only: Vec<(usize, Duration)> =
        live.iter().map(|&i| (i, since(alive_line(i)))).collect();
    let delivered: Vec<(usize, Duration)> = live
        .iter()
        .map(|&i| {
            (
                i,
                since(delivered_since(&c, i, at, &victim_again.ephemeral)),
            )
        })
        .collect();
    let new_ids: BTreeSet<String> = live
        .iter()
        .flat_map(|&i| {
            c.member_events(i)
                .into_iter()
                .filter(|e| e.at >= at && e.member.name == name(victim) && e.member.id != old_id)
                .map(|e| e.member.id)
        })
        .collect();
    if new_ids.len() != 1 {
        fail(
            &format!("h{victim} restarted"),
            format!("the others heard of it under several ids: {new_ids:?}"),
        );
    }
    let new_id = new_ids.into_iter().next().unwrap();
    eprintln!(
        "chaos members: h{victim} restarted (new id {new_id}, was {old_id}): alive and its \
         new ephemeral tuples held at {} (from the restart, its start and join included); \
         in each process the alive line and the last delivery {} (t={})",
        figures(&alive, None),
        apart(&alive_only, &delivered),
        secs(t0.elapsed())
    );
    // Every live process, the restarted one included, holds exactly its
    // new tuples and the leaver's plain one.
    let mut and_victim = live.clone();
    and_victim.push(victim);
    for (k, v) in victim_again.ephemeral.iter().chain([&victim_again.plain]) {
        expected.insert(k.clone(), v.clone());
    }
    let took = c
        .wait_holding(&and_victim, &expected, HELD_WITHIN)
        .unwrap_or_else(|r| fail(&format!("h{victim} restarted: the tuples"), r));
    eprintln!(
        "chaos members: every live process, h{victim} included, holds exactly the {} tuples \
         expected, waited {:.2} s",
        expected.len(),
        took.as_secs_f64()
    );
    let read = wait_members(
        &c,
        &and_victim,
        MEMBERS_WITHIN,
        &killed_readers,
        |_, list| {
            if let Some(ghost) = list.iter().find(|m| m.id == old_id) {
                return Err(format!("a ghost: still lists {ghost:?}"));
            }
            let m = only(list, &name(victim))?;
            if m.id != new_id || m.state != "alive" {
                return Err(format!("lists {m:?}"));
            }
            for &j in &live {
                let m = only(list, &name(j))?;
                if m.id != ids[j] || m.state != "alive" {
                    return Err(format!("lists {m:?}"));
                }
            }
            let m = only(list, &name(leaver))?;
            if m.id != leaver_id || m.state != "left" {
                return Err(format!("lists {m:?}"));
            }
            Ok(())
        },
    )
    .unwrap_or_else(|r| fail(&format!("h{victim} restarted: MEMBERS"), r));
    eprintln!(
        "chaos members: MEMBERS of every process lists h{victim} alive once, under its new id, \
         and nowhere its former id (read in {:.2} s)",
        read.as_secs_f64()
    );

    // 5. No false positives: the only member any process ever told failed
    // is the one killed (the readers' short-lived nodes included, none of
    // which was killed unless said).
    let events = c.all_member_events();
    let killed = killed_readers.load(std::sync::atomic::Ordering::Relaxed);
    // A reader killed (it took past its bound) is failed rightly.
    let excused = |m: &chaos::Member| killed > 0 && m.name == "cli";
    let false_failed: Vec<String> = events
        .iter()
        .filter(|(_, _, e)| e.member.state == "failed" && e.member.id != old_id)
        .filter(|(_, _, e)| !excused(&e.member))
        .map(|(i, inc, e)| format!("h{i} #{inc}: {:?}", e.member))
        .collect();
    // Suspicions of live members (refuted, so not asserted): whose, and
    // when first told, from the start of the run.
    let mut suspected: BTreeMap<String, String> = BTreeMap::new();
    for (_, _, e) in &events {
        if e.member.state == "suspect" && e.member.id != old_id {
            let key = format!("{} ({})", e.member.name, &e.member.id[..4]);
            suspected
                .entry(key)
                .or_insert_with(|| secs(e.at.saturating_duration_since(t0)));
        }
    }
    if !false_failed.is_empty() {
        fail(
            "members were told failed that were never killed",
            format!("{false_failed:?}"),
        );
    }
    // Nothing deleted came back, in any process: the only key delivered
    // again after its delete is the victim's ephemeral ones, at the values
    // of its new process.
    let again: Vec<String> = victim_again
        .ephemeral
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let resurrected: Vec<String> = c
        .resurrections()
        .into_iter()
        .filter(|r| !again.iter().any(|a| r.ends_with(&format!(": {a}"))))
        .collect();
    if !resurrected.is_empty() {
        fail("deleted tuples came back", format!("{resurrected:?}"));
    }
    let unknown = c.unknown_lines();
    assert!(unknown.is_empty(), "lines not understood: {unknown:?}");
    eprintln!(
        "chaos members: passed, {n} nodes, {} member lines; no member failed but h{victim}'s \
         first incarnation; suspected, and refuted (first told at t=): {suspected:?}; \
         readers killed: {killed}; {} s (CHAOS_SEED={seed})",
        events.len(),
        t0.elapsed().as_secs()
    );
}

#[test]
fn members_list_a_killed_node_failed_a_stopped_one_left_and_a_restarted_one_alive() {
    members_scenario(16);
}
