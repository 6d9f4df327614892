//! Nodes of one process share event-loop threads (`ZGOSSIP_IO_THREADS`,
//! default 1): many nodes do not mean many threads, and a node that lingers
//! on `$TERM` does not hold up the others on its thread.

mod common;

use std::time::{Duration, Instant};

use common::*;
use zgossip::wire::gossip::Message;
use zgossip::wire::zmtp::SocketType;
use zgossip::Node;

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    threads()
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .count()
}

/// The shared threads: a new thread names itself as it starts, so its
/// name is waited for (bounded).
fn io_threads_seen() -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = threads_named("zgossip-io-");
        if n > 0 || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn fifty_nodes_share_one_event_loop_thread_and_still_gossip() {
    let nodes: Vec<Node> = (0..50)
        .map(|i| Node::new(&format!("n{i}")).unwrap())
        .collect();
    assert_eq!(threads_named("zgossip-n"), 0, "no thread per node");
    assert_eq!(io_threads_seen(), 1, "one shared thread");
    // A chain through all of them works on that one thread.
    chain_passes_a_tuple_along(&nodes, "tcp");
}

/// Chains `nodes` over `transport`, publishes at the first and waits for
/// the last.
fn chain_passes_a_tuple_along(nodes: &[Node], transport: &str) {
    let mut endpoint = bind_fresh(&nodes[0], transport, "hand");
    for n in &nodes[1..] {
        n.send(&["CONNECT", endpoint.as_str()]).unwrap();
        endpoint = bind_fresh(n, transport, "hand");
    }
    nodes[0].send(&["PUBLISH", "k", "v"]).unwrap();
    wait_status(nodes.last().unwrap(), 1, Duration::from_secs(10));
}

#[test]
fn a_chain_of_the_thread_passes_every_frame_once_and_in_order() {
    // One tuple at a time, each waited for at the far end: were bytes
    // handed to the codec twice, frames would be counted twice (or fail to
    // parse); were they skipped, tuples would be missing.
    let nodes: Vec<Node> = (0..5)
        .map(|i| Node::new(&format!("la{i}")).unwrap())
        .collect();
    let mut endpoint = bind_fresh(&nodes[0], "tcp", "ahead");
    for n in &nodes[1..] {
        n.send(&["CONNECT", endpoint.as_str()]).unwrap();
        endpoint = bind_fresh(n, "tcp", "ahead");
    }
    let last = nodes.last().unwrap();
    let count: u64 = 100;
    for i in 0..count {
        nodes[0]
            .send(&["PUBLISH", &format!("k{i:03}"), &format!("v{i}")])
            .unwrap();
        let got = deliveries(last, 1, Duration::from_secs(10));
        assert_eq!(got, vec![(format!("k{i:03}"), format!("v{i}"))]);
    }
    for n in &nodes[1..] {
        let stats = n.stats().unwrap();
        assert_eq!(stats["tuples-applied"], count, "{}: {stats:?}", n.name());
        assert_eq!(stats["malformed"], 0, "{}: {stats:?}", n.name());
        // Besides the tuples, a handful of control frames (the greeting's
        // HELLO, a sync, pings): far fewer than a second copy of them.
        let extra = stats["frames-in"] - count;
        assert!(extra < count / 4, "{}: {stats:?}", n.name());
    }
}

#[test]
fn nodes_of_the_thread_pass_tuples_on_over_inproc_too() {
    let nodes: Vec<Node> = (0..4)
        .map(|i| Node::new(&format!("ip{i}")).unwrap())
        .collect();
    chain_passes_a_tuple_along(&nodes, "inproc");
}

#[test]
fn a_lingering_node_does_not_hold_up_the_others_on_its_thread() {
    let slow = Node::new("slow").unwrap();
    let other = Node::new("other").unwrap();
    assert_eq!(io_threads_seen(), 1, "both on the one shared thread");
    slow.send(&["SET", "server/linger", "3000"]).unwrap();
    let value = "x".repeat(1000);
    for i in 0..30_000 {
        slow.send(&["PUBLISH", &format!("k{i}"), value.as_str()])
            .unwrap();
    }
    wait_status(&slow, 30_000, Duration::from_secs(20));
    // A peer that asks for everything and never reads: 30 MB stay queued.
    let endpoint = bind_fresh(&slow, "tcp", "linger");
    let mut peer = RawPeer::connect(&endpoint, SocketType::Dealer);
    peer.send(&Message::Hello);
    std::thread::sleep(Duration::from_millis(200));
    let term = std::thread::spawn(move || {
        let started = Instant::now();
        drop(slow); // $TERM: lingers up to 3 s with output queued
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(100));
    // Meanwhile the other node answers at once.
    for _ in 0..10 {
        let asked = Instant::now();
        assert_eq!(other.status().unwrap(), 0);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "STATUS took {:?} while a node lingered",
            asked.elapsed()
        );
    }
    let lingered = term.join().unwrap();
    assert!(
        lingered >= Duration::from_millis(1000),
        "the node did linger ({lingered:?}), so the check above meant something"
    );
    drop(peer);
}

#[test]
fn timers_of_quiet_nodes_fire_while_other_nodes_of_their_thread_stay_busy() {
    // Ten quiet nodes each hold a tuple with a TTL (expiry is a timer);
    // meanwhile two busy nodes on the same thread take turn after turn
    // (every turn re-arms a timer, so stale timer entries pile up and are
    // pruned). Every expiry must still come, and on time.
    let quiet: Vec<Node> = (0..10)
        .map(|i| Node::new(&format!("q{i}")).unwrap())
        .collect();
    let busy = Node::new("busy").unwrap();
    let peer = Node::new("peer").unwrap();
    assert_eq!(io_threads_seen(), 1, "all on the one shared thread");
    peer.connect(&bind_fresh(&busy, "tcp", "busy")).unwrap();
    for (i, n) in quiet.iter().enumerate() {
        n.publish_ttl("k", "v", Duration::from_millis(300 + 50 * i as u64))
            .unwrap();
    }
    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2_000_000 {
                busy.publish(&format!("f{}", i % 1000), &i.to_string())
                    .unwrap();
                i += 1;
                // Keep the busy node's pipe short.
                while busy.recv_timeout(Duration::ZERO).unwrap().is_some() {}
            }
            (busy, i)
        })
    };
    for (i, n) in quiet.iter().enumerate() {
        let deadline = started + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = n
                .recv_timeout(left)
                .unwrap()
                .unwrap_or_else(|| panic!("q{i}: no EXPIRE within 10 s"));
            if m[0] == "EXPIRE" {
                assert_eq!(m, ["EXPIRE", "k"]);
                break;
            }
        }
    }
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (_busy, published) = flood.join().unwrap();
    assert!(
        published > 1000,
        "the busy node was busy ({published} writes)"
    );
    // The last TTL is 750 ms; expiry runs on a timer of its own.
    assert!(took < Duration::from_secs(5), "expiries took {took:?}");
}
