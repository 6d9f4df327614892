//! Proves the CZMQ harness against CZMQ itself: two real CZMQ 4.2.1
//! zgossip nodes on tcp loopback exchange their tuples.

#[path = "support/czmq.rs"]
mod czmq;

use std::time::{Duration, Instant};

use czmq::{require_czmq, CzmqNode};

#[test]
fn two_czmq_nodes_converge_over_tcp() {
    if !require_czmq() {
        return;
    }
    let mut server = CzmqNode::spawn("server");
    let mut client = CzmqNode::spawn("client");
    server.bind("tcp://127.0.0.1:*");
    let port = server.port();
    assert_ne!(port, 0);
    client.connect(&format!("tcp://127.0.0.1:{port}"));
    server.publish("from-server", "1");
    client.publish("from-client", "2");

    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut a, mut b) = (0, 0);
    while Instant::now() < deadline {
        a = server.status();
        b = client.status();
        if a == 2 && b == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        (a, b),
        (2, 2),
        "server log:\n{}\nclient log:\n{}",
        server.log().join("\n"),
        client.log().join("\n")
    );

    // Each node delivered both tuples to its application.
    for node in [&mut server, &mut client] {
        let mut got = node.drain_deliveries();
        got.sort();
        got.dedup();
        assert_eq!(
            got,
            [
                ("from-client".to_string(), "2".to_string()),
                ("from-server".to_string(), "1".to_string())
            ],
            "deliveries of {}",
            node.name()
        );
    }
}

#[test]
fn frames_with_tabs_and_newlines_survive_the_driver() {
    if !require_czmq() {
        return;
    }
    let mut node = CzmqNode::spawn("escapes");
    node.publish("k\tey", "line 1\nline\\2\r");
    assert_eq!(node.wait_status(1, Duration::from_secs(5)), 1);
    assert_eq!(
        node.drain_deliveries(),
        [("k\tey".to_string(), "line 1\nline\\2\r".to_string())]
    );
}

#[test]
fn driver_exits_promptly_when_dropped() {
    if !require_czmq() {
        return;
    }
    let started = Instant::now();
    let mut node = CzmqNode::spawn("short-lived");
    node.bind("tcp://127.0.0.1:*");
    let _ = node.port();
    drop(node);
    assert!(started.elapsed() < Duration::from_secs(5));
}
