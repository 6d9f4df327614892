//! What an idle network costs: N real nodes in this process on loopback,
//! linked by the overlay (each JOINs through a random earlier node) or by
//! hand (a random tree of CONNECT links plus one cycle, as the demo built
//! its cluster before the overlay), a few tuples held, nothing written.
//! After the network settles, every byte and frame the nodes send for a
//! while is counted (`STATS bytes-out`, `frames-out`): pings, rounds of
//! reconciliation, shuffles, beacons aside (no DISCOVER here).
//!
//!   cargo bench --bench idle_cost               # 64 nodes, 20 s settle, 10 s counted
//!   IDLE_NODES=128 IDLE_SECONDS=30 cargo bench --bench idle_cost

use std::time::{Duration, Instant};

use zgossip::rng::Rng;
use zgossip::Node;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Topology {
    Overlay,
    HandMade,
}

impl Topology {
    fn name(self) -> &'static str {
        match self {
            Topology::Overlay => "overlay (JOIN)",
            Topology::HandMade => "hand-made (CONNECT tree + cycle)",
        }
    }
}

fn total(nodes: &[Node], counter: &str) -> u64 {
    nodes
        .iter()
        .map(|n| n.stats().unwrap().get(counter).copied().unwrap_or(0))
        .sum()
}

fn run(n: usize, topology: Topology, settle: Duration, counted: Duration) -> String {
    let mut nodes = Vec::with_capacity(n);
    let mut endpoints = Vec::with_capacity(n);
    for i in 0..n {
        let node = Node::new(&format!("idle{i}")).unwrap();
        let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
        endpoints.push(format!("tcp://127.0.0.1:{port}"));
        nodes.push(node);
    }
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let other = &endpoints[rng.index(i)];
        match topology {
            Topology::Overlay => node.join(other).unwrap(),
            Topology::HandMade => node.connect(other).unwrap(),
        }
    }
    if topology == Topology::HandMade {
        nodes[0].connect(&endpoints[n - 1]).unwrap();
    }
    for (i, node) in nodes.iter().enumerate().take(8) {
        node.publish(&format!("idle/{i}"), "held").unwrap();
    }
    std::thread::sleep(settle);
    let (bytes0, frames0) = (total(&nodes, "bytes-out"), total(&nodes, "frames-out"));
    let start = Instant::now();
    std::thread::sleep(counted);
    let secs = start.elapsed().as_secs_f64();
    let bytes = total(&nodes, "bytes-out") - bytes0;
    let frames = total(&nodes, "frames-out") - frames0;
    let links = total(&nodes, "connections") / 2;
    format!(
        "{{\"bench\":\"idle_cost\",\"nodes\":{n},\"topology\":\"{}\",\"links\":{links},\
         \"seconds\":{secs:.1},\"kib_per_s\":{:.1},\"frames_per_s\":{:.0}}}",
        topology.name(),
        bytes as f64 / 1024.0 / secs,
        frames as f64 / secs
    )
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs a quick one.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (n, settle, counted) = if quick {
        (6, Duration::from_millis(500), Duration::from_millis(500))
    } else {
        (
            env("IDLE_NODES", 64) as usize,
            Duration::from_secs(20),
            Duration::from_secs(env("IDLE_SECONDS", 10)),
        )
    };
    for topology in [Topology::Overlay, Topology::HandMade] {
        println!("{}", run(n, topology, settle, counted));
    }
}
