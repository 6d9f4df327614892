//! The DNS-SD record of a gossip node (`DISCOVER mdns=1`), sans-IO: what
//! a node announces as `_zgossip._tcp.local` (instance name, TXT keys)
//! and how a service heard over mDNS is read back into the same
//! [`frame::Announce`] a beacon gives, so both take one path into the
//! overlay (`Discovery::handle_announce`). See docs/discovery.md,
//! "mDNS / DNS-SD".
//!
//! ```text
//! service   _zgossip._tcp.local.
//! instance  <node name>-<node id, 16 hex digits>   (at most 63 bytes)
//! SRV port  the port of the node's own endpoint (overlay/advertise, else its first TCP bind)
//! A/AAAA    the interface's addresses
//! TXT       v=1                      the record's version (a later one may add keys)
//!           id=<16 hex digits>       the node id, not 0
//!           cluster=<name>           cluster/name (absent: none), at most 247 bytes
//!           key=<40 Z85 characters>  the CURVE public key, when the node has one
//!           endpoint=tcp://IP:PORT   overlay/advertise, when set
//! ```
//!
//! A service without `id` (a node announced by another program, such as
//! `avahi-publish`, with only a port) is a peer too, with an id drawn from
//! its instance name. Anything malformed (a bad version, id, key,
//! cluster or endpoint, a value too long, too many keys, port 0, no
//! usable address) is [`Garbage`]: ignored and counted, never dialled.

use std::net::{IpAddr, SocketAddr};

use super::frame::Announce;
use crate::wire::z85;

/// The DNS-SD service type, with its domain.
pub const SERVICE_TYPE: &str = "_zgossip._tcp.local.";
/// The version this node announces (`v=`).
pub const TXT_VERSION: u32 = 1;
/// Longest instance name (one DNS label).
pub const MAX_INSTANCE: usize = 63;
/// Longest cluster name in TXT (`cluster=` and the name fit one 255-byte
/// TXT string); a longer `cluster/name` is announced and compared cut to
/// this many bytes.
pub const MAX_TXT_CLUSTER: usize = 255 - "cluster=".len();
/// Most TXT keys read from one service; a service with more is garbage.
pub const MAX_TXT_KEYS: usize = 32;
/// Longest `endpoint=` value read.
const MAX_ENDPOINT: usize = 128;

/// What a node announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub instance: String,
    /// The host name of the A/AAAA records (`zgossip-<id>.local.`).
    pub host: String,
    pub port: u16,
    pub txt: Vec<(String, String)>,
}

/// The record of node `node_id` named `name`, listening at `port`, of
/// `cluster` (empty: none), with its CURVE `public_key`, telling others
/// to dial `advertise` (a `tcp://IP:PORT` endpoint) when it is set.
pub fn record(
    name: &str,
    node_id: u64,
    port: u16,
    cluster: &str,
    public_key: Option<&[u8; 32]>,
    advertise: Option<&str>,
) -> Record {
    let mut txt = vec![
        ("v".to_string(), TXT_VERSION.to_string()),
        ("id".to_string(), format!("{node_id:016x}")),
    ];
    if !cluster.is_empty() {
        let cut = cut_cluster(cluster);
        // TXT values are bytes; a name cut inside a character is
        // compared as bytes, so it is announced as its bytes allow.
        txt.push((
            "cluster".into(),
            String::from_utf8_lossy(cut.as_bytes()).into_owned(),
        ));
    }
    if let Some(k) = public_key {
        txt.push(("key".into(), z85::encode_key(k)));
    }
    if let Some(ep) = advertise.filter(|e| parse_endpoint(e).is_some()) {
        txt.push(("endpoint".into(), ep.to_string()));
    }
    Record {
        instance: instance_name(name, node_id),
        host: format!("zgossip-{node_id:016x}.local."),
        port,
        txt,
    }
}

/// `<name>-<id in hex>`, the name cut (on a character boundary) so the
/// whole fits one DNS label; unique per node.
pub fn instance_name(name: &str, node_id: u64) -> String {
    let suffix = format!("-{node_id:016x}");
    let room = MAX_INSTANCE - suffix.len();
    let mut end = name.len().min(room);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let name: String = name[..end]
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    format!("{name}{suffix}")
}

/// A cluster name as TXT carries it: at most [`MAX_TXT_CLUSTER`] bytes.
fn cut_cluster(cluster: &str) -> &str {
    let mut end = cluster.len().min(MAX_TXT_CLUSTER);
    while !cluster.is_char_boundary(end) {
        end -= 1;
    }
    &cluster[..end]
}

/// A service as the mDNS browser resolved it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    /// `<instance>._zgossip._tcp.local.`
    pub fullname: String,
    pub port: u16,
    pub addresses: Vec<IpAddr>,
    /// TXT keys and values, as announced (a key without `=` has `None`).
    pub txt: Vec<(String, Option<Vec<u8>>)>,
}

/// Why a service is not a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    Port,
    NoAddress,
    TooManyKeys,
    Version,
    Id,
    Key,
    Cluster,
    Endpoint,
}

impl std::fmt::Display for Garbage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Garbage::Port => "port 0",
            Garbage::NoAddress => "no usable address",
            Garbage::TooManyKeys => "too many TXT keys",
            Garbage::Version => "TXT v= is not a version number",
            Garbage::Id => "TXT id= is not 16 hex digits (not 0)",
            Garbage::Key => "TXT key= is not a 40-character Z85 key",
            Garbage::Cluster => "TXT cluster= is too long",
            Garbage::Endpoint => "TXT endpoint= is not tcp://IP:PORT",
        })
    }
}

/// A service read as a peer: the announcement and the address to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub address: SocketAddr,
    pub announce: Announce,
}

/// Reads `service` as a peer of a node of `own_cluster`, preferring an
/// IPv6 address when `ipv6`. A cluster name that differs is kept (the
/// discovery counts it, as for beacons); anything malformed is garbage.
pub fn read(service: &Service, own_cluster: &str, ipv6: bool) -> Result<Heard, Garbage> {
    if service.txt.len() > MAX_TXT_KEYS {
        return Err(Garbage::TooManyKeys);
    }
    if service.port == 0 {
        return Err(Garbage::Port);
    }
    let value = |key: &str| -> Option<&[u8]> {
        // The first of a repeated key counts (RFC 6763, 6.4).
        service
            .txt
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_deref().unwrap_or_default())
    };
    if let Some(v) = value("v") {
        text(v, 8)
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|n| *n >= 1 && v.iter().all(u8::is_ascii_digit))
            .ok_or(Garbage::Version)?;
    }
    let node_id = match value("id") {
        Some(v) => text(v, 16)
            .filter(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .filter(|id| *id != 0)
            .ok_or(Garbage::Id)?,
        None => synthetic_id(&service.fullname),
    };
    let public_key = match value("key") {
        Some(v) => Some(
            text(v, 40)
                .and_then(|s| z85::decode_key(s).ok())
                .filter(|k| k.iter().any(|b| *b != 0))
                .ok_or(Garbage::Key)?,
        ),
        None => None,
    };
    let cluster = match value("cluster") {
        None => String::new(),
        Some(v) if v.len() > MAX_TXT_CLUSTER => return Err(Garbage::Cluster),
        // Ours, as TXT carries it: the very name.
        Some(v) if !own_cluster.is_empty() && v == cut_cluster(own_cluster).as_bytes() => {
            own_cluster.to_string()
        }
        Some(v) => String::from_utf8_lossy(v).into_owned(),
    };
    let endpoint = match value("endpoint") {
        Some(v) => Some(
            text(v, MAX_ENDPOINT)
                .and_then(parse_endpoint)
                .ok_or(Garbage::Endpoint)?,
        ),
        None => None,
    };
    // The service's address at its SRV port is where it is heard, as a
    // beacon's source; a TXT `endpoint` is dialled instead, as a version 5
    // beacon's advertised endpoint (and stands for the address when the
    // service has none).
    let address = match pick_address(&service.addresses, ipv6) {
        Some(ip) => SocketAddr::new(ip, service.port),
        None => endpoint.ok_or(Garbage::NoAddress)?,
    };
    Ok(Heard {
        address,
        announce: Announce {
            version: 0,
            flags: 0,
            port: address.port(),
            node_id,
            public_key,
            cluster,
            anchor: None,
            advertised: endpoint.map(super::discovery::endpoint_string),
        },
    })
}

/// A TXT value as text of at most `max` bytes.
fn text(v: &[u8], max: usize) -> Option<&str> {
    std::str::from_utf8(v).ok().filter(|s| s.len() <= max)
}

/// `tcp://IP:PORT` (an IPv6 address in brackets), with a port not 0.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    text.strip_prefix("tcp://")?
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| a.port() != 0 && dialable(a.ip()))
}

fn dialable(ip: IpAddr) -> bool {
    !(ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]))
}

fn link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(_) => super::iface::is_link_local(*ip),
    }
}

/// The address dialled among a service's: of the preferred family first,
/// then not link-local (an IPv6 link-local address needs its scope, which
/// an endpoint does not carry here), the smallest of equals so the choice
/// is stable.
fn pick_address(addresses: &[IpAddr], ipv6: bool) -> Option<IpAddr> {
    addresses
        .iter()
        .copied()
        .filter(|a| dialable(*a) && !(a.is_ipv6() && link_local(a)))
        .min_by_key(|a| (a.is_ipv6() != ipv6, link_local(a), *a))
}

/// The id of a peer that announces none: drawn from its instance name
/// (FNV-1a; never 0), so the same service keeps its id.
pub fn synthetic_id(fullname: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in fullname.to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(txt: &[(&str, &str)]) -> Service {
        Service {
            fullname: "n-1._zgossip._tcp.local.".into(),
            port: 7000,
            addresses: vec!["10.0.0.2".parse().unwrap(), "fe80::1".parse().unwrap()],
            txt: txt
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
                .collect(),
        }
    }

    #[test]
    fn a_record_reads_back_as_the_node_it_announces() {
        let key = [7u8; 32];
        let r = record("alpha", 0xabc, 7000, "prod", Some(&key), None);
        assert_eq!(r.instance, "alpha-0000000000000abc");
        let s = Service {
            fullname: format!("{}.{SERVICE_TYPE}", r.instance),
            port: r.port,
            addresses: vec!["10.0.0.9".parse().unwrap()],
            txt: r
                .txt
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.as_bytes().to_vec())))
                .collect(),
        };
        let h = read(&s, "prod", false).unwrap();
        assert_eq!(h.address, "10.0.0.9:7000".parse().unwrap());
        assert_eq!(h.announce.node_id, 0xabc);
        assert_eq!(h.announce.public_key, Some(key));
        assert_eq!(h.announce.cluster, "prod");
    }

    #[test]
    fn the_advertised_endpoint_wins_over_the_address_records() {
        let r = record("a", 1, 7000, "", None, Some("tcp://203.0.113.5:9000"));
        assert!(r
            .txt
            .contains(&("endpoint".into(), "tcp://203.0.113.5:9000".into())));
        let h = read(
            &service(&[("endpoint", "tcp://203.0.113.5:9000")]),
            "",
            false,
        )
        .unwrap();
        assert_eq!(h.address, "10.0.0.2:7000".parse().unwrap());
        assert_eq!(
            h.announce.advertised.as_deref(),
            Some("tcp://203.0.113.5:9000")
        );
        // Without address records: heard at the endpoint.
        let mut bare = service(&[("endpoint", "tcp://203.0.113.5:9000")]);
        bare.addresses.clear();
        let h = read(&bare, "", false).unwrap();
        assert_eq!(h.address, "203.0.113.5:9000".parse().unwrap());
        // A host name is not announced (the address records say where).
        let r = record("a", 1, 7000, "", None, Some("tcp://gw.example:9000"));
        assert!(!r.txt.iter().any(|(k, _)| k == "endpoint"));
    }

    #[test]
    fn a_service_without_our_keys_is_a_plain_peer_at_its_address() {
        let h = read(&service(&[]), "", false).unwrap();
        assert_eq!(h.address, "10.0.0.2:7000".parse().unwrap());
        assert_eq!(h.announce.node_id, synthetic_id("n-1._zgossip._tcp.local."));
        assert_eq!(h.announce.public_key, None);
        assert_eq!(h.announce.cluster, "");
        let k = z85::encode_key(&[9; 32]);
        let h = read(&service(&[("key", &k)]), "", false).unwrap();
        assert_eq!(h.announce.public_key, Some([9; 32]));
    }

    #[test]
    fn garbage_is_refused_saying_what() {
        let bad = |txt: &[(&str, &str)]| read(&service(txt), "", false).unwrap_err();
        assert_eq!(bad(&[("id", "xyz")]), Garbage::Id);
        assert_eq!(bad(&[("id", "0000000000000000")]), Garbage::Id);
        assert_eq!(bad(&[("id", "00000000000000001")]), Garbage::Id);
        assert_eq!(bad(&[("id", "+000000000000001")]), Garbage::Id);
        assert_eq!(bad(&[("key", "short")]), Garbage::Key);
        assert_eq!(bad(&[("key", &"~".repeat(40))]), Garbage::Key);
        assert_eq!(bad(&[("key", &z85::encode_key(&[0; 32]))]), Garbage::Key);
        assert_eq!(bad(&[("v", "x")]), Garbage::Version);
        assert_eq!(bad(&[("v", "0")]), Garbage::Version);
        assert_eq!(bad(&[("cluster", &"c".repeat(250))]), Garbage::Cluster);
        assert_eq!(bad(&[("endpoint", "tcp://0.0.0.0:5")]), Garbage::Endpoint);
        assert_eq!(bad(&[("endpoint", "udp://1.2.3.4:5")]), Garbage::Endpoint);
        let many: Vec<(String, String)> = (0..40).map(|i| (format!("k{i}"), "v".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        assert_eq!(bad(&many), Garbage::TooManyKeys);
        let mut s = service(&[]);
        s.port = 0;
        assert_eq!(read(&s, "", false).unwrap_err(), Garbage::Port);
        let mut s = service(&[]);
        s.addresses = vec!["fe80::1".parse().unwrap(), "0.0.0.0".parse().unwrap()];
        assert_eq!(read(&s, "", false).unwrap_err(), Garbage::NoAddress);
        // Bytes that are not UTF-8.
        let mut s = service(&[]);
        s.txt = vec![("id".into(), Some(vec![0xff; 16]))];
        assert_eq!(read(&s, "", false).unwrap_err(), Garbage::Id);
    }

    #[test]
    fn a_later_version_with_more_keys_is_read() {
        let h = read(&service(&[("v", "7"), ("colour", "red")]), "", false).unwrap();
        assert_eq!(h.announce.port, 7000);
    }

    #[test]
    fn the_preferred_family_is_dialled_and_link_local_v6_never() {
        let mut s = service(&[]);
        s.addresses = vec![
            "fd00::5".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
        ];
        assert_eq!(
            read(&s, "", false).unwrap().address.ip().to_string(),
            "10.0.0.2"
        );
        assert_eq!(
            read(&s, "", true).unwrap().address.ip().to_string(),
            "fd00::5"
        );
    }

    #[test]
    fn names_are_bounded_and_long_clusters_compare_as_announced() {
        let long = "n".repeat(100);
        let i = instance_name(&long, 5);
        assert_eq!(i.len(), MAX_INSTANCE);
        assert!(i.ends_with("-0000000000000005"));
        let i = instance_name(&"é".repeat(40), 5);
        assert!(i.len() <= MAX_INSTANCE);
        let cluster = "c".repeat(255);
        let r = record("a", 1, 7000, &cluster, None, None);
        let (_, v) = r.txt.iter().find(|(k, _)| k == "cluster").unwrap();
        assert_eq!(v.len(), MAX_TXT_CLUSTER);
        let h = read(&service(&[("cluster", v)]), &cluster, false).unwrap();
        assert_eq!(h.announce.cluster, cluster);
        let h = read(&service(&[("cluster", "other")]), &cluster, false).unwrap();
        assert_eq!(h.announce.cluster, "other");
    }
}
