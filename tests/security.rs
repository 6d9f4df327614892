//! CURVE, authentication and limits, end to end over tcp loopback. Every
//! wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Owned, RawPeer};
use zgossip::wire::curve::Keypair;
use zgossip::wire::gossip::Message;
use zgossip::wire::z85;
use zgossip::wire::zmtp::{self, MechanismConfig, SocketType};
use zgossip::Node;

const T: Duration = Duration::from_secs(10);

fn keys() -> (String, String) {
    zgossip::certs::keypair().unwrap()
}

/// A node with a CURVE key pair, bound on loopback; returns it, its
/// endpoint and its public key.
fn curve_node(name: &str) -> (Node, String, String) {
    let node = Node::new(name).unwrap();
    let (public, secret) = keys();
    node.send(&["SET PUBLICKEY", &public]).unwrap();
    node.send(&["SET SECRETKEY", &secret]).unwrap();
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    (node, format!("tcp://127.0.0.1:{port}"), public)
}

fn client_config(server_public: &str, client: Option<Keypair>) -> zmtp::ConnectionConfig {
    let mut c = zmtp::ConnectionConfig::new(SocketType::Dealer);
    c.mechanism = MechanismConfig::CurveClient {
        keys: client.unwrap_or_else(|| Keypair::generate().unwrap()),
        server_key: z85::decode_key(server_public).unwrap(),
    };
    c
}

/// Asserts that a refused peer got an ERROR and no gossip at all: after
/// the greeting, everything it received is handshake commands (no message
/// frame, no MESSAGE box). The frames are parsed, not searched: a search
/// for ZGP's two signature bytes also finds them in random ciphertext (in
/// about one run in two hundred).
fn assert_learnt_nothing(result: Result<RawPeer, String>, received: &[u8], why: &str) {
    let err = result.err().expect("the peer was let in");
    assert!(err.contains(why), "refused for '{err}', expected '{why}'");
    let mut rest = received.get(64..).unwrap_or(&[]);
    let mut commands = Vec::new();
    while let Some((&flags, after)) = rest.split_first() {
        let (len, header) = if flags & 0x02 != 0 {
            let Some(size) = after.get(..8) else { break };
            (u64::from_be_bytes(size.try_into().unwrap()) as usize, 9)
        } else {
            let Some(&size) = after.first() else { break };
            (usize::from(size), 2)
        };
        let Some(body) = rest.get(header..header + len) else {
            break; // cut short by the close
        };
        assert!(
            flags & 0x04 != 0,
            "a message frame reached a refused peer (flags {flags:#04x})"
        );
        let name_len = usize::from(body.first().copied().unwrap_or(0));
        let name = body.get(1..1 + name_len).unwrap_or(&[]);
        commands.push(String::from_utf8_lossy(name).into_owned());
        rest = &rest[header + len..];
    }
    assert!(
        !commands.iter().any(|c| c == "MESSAGE"),
        "a MESSAGE reached a refused peer: {commands:?}"
    );
}

#[test]
fn curve_network_converges() {
    // hub <- a, hub <- b, b <- c: every link CURVE.
    let (hub, hub_ep, hub_key) = curve_node("hub");
    let (b, b_ep, b_key) = curve_node("b");
    let a = Node::new("a").unwrap();
    let c = Node::new("c").unwrap();
    a.send(&["CONNECT", &hub_ep, &hub_key]).unwrap();
    b.send(&["CONNECT", &hub_ep, &hub_key]).unwrap();
    c.send(&["CONNECT", &b_ep, &b_key]).unwrap();
    for (i, n) in [&hub, &a, &b, &c].iter().enumerate() {
        n.publish(&format!("key-{i}"), "value").unwrap();
    }
    for n in [&hub, &a, &b, &c] {
        common::wait_status(n, 4, T);
    }
    // The links really are CURVE: a NULL peer is refused by the hub.
    let mut got = Vec::new();
    let null = RawPeer::try_connect(
        &hub_ep,
        zmtp::ConnectionConfig::new(SocketType::Dealer),
        &mut got,
    );
    assert_learnt_nothing(null, &got, "mechanism");
}

#[test]
fn wrong_server_key_is_refused_and_learns_nothing() {
    let (node, ep, _) = curve_node("srv");
    node.publish("secret/thing", "42").unwrap();
    let (other, _) = keys();
    let mut got = Vec::new();
    let r = RawPeer::try_connect(&ep, client_config(&other, None), &mut got);
    assert_learnt_nothing(r, &got, "wrong server key");
    // A node dialling with the wrong key does not get the tuple either.
    let n = Node::new("wrong").unwrap();
    n.send(&["CONNECT", &ep, &other]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(common::status(&n), 0);
}

#[test]
fn unlisted_client_key_is_refused() {
    let (node, ep, public) = curve_node("srv");
    node.publish("k", "v").unwrap();
    let allowed = Keypair::generate().unwrap();
    node.send(&["CURVE ALLOW", &z85::encode_key(&allowed.public)])
        .unwrap();
    let mut got = Vec::new();
    let r = RawPeer::try_connect(&ep, client_config(&public, None), &mut got);
    assert_learnt_nothing(r, &got, "client key is not allowed");
    // The listed key gets in and receives the tuple.
    let mut got = Vec::new();
    let mut p = RawPeer::try_connect(&ep, client_config(&public, Some(allowed)), &mut got).unwrap();
    p.send(&Message::Hello);
    assert_eq!(p.recv(T), Some(Owned::Publish("k".into(), "v".into())));
    // CURVE * lets anyone in again.
    node.send(&["CURVE", "*"]).unwrap();
    let mut got = Vec::new();
    assert!(RawPeer::try_connect(&ep, client_config(&public, None), &mut got).is_ok());
}

#[test]
fn null_against_curve_is_refused() {
    let (node, ep, _) = curve_node("srv");
    node.publish("k", "v").unwrap();
    let mut got = Vec::new();
    let r = RawPeer::try_connect(
        &ep,
        zmtp::ConnectionConfig::new(SocketType::Dealer),
        &mut got,
    );
    assert_learnt_nothing(r, &got, "mechanism");
}

/// A CURVE client that completed the handshake, with the bytes of its next
/// MESSAGE (a ZGP HELLO) captured before sending.
fn curve_session(ep: &str, public: &str) -> (RawPeer, Vec<u8>) {
    let mut got = Vec::new();
    let mut p = RawPeer::try_connect(ep, client_config(public, None), &mut got).unwrap();
    let mut hello = Vec::new();
    Message::Hello.encode(&mut hello);
    p.zmtp.queue_message(&[&hello]).unwrap();
    let bytes = p.zmtp.pending_output().to_vec();
    (p, bytes)
}

#[test]
fn replayed_and_forged_boxes_are_dropped() {
    let (node, ep, public) = curve_node("srv");
    node.publish("k", "v").unwrap();
    node.send(&["VERBOSE"]).unwrap();

    // Replay: the same MESSAGE twice.
    let (mut p, hello) = curve_session(&ep, &public);
    p.flush();
    assert_eq!(p.recv(T), Some(Owned::Publish("k".into(), "v".into())));
    p.io.write_all(&hello).unwrap();
    assert!(p.closed_within(T), "a replayed box was accepted");

    // Forgery: one bit of the box flipped.
    let (mut p, mut hello) = curve_session(&ep, &public);
    let n = p.zmtp.pending_output().len();
    p.zmtp.consume_output(n);
    let last = hello.len() - 1;
    hello[last] ^= 0x01;
    p.io.write_all(&hello).unwrap();
    assert!(p.closed_within(T), "a forged box was accepted");

    // The node still serves honest clients.
    let (mut p, _) = curve_session(&ep, &public);
    p.flush();
    assert_eq!(p.recv(T), Some(Owned::Publish("k".into(), "v".into())));
}

#[test]
fn allow_and_deny_by_address() {
    let node = Node::new("acl").unwrap();
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let ep = format!("tcp://127.0.0.1:{port}");
    node.publish("k", "v").unwrap();
    node.send(&["DENY", "127.0.0.1"]).unwrap();
    let mut got = Vec::new();
    let r = RawPeer::try_connect(
        &ep,
        zmtp::ConnectionConfig::new(SocketType::Dealer),
        &mut got,
    );
    assert_learnt_nothing(r, &got, "address 127.0.0.1 is denied");
    // A whitelist wins over the blacklist (zauth).
    node.send(&["ALLOW", "127.0.0.1"]).unwrap();
    let mut p = RawPeer::connect(&ep, SocketType::Dealer);
    p.send(&Message::Hello);
    assert_eq!(p.recv(T), Some(Owned::Publish("k".into(), "v".into())));
    let other = Node::new("acl2").unwrap();
    let port = other.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    other.send(&["ALLOW", "127.0.0.2"]).unwrap();
    let mut got = Vec::new();
    let r = RawPeer::try_connect(
        &format!("tcp://127.0.0.1:{port}"),
        zmtp::ConnectionConfig::new(SocketType::Dealer),
        &mut got,
    );
    assert_learnt_nothing(r, &got, "not in the ALLOW list");
}

#[test]
fn keygen_cert_and_cert_directory() {
    let node = Node::new("certs").unwrap();
    node.send(&["KEYGEN"]).unwrap();
    let reply = node.recv_timeout(T).unwrap().unwrap();
    assert_eq!(reply[0], "KEYGEN");
    assert_eq!((reply[1].len(), reply[2].len()), (40, 40));

    let dir = std::env::temp_dir().join(format!("zgossip-sec-{}", common::unique()));
    let clients = dir.join("clients");
    std::fs::create_dir_all(&clients).unwrap();
    let server_cert = dir.join("server.cert");
    zgossip::certs::save_cert(&server_cert, &reply[1], &reply[2]).unwrap();
    node.send(&["CERT", server_cert.to_str().unwrap()]).unwrap();
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let ep = format!("tcp://127.0.0.1:{port}");
    node.publish("k", "v").unwrap();

    let client = Keypair::generate().unwrap();
    zgossip::certs::save_cert(
        clients.join("client.cert"),
        &z85::encode_key(&client.public),
        &z85::encode_key(&client.secret),
    )
    .unwrap();
    node.send(&["CURVE", clients.to_str().unwrap()]).unwrap();
    let mut got = Vec::new();
    let r = RawPeer::try_connect(&ep, client_config(&reply[1], None), &mut got);
    assert_learnt_nothing(r, &got, "client key is not allowed");
    let mut p =
        RawPeer::try_connect(&ep, client_config(&reply[1], Some(client)), &mut got).unwrap();
    p.send(&Message::Hello);
    assert_eq!(p.recv(T), Some(Owned::Publish("k".into(), "v".into())));
    assert!(node.send(&["CERT", "/nonexistent/cert"]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----------------------------------------------------------------------
// Limits: each one is hit, and the node goes on serving others.

fn plain_node(name: &str, settings: &[(&str, &str)]) -> (Node, String) {
    let node = Node::new(name).unwrap();
    for (path, value) in settings {
        node.send(&["SET", path, value]).unwrap();
    }
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    node.publish("k", "v").unwrap();
    (node, format!("tcp://127.0.0.1:{port}"))
}

/// An honest peer still gets served.
fn still_serves(ep: &str) {
    let mut p = RawPeer::connect(ep, SocketType::Dealer);
    p.send(&Message::Hello);
    assert_eq!(p.recv(T), Some(Owned::Publish("k".into(), "v".into())));
}

#[test]
fn limit_max_frame() {
    let (_node, ep) = plain_node("lim", &[("limits/max-frame", "2000")]);
    let mut p = RawPeer::connect(&ep, SocketType::Dealer);
    p.send_raw(&[0u8; 5000]);
    assert!(p.closed_within(T), "an oversized frame was accepted");
    still_serves(&ep);
}

#[test]
fn limit_handshake_timeout() {
    let (_node, ep) = plain_node("lim", &[("limits/handshake-timeout", "200")]);
    let mut s = TcpStream::connect(ep.strip_prefix("tcp://").unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let mut closed = false;
    while start.elapsed() < T {
        if let Ok(0) = s.read(&mut buf) {
            closed = true;
            break;
        }
    }
    assert!(closed, "a silent peer was kept");
    assert!(start.elapsed() < Duration::from_secs(3));
    still_serves(&ep);
}

#[test]
fn limit_connections_per_address() {
    let (_node, ep) = plain_node("lim", &[("limits/connections-per-address", "2")]);
    let a = RawPeer::connect(&ep, SocketType::Dealer);
    let b = RawPeer::connect(&ep, SocketType::Dealer);
    let mut got = Vec::new();
    let r = RawPeer::try_connect(
        &ep,
        zmtp::ConnectionConfig::new(SocketType::Dealer),
        &mut got,
    );
    assert_learnt_nothing(r, &got, "limits/connections-per-address");
    drop((a, b));
    std::thread::sleep(Duration::from_millis(200));
    still_serves(&ep);
}

#[test]
fn limit_connections() {
    let (_node, ep) = plain_node("lim", &[("limits/connections", "1")]);
    let a = RawPeer::connect(&ep, SocketType::Dealer);
    let mut got = Vec::new();
    let r = RawPeer::try_connect(
        &ep,
        zmtp::ConnectionConfig::new(SocketType::Dealer),
        &mut got,
    );
    assert_learnt_nothing(r, &got, "limits/connections");
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    still_serves(&ep);
}

#[test]
fn limit_tuples_per_second() {
    let (node, ep) = plain_node("lim", &[("limits/tuples-per-second", "5")]);
    let mut p = RawPeer::connect(&ep, SocketType::Dealer);
    p.send(&Message::Hello);
    for i in 0..50 {
        let key = format!("flood-{i}");
        let msg = Message::Publish {
            key: &key,
            value: "x",
            ttl: 0,
        };
        let mut frame = Vec::new();
        msg.encode(&mut frame);
        if p.zmtp.queue_message(&[&frame]).is_err() {
            break;
        }
    }
    let _ = p.io.write_all(p.zmtp.pending_output());
    assert!(p.closed_within(T), "a flood of tuples was accepted");
    assert!(common::status(&node) < 50);
    still_serves(&ep);
}

#[test]
fn limit_bytes_per_second() {
    let (_node, ep) = plain_node("lim", &[("limits/bytes-per-second", "4000")]);
    let mut p = RawPeer::connect(&ep, SocketType::Dealer);
    p.send(&Message::Hello);
    let value = "x".repeat(1000);
    for i in 0..10 {
        let key = format!("big-{i}");
        let msg = Message::Publish {
            key: &key,
            value: &value,
            ttl: 0,
        };
        let mut frame = Vec::new();
        msg.encode(&mut frame);
        let _ = p.zmtp.queue_message(&[&frame]);
    }
    let _ = p.io.write_all(p.zmtp.pending_output());
    assert!(p.closed_within(T), "a flood of bytes was accepted");
    still_serves(&ep);
}

#[test]
fn limit_settings_are_checked() {
    let node = Node::new("lim").unwrap();
    let e = node
        .send(&["SET", "limits/max-frame", "big"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits/max-frame"), "{e}");
}
