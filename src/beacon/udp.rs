//! The UDP sockets of a beacon: one to receive (bound to the port, shared
//! with other programs on the host through SO_REUSEADDR/SO_REUSEPORT) and
//! one to send (bound to the chosen interface's address, so the source
//! address of a beacon is where its sender can be reached), as CZMQ's
//! zbeacon does. Both are non-blocking.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::iface::{self, Choice, Iface};

/// CZMQ's default IPv6 group: link-local all nodes.
pub const DEFAULT_IPV6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Largest beacon, as CZMQ's `UDP_FRAME_MAX`.
pub const MAX_BEACON: usize = 255;

/// Where and how beacons go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpOptions {
    /// Interface name or address, `*`, a digit, or empty for the first
    /// usable one. `None`: the environment (`ZSYS_INTERFACE`), else empty.
    pub interface: Option<String>,
    /// Multicast group; `None`: IPv4 broadcast (or, with `ipv6`, the IPv6
    /// group from `ZSYS_IPV6_MCAST_ADDRESS`, else ff02::1). When unset and
    /// the environment has `ZSYS_IPV4_MCAST_ADDRESS`, that group.
    pub group: Option<IpAddr>,
    /// Use IPv6 (implied by an IPv6 group). `None`: `ZSYS_IPV6`.
    pub ipv6: Option<bool>,
    /// Multicast TTL / hop limit; `None`: `ZSYS_MCAST_TTL`, else 1.
    pub ttl: Option<u32>,
}

/// Options with the environment filled in, as CZMQ's zsys reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub interface: String,
    pub ipv6: bool,
    pub group: Option<IpAddr>,
    pub ttl: u32,
}

impl UdpOptions {
    /// Fills unset options from `env` (a lookup such as `std::env::var`).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> io::Result<Resolved> {
        let interface = self
            .interface
            .clone()
            .or_else(|| env("ZSYS_INTERFACE"))
            .unwrap_or_default();
        let env_num = |name: &str| env(name).and_then(|v| v.trim().parse::<u32>().ok());
        let ipv6 = match (self.ipv6, self.group) {
            (_, Some(IpAddr::V6(_))) => true,
            (_, Some(IpAddr::V4(_))) => false,
            (Some(v), None) => v,
            (None, None) => env_num("ZSYS_IPV6").is_some_and(|v| v != 0),
        };
        let group = match self.group {
            Some(g) => Some(g),
            None if ipv6 => Some(IpAddr::V6(match env("ZSYS_IPV6_MCAST_ADDRESS") {
                Some(g) => g
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("bad ZSYS_IPV6_MCAST_ADDRESS '{g}'")))?,
                None => DEFAULT_IPV6_GROUP,
            })),
            None => match env("ZSYS_IPV4_MCAST_ADDRESS") {
                Some(g) if !g.trim().is_empty() => {
                    Some(IpAddr::V4(g.trim().parse().map_err(|_| {
                        bad(format!("bad ZSYS_IPV4_MCAST_ADDRESS '{g}'"))
                    })?))
                }
                _ => None,
            },
        };
        if let Some(g) = group {
            if !g.is_multicast() {
                return Err(bad(format!("{g} is not a multicast group")));
            }
        }
        let ttl = self
            .ttl
            .or_else(|| env_num("ZSYS_MCAST_TTL"))
            .unwrap_or(1)
            .clamp(1, 255);
        Ok(Resolved {
            interface,
            ipv6,
            group,
            ttl,
        })
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// An open beacon.
#[derive(Debug)]
pub struct UdpBeacon {
    pub recv: UdpSocket,
    pub send: UdpSocket,
    /// Where beacons are sent.
    pub dest: SocketAddr,
    /// The address we beacon from, `*` for the wildcard (CONFIGURE's reply).
    pub hostname: String,
    /// The interfaces when we opened (to name IPv6 scopes).
    pub ifaces: Vec<Iface>,
}

impl UdpBeacon {
    /// Opens the sockets for `port`. `Ok(None)`: no usable interface.
    pub fn open(port: u16, opts: &Resolved) -> io::Result<Option<UdpBeacon>> {
        let ifaces = iface::list()?;
        let choice = iface::choose(&ifaces, &opts.interface, opts.ipv6);
        UdpBeacon::open_on(port, opts, choice, ifaces)
    }

    /// Opens the sockets for `port` on an interface already chosen (of
    /// `opts.ipv6`'s family) from `ifaces`. `Ok(None)`: `Choice::None`.
    pub fn open_on(
        port: u16,
        opts: &Resolved,
        choice: Choice,
        ifaces: Vec<Iface>,
    ) -> io::Result<Option<UdpBeacon>> {
        let chosen = match choice {
            Choice::None => return Ok(None),
            Choice::Wildcard => None,
            Choice::Iface(i) => Some(i),
        };
        let beacon = if opts.ipv6 {
            open_v6(port, opts, chosen.as_ref())?
        } else {
            open_v4(port, opts, chosen.as_ref())?
        };
        Ok(Some(UdpBeacon { ifaces, ..beacon }))
    }

    /// Whether this beacon is the IPv6 one.
    pub fn is_ipv6(&self) -> bool {
        self.dest.is_ipv6()
    }

    /// A readable form of a datagram's source, as CZMQ gives it: the IP
    /// address, with `%interface` for an IPv6 link-local one.
    pub fn peer_name(&self, from: SocketAddr) -> String {
        match from {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => {
                if let Some(v4) = a.ip().to_ipv4_mapped() {
                    return v4.to_string();
                }
                let link_local = a.ip().segments()[0] & 0xffc0 == 0xfe80;
                if link_local && a.scope_id() != 0 {
                    match iface::name_of(&self.ifaces, a.scope_id()) {
                        Some(n) => format!("{}%{n}", a.ip()),
                        None => format!("{}%{}", a.ip(), a.scope_id()),
                    }
                } else {
                    a.ip().to_string()
                }
            }
        }
    }
}

fn socket(domain: Domain) -> io::Result<Socket> {
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if domain == Domain::IPV4 {
        s.set_broadcast(true)?;
    } else {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn open_v4(port: u16, opts: &Resolved, chosen: Option<&Iface>) -> io::Result<UdpBeacon> {
    let recv = socket(Domain::IPV4)?;
    let send = socket(Domain::IPV4)?;
    let local = match chosen.map(|i| i.addr) {
        Some(IpAddr::V4(a)) => a,
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let dest = match opts.group {
        Some(IpAddr::V4(group)) => {
            // Bound to the group: only datagrams for it arrive.
            recv.bind(&SockAddr::from(SocketAddr::from((group, port))))?;
            recv.join_multicast_v4(&group, &local)?;
            for s in [&recv, &send] {
                s.set_multicast_ttl_v4(opts.ttl)?;
                s.set_multicast_loop_v4(true)?;
                s.set_multicast_if_v4(&local)?;
            }
            SocketAddr::from((group, port))
        }
        _ => {
            recv.bind(&SockAddr::from(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                port,
            ))))?;
            let to = match chosen {
                None => Ipv4Addr::BROADCAST,
                Some(i) => i
                    .broadcast_v4()
                    .ok_or_else(|| bad(format!("interface {} has no broadcast address", i.name)))?,
            };
            SocketAddr::from((to, port))
        }
    };
    send.bind(&SockAddr::from(SocketAddr::from((local, 0))))?;
    Ok(UdpBeacon {
        recv: recv.into(),
        send: send.into(),
        dest,
        hostname: match chosen {
            Some(i) => i.addr.to_string(),
            None => "*".into(),
        },
        ifaces: Vec::new(),
    })
}

fn open_v6(port: u16, opts: &Resolved, chosen: Option<&Iface>) -> io::Result<UdpBeacon> {
    let group = match opts.group {
        Some(IpAddr::V6(g)) => g,
        _ => DEFAULT_IPV6_GROUP,
    };
    let index = chosen.map_or(0, |i| i.index);
    let recv = socket(Domain::IPV6)?;
    let send = socket(Domain::IPV6)?;
    recv.bind(&SockAddr::from(SocketAddr::from((
        Ipv6Addr::UNSPECIFIED,
        port,
    ))))?;
    recv.join_multicast_v6(&group, index)?;
    for s in [&recv, &send] {
        s.set_multicast_if_v6(index)?;
        s.set_multicast_hops_v6(opts.ttl)?;
        s.set_multicast_loop_v6(true)?;
    }
    let (local, scope) = match chosen.map(|i| i.addr) {
        Some(IpAddr::V6(a)) => (
            a,
            if a.segments()[0] & 0xffc0 == 0xfe80 {
                index
            } else {
                0
            },
        ),
        _ => (Ipv6Addr::UNSPECIFIED, 0),
    };
    send.bind(&SockAddr::from(SocketAddrV6::new(local, 0, 0, scope)))?;
    let hostname = match chosen {
        None => "*".to_string(),
        Some(i) if scope != 0 => format!("{}%{}", i.addr, i.name),
        Some(i) => i.addr.to_string(),
    };
    Ok(UdpBeacon {
        recv: recv.into(),
        send: send.into(),
        dest: SocketAddr::V6(SocketAddrV6::new(group, port, 0, index)),
        hostname,
        ifaces: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn options_come_from_the_environment_like_czmq() {
        let r = UdpOptions::default().resolve(env(&[])).unwrap();
        assert_eq!(
            r,
            Resolved {
                interface: String::new(),
                ipv6: false,
                group: None,
                ttl: 1
            }
        );
        let r = UdpOptions::default()
            .resolve(env(&[
                ("ZSYS_INTERFACE", "eth1"),
                ("ZSYS_IPV4_MCAST_ADDRESS", "239.0.0.7"),
                ("ZSYS_MCAST_TTL", "3"),
            ]))
            .unwrap();
        assert_eq!(r.interface, "eth1");
        assert_eq!(r.group, Some("239.0.0.7".parse().unwrap()));
        assert_eq!(r.ttl, 3);
        let r = UdpOptions::default()
            .resolve(env(&[("ZSYS_IPV6", "1")]))
            .unwrap();
        assert!(r.ipv6);
        assert_eq!(r.group, Some(IpAddr::V6(DEFAULT_IPV6_GROUP)));
        // Explicit options win over the environment.
        let o = UdpOptions {
            interface: Some("lo".into()),
            ..Default::default()
        };
        assert_eq!(
            o.resolve(env(&[("ZSYS_INTERFACE", "eth0")]))
                .unwrap()
                .interface,
            "lo"
        );
        let o = UdpOptions {
            group: Some("10.0.0.1".parse().unwrap()),
            ..Default::default()
        };
        assert!(o.resolve(env(&[])).is_err());
        assert!(UdpOptions::default()
            .resolve(env(&[("ZSYS_IPV4_MCAST_ADDRESS", "nope")]))
            .is_err());
    }
}
