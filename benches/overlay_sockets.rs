//! The overlay on real sockets (issue 24's targets): N nodes in this
//! process, linked by `DISCOVER` alone, in a sealed network namespace of
//! their own (only `lo`: no beacon leaves the machine; the bench runs
//! itself again inside it under `ip netns exec`, so it needs root and
//! iproute2).
//!
//! It reports, one JSON line per N:
//! - *formed*: the time to create the nodes (each sends `DISCOVER
//!   interface=lo`, default interval unless `SOCKET_INTERVAL` says), then
//!   until every node has an overlay link and the sum of links stayed the
//!   same for a second, then until a probe write at the first node reached
//!   every node; links per node (max, median) and
//!   the process's open descriptors against its limit (never raised here);
//! - *burst*: `WRITES` writes published at random nodes as fast as the
//!   application can, then the time until every node holds them all, and
//!   every frame every node sent (`STATS frames-out`) from the first
//!   write until a second after the last node held them all, per node per
//!   write.
//!
//!   cargo bench --bench overlay_sockets                       # N = 256
//!   SOCKET_NODES=256,1000 WRITES=1000 cargo bench --bench overlay_sockets
//!
//! Under `cargo test` it runs 24 nodes and 50 writes and asserts that they
//! all arrive (skipping without namespaces, failing so under `CI=true`).

#[path = "../tests/support/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use zgossip::rng::Rng;
use zgossip::Node;

const INSIDE: &str = "overlay_sockets";

fn stat(node: &Node, name: &str) -> u64 {
    node.stats()
        .map(|s| s.get(name).copied().unwrap_or(0))
        .unwrap_or(0)
}

fn total(nodes: &[Node], name: &str) -> u64 {
    nodes.iter().map(|n| stat(n, name)).sum()
}

/// Drops what waits on every node's pipe (deliveries nobody reads here).
fn drain(nodes: &[Node]) {
    for n in nodes {
        while let Ok(Some(_)) = n.try_recv() {}
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn soft_nofile() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .unwrap_or_default()
}

/// Polls `done` every 50 ms until it holds or `limit` passes; the time it
/// took, or `None`.
fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("null".into(), |d| format!("{:.2}", d.as_secs_f64()))
}

struct Figures {
    all_arrived: bool,
}

fn run(n: usize, writes: usize, quick: bool) -> Figures {
    let started = Instant::now();
    let interval = std::env::var("SOCKET_INTERVAL").ok();
    let mut discover = vec!["DISCOVER".to_string(), "interface=lo".to_string()];
    discover.extend(interval.map(|ms| format!("interval={ms}")));
    // SOCKET_ROOT_INTERVAL=0: without the tree's root, for comparison.
    let root_interval = std::env::var("SOCKET_ROOT_INTERVAL").ok();
    let trace_created = std::env::var("SOCKET_TRACE").is_ok();
    let mut nodes: Vec<Node> = Vec::with_capacity(n);
    for i in 0..n {
        if trace_created && i % 100 == 0 && i > 0 {
            let mut sums = std::collections::BTreeMap::<&str, u64>::new();
            for m in &nodes {
                let st = m.stats().unwrap_or_default();
                for k in [
                    "tree-root-adverts-sent",
                    "tree-root-changes",
                    "tree-parent-changes",
                    "tree-detachments",
                    "overlay-active",
                    "discovery-beacons",
                    "frames-out",
                ] {
                    *sums.entry(k).or_default() += st.get(k).copied().unwrap_or(0);
                }
            }
            eprintln!(
                "{:.1} s: {i} created {sums:?}",
                started.elapsed().as_secs_f64()
            );
        }
        let node = Node::new(&format!("s{i}")).expect("node");
        if let Some(ms) = &root_interval {
            node.send(&["SET", "overlay/root-interval", ms])
                .expect("SET");
        }
        node.send(&discover).expect("DISCOVER");
        nodes.push(node);
    }
    let created = started.elapsed();
    let limit = Duration::from_secs(if quick { 30 } else { 60 });

    // Formed: every node linked, the links unchanged for a second.
    let trace = std::env::var("SOCKET_TRACE").is_ok();
    let mut last = (0u64, Instant::now());
    let linked = wait(limit, || {
        drain(&nodes);
        let active: Vec<u64> = nodes.iter().map(|n| stat(n, "overlay-active")).collect();
        let sum: u64 = active.iter().sum();
        if trace {
            let alone = active.iter().filter(|&&a| a == 0).count();
            let mut merges = 0;
            let mut beacons = 0;
            let mut anchors = std::collections::BTreeMap::new();
            for n in &nodes {
                let s = n.stats().unwrap_or_default();
                let get = |k: &str| s.get(k).copied().unwrap_or(0);
                merges += get("overlay-merges");
                beacons += get("discovery-beacons");
                *anchors.entry(get("overlay-anchor")).or_insert(0) += 1;
            }
            let mut parts: Vec<u64> = anchors.values().copied().collect();
            parts.sort_unstable_by(|a, b| b.cmp(a));
            parts.truncate(5);
            eprintln!(
                "{:.2} s: active ends {sum}, alone {alone}, merges {merges}, beacons heard \
                 {beacons}, anchors {} (largest {parts:?})",
                started.elapsed().as_secs_f64(),
                anchors.len()
            );
        }
        if sum != last.0 {
            last = (sum, Instant::now());
        }
        active.iter().all(|&a| a > 0) && last.1.elapsed() >= Duration::from_secs(1)
    });
    let probe_start = Instant::now();
    let probe = wait(limit, {
        nodes[0].publish("probe", "formed").expect("publish");
        || {
            drain(&nodes);
            let have = nodes
                .iter()
                .filter(|n| n.get("probe").ok().flatten().is_some())
                .count();
            if trace {
                let links: u64 = total(&nodes, "overlay-active");
                let alone = nodes
                    .iter()
                    .filter(|n| stat(n, "overlay-active") == 0)
                    .count();
                eprintln!(
                    "{:.2} s: probe at {have} of {n}, active ends {links}, alone {alone}",
                    probe_start.elapsed().as_secs_f64()
                );
            }
            have == n
        }
    });
    let formed = started.elapsed();
    let mut active: Vec<u64> = nodes.iter().map(|n| stat(n, "overlay-active")).collect();
    active.sort_unstable();
    let fds = open_fds();

    // The burst.
    let before = total(&nodes, "frames-out");
    const PARTS: [&str; 6] = [
        "tuples-applied",
        "sync-tuples-out",
        "tree-announce-frames",
        "tree-grafted",
        "tree-prunes-sent",
        "frames-in",
    ];
    let parts_before: Vec<u64> = PARTS.iter().map(|p| total(&nodes, p)).collect();
    if trace {
        eprintln!(
            "before the burst: eager ends {}, lazy ends {}",
            total(&nodes, "overlay-eager"),
            total(&nodes, "overlay-lazy")
        );
    }
    let mut rng = Rng::new(0x5eed_0024);
    // Every node's application gets every write, its own included (as
    // CZMQ's zgossip delivers a PUBLISH to its own application too).
    let expected = vec![writes as u64; n];
    let mut origin = vec![0usize; writes];
    let t0 = Instant::now();
    for (w, at_w) in origin.iter_mut().enumerate() {
        let at = rng.index(n);
        nodes[at]
            .publish(&format!("w/{w}"), "burst")
            .expect("publish");
        *at_w = at;
    }
    let published = t0.elapsed();
    // Each node's deliveries are counted as they come out of its pipe
    // (no round trip to the node's thread: asking a thousand busy nodes
    // would measure the asking).
    let mut delivered = vec![0u64; n];
    let mut reached = vec![0usize; writes];
    let mut reported = false;
    let mut lag_reported = false;
    let everywhere = wait(limit, || {
        for (i, node) in nodes.iter().enumerate() {
            while let Ok(Some(msg)) = node.try_recv() {
                let key = msg.get(1).and_then(|k| k.strip_prefix("w/"));
                if let (true, Some(w)) = (msg.first().is_some_and(|m| m == "DELIVER"), key) {
                    delivered[i] += 1;
                    if let Ok(w) = w.parse::<usize>() {
                        reached[w.min(writes - 1)] += 1;
                    }
                }
            }
        }
        // A write that almost no node has a while after the burst: what
        // its writer's node says of its links.
        if trace && !reported && t0.elapsed() > Duration::from_millis(1_500) {
            let stuck: Vec<usize> = (0..writes).filter(|&w| reached[w] < n / 10).collect();
            if !stuck.is_empty() {
                reported = true;
                let mut origins: Vec<usize> = stuck.iter().map(|&w| origin[w]).collect();
                origins.sort_unstable();
                origins.dedup();
                eprintln!("{} writes stuck, from nodes {origins:?}", stuck.len());
                for &o in origins.iter().take(3) {
                    let st = nodes[o].stats().unwrap_or_default();
                    let pick: Vec<String> = st
                        .iter()
                        .filter(|(k, _)| {
                            k.starts_with("overlay-")
                                || k.starts_with("tree-")
                                || *k == "connections"
                        })
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    eprintln!("  node {o}: {}", pick.join(" "));
                }
            }
        }
        let short = |i: usize| expected[i].saturating_sub(delivered[i]);
        let lacking = (0..n).filter(|&i| short(i) > 0).count();
        // Nodes still short of writes 2 s after the burst: what they say
        // of their links and the tree.
        if trace && !lag_reported && lacking > 0 && t0.elapsed() > Duration::from_secs(2) {
            lag_reported = true;
            for i in (0..n).filter(|&i| short(i) > 0).take(3) {
                let st = nodes[i].stats().unwrap_or_default();
                let pick: Vec<String> = st
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with("overlay-") || k.starts_with("tree-") || *k == "connections"
                    })
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                eprintln!(
                    "  lagging node {i} ({} short): {}",
                    short(i),
                    pick.join(" ")
                );
            }
        }
        if trace {
            let missing: u64 = (0..n).map(short).sum();
            eprintln!(
                "{:.2} s: {lacking} nodes lack {missing} writes",
                t0.elapsed().as_secs_f64()
            );
        }
        lacking == 0
    });
    let want = writes as u64 + 1; // the probe too
    let held: u64 = nodes
        .iter()
        .map(|n| (n.status().unwrap_or(0) as u64).min(want))
        .sum();
    std::thread::sleep(Duration::from_secs(1));
    drain(&nodes);
    let frames = total(&nodes, "frames-out") - before;
    if trace {
        for (p, b) in PARTS.iter().zip(&parts_before) {
            let d = total(&nodes, p) - b;
            eprintln!(
                "{p}: {:.3} per node per write",
                d as f64 / (n * writes) as f64
            );
        }
    }
    let line = format!(
        "{{\"bench\":\"overlay_sockets\",\"nodes\":{n},\"writes\":{writes},\
         \"created_s\":{:.2},\"linked_s\":{},\"probe_s\":{},\"formed_s\":{:.2},\
         \"links_max\":{},\"links_median\":{},\"links_least\":{},\
         \"fds\":{fds},\"fd_limit\":\"{}\",\"publish_s\":{:.3},\
         \"everywhere_s\":{},\"held_share\":{:.5},\"frames_per_node_per_write\":{:.3}}}",
        created.as_secs_f64(),
        secs(linked),
        secs(probe),
        formed.as_secs_f64(),
        active[n - 1],
        active[n / 2],
        active[0],
        soft_nofile(),
        published.as_secs_f64(),
        secs(everywhere),
        held as f64 / (want * n as u64) as f64,
        frames as f64 / (n * writes) as f64,
    );
    // The figures first: shutting a thousand nodes down takes a while.
    println!("{line}");
    let closing = Instant::now();
    for (i, node) in nodes.into_iter().enumerate() {
        drop(node);
        if trace && (i + 1) % 100 == 0 {
            eprintln!(
                "{} nodes closed in {:.1} s",
                i + 1,
                closing.elapsed().as_secs_f64()
            );
        }
    }
    Figures {
        all_arrived: everywhere.is_some(),
    }
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs a quick one.
    let quick =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    if netns::inside(INSIDE).is_some() {
        let (sizes, writes) = if quick {
            (vec![24], 50)
        } else {
            (
                env_list("SOCKET_NODES", "256"),
                env_list("WRITES", "1000")[0],
            )
        };
        for n in sizes {
            let figures = run(n, writes, quick);
            if quick {
                assert!(figures.all_arrived, "not every write arrived");
            }
        }
        return;
    }
    let ns = match netns::Netns::sealed() {
        Ok(ns) => ns,
        Err(why) => return netns::skip(&why),
    };
    let exe = std::env::current_exe().expect("bench binary path");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = ns.command(&exe.to_string_lossy(), &args, &[]);
    command
        .env("ZG_NETNS_TEST", INSIDE)
        .env("ZG_NETNS_PARENT", netns::own_netns().unwrap_or_default());
    let out = netns::cmd::run_bounded(command, Duration::from_secs(if quick { 90 } else { 1200 }));
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !quick {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    if !out.status.success() || !stdout.contains("\"bench\":\"overlay_sockets\"") {
        panic!(
            "overlay_sockets failed inside its namespace ({:?}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !quick {
        let _ = std::fs::create_dir_all("target/bench");
        let _ = std::fs::write("target/bench/overlay_sockets.jsonl", stdout.as_bytes());
    }
}
