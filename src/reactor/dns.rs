//! DNS seeds (`JOIN dns:NAME:PORT`) resolved off the event loop.
//!
//! The system resolver (`getaddrinfo`, through std's `ToSocketAddrs`:
//! `/etc/hosts`, `/etc/resolv.conf`, whatever NSS is set up with) blocks
//! for as long as it takes, so each resolution runs on a short-lived
//! helper thread, one at a time per seed, that posts its answer back and
//! wakes the node. The event loop takes the answers in
//! [`DnsSeeds::take_answers`] and hands them to the engine, which only
//! ever sees "seed X resolved to these endpoints". Every seed is resolved
//! again `overlay/dns-interval` after its last answer (or failure).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use super::NodeWaker;
use crate::dns_seed::DnsSeed;
use crate::error::{Error, Result};

/// Most DNS seeds one node resolves.
pub(crate) const MAX_SEEDS: usize = 64;
/// Most addresses taken from one answer (the views keep fewer still:
/// `Views::seed_limit`).
pub(crate) const MAX_ANSWER: usize = 4096;

/// One seed: what to resolve, the key its members are dialled with, and
/// when to resolve it next.
struct Seed {
    seed: DnsSeed,
    key: Option<[u8; 32]>,
    /// Monotonic ms of the next resolution (none while one runs).
    next_at: Option<u64>,
}

/// A resolution's outcome, from the helper thread.
struct Answer {
    seed: DnsSeed,
    result: std::result::Result<Vec<SocketAddr>, String>,
}

/// Counters for `STATS` and `METRICS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DnsStats {
    /// Resolutions that gave at least one address.
    pub resolutions: u64,
    /// Resolutions that failed (no such name, no answer, no resolver) or
    /// gave no address.
    pub failures: u64,
    /// Addresses in the last answer of every seed, summed.
    pub addresses: u64,
}

/// An answer handed to the engine.
pub(crate) struct Resolved {
    /// `dns:NAME:PORT`.
    pub seed: String,
    /// `tcp://address:port`, at most [`MAX_ANSWER`].
    pub endpoints: Vec<String>,
    pub key: Option<[u8; 32]>,
}

/// The node's DNS seeds.
pub(crate) struct DnsSeeds {
    seeds: Vec<Seed>,
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    interval_ms: u64,
    /// The last answer's size, per seed (for `DnsStats::addresses`).
    sizes: Vec<u64>,
    pub stats: DnsStats,
}

impl DnsSeeds {
    pub(crate) fn new(interval_ms: u64) -> DnsSeeds {
        let (tx, rx) = mpsc::channel();
        DnsSeeds {
            seeds: Vec::new(),
            tx,
            rx,
            interval_ms,
            sizes: Vec::new(),
            stats: DnsStats::default(),
        }
    }

    /// `overlay/dns-interval`: from each seed's next resolution on.
    pub(crate) fn set_interval(&mut self, interval_ms: u64) {
        self.interval_ms = interval_ms.max(1);
    }

    /// `JOIN dns:NAME:PORT [key]`: resolved now (a seed already known
    /// takes the new key and is resolved now too, unless a resolution
    /// runs).
    pub(crate) fn add(&mut self, seed: DnsSeed, key: Option<[u8; 32]>, now_ms: u64) -> Result<()> {
        if let Some(s) = self.seeds.iter_mut().find(|s| s.seed == seed) {
            s.key = key;
            if s.next_at.is_some() {
                s.next_at = Some(now_ms);
            }
            return Ok(());
        }
        if self.seeds.len() >= MAX_SEEDS {
            return Err(Error::command(format!(
                "JOIN {seed}: a node resolves at most {MAX_SEEDS} DNS seeds"
            )));
        }
        self.seeds.push(Seed {
            seed,
            key,
            next_at: Some(now_ms),
        });
        self.sizes.push(0);
        Ok(())
    }

    /// When a resolution is next due.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.seeds.iter().filter_map(|s| s.next_at).min()
    }

    /// Starts the resolutions due at `now_ms`, each on a helper thread
    /// that wakes the node with its answer.
    pub(crate) fn start_due(&mut self, now_ms: u64, waker: &Arc<NodeWaker>) {
        for s in &mut self.seeds {
            if s.next_at.is_none_or(|t| t > now_ms) {
                continue;
            }
            let seed = s.seed.clone();
            let tx = self.tx.clone();
            let waker = waker.clone();
            let spawned = std::thread::Builder::new()
                .name("zgossip-dns".into())
                .spawn(move || {
                    let result = resolve(&seed);
                    if tx.send(Answer { seed, result }).is_ok() {
                        let _ = waker.wake();
                    }
                });
            match spawned {
                Ok(_) => s.next_at = None,
                Err(_) => {
                    // No thread to be had now: counted, tried again later.
                    self.stats.failures += 1;
                    s.next_at = Some(now_ms + self.interval_ms);
                }
            }
        }
    }

    /// The answers that came back, for the engine; each seed is resolved
    /// again an interval from `now_ms`. Failures are counted and give
    /// nothing (the engine keeps the seed's last answer).
    pub(crate) fn take_answers(&mut self, now_ms: u64) -> Vec<Result<Resolved>> {
        let mut out = Vec::new();
        while let Ok(Answer { seed, result }) = self.rx.try_recv() {
            let Some(i) = self.seeds.iter().position(|s| s.seed == seed) else {
                continue;
            };
            let s = &mut self.seeds[i];
            s.next_at = Some(now_ms + self.interval_ms);
            match result {
                Ok(addrs) if !addrs.is_empty() => {
                    self.stats.resolutions += 1;
                    self.sizes[i] = addrs.len() as u64;
                    self.stats.addresses = self.sizes.iter().sum();
                    out.push(Ok(Resolved {
                        seed: seed.to_string(),
                        endpoints: addrs.iter().map(endpoint_of).collect(),
                        key: s.key,
                    }));
                }
                Ok(_) => {
                    self.stats.failures += 1;
                    out.push(Err(Error::command(format!("{seed}: no address"))));
                }
                Err(why) => {
                    self.stats.failures += 1;
                    out.push(Err(Error::command(format!("{seed}: {why}"))));
                }
            }
        }
        out
    }

    /// `STATS` counters, in order.
    pub(crate) fn counters(&self) -> [(&'static str, u64); 4] {
        [
            ("dns-seeds", self.seeds.len() as u64),
            ("dns-resolutions", self.stats.resolutions),
            ("dns-failures", self.stats.failures),
            ("dns-addresses", self.stats.addresses),
        ]
    }
}

/// Resolves a seed with the system resolver (blocking): its A and AAAA
/// records, at most [`MAX_ANSWER`], without duplicates.
fn resolve(seed: &DnsSeed) -> std::result::Result<Vec<SocketAddr>, String> {
    let addrs = (seed.name.as_str(), seed.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", seed.name))?;
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in addrs {
        if out.len() >= MAX_ANSWER {
            break;
        }
        if seen.insert(a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// `tcp://a.b.c.d:port` or `tcp://[v6]:port` (a link-local IPv6 address
/// keeps its scope as `%N`).
fn endpoint_of(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("tcp://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) if a.scope_id() != 0 => {
            format!("tcp://[{}%{}]:{}", a.ip(), a.scope_id(), a.port())
        }
        SocketAddr::V6(a) => format!("tcp://[{}]:{}", a.ip(), a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_written_as_the_overlay_writes_them() {
        let v4: SocketAddr = "10.0.0.1:5670".parse().unwrap();
        let v6: SocketAddr = "[fd77::2]:5670".parse().unwrap();
        assert_eq!(endpoint_of(&v4), "tcp://10.0.0.1:5670");
        assert_eq!(endpoint_of(&v6), "tcp://[fd77::2]:5670");
    }

    #[test]
    fn seeds_are_bounded_and_a_known_one_takes_its_new_key() {
        let mut d = DnsSeeds::new(1000);
        let seed = |i: usize| DnsSeed {
            name: format!("s{i}.test"),
            port: 1,
        };
        for i in 0..MAX_SEEDS {
            d.add(seed(i), None, 5).unwrap();
        }
        assert_eq!(d.poll_timeout(), Some(5));
        let e = d.add(seed(MAX_SEEDS), None, 5).unwrap_err().to_string();
        assert!(e.contains("at most 64 DNS seeds"), "{e}");
        d.add(seed(0), Some([1; 32]), 9).unwrap();
        assert_eq!(d.seeds[0].key, Some([1; 32]));
        assert_eq!(d.counters()[0], ("dns-seeds", MAX_SEEDS as u64));
    }

    #[test]
    fn a_failure_is_counted_and_resolved_again_an_interval_later() {
        let mut d = DnsSeeds::new(1000);
        let seed = DnsSeed {
            name: "gone.test".into(),
            port: 1,
        };
        d.add(seed.clone(), None, 0).unwrap();
        d.seeds[0].next_at = None; // as if its thread ran
        d.tx.send(Answer {
            seed: seed.clone(),
            result: Err("no such name".into()),
        })
        .unwrap();
        let got = d.take_answers(50);
        assert_eq!(got.len(), 1);
        assert!(got[0]
            .as_ref()
            .is_err_and(|e| e.to_string().contains("no such name")));
        assert_eq!(d.stats.failures, 1);
        assert_eq!(d.poll_timeout(), Some(1050));
        d.seeds[0].next_at = None;
        d.tx.send(Answer {
            seed,
            result: Ok(vec!["10.0.0.1:1".parse().unwrap()]),
        })
        .unwrap();
        let got = d.take_answers(2000);
        let r = got[0].as_ref().unwrap();
        assert_eq!(r.endpoints, ["tcp://10.0.0.1:1"]);
        assert_eq!((d.stats.resolutions, d.stats.addresses), (1, 1));
    }
}
