//! `zgossip demo`: a cluster on loopback in this process, showing tuples
//! spreading.

use std::io::Write;
use std::time::{Duration, Instant};

use zgossip::Node;

/// A small deterministic generator so every run builds the same topology.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

pub fn run(n: usize, tuples: usize) -> Result<(), String> {
    let err = |e: zgossip::Error| e.to_string();
    let started = Instant::now();
    println!("zgossip demo: {n} nodes on 127.0.0.1, {tuples} tuples");
    let mut nodes = Vec::with_capacity(n);
    let mut endpoints = Vec::with_capacity(n);
    for i in 0..n {
        let node = Node::new(&format!("node{i}")).map_err(err)?;
        let port = node
            .bind("tcp://127.0.0.1:*")
            .map_err(err)?
            .ok_or("no port bound")?;
        endpoints.push(format!("tcp://127.0.0.1:{port}"));
        nodes.push(node);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut links = 0;
    for (i, node) in nodes.iter().enumerate().skip(1) {
        node.connect(&endpoints[rng.below(i)]).map_err(err)?;
        links += 1;
    }
    nodes[0].connect(&endpoints[n - 1]).map_err(err)?;
    links += 1;
    println!("  {links} links: a random tree plus one cycle");

    let publish_started = Instant::now();
    for t in 0..tuples {
        let at = rng.below(n);
        nodes[at]
            .publish(&format!("demo/tuple-{t}"), &format!("from node{at}"))
            .map_err(err)?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_line = String::new();
    loop {
        let mut complete = 0;
        let mut held = 0;
        for node in &nodes {
            let s = node.status().map_err(err)?;
            held += s;
            if s == tuples {
                complete += 1;
            }
        }
        let pct = held * 100 / (n * tuples);
        let bar: String = (0..40)
            .map(|i| if i * 100 / 40 < pct { '#' } else { '.' })
            .collect();
        let line = format!(
            "\r  [{bar}] {pct:3}%  {complete:>3}/{n} nodes complete  {:>6.1} ms",
            publish_started.elapsed().as_secs_f64() * 1e3
        );
        if line != last_line {
            print!("{line}");
            let _ = std::io::stdout().flush();
            last_line = line;
        }
        if complete == n {
            break;
        }
        if Instant::now() > deadline {
            println!();
            return Err(format!("only {complete} of {n} nodes complete after 60 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let spread = publish_started.elapsed();
    println!();
    println!(
        "  every node holds all {tuples} tuples {:.1} ms after the first publish",
        spread.as_secs_f64() * 1e3
    );
    // Show one tuple as the application sees it.
    let sample = nodes[n - 1]
        .recv_timeout(Duration::from_secs(1))
        .map_err(err)?;
    if let Some(m) = sample {
        println!("  node{} received e.g. {}", n - 1, m.join(" "));
    }
    drop(nodes);
    println!(
        "  done in {:.1} ms (clean shutdown of {n} nodes included)",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
