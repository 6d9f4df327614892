//! The options of `DISCOVER`, parsed and checked: as `name=value`
//! arguments or as `discovery/<name>` configuration paths. No I/O.

use std::net::IpAddr;

use super::discovery;
use super::udp::UdpOptions;
use crate::error::{Error, Result};

/// The UDP port gossip nodes beacon on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5675;
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
    /// Both families at once (`ipv6=both`): IPv4 beacons (broadcast, or
    /// an IPv4 `group`) and IPv6 multicast on the same interface; `ipv6`
    /// is then ignored. See `docs/discovery.md`, "Dual stack".
    pub dual_stack: bool,
    /// Multicast TTL (`ttl`), default 1.
    pub ttl: Option<u32>,
    /// Most peers tracked (`max-peers`), default 256.
    pub max_peers: usize,
    /// Most new dials per second (`dials-per-sec`), default 10.
    pub dials_per_sec: u32,
    /// A peer silent this long (ms) is forgotten (`expiry`), default
    /// max(30 s, 10 intervals, 3 quiet intervals).
    pub expiry_ms: Option<u64>,
    /// Beacon interval in ms once the node has overlay links
    /// (`quiet-interval`), default 30000; 0: always `interval`.
    pub quiet_interval_ms: u64,
    /// Announce the node and browse for the others over mDNS / DNS-SD
    /// as `_zgossip._tcp.local` (`mdns`, 0 or 1), default 0.
    pub mdns: bool,
    /// UDP beacons (`beacon`, 0 or 1), default 1; 0 only with `mdns=1`.
    pub beacon: bool,
}

impl Default for DiscoverOptions {
    fn default() -> DiscoverOptions {
        DiscoverOptions {
            port: DEFAULT_PORT,
            interval_ms: 1_000,
            interface: None,
            group: None,
            ipv6: None,
            dual_stack: false,
            ttl: None,
            max_peers: 256,
            dials_per_sec: 10,
            expiry_ms: None,
            quiet_interval_ms: 30_000,
            mdns: false,
            beacon: true,
        }
    }
}

/// The option names, as arguments and under `discovery/` in configuration.
pub const OPTION_NAMES: [&str; 12] = [
    "port",
    "interval",
    "interface",
    "group",
    "ipv6",
    "ttl",
    "max-peers",
    "dials-per-sec",
    "expiry",
    "quiet-interval",
    "mdns",
    "beacon",
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
            "ipv6" => {
                let one = if v == "both" {
                    None
                } else {
                    Some(num(0, 1, "0, 1 or both")? == 1)
                };
                self.dual_stack = one.is_none();
                self.ipv6 = one;
            }
            "ttl" => self.ttl = Some(num(1, 255, "1 to 255")? as u32),
            "max-peers" => self.max_peers = num(1, 65_536, "1 to 65536")? as usize,
            "dials-per-sec" => self.dials_per_sec = num(1, 10_000, "1 to 10000")? as u32,
            "expiry" => self.expiry_ms = Some(num(1, u64::from(u32::MAX), "a number of ms")?),
            "quiet-interval" => {
                self.quiet_interval_ms = num(0, 3_600_000, "0 to 3600000 ms")?;
            }
            "mdns" => self.mdns = num(0, 1, "0 or 1")? == 1,
            "beacon" => self.beacon = num(0, 1, "0 or 1")? == 1,
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

    /// Checks the options together: some way to be found must be left.
    pub fn check(&self) -> Result<()> {
        if !self.beacon && !self.mdns {
            return Err(Error::command(
                "DISCOVER: beacon=0 needs mdns=1 (no way left to find peers)",
            ));
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
            format!("quiet-interval={}", self.quiet_interval_ms),
        ];
        if self.mdns {
            a.push("mdns=1".into());
        }
        if !self.beacon {
            a.push("beacon=0".into());
        }
        if let Some(i) = &self.interface {
            a.push(format!("interface={i}"));
        }
        if let Some(g) = self.group {
            a.push(format!("group={g}"));
        }
        if self.dual_stack {
            a.push("ipv6=both".into());
        } else if let Some(v) = self.ipv6 {
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

    pub(crate) fn udp(&self) -> UdpOptions {
        UdpOptions {
            interface: self.interface.clone(),
            group: self.group,
            ipv6: self.ipv6,
            ttl: self.ttl,
        }
    }

    /// The beacon sockets' options: one family, or with `ipv6=both` IPv4
    /// then IPv6 (each family takes `group` only when it is of that
    /// family).
    pub(crate) fn udp_families(&self) -> Vec<UdpOptions> {
        if !self.dual_stack {
            return vec![self.udp()];
        }
        [false, true]
            .into_iter()
            .map(|ipv6| UdpOptions {
                ipv6: Some(ipv6),
                group: self.group.filter(|g| g.is_ipv6() == ipv6),
                ..self.udp()
            })
            .collect()
    }

    /// The interval once the node has overlay links.
    pub(crate) fn quiet_interval_ms(&self) -> u64 {
        match self.quiet_interval_ms {
            0 => self.interval_ms,
            q => q.max(self.interval_ms),
        }
    }

    pub(crate) fn settings(&self) -> discovery::DiscoverySettings {
        let mut s = discovery::DiscoverySettings::for_interval(self.interval_ms);
        // Peers that beacon quietly are not forgotten between two beacons.
        s.expiry_ms = s.expiry_ms.max(self.quiet_interval_ms().saturating_mul(3));
        s.max_peers = self.max_peers;
        s.dials_per_sec = self.dials_per_sec;
        if let Some(e) = self.expiry_ms {
            s.expiry_ms = e;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_both_opens_one_socket_per_family() {
        let mut o = DiscoverOptions::default();
        assert_eq!(o.udp_families().len(), 1);
        o.apply_args(&["ipv6=both", "group=ff02::7", "interface=eth1"])
            .unwrap();
        assert!(o.dual_stack);
        assert_eq!(o.ipv6, None);
        let f = o.udp_families();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].ipv6, f[0].group), (Some(false), None));
        assert_eq!(
            (f[1].ipv6, f[1].group),
            (Some(true), Some("ff02::7".parse().unwrap()))
        );
        assert!(f.iter().all(|u| u.interface.as_deref() == Some("eth1")));
        let mut again = DiscoverOptions::default();
        again.apply_args(&o.to_args()).unwrap();
        assert_eq!(again, o, "printed as ipv6=both");
        // A later ipv6=0 or 1 turns both off again.
        o.apply_args(&["ipv6=1"]).unwrap();
        assert!(!o.dual_stack);
        assert_eq!(o.udp_families().len(), 1);
        // With mDNS, and beacons off: both kept, printed and read back.
        let mut o = DiscoverOptions::default();
        o.apply_args(&["ipv6=both", "mdns=1", "beacon=0"]).unwrap();
        o.check().unwrap();
        let mut again = DiscoverOptions::default();
        again.apply_args(&o.to_args()).unwrap();
        assert_eq!(again, o);
        assert!(again.dual_stack && again.mdns && !again.beacon);
        // An IPv4 group goes to the IPv4 socket alone.
        let mut o = DiscoverOptions::default();
        o.apply_args(&["group=239.1.2.3", "ipv6=both"]).unwrap();
        let f = o.udp_families();
        assert_eq!(f[0].group, Some("239.1.2.3".parse().unwrap()));
        assert_eq!(f[1].group, None);
    }

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
            "quiet-interval=0",
            "mdns=1",
            "beacon=0",
        ])
        .unwrap();
        assert!(o.mdns && !o.beacon);
        o.check().unwrap();
        assert_eq!(o.quiet_interval_ms(), 250, "0: never quiet");
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
        assert!(err("quiet-interval=-1").contains("quiet-interval must be"));
        assert!(err("ipv6=2").contains("ipv6 must be 0, 1 or both"));
        assert!(err("ipv6=dual").contains("ipv6 must be 0, 1 or both"));
        assert!(err("mdns=2").contains("mdns must be 0 or 1"));
        let mut o = DiscoverOptions::default();
        o.apply_args(&["beacon=0"]).unwrap();
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("beacon=0 needs mdns=1"), "{e}");
        let d = DiscoverOptions::default();
        assert_eq!(d.quiet_interval_ms(), 30_000);
        assert_eq!(d.settings().expiry_ms, 90_000, "three quiet intervals");
    }
}
