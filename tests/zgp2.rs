//! ZGP/2 between our nodes over real tcp loopback: versions,
//! TTL, deletes, delta sync; and what plain peers see.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use zgossip::wire::zmtp::SocketType;
use zgossip::Node;

const T: Duration = Duration::from_secs(10);

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tcp_node(name: &str) -> (Node, String) {
    let n = Node::new(name).unwrap();
    let port = n.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    (n, format!("tcp://127.0.0.1:{port}"))
}

#[test]
fn concurrent_writes_converge_on_every_node() {
    // A ring of five nodes; all write the same key at once.
    let nodes: Vec<(Node, String)> = (0..5).map(|i| tcp_node(&format!("r{i}"))).collect();
    for i in 0..5 {
        nodes[i].0.connect(&nodes[(i + 1) % 5].1).unwrap();
    }
    nodes[0].0.publish("warmup", "1").unwrap();
    wait_for("warm-up", || {
        nodes.iter().all(|(n, _)| n.status().unwrap() == 1)
    });
    std::thread::scope(|s| {
        for (i, (n, _)) in nodes.iter().enumerate() {
            s.spawn(move || n.publish("leader", &format!("r{i}")).unwrap());
        }
    });
    wait_for("one value everywhere", || {
        let values: Vec<Option<String>> = nodes
            .iter()
            .map(|(n, _)| n.get("leader").unwrap())
            .collect();
        values[0].is_some() && values.iter().all(|v| *v == values[0])
    });
    // And it stays that way (no flapping).
    let settled = nodes[0].0.get("leader").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for (n, _) in &nodes {
        assert_eq!(n.get("leader").unwrap(), settled);
    }
}

#[test]
fn ttl_tuple_expires_on_every_node_and_apps_are_told() {
    let (a, ea) = tcp_node("a");
    let (b, eb) = tcp_node("b");
    let c = Node::new("c").unwrap();
    b.connect(&ea).unwrap();
    c.connect(&eb).unwrap();
    a.publish_ttl("presence/a", "here", Duration::from_millis(1500))
        .unwrap();
    wait_for("the tuple everywhere", || {
        [&a, &b, &c]
            .iter()
            .all(|n| n.get("presence/a").unwrap().is_some())
    });
    let published = Instant::now();
    for n in [&a, &b, &c] {
        let deadline = Instant::now() + T;
        loop {
            let m = n
                .recv_timeout(deadline - Instant::now())
                .unwrap()
                .expect("EXPIRE");
            if m[0] == "EXPIRE" {
                assert_eq!(m, ["EXPIRE", "presence/a"]);
                break;
            }
        }
        assert_eq!(n.get("presence/a").unwrap(), None);
        assert_eq!(n.status().unwrap(), 0);
    }
    assert!(published.elapsed() < Duration::from_secs(3));
}

#[test]
fn republish_refreshes_a_ttl() {
    let (a, ea) = tcp_node("a");
    let b = Node::new("b").unwrap();
    b.connect(&ea).unwrap();
    a.publish_ttl("k", "v", Duration::from_millis(800)).unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        a.publish_ttl("k", "v", Duration::from_millis(800)).unwrap();
    }
    wait_for("b holds k", || b.get("k").unwrap().is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.get("k").unwrap().as_deref(),
        Some("v"),
        "refreshed, still alive"
    );
    wait_for("k expired at b", || b.get("k").unwrap().is_none());
}

#[test]
fn delete_spreads_and_every_app_is_told() {
    let (a, ea) = tcp_node("a");
    let b = Node::new("b").unwrap();
    let c = Node::new("c").unwrap();
    b.connect(&ea).unwrap();
    c.connect(&ea).unwrap();
    b.publish("gone", "soon").unwrap();
    wait_for("everywhere", || c.get("gone").unwrap().is_some());
    c.unpublish("gone").unwrap();
    for n in [&a, &b, &c] {
        let deadline = Instant::now() + T;
        loop {
            let m = n
                .recv_timeout(deadline - Instant::now())
                .unwrap()
                .expect("DELETE");
            if m[0] == "DELETE" {
                assert_eq!(m, ["DELETE", "gone"]);
                break;
            }
        }
        assert_eq!(n.get("gone").unwrap(), None);
        assert_eq!(n.keys("").unwrap(), Vec::<String>::new());
    }
}

#[test]
fn deleted_tuple_does_not_come_back_from_a_node_that_was_away() {
    // z talks only to x. x goes away; the key is deleted at y; a new x
    // comes up at the same endpoint, linked to y. z rejoins holding the old
    // value: it loses against the tombstone, and the key stays deleted.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ex = format!("tcp://127.0.0.1:{port}");
    let (y, ey) = tcp_node("y");
    let x = Node::new("x").unwrap();
    x.send(&["BIND", ex.as_str()]).unwrap();
    x.connect(&ey).unwrap();
    let z = Node::new("z").unwrap();
    z.connect(&ex).unwrap();
    z.publish("svc", "old-address").unwrap();
    wait_for("y holds svc", || y.get("svc").unwrap().is_some());
    drop(x);
    y.unpublish("svc").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(z.get("svc").unwrap().as_deref(), Some("old-address"));
    let x2 = Node::new("x2").unwrap();
    x2.send(&["BIND", ex.as_str()]).unwrap();
    x2.connect(&ey).unwrap();
    wait_for("z learns of the delete", || z.get("svc").unwrap().is_none());
    std::thread::sleep(Duration::from_millis(500));
    for n in [&y, &x2, &z] {
        assert_eq!(n.get("svc").unwrap(), None);
    }
}

/// A TCP relay that can be cut and restored, standing in for a network.
struct Relay {
    endpoint: String,
    up: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn new(target: &str) -> Relay {
        let target = target.strip_prefix("tcp://").unwrap().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (up2, streams2) = (up.clone(), streams.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { return };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the dialler sees a reset
                }
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut g = streams2.lock().unwrap();
                g.push(inbound.try_clone().unwrap());
                g.push(outbound.try_clone().unwrap());
                drop(g);
                for (mut from, mut to) in [
                    (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                    (outbound, inbound),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            endpoint,
            up,
            streams,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn rejoin_moves_only_the_missing_tuples() {
    const N: usize = 20_000;
    let (a, ea) = tcp_node("a");
    for i in 0..N {
        a.publish(&format!("key/{i:05}"), "v1").unwrap();
    }
    let relay = Relay::new(&ea);
    let b = Node::new("b").unwrap();
    b.connect(&relay.endpoint).unwrap();
    wait_for("b holds every tuple", || b.status().unwrap() == N);
    relay.cut();
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        a.publish(&format!("key/{i:05}"), "v2").unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.get("key/00000").unwrap().as_deref(), Some("v1"));
    let sent_before = a.stats().unwrap()["sync-tuples-out"] + b.stats().unwrap()["sync-tuples-out"];
    relay.restore();
    wait_for("b catches up", || {
        (0..10).all(|i| b.get(&format!("key/{i:05}")).unwrap().as_deref() == Some("v2"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let moved =
        a.stats().unwrap()["sync-tuples-out"] + b.stats().unwrap()["sync-tuples-out"] - sent_before;
    eprintln!("rejoin after 10 missed updates of {N}: {moved} tuples moved");
    assert!(
        (10..=40).contains(&moved),
        "moved {moved} tuples, expected about 10"
    );
    assert_eq!(b.status().unwrap(), N);
}

#[test]
fn plain_peer_never_sees_zgp2_messages() {
    // A raw DEALER that did not announce X-ZGossip: HELLO gets plain
    // PUBLISHes (live tuples only), a delete is not sent to it, and a TTL
    // travels in the v1 ttl field.
    let (n, ep) = tcp_node("n");
    n.publish("live", "1").unwrap();
    n.publish("doomed", "2").unwrap();
    n.unpublish("doomed").unwrap();
    n.publish_ttl("brief", "3", Duration::from_secs(60))
        .unwrap();
    let mut p = RawPeer::connect(&ep, SocketType::Dealer);
    p.send(&zgossip::wire::gossip::Message::Hello);
    let mut got = Vec::new();
    while let Some(f) = p.recv_frame(Duration::from_millis(500)) {
        assert_eq!(f[3], 1, "only ZGP version 1 frames");
        let m = zgossip::wire::gossip::decode(&f).unwrap();
        if let zgossip::wire::gossip::Message::Publish { key, ttl, .. } = m {
            got.push((key.to_string(), ttl));
        }
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], ("live".to_string(), 0));
    assert_eq!(got[1].0, "brief");
    assert!(got[1].1 > 50_000 && got[1].1 <= 60_000, "{got:?}");
}

#[test]
fn get_keys_and_stats() {
    let n = Node::new("n").unwrap();
    n.publish("a/1", "x").unwrap();
    n.publish("a/2", "y").unwrap();
    n.publish("b/1", "z").unwrap();
    assert_eq!(n.get("a/2").unwrap().as_deref(), Some("y"));
    assert_eq!(n.get("nope").unwrap(), None);
    assert_eq!(n.keys("a/").unwrap(), ["a/1", "a/2"]);
    assert_eq!(n.keys("").unwrap().len(), 3);
    // The string forms, through the pipe in order.
    n.send(&["GET", "b/1"]).unwrap();
    n.send(&["GET", "nope"]).unwrap();
    n.send(&["KEYS", "b"]).unwrap();
    let replies: Vec<Vec<String>> = (0..6)
        .map(|_| n.recv_timeout(T).unwrap().unwrap())
        .collect();
    assert_eq!(replies[0][0], "DELIVER");
    assert_eq!(replies[3], ["VALUE", "b/1", "z"]);
    assert_eq!(replies[4], ["VALUE", "nope"]);
    assert_eq!(replies[5], ["KEYS", "b/1"]);
    let st = n.stats().unwrap();
    assert_eq!(st["tuples"], 3);
    assert_eq!(st["tombstones"], 0);
}

#[test]
fn publishes_racing_the_connection_arrive_in_order() {
    // Tuples published while the connection comes up travel partly by the
    // reconciliation and partly by forwarding; the hub must still deliver
    // them in publish order, as CZMQ's queueing DEALER does.
    for round in 0..5 {
        let hub = Node::new("hub").unwrap();
        let ep = format!("inproc://race-{}", unique());
        hub.send(&["BIND", ep.as_str()]).unwrap();
        let leaf = Node::new("leaf").unwrap();
        leaf.connect(&ep).unwrap();
        for i in 0..50 {
            leaf.publish(&format!("k{i:02}"), "v").unwrap();
            if i % 10 == round {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let got = deliveries(&hub, 50, T);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        let want: Vec<String> = (0..50).map(|i| format!("k{i:02}")).collect();
        assert_eq!(keys, want, "round {round}");
    }
}
