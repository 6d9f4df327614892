//! The discovery beacon: a small, versioned datagram a gossip node sends
//! to say "node `id` listens for gossip on TCP port `port` at the address
//! this datagram came from" and, from version 2 on, "and speaks only CURVE,
//! as the server of this public key". Sans-IO: bytes in, bytes out.
//!
//! ```text
//! offset  size  field
//!      0     3  magic "ZGD"
//!      3     1  version: 1 (plain), 2 (CURVE)
//!      4     1  flags, 0 (receivers ignore bits they do not know)
//!      5     2  TCP port, big-endian, not 0
//!      7     8  node id, big-endian, not 0
//!     15    32  version 2 and later: the node's CURVE public key, not all 0
//! ```
//!
//! A version 1 beacon is exactly 15 bytes and comes from a node without a
//! CURVE key pair; a version 2 beacon is exactly 47 bytes and comes from a
//! node that has one (after ZRE's version 3, which grew the same way). A
//! later version keeps these fields where they are and may append more: a
//! receiver reads the first 47 bytes of a beacon of version 3 or later.
//! Anything else (other magic, version 0, a wrong length, port 0, id 0, a
//! key of zeros) is not a beacon of ours.

/// The first bytes of every discovery beacon (and the subscription filter).
pub const MAGIC: &[u8; 3] = b"ZGD";
/// The version of a node without a CURVE key pair.
pub const VERSION: u8 = 1;
/// The version of a node with a CURVE key pair: version 1 plus its key.
pub const VERSION_CURVE: u8 = 2;
/// Length of a version 1 beacon.
pub const LEN: usize = 15;
/// Length of a version 2 beacon.
pub const LEN_CURVE: usize = LEN + 32;
/// The longest beacon this code writes.
pub const MAX_LEN: usize = LEN_CURVE;

/// A decoded discovery beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    pub version: u8,
    pub flags: u8,
    pub port: u16,
    pub node_id: u64,
    /// The sender's CURVE public key (version 2 and later).
    pub public_key: Option<[u8; 32]>,
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
    /// A public key of zeros.
    Key,
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

/// The beacon of a node: version 2 with a public key, else version 1.
pub fn encode_for(port: u16, node_id: u64, public_key: Option<&[u8; 32]>) -> Vec<u8> {
    match public_key {
        Some(k) => encode_curve(port, node_id, k).to_vec(),
        None => encode(port, node_id).to_vec(),
    }
}

/// Decodes and validates a datagram.
pub fn decode(data: &[u8]) -> Result<Announce, Rejected> {
    if data.len() >= MAGIC.len() && &data[..MAGIC.len()] != MAGIC {
        return Err(Rejected::Magic);
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
        _ if data.len() < LEN_CURVE && version > VERSION_CURVE => return Err(Rejected::Length),
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
        if k == [0u8; 32] {
            return Err(Rejected::Key);
        }
        Some(k)
    } else {
        None
    };
    Ok(Announce {
        version,
        flags: data[4],
        port,
        node_id,
        public_key,
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
                public_key: None
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
                public_key: Some(key)
            })
        );
        assert_eq!(encode_for(0x1234, 42, Some(&key)), b.to_vec());
        assert_eq!(encode_for(0x1234, 42, None), encode(0x1234, 42).to_vec());
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
    fn later_versions_may_append() {
        let mut v3 = encode_curve(5000, 42, &[3u8; 32]).to_vec();
        v3[3] = 3;
        v3[4] = 0x80;
        v3.extend_from_slice(b"more");
        let a = decode(&v3).unwrap();
        assert_eq!((a.version, a.flags, a.port, a.node_id), (3, 0x80, 5000, 42));
        assert_eq!(a.public_key, Some([3u8; 32]));
        // A later version still needs version 2's fields.
        assert_eq!(decode(&v3[..LEN_CURVE - 1]), Err(Rejected::Length));
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
