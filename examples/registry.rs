//! A node registry: every node finds the others with DISCOVER, publishes
//! `node/<id>` = its gossip endpoint, and `lookup(id)` answers from the
//! gossiped tuples.
//!
//! ```sh
//! cargo run --example registry -- --id a --expect b,c   # and likewise b, c
//! ```
//!
//! Beacons stay on loopback (`lo`) unless `--interface NAME` says
//! otherwise; `--for SECS` bounds the wait (default 20).

use std::time::{Duration, Instant};

use zgossip::{DiscoverOptions, Node};

struct Registry {
    node: Node,
}

impl Registry {
    fn join(id: &str, interface: &str) -> zgossip::Result<Registry> {
        let node = Node::new(id)?;
        let (host, port) = node.discover(&DiscoverOptions {
            interface: Some(interface.to_string()),
            interval_ms: 200,
            ..DiscoverOptions::default()
        })?;
        let host = if host == "*" {
            "127.0.0.1".to_string()
        } else {
            host
        };
        node.publish(&format!("node/{id}"), &format!("tcp://{host}:{port}"))?;
        Ok(Registry { node })
    }

    /// The address a node registered, if known yet.
    fn lookup(&self, id: &str) -> zgossip::Result<Option<String>> {
        self.node.get(&format!("node/{id}"))
    }
}

fn main() {
    let mut id = String::from("a");
    let mut expect: Vec<String> = Vec::new();
    let mut interface = String::from("lo");
    let mut secs = 20u64;
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let v = it.next().unwrap_or_default();
        match x.as_str() {
            "--id" => id = v,
            "--expect" => {
                expect = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--interface" => interface = v,
            "--for" => secs = v.parse().unwrap_or(secs),
            _ => {
                eprintln!("usage: registry --id ID [--expect a,b] [--interface lo] [--for SECS]");
                std::process::exit(2);
            }
        }
    }
    let registry = match Registry::join(&id, &interface) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("registry: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "{id} registered as {:?}",
        registry.lookup(&id).ok().flatten()
    );
    let end = Instant::now() + Duration::from_secs(secs);
    let mut missing = expect.clone();
    while !missing.is_empty() && Instant::now() < end {
        missing.retain(|other| match registry.lookup(other) {
            Ok(Some(addr)) => {
                println!("lookup({other}) = {addr}");
                false
            }
            _ => true,
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    if !missing.is_empty() {
        eprintln!("registry {id}: never found {missing:?}");
        std::process::exit(1);
    }
    // Stay a little so that the others find us too.
    std::thread::sleep(Duration::from_millis(1500));
}
