//! `DISCOVER` on a gossip node: its options, and the driver the node's
//! reactor runs (UDP sockets in the node's own mio loop, the discovery
//! state machine, and the engine's remotes it adds and removes).

use std::io;
use std::net::IpAddr;

use mio::{Interest, Registry, Token};

use super::discovery::{self, Discovery, DiscoveryAction, Heard};
use super::frame;
use super::options::DiscoverOptions;
use super::udp::UdpBeacon;
use crate::engine::{Engine, Now};
use crate::error::{Error, Result};
use crate::security::Policy;

/// The reactor token of the discovery socket (far above connection tokens).
pub(crate) const TOKEN: Token = Token(0xffff_fff0);
/// Datagrams read per wakeup before the rest of the node is served.
const READ_BUDGET: usize = 256;

/// Opens the beacon sockets for `options`. `Ok(None)`: no usable interface.
pub(crate) fn open(options: &DiscoverOptions) -> Result<Option<UdpBeacon>> {
    let resolved = options
        .udp()
        .resolve(|k| std::env::var(k).ok())
        .map_err(|e| Error::command(format!("DISCOVER: {e}")))?;
    UdpBeacon::open(options.port, &resolved).map_err(|e| {
        Error::io(
            format!("DISCOVER: cannot open UDP port {}", options.port),
            e,
        )
    })
}

/// Where discovered peers go: the engine's overlay, which decides which
/// become links.
pub(crate) struct Links<'a> {
    pub engine: &'a mut Engine,
}

/// Whether the node's access rules admit a beacon's sender: its address
/// as `ALLOW`/`DENY` decide, its key as `CURVE ALLOW` decides.
fn admits(policy: &Policy, ip: IpAddr, key: Option<&[u8; 32]>) -> bool {
    policy.check_address(ip).is_ok() && key.is_none_or(|k| policy.check_curve_key(k).is_ok())
}

/// Discovery running inside a node's reactor.
pub(crate) struct Driver {
    udp: UdpBeacon,
    recv: mio::net::UdpSocket,
    beacon: Vec<u8>,
    node_id: u64,
    tcp_port: u16,
    public_key: Option<[u8; 32]>,
    cluster: String,
    settings: discovery::DiscoverySettings,
    interval_ms: u64,
    /// The interval once the node has overlay links.
    quiet_interval_ms: u64,
    /// The node has overlay links: it beacons quietly and answers
    /// newcomers.
    joined: bool,
    /// The overlay anchor the beacon carries (while joined).
    anchor: Option<u64>,
    next_send: u64,
    disc: Discovery,
    backlog: bool,
    send_errors: u64,
}

impl Driver {
    /// Starts beaconing `tcp_port` for `node_id` on `udp`; with the node's
    /// CURVE `public_key` when it has a key pair and its `cluster` name
    /// when it has one (see [`frame`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        udp: UdpBeacon,
        options: &DiscoverOptions,
        node_id: u64,
        tcp_port: u16,
        public_key: Option<&[u8; 32]>,
        cluster: &str,
        registry: &Registry,
        token: Token,
        now_ms: u64,
    ) -> Result<Driver> {
        let clone = udp
            .recv
            .try_clone()
            .map_err(|e| Error::io("DISCOVER: cannot use UDP socket", e))?;
        let mut recv = mio::net::UdpSocket::from_std(clone);
        registry
            .register(&mut recv, token, Interest::READABLE)
            .map_err(|e| Error::io("DISCOVER: cannot register UDP socket", e))?;
        let settings = options.settings();
        Ok(Driver {
            udp,
            recv,
            beacon: {
                let mut b = frame::encode_for(tcp_port, node_id, public_key, cluster, None);
                frame::set_flag(&mut b, frame::FLAG_LOOKING, true);
                b
            },
            node_id,
            tcp_port,
            public_key: public_key.copied(),
            cluster: cluster.to_string(),
            interval_ms: options.interval_ms.max(1),
            quiet_interval_ms: options.quiet_interval_ms(),
            joined: false,
            anchor: None,
            next_send: now_ms,
            disc: Discovery::new(node_id, public_key.is_some(), settings.clone(), now_ms)
                .in_cluster(cluster),
            settings,
            backlog: true,
            send_errors: 0,
        })
    }

    /// Stops beaconing. The overlay keeps the links it made: they are
    /// links like any other now.
    pub(crate) fn stop(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.recv);
    }

    /// The node's key pair changed (or was set): beacon the new public
    /// key at once, and start over with the peers, which must now speak
    /// the node's new mechanism.
    pub(crate) fn set_public_key(&mut self, public_key: Option<&[u8; 32]>, now: Now) {
        self.public_key = public_key.copied();
        self.start_over(now);
    }

    /// The node's primary key changed from one key to another (a key
    /// rotation): beacon the new key at once; the peers heard stay (they
    /// speak CURVE as before).
    pub(crate) fn announce_key(&mut self, public_key: &[u8; 32], now: Now) {
        self.public_key = Some(*public_key);
        self.encode_beacon();
        self.next_send = now.mono_ms;
    }

    /// The node's cluster changed: beacon the new name at once and hear
    /// only nodes of the new cluster.
    pub(crate) fn set_cluster(&mut self, cluster: &str, now: Now) {
        self.cluster = cluster.to_string();
        self.start_over(now);
    }

    /// The TCP port others dial changed (`overlay/advertise`): beacon
    /// it from now on.
    pub(crate) fn set_tcp_port(&mut self, tcp_port: u16, now: Now) {
        if tcp_port != self.tcp_port {
            self.tcp_port = tcp_port;
            self.encode_beacon();
            self.next_send = now.mono_ms;
        }
    }

    fn start_over(&mut self, now: Now) {
        self.encode_beacon();
        let key = self.public_key.as_ref();
        self.disc = Discovery::new(
            self.node_id,
            key.is_some(),
            self.settings.clone(),
            now.mono_ms,
        )
        .in_cluster(&self.cluster);
        self.disc.set_joined(self.joined);
        self.disc.set_anchor(self.anchor);
        self.next_send = now.mono_ms;
    }

    fn encode_beacon(&mut self) {
        let key = self.public_key.as_ref();
        self.beacon =
            frame::encode_for(self.tcp_port, self.node_id, key, &self.cluster, self.anchor);
        frame::set_flag(&mut self.beacon, frame::FLAG_LOOKING, !self.joined);
    }

    pub(crate) fn hostname(&self) -> &str {
        &self.udp.hostname
    }

    /// Counters for STATS.
    pub(crate) fn counters(&self) -> [(&'static str, u64); 10] {
        let s = self.disc.stats();
        [
            ("discovery-answers", s.answers),
            ("discovery-other-cluster", s.other_cluster),
            ("discovery-peers", self.disc.peer_count() as u64),
            ("discovery-beacons", s.beacons),
            ("discovery-rejected", s.rejected),
            ("discovery-ignored-plain", s.ignored_plain),
            ("discovery-ignored-curve", s.ignored_curve),
            ("discovery-not-allowed", s.not_allowed),
            ("discovery-dials", s.dials),
            ("discovery-refused", s.refused_full),
        ]
    }

    /// The socket may have datagrams.
    pub(crate) fn readable(&mut self, links: Links<'_>, policy: &Policy, now: Now) {
        let engine = &mut *links.engine;
        self.backlog = false;
        let mut buf = [0u8; 512];
        let mut budget_left = true;
        for i in 0..=READ_BUDGET {
            if i == READ_BUDGET {
                budget_left = false;
                break;
            }
            match self.recv.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let admit = |ip: IpAddr, key: Option<&[u8; 32]>| admits(policy, ip, key);
                    let heard =
                        self.disc
                            .handle_datagram(from.ip(), &buf[..n], now.mono_ms, &admit);
                    if engine.verbose() && !matches!(heard, Heard::Known | Heard::Own) {
                        eprintln!(
                            "zgossip {}: beacon from {}: {heard:?}",
                            engine.name(),
                            self.udp.peer_name(from)
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Another datagram makes the socket readable again.
                Err(_) => break,
            }
        }
        self.backlog = !budget_left;
        self.apply(links, now);
    }

    /// Follows whether the node has overlay links: then it beacons every
    /// quiet interval and answers newcomers; without, every interval,
    /// flagged as looking for peers.
    fn follow_overlay(&mut self, engine: &Engine, now: Now) {
        let joined = engine.overlay_stats().active > 0;
        let anchor = joined.then(|| engine.overlay_anchor());
        if anchor != self.anchor {
            self.anchor = anchor;
            self.disc.set_anchor(anchor);
            self.encode_beacon();
        }
        if joined == self.joined {
            return;
        }
        self.joined = joined;
        self.disc.set_joined(joined);
        frame::set_flag(&mut self.beacon, frame::FLAG_LOOKING, !joined);
        if !joined {
            // Alone again: look for peers at once.
            self.next_send = now.mono_ms;
        }
    }

    /// The interval to the next regular beacon.
    fn current_interval(&self) -> u64 {
        if self.joined {
            self.quiet_interval_ms
        } else {
            self.interval_ms
        }
    }

    fn send_beacon(&mut self, engine: &Engine) {
        if let Err(e) = self.udp.send.send_to(&self.beacon, self.udp.dest) {
            self.send_errors += 1;
            if engine.verbose() {
                eprintln!("zgossip {}: cannot send beacon: {e}", engine.name());
            }
        }
    }

    /// Sends the beacon when due and runs the state machine's timers.
    pub(crate) fn timeout(&mut self, links: Links<'_>, policy: &Policy, now: Now) {
        if self.backlog {
            self.readable(
                Links {
                    engine: links.engine,
                },
                policy,
                now,
            );
        }
        self.follow_overlay(links.engine, now);
        if now.mono_ms >= self.next_send {
            self.next_send = now.mono_ms + self.current_interval();
            self.send_beacon(links.engine);
        }
        self.disc.handle_timeout(now.mono_ms);
        self.apply(links, now);
    }

    /// When the driver wants [`Driver::timeout`] (monotonic ms).
    pub(crate) fn poll_timeout(&self) -> u64 {
        if self.backlog {
            return 0;
        }
        let t = self.next_send;
        self.disc.poll_timeout().map_or(t, |d| d.min(t))
    }

    fn apply(&mut self, links: Links<'_>, now: Now) {
        self.follow_overlay(links.engine, now);
        if self.disc.take_answer() {
            self.send_beacon(links.engine);
        }
        while let Some(action) = self.disc.poll_action() {
            match action {
                DiscoveryAction::Found {
                    peer,
                    endpoint,
                    server_key,
                }
                | DiscoveryAction::Moved {
                    peer,
                    endpoint,
                    server_key,
                } => {
                    let endpoint = discovery::endpoint_string(endpoint);
                    links.engine.add_candidate(peer, &endpoint, server_key, now);
                }
                DiscoveryAction::Forget { peer } => links.engine.forget_candidate(peer),
                DiscoveryAction::Anchor {
                    peer,
                    endpoint,
                    server_key,
                    anchor,
                } => {
                    let endpoint = discovery::endpoint_string(endpoint);
                    links
                        .engine
                        .heard_anchor(peer, &endpoint, server_key, anchor, now);
                }
            }
        }
    }
}
