//! Interop with real CZMQ 4.2.1 zgossip nodes (Debian libczmq-dev), driven
//! through tests/czmq/czmq_node.c. Loopback only; every wait is bounded.

mod common;
#[path = "support/czmq.rs"]
mod czmq;

use std::time::{Duration, Instant};

use czmq::{require_czmq, CzmqNode};
use zgossip::Node;

const T: Duration = Duration::from_secs(10);

fn wait_ours(node: &Node, n: usize) {
    common::wait_status(node, n, T);
}

#[test]
fn czmq_node_connects_to_ours() {
    if !require_czmq() {
        return;
    }
    let ours = Node::new("ours").unwrap();
    let port = ours.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    ours.publish("ours-key", "ours-value").unwrap();
    let mut cz = CzmqNode::spawn("cz");
    cz.connect(&format!("tcp://127.0.0.1:{port}"));
    cz.publish("czmq-key", "czmq-value");
    assert_eq!(cz.wait_status(2, T), 2);
    wait_ours(&ours, 2);
    // Idle for longer than CZMQ's 1 s session timeout, then publish again
    // both ways: nothing is lost.
    std::thread::sleep(Duration::from_millis(2500));
    ours.publish("after-idle-ours", "1").unwrap();
    cz.publish("after-idle-czmq", "2");
    assert_eq!(cz.wait_status(4, T), 4);
    wait_ours(&ours, 4);
}

#[test]
fn ours_connects_to_czmq_node_and_survives_idleness() {
    if !require_czmq() {
        return;
    }
    let mut cz = CzmqNode::spawn("cz");
    cz.bind("tcp://127.0.0.1:*");
    let port = cz.port();
    cz.publish("czmq-key", "czmq-value");
    let ours = Node::new("ours").unwrap();
    ours.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    ours.publish("ours-key", "ours-value").unwrap();
    assert_eq!(cz.wait_status(2, T), 2);
    wait_ours(&ours, 2);
    let values = cz.drain_deliveries();
    assert!(values.contains(&("ours-key".to_string(), "ours-value".to_string())));
    // CZMQ forgets a session after 1 s of silence; our remote pings, so the
    // next tuple still arrives (real CZMQ remotes lose it here).
    std::thread::sleep(Duration::from_millis(2500));
    ours.publish("after-idle", "x").unwrap();
    assert_eq!(cz.wait_status(3, T), 3);
    cz.publish("czmq-after-idle", "y");
    wait_ours(&ours, 4);
}

#[test]
fn chain_czmq_ours_czmq_ours_delivers_everything_everywhere() {
    if !require_czmq() {
        return;
    }
    // c1 <- o1 <- c2 <- o2 : each node connects to the previous one.
    let mut c1 = CzmqNode::spawn("c1");
    c1.bind("tcp://127.0.0.1:*");
    let p1 = c1.port();
    let o1 = Node::new("o1").unwrap();
    let q1 = o1.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    o1.connect(&format!("tcp://127.0.0.1:{p1}")).unwrap();
    let mut c2 = CzmqNode::spawn("c2");
    c2.bind("tcp://127.0.0.1:*");
    let p2 = c2.port();
    c2.connect(&format!("tcp://127.0.0.1:{q1}"));
    let o2 = Node::new("o2").unwrap();
    o2.connect(&format!("tcp://127.0.0.1:{p2}")).unwrap();

    c1.publish("c1", "from c1");
    o1.publish("o1", "from o1").unwrap();
    c2.publish("c2", "from c2");
    o2.publish("o2", "from o2").unwrap();

    let deadline = Instant::now() + T;
    loop {
        let counts = [
            c1.status(),
            o1.status().unwrap(),
            c2.status(),
            o2.status().unwrap(),
        ];
        if counts == [4, 4, 4, 4] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "STATUS counts {counts:?}, want 4 each"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every node holds every value, as published.
    for (name, node) in [("o1", &o1), ("o2", &o2)] {
        for k in ["c1", "o1", "c2", "o2"] {
            node.send(&["GET", k]).unwrap();
            let reply = loop {
                let m = node.recv_timeout(T).unwrap().expect("GET reply");
                if m[0] == "VALUE" {
                    break m;
                }
            };
            assert_eq!(reply, ["VALUE", k, &format!("from {k}")], "at {name}");
        }
    }
}

#[test]
fn czmq_peer_gets_only_plain_zgp_and_keeps_serving() {
    if !require_czmq() {
        return;
    }
    // Deletes and TTLs do not exist for CZMQ: it must never see a ZGP/2
    // message (it would stop serving). After an UNPUBLISH and a TTL expiry
    // on our side, the CZMQ node still answers and still takes tuples.
    let mut cz = CzmqNode::spawn("cz");
    cz.bind("tcp://127.0.0.1:*");
    let port = cz.port();
    let ours = Node::new("ours").unwrap();
    ours.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    ours.publish("doomed", "x").unwrap();
    ours.send(&["PUBLISH", "short", "y", "200"]).unwrap();
    assert_eq!(cz.wait_status(2, T), 2);
    ours.send(&["UNPUBLISH", "doomed"]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    ours.publish("still-works", "z").unwrap();
    assert_eq!(cz.wait_status(3, T), 3);
    // A second connection to the CZMQ node works: it did not stop serving.
    let other = Node::new("other").unwrap();
    other.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    wait_ours(&other, 3);
    // Our node does not take the deleted or expired tuple back from CZMQ.
    assert_eq!(ours.status().unwrap(), 1);
}

/// A mixed network: an overlay of our nodes (JOIN), a CZMQ node on a
/// CONNECT link to one member and another CZMQ node that one member
/// CONNECTs to. Plain links are not in the tree: the CZMQ nodes get every
/// write, and their writes reach every overlay member.
#[test]
fn czmq_nodes_on_links_to_an_overlay_get_every_write_and_theirs_reach_everyone() {
    if !require_czmq() {
        return;
    }
    let mut ours = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..8 {
        let n = Node::new(&format!("o{i}")).unwrap();
        let port = n.bind("tcp://127.0.0.1:*").unwrap().unwrap();
        endpoints.push(format!("tcp://127.0.0.1:{port}"));
        if i > 0 {
            n.join(&endpoints[i / 2]).unwrap();
        }
        ours.push(n);
    }
    let mut in_cz = CzmqNode::spawn("in");
    in_cz.connect(&endpoints[5]);
    let mut out_cz = CzmqNode::spawn("out");
    out_cz.bind("tcp://127.0.0.1:*");
    let out_port = out_cz.port();
    ours[7]
        .connect(&format!("tcp://127.0.0.1:{out_port}"))
        .unwrap();
    for (i, n) in ours.iter().enumerate() {
        n.publish(&format!("ours-{i}"), "v").unwrap();
    }
    in_cz.publish("from-in", "czmq");
    out_cz.publish("from-out", "czmq");
    let total = ours.len() + 2;
    for n in &ours {
        wait_ours(n, total);
        assert_eq!(n.get("from-in").unwrap().as_deref(), Some("czmq"));
        assert_eq!(n.get("from-out").unwrap().as_deref(), Some("czmq"));
    }
    assert_eq!(in_cz.wait_status(total, T), total);
    assert_eq!(out_cz.wait_status(total, T), total);
    // And a write after the tree formed still reaches both.
    ours[2].publish("later", "v").unwrap();
    assert_eq!(in_cz.wait_status(total + 1, T), total + 1);
    assert_eq!(out_cz.wait_status(total + 1, T), total + 1);
}
