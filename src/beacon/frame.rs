//! The discovery beacon: a small, versioned datagram a gossip node sends
//! to say "node `id` listens for gossip on TCP port `port` at the address
//! this datagram came from". Sans-IO: bytes in, bytes out.
//!
//! ```text
//! offset  size  field
//!      0     3  magic "ZGD"
//!      3     1  version, 1
//!      4     1  flags, 0 (receivers ignore bits they do not know)
//!      5     2  TCP port, big-endian, not 0
//!      7     8  node id, big-endian, not 0
//! ```
//!
//! A version 1 beacon is exactly 15 bytes. A later version keeps these
//! fields where they are and may append more; a receiver accepts any
//! version >= 1 of at least 15 bytes and reads the first 15. Anything else
//! (other magic, version 0, short, port 0, id 0) is not a beacon of ours.

/// The first bytes of every discovery beacon (and the subscription filter).
pub const MAGIC: &[u8; 3] = b"ZGD";
/// The version this code writes.
pub const VERSION: u8 = 1;
/// Length of a version 1 beacon.
pub const LEN: usize = 15;

/// A decoded discovery beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    pub version: u8,
    pub flags: u8,
    pub port: u16,
    pub node_id: u64,
}

/// Why a datagram is not a beacon of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Short,
    Magic,
    Version,
    Port,
    NodeId,
}

/// Encodes a version 1 beacon.
pub fn encode(port: u16, node_id: u64) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..3].copy_from_slice(MAGIC);
    b[3] = VERSION;
    b[4] = 0;
    b[5..7].copy_from_slice(&port.to_be_bytes());
    b[7..15].copy_from_slice(&node_id.to_be_bytes());
    b
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
    if version == 0 {
        return Err(Rejected::Version);
    }
    if version == VERSION && data.len() != LEN {
        // Version 1 has a fixed length: trailing bytes mean a broken sender.
        return Err(Rejected::Short);
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
    Ok(Announce {
        version,
        flags: data[4],
        port,
        node_id,
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
                node_id: 0x0102_0304_0506_0708
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
    fn later_versions_may_append() {
        let mut v2 = encode(5000, 42).to_vec();
        v2[3] = 2;
        v2[4] = 0x80;
        v2.extend_from_slice(b"more");
        let a = decode(&v2).unwrap();
        assert_eq!((a.version, a.flags, a.port, a.node_id), (2, 0x80, 5000, 42));
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
        let good = encode(5000, 42);
        for i in 0..LEN {
            for v in 0..=255u8 {
                let mut m = good;
                m[i] = v;
                let _ = decode(&m);
            }
        }
    }
}
