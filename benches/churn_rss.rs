//! Issue 22's churn scenario with real nodes and sockets, for resident
//! memory: twenty nodes in this process, linked to a hub over loopback
//! TCP, one of them recreated every second (a new node id), each
//! publishing a presence record with a 2 s time to live. Prints this
//! process's resident memory (VmRSS) and the hub's entries once a minute,
//! one JSON line each.
//!
//!   cargo bench --bench churn_rss                 # an hour
//!   CHURN_SECONDS=600 cargo bench --bench churn_rss

use std::time::{Duration, Instant};

use zgossip::Node;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn start(i: usize, hub: &str) -> Node {
    let n = Node::new(&format!("n{i}")).unwrap();
    n.connect(hub).unwrap();
    n
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs a quick one.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let seconds: u64 = std::env::var("CHURN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 3 } else { 3_600 });
    let hub = Node::new("hub").unwrap();
    let port = hub.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let ep = format!("tcp://127.0.0.1:{port}");
    let mut nodes: Vec<Node> = (0..20).map(|i| start(i, &ep)).collect();
    let begin = Instant::now();
    for second in 1..=seconds {
        let i = (second % 20) as usize;
        nodes[i] = start(i, &ep);
        for (j, n) in nodes.iter().enumerate() {
            let ttl = Duration::from_secs(2);
            let _ = n.publish_ttl(&format!("presence/{second}/{j}"), "here", ttl);
            while n.recv_timeout(Duration::ZERO).ok().flatten().is_some() {}
        }
        while hub.recv_timeout(Duration::ZERO).ok().flatten().is_some() {}
        let next = begin + Duration::from_secs(second);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        if second % 60 == 0 || second == seconds {
            let st = hub.stats().unwrap();
            println!(
                "{{\"seconds\":{second},\"rss_kib\":{},\"hub_tuples\":{},\"hub_tombstones\":{}}}",
                rss_kib(),
                st.get("tuples").copied().unwrap_or(0),
                st.get("tombstones").copied().unwrap_or(0)
            );
        }
    }
}
