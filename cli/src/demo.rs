//! `zgossip demo`: a cluster on loopback in this process, built the way a
//! user builds one (each node JOINs through one it knows, and the overlay
//! picks the links), showing tuples spreading, what the links cost beside
//! a full mesh, and the overlay repairing itself when nodes stop.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use zgossip::rng::Rng;
use zgossip::Node;

fn err(e: zgossip::Error) -> String {
    e.to_string()
}

fn stats(node: &Node) -> Result<BTreeMap<String, u64>, String> {
    node.stats().map_err(err)
}

fn stat(node: &Node, name: &str) -> Result<u64, String> {
    Ok(stats(node)?.get(name).copied().unwrap_or(0))
}

/// Frames sent so far by all these nodes.
fn frames_out(nodes: &[&Node]) -> Result<u64, String> {
    nodes.iter().map(|n| stat(n, "frames-out")).sum()
}

/// Waits until `done` holds, showing `what`; fails after `limit`.
fn wait(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> Result<bool, String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    while !done()? {
        if start.elapsed() > limit {
            return Err(format!("{what}: not done after {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(start.elapsed())
}

/// Publishes `tuples` at random live nodes and shows them spreading until
/// every live node holds `expect_total`; returns the time it took.
fn spread(
    nodes: &[&Node],
    rng: &mut Rng,
    prefix: &str,
    tuples: usize,
    expect_total: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    for t in 0..tuples {
        let at = rng.index(nodes.len());
        nodes[at]
            .publish(
                &format!("demo/{prefix}-{t}"),
                &format!("from {}", nodes[at].name()),
            )
            .map_err(err)?;
    }
    let deadline = started + Duration::from_secs(60);
    let mut last_line = String::new();
    loop {
        let mut complete = 0;
        let mut held = 0;
        for node in nodes {
            let s = node.status().map_err(err)?;
            held += s.min(expect_total);
            if s >= expect_total {
                complete += 1;
            }
        }
        let pct = held * 100 / (nodes.len() * expect_total);
        let bar: String = (0..40)
            .map(|i| if i * 100 / 40 < pct { '#' } else { '.' })
            .collect();
        let line = format!(
            "\r  [{bar}] {pct:3}%  {complete:>3}/{} nodes complete  {:>7.1} ms",
            nodes.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        if line != last_line {
            print!("{line}");
            let _ = std::io::stdout().flush();
            last_line = line;
        }
        if complete == nodes.len() {
            println!();
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            println!();
            return Err(format!(
                "only {complete} of {} nodes complete after 60 s",
                nodes.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn run(n: usize, tuples: usize) -> Result<(), String> {
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
    // As a user would: each node joins through one node it knows; the
    // overlay picks the links.
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for (i, node) in nodes.iter().enumerate().skip(1) {
        node.join(&endpoints[rng.index(i)]).map_err(err)?;
    }
    let all: Vec<&Node> = nodes.iter().collect();
    // Formed: every node has a link, and the views have settled (the
    // links of all nodes unchanged for a second: forward joins answered,
    // first rounds of reconciliation done). Writes that race the joins
    // still arrive, but over links that come and go (see docs/overlay.md).
    let mut last = (u64::MAX, Instant::now());
    let formed = wait(Duration::from_secs(30), "forming the overlay", || {
        let mut total = 0;
        for node in &all {
            let active = stat(node, "overlay-active")?;
            if active == 0 {
                return Ok(false);
            }
            total += active;
        }
        if total != last.0 {
            last = (total, Instant::now());
        }
        Ok(last.1.elapsed() >= Duration::from_secs(1))
    })?;
    let links: Vec<u64> = all
        .iter()
        .map(|node| stat(node, "overlay-active"))
        .collect::<Result<_, _>>()?;
    let (min, max) = (
        links.iter().min().unwrap_or(&0),
        links.iter().max().unwrap_or(&0),
    );
    let avg = links.iter().sum::<u64>() as f64 / n as f64;
    println!(
        "  each node JOINed through one other: the overlay formed in {:.0} ms",
        formed.as_secs_f64() * 1e3
    );
    println!(
        "  links per node: {min} to {max}, {avg:.1} on average (a full mesh needs {})",
        n - 1
    );

    let before = frames_out(&all)?;
    let took = spread(&all, &mut rng, "tuple", tuples, tuples)?;
    let frames = frames_out(&all)?.saturating_sub(before);
    println!(
        "  every node holds all {tuples} tuples {:.1} ms after the first publish",
        took.as_secs_f64() * 1e3
    );
    let eager: u64 = all
        .iter()
        .map(|x| stat(x, "overlay-eager"))
        .sum::<Result<_, _>>()?;
    let lazy: u64 = all
        .iter()
        .map(|x| stat(x, "overlay-lazy"))
        .sum::<Result<_, _>>()?;
    println!(
        "  frames per write per node: {:.2} (writes go over a tree of {} links, {} more \
         links carry announcements; flooding a full mesh sends about {})",
        frames as f64 / (tuples * n) as f64,
        eager / 2,
        lazy / 2,
        n - 1
    );

    // Stop a quarter of the nodes (never node 0, which shows the result).
    let stopping = (n / 4).max(1).min(n - 2);
    let mut stopped = Vec::new();
    while stopped.len() < stopping {
        let i = 1 + rng.index(n - 1);
        if !stopped.contains(&i) {
            stopped.push(i);
        }
    }
    stopped.sort_unstable();
    println!("  stopping {stopping} nodes: {stopped:?}");
    // The links the nodes that stay had, before: those to stopped nodes go.
    let links_before: u64 = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !stopped.contains(i))
        .map(|(_, node)| stat(node, "overlay-active"))
        .sum::<Result<_, _>>()?;
    let promotions = |nodes: &[&Node]| -> Result<u64, String> {
        nodes.iter().map(|x| stat(x, "overlay-promotions")).sum()
    };
    let staying: Vec<&Node> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !stopped.contains(i))
        .map(|(_, node)| node)
        .collect();
    let promotions_before = promotions(&staying)?;
    drop(staying);
    // The links the stopped nodes held (a link between two of them
    // counts twice).
    let stopped_links: u64 = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| stopped.contains(i))
        .map(|(_, node)| stat(node, "overlay-active"))
        .sum::<Result<_, _>>()?;
    // The clock of the repair starts with the first node stopped: the
    // others see its links close while the next ones stop.
    let repair_started = Instant::now();
    let mut live = Vec::new();
    for (i, node) in nodes.into_iter().enumerate() {
        if stopped.contains(&i) {
            drop(node);
        } else {
            live.push(node);
        }
    }
    let live_refs: Vec<&Node> = live.iter().collect();
    // Repaired: every live node has a link, and no replacement has been
    // asked for in the last 300 ms.
    let mut last = (promotions_before, Instant::now());
    let repaired = wait(Duration::from_secs(30), "repairing the overlay", || {
        let p = promotions(&live_refs)?;
        if p != last.0 {
            last = (p, Instant::now());
        }
        for node in &live_refs {
            if stat(node, "overlay-active")? == 0 {
                return Ok(false);
            }
        }
        Ok(last.1.elapsed() > Duration::from_millis(300))
    })
    .map(|_| last.1.duration_since(repair_started))?;
    let replaced = promotions(&live_refs)? - promotions_before;
    let links: Vec<u64> = live_refs
        .iter()
        .map(|node| stat(node, "overlay-active"))
        .collect::<Result<_, _>>()?;
    let links_after: u64 = links.iter().sum();
    println!(
        "  the overlay repaired itself within {:.0} ms: the stopped nodes held {stopped_links} \
         links; the others asked {replaced} passive members to replace theirs (a young \
         overlay's passive views are thin: shuffles fill them every 10 s) and went from \
         {links_before} link ends to {links_after}; every live node keeps {} to {} links",
        repaired.as_secs_f64() * 1e3,
        links.iter().min().unwrap_or(&0),
        links.iter().max().unwrap_or(&0),
    );
    let more = tuples.min(50);
    let took = spread(&live_refs, &mut rng, "after", more, tuples + more)?;
    println!(
        "  the next {more} writes reached all {} live nodes in {:.1} ms",
        live_refs.len(),
        took.as_secs_f64() * 1e3
    );
    // Show one tuple as the application sees it.
    let last = live_refs.len() - 1;
    if let Some(m) = live_refs[last]
        .recv_timeout(Duration::from_secs(1))
        .map_err(err)?
    {
        println!("  {} received e.g. {}", live_refs[last].name(), m.join(" "));
    }
    let remaining = live.len();
    drop(live);
    println!(
        "  done in {:.1} ms (clean shutdown of {remaining} nodes included)",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
