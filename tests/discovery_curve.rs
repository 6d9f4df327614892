//! Discovery on secured networks: a node with a CURVE key pair beacons its
//! public key and dials the peers it finds as CURVE clients of theirs; it
//! never speaks plain to a peer it discovered, and `CURVE ALLOW` lists
//! decide which discovered peers it dials. Every test runs inside a sealed
//! network namespace it creates (see tests/support/netns.rs).

mod common;
#[path = "support/netns.rs"]
mod netns;

use std::net::UdpSocket;
use std::time::Duration;

use common::wait_until;
use netns::cmd::run_bounded;
use netns::{assert_passed, inside, skip, Netns};
use zgossip::beacon::frame;
use zgossip::Node;

const ARGS: [&str; 3] = ["DISCOVER", "interface=lo", "interval=50"];

fn stat(n: &Node, name: &str) -> u64 {
    n.stats().unwrap().get(name).copied().unwrap_or(0)
}

fn keys(n: &Node) -> Vec<String> {
    let mut k = n.keys("").unwrap();
    k.sort();
    k
}

/// A node with a key pair of its own; returns it and its public key.
fn secured(name: &str) -> (Node, String) {
    let node = Node::new(name).unwrap();
    let (public, secret) = zgossip::certs::keypair().unwrap();
    node.send(&["SET PUBLICKEY", &public]).unwrap();
    node.send(&["SET SECRETKEY", &secret]).unwrap();
    (node, public)
}

fn discover(node: &Node) {
    node.send(&ARGS).unwrap();
}

fn in_sealed(test: &str) {
    let ns = match Netns::sealed() {
        Ok(ns) => ns,
        Err(why) => return skip(&why),
    };
    let out = run_bounded(ns.test_command(test, "", &[]), Duration::from_secs(120));
    assert_passed(test, &out);
}

/// Issue 21's scenario, twenty times (node ids are random, so each order
/// of dialling comes up): a secured pair and a plain pair on one segment.
/// Each pair converges (discovery works); no tuple ever crosses between
/// the secured and the plain nodes, in either direction.
#[test]
fn a_secured_node_never_links_with_a_plain_one() {
    const T: &str = "a_secured_node_never_links_with_a_plain_one";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    for run in 0..20 {
        let (a, _) = secured(&format!("a{run}"));
        let (d, _) = secured(&format!("d{run}"));
        let b = Node::new(&format!("b{run}")).unwrap();
        let c = Node::new(&format!("c{run}")).unwrap();
        for (n, key) in [
            (&a, "secret-a"),
            (&d, "secret-d"),
            (&b, "evil-b"),
            (&c, "evil-c"),
        ] {
            discover(n);
            n.publish(key, "x").unwrap();
        }
        let secured_pair = ["secret-a", "secret-d"];
        let plain_pair = ["evil-b", "evil-c"];
        assert!(
            wait_until(Duration::from_secs(10), || {
                keys(&a) == secured_pair
                    && keys(&d) == secured_pair
                    && keys(&b) == plain_pair
                    && keys(&c) == plain_pair
            }),
            "run {run}: the pairs did not converge: a {:?} d {:?} b {:?} c {:?}",
            keys(&a),
            keys(&d),
            keys(&b),
            keys(&c)
        );
        // Several more beacon intervals for a leak to show.
        std::thread::sleep(Duration::from_millis(250));
        for n in [&a, &d] {
            assert_eq!(
                keys(n),
                secured_pair,
                "run {run}: {} holds {:?}",
                n.name(),
                keys(n)
            );
            assert!(stat(n, "discovery-ignored-plain") > 0, "{:?}", n.stats());
            assert_eq!(stat(n, "plain-dials"), 0, "{:?}", n.stats());
            assert_eq!(stat(n, "connections"), 1, "{:?}", n.stats());
        }
        for n in [&b, &c] {
            assert_eq!(
                keys(n),
                plain_pair,
                "run {run}: {} holds {:?}",
                n.name(),
                keys(n)
            );
            assert!(stat(n, "discovery-ignored-curve") > 0, "{:?}", n.stats());
            assert_eq!(stat(n, "connections"), 1, "{:?}", n.stats());
        }
    }
}

/// Ten secured nodes that allow each other's keys converge by DISCOVER
/// alone; a plain node and a secured node whose key is not allowed hold
/// nothing of theirs, and the ten hold nothing of the two.
#[test]
fn ten_secured_nodes_with_allow_lists_converge_and_keep_outsiders_out() {
    const T: &str = "ten_secured_nodes_with_allow_lists_converge_and_keep_outsiders_out";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    let members: Vec<(Node, String)> = (0..10).map(|i| secured(&format!("m{i}"))).collect();
    let allowed: Vec<&str> = members.iter().map(|(_, k)| k.as_str()).collect();
    let (outsider, _) = secured("outsider");
    let plain = Node::new("plain").unwrap();
    for (i, (m, _)) in members.iter().enumerate() {
        let mut allow = vec!["CURVE ALLOW"];
        allow.extend_from_slice(&allowed);
        m.send(&allow).unwrap();
        discover(m);
        m.publish(&format!("member/{i}"), "in").unwrap();
    }
    discover(&outsider);
    outsider.publish("outsider", "x").unwrap();
    discover(&plain);
    plain.publish("plain", "x").unwrap();
    let all: Vec<String> = {
        let mut v: Vec<String> = (0..10).map(|i| format!("member/{i}")).collect();
        v.sort();
        v
    };
    assert!(
        wait_until(Duration::from_secs(20), || members
            .iter()
            .all(|(m, _)| keys(m) == all)),
        "the ten did not converge: {:?}",
        members
            .iter()
            .map(|(m, _)| keys(m).len())
            .collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_millis(300));
    for (m, _) in &members {
        assert_eq!(keys(m), all, "{} holds {:?}", m.name(), keys(m));
        assert!(stat(m, "discovery-not-allowed") > 0, "{:?}", m.stats());
        assert!(stat(m, "discovery-ignored-plain") > 0, "{:?}", m.stats());
    }
    assert_eq!(keys(&outsider), ["outsider"]);
    assert_eq!(keys(&plain), ["plain"]);
}

/// Beacons of version 2 that are cut short, too long, or carry a key of
/// zeros are ignored and counted; a well-formed one from a made-up node is
/// dialled once as a CURVE client (the handshake fails: no one holds the
/// key) and nothing is learnt from it.
#[test]
fn damaged_version_2_beacons_are_ignored_and_counted() {
    const T: &str = "damaged_version_2_beacons_are_ignored_and_counted";
    if inside(T).is_none() {
        return in_sealed(T);
    }
    let (node, _) = secured("n");
    node.send(&["DISCOVER", "interface=lo", "interval=50", "dials-per-sec=1"])
        .unwrap();
    node.publish("mine", "1").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.set_broadcast(true).unwrap();
    let to = ("127.255.255.255", 5675);
    let good = frame::encode_curve(1, u64::MAX - 1, &[7u8; 32]);
    let mut sent = 0;
    for n in frame::LEN + 1..frame::LEN_CURVE {
        tx.send_to(&good[..n], to).unwrap();
        sent += 1;
    }
    let mut long = good.to_vec();
    long.extend_from_slice(&[0u8; 100]);
    tx.send_to(&long, to).unwrap();
    tx.send_to(&frame::encode_curve(1, u64::MAX - 2, &[0u8; 32]), to)
        .unwrap();
    sent += 2;
    assert!(
        wait_until(Duration::from_secs(5), || stat(&node, "discovery-rejected")
            >= sent),
        "{:?}",
        node.stats()
    );
    assert_eq!(stat(&node, "discovery-peers"), 0);
    assert_eq!(stat(&node, "discovery-dials"), 0);
    // A forged, well-formed beacon: one dial, then nothing learnt.
    for _ in 0..20 {
        tx.send_to(&good, to).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(wait_until(Duration::from_secs(5), || stat(
        &node,
        "discovery-dials"
    ) == 1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stat(&node, "discovery-dials"), 1, "{:?}", node.stats());
    assert_eq!(keys(&node), ["mine"]);
}

/// A secured node that is told to CONNECT without a server key dials in
/// plain (mixed networks with CZMQ need it), and counts it.
#[test]
fn an_explicit_plain_connect_from_a_secured_node_is_counted() {
    let plain = Node::new("plain").unwrap();
    let port = plain.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    plain.publish("from-plain", "1").unwrap();
    let (node, _) = secured("secured");
    node.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || node
        .get("from-plain")
        .unwrap()
        .is_some()));
    assert_eq!(stat(&node, "plain-dials"), 1, "{:?}", node.stats());
}
