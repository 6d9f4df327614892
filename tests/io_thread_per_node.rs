//! `ZGOSSIP_IO_THREADS=0`: every node on a thread of its own, as before
//! shared threads; gossip works the same.

mod common;

use std::time::Duration;

use common::*;
use zgossip::Node;

#[test]
fn with_zero_shared_threads_each_node_has_its_own() {
    // Read once, at the first node: set before any node exists (the only
    // test of this binary).
    std::env::set_var("ZGOSSIP_IO_THREADS", "0");
    let a = Node::new("own-a").unwrap();
    let b = Node::new("own-b").unwrap();
    // A new thread names itself as it starts: wait for the names (bounded).
    let names = |deadline: std::time::Instant| loop {
        let names: Vec<String> = threads().into_iter().map(|(n, _)| n).collect();
        let both = ["zgossip-own-a", "zgossip-own-b"]
            .iter()
            .all(|want| names.iter().any(|n| n == want));
        if both || std::time::Instant::now() >= deadline {
            return names;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let names = names(std::time::Instant::now() + Duration::from_secs(5));
    assert!(names.iter().any(|n| n == "zgossip-own-a"), "{names:?}");
    assert!(names.iter().any(|n| n == "zgossip-own-b"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("zgossip-io-")),
        "{names:?}"
    );
    let endpoint = bind_fresh(&a, "tcp", "own");
    b.send(&["CONNECT", endpoint.as_str()]).unwrap();
    a.send(&["PUBLISH", "k", "v"]).unwrap();
    wait_status(&b, 1, Duration::from_secs(5));
    drop(a);
    b.send(&["PUBLISH", "k2", "v2"]).unwrap();
    wait_status(&b, 2, Duration::from_secs(5));
    // A node's own thread ends with it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while threads().iter().any(|(n, _)| n == "zgossip-own-a") {
        assert!(
            std::time::Instant::now() < deadline,
            "the thread of a dropped node lives on"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(threads().iter().any(|(n, _)| n == "zgossip-own-b"));
}
