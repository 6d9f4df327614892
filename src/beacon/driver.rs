//! `DISCOVER` on a gossip node: its options, and the driver the node's
//! reactor runs (UDP sockets in the node's own mio loop, the discovery
//! state machine, and the engine's remotes it adds and removes).

use std::io;
use std::net::IpAddr;

use mio::{Interest, Registry, Token};

use super::discovery::{self, Discovery, DiscoveryAction, Heard};
use super::dnssd;
use super::frame;
use super::iface::{self, Choice};
use super::mdns::Mdns;
use super::options::DiscoverOptions;
use super::udp::UdpBeacon;
use crate::engine::{Engine, Now};
use crate::error::{Error, Result};
use crate::security::Policy;

/// The reactor token of the discovery socket (far above connection tokens).
pub(crate) const TOKEN: Token = Token(0xffff_fff0);
/// Datagrams read per wakeup before the rest of the node is served.
const READ_BUDGET: usize = 256;

/// The interface `DISCOVER` runs on, as its options choose it.
pub(crate) struct Interface {
    /// The address the node beacons from and binds TCP on when it has no
    /// endpoint (`*` for the wildcard).
    pub hostname: String,
    /// The interface's name (`None` for the wildcard): where mDNS runs.
    pub name: Option<String>,
    pub ipv6: bool,
    /// The beacon sockets (`None` with `beacon=0`).
    pub udp: Option<UdpBeacon>,
}

/// Chooses the interface for `options` and opens the beacon sockets
/// there (unless `beacon=0`). `Ok(None)`: no usable interface.
pub(crate) fn open(options: &DiscoverOptions) -> Result<Option<Interface>> {
    options.check()?;
    let resolved = options
        .udp()
        .resolve(|k| std::env::var(k).ok())
        .map_err(|e| Error::command(format!("DISCOVER: {e}")))?;
    let ifaces = iface::list().map_err(|e| Error::io("DISCOVER: cannot list interfaces", e))?;
    let (hostname, name) = match iface::choose(&ifaces, &resolved.interface, resolved.ipv6) {
        Choice::None => return Ok(None),
        Choice::Wildcard => ("*".to_string(), None),
        Choice::Iface(i) => (i.addr.to_string(), Some(i.name)),
    };
    let udp = if options.beacon {
        let udp = UdpBeacon::open(options.port, &resolved).map_err(|e| {
            Error::io(
                format!("DISCOVER: cannot open UDP port {}", options.port),
                e,
            )
        })?;
        match udp {
            Some(u) => Some(u),
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some(Interface {
        hostname: udp.as_ref().map_or(hostname, |u| u.hostname.clone()),
        name,
        ipv6: resolved.ipv6,
        udp,
    }))
}

/// What the node tells others in its DNS-SD record besides its id, key
/// and cluster.
pub(crate) struct Identity<'a> {
    /// The node's name (the instance name starts with it).
    pub name: &'a str,
    /// `overlay/advertise`, when set.
    pub advertise: Option<&'a str>,
}

/// The beacon sockets, with beacons on.
struct Sockets {
    udp: UdpBeacon,
    recv: mio::net::UdpSocket,
}

/// mDNS, with `mdns=1`: the daemon, the node's name and advertised
/// endpoint for its record, when the live services are next fed to the
/// discovery again.
struct MdnsPart {
    mdns: Mdns,
    name: String,
    advertise: Option<String>,
    ipv6: bool,
    next_refresh: u64,
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
    /// The beacon sockets (`None` with `beacon=0`).
    sockets: Option<Sockets>,
    hostname: String,
    mdns: Option<MdnsPart>,
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
    /// Starts beaconing `tcp_port` for `node_id` on the interface's
    /// sockets, and with `mdns=1` announcing it over mDNS; with the node's
    /// CURVE `public_key` when it has a key pair and its `cluster` name
    /// when it has one (see [`frame`], [`dnssd`]). `wake` wakes the node
    /// when mDNS has news.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        iface: Interface,
        options: &DiscoverOptions,
        node_id: u64,
        identity: Identity<'_>,
        tcp_port: u16,
        public_key: Option<&[u8; 32]>,
        cluster: &str,
        registry: &Registry,
        token: Token,
        wake: Box<dyn Fn() + Send>,
        now_ms: u64,
    ) -> Result<Driver> {
        let sockets = match iface.udp {
            Some(udp) => {
                let clone = udp
                    .recv
                    .try_clone()
                    .map_err(|e| Error::io("DISCOVER: cannot use UDP socket", e))?;
                let mut recv = mio::net::UdpSocket::from_std(clone);
                registry
                    .register(&mut recv, token, Interest::READABLE)
                    .map_err(|e| Error::io("DISCOVER: cannot register UDP socket", e))?;
                Some(Sockets { udp, recv })
            }
            None => None,
        };
        let mdns = if options.mdns {
            let record = dnssd::record(
                identity.name,
                node_id,
                tcp_port,
                cluster,
                public_key,
                identity.advertise,
            );
            Some(MdnsPart {
                mdns: Mdns::start(record, iface.name.as_deref(), iface.ipv6, wake)?,
                name: identity.name.to_string(),
                advertise: identity.advertise.map(str::to_string),
                ipv6: iface.ipv6,
                next_refresh: now_ms + options.interval_ms.max(1),
            })
        } else {
            None
        };
        let settings = options.settings();
        Ok(Driver {
            sockets,
            hostname: iface.hostname,
            mdns,
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
    /// The mDNS service says goodbye (dropping the driver does too).
    pub(crate) fn stop(mut self, registry: &Registry) {
        if let Some(s) = self.sockets.as_mut() {
            let _ = registry.deregister(&mut s.recv);
        }
    }

    /// The node's key pair changed (or was set): beacon the new public
    /// key at once, and start over with the peers, which must now speak
    /// the node's new mechanism.
    pub(crate) fn set_public_key(&mut self, public_key: Option<&[u8; 32]>, now: Now) {
        self.public_key = public_key.copied();
        self.start_over(now);
        self.reannounce();
    }

    /// The node's primary key changed from one key to another (a key
    /// rotation): beacon the new key at once; the peers heard stay (they
    /// speak CURVE as before).
    pub(crate) fn announce_key(&mut self, public_key: &[u8; 32], now: Now) {
        self.public_key = Some(*public_key);
        self.encode_beacon();
        self.next_send = now.mono_ms;
        self.reannounce();
    }

    /// The node's cluster changed: beacon the new name at once and hear
    /// only nodes of the new cluster.
    pub(crate) fn set_cluster(&mut self, cluster: &str, now: Now) {
        self.cluster = cluster.to_string();
        self.start_over(now);
        self.reannounce();
    }

    /// The endpoint others dial changed (`overlay/advertise`): beacon
    /// its port, and announce it over mDNS, from now on.
    pub(crate) fn set_own_endpoint(&mut self, tcp_port: u16, advertise: Option<&str>, now: Now) {
        if tcp_port != self.tcp_port {
            self.tcp_port = tcp_port;
            self.encode_beacon();
            self.next_send = now.mono_ms;
        }
        if let Some(m) = self.mdns.as_mut() {
            m.advertise = advertise.map(str::to_string);
        }
        self.reannounce();
    }

    /// The DNS-SD record again, when what it says changed.
    fn reannounce(&mut self) {
        let Some(m) = self.mdns.as_mut() else {
            return;
        };
        let record = dnssd::record(
            &m.name,
            self.node_id,
            self.tcp_port,
            &self.cluster,
            self.public_key.as_ref(),
            m.advertise.as_deref(),
        );
        // A failure leaves the last record announced; the next change
        // tries again.
        let _ = m.mdns.announce(record);
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
        &self.hostname
    }

    /// Counters of mDNS for STATS (none without `mdns=1`).
    pub(crate) fn mdns_counters(&self) -> Option<[(&'static str, u64); 5]> {
        self.mdns.as_ref().map(|m| m.mdns.counters())
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
        let Some(sockets) = self.sockets.as_mut() else {
            return;
        };
        let mut buf = [0u8; 512];
        let mut budget_left = true;
        for i in 0..=READ_BUDGET {
            if i == READ_BUDGET {
                budget_left = false;
                break;
            }
            match sockets.recv.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let admit = |ip: IpAddr, key: Option<&[u8; 32]>| admits(policy, ip, key);
                    let heard =
                        self.disc
                            .handle_datagram(from.ip(), &buf[..n], now.mono_ms, &admit);
                    if engine.verbose() && !matches!(heard, Heard::Known | Heard::Own) {
                        eprintln!(
                            "zgossip {}: beacon from {}: {heard:?}",
                            engine.name(),
                            sockets.udp.peer_name(from)
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
        let Some(s) = self.sockets.as_ref() else {
            return;
        };
        if let Err(e) = s.udp.send.send_to(&self.beacon, s.udp.dest) {
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
        let refresh = self
            .mdns
            .as_ref()
            .is_some_and(|m| now.mono_ms >= m.next_refresh);
        if refresh {
            self.refresh_services(policy, now);
        }
        self.disc.handle_timeout(now.mono_ms);
        self.apply(links, now);
    }

    /// mDNS news (the bridge woke the node): services resolved are read
    /// and handed to the discovery, as beacons are; garbage is counted.
    pub(crate) fn take_mdns(&mut self, links: Links<'_>, policy: &Policy, now: Now) {
        let Some(m) = self.mdns.as_mut() else {
            return;
        };
        let services = m.mdns.take();
        if services.is_empty() {
            return;
        }
        let engine = &*links.engine;
        for service in services {
            match dnssd::read(&service, &self.cluster, m.ipv6) {
                Ok(heard) => {
                    m.mdns.stats.found += 1;
                    let admit = |ip: IpAddr, key: Option<&[u8; 32]>| admits(policy, ip, key);
                    let what = self.disc.handle_announce(
                        heard.address,
                        &heard.announce,
                        now.mono_ms,
                        &admit,
                    );
                    if engine.verbose() {
                        eprintln!(
                            "zgossip {}: mDNS service {} at {}: {what:?}",
                            engine.name(),
                            service.fullname,
                            heard.address
                        );
                    }
                }
                Err(why) => {
                    m.mdns.reject(&service.fullname);
                    if engine.verbose() {
                        eprintln!(
                            "zgossip {}: mDNS service {} ignored: {why}",
                            engine.name(),
                            service.fullname
                        );
                    }
                }
            }
        }
        self.apply(links, now);
    }

    /// The live services heard again, as beacons are every interval: the
    /// discovery keeps them, and forgets those removed after `expiry`.
    fn refresh_services(&mut self, policy: &Policy, now: Now) {
        let Some(m) = self.mdns.as_mut() else {
            return;
        };
        m.next_refresh = now.mono_ms + self.interval_ms;
        let admit = |ip: IpAddr, key: Option<&[u8; 32]>| admits(policy, ip, key);
        for service in m.mdns.live() {
            if let Ok(heard) = dnssd::read(service, &self.cluster, m.ipv6) {
                self.disc
                    .handle_announce(heard.address, &heard.announce, now.mono_ms, &admit);
            }
        }
    }

    /// When the driver wants [`Driver::timeout`] (monotonic ms).
    pub(crate) fn poll_timeout(&self) -> u64 {
        if self.backlog {
            return 0;
        }
        let mut t = if self.sockets.is_some() {
            self.next_send
        } else {
            u64::MAX
        };
        if let Some(m) = self.mdns.as_ref() {
            t = t.min(m.next_refresh);
        }
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
