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

/// The reactor tokens of the discovery sockets, one per family beaconed
/// (far above connection tokens).
pub(crate) const TOKENS: [Token; 2] = [Token(0xffff_fff0), Token(0xffff_fff1)];
/// Datagrams read per wakeup before the rest of the node is served.
const READ_BUDGET: usize = 256;

/// Whether `token` is one of the discovery sockets'.
pub(crate) fn is_token(token: Token) -> bool {
    TOKENS.contains(&token)
}

/// The interface `DISCOVER` runs on, as its options choose it, and the
/// beacon sockets opened there.
pub(crate) struct Interface {
    /// The address the node beacons from (the IPv4 one with `ipv6=both`)
    /// and binds TCP on when it has no endpoint (`*` for the wildcard).
    pub hostname: String,
    /// The interface's name (`None` for the wildcard): where mDNS runs.
    pub name: Option<String>,
    /// IPv6 is the one family (`ipv6=1`, or `ZSYS_IPV6`).
    pub ipv6: bool,
    /// The beacon sockets: one, or IPv4 then IPv6 (`ipv6=both`); none
    /// with `beacon=0`.
    pub sockets: Vec<UdpBeacon>,
}

/// Chooses the interface for `options` (with `ipv6=both`, one interface
/// for both families) and opens the beacon sockets there, one per family
/// (none with `beacon=0`). `Ok(None)`: no usable interface.
pub(crate) fn open(options: &DiscoverOptions) -> Result<Option<Interface>> {
    options.check()?;
    let families = options
        .udp_families()
        .iter()
        .map(|u| u.resolve(|k| std::env::var(k).ok()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::command(format!("DISCOVER: {e}")))?;
    let ifaces = iface::list().map_err(|e| Error::io("DISCOVER: cannot list interfaces", e))?;
    let chosen = match &families[..] {
        [v4, v6] => {
            let (c4, c6) = iface::choose_both(&ifaces, &v4.interface);
            vec![(v4, c4), (v6, c6)]
        }
        [one] => vec![(one, iface::choose(&ifaces, &one.interface, one.ipv6))],
        _ => return Ok(None),
    };
    let (hostname, name) = match chosen.iter().map(|(_, c)| c).find(|c| **c != Choice::None) {
        None | Some(Choice::None) => return Ok(None),
        Some(Choice::Wildcard) => ("*".to_string(), None),
        Some(Choice::Iface(i)) => (i.addr.to_string(), Some(i.name.clone())),
    };
    let mut sockets = Vec::new();
    if options.beacon {
        for (opts, choice) in chosen {
            let family = if opts.ipv6 { "IPv6" } else { "IPv4" };
            let udp =
                UdpBeacon::open_on(options.port, opts, choice, ifaces.clone()).map_err(|e| {
                    Error::io(
                        format!(
                            "DISCOVER: cannot open the {family} beacon on UDP port {}",
                            options.port
                        ),
                        e,
                    )
                })?;
            let Some(udp) = udp else {
                return Err(Error::command(format!(
                    "DISCOVER ipv6=both: the interface '{}' has no usable {family} address",
                    opts.interface
                )));
            };
            sockets.push(udp);
        }
    }
    Ok(Some(Interface {
        hostname: sockets.first().map_or(hostname, |u| u.hostname.clone()),
        name,
        ipv6: !options.dual_stack && families[0].ipv6,
        sockets,
    }))
}

/// What the node tells others besides its id, port, key and cluster.
pub(crate) struct Identity<'a> {
    /// The node's name (the DNS-SD instance name starts with it).
    pub name: &'a str,
    /// The endpoint others dial when `overlay/advertise` makes it: beacons
    /// carry it (version 5), and the DNS-SD record as TXT `endpoint`.
    pub advertised: Option<&'a str>,
}

/// mDNS, with `mdns=1`: the daemon, the node's name for its record, the
/// family preferred among a service's addresses, and when the live
/// services are next fed to the discovery again.
struct MdnsPart {
    mdns: Mdns,
    name: String,
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

/// One beacon socket pair of the driver (one per family) and what went
/// through it.
struct Family {
    udp: UdpBeacon,
    recv: mio::net::UdpSocket,
    /// Datagrams read.
    heard: u64,
    /// More datagrams may wait (the read budget ran out).
    backlog: bool,
}

/// The discovery state machine for a node: a CURVE node's when `curve`,
/// of `cluster`, keeping peers at their IPv4 address when `dual`.
fn new_discovery(
    node_id: u64,
    curve: bool,
    settings: &discovery::DiscoverySettings,
    cluster: &str,
    dual: bool,
    now_ms: u64,
) -> Discovery {
    let d = Discovery::new(node_id, curve, settings.clone(), now_ms).in_cluster(cluster);
    if dual {
        d.preferring_ipv4()
    } else {
        d
    }
}

/// Discovery running inside a node's reactor.
pub(crate) struct Driver {
    /// The beacon sockets: one, or IPv4 then IPv6 (`ipv6=both`); none
    /// with `beacon=0`.
    families: Vec<Family>,
    /// `ipv6=both`: peers are kept at their IPv4 address.
    dual_stack: bool,
    hostname: String,
    mdns: Option<MdnsPart>,
    beacon: Vec<u8>,
    node_id: u64,
    tcp_port: u16,
    /// `overlay/advertise` when set: beacons carry it (version 5), and
    /// the DNS-SD record as TXT `endpoint`.
    advertised: Option<String>,
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
    send_errors: u64,
}

impl Driver {
    /// Starts beaconing `tcp_port` for `node_id` on the interface's
    /// sockets (one per family, registered with `tokens`, one each), and
    /// with `mdns=1` announcing it over mDNS; with the node's CURVE
    /// `public_key` when it has a key pair and its `cluster` name when it
    /// has one (see [`frame`], [`dnssd`]). `wake` wakes the node when
    /// mDNS has news.
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
        tokens: [Token; 2],
        wake: Box<dyn Fn() + Send>,
        now_ms: u64,
    ) -> Result<Driver> {
        // mDNS first: should a socket fail after, dropping it says goodbye.
        let mdns = if options.mdns {
            let record = dnssd::record(
                identity.name,
                node_id,
                tcp_port,
                cluster,
                public_key,
                identity.advertised,
            );
            // With ipv6=both mDNS runs over both families too.
            let both = iface.ipv6 || options.dual_stack;
            Some(MdnsPart {
                mdns: Mdns::start(record, iface.name.as_deref(), both, wake)?,
                name: identity.name.to_string(),
                ipv6: iface.ipv6,
                next_refresh: now_ms + options.interval_ms.max(1),
            })
        } else {
            None
        };
        let mut families = Vec::new();
        for (udp, token) in iface.sockets.into_iter().zip(tokens) {
            let clone = udp
                .recv
                .try_clone()
                .map_err(|e| Error::io("DISCOVER: cannot use UDP socket", e))?;
            let mut recv = mio::net::UdpSocket::from_std(clone);
            if let Err(e) = registry.register(&mut recv, token, Interest::READABLE) {
                for f in &mut families {
                    let Family { recv, .. } = f;
                    let _ = registry.deregister(recv);
                }
                return Err(Error::io("DISCOVER: cannot register UDP socket", e));
            }
            families.push(Family {
                udp,
                recv,
                heard: 0,
                backlog: true,
            });
        }
        let settings = options.settings();
        let curve = public_key.is_some();
        let dual_stack = options.dual_stack;
        let disc = new_discovery(node_id, curve, &settings, cluster, dual_stack, now_ms);
        let mut driver = Driver {
            families,
            dual_stack,
            hostname: iface.hostname,
            mdns,
            beacon: Vec::new(),
            node_id,
            tcp_port,
            advertised: identity.advertised.map(str::to_string),
            public_key: public_key.copied(),
            cluster: cluster.to_string(),
            interval_ms: options.interval_ms.max(1),
            quiet_interval_ms: options.quiet_interval_ms(),
            joined: false,
            anchor: None,
            next_send: now_ms,
            disc,
            settings,
            send_errors: 0,
        };
        driver.encode_beacon();
        Ok(driver)
    }

    /// Stops beaconing, and the mDNS service says goodbye (dropping the
    /// driver does too). The overlay keeps the links it made: they are
    /// links like any other now.
    pub(crate) fn stop(mut self, registry: &Registry) {
        for f in &mut self.families {
            let _ = registry.deregister(&mut f.recv);
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

    /// The endpoint others dial changed: beacon its TCP port from now
    /// on, and with `advertised` (`overlay/advertise`, when set) the
    /// whole endpoint; announce both over mDNS (SRV port, TXT
    /// `endpoint`).
    pub(crate) fn set_endpoint(&mut self, tcp_port: u16, advertised: Option<&str>, now: Now) {
        if tcp_port != self.tcp_port || advertised != self.advertised.as_deref() {
            self.tcp_port = tcp_port;
            self.advertised = advertised.map(str::to_string);
            self.encode_beacon();
            self.next_send = now.mono_ms;
            self.reannounce();
        }
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
            self.advertised.as_deref(),
        );
        // A failure leaves the last record announced; the next change
        // tries again.
        let _ = m.mdns.announce(record);
    }

    fn start_over(&mut self, now: Now) {
        self.encode_beacon();
        let curve = self.public_key.is_some();
        self.disc = new_discovery(
            self.node_id,
            curve,
            &self.settings,
            &self.cluster,
            self.dual_stack(),
            now.mono_ms,
        );
        self.disc.set_joined(self.joined);
        self.disc.set_anchor(self.anchor);
        self.next_send = now.mono_ms;
    }

    fn encode_beacon(&mut self) {
        let key = self.public_key.as_ref();
        let (port, id, cluster) = (self.tcp_port, self.node_id, &self.cluster);
        self.beacon = match &self.advertised {
            // Looking for peers: the node's own id stands for the anchor
            // (receivers ignore it while the flag is set).
            Some(ep) => {
                let anchor = self.anchor.unwrap_or(id);
                frame::encode_advertised(port, id, key, cluster, anchor, ep)
            }
            None => frame::encode_for(port, id, key, cluster, self.anchor),
        };
        frame::set_flag(&mut self.beacon, frame::FLAG_LOOKING, !self.joined);
    }

    /// The address beacons go out from (the IPv4 one with `ipv6=both`).
    pub(crate) fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Whether the driver runs over both IPv4 and IPv6 (`ipv6=both`).
    pub(crate) fn dual_stack(&self) -> bool {
        self.dual_stack
    }

    /// Datagrams read over one family.
    fn heard(&self, ipv6: bool) -> u64 {
        self.families
            .iter()
            .filter(|f| f.udp.is_ipv6() == ipv6)
            .map(|f| f.heard)
            .sum()
    }

    /// Counters of mDNS for STATS (none without `mdns=1`).
    pub(crate) fn mdns_counters(&self) -> Option<[(&'static str, u64); 5]> {
        self.mdns.as_ref().map(|m| m.mdns.counters())
    }

    /// Counters for STATS.
    pub(crate) fn counters(&self) -> [(&'static str, u64); 13] {
        let s = self.disc.stats();
        [
            ("discovery-beacons-ipv4", self.heard(false)),
            ("discovery-beacons-ipv6", self.heard(true)),
            ("discovery-family-switches", s.family_switches),
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

    /// The socket of `token` may have datagrams.
    pub(crate) fn readable(&mut self, token: Token, links: Links<'_>, policy: &Policy, now: Now) {
        if let Some(i) = TOKENS.iter().position(|t| *t == token) {
            self.read(i, links.engine, policy, now);
        }
        self.apply(links, now);
    }

    /// Reads the datagrams waiting on family `i`'s socket, up to the
    /// budget.
    fn read(&mut self, i: usize, engine: &mut Engine, policy: &Policy, now: Now) {
        let Some(f) = self.families.get_mut(i) else {
            return;
        };
        f.backlog = false;
        // One byte more than a beacon may be: a longer datagram arrives
        // longer than the limit (cut), and is refused.
        let mut buf = [0u8; frame::MAX_DATAGRAM + 1];
        let mut budget_left = true;
        for i in 0..=READ_BUDGET {
            if i == READ_BUDGET {
                budget_left = false;
                break;
            }
            match f.recv.recv_from(&mut buf) {
                Ok((n, from)) => {
                    f.heard += 1;
                    let admit = |ip: IpAddr, key: Option<&[u8; 32]>| admits(policy, ip, key);
                    // An IPv4 peer seen through an IPv6 socket is an IPv4 peer.
                    let source = from.ip().to_canonical();
                    let heard = self
                        .disc
                        .handle_datagram(source, &buf[..n], now.mono_ms, &admit);
                    if !matches!(heard, Heard::Known | Heard::Own) {
                        trace(
                            engine,
                            format_args!("beacon from {}: {heard:?}", f.udp.peer_name(from)),
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Another datagram makes the socket readable again.
                Err(_) => break,
            }
        }
        f.backlog = !budget_left;
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

    /// Sends the beacon over every family.
    fn send_beacon(&mut self, engine: &Engine) {
        for f in &self.families {
            if let Err(e) = f.udp.send.send_to(&self.beacon, f.udp.dest) {
                self.send_errors += 1;
                trace(
                    engine,
                    format_args!("cannot send beacon to {}: {e}", f.udp.dest),
                );
            }
        }
    }

    /// Sends the beacon when due and runs the state machine's timers.
    pub(crate) fn timeout(&mut self, links: Links<'_>, policy: &Policy, now: Now) {
        for i in 0..self.families.len() {
            if self.families[i].backlog {
                self.read(i, links.engine, policy, now);
            }
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
                    trace(
                        engine,
                        format_args!(
                            "mDNS service {} at {}: {what:?}",
                            service.fullname, heard.address
                        ),
                    );
                }
                Err(why) => {
                    m.mdns.reject(&service.fullname);
                    trace(
                        engine,
                        format_args!("mDNS service {} ignored: {why}", service.fullname),
                    );
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
        if self.families.iter().any(|f| f.backlog) {
            return 0;
        }
        let mut t = if self.families.is_empty() {
            u64::MAX
        } else {
            self.next_send
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
            let dial = action.dial_endpoint().unwrap_or_default();
            match action {
                DiscoveryAction::Found {
                    peer, server_key, ..
                }
                | DiscoveryAction::Moved {
                    peer, server_key, ..
                } => {
                    links.engine.add_candidate(peer, &dial, server_key, now);
                }
                DiscoveryAction::Forget { peer } => links.engine.forget_candidate(peer),
                DiscoveryAction::Anchor {
                    peer,
                    server_key,
                    anchor,
                    ..
                } => {
                    links
                        .engine
                        .heard_anchor(peer, &dial, server_key, anchor, now);
                }
            }
        }
    }
}

/// A line of the node's trace about discovery (`VERBOSE`; the logger at
/// debug level, target `zgossip::discovery`).
fn trace(engine: &Engine, what: std::fmt::Arguments<'_>) {
    crate::logging::trace(
        engine.verbose(),
        crate::logging::DISCOVERY,
        log::Level::Debug,
        "zgossip",
        Some(engine.name()),
        what,
    );
}
