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
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
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
    let mut endpoint = bind_fresh(&nodes[0], "tcp", "io");
    for n in &nodes[1..] {
        n.send(&["CONNECT", endpoint.as_str()]).unwrap();
        endpoint = bind_fresh(n, "tcp", "io");
    }
    nodes[0].send(&["PUBLISH", "k", "v"]).unwrap();
    wait_status(&nodes[49], 1, Duration::from_secs(10));
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
