//! METRICS between two real nodes: its values match STATS, the
//! propagation delay histogram counts every write received, the links are
//! labelled, and the command works through the pipe as C and Python use
//! it.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::wait_status;
use zgossip::Node;

const T: Duration = Duration::from_secs(20);

/// The samples of a METRICS text (`name{labels}` to value), and which
/// metric each STATS counter became (from its help text).
struct Parsed {
    samples: BTreeMap<String, f64>,
    stat_metric: BTreeMap<String, String>,
}

fn parse(text: &str) -> Parsed {
    let mut samples = BTreeMap::new();
    let mut stat_metric = BTreeMap::new();
    for line in text.lines() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, help) = help.split_once(' ').unwrap();
            if let Some(stat) = help
                .strip_suffix(')')
                .and_then(|h| h.rsplit_once("(STATS "))
            {
                stat_metric.insert(stat.1.to_string(), name.to_string());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value = if value == "+Inf" {
            f64::INFINITY
        } else {
            value.parse().expect(line)
        };
        samples.insert(series.to_string(), value);
    }
    Parsed {
        samples,
        stat_metric,
    }
}

/// The value of a STATS counter as METRICS shows it.
fn metric_of(p: &Parsed, stat: &str) -> f64 {
    let name = &p.stat_metric[stat];
    match p.samples.get(name) {
        Some(v) if name.ends_with("_seconds") => v * 1000.0,
        Some(v) => *v,
        // An info metric: the value is its label.
        None => {
            let (series, _) = p.samples.range(format!("{name}{{")..).next().expect(name);
            let v = series.split('"').nth(1).unwrap();
            v.parse().unwrap()
        }
    }
}

#[test]
fn metrics_match_stats_and_count_every_write_received() {
    let a = Node::new("a").unwrap();
    let port = a.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let b = Node::new("b").unwrap();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    b.connect(&endpoint).unwrap();
    for i in 0..20 {
        a.publish(&format!("a/{i}"), "x").unwrap();
    }
    for i in 0..30 {
        b.publish(&format!("b/{i}"), "y").unwrap();
    }
    wait_status(&a, 50, T);
    wait_status(&b, 50, T);

    for (node, received) in [(&a, 30u64), (&b, 20u64)] {
        // A counter that did not move between two STATS must read the
        // same in the METRICS taken between them; the rest (pings, sync
        // rounds) may move.
        let deadline = Instant::now() + T;
        let (before, parsed) = loop {
            let before = node.stats().unwrap();
            let parsed = parse(&node.metrics().unwrap());
            let after = node.stats().unwrap();
            if before == after || Instant::now() > deadline {
                break (before, parsed);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for (stat, value) in &before {
            assert!(
                parsed.stat_metric.contains_key(stat),
                "{}: STATS {stat} is not in METRICS",
                node.name()
            );
            assert_eq!(
                metric_of(&parsed, stat),
                *value as f64,
                "{}: STATS {stat}",
                node.name()
            );
        }
        assert_eq!(before["tuples"], 50);
        assert_eq!(before["tuples-applied"], received);
        let s = &parsed.samples;
        assert_eq!(
            s["zgossip_propagation_delay_seconds_count"],
            received as f64,
            "{}",
            node.name()
        );
        assert_eq!(
            s["zgossip_propagation_delay_seconds_bucket{le=\"+Inf\"}"],
            received as f64
        );
        // On one machine a write takes well under a minute.
        assert_eq!(
            s["zgossip_propagation_delay_seconds_bucket{le=\"60\"}"],
            received as f64
        );
        assert!(s["zgossip_propagation_delay_seconds_sum"] >= 0.0);
        // One link each, labelled; its frames are the node's (the only
        // connection since start).
        let frames_in: Vec<_> = s
            .iter()
            .filter(|(k, _)| k.starts_with("zgossip_link_frames_in_total{"))
            .collect();
        assert_eq!(frames_in.len(), 1, "{frames_in:?}");
        let (series, n) = frames_in[0];
        assert!(*n >= received as f64, "{series} {n}");
        assert!(*n <= s["zgossip_frames_in_total"], "{series} {n}");
        if node.name() == "b" {
            assert!(
                series.contains(&format!("role=\"outbound\",peer=\"{endpoint}\"")),
                "{series}"
            );
        } else {
            assert!(
                series.contains("role=\"inbound\",peer=\"127.0.0.1\""),
                "{series}"
            );
        }
        assert!(s
            .keys()
            .any(|k| k.starts_with("zgossip_link_bytes_out_total{")));
    }
}

#[test]
fn metrics_through_the_pipe_and_bad_arguments() {
    let a = Node::new("a").unwrap();
    a.send(&["METRICS"]).unwrap();
    let reply = a.recv_timeout(T).unwrap().unwrap();
    assert_eq!(reply.len(), 2);
    assert_eq!(reply[0], "METRICS");
    assert!(reply[1].contains("# TYPE zgossip_tuples gauge\nzgossip_tuples 0\n"));
    let e = a.send(&["METRICS", "extra"]).unwrap_err();
    assert!(e.to_string().contains("METRICS takes 0 arguments"), "{e}");
}

/// What one METRICS costs (printed; run with --nocapture).
#[test]
fn metrics_cost() {
    let a = Node::new("a").unwrap();
    for i in 0..100 {
        a.publish(&format!("k{i}"), "v").unwrap();
    }
    let n = 200;
    let started = Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = a.metrics().unwrap().len();
    }
    let per = started.elapsed() / n;
    let stats_started = Instant::now();
    for _ in 0..n {
        a.stats().unwrap();
    }
    let stats_per = stats_started.elapsed() / n;
    eprintln!("METRICS: {per:?} per call ({len} bytes); STATS: {stats_per:?} per call");
}
