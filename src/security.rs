//! Who may connect, and how much one connection may hold: a pure policy
//! object (zauth's rules) and the limits, consulted when a connection is
//! accepted (address, connection count; `control::access`), by the CURVE
//! server after INITIATE (client key) and by the reactor for the input it
//! buffers. No I/O here. The limits on what a connection does over time
//! (handshake and frame timeouts, tuples and bytes per second) are the
//! engine's (`engine::limits`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// zauth-style access rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// `ALLOW` addresses: when any, only these may connect.
    allow: HashSet<IpAddr>,
    /// `DENY` addresses (ignored while an ALLOW list exists, as zauth).
    deny: HashSet<IpAddr>,
    /// CURVE client keys allowed: `None` = any client that knows our
    /// public key (the default, and `CURVE *`).
    curve_keys: Option<CurveKeys>,
}

/// The CURVE client keys a node admits, by where they came from: listed
/// with `CURVE ALLOW`, or read from a directory of certificates (`CURVE
/// dir`, read again to take its changes, removals included).
#[derive(Debug, Clone, Default)]
struct CurveKeys {
    listed: HashSet<[u8; 32]>,
    dirs: BTreeMap<String, HashSet<[u8; 32]>>,
}

impl CurveKeys {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.listed.contains(key) || self.dirs.values().any(|d| d.contains(key))
    }
}

/// Normalizes an address: an IPv4-mapped IPv6 address is its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Parses an `ALLOW`/`DENY` argument: an IPv4 or IPv6 address.
pub(crate) fn parse_address(text: &str) -> Result<IpAddr, String> {
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(canonical)
        .map_err(|_| format!("'{text}' is not an IP address"))
}

impl Policy {
    pub(crate) fn allow(&mut self, ips: &[IpAddr]) {
        self.allow.extend(ips.iter().copied().map(canonical));
    }

    pub(crate) fn deny(&mut self, ips: &[IpAddr]) {
        self.deny.extend(ips.iter().copied().map(canonical));
    }

    /// `CURVE *`: any client that knows our key.
    pub(crate) fn curve_allow_any(&mut self) {
        self.curve_keys = None;
    }

    /// `CURVE ALLOW key...`: from now on only listed keys (added to those
    /// already listed).
    pub(crate) fn curve_allow(&mut self, keys: &[[u8; 32]]) {
        self.curve_keys
            .get_or_insert_with(CurveKeys::default)
            .listed
            .extend(keys.iter().copied());
    }

    /// `CURVE dir`: the keys of the certificates in `dir` replace those
    /// the directory gave before (a certificate deleted there is no
    /// longer admitted). Returns the keys no longer admitted at all.
    pub(crate) fn curve_allow_dir(&mut self, dir: &str, keys: &[[u8; 32]]) -> Vec<[u8; 32]> {
        let ck = self.curve_keys.get_or_insert_with(CurveKeys::default);
        let before = ck
            .dirs
            .insert(dir.to_string(), keys.iter().copied().collect())
            .unwrap_or_default();
        before.into_iter().filter(|k| !ck.contains(k)).collect()
    }

    /// `CURVE REMOVE key...`: these keys are no longer admitted, whether
    /// listed or read from a directory (until a directory is read again).
    /// Returns how many were admitted. Under `CURVE *` nothing changes: a
    /// list must be set first.
    pub(crate) fn curve_remove(&mut self, keys: &[[u8; 32]]) -> usize {
        let Some(ck) = self.curve_keys.as_mut() else {
            return 0;
        };
        let mut removed = 0;
        for key in keys {
            let was = ck.contains(key);
            ck.listed.remove(key);
            for d in ck.dirs.values_mut() {
                d.remove(key);
            }
            removed += usize::from(was);
        }
        removed
    }

    /// Whether only listed CURVE client keys are admitted (not `CURVE *`).
    pub(crate) fn curve_listed(&self) -> bool {
        self.curve_keys.is_some()
    }

    /// Whether a TCP peer at `ip` may connect (zauth: a whitelist wins over
    /// a blacklist).
    pub(crate) fn check_address(&self, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        if !self.allow.is_empty() {
            if self.allow.contains(&ip) {
                return Ok(());
            }
            return Err(format!("address {ip} is not in the ALLOW list"));
        }
        if self.deny.contains(&ip) {
            return Err(format!("address {ip} is denied"));
        }
        Ok(())
    }

    /// Whether a CURVE client with this long-term key may connect.
    pub(crate) fn check_curve_key(&self, key: &[u8; 32]) -> Result<(), String> {
        match &self.curve_keys {
            None => Ok(()),
            Some(keys) if keys.contains(key) => Ok(()),
            Some(_) => Err(CLIENT_NOT_ALLOWED.into()),
        }
    }
}

/// Why a CURVE client whose key is not admitted is refused.
pub(crate) const CLIENT_NOT_ALLOWED: &str = "client key is not allowed";

/// Limits that bound what one peer can cost the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// `limits/max-frame`: largest frame (bytes) accepted from a peer.
    pub max_frame: usize,
    /// `limits/connections-per-address`: inbound TCP connections open at
    /// once from one IP address (0 = no limit).
    pub connections_per_address: usize,
    /// `limits/connections`: inbound connections open at once (0 = no limit).
    pub connections: usize,
    /// `limits/input-buffers`: bytes of incomplete frames all connections
    /// of the node may hold at once; the connection that would pass it is
    /// closed.
    pub input_buffers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame: (1 << 20) + 512,
            connections_per_address: 64,
            connections: 1024,
            input_buffers: 64 << 20,
        }
    }
}

/// Smallest `limits/max-frame`: room for a CURVE INITIATE and a READY
/// with our metadata.
pub(crate) const MIN_MAX_FRAME: usize = 1024;

/// Counts open inbound connections per address.
#[derive(Debug, Default)]
pub(crate) struct AddressCounts(HashMap<IpAddr, usize>);

impl AddressCounts {
    pub(crate) fn count(&self, ip: IpAddr) -> usize {
        self.0.get(&canonical(ip)).copied().unwrap_or(0)
    }

    pub(crate) fn add(&mut self, ip: IpAddr) {
        *self.0.entry(canonical(ip)).or_default() += 1;
    }

    pub(crate) fn remove(&mut self, ip: IpAddr) {
        let ip = canonical(ip);
        if let Some(n) = self.0.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        parse_address(s).unwrap()
    }

    #[test]
    fn address_rules_as_zauth() {
        let mut p = Policy::default();
        assert!(p.check_address(ip("10.0.0.1")).is_ok());
        p.deny(&[ip("10.0.0.1")]);
        assert_eq!(
            p.check_address(ip("10.0.0.1")).unwrap_err(),
            "address 10.0.0.1 is denied"
        );
        assert!(p.check_address(ip("10.0.0.2")).is_ok());
        p.allow(&[ip("127.0.0.1")]);
        // A whitelist wins: only listed addresses.
        assert!(p.check_address(ip("127.0.0.1")).is_ok());
        assert!(p.check_address(ip("::ffff:127.0.0.1")).is_ok());
        assert!(p.check_address(ip("10.0.0.2")).is_err());
        assert!(parse_address("[::1]").is_ok());
        assert!(parse_address("localhost").is_err());
    }

    #[test]
    fn curve_keys() {
        let mut p = Policy::default();
        assert!(p.check_curve_key(&[1; 32]).is_ok());
        p.curve_allow(&[[2; 32]]);
        assert!(p.check_curve_key(&[1; 32]).is_err());
        assert!(p.check_curve_key(&[2; 32]).is_ok());
        p.curve_allow_any();
        assert!(p.check_curve_key(&[1; 32]).is_ok());
    }

    /// Keys leave the list at run time: `CURVE REMOVE`, or a directory
    /// read again without their certificates.
    #[test]
    fn curve_keys_removed_at_run_time() {
        let mut p = Policy::default();
        assert_eq!(p.curve_remove(&[[1; 32]]), 0, "CURVE * has no list");
        assert!(p.check_curve_key(&[1; 32]).is_ok());
        p.curve_allow(&[[1; 32], [2; 32]]);
        assert_eq!(p.curve_remove(&[[1; 32], [9; 32]]), 1);
        assert!(p.check_curve_key(&[1; 32]).is_err());
        assert!(p.check_curve_key(&[2; 32]).is_ok());
        assert!(p
            .curve_allow_dir("d", &[[3; 32], [4; 32], [2; 32]])
            .is_empty());
        assert!(p.check_curve_key(&[3; 32]).is_ok());
        // Read again without 3 and 2: 3 is gone, 2 stays (also listed).
        assert_eq!(p.curve_allow_dir("d", &[[4; 32]]), vec![[3; 32]]);
        assert!(p.check_curve_key(&[3; 32]).is_err());
        assert!(p.check_curve_key(&[2; 32]).is_ok());
        // Removing every key admits no one (not everyone).
        p.curve_remove(&[[2; 32], [4; 32]]);
        assert!(p.curve_listed());
        assert!(p.check_curve_key(&[4; 32]).is_err());
    }

    /// Open connections are counted per address, an IPv4-mapped address
    /// as its IPv4 address.
    #[test]
    fn address_counts() {
        let mut c = AddressCounts::default();
        c.add(ip("1.2.3.4"));
        c.add(ip("::ffff:1.2.3.4"));
        assert_eq!(c.count(ip("1.2.3.4")), 2);
        c.remove(ip("1.2.3.4"));
        c.remove(ip("1.2.3.4"));
        assert_eq!(c.count(ip("1.2.3.4")), 0);
    }
}
