//! The `zgossip` command. For now: `zgossip demo`, a local cluster on
//! loopback that shows tuples spreading.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use zgossip::Node;

const USAGE: &str = "\
usage: zgossip demo [--nodes N] [--tuples N]

  demo    start a cluster of gossip nodes on 127.0.0.1 in this process, each
          connected to one earlier node (a random tree) plus one link that
          closes a cycle; publish tuples at random nodes and show them
          spreading until every node holds every tuple.
          --nodes N    nodes in the cluster (default 8, 2..=500)
          --tuples N   tuples to publish (default 200, 1..=100000)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => match parse_demo(&args[1..]).and_then(|(n, t)| demo(n, t)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zgossip demo: {e}");
                ExitCode::from(1)
            }
        },
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("zgossip: unknown command '{other}'\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_demo(args: &[String]) -> Result<(usize, usize), String> {
    let mut nodes = 8;
    let mut tuples = 200;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = |it: &mut std::slice::Iter<'_, String>| -> Result<usize, String> {
            it.next()
                .ok_or(format!("{flag} needs a number"))?
                .parse::<usize>()
                .map_err(|_| format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--nodes" => nodes = value(&mut it)?,
            "--tuples" => tuples = value(&mut it)?,
            other => return Err(format!("unknown option '{other}'\n\n{USAGE}")),
        }
    }
    if !(2..=500).contains(&nodes) {
        return Err("--nodes must be between 2 and 500".into());
    }
    if !(1..=100_000).contains(&tuples) {
        return Err("--tuples must be between 1 and 100000".into());
    }
    Ok((nodes, tuples))
}

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

fn demo(n: usize, tuples: usize) -> Result<(), String> {
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
