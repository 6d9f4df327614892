//! Defects an adversarial run found, end to end over real sockets: each
//! test sets up the attack and checks that the network keeps working.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{bind_fresh, wait_until, Owned, RawPeer};
use zgossip::wire::gossip::Message;
use zgossip::wire::zmtp::SocketType;
use zgossip::Node;

const T: Duration = Duration::from_secs(10);

fn stat(n: &Node, name: &str) -> u64 {
    n.stats().unwrap().get(name).copied().unwrap_or(0)
}

fn has(n: &Node, key: &str) -> bool {
    n.get(key).unwrap().is_some()
}

/// A plain ZGP v1 PUBLISH whose frame just fits `limits/max-frame` but
/// whose ZGP/2 form would not (a 255-byte key, a value 244 bytes over
/// 1 MiB): the hub refuses it at the edge, and the links to its two
/// zgossip peers stay up with every other tuple flowing.
#[test]
fn a_poison_tuple_from_a_v1_peer_breaks_no_link() {
    let hub = Node::new("hub").unwrap();
    let ep = bind_fresh(&hub, "tcp", "hub");
    let (b, c) = (Node::new("b").unwrap(), Node::new("c").unwrap());
    b.connect(&ep).unwrap();
    c.connect(&ep).unwrap();
    hub.publish("before", "1").unwrap();
    assert!(wait_until(T, || has(&b, "before") && has(&c, "before")));

    let mut raw = RawPeer::connect(&ep, SocketType::Dealer);
    raw.send(&Message::Hello);
    let _snapshot = raw.recv(T);
    let key = "k".repeat(255);
    let value = "v".repeat((1 << 20) + 244);
    raw.send(&Message::Publish {
        key: &key,
        value: &value,
        ttl: 0,
    });
    // The raw peer's link is not closed either: it keeps talking (and its
    // PONG says the hub has read the PUBLISH before it).
    raw.send(&Message::Ping);
    assert_eq!(raw.recv(T), Some(Owned::Pong));

    // Every other tuple still flows, both ways through the hub, on the
    // same links (no link was closed and redialled).
    let links = (stat(&b, "connections"), stat(&c, "connections"));
    b.publish("after-b", "2").unwrap();
    c.publish("after-c", "3").unwrap();
    assert!(wait_until(T, || has(&c, "after-b") && has(&b, "after-c")));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((stat(&b, "connections"), stat(&c, "connections")), links);
    for n in [&hub, &b, &c] {
        assert!(!has(n, &key), "{} holds the poison tuple", n.name());
        assert_eq!(stat(n, "malformed"), 0, "{:?}", n.stats());
    }
    assert_eq!(stat(&hub, "oversize-tuples"), 1);
}

/// A node whose `limits/max-frame` is lowered refuses, with the reason,
/// a PUBLISH it could not forward within it.
#[test]
fn publish_is_refused_when_its_tuple_would_not_fit_the_frame_limit() {
    let node = Node::new("small").unwrap();
    node.send(&["SET", "limits/max-frame", "2000"]).unwrap();
    let e = node
        .publish("k", &"v".repeat(1_990))
        .unwrap_err()
        .to_string();
    assert!(e.contains("over limits/max-frame (2000)"), "{e}");
    node.publish("k", &"v".repeat(1_900)).unwrap();
    assert_eq!(node.get("k").unwrap().map(|v| v.len()), Some(1_900));
    let e = Node::new("big")
        .unwrap()
        .publish("k", &"v".repeat((1 << 20) + 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("exceeds the limit of 1048576 bytes"), "{e}");
}

/// The first bytes of a ZMTP frame of `len` bytes (a long frame), and
/// `some` bytes of its body: a frame that never completes.
fn partial_frame(len: u64, some: usize) -> Vec<u8> {
    let mut b = vec![0x02];
    b.extend_from_slice(&len.to_be_bytes());
    b.extend(std::iter::repeat_n(b'x', some));
    b
}

/// Connections that complete the handshake and then fall silent are
/// closed after the idle timeout, and counted; the node keeps serving.
#[test]
fn silent_connections_are_closed_after_the_timeout() {
    let node = Node::new("n").unwrap();
    node.send(&["SET", "limits/idle-timeout", "300"]).unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    let mut silent: Vec<RawPeer> = (0..20)
        .map(|_| RawPeer::connect(&ep, SocketType::Dealer))
        .collect();
    assert!(wait_until(T, || stat(&node, "connections") == 20));
    for p in &mut silent {
        assert!(p.closed_within(T), "a silent connection stays open");
    }
    assert!(wait_until(T, || stat(&node, "connections") == 0));
    assert_eq!(stat(&node, "idle-closed"), 20);
    // A peer that talks stays.
    let mut talker = RawPeer::connect(&ep, SocketType::Dealer);
    talker.send(&Message::Hello);
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(100));
        talker.send(&Message::Ping);
        assert_eq!(talker.recv(T), Some(Owned::Pong));
    }
}

/// A frame that stalls before its last byte closes its connection after
/// `limits/frame-timeout`, and the memory it held is given back.
#[test]
fn a_stalled_frame_closes_its_connection() {
    let node = Node::new("n").unwrap();
    node.send(&["SET", "limits/frame-timeout", "300"]).unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    let mut p = RawPeer::connect(&ep, SocketType::Dealer);
    p.send(&Message::Hello);
    p.io.write_all(&partial_frame(1 << 20, 500_000)).unwrap();
    assert!(p.closed_within(T), "the stalled connection stays open");
    assert_eq!(stat(&node, "stalled-closed"), 1);
}

/// The bytes of incomplete frames all connections hold are bounded as a
/// whole: the connection that would pass `limits/input-buffers` is closed,
/// the others are not.
#[test]
fn incomplete_frames_are_bounded_across_connections() {
    let node = Node::new("n").unwrap();
    node.send(&["SET", "limits/input-buffers", "300000"])
        .unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    let mut first = RawPeer::connect(&ep, SocketType::Dealer);
    first.send(&Message::Hello);
    first
        .io
        .write_all(&partial_frame(1 << 20, 200_000))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut second = RawPeer::connect(&ep, SocketType::Dealer);
    second.send(&Message::Hello);
    second
        .io
        .write_all(&partial_frame(1 << 20, 200_000))
        .unwrap();
    assert!(
        second.closed_within(T),
        "the connection over the budget stays"
    );
    assert_eq!(stat(&node, "input-refused"), 1);
    assert!(!first.closed_within(Duration::from_millis(300)));
}

/// Two nodes with different frame limits: a tuple that fits the sender's
/// but not the receiver's is not offered to the receiver (it announced its
/// limit), so their link stays up and every other tuple flows.
#[test]
fn a_tuple_over_a_peers_limit_never_loops_the_link() {
    let big_node = Node::new("big").unwrap();
    let ep = bind_fresh(&big_node, "tcp", "big");
    let small = Node::new("small").unwrap();
    small.send(&["SET", "limits/max-frame", "4000"]).unwrap();
    small.connect(&ep).unwrap();
    big_node.publish("first", "1").unwrap();
    assert!(wait_until(T, || has(&small, "first")));
    big_node.publish("large", &"v".repeat(5_000)).unwrap();
    big_node.publish("after", "2").unwrap();
    assert!(wait_until(T, || has(&small, "after")));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!has(&small, "large"));
    assert!(
        stat(&big_node, "oversize-skipped") >= 1,
        "{:?}",
        big_node.stats()
    );
    assert_eq!(stat(&small, "malformed"), 0);
    // The link was never closed: the small node dialled once.
    small.publish("from-small", "3").unwrap();
    assert!(wait_until(T, || has(&big_node, "from-small")));
    assert_eq!(stat(&big_node, "connections"), 1);
}

/// A ZGP/2 peer, by hand: a DEALER that announces ZGP/2.
fn zgp2_peer(ep: &str) -> RawPeer {
    let mut config = zgossip::wire::zmtp::ConnectionConfig::new(SocketType::Dealer);
    config.properties = vec![(zgossip::wire::zgp2::PROPERTY.to_string(), b"2".to_vec())];
    let mut received = Vec::new();
    let mut p = RawPeer::try_connect(ep, config, &mut received).unwrap();
    p.send(&Message::Hello);
    p
}

fn zgp2_tuple(key: &str, value: &str, clock: u64, deleted: bool) -> Vec<u8> {
    let mut frame = Vec::new();
    zgossip::wire::zgp2::encode_tuple(
        &zgossip::wire::zgp2::Tuple {
            key,
            value,
            clock,
            origin: 0xbad,
            expires: 0,
            deleted,
            ephemeral: false,
        },
        &mut frame,
    );
    frame
}

/// A write whose version clock is 2^64-1 (or a delete sent that way) is
/// refused and counted, never stored nor forwarded: the owner's next
/// PUBLISH and UNPUBLISH still win, on every node.
#[test]
fn a_version_from_the_future_cannot_lock_a_key() {
    let hub = Node::new("hub").unwrap();
    let ep = bind_fresh(&hub, "tcp", "hub");
    let other = Node::new("other").unwrap();
    other.connect(&ep).unwrap();
    hub.publish("key", "owner's").unwrap();
    assert!(wait_until(T, || other.get("key").unwrap().as_deref()
        == Some("owner's")));

    let mut attacker = zgp2_peer(&ep);
    attacker.send_raw(&zgp2_tuple("key", "locked", u64::MAX, false));
    attacker.send_raw(&zgp2_tuple("gone", "", u64::MAX, true));
    attacker.send(&Message::Ping);
    assert!(wait_until(T, || stat(&hub, "future-versions") == 2));
    assert_eq!(hub.get("key").unwrap().as_deref(), Some("owner's"));
    hub.publish("key", "owner's next").unwrap();
    hub.publish("gone", "still here").unwrap();
    assert!(wait_until(T, || {
        other.get("key").unwrap().as_deref() == Some("owner's next")
            && other.get("gone").unwrap().as_deref() == Some("still here")
    }));
    hub.unpublish("key").unwrap();
    assert!(wait_until(T, || !has(&other, "key")));
    assert!(!has(&hub, "key"));
}

/// Many connections each holding most of a large frame: the bytes held
/// are bounded and counted (`input-held`), and given back to the last byte
/// once the stalled connections are closed.
#[test]
fn stalled_connections_give_back_what_they_held() {
    let node = Node::new("n").unwrap();
    node.send(&["SET", "limits/frame-timeout", "500"]).unwrap();
    node.send(&["SET", "limits/connections-per-address", "0"])
        .unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    let mut peers: Vec<RawPeer> = (0..100)
        .map(|_| {
            let mut p = RawPeer::connect(&ep, SocketType::Dealer);
            p.io.write_all(&partial_frame(1 << 20, 20_000)).unwrap();
            p
        })
        .collect();
    assert!(wait_until(T, || stat(&node, "input-held") >= 100 * 20_000));
    for p in &mut peers {
        assert!(p.closed_within(T), "a stalled connection stays open");
    }
    assert!(wait_until(T, || stat(&node, "connections") == 0));
    assert_eq!(stat(&node, "input-held"), 0);
    assert_eq!(stat(&node, "stalled-closed"), 100);
}

/// Churn, at a size a test can afford: short-lived nodes join a hub one
/// after another, publish a record with a short time to live and leave.
/// What the hub keeps of them levels off: expired records leave a short
/// tombstone, not one for a day.
#[test]
fn churn_of_short_lived_nodes_leaves_nothing_behind() {
    let hub = Node::new("hub").unwrap();
    hub.send(&["SET", "server/expired-grace", "300"]).unwrap();
    let ep = bind_fresh(&hub, "tcp", "hub");
    for round in 0..40 {
        let n = Node::new(&format!("short{round}")).unwrap();
        n.connect(&ep).unwrap();
        n.publish_ttl(
            &format!("presence/{round}"),
            "here",
            Duration::from_millis(100),
        )
        .unwrap();
        let key = format!("presence/{round}");
        assert!(wait_until(T, || has(&hub, &key)));
    }
    let entries = |n: &Node| stat(n, "tuples") + stat(n, "tombstones");
    assert!(
        wait_until(Duration::from_secs(5), || entries(&hub) == 0),
        "the hub keeps {} entries of nodes long gone: {:?}",
        entries(&hub),
        hub.stats()
    );
    assert!(stat(&hub, "expired") >= 40, "{:?}", hub.stats());
}
