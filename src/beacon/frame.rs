//! The discovery beacon: a small, versioned datagram a gossip node sends
//! to say "node `id` listens for gossip on TCP port `port` at the address
//! this datagram came from", from version 2 on "and speaks only CURVE, as
//! the server of this public key", from version 3 on "in this cluster",
//! from version 4 on "in the part of the overlay anchored at this
//! node id", and from version 5 on "dial me at this endpoint, not at the
//! address this datagram came from" (`overlay/advertise`). Sans-IO: bytes
//! in, bytes out.
//!
//! ```text
//! offset  size  field
//!      0     3  magic "ZGD"
//!      3     1  version: 1 (plain), 2 (CURVE), 3 (named cluster),
//!               4 (overlay anchor)
//!      4     1  flags: bit 0 "looking for peers"; receivers ignore the others
//!      5     2  TCP port, big-endian, not 0
//!      7     8  node id, big-endian, not 0
//!     15    32  version 2 and later: the node's CURVE public key, not all 0
//!               (version 3 and later: all 0 for a node without a key pair)
//!     47     1  version 3 and later: length of the cluster name, 1-255
//!               (version 4 and later: 0-255, 0 for no cluster name)
//!     48     n  the cluster name, UTF-8 without control characters
//!   48+n     8  version 4 and later: the overlay anchor, big-endian, not 0
//!               (ignored while the "looking" flag is set)
//!   56+n     1  version 5 and later: length m of the advertised endpoint,
//!               1-255
//!   57+n     m  the advertised endpoint, `tcp://HOST:PORT` (UTF-8), a host
//!               name or address that is not a wildcard, broadcast or
//!               multicast, and PORT the port at offset 5
//! ```
//!
//! A version 1 beacon is exactly 15 bytes and comes from a node without a
//! CURVE key pair; a version 2 beacon is exactly 47 bytes and comes from a
//! node that has one (after ZRE's version 3, which grew the same way). A
//! node with a cluster name (`cluster/name`) sends version 3, 48 bytes and
//! the name: receivers of version 2 read its first 47 bytes and refuse its
//! zero key, so nodes of earlier releases (which have no cluster) ignore
//! keyless nodes of named clusters. A node in the overlay sends version 4:
//! version 3 (with a name length of 0 when it has no cluster name) and its
//! *anchor*, the smallest node id it knows in its part of the overlay
//! (docs/overlay.md, "Parts that formed apart"). Nodes of releases before
//! version 4 hear a version 4 beacon only when it carries a key (they read
//! its first 47 bytes); the newer node still hears theirs and dials them.
//! A node with `overlay/advertise` set sends version 5: version 4 (a node
//! still looking for peers puts its own id as the anchor, which receivers
//! ignore while the flag is set) and the endpoint to dial. Receivers that
//! know version 4 read it as a later version, ignore the endpoint and dial
//! the source address at the port, as they did before; earlier ones
//! ignore it as they ignore version 4.
//! A later version keeps all these fields where they are and may append
//! more. Anything else (other magic, version
//! 0, a wrong length, port 0, id 0, a version 2 key of zeros, a bad name,
//! a bad endpoint, more than [`MAX_DATAGRAM`] bytes) is not a beacon of
//! ours.

/// The first bytes of every discovery beacon (and the subscription filter).
pub const MAGIC: &[u8; 3] = b"ZGD";
/// The version of a node without a CURVE key pair.
pub const VERSION: u8 = 1;
/// The version of a node with a CURVE key pair: version 1 plus its key.
pub const VERSION_CURVE: u8 = 2;
/// The version of a node of a named cluster: version 2 (a key, or zeros)
/// plus the name.
pub const VERSION_CLUSTER: u8 = 3;
/// The version of a node in the overlay: version 3 (the name may be
/// empty) plus its anchor.
pub const VERSION_ANCHOR: u8 = 4;
/// The version of a node with an advertised endpoint: version 4 plus the
/// endpoint.
pub const VERSION_ADVERTISE: u8 = 5;
/// The longest datagram read as a beacon; longer ones are refused
/// (`Rejected::Length`) whatever their version.
pub const MAX_DATAGRAM: usize = 1024;
/// Length of a version 1 beacon.
pub const LEN: usize = 15;
/// Length of a version 2 beacon.
pub const LEN_CURVE: usize = LEN + 32;
/// Flag bit: the sender has no overlay link yet and looks for peers; a
/// node that has links answers with a beacon of its own at once (some of
/// them: see `discovery`), so a newcomer finds a quiet network quickly.
pub const FLAG_LOOKING: u8 = 0x01;

/// Sets or clears a flag bit of an encoded beacon.
pub fn set_flag(beacon: &mut [u8], flag: u8, on: bool) {
    if let Some(flags) = beacon.get_mut(4) {
        if on {
            *flags |= flag;
        } else {
            *flags &= !flag;
        }
    }
}

/// The longest beacon this code writes.
pub const MAX_LEN: usize = LEN_CURVE + 1 + 255 + 8 + 1 + 255;

/// A decoded discovery beacon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub version: u8,
    pub flags: u8,
    pub port: u16,
    pub node_id: u64,
    /// The sender's CURVE public key (version 2 and later).
    pub public_key: Option<[u8; 32]>,
    /// The sender's cluster name (version 3 and later; empty before).
    pub cluster: String,
    /// The sender's overlay anchor (version 4 and later).
    pub anchor: Option<u64>,
    /// The endpoint the sender asks to be dialled at (version 5 and
    /// later): `tcp://HOST:PORT`, checked.
    pub advertised: Option<String>,
}

/// Why a datagram is not a beacon of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Shorter than version 1, or a version 1 beacon with trailing bytes.
    Short,
    Magic,
    Version,
    Port,
    NodeId,
    /// A version 2 beacon that is not 47 bytes, or a later one shorter.
    Length,
    /// A public key of zeros (version 2).
    Key,
    /// A cluster name that is empty, longer than the beacon, or not
    /// printable UTF-8.
    Cluster,
    /// A version 4 anchor missing or 0.
    Anchor,
    /// A version 5 advertised endpoint missing, cut short, empty, not
    /// UTF-8, not `tcp://HOST:PORT`, naming no dialable host, or with
    /// another port than the beacon's.
    Advertise,
}

/// Encodes a version 1 beacon (a node without a CURVE key pair).
pub fn encode(port: u16, node_id: u64) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..3].copy_from_slice(MAGIC);
    b[3] = VERSION;
    b[4] = 0;
    b[5..7].copy_from_slice(&port.to_be_bytes());
    b[7..15].copy_from_slice(&node_id.to_be_bytes());
    b
}

/// Encodes a version 2 beacon (a node with a CURVE key pair).
pub fn encode_curve(port: u16, node_id: u64, public_key: &[u8; 32]) -> [u8; LEN_CURVE] {
    let mut b = [0u8; LEN_CURVE];
    b[..LEN].copy_from_slice(&encode(port, node_id));
    b[3] = VERSION_CURVE;
    b[LEN..].copy_from_slice(public_key);
    b
}

/// Encodes a version 3 beacon (a node of a named cluster; `cluster` is 1
/// to 255 bytes, callers check).
pub fn encode_cluster(
    port: u16,
    node_id: u64,
    public_key: Option<&[u8; 32]>,
    cluster: &str,
) -> Vec<u8> {
    let name = &cluster.as_bytes()[..cluster.len().min(255)];
    let mut b = encode_curve(port, node_id, public_key.unwrap_or(&[0u8; 32])).to_vec();
    b[3] = VERSION_CLUSTER;
    b.push(name.len() as u8);
    b.extend_from_slice(name);
    b
}

/// Encodes a version 4 beacon (a node in the overlay, with its anchor; a
/// `cluster` of 0 to 255 bytes).
pub fn encode_anchor(
    port: u16,
    node_id: u64,
    public_key: Option<&[u8; 32]>,
    cluster: &str,
    anchor: u64,
) -> Vec<u8> {
    let mut b = encode_cluster(port, node_id, public_key, cluster);
    b[3] = VERSION_ANCHOR;
    b.extend_from_slice(&anchor.to_be_bytes());
    b
}

/// Encodes a version 5 beacon (a node with an advertised endpoint,
/// `tcp://HOST:PORT` of at most 255 bytes, callers check; `anchor` is
/// the node's own id while it looks for peers).
pub fn encode_advertised(
    port: u16,
    node_id: u64,
    public_key: Option<&[u8; 32]>,
    cluster: &str,
    anchor: u64,
    advertised: &str,
) -> Vec<u8> {
    let endpoint = &advertised.as_bytes()[..advertised.len().min(255)];
    let mut b = encode_anchor(port, node_id, public_key, cluster, anchor);
    b[3] = VERSION_ADVERTISE;
    b.push(endpoint.len() as u8);
    b.extend_from_slice(endpoint);
    b
}

/// Checks an advertised endpoint heard in a beacon of port `port`: the
/// very endpoint `overlay/advertise` accepts, with the beacon's port, and
/// a host that is not multicast either.
fn advertised_endpoint(bytes: &[u8], port: u16) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.chars().any(char::is_control) {
        return None;
    }
    let endpoint = crate::control::advertise::parse_advertise(text).ok()??;
    if endpoint != text || crate::control::advertise::endpoint_port(text) != Some(port) {
        return None;
    }
    match advertised_ip(text) {
        Some(ip) if ip.is_multicast() => None,
        _ => Some(endpoint),
    }
}

/// The address in an advertised `tcp://HOST:PORT` when HOST is one (not
/// a name).
pub fn advertised_ip(endpoint: &str) -> Option<std::net::IpAddr> {
    let rest = endpoint.strip_prefix("tcp://")?;
    let (host, _) = rest.rsplit_once(':')?;
    crate::endpoint::Endpoint::bare_host(host).parse().ok()
}

/// The beacon of a node: version 4 with an overlay anchor, else version 3
/// in a named cluster, else version 2 with a public key, else version 1.
pub fn encode_for(
    port: u16,
    node_id: u64,
    public_key: Option<&[u8; 32]>,
    cluster: &str,
    anchor: Option<u64>,
) -> Vec<u8> {
    match public_key {
        _ if anchor.is_some_and(|a| a != 0) => encode_anchor(
            port,
            node_id,
            public_key,
            cluster,
            anchor.unwrap_or_default(),
        ),
        _ if !cluster.is_empty() => encode_cluster(port, node_id, public_key, cluster),
        Some(k) => encode_curve(port, node_id, k).to_vec(),
        None => encode(port, node_id).to_vec(),
    }
}

/// Decodes and validates a datagram.
pub fn decode(data: &[u8]) -> Result<Announce, Rejected> {
    if data.len() >= MAGIC.len() && &data[..MAGIC.len()] != MAGIC {
        return Err(Rejected::Magic);
    }
    if data.len() > MAX_DATAGRAM {
        return Err(Rejected::Length);
    }
    if data.len() < LEN {
        return Err(Rejected::Short);
    }
    let version = data[3];
    match version {
        0 => return Err(Rejected::Version),
        // Version 1 has a fixed length: trailing bytes mean a broken sender.
        VERSION if data.len() != LEN => return Err(Rejected::Short),
        VERSION_CURVE if data.len() != LEN_CURVE => return Err(Rejected::Length),
        _ if data.len() <= LEN_CURVE && version > VERSION_CURVE => return Err(Rejected::Length),
        _ => {}
    }
    let port = u16::from_be_bytes([data[5], data[6]]);
    if port == 0 {
        return Err(Rejected::Port);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&data[7..15]);
    let node_id = u64::from_be_bytes(id);
    if node_id == 0 {
        return Err(Rejected::NodeId);
    }
    let public_key = if version >= VERSION_CURVE {
        let mut k = [0u8; 32];
        k.copy_from_slice(&data[LEN..LEN_CURVE]);
        match (k == [0u8; 32], version) {
            (false, _) => Some(k),
            // Version 3 on: zeros say the node has no key pair.
            (true, VERSION_CURVE) => return Err(Rejected::Key),
            (true, _) => None,
        }
    } else {
        None
    };
    let n = if version >= VERSION_CLUSTER {
        usize::from(data[LEN_CURVE])
    } else {
        0
    };
    let cluster = if version >= VERSION_CLUSTER {
        let name = data
            .get(LEN_CURVE + 1..LEN_CURVE + 1 + n)
            .filter(|_| n > 0 || version >= VERSION_ANCHOR)
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|s| !s.chars().any(char::is_control))
            .ok_or(Rejected::Cluster)?;
        name.to_string()
    } else {
        String::new()
    };
    let anchor_at = LEN_CURVE + 1 + n;
    let anchor = if version >= VERSION_ANCHOR {
        let at = anchor_at;
        let bytes = data.get(at..at + 8).ok_or(Rejected::Anchor)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        match u64::from_be_bytes(a) {
            0 => return Err(Rejected::Anchor),
            a => Some(a),
        }
    } else {
        None
    };
    let advertised = if version >= VERSION_ADVERTISE {
        let at = anchor_at + 8;
        let m = usize::from(*data.get(at).ok_or(Rejected::Advertise)?);
        let bytes = data
            .get(at + 1..at + 1 + m)
            .filter(|_| m > 0)
            .ok_or(Rejected::Advertise)?;
        Some(advertised_endpoint(bytes, port).ok_or(Rejected::Advertise)?)
    } else {
        None
    };
    Ok(Announce {
        version,
        flags: data[4],
        port,
        node_id,
        public_key,
        cluster,
        anchor,
        advertised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let b = encode(0x1234, 0x0102_0304_0506_0708);
        assert_eq!(
            b,
            [b'Z', b'G', b'D', 1, 0, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(
            decode(&b),
            Ok(Announce {
                version: 1,
                flags: 0,
                port: 0x1234,
                node_id: 0x0102_0304_0506_0708,
                public_key: None,
                cluster: String::new(),
                anchor: None,
                advertised: None,
            })
        );
    }

    #[test]
    fn rejects_what_is_not_ours() {
        let good = encode(5000, 42);
        assert_eq!(decode(b""), Err(Rejected::Short));
        assert_eq!(decode(b"ZG"), Err(Rejected::Short));
        assert_eq!(decode(b"ZRE\x01"), Err(Rejected::Magic));
        for n in 0..LEN {
            assert!(decode(&good[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut v0 = good;
        v0[3] = 0;
        assert_eq!(decode(&v0), Err(Rejected::Version));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(decode(&long), Err(Rejected::Short));
        assert_eq!(decode(&encode(0, 42)), Err(Rejected::Port));
        assert_eq!(decode(&encode(5000, 0)), Err(Rejected::NodeId));
    }

    #[test]
    fn version_2_carries_the_public_key() {
        let key = [7u8; 32];
        let b = encode_curve(0x1234, 42, &key);
        assert_eq!(b.len(), 47);
        assert_eq!(
            &b[..15],
            &[b'Z', b'G', b'D', 2, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 42]
        );
        assert_eq!(&b[15..], &key);
        assert_eq!(
            decode(&b),
            Ok(Announce {
                version: 2,
                flags: 0,
                port: 0x1234,
                node_id: 42,
                public_key: Some(key),
                cluster: String::new(),
                anchor: None,
                advertised: None,
            })
        );
        assert_eq!(encode_for(0x1234, 42, Some(&key), "", None), b.to_vec());
        assert_eq!(
            encode_for(0x1234, 42, None, "", None),
            encode(0x1234, 42).to_vec()
        );
    }

    #[test]
    fn version_2_of_the_wrong_length_or_a_zero_key_is_refused() {
        let good = encode_curve(5000, 42, &[9u8; 32]);
        // Truncated anywhere past version 1's length, or one byte over.
        for n in LEN..LEN_CURVE {
            assert_eq!(decode(&good[..n]), Err(Rejected::Length), "{n} bytes");
        }
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(decode(&long), Err(Rejected::Length));
        assert_eq!(
            decode(&encode_curve(5000, 42, &[0u8; 32])),
            Err(Rejected::Key)
        );
        assert_eq!(
            decode(&encode_curve(0, 42, &[9u8; 32])),
            Err(Rejected::Port)
        );
        assert_eq!(
            decode(&encode_curve(5000, 0, &[9u8; 32])),
            Err(Rejected::NodeId)
        );
    }

    #[test]
    fn version_3_carries_the_cluster_name_with_or_without_a_key() {
        let keyed = encode_for(5000, 42, Some(&[3u8; 32]), "prod", None);
        assert_eq!(keyed.len(), 47 + 1 + 4);
        assert_eq!(keyed[3], 3);
        assert_eq!(&keyed[47..], b"\x04prod");
        let a = decode(&keyed).unwrap();
        assert_eq!((a.version, a.port, a.node_id), (3, 5000, 42));
        assert_eq!(a.public_key, Some([3u8; 32]));
        assert_eq!(a.cluster, "prod");
        // No key pair: zeros, which only version 2 refuses.
        let plain = encode_for(5000, 42, None, "prod", None);
        assert_eq!(&plain[15..47], &[0u8; 32]);
        let a = decode(&plain).unwrap();
        assert_eq!((a.public_key, a.cluster.as_str()), (None, "prod"));
        let mut as_v2 = plain[..47].to_vec();
        as_v2[3] = 2;
        assert_eq!(
            decode(&as_v2),
            Err(Rejected::Key),
            "older readers refuse it"
        );
        // A name that does not fit, an empty one, a bad one.
        assert_eq!(decode(&plain[..50]), Err(Rejected::Cluster));
        assert_eq!(decode(&plain[..47]), Err(Rejected::Length));
        let mut empty = plain[..47].to_vec();
        empty.push(0);
        assert_eq!(decode(&empty), Err(Rejected::Cluster));
        let mut control = plain[..47].to_vec();
        control.extend_from_slice(&[2, b'a', 7]);
        assert_eq!(decode(&control), Err(Rejected::Cluster));
        let mut not_utf8 = plain[..47].to_vec();
        not_utf8.extend_from_slice(&[1, 0xFF]);
        assert_eq!(decode(&not_utf8), Err(Rejected::Cluster));
    }

    #[test]
    fn version_4_carries_the_anchor_after_the_name() {
        let plain = encode_for(5000, 42, None, "", Some(0x0102_0304_0506_0708));
        assert_eq!(plain.len(), 47 + 1 + 8);
        assert_eq!(plain[3], 4);
        assert_eq!(plain[47], 0, "no cluster name");
        assert_eq!(&plain[48..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let a = decode(&plain).unwrap();
        assert_eq!((a.version, a.public_key, a.cluster.as_str()), (4, None, ""));
        assert_eq!(a.anchor, Some(0x0102_0304_0506_0708));
        let named = encode_for(5000, 42, Some(&[3u8; 32]), "prod", Some(7));
        assert_eq!(&named[47..52], b"\x04prod");
        let a = decode(&named).unwrap();
        assert_eq!((a.cluster.as_str(), a.anchor), ("prod", Some(7)));
        assert_eq!(a.public_key, Some([3u8; 32]));
        // Earlier versions carry none; an anchor of 0 is never sent.
        assert_eq!(decode(&encode(5000, 42)).unwrap().anchor, None);
        assert_eq!(encode_for(5000, 42, None, "", Some(0)), encode(5000, 42));
        // Missing, cut short or 0: refused.
        for n in 48..plain.len() {
            assert_eq!(decode(&plain[..n]), Err(Rejected::Anchor), "{n} bytes");
        }
        let mut zero = plain.clone();
        zero[48..].fill(0);
        assert_eq!(decode(&zero), Err(Rejected::Anchor));
        // Releases that know version 2 only read the first 47 bytes: the
        // keyed beacon is heard there, the keyless one (zeros) is not.
        let mut as_v2 = named[..47].to_vec();
        as_v2[3] = 2;
        assert_eq!(decode(&as_v2).unwrap().public_key, Some([3u8; 32]));
    }

    #[test]
    fn version_5_carries_the_advertised_endpoint_after_the_anchor() {
        let ep = "tcp://203.0.113.7:5000";
        let b = encode_advertised(5000, 42, None, "", 42, ep);
        assert_eq!(b.len(), 47 + 1 + 8 + 1 + ep.len());
        assert_eq!(b[3], 5);
        assert_eq!(usize::from(b[56]), ep.len());
        assert_eq!(&b[57..], ep.as_bytes());
        let a = decode(&b).unwrap();
        assert_eq!(
            (a.version, a.port, a.node_id, a.anchor),
            (5, 5000, 42, Some(42))
        );
        assert_eq!(a.advertised.as_deref(), Some(ep));
        // With a key, a cluster, a host name, an IPv6 address.
        for ep in [
            "tcp://node-3.zgossip.default.svc:5000",
            "tcp://[2001:db8::7]:5000",
        ] {
            let b = encode_advertised(5000, 42, Some(&[3u8; 32]), "prod", 7, ep);
            let a = decode(&b).unwrap();
            assert_eq!((a.cluster.as_str(), a.anchor), ("prod", Some(7)));
            assert_eq!(a.public_key, Some([3u8; 32]));
            assert_eq!(a.advertised.as_deref(), Some(ep));
        }
        // A receiver that knows version 4 reads it as a later version: the
        // same fields, the endpoint ignored (it dials the source address).
        let mut as_v4 = b.clone();
        as_v4[3] = 4;
        let old = decode(&as_v4).unwrap();
        assert_eq!((old.port, old.node_id, old.advertised), (5000, 42, None));
        // Earlier versions never carry one.
        assert_eq!(decode(&encode(5000, 42)).unwrap().advertised, None);
        // The byte example of docs/protocol.md, section 11.
        let id = 0x0102_0304_0506_0708;
        let mut doc = encode_advertised(4660, id, None, "", id, "tcp://h:4660");
        set_flag(&mut doc, FLAG_LOOKING, true);
        let mut want = vec![0x5A, 0x47, 0x44, 5, 1, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8];
        want.extend_from_slice(&[0u8; 32]);
        want.push(0);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0x0C]);
        want.extend_from_slice(b"tcp://h:4660");
        assert_eq!(doc, want);
    }

    #[test]
    fn version_5_with_a_bad_endpoint_is_refused() {
        let good = encode_advertised(5000, 42, None, "", 42, "tcp://10.0.0.1:5000");
        // Cut anywhere in the endpoint or its length.
        for n in 56..good.len() {
            assert_eq!(decode(&good[..n]), Err(Rejected::Advertise), "{n} bytes");
        }
        let with = |ep: &[u8]| {
            let mut b = good[..56].to_vec();
            b.push(ep.len() as u8);
            b.extend_from_slice(ep);
            decode(&b)
        };
        for bad in [
            &b""[..],
            b"tcp://10.0.0.1:5001",
            b"tcp://10.0.0.1:*",
            b"tcp://10.0.0.1",
            b"tcp://*:5000",
            b"tcp://0.0.0.0:5000",
            b"tcp://[::]:5000",
            b"tcp://255.255.255.255:5000",
            b"tcp://224.0.0.1:5000",
            b"tcp://[ff02::1]:5000",
            b"ipc:///tmp/x",
            b"inproc://x",
            b"tcp://a\x07b:5000",
            b"tcp://\xff:5000",
            b"tcp://10.0.0.1:5000 ",
            b"tcp://10.0.0.1:05000",
            b"garbage",
        ] {
            assert_eq!(
                with(bad),
                Err(Rejected::Advertise),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // The length says more than there is.
        let mut short = good.clone();
        short[56] = 200;
        assert_eq!(decode(&short), Err(Rejected::Advertise));
        // Oversize datagrams, whatever they hold.
        let mut huge = good.clone();
        huge.resize(MAX_DATAGRAM + 1, b'x');
        assert_eq!(decode(&huge), Err(Rejected::Length));
        // A 255-byte endpoint fits.
        let host = "h".repeat(255 - "tcp://:5000".len());
        let long = format!("tcp://{host}:5000");
        assert_eq!(long.len(), 255);
        let b = encode_advertised(5000, 42, None, "", 42, &long);
        assert!(b.len() <= MAX_LEN);
        assert_eq!(decode(&b).unwrap().advertised, Some(long));
    }

    #[test]
    fn later_versions_may_append() {
        let mut v6 = encode_advertised(5000, 42, Some(&[3u8; 32]), "c", 9, "tcp://h:5000");
        v6[3] = 6;
        v6[4] = 0x80;
        v6.extend_from_slice(b"more");
        let a = decode(&v6).unwrap();
        assert_eq!((a.version, a.flags, a.port, a.node_id), (6, 0x80, 5000, 42));
        assert_eq!(a.public_key, Some([3u8; 32]));
        assert_eq!((a.cluster.as_str(), a.anchor), ("c", Some(9)));
        assert_eq!(a.advertised.as_deref(), Some("tcp://h:5000"));
        // A later version still needs version 3's, 4's and 5's fields.
        assert_eq!(decode(&v6[..LEN_CURVE]), Err(Rejected::Length));
        assert_eq!(decode(&v6[..LEN_CURVE + 2]), Err(Rejected::Anchor));
        assert_eq!(decode(&v6[..LEN_CURVE + 2 + 8]), Err(Rejected::Advertise));
    }

    #[test]
    fn never_panics_on_any_short_input() {
        // Every 1- and 2-byte input, and every single-byte change of a
        // good beacon: decode returns, whatever it returns.
        for a in 0..=255u8 {
            let _ = decode(&[a]);
            for b in 0..=255u8 {
                let _ = decode(&[a, b]);
            }
        }
        let good = encode_curve(5000, 42, &[1u8; 32]);
        for i in 0..LEN_CURVE {
            for v in 0..=255u8 {
                let mut m = good;
                m[i] = v;
                let _ = decode(&m);
                let _ = decode(&m[..i]);
            }
        }
    }
}
