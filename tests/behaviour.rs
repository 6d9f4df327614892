//! Node behaviour over real sockets: sessions, remotes, idle connections,
//! bad input from peers and from the application.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use zgossip::wire::gossip::Message;
use zgossip::wire::zmtp::{self, SocketType};
use zgossip::{ErrorKind, Node};

const T: Duration = Duration::from_secs(5);

fn pair() -> (Node, Node, String) {
    let a = Node::new("a").unwrap();
    let ep = bind_fresh(&a, "tcp", "a");
    let b = Node::new("b").unwrap();
    b.send(&["CONNECT", ep.as_str()]).unwrap();
    (a, b, ep)
}

#[test]
fn idle_connection_still_carries_the_next_publish_both_ways() {
    let (a, b, _) = pair();
    a.publish("a1", "x").unwrap();
    b.publish("b1", "y").unwrap();
    wait_status(&a, 2, T);
    wait_status(&b, 2, T);
    // Three times CZMQ's default session timeout of silence.
    std::thread::sleep(Duration::from_secs(3));
    a.publish("a2", "x").unwrap();
    b.publish("b2", "y").unwrap();
    wait_status(&a, 4, T);
    wait_status(&b, 4, T);
}

#[test]
fn short_server_timeout_loses_nothing() {
    // Even when the server forgets sessions faster than we ping, an INVALID
    // makes the remote resend HELLO and every tuple.
    let a = Node::new("a").unwrap();
    a.send(&["SET", "server/timeout", "30"]).unwrap();
    let ep = bind_fresh(&a, "tcp", "a");
    let b = Node::new("b").unwrap();
    b.send(&["SET", "remote/ping-interval", "5000"]).unwrap();
    b.send(&["CONNECT", ep.as_str()]).unwrap();
    b.publish("k1", "v").unwrap();
    wait_status(&a, 1, T);
    std::thread::sleep(Duration::from_millis(200));
    b.publish("k2", "v").unwrap();
    wait_status(&a, 2, T);
}

#[test]
fn malformed_frame_closes_only_that_connection() {
    let node = Node::new("n").unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    node.publish("kept", "yes").unwrap();
    let mut good = RawPeer::connect(&ep, SocketType::Dealer);
    good.send(&Message::Hello);
    assert_eq!(
        good.recv(T),
        Some(Owned::Publish("kept".into(), "yes".into()))
    );

    let mut bad = RawPeer::connect(&ep, SocketType::Dealer);
    bad.send(&Message::Hello);
    let _snapshot = bad.recv(T);
    bad.send_raw(&[0xAA, 0xA0, 0x02, 0x02, 0x00]); // version 2: malformed for v1
    assert_eq!(bad.recv(T), Some(Owned::Invalid));
    assert!(bad.closed_within(T), "the bad connection is closed");

    let mut garbage = RawPeer::connect(&ep, SocketType::Dealer);
    garbage.send_raw(b"\xde\xad\xbe\xef");
    assert_eq!(garbage.recv(T), Some(Owned::Invalid));
    assert!(garbage.closed_within(T));

    // The good peer and the stored tuples are untouched.
    good.send(&Message::Ping);
    assert_eq!(good.recv(T), Some(Owned::Pong));
    node.publish("later", "1").unwrap();
    assert_eq!(
        good.recv(T),
        Some(Owned::Publish("later".into(), "1".into()))
    );
    assert_eq!(status(&node), 2);
}

#[test]
fn bad_greeting_closes_the_connection_and_node_keeps_serving() {
    use std::io::{Read, Write};
    let node = Node::new("n").unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    let mut s = std::net::TcpStream::connect(ep.strip_prefix("tcp://").unwrap()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    // The node sends its greeting, then closes on our bad one.
    let _ = s.read_to_end(&mut buf);
    assert!(buf.len() <= 64 + 64, "no gossip was sent to a bad peer");
    let mut good = RawPeer::connect(&ep, SocketType::Dealer);
    good.send(&Message::Ping);
    assert_eq!(good.recv(T), Some(Owned::Pong));
}

#[test]
fn incompatible_socket_type_is_refused() {
    let node = Node::new("n").unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    let io = raw_stream(&ep);
    io.set_timeout(Duration::from_millis(100));
    let mut p = RawPeer {
        io,
        zmtp: zmtp::Connection::new(zmtp::ConnectionConfig::new(SocketType::Pub)),
    };
    p.flush();
    let deadline = Instant::now() + T;
    let mut refused = false;
    while Instant::now() < deadline {
        let alive = p.read_some();
        if let Err(e) = p.zmtp.poll() {
            assert!(
                e.to_string().contains("ERROR") || e.to_string().contains("incompatible"),
                "{e}"
            );
            refused = true;
            break;
        }
        if !alive {
            refused = true;
            break;
        }
    }
    assert!(refused, "a PUB peer must be refused by our ROUTER side");
}

#[test]
fn publish_before_hello_is_invalid_and_session_restarts() {
    let node = Node::new("n").unwrap();
    let ep = bind_fresh(&node, "inproc", "n");
    let mut p = RawPeer::connect(&ep, SocketType::Dealer);
    p.send(&Message::Publish {
        key: "k",
        value: "v",
        ttl: 0,
    });
    assert_eq!(p.recv(T), Some(Owned::Invalid));
    assert_eq!(
        status(&node),
        0,
        "the tuple of a session without HELLO is not taken"
    );
    // Same connection, start over as a CZMQ remote does.
    p.send(&Message::Hello);
    p.send(&Message::Publish {
        key: "k",
        value: "v",
        ttl: 0,
    });
    wait_status(&node, 1, T);
    // A second HELLO in the connected state is invalid too.
    p.send(&Message::Hello);
    assert_eq!(p.recv(T), Some(Owned::Invalid));
}

#[test]
fn tuple_is_not_echoed_to_its_sender_but_reaches_others() {
    let node = Node::new("n").unwrap();
    let ep = bind_fresh(&node, "inproc", "n");
    let mut a = RawPeer::connect(&ep, SocketType::Dealer);
    let mut b = RawPeer::connect(&ep, SocketType::Dealer);
    a.send(&Message::Hello);
    b.send(&Message::Hello);
    a.send(&Message::Ping);
    assert_eq!(a.recv(T), Some(Owned::Pong));
    b.send(&Message::Ping);
    assert_eq!(b.recv(T), Some(Owned::Pong));
    a.send(&Message::Publish {
        key: "k",
        value: "v",
        ttl: 0,
    });
    assert_eq!(b.recv(T), Some(Owned::Publish("k".into(), "v".into())));
    // a gets its PONG next, not its own tuple back.
    a.send(&Message::Ping);
    assert_eq!(a.recv(T), Some(Owned::Pong));
    // A duplicate is dropped: b sees nothing more.
    a.send(&Message::Publish {
        key: "k",
        value: "v",
        ttl: 0,
    });
    b.send(&Message::Ping);
    assert_eq!(b.recv(T), Some(Owned::Pong));
    let d = deliveries(&node, 1, T);
    assert_eq!(d, vec![("k".to_string(), "v".to_string())]);
}

/// A raw ZGP server: accepts one connection from our node's remote.
struct RawServer {
    listener: TcpListener,
}

impl RawServer {
    fn new() -> RawServer {
        RawServer {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }
    fn endpoint(&self) -> String {
        format!("tcp://{}", self.listener.local_addr().unwrap())
    }
    fn accept(&self) -> RawPeer {
        self.listener.set_nonblocking(false).unwrap();
        let (s, _) = self.listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut p = RawPeer {
            io: Box::new(s),
            zmtp: zmtp::Connection::new(zmtp::ConnectionConfig::new(SocketType::Router)),
        };
        p.flush();
        let deadline = Instant::now() + T;
        while !p.zmtp.is_ready() {
            assert!(Instant::now() < deadline);
            p.read_some();
            let _ = p.zmtp.poll().unwrap();
            p.flush();
        }
        p
    }
}

#[test]
fn remote_sends_hello_and_tuples_then_again_after_invalid_and_reconnect() {
    let server = RawServer::new();
    let node = Node::new("n").unwrap();
    node.publish("k1", "v1").unwrap();
    node.publish("k2", "v2").unwrap();
    node.connect(&server.endpoint()).unwrap();
    let mut p = server.accept();
    let all = vec![
        Owned::Hello,
        Owned::Publish("k1".into(), "v1".into()),
        Owned::Publish("k2".into(), "v2".into()),
    ];
    let got: Vec<Owned> = (0..3).map(|_| p.recv(T).unwrap()).collect();
    assert_eq!(got, all);
    // INVALID: the node starts over, resending every tuple.
    p.send(&Message::Invalid);
    let got: Vec<Owned> = (0..3).map(|_| p.recv(T).unwrap()).collect();
    assert_eq!(got, all);
    // Idle: the remote pings well within CZMQ's 1 s session timeout.
    let started = Instant::now();
    assert_eq!(p.recv(T), Some(Owned::Ping));
    assert!(started.elapsed() < Duration::from_millis(900));
    // Connection lost: the node reconnects and starts over.
    drop(p);
    let mut p = server.accept();
    let got: Vec<Owned> = (0..3).map(|_| p.recv(T).unwrap()).collect();
    assert_eq!(got, all);
}

#[test]
fn bad_commands_are_refused_with_a_reason() {
    let node = Node::new("n").unwrap();
    let e = node.send(&["FROB"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Command);
    assert!(e.to_string().contains("unknown command 'FROB'"), "{e}");
    let e = node.send(&["CONNECT"]).unwrap_err();
    assert!(
        e.to_string().contains("CONNECT takes 1 to 5 arguments"),
        "{e}"
    );
    let e = node.send(&["BIND", "tcp://127.0.0.1"]).unwrap_err();
    assert!(e.to_string().contains("bad endpoint"), "{e}");
    let long = "x".repeat(300);
    let e = node.send(&["PUBLISH", long.as_str(), "v"]).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit of 255"), "{e}");
    let e = node.send(&["SET", "server/timeout", "soon"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("server/timeout must be a number"),
        "{e}"
    );
    // The node still works after all that.
    node.publish("k", "v").unwrap();
    assert_eq!(status(&node), 1);
}

#[test]
fn bind_to_a_busy_port_is_an_error_the_caller_sees() {
    let a = Node::new("a").unwrap();
    let port = a.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let b = Node::new("b").unwrap();
    let e = b
        .send(&["BIND", format!("tcp://127.0.0.1:{port}").as_str()])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("cannot bind"), "{e}");
    let name = format!("inproc://busy-{}", unique());
    a.send(&["BIND", name.as_str()]).unwrap();
    assert!(b.send(&["BIND", name.as_str()]).is_err());
}

#[test]
fn port_reports_the_last_tcp_bind() {
    let n = Node::new("n").unwrap();
    n.send(&["PORT"]).unwrap();
    assert_eq!(n.recv().unwrap(), vec!["PORT", "0"]);
    let p = n.bind("tcp://*:*").unwrap().unwrap();
    n.send(&["PORT"]).unwrap();
    assert_eq!(n.recv().unwrap(), vec!["PORT".to_string(), p.to_string()]);
    // Several binds per node, on every transport.
    n.send(&["BIND", format!("inproc://many-{}", unique()).as_str()])
        .unwrap();
    let path = format!("ipc:///tmp/zgossip-many-{}.sock", unique());
    n.send(&["BIND", path.as_str()]).unwrap();
    let q = n.bind("tcp://[::1]:*");
    if let Ok(Some(q)) = q {
        assert_ne!(p, q);
    }
}

#[test]
fn term_stops_the_node() {
    let n = Node::new("n").unwrap();
    n.send(&["$TERM"]).unwrap();
    assert_eq!(
        n.send(&["STATUS"]).unwrap_err().kind(),
        ErrorKind::Terminated
    );
    assert_eq!(n.recv().unwrap_err().kind(), ErrorKind::Terminated);
}

#[test]
fn own_publish_is_delivered_back_and_duplicates_are_not() {
    let n = Node::new("n").unwrap();
    n.publish("k", "v").unwrap();
    n.publish("k", "v").unwrap();
    n.publish("k", "w").unwrap();
    let d = deliveries(&n, 2, T);
    assert_eq!(d, vec![("k".into(), "v".into()), ("k".into(), "w".into())]);
    assert_eq!(status(&n), 1);
}

#[test]
fn host_names_resolve() {
    let a = Node::new("a").unwrap();
    let port = a.bind("tcp://localhost:*").unwrap().unwrap();
    let b = Node::new("b").unwrap();
    b.connect(&format!("tcp://localhost:{port}")).unwrap();
    b.publish("k", "v").unwrap();
    wait_status(&a, 1, T);
}

#[test]
fn a_peer_that_never_reads_is_closed_not_buffered_forever() {
    let node = Node::new("n").unwrap();
    node.send(&["SET", "limits/max-backlog", "1000000"])
        .unwrap();
    let ep = bind_fresh(&node, "tcp", "n");
    // The stuck peer says HELLO and then never reads again.
    let mut stuck = RawPeer::connect(&ep, SocketType::Dealer);
    stuck.send(&Message::Hello);
    let watcher = Node::new("w").unwrap();
    watcher.connect(&ep).unwrap();
    let value = "x".repeat(1000);
    for i in 0..30_000 {
        node.publish(&format!("k{i}"), &value).unwrap();
    }
    // The node drops the stuck peer, and keeps serving the other one.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = node.stats().unwrap();
        if st["connections"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stuck peer still connected: {st:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_status(&watcher, 30_000, Duration::from_secs(20));
}

#[test]
fn a_reader_that_stalls_gets_every_byte_in_order_once_it_reads_again() {
    // Runs larger than the socket takes are written in part; the rest
    // waits and goes first once the peer reads (nothing overtakes it).
    let node = Node::new("n").unwrap();
    let ep = bind_fresh(&node, "tcp", "stall");
    let value = |i: usize| format!("{i}-{}", "v".repeat(200));
    for i in 0..20_000 {
        node.publish(&format!("k{i:05}"), &value(i)).unwrap();
    }
    wait_status(&node, 20_000, T);
    let mut peer = RawPeer::connect(&ep, SocketType::Dealer);
    peer.send(&Message::Hello);
    // The peer reads nothing for a while; meanwhile more is published.
    std::thread::sleep(Duration::from_millis(300));
    for i in 20_000..20_100 {
        node.publish(&format!("k{i:05}"), &value(i)).unwrap();
    }
    let mut seen = vec![false; 20_100];
    let mut late_from = None;
    for n in 0..20_100 {
        let msg = peer.recv(Duration::from_secs(20)).expect("message");
        let Owned::Publish(key, v) = msg else {
            panic!("expected PUBLISH, got {msg:?}");
        };
        let i: usize = key[1..].parse().unwrap();
        assert_eq!(v, value(i), "value of {key}");
        assert!(!seen[i], "{key} twice");
        seen[i] = true;
        if i >= 20_000 && late_from.is_none() {
            late_from = Some(n);
        }
    }
    // The snapshot came whole, the late tuples after it.
    assert_eq!(late_from, Some(20_000));
}
