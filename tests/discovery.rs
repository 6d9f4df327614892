//! Discovery over UDP beacons. Every test that sends a datagram runs inside
//! network namespaces it creates (see tests/support/netns.rs): nothing
//! leaves the machine. Without root or iproute2 these tests skip, saying
//! so.

mod common;
#[path = "support/czmq.rs"]
mod czmq;
#[path = "support/netns.rs"]
mod netns;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::wait_until;
use netns::cmd::run_bounded;
use netns::{assert_passed, inside, skip, Lan, Netns};
use zgossip::beacon::frame;
use zgossip::{Beacon, DiscoverOptions, Node, UdpOptions};

const PORT: u16 = 5675;

fn connections(n: &Node) -> u64 {
    n.stats().unwrap().get("connections").copied().unwrap_or(0)
}

fn stat(n: &Node, name: &str) -> u64 {
    n.stats().unwrap().get(name).copied().unwrap_or(0)
}

fn discovering(name: &str, args: &[&str]) -> Node {
    let node = Node::new(name).unwrap();
    let mut frames = vec!["DISCOVER"];
    frames.extend_from_slice(args);
    node.send(&frames).unwrap();
    node
}

/// Runs `test` inside a fresh sealed namespace, in a child process.
fn in_sealed(test: &str) {
    let ns = match Netns::sealed() {
        Ok(ns) => ns,
        Err(why) => return skip(&why),
    };
    let out = run_bounded(ns.test_command(test, "", &[]), Duration::from_secs(90));
    assert_passed(test, &out);
}

/// Nodes with only DISCOVER find each other, link through the overlay
/// (a few links each, never two between a pair), and converge; a node that
/// joins later is found too. `args` keep the beacons loud (quiet-interval=0)
/// so that every node hears every other: quiet beacons have a test of
/// their own.
fn converge_on_one_host(args: &[&str]) {
    let keys = |n: &Node| n.keys("").unwrap().len();
    let mut nodes: Vec<Node> = (0..4)
        .map(|i| discovering(&format!("n{i}"), args))
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        n.publish(&format!("key/{i}"), &format!("value {i}"))
            .unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(20), || nodes
            .iter()
            .all(|n| keys(n) == 4)),
        "4 nodes did not converge: {:?}",
        nodes.iter().map(keys).collect::<Vec<_>>()
    );
    // The overlay's links only (at most overlay/active-max, no second
    // link between a pair), and every node heard every other.
    assert!(wait_until(Duration::from_secs(5), || nodes
        .iter()
        .all(overlay_only)));
    std::thread::sleep(Duration::from_millis(500));
    for n in &nodes {
        assert!(overlay_only(n), "{:?}", n.stats());
    }

    let late = discovering("late", args);
    late.publish("key/late", "late value").unwrap();
    nodes.push(late);
    assert!(
        wait_until(Duration::from_secs(20), || nodes
            .iter()
            .all(|n| keys(n) == 5)),
        "the late node was not found: {:?}",
        nodes.iter().map(keys).collect::<Vec<_>>()
    );
    // The late node may have everything before it heard every beacon:
    // give it a few intervals.
    assert!(wait_until(Duration::from_secs(5), || {
        nodes
            .iter()
            .all(|n| overlay_only(n) && stat(n, "discovery-peers") == 4)
    }));
    for n in &nodes {
        assert_eq!(n.get("key/late").unwrap().as_deref(), Some("late value"));
        assert!(overlay_only(n), "{:?}", n.stats());
        assert_eq!(stat(n, "discovery-peers"), 4, "{:?}", n.stats());
    }
}

/// Every connection of the node is one of its overlay links, and it has
/// between one and `overlay/active-max` (5) of them.
fn overlay_only(n: &Node) -> bool {
    let active = stat(n, "overlay-active");
    (1..=5).contains(&active) && connections(n) == active
}

#[test]
fn sealed_namespace_broadcast_nodes_find_each_other_and_converge() {
    const T: &str = "sealed_namespace_broadcast_nodes_find_each_other_and_converge";
    if inside(T).is_some() {
        return converge_on_one_host(&["interface=lo", "interval=100", "quiet-interval=0"]);
    }
    in_sealed(T);
}

#[test]
fn sealed_namespace_multicast_nodes_find_each_other_and_converge() {
    const T: &str = "sealed_namespace_multicast_nodes_find_each_other_and_converge";
    if inside(T).is_some() {
        return converge_on_one_host(&[
            "interface=lo",
            "interval=100",
            "quiet-interval=0",
            "group=239.192.77.1",
        ]);
    }
    in_sealed(T);
}

#[test]
fn sealed_namespace_wildcard_interface_uses_limited_broadcast() {
    // `*` sends to 255.255.255.255: here only inside the namespace, where
    // the default route is lo.
    const T: &str = "sealed_namespace_wildcard_interface_uses_limited_broadcast";
    if inside(T).is_some() {
        return converge_on_one_host(&["interface=*", "interval=100", "quiet-interval=0"]);
    }
    in_sealed(T);
}

#[test]
fn sealed_namespace_two_clusters_on_one_lan_stay_apart() {
    const T: &str = "sealed_namespace_two_clusters_on_one_lan_stay_apart";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    let node = |name: &str, cluster: &str| {
        let n = Node::new(name).unwrap();
        n.send(&["SET", "cluster/name", cluster]).unwrap();
        n.send(&["DISCOVER", "interface=lo", "interval=100"])
            .unwrap();
        n
    };
    let a: Vec<Node> = (0..3).map(|i| node(&format!("a{i}"), "alpha")).collect();
    let b: Vec<Node> = (0..3).map(|i| node(&format!("b{i}"), "beta")).collect();
    a[0].publish("owner", "alpha").unwrap();
    b[0].publish("owner", "beta").unwrap();
    let holds = |n: &Node, v: &str| n.get("owner").unwrap().as_deref() == Some(v);
    assert!(wait_until(Duration::from_secs(20), || {
        a.iter().all(|n| holds(n, "alpha")) && b.iter().all(|n| holds(n, "beta"))
    }));
    std::thread::sleep(Duration::from_millis(500));
    for n in a.iter().chain(&b) {
        // Each heard the other cluster's beacons and took none of them.
        assert!(stat(n, "discovery-other-cluster") > 0, "{:?}", n.stats());
        assert_eq!(stat(n, "discovery-peers"), 2, "{:?}", n.stats());
        assert_eq!(stat(n, "cluster-refused"), 0, "nobody even dialled across");
    }
    assert!(a.iter().all(|n| holds(n, "alpha")));
}

#[test]
fn sealed_namespace_a_formed_network_beacons_quietly_and_still_finds_newcomers_at_once() {
    const T: &str =
        "sealed_namespace_a_formed_network_beacons_quietly_and_still_finds_newcomers_at_once";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    // The defaults: a beacon a second while alone, one in 30 s once linked.
    let nodes: Vec<Node> = (0..6)
        .map(|i| discovering(&format!("q{i}"), &["interface=lo"]))
        .collect();
    nodes[0].publish("here", "before").unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        nodes
            .iter()
            .all(|n| stat(n, "overlay-active") >= 1 && n.get("here").unwrap().is_some())
    }));
    // Quiet: over three seconds each node hears far fewer than the 3 x 5
    // beacons a second of loud neighbours would send.
    std::thread::sleep(Duration::from_millis(1_500));
    let before: u64 = nodes.iter().map(|n| stat(n, "discovery-beacons")).sum();
    std::thread::sleep(Duration::from_secs(3));
    let heard = nodes
        .iter()
        .map(|n| stat(n, "discovery-beacons"))
        .sum::<u64>()
        - before;
    assert!(heard <= 12, "{heard} beacons heard in 3 s by 6 quiet nodes");
    // A newcomer is answered, and joins within 2 s.
    let start = Instant::now();
    let late = discovering("late", &["interface=lo"]);
    assert!(
        wait_until(Duration::from_secs(2), || stat(&late, "overlay-active")
            >= 1),
        "the newcomer found nobody: {:?}",
        late.stats()
    );
    let took = start.elapsed();
    assert!(wait_until(Duration::from_secs(5), || late
        .get("here")
        .unwrap()
        .is_some()));
    let answers: u64 = nodes.iter().map(|n| stat(n, "discovery-answers")).sum();
    assert!(answers >= 1, "somebody answered it");
    println!("newcomer joined in {took:?}; {answers} answers");
}

#[test]
fn sealed_namespace_forty_eight_nodes_form_an_overlay_by_discovery_alone() {
    const T: &str = "sealed_namespace_forty_eight_nodes_form_an_overlay_by_discovery_alone";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    let n = 48;
    let nodes: Vec<Node> = (0..n)
        .map(|i| discovering(&format!("d{i}"), &["interface=lo", "interval=200"]))
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || nodes
            .iter()
            .all(|x| stat(x, "overlay-active") >= 1)),
        "not every node found the overlay"
    );
    // A few links each, never the mesh discovery used to make.
    for x in &nodes {
        assert!(stat(x, "overlay-active") <= 5, "{:?}", x.stats());
        assert!(connections(x) <= 8, "{:?}", x.stats());
    }
    // Writes at random nodes, as fast as the application can: every node
    // gets every one, at a few frames per node per write.
    let frames_before: u64 = nodes.iter().map(|x| stat(x, "frames-out")).sum();
    let writes = 200;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let start = Instant::now();
    for w in 0..writes {
        let at = (rng.next() % n as u64) as usize;
        nodes[at].publish(&format!("w{w}"), "v").unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(10), || nodes.iter().all(|x| x
            .keys("w")
            .unwrap()
            .len()
            == writes)),
        "not every write everywhere"
    );
    let took = start.elapsed();
    let frames: u64 = nodes.iter().map(|x| stat(x, "frames-out")).sum::<u64>() - frames_before;
    let per = frames as f64 / (n * writes) as f64;
    println!(
        "{n} nodes, {writes} writes: everywhere in {took:?}, {per:.2} frames per node per write"
    );
    assert!(per < 3.0, "{per:.2} frames per node per write");
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_and_floods_are_ignored_without_harm() {
    const T: &str = "garbage_and_floods_are_ignored_without_harm";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    let a = discovering(
        "a",
        &[
            "interface=lo",
            "interval=100",
            "max-peers=16",
            "dials-per-sec=5",
            "expiry=1500",
        ],
    );
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.set_broadcast(true).unwrap();
    let to = ("127.255.255.255", PORT);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut garbage = 0u64;
    for i in 0..3_000 {
        let len = (rng.next() % 300) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match i % 4 {
            // Truncated or damaged beacons.
            0 => data = frame::encode(7000, rng.next() | 1)[..(i / 4) % frame::LEN].to_vec(),
            1 => {
                let mut b = frame::encode(0, 5).to_vec();
                b[3] = (rng.next() % 2) as u8; // version 0 or port 0
                data = b;
            }
            2 => data.splice(0..0, b"ZRE\x01".iter().copied()).for_each(drop),
            _ => {}
        }
        tx.send_to(&data, to).unwrap();
        garbage += 1;
        if i % 200 == 0 {
            std::thread::sleep(Duration::from_millis(5)); // let it drain
        }
    }
    // A flood of valid beacons from 2000 made-up nodes (with high ids, so
    // that `a` is the one to dial), at ports where nothing listens.
    let start = Instant::now();
    for id in 2..2_002u64 {
        tx.send_to(&frame::encode(20_000 + id as u16, u64::MAX - id), to)
            .unwrap();
        if id % 200 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let elapsed = start.elapsed().as_secs() + 1;
    assert!(
        stat(&a, "discovery-rejected") >= garbage / 2,
        "{:?}",
        a.stats()
    );
    assert!(stat(&a, "discovery-peers") <= 16, "{:?}", a.stats());
    assert!(stat(&a, "discovery-refused") > 0, "{:?}", a.stats());
    assert!(
        stat(&a, "discovery-dials") <= 5 + 5 * elapsed,
        "dials not rate limited: {:?}",
        a.stats()
    );
    // Damaged beacons of version 5 (the advertised endpoint): cut short,
    // an endpoint that is not one or names another port, and oversize
    // datagrams. Each is refused and counted; none is tracked.
    let (rejected, peers) = (stat(&a, "discovery-rejected"), stat(&a, "discovery-peers"));
    let good = frame::encode_advertised(7000, 77, None, "", 77, "tcp://10.1.2.3:7000");
    for i in 0..300usize {
        let bad = match i % 4 {
            0 => good[..56 + i % (good.len() - 56)].to_vec(),
            1 => {
                let mut b = good.clone();
                let n = b.len();
                b[n - 1] = b'1';
                b
            }
            2 => {
                let mut b = good[..56].to_vec();
                b.push(9);
                b.extend_from_slice(b"tcp://*:0");
                b
            }
            _ => {
                let mut b = good.clone();
                b.resize(frame::MAX_DATAGRAM + 1 + i, b'x');
                b
            }
        };
        tx.send_to(&bad, to).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || stat(&a, "discovery-rejected")
            >= rejected + 300),
        "{:?}",
        a.stats()
    );
    assert!(stat(&a, "discovery-peers") <= peers, "{:?}", a.stats());
    // The node still works: once the made-up peers expire, a real one is
    // found and they converge.
    a.publish("from/a", "1").unwrap();
    let b = discovering("b", &["interface=lo", "interval=100"]);
    b.publish("from/b", "2").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || a.keys("").unwrap().len() == 2
            && b.keys("").unwrap().len() == 2),
        "a {:?} b {:?}",
        a.stats(),
        b.stats()
    );
}

/// One host of a LAN test: a node that discovers on eth0, publishes its
/// key, waits for every host's key, says so in `dir`, and stays until
/// every host has said so.
fn lan_host(role: &str, args: &[&str], hosts: usize) {
    let dir = std::path::PathBuf::from(std::env::var("ZG_DIR").unwrap());
    let node = discovering(&format!("host{role}"), args);
    node.publish(&format!("host/{role}"), role).unwrap();
    let converged = wait_until(Duration::from_secs(30), || {
        node.keys("").unwrap().len() == hosts
    });
    assert!(
        converged,
        "host {role} has {:?} {:?}",
        node.keys(""),
        node.stats()
    );
    // One link per other host (tuples may have come by a relay first),
    // and no more.
    let want = hosts as u64 - 1;
    wait_until(Duration::from_secs(10), || connections(&node) == want);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(connections(&node), want, "{:?}", node.stats());
    std::fs::write(dir.join(format!("done-{role}")), b"").unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        (0..hosts).all(|i| dir.join(format!("done-{i}")).exists())
    }));
    std::thread::sleep(Duration::from_millis(300));
}

/// Three hosts on a bridge; the third joins late.
fn run_lan(test: &str) {
    let lan = match Lan::new(3) {
        Ok(l) => l,
        Err(why) => return skip(&why),
    };
    let dir = netns::temp_dir("lan");
    let dir_s = dir.to_string_lossy().into_owned();
    let spawn = |i: usize| {
        let c = lan.hosts[i].test_command(test, &i.to_string(), &[("ZG_DIR", &dir_s)]);
        std::thread::spawn(move || run_bounded(c, Duration::from_secs(90)))
    };
    let first: Vec<_> = (0..2).map(spawn).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let late = spawn(2);
    for (i, h) in first.into_iter().chain([late]).enumerate() {
        assert_passed(&format!("{test} host {i}"), &h.join().unwrap());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn three_hosts_on_a_bridge_discover_by_broadcast() {
    const T: &str = "three_hosts_on_a_bridge_discover_by_broadcast";
    match inside(T) {
        Some(role) => lan_host(&role, &["interface=eth0", "interval=100"], 3),
        None => run_lan(T),
    }
}

#[test]
fn three_hosts_on_a_bridge_discover_by_multicast() {
    const T: &str = "three_hosts_on_a_bridge_discover_by_multicast";
    match inside(T) {
        Some(role) => lan_host(
            &role,
            &["interface=eth0", "interval=100", "group=239.77.0.1"],
            3,
        ),
        None => run_lan(T),
    }
}

#[test]
fn three_hosts_on_a_bridge_discover_by_ipv6_multicast() {
    const T: &str = "three_hosts_on_a_bridge_discover_by_ipv6_multicast";
    match inside(T) {
        Some(role) => lan_host(&role, &["interface=eth0", "interval=100", "ipv6=1"], 3),
        None => run_lan(T),
    }
}

#[test]
fn typed_discover_reports_where_it_beacons() {
    const T: &str = "typed_discover_reports_where_it_beacons";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    let node = Node::new("typed").unwrap();
    let options = DiscoverOptions {
        interface: Some("lo".into()),
        interval_ms: 100,
        ..DiscoverOptions::default()
    };
    let (host, port) = node.discover(&options).unwrap();
    assert_eq!(host, "127.0.0.1");
    assert_eq!(node.port().unwrap(), port);
    // No such interface: an error that says so.
    let other = Node::new("other").unwrap();
    let err = other
        .send(&["DISCOVER", "interface=nosuch0"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no usable interface"), "{err}");
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Our Beacon and a real CZMQ zbeacon hear each other.
#[test]
fn czmq_zbeacon_interop_both_ways() {
    const T: &str = "czmq_zbeacon_interop_both_ways";
    if inside(T).is_none() {
        if !czmq::require_czmq() {
            return;
        }
        let driver = czmq::build_c_tool("zbeacon_node");
        let ns = match Netns::sealed() {
            Ok(ns) => ns,
            Err(why) => return skip(&why),
        };
        let c = ns.test_command(T, "", &[("ZG_DRIVER", &driver.to_string_lossy())]);
        return assert_passed(T, &run_bounded(c, Duration::from_secs(60)));
    }
    let driver = std::env::var("ZG_DRIVER").unwrap();
    let beacon = Beacon::with_options(UdpOptions {
        interface: Some("lo".into()),
        ..UdpOptions::default()
    })
    .unwrap();
    assert_eq!(beacon.configure(PORT).unwrap(), "127.0.0.1");
    beacon
        .publish(b"RUST\x00beacon", Duration::from_millis(100))
        .unwrap();
    beacon.subscribe(b"CZMQ").unwrap();
    // CZMQ skips loopback interfaces: `*` (INADDR_ANY, 255.255.255.255),
    // which in this namespace routes to lo.
    let child = std::process::Command::new(&driver)
        .args([
            &PORT.to_string(),
            "2500",
            &hex(b"CZMQ\xffbeacon"),
            &hex(b"RUST"),
        ])
        .env("ZSYS_INTERFACE", "*")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let got = beacon.recv_beacon(Duration::from_secs(10)).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got = got.expect("no beacon from CZMQ");
    assert_eq!(got.address, "127.0.0.1");
    assert_eq!(got.data, b"CZMQ\xffbeacon");
    assert!(stdout.contains("HOSTNAME *"), "{stdout}");
    assert!(
        stdout.contains(&format!("BEACON 127.0.0.1 {}", hex(b"RUST\x00beacon"))),
        "CZMQ did not hear us:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // CZMQ filters its own beacons by content; so do we.
    let lines: BTreeSet<&str> = stdout.lines().collect();
    assert!(!lines.iter().any(|l| l.contains(&hex(b"CZMQ\xffbeacon"))));
}

/// On a bridged LAN: CZMQ on one host's eth0, our Beacon on another's.
#[test]
fn czmq_zbeacon_interop_across_hosts() {
    const T: &str = "czmq_zbeacon_interop_across_hosts";
    if let Some(_role) = inside(T) {
        let beacon = Beacon::with_options(UdpOptions {
            interface: Some("eth0".into()),
            ..UdpOptions::default()
        })
        .unwrap();
        assert_eq!(beacon.configure(PORT).unwrap(), "10.77.0.2");
        beacon
            .publish(b"RUST-LAN", Duration::from_millis(100))
            .unwrap();
        beacon.subscribe(b"").unwrap();
        let got = beacon
            .recv_beacon(Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.address.as_str(), &got.data[..]),
            ("10.77.0.1", &b"CZMQ-LAN"[..])
        );
        std::thread::sleep(Duration::from_millis(1500));
        return;
    }
    if !czmq::require_czmq() {
        return;
    }
    let driver = czmq::build_c_tool("zbeacon_node");
    let lan = match Lan::new(2) {
        Ok(l) => l,
        Err(why) => return skip(&why),
    };
    let ours = {
        let c = lan.hosts[1].test_command(T, "rust", &[]);
        std::thread::spawn(move || run_bounded(c, Duration::from_secs(60)))
    };
    let theirs = run_bounded(
        lan.hosts[0].command(
            &driver.to_string_lossy(),
            &[&PORT.to_string(), "3000", &hex(b"CZMQ-LAN"), &hex(b"RUST")],
            &[("ZSYS_INTERFACE", "eth0")],
        ),
        Duration::from_secs(30),
    );
    assert_passed(T, &ours.join().unwrap());
    let stdout = String::from_utf8_lossy(&theirs.stdout);
    assert!(stdout.contains("HOSTNAME 10.77.0.1"), "{stdout}");
    assert!(
        stdout.contains(&format!("BEACON 10.77.0.2 {}", hex(b"RUST-LAN"))),
        "{stdout}"
    );
}

/// The path of an example binary, built if `cargo test` did not build it
/// (it does with `--all-targets`).
fn example(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|d| d.join("examples").join(name))
        .unwrap();
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", name, "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build example {name}");
    }
    path.to_string_lossy().into_owned()
}

fn spawn_in(
    ns: &Netns,
    program: &str,
    args: &[&str],
) -> std::thread::JoinHandle<std::process::Output> {
    let c = ns.command(program, args, &[]);
    std::thread::spawn(move || run_bounded(c, Duration::from_secs(40)))
}

fn passed(what: &str, h: std::thread::JoinHandle<std::process::Output>) -> String {
    let out = h.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Each example, briefly, on loopback inside a sealed namespace.
#[test]
fn examples_run_inside_a_namespace() {
    let (service, registry, chat) = (example("service"), example("registry"), example("chat"));
    let ns = match Netns::sealed() {
        Ok(ns) => ns,
        Err(why) => return skip(&why),
    };
    let server = spawn_in(&ns, &service, &["serve", "--for", "4"]);
    std::thread::sleep(Duration::from_millis(300));
    let client = spawn_in(&ns, &service, &["hello", "--for", "4"]);
    let said = passed("service hello", client);
    assert!(said.contains("service replied: hello, client"), "{said}");
    let heard = passed("service serve", server);
    assert!(heard.contains("says: hello from client"), "{heard}");

    let ids = ["a", "b", "c"];
    let nodes: Vec<_> = ids
        .iter()
        .map(|id| {
            let others: Vec<&str> = ids.iter().copied().filter(|o| o != id).collect();
            spawn_in(
                &ns,
                &registry,
                &["--id", id, "--expect", &others.join(","), "--for", "20"],
            )
        })
        .collect();
    for (id, h) in ids.iter().zip(nodes) {
        let out = passed(&format!("registry {id}"), h);
        assert_eq!(out.matches("lookup(").count(), 2, "{out}");
        assert!(out.contains("tcp://127.0.0.1:"), "{out}");
    }

    let alice = spawn_in(
        &ns,
        &chat,
        &[
            "--nick", "alice", "--say", "hi bob", "--until", "hi alice", "--for", "15",
        ],
    );
    let bob = spawn_in(
        &ns,
        &chat,
        &[
            "--nick", "bob", "--say", "hi alice", "--until", "hi bob", "--for", "15",
        ],
    );
    assert!(passed("chat alice", alice).contains("bob@127.0.0.1: hi alice"));
    assert!(passed("chat bob", bob).contains("alice@127.0.0.1: hi bob"));
}

/// zbeacon's semantics: nothing before SUBSCRIBE, prefix filter, own
/// beacons dropped, SILENCE, UNSUBSCRIBE, CONFIGURE's reply on the pipe.
#[test]
fn beacon_actor_behaves_like_zbeacon() {
    const T: &str = "beacon_actor_behaves_like_zbeacon";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    let lo = || {
        Beacon::with_options(UdpOptions {
            interface: Some("lo".into()),
            ..UdpOptions::default()
        })
        .unwrap()
    };
    let (a, b) = (lo(), lo());
    // CONFIGURE as a string command: the hostname comes on the pipe.
    a.send(&["CONFIGURE", "9999"]).unwrap();
    assert_eq!(
        a.recv_timeout(Duration::from_secs(5)).unwrap(),
        Some(vec![b"127.0.0.1".to_vec()])
    );
    assert_eq!(b.configure(9999).unwrap(), "127.0.0.1");
    a.send(&[b"PUBLISH".as_slice(), b"HELLO-A\x00\xff", b"50"])
        .unwrap();
    // No SUBSCRIBE yet: nothing.
    assert_eq!(b.recv_timeout(Duration::from_millis(300)).unwrap(), None);
    b.subscribe(b"HELLO").unwrap();
    let got = b.recv_beacon(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(got.address, "127.0.0.1");
    assert_eq!(got.data, b"HELLO-A\x00\xff");
    // Its own beacon is not delivered to A.
    a.subscribe(b"").unwrap();
    assert_eq!(a.recv_timeout(Duration::from_millis(300)).unwrap(), None);
    // A filter that does not match.
    b.subscribe(b"OTHER").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    while b.try_recv().unwrap().is_some() {}
    assert_eq!(b.recv_timeout(Duration::from_millis(300)).unwrap(), None);
    // SILENCE stops it.
    b.subscribe(b"").unwrap();
    assert!(b.recv_beacon(Duration::from_secs(5)).unwrap().is_some());
    a.silence().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    while b.try_recv().unwrap().is_some() {}
    assert_eq!(b.recv_timeout(Duration::from_millis(300)).unwrap(), None);
    // UNSUBSCRIBE: nothing more, even when A speaks again.
    a.publish(b"again", Duration::from_millis(50)).unwrap();
    assert!(b.recv_beacon(Duration::from_secs(5)).unwrap().is_some());
    b.unsubscribe().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    while b.try_recv().unwrap().is_some() {}
    assert_eq!(b.recv_timeout(Duration::from_millis(300)).unwrap(), None);
    // Bad commands say why; $TERM ends it.
    assert!(b.send(&["PUBLISH"]).is_err());
    b.send(&["$TERM"]).unwrap();
    assert!(b.recv().is_err());
}
