//! `DISCOVER` on a gossip node: its options, and the driver the node's
//! reactor runs (UDP sockets in the node's own mio loop, the discovery
//! state machine, and the engine's remotes it adds and removes).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use mio::{Interest, Registry, Token};

use super::discovery::{self, Discovery, DiscoveryAction, Heard};
use super::frame;
use super::udp::{UdpBeacon, UdpOptions};
use crate::engine::{Engine, Now, RemoteId};
use crate::error::{Error, Result};
use crate::security::Policy;

/// The reactor token of the discovery socket (far above connection tokens).
pub(crate) const TOKEN: Token = Token(0xffff_fff0);
/// The UDP port gossip nodes beacon on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5675;
/// Datagrams read per wakeup before the rest of the node is served.
const READ_BUDGET: usize = 256;

/// Options of `DISCOVER`. As arguments they are `name=value` pairs; as
/// configuration, paths `discovery/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverOptions {
    /// UDP port (`port`), default 5675.
    pub port: u16,
    /// Beacon interval in ms (`interval`), default 1000.
    pub interval_ms: u64,
    /// Interface name or address, `*`, or a digit (`interface`); unset:
    /// `ZSYS_INTERFACE`, else the first usable non-loopback interface.
    pub interface: Option<String>,
    /// Multicast group (`group`); unset: IPv4 broadcast.
    pub group: Option<IpAddr>,
    /// IPv6 (`ipv6`, 0 or 1); implied by an IPv6 group.
    pub ipv6: Option<bool>,
    /// Multicast TTL (`ttl`), default 1.
    pub ttl: Option<u32>,
    /// Most peers tracked (`max-peers`), default 256.
    pub max_peers: usize,
    /// Most new dials per second (`dials-per-sec`), default 10.
    pub dials_per_sec: u32,
    /// A peer silent this long (ms) is forgotten (`expiry`), default
    /// max(30 s, 10 intervals).
    pub expiry_ms: Option<u64>,
}

impl Default for DiscoverOptions {
    fn default() -> DiscoverOptions {
        DiscoverOptions {
            port: DEFAULT_PORT,
            interval_ms: 1_000,
            interface: None,
            group: None,
            ipv6: None,
            ttl: None,
            max_peers: 256,
            dials_per_sec: 10,
            expiry_ms: None,
        }
    }
}

/// The option names, as arguments and under `discovery/` in configuration.
pub const OPTION_NAMES: [&str; 9] = [
    "port",
    "interval",
    "interface",
    "group",
    "ipv6",
    "ttl",
    "max-peers",
    "dials-per-sec",
    "expiry",
];

impl DiscoverOptions {
    /// Applies one `name=value` option, checking it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let v = value.trim();
        let bad =
            |what: &str| Error::command(format!("DISCOVER: {name} must be {what}, got '{value}'"));
        let num = |lo: u64, hi: u64, what: &str| -> Result<u64> {
            v.parse::<u64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| bad(what))
        };
        match name {
            "port" => self.port = num(1, 65535, "a port from 1 to 65535")? as u16,
            "interval" => self.interval_ms = num(1, 3_600_000, "1 to 3600000 ms")?,
            "interface" => {
                self.interface = if v.is_empty() {
                    None
                } else {
                    Some(v.to_string())
                }
            }
            "group" => {
                let g: IpAddr = v.parse().map_err(|_| bad("a multicast address"))?;
                if !g.is_multicast() {
                    return Err(bad("a multicast address"));
                }
                self.group = Some(g);
            }
            "ipv6" => self.ipv6 = Some(num(0, 1, "0 or 1")? == 1),
            "ttl" => self.ttl = Some(num(1, 255, "1 to 255")? as u32),
            "max-peers" => self.max_peers = num(1, 65_536, "1 to 65536")? as usize,
            "dials-per-sec" => self.dials_per_sec = num(1, 10_000, "1 to 10000")? as u32,
            "expiry" => self.expiry_ms = Some(num(1, u64::from(u32::MAX), "a number of ms")?),
            _ => {
                return Err(Error::command(format!(
                    "DISCOVER: unknown option '{name}' (expected one of {})",
                    OPTION_NAMES.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// Parses `name=value` arguments over `self`.
    pub fn apply_args<S: AsRef<str>>(&mut self, args: &[S]) -> Result<()> {
        for a in args {
            let a = a.as_ref();
            let Some((name, value)) = a.split_once('=') else {
                return Err(Error::command(format!(
                    "DISCOVER: expected name=value, got '{a}'"
                )));
            };
            self.set(name.trim(), value)?;
        }
        Ok(())
    }

    /// These options as `DISCOVER` arguments.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            format!("port={}", self.port),
            format!("interval={}", self.interval_ms),
            format!("max-peers={}", self.max_peers),
            format!("dials-per-sec={}", self.dials_per_sec),
        ];
        if let Some(i) = &self.interface {
            a.push(format!("interface={i}"));
        }
        if let Some(g) = self.group {
            a.push(format!("group={g}"));
        }
        if let Some(v) = self.ipv6 {
            a.push(format!("ipv6={}", u8::from(v)));
        }
        if let Some(t) = self.ttl {
            a.push(format!("ttl={t}"));
        }
        if let Some(e) = self.expiry_ms {
            a.push(format!("expiry={e}"));
        }
        a
    }

    fn udp(&self) -> UdpOptions {
        UdpOptions {
            interface: self.interface.clone(),
            group: self.group,
            ipv6: self.ipv6,
            ttl: self.ttl,
        }
    }

    fn settings(&self) -> discovery::DiscoverySettings {
        let mut s = discovery::DiscoverySettings::for_interval(self.interval_ms);
        s.max_peers = self.max_peers;
        s.dials_per_sec = self.dials_per_sec;
        if let Some(e) = self.expiry_ms {
            s.expiry_ms = e;
        }
        s
    }
}

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

/// Where a discovered peer's link goes: the engine's remotes, and the
/// server keys of those dialled as CURVE clients.
pub(crate) struct Links<'a> {
    pub engine: &'a mut Engine,
    pub remote_keys: &'a mut HashMap<RemoteId, [u8; 32]>,
}

impl Links<'_> {
    fn add(
        &mut self,
        endpoint: std::net::SocketAddr,
        server_key: Option<[u8; 32]>,
        now: Now,
    ) -> RemoteId {
        let id = self
            .engine
            .add_remote(&discovery::endpoint_string(endpoint), now);
        if let Some(key) = server_key {
            self.remote_keys.insert(id, key);
        }
        id
    }

    fn remove(&mut self, remote: RemoteId, now: Now) {
        self.remote_keys.remove(&remote);
        self.engine.remove_remote(remote, now);
    }
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
    settings: discovery::DiscoverySettings,
    interval_ms: u64,
    next_send: u64,
    disc: Discovery,
    remotes: HashMap<u64, RemoteId>,
    backlog: bool,
    send_errors: u64,
}

impl Driver {
    /// Starts beaconing `tcp_port` for `node_id` on `udp`; with the node's
    /// CURVE `public_key` when it has a key pair (see [`frame`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        udp: UdpBeacon,
        options: &DiscoverOptions,
        node_id: u64,
        tcp_port: u16,
        public_key: Option<&[u8; 32]>,
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
            beacon: frame::encode_for(tcp_port, node_id, public_key),
            node_id,
            tcp_port,
            interval_ms: options.interval_ms.max(1),
            next_send: now_ms,
            disc: Discovery::new(node_id, public_key.is_some(), settings.clone(), now_ms),
            settings,
            remotes: HashMap::new(),
            backlog: true,
            send_errors: 0,
        })
    }

    pub(crate) fn stop(mut self, registry: &Registry, mut links: Links<'_>, now: Now) {
        let _ = registry.deregister(&mut self.recv);
        for (_, remote) in self.remotes.drain() {
            links.remove(remote, now);
        }
    }

    /// The node's key pair changed (or was set): beacon the new public
    /// key at once, and start over with the peers, which must now speak
    /// the node's new mechanism. Links to discovered peers are dropped.
    pub(crate) fn set_public_key(
        &mut self,
        public_key: Option<&[u8; 32]>,
        mut links: Links<'_>,
        now: Now,
    ) {
        self.beacon = frame::encode_for(self.tcp_port, self.node_id, public_key);
        self.disc = Discovery::new(
            self.node_id,
            public_key.is_some(),
            self.settings.clone(),
            now.mono_ms,
        );
        for (_, remote) in self.remotes.drain() {
            links.remove(remote, now);
        }
        self.next_send = now.mono_ms;
    }

    pub(crate) fn hostname(&self) -> &str {
        &self.udp.hostname
    }

    /// Counters for STATS.
    pub(crate) fn counters(&self) -> [(&'static str, u64); 8] {
        let s = self.disc.stats();
        [
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

    /// Sends the beacon when due and runs the state machine's timers.
    pub(crate) fn timeout(&mut self, links: Links<'_>, policy: &Policy, now: Now) {
        if self.backlog {
            self.readable(
                Links {
                    engine: links.engine,
                    remote_keys: links.remote_keys,
                },
                policy,
                now,
            );
        }
        let engine = &mut *links.engine;
        if now.mono_ms >= self.next_send {
            self.next_send = now.mono_ms + self.interval_ms;
            if let Err(e) = self.udp.send.send_to(&self.beacon, self.udp.dest) {
                self.send_errors += 1;
                if engine.verbose() {
                    eprintln!("zgossip {}: cannot send beacon: {e}", engine.name());
                }
            }
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

    fn apply(&mut self, mut links: Links<'_>, now: Now) {
        while let Some(action) = self.disc.poll_action() {
            match action {
                DiscoveryAction::Connect {
                    peer,
                    endpoint,
                    server_key,
                }
                | DiscoveryAction::Move {
                    peer,
                    endpoint,
                    server_key,
                } => {
                    if let Some(old) = self.remotes.remove(&peer) {
                        links.remove(old, now);
                    }
                    let id = links.add(endpoint, server_key, now);
                    self.remotes.insert(peer, id);
                }
                DiscoveryAction::Forget { peer } => {
                    if let Some(old) = self.remotes.remove(&peer) {
                        links.remove(old, now);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_print() {
        let mut o = DiscoverOptions::default();
        o.apply_args(&[
            "port=6000",
            "interval=250",
            "interface=lo",
            "group=239.1.2.3",
            "ttl=2",
            "max-peers=8",
            "dials-per-sec=3",
            "expiry=5000",
        ])
        .unwrap();
        assert_eq!(o.port, 6000);
        assert_eq!(o.interval_ms, 250);
        assert_eq!(o.interface.as_deref(), Some("lo"));
        assert_eq!(o.group, Some("239.1.2.3".parse().unwrap()));
        let mut again = DiscoverOptions::default();
        again.apply_args(&o.to_args()).unwrap();
        assert_eq!(again, o);
        let err = |a: &str| {
            DiscoverOptions::default()
                .apply_args(&[a])
                .unwrap_err()
                .to_string()
        };
        assert!(err("port=0").contains("port must be a port from 1 to 65535"));
        assert!(err("port").contains("expected name=value"));
        assert!(err("group=10.0.0.1").contains("multicast"));
        assert!(err("colour=red").contains("unknown option 'colour'"));
        assert!(err("interval=soon").contains("interval must be"));
    }
}
