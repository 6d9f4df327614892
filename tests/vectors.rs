//! Golden byte streams captured between two real CZMQ 4.2.1 zgossip nodes
//! (`tests/vectors/`, see its README): we must read them exactly and
//! produce them byte for byte.

use std::path::PathBuf;

use zgossip::wire::gossip::{self, Message};
use zgossip::wire::zmtp::{Connection, ConnectionConfig, ConnectionEvent, SocketType};

const HANDSHAKE_LEN: usize = 0x6b;

fn vector(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden vector {}: {e}. The directory tests/vectors \
             (in the repository) holds the CZMQ captures and must be present.",
            path.display()
        )
    })
}

fn publish(key: &'static str, value: &'static str) -> Message<'static> {
    Message::Publish { key, value, ttl: 0 }
}

/// What the DEALER (connecting node) sent, per the .txt file.
fn dealer_messages() -> Vec<Message<'static>> {
    vec![
        Message::Hello,
        publish("server-key", "server-value"),
        publish("client-key", "client-value"),
    ]
}

/// What the ROUTER (bound node) sent, per the .txt file.
fn router_messages() -> Vec<Message<'static>> {
    vec![
        publish("server-key", "server-value"),
        publish("client-key", "client-value"),
    ]
}

/// Feeds `stream` in chunks of `chunk` bytes to a connection of type
/// `reader`, returning the peer's socket type and identity from Ready and
/// the ZGP messages as owned (name, key, value, ttl) tuples.
fn read_stream(
    stream: &[u8],
    reader: SocketType,
    chunk: usize,
) -> (SocketType, Vec<u8>, Vec<Vec<u8>>) {
    let mut conn = Connection::new(ConnectionConfig::new(reader));
    let mut ready = None;
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        conn.feed(piece);
        while let Some(event) = conn.poll().expect("golden stream must parse") {
            match event {
                ConnectionEvent::Ready(peer) => {
                    assert!(ready.is_none(), "two Ready events");
                    assert!(frames.is_empty(), "message before Ready");
                    assert_eq!(peer.minor_version, 1);
                    ready = Some((peer.socket_type, peer.identity));
                }
                ConnectionEvent::Message(msg) => {
                    assert_eq!(msg.len(), 1, "gossip messages are single frames");
                    frames.push(msg.first().to_vec());
                }
            }
        }
    }
    assert_eq!(conn.buffered_input(), 0, "bytes left unparsed");
    assert!(conn.is_ready());
    let (t, id) = ready.expect("no Ready event");
    (t, id, frames)
}

fn check_read(file: &str, reader: SocketType, sender: SocketType, want: &[Message<'_>]) {
    let stream = vector(file);
    for chunk in [stream.len(), 1, 7, 11, 64] {
        let (peer_type, identity, frames) = read_stream(&stream, reader, chunk);
        assert_eq!(peer_type, sender, "{file} chunk {chunk}");
        assert!(identity.is_empty());
        let got: Vec<Message<'_>> = frames
            .iter()
            .map(|f| gossip::decode(f).expect("golden ZGP frame must decode"))
            .collect();
        assert_eq!(got, want, "{file} chunk {chunk}");
    }
}

#[test]
fn dealer_reads_router_stream() {
    check_read(
        "tcp-session.router-to-dealer.bin",
        SocketType::Dealer,
        SocketType::Router,
        &router_messages(),
    );
}

#[test]
fn router_reads_dealer_stream() {
    check_read(
        "tcp-session.dealer-to-router.bin",
        SocketType::Router,
        SocketType::Dealer,
        &dealer_messages(),
    );
}

/// Builds the stream a connection of type `ours` writes when talking to a
/// peer of type `peer` and sending `msgs`.
fn write_stream(ours: SocketType, peer: SocketType, msgs: &[Message<'_>]) -> Vec<u8> {
    let mut conn = Connection::new(ConnectionConfig::new(ours));
    // The peer's greeting and READY, produced by a Connection of its type.
    let mut other = Connection::new(ConnectionConfig::new(peer));
    let mut wire = Vec::new();
    let take = |c: &mut Connection, wire: &mut Vec<u8>| {
        let out = c.pending_output().to_vec();
        c.consume_output(out.len());
        wire.extend_from_slice(&out);
        out
    };
    let ours_greeting = take(&mut conn, &mut wire);
    assert_eq!(ours_greeting.len(), 64);
    other.feed(&ours_greeting);
    assert!(other.poll().unwrap().is_none());
    let mut theirs = Vec::new();
    take(&mut other, &mut theirs);
    conn.feed(&theirs);
    match conn.poll().unwrap() {
        Some(ConnectionEvent::Ready(p)) => assert_eq!(p.socket_type, peer),
        other => panic!("expected Ready, got {other:?}"),
    }
    take(&mut conn, &mut wire);
    let mut body = Vec::new();
    for m in msgs {
        body.clear();
        m.encode(&mut body);
        assert_eq!(body.len(), m.encoded_len());
        conn.queue_message(&[&body]).unwrap();
    }
    take(&mut conn, &mut wire);
    wire
}

#[test]
fn dealer_writes_golden_bytes() {
    let golden = vector("tcp-session.dealer-to-router.bin");
    let ours = write_stream(SocketType::Dealer, SocketType::Router, &dealer_messages());
    assert_eq!(
        ours[..HANDSHAKE_LEN],
        golden[..HANDSHAKE_LEN],
        "greeting+READY"
    );
    assert_eq!(ours, golden);
}

#[test]
fn router_writes_golden_bytes() {
    let golden = vector("tcp-session.router-to-dealer.bin");
    let ours = write_stream(SocketType::Router, SocketType::Dealer, &router_messages());
    assert_eq!(
        ours[..HANDSHAKE_LEN],
        golden[..HANDSHAKE_LEN],
        "greeting+READY"
    );
    assert_eq!(ours, golden);
}

#[test]
fn every_prefix_of_golden_streams_is_safe() {
    for (file, reader, want) in [
        (
            "tcp-session.dealer-to-router.bin",
            SocketType::Router,
            dealer_messages(),
        ),
        (
            "tcp-session.router-to-dealer.bin",
            SocketType::Dealer,
            router_messages(),
        ),
    ] {
        let stream = vector(file);
        for n in 0..=stream.len() {
            let mut conn = Connection::new(ConnectionConfig::new(reader));
            conn.feed(&stream[..n]);
            let mut got = 0;
            while let Some(event) = conn.poll().expect("prefix must not error") {
                if let ConnectionEvent::Message(m) = event {
                    let msg = gossip::decode(m.first()).unwrap();
                    assert_eq!(Some(&msg), want.get(got), "{file} prefix {n}");
                    got += 1;
                }
            }
        }
    }
}
