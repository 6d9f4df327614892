//! Key rotation on running nodes (issue 27), over TCP loopback: a CURVE
//! network rotates every node's key, one node at a time, while a writer
//! publishes; and the keyring commands refuse bad input. Every loop is
//! bounded in count and time.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::RawPeer;
use zgossip::wire::curve::Keypair;
use zgossip::wire::z85;
use zgossip::wire::zmtp::{self, MechanismConfig, SocketType};
use zgossip::Node;

const T: Duration = Duration::from_secs(30);
const NODES: usize = 10;
/// The writer stops after this many writes, whatever happens.
const MAX_WRITES: usize = 3000;

/// One node of the network and its key, which the test changes while
/// the writer uses the node.
struct Member {
    node: Node,
    endpoint: String,
    key: std::sync::Mutex<Keypair>,
}

impl Member {
    fn key(&self) -> Keypair {
        self.key.lock().unwrap().clone()
    }
}

fn z(key: &[u8; 32]) -> String {
    z85::encode_key(key)
}

/// A raw CURVE client with `client` as its long-term key dialling
/// `endpoint` as a client of `server_key`: the handshake's outcome.
fn handshake(endpoint: &str, server_key: [u8; 32], client: Keypair) -> Result<(), String> {
    let mut config = zmtp::ConnectionConfig::new(SocketType::Dealer);
    config.mechanism = MechanismConfig::CurveClient {
        keys: client,
        server_key,
    };
    let mut got = Vec::new();
    RawPeer::try_connect(endpoint, config, &mut got).map(drop)
}

fn stat(node: &Node, name: &str) -> u64 {
    let stats = node.stats().unwrap();
    *stats
        .get(name)
        .unwrap_or_else(|| panic!("STATS has no {name}"))
}

/// The nodes node `i` dials: the next two around the ring, so every node
/// has four links (two out, two in) and the network stays connected
/// while any one link is down.
fn dials(i: usize) -> [usize; 2] {
    [(i + 1) % NODES, (i + 2) % NODES]
}

/// The nodes that dial node `x`.
fn dialled_by(x: usize) -> Vec<usize> {
    (0..NODES).filter(|&i| dials(i).contains(&x)).collect()
}

/// Ten CURVE nodes, each admitting only the others' client keys, linked
/// by CONNECT with server keys.
fn network() -> Vec<Member> {
    let members: Vec<Member> = (0..NODES)
        .map(|i| {
            let node = Node::new(&format!("n{i}")).unwrap();
            let key = Keypair::generate().unwrap();
            node.send(&["KEYRING", "ADD", &z(&key.secret)]).unwrap();
            let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
            Member {
                node,
                endpoint: format!("tcp://127.0.0.1:{port}"),
                key: std::sync::Mutex::new(key),
            }
        })
        .collect();
    let everyone: Vec<String> = members.iter().map(|m| z(&m.key().public)).collect();
    for m in &members {
        let mut allow = vec!["CURVE ALLOW"];
        allow.extend(everyone.iter().map(String::as_str));
        m.node.send(&allow).unwrap();
    }
    for (i, m) in members.iter().enumerate() {
        for j in dials(i) {
            let to = &members[j];
            m.node
                .send(&["CONNECT", &to.endpoint, &z(&to.key().public)])
                .unwrap();
        }
    }
    members
}

/// Rotates node `x` from its key to a new one, with the procedure of
/// docs/security.md ("Key rotation"); returns the old key pair.
fn rotate(members: &[Member], x: usize) -> Keypair {
    let new = Keypair::generate().unwrap();
    let old = members[x].key();
    let (new_pub, old_pub) = (z(&new.public), z(&old.public));
    let others: Vec<usize> = (0..NODES).filter(|&i| i != x).collect();
    // 1. Every peer admits the new key as a client key.
    for &i in &others {
        members[i].node.send(&["CURVE ALLOW", &new_pub]).unwrap();
    }
    // 2. The node holds the new key beside the old one.
    let xn = &members[x].node;
    xn.send(&["KEYRING", "ADD", &z(&new.secret)]).unwrap();
    // 3. Its clients dial the new key, the old one if that fails.
    let ep = members[x].endpoint.clone();
    for i in dialled_by(x) {
        members[i]
            .node
            .send(&["CONNECT", &ep, &new_pub, &old_pub])
            .unwrap();
    }
    // 4. The new key becomes primary: announced, and the node's client key.
    xn.send(&["KEYRING", "USE", &new_pub]).unwrap();
    let held = xn.keyring().unwrap();
    assert_eq!(held.len(), 2);
    assert!(held[0].primary && held[0].public == new_pub, "{held:?}");
    // 5. The old key is retired, and no peer admits it any more (its open
    //    connections are closed; the node dials again with the new key).
    xn.send(&["KEYRING", "REMOVE", &old_pub]).unwrap();
    for &i in &others {
        members[i]
            .node
            .send(&["CURVE", "REMOVE", &old_pub])
            .unwrap();
    }
    for i in dialled_by(x) {
        members[i].node.send(&["CONNECT", &ep, &new_pub]).unwrap();
    }
    *members[x].key.lock().unwrap() = new;
    old
}

/// Publishes `PREFIX/NNNNN` every 2 ms until `stop`, `MAX_WRITES` or `T`;
/// returns how many it wrote.
fn write_until_stopped(node: &Node, prefix: &str, stop: &AtomicBool) -> usize {
    let started = Instant::now();
    let mut n = 0;
    while n < MAX_WRITES && started.elapsed() < T && !stop.load(Ordering::SeqCst) {
        node.publish(&format!("{prefix}/{n:05}"), &format!("value {n}"))
            .unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    n
}

#[test]
fn ten_nodes_rotate_every_key_while_a_writer_publishes_and_lose_nothing() {
    let members = network();
    let stop = AtomicBool::new(false);
    let mut old_keys = Vec::new();
    let written = std::thread::scope(|s| {
        let writer_node = &members[3].node;
        let stop = &stop;
        let writer = s.spawn(move || write_until_stopped(writer_node, "w", stop));
        // Let the network form and the writer run before the first turn.
        std::thread::sleep(Duration::from_millis(300));
        for x in 0..NODES {
            old_keys.push(rotate(&members, x));
            // Time for the links closed with the old key to come back.
            std::thread::sleep(Duration::from_millis(150));
        }
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap()
    });
    assert!(written > 100, "the writer wrote only {written}");

    // Zero writes lost: every node ends with every write.
    for m in &members {
        common::wait_status(&m.node, written, T);
        assert_eq!(
            m.node.get(&format!("w/{:05}", written - 1)).unwrap(),
            Some(format!("value {}", written - 1))
        );
    }
    // The rotation did cut links: each node's links made with its old
    // client key were closed by its peers (two each, unless down then),
    // and made again with its new key.
    let closed: u64 = members
        .iter()
        .map(|m| stat(&m.node, "curve-client-closed"))
        .sum();
    assert!(closed >= NODES as u64, "only {closed} links closed");
    // No connection was refused for a key a node held or admitted: every
    // handshake refused, if any, was one with a retired key.
    for m in &members {
        let name = m.node.name();
        for counter in ["curve-client-refused", "curve-unknown-refused"] {
            assert_eq!(stat(&m.node, counter), 0, "{name}: {counter}");
        }
        assert!(stat(&m.node, "curve-handshakes") > 0, "{name}");
        let held = m.node.keyring().unwrap();
        assert_eq!(held.len(), 1, "{name}: {held:?}");
        assert_eq!(held[0].public, z(&m.key().public));
    }

    // The old keys are refused afterwards: a client dialling a node's old
    // server key, and a node's old client key at its peers.
    for (i, (m, old)) in members.iter().zip(&old_keys).enumerate() {
        let refused_before = stat(&m.node, "curve-retired-refused");
        let e = handshake(&m.endpoint, old.public, Keypair::generate().unwrap()).unwrap_err();
        assert!(e.contains("retired"), "{}: {e}", m.node.name());
        assert_eq!(
            stat(&m.node, "curve-retired-refused"),
            refused_before + 1,
            "{}",
            m.node.name()
        );
        // Its new key works, for a client it admits, and is counted.
        let before = m.node.keyring().unwrap()[0].handshakes;
        let peer = members[(i + 1) % NODES].key();
        handshake(&m.endpoint, m.key().public, peer).unwrap();
        assert!(common::wait_until(T, || m.node.keyring().unwrap()[0]
            .handshakes
            == before + 1));
    }
    let e = handshake(
        &members[1].endpoint,
        members[1].key().public,
        old_keys[0].clone(),
    )
    .unwrap_err();
    assert!(e.contains("client key is not allowed"), "{e}");
    assert_eq!(stat(&members[1].node, "curve-client-refused"), 1);
    // And a node that dials an old server key learns nothing.
    let late = Node::new("late").unwrap();
    late.send(&["CONNECT", &members[0].endpoint, &z(&old_keys[0].public)])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(common::status(&late), 0);
}

/// A client's key removed from the admitted keys: its open connection is
/// closed, and it is refused when it comes back.
#[test]
fn a_client_key_removed_at_run_time_is_closed_and_refused() {
    let node = Node::new("srv").unwrap();
    let server = Keypair::generate().unwrap();
    node.send(&["SET SECRETKEY", &z(&server.secret)]).unwrap();
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let ep = format!("tcp://127.0.0.1:{port}");
    let client = Keypair::generate().unwrap();
    node.send(&["CURVE ALLOW", &z(&client.public)]).unwrap();
    let mut config = zmtp::ConnectionConfig::new(SocketType::Dealer);
    config.mechanism = MechanismConfig::CurveClient {
        keys: client.clone(),
        server_key: server.public,
    };
    let mut got = Vec::new();
    let mut peer = RawPeer::try_connect(&ep, config, &mut got).unwrap();
    node.send(&["CURVE", "REMOVE", &z(&client.public)]).unwrap();
    assert!(peer.closed_within(T), "the removed client stayed connected");
    assert_eq!(stat(&node, "curve-client-closed"), 1);
    let e = handshake(&ep, server.public, client).unwrap_err();
    assert!(e.contains("client key is not allowed"), "{e}");
}

/// A CERT directory read again at run time: a certificate deleted there
/// is no longer admitted, one added is.
#[test]
fn a_curve_directory_read_again_takes_its_changes() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("zgossip-rotation-{}", common::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (Keypair::generate().unwrap(), Keypair::generate().unwrap());
    let write = |name: &str, key: &Keypair| {
        std::fs::write(
            dir.join(name),
            format!("curve\n    public-key = \"{}\"\n", z(&key.public)),
        )
        .unwrap();
    };
    write("a.cert", &a);
    let node = Node::new("srv").unwrap();
    let server = Keypair::generate().unwrap();
    node.send(&["SET SECRETKEY", &z(&server.secret)]).unwrap();
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let ep = format!("tcp://127.0.0.1:{port}");
    let dir_text = dir.to_str().unwrap().to_string();
    node.send(&["CURVE", &dir_text]).unwrap();
    handshake(&ep, server.public, a.clone()).unwrap();
    assert!(handshake(&ep, server.public, b.clone()).is_err());
    std::fs::remove_file(dir.join("a.cert")).unwrap();
    write("b.cert", &b);
    node.send(&["CURVE", &dir_text]).unwrap();
    handshake(&ep, server.public, b).unwrap();
    let e = handshake(&ep, server.public, a).unwrap_err();
    assert!(e.contains("client key is not allowed"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Keys that are not Z85 or not 32 bytes, retiring the primary or the
/// last key, an unknown key: refused with a message, and the node goes
/// on serving.
#[test]
fn bad_keyring_input_is_refused_with_a_message() {
    let node = Node::new("bad").unwrap();
    let err = |frames: &[&str]| node.send(frames).unwrap_err().to_string();
    let (a, b) = (Keypair::generate().unwrap(), Keypair::generate().unwrap());
    let e = err(&["KEYRING", "REMOVE", &z(&a.public)]);
    assert!(e.contains("is not held by this node"), "{e}");
    assert!(err(&["KEYRING", "ADD", "not-a-key"]).contains("40-character Z85"));
    let short = &z(&a.secret)[..20];
    assert!(err(&["KEYRING", "ADD", short]).contains("40-character Z85"));
    assert!(err(&["KEYRING", "USE", &"#".repeat(40)]).contains("40-character Z85"));
    node.send(&["KEYRING", "ADD", &z(&a.secret)]).unwrap();
    let e = err(&["KEYRING", "REMOVE", &z(&a.public)]);
    assert!(e.contains("the node's only key"), "{e}");
    node.send(&["KEYRING", "ADD", &z(&b.secret)]).unwrap();
    let e = err(&["KEYRING", "ADD", &z(&b.secret)]);
    assert!(e.contains("already held"), "{e}");
    let e = err(&["KEYRING", "REMOVE", &z(&a.public)]);
    assert!(e.contains("is the primary key"), "{e}");
    let e = err(&["KEYRING", "USE", &z(&[9; 32])]);
    assert!(e.contains("is not held by this node"), "{e}");
    let e = err(&["KEYRING", "CERT", "/nonexistent/zgossip/cert"]);
    assert!(!e.is_empty());
    let e = err(&["CURVE", "REMOVE", &z(&a.public)]);
    assert!(e.contains("admits any client key"), "{e}");
    // Still serving, with both keys.
    node.publish("k", "v").unwrap();
    assert_eq!(node.get("k").unwrap(), Some("v".into()));
    assert_eq!(node.keyring().unwrap().len(), 2);
}

/// Nodes of the JOIN network.
const JOINED: usize = 8;

/// A CURVE node that admits any client knowing its key (`CURVE *`), with
/// small views and quick shuffles so that passive entries are dialled
/// during the test, and membership events on.
fn joined_node(i: usize) -> Member {
    let node = Node::new(&format!("j{i}")).unwrap();
    let key = Keypair::generate().unwrap();
    node.send(&["KEYRING", "ADD", &z(&key.secret)]).unwrap();
    for (name, value) in [
        ("overlay/active-max", "3"),
        ("overlay/shuffle-interval", "400"),
        ("membership/events", "1"),
    ] {
        node.send(&["SET", name, value]).unwrap();
    }
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    Member {
        node,
        endpoint: format!("tcp://127.0.0.1:{port}"),
        key: std::sync::Mutex::new(key),
    }
}

/// Failed members listed anywhere, as (at node, of member).
fn failed_members(members: &[Member]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for m in members {
        for r in m.node.members().unwrap() {
            if r.state == zgossip::MemberState::Failed {
                failed.push((m.node.name().to_string(), r.name.clone()));
            }
        }
    }
    failed
}

/// The rotation over an overlay formed with JOIN: peers know each other's
/// keys only from overlay messages (JOIN, NEIGHBOR, shuffles), no CONNECT
/// is ever told the new key. Each node adds a new key, switches to it
/// (its active peers are told at once), waits until they took it, and
/// retires the old one, while a writer publishes: nothing is lost, no
/// member is ever failed, the overlay stays connected, old keys are
/// refused afterwards.
#[test]
fn an_overlay_formed_with_join_rotates_every_key_and_loses_nothing() {
    let members: Vec<Member> = (0..JOINED).map(joined_node).collect();
    for i in 1..JOINED {
        let via = &members[(i - 1) / 2];
        members[i]
            .node
            .send(&["JOIN", &via.endpoint, &z(&via.key().public)])
            .unwrap();
    }
    for m in &members {
        assert!(
            common::wait_until(T, || m.node.members().unwrap().len() == JOINED),
            "{} does not list every member",
            m.node.name()
        );
    }
    let rekeys = |m: &Member| stat(&m.node, "overlay-rekeys");
    let stop = AtomicBool::new(false);
    let mut old_keys = Vec::new();
    let mut failed_seen = Vec::new();
    let written = std::thread::scope(|s| {
        let writer_node = &members[0].node;
        let stop = &stop;
        let writer = s.spawn(move || write_until_stopped(writer_node, "j", stop));
        std::thread::sleep(Duration::from_millis(300));
        for x in 0..JOINED {
            let new = Keypair::generate().unwrap();
            let old = members[x].key();
            let xn = &members[x].node;
            xn.send(&["KEYRING", "ADD", &z(&new.secret)]).unwrap();
            let before: u64 = members.iter().map(rekeys).sum();
            let actives = stat(xn, "overlay-active");
            assert!(actives > 0, "{} has no overlay link", xn.name());
            xn.send(&["KEYRING", "USE", &z(&new.public)]).unwrap();
            // Its active peers take the new key from its re-announcement.
            assert!(
                common::wait_until(T, || members.iter().map(rekeys).sum::<u64>()
                    >= before + actives),
                "{}'s peers did not take its new key",
                xn.name()
            );
            xn.send(&["KEYRING", "REMOVE", &z(&old.public)]).unwrap();
            *members[x].key.lock().unwrap() = new;
            old_keys.push(old);
            // Shuffles and refills of the views go on meanwhile: passive
            // entries with the retired key are dialled and refused.
            let pause = Instant::now();
            while pause.elapsed() < Duration::from_millis(600) {
                failed_seen.extend(failed_members(&members));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap()
    });
    assert!(written > 100, "the writer wrote only {written}");
    assert!(failed_seen.is_empty(), "members failed: {failed_seen:?}");

    // Zero writes lost, and the overlay still carries a new write.
    for m in &members {
        common::wait_status(&m.node, written, T);
        assert_eq!(
            m.node.get(&format!("j/{:05}", written - 1)).unwrap(),
            Some(format!("value {}", written - 1))
        );
    }
    members[JOINED - 1]
        .node
        .publish("j/after", "rotated")
        .unwrap();
    for m in &members {
        assert!(
            common::wait_until(T, || m.node.get("j/after").unwrap().is_some()),
            "{} did not get a write made after the rotation",
            m.node.name()
        );
        assert!(stat(&m.node, "overlay-active") > 0, "{}", m.node.name());
    }
    // No member was accused for a refused handshake, none failed, and
    // no handshake was refused for a key a node held.
    assert!(failed_members(&members).is_empty());
    for m in &members {
        let name = m.node.name();
        assert_eq!(stat(&m.node, "members-failures"), 0, "{name}");
        assert_eq!(stat(&m.node, "members-unreachable"), 0, "{name}");
        assert_eq!(stat(&m.node, "curve-unknown-refused"), 0, "{name}");
        let held = m.node.keyring().unwrap();
        assert_eq!(held.len(), 1, "{name}: {held:?}");
        assert_eq!(held[0].public, z(&m.key().public));
        // Its MEMBER events (the writes are not put on the pipe) never
        // said failed.
        while let Some(msg) = m.node.recv_timeout(Duration::from_millis(1)).unwrap() {
            if msg[0] == "MEMBER" {
                assert_ne!(msg[3], "failed", "{name}: {msg:?}");
            }
        }
    }
    let dialled_retired: u64 = members
        .iter()
        .map(|m| stat(&m.node, "curve-retired-refused"))
        .sum();
    let rekeyed: u64 = members.iter().map(rekeys).sum();
    println!("retired keys dialled and refused: {dialled_retired}; entries re-keyed: {rekeyed}");

    // The old server keys are refused afterwards; the new ones work.
    for (m, old) in members.iter().zip(&old_keys) {
        let e = handshake(&m.endpoint, old.public, Keypair::generate().unwrap()).unwrap_err();
        assert!(e.contains("retired"), "{}: {e}", m.node.name());
        handshake(&m.endpoint, m.key().public, Keypair::generate().unwrap()).unwrap();
    }
}
