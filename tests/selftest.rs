//! The zgossip self-test of CZMQ, ported: on inproc, ipc and tcp.

mod common;

use std::time::{Duration, Instant};

use common::*;
use zgossip::wire::gossip::Message;
use zgossip::wire::zmtp::SocketType;
use zgossip::Node;

const T: Duration = Duration::from_secs(5);

fn raw_dealer_gets_pong(transport: &str) {
    let server = Node::new("server").unwrap();
    let ep = bind_fresh(&server, transport, "zgossip");
    let mut client = RawPeer::connect(&ep, SocketType::Dealer);
    // HELLO gets no message (the server holds no tuples).
    client.send(&Message::Hello);
    // PING gets PONG.
    client.send(&Message::Ping);
    assert_eq!(client.recv(T), Some(Owned::Pong));
}

fn base_alpha_beta(transport: &str) {
    let base = Node::new("base").unwrap();
    // A 100 ms timeout on clients, as in the CZMQ test.
    base.send(&["SET", "server/timeout", "100"]).unwrap();
    let ep = bind_fresh(&base, transport, "base");

    let alpha = Node::new("alpha").unwrap();
    alpha.send(&["CONNECT", ep.as_str()]).unwrap();
    alpha
        .send(&["PUBLISH", "inproc://alpha-1", "service1"])
        .unwrap();
    alpha
        .send(&["PUBLISH", "inproc://alpha-2", "service2"])
        .unwrap();

    let beta = Node::new("beta").unwrap();
    beta.send(&["CONNECT", ep.as_str()]).unwrap();
    beta.send(&["PUBLISH", "inproc://beta-1", "service1"])
        .unwrap();
    beta.send(&["PUBLISH", "inproc://beta-2", "service2"])
        .unwrap();

    std::thread::sleep(Duration::from_millis(200));

    // STATUS comes after every DELIVER queued before it. On a slow machine
    // the tuples may not all be there after 200 ms: ask again until they are.
    let mut delivered = Vec::new();
    let deadline = Instant::now() + T;
    let count = loop {
        alpha.send(&["STATUS"]).unwrap();
        let status = loop {
            let m = alpha.recv_timeout(T).unwrap().expect("reply");
            match m[0].as_str() {
                "DELIVER" => delivered.push((m[1].clone(), m[2].clone())),
                "STATUS" => break m[1].parse::<usize>().unwrap(),
                _ => panic!("unexpected {m:?}"),
            }
        };
        assert_eq!(status, delivered.len(), "STATUS counts what was delivered");
        if status == 4 || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(count, 4);
    let want: Vec<(String, String)> = [
        ("inproc://alpha-1", "service1"),
        ("inproc://alpha-2", "service2"),
        ("inproc://beta-1", "service1"),
        ("inproc://beta-2", "service2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(delivered, want);
}

#[test]
fn raw_dealer_hello_ping_pong_inproc() {
    raw_dealer_gets_pong("inproc");
}

#[test]
fn raw_dealer_hello_ping_pong_ipc() {
    raw_dealer_gets_pong("ipc");
}

#[test]
fn raw_dealer_hello_ping_pong_tcp() {
    raw_dealer_gets_pong("tcp");
}

#[test]
fn base_alpha_beta_inproc() {
    base_alpha_beta("inproc");
}

#[test]
fn base_alpha_beta_ipc() {
    base_alpha_beta("ipc");
}

#[test]
fn base_alpha_beta_tcp() {
    base_alpha_beta("tcp");
}
