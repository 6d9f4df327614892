//! Who may connect, and how much one connection may do: a pure policy
//! object (zauth's rules) and the limits, consulted by the reactor when it
//! accepts a connection (address, connection count) and by the CURVE
//! server after INITIATE (client key). No I/O here.

use std::collections::{HashMap, HashSet};
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
    curve_keys: Option<HashSet<[u8; 32]>>,
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

    /// `CURVE ALLOW key...` / `CURVE dir`: from now on only listed keys
    /// (added to those already listed).
    pub(crate) fn curve_allow(&mut self, keys: &[[u8; 32]]) {
        self.curve_keys
            .get_or_insert_with(HashSet::new)
            .extend(keys.iter().copied());
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
            Some(_) => Err("client key is not allowed".into()),
        }
    }
}

/// Limits that bound what one peer can cost the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// `limits/max-frame`: largest frame (bytes) accepted from a peer.
    pub max_frame: usize,
    /// `limits/handshake-timeout`: ms a connection has to finish its ZMTP
    /// handshake.
    pub handshake_timeout_ms: u64,
    /// `limits/connections-per-address`: inbound TCP connections open at
    /// once from one IP address (0 = no limit).
    pub connections_per_address: usize,
    /// `limits/connections`: inbound connections open at once (0 = no limit).
    pub connections: usize,
    /// `limits/tuples-per-second`: tuples one connection may send per
    /// second (0 = no limit).
    pub tuples_per_second: u64,
    /// `limits/bytes-per-second`: bytes one connection may send per second
    /// (0 = no limit).
    pub bytes_per_second: u64,
    /// `limits/frame-timeout`: ms a frame may take from its first byte to
    /// its last; a connection whose frame stalls longer is closed.
    pub frame_timeout_ms: u64,
    /// `limits/input-buffers`: bytes of incomplete frames all connections
    /// of the node may hold at once; the connection that would pass it is
    /// closed.
    pub input_buffers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame: (1 << 20) + 512,
            handshake_timeout_ms: 10_000,
            connections_per_address: 64,
            connections: 1024,
            // Above what one honest connection sends at full speed (a
            // node joining a store of millions of tuples), so that the
            // defaults never cut a legitimate sync; lower them to bound
            // what one peer may cost.
            tuples_per_second: 4_000_000,
            bytes_per_second: 512 << 20,
            frame_timeout_ms: 30_000,
            input_buffers: 64 << 20,
        }
    }
}

/// Smallest `limits/max-frame`: room for a CURVE INITIATE and a READY
/// with our metadata.
pub(crate) const MIN_MAX_FRAME: usize = 1024;

/// Per-connection usage in the current one-second window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    window_start_ms: u64,
    bytes: u64,
    tuples_base: u64,
}

impl Usage {
    /// Whether this window is still the current one at `now_ms` (a window
    /// lasts one second).
    pub(crate) fn current(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.window_start_ms) < 1000
    }

    /// The usage a new connection from the same address starts with: this
    /// window's tuples, up to the limit, so that reconnecting does not
    /// reset `limits/tuples-per-second` (the new connection may talk, but
    /// not send another tuple this second). Bytes start afresh: a
    /// handshake must stay possible.
    pub(crate) fn carried_over(&self, tuples_spent: u64, limits: &Limits) -> Usage {
        let spent = match limits.tuples_per_second {
            0 => 0,
            limit => tuples_spent.min(limit),
        };
        Usage {
            window_start_ms: self.window_start_ms,
            bytes: 0,
            // The new connection counts from 0: start its base below 0's
            // by what was already spent (as a wrapping offset).
            tuples_base: 0u64.wrapping_sub(spent),
        }
    }

    /// Tuples counted in this window, given the connection's running count.
    pub(crate) fn tuples_in_window(&self, tuples_total: u64) -> u64 {
        tuples_total.wrapping_sub(self.tuples_base)
    }

    /// Accounts `bytes` read and the connection's running tuple count at
    /// `now_ms`; `Err` names the limit exceeded.
    pub(crate) fn account(
        &mut self,
        limits: &Limits,
        now_ms: u64,
        bytes: u64,
        tuples_total: u64,
    ) -> Result<(), String> {
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            self.window_start_ms = now_ms;
            self.bytes = 0;
            self.tuples_base = tuples_total;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        if limits.bytes_per_second > 0 && self.bytes > limits.bytes_per_second {
            return Err(format!(
                "limits/bytes-per-second exceeded ({} bytes in a second, limit {})",
                self.bytes, limits.bytes_per_second
            ));
        }
        let tuples = tuples_total.wrapping_sub(self.tuples_base);
        if limits.tuples_per_second > 0 && tuples > limits.tuples_per_second {
            return Err(format!(
                "limits/tuples-per-second exceeded ({tuples} tuples in a second, limit {})",
                limits.tuples_per_second
            ));
        }
        Ok(())
    }
}

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

    /// A reconnection within the same second carries on the tuple count of
    /// the connection it replaces: the per-second limit does not reset.
    #[test]
    fn a_per_second_limit_survives_a_reconnection() {
        let limits = Limits {
            tuples_per_second: 100,
            ..Limits::default()
        };
        let mut first = Usage::default();
        assert!(first.account(&limits, 5_000, 0, 0).is_ok());
        assert!(first.account(&limits, 5_005, 0, 100).is_ok());
        assert!(first.account(&limits, 5_010, 0, 101).is_err());
        let spent = first.tuples_in_window(101);
        assert_eq!(spent, 101);
        assert!(first.current(5_999) && !first.current(6_000));
        // The new connection counts its tuples from 0: it may talk, not
        // send another tuple this second.
        let mut second = first.carried_over(spent, &limits);
        assert!(second.account(&limits, 5_020, 64, 0).is_ok());
        assert!(second.account(&limits, 5_021, 0, 1).is_err());
        // The next second starts afresh.
        let mut third = first.carried_over(spent, &limits);
        assert!(third.account(&limits, 6_001, 0, 1).is_ok());
        assert!(third.account(&limits, 6_002, 0, 100).is_ok());
    }

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

    #[test]
    fn usage_windows() {
        let limits = Limits {
            bytes_per_second: 100,
            tuples_per_second: 3,
            ..Limits::default()
        };
        let mut u = Usage::default();
        assert!(u.account(&limits, 0, 60, 0).is_ok());
        assert!(u.account(&limits, 500, 60, 0).is_err());
        let mut u = Usage::default();
        assert!(u.account(&limits, 0, 1, 3).is_ok());
        assert!(u
            .account(&limits, 999, 1, 4)
            .unwrap_err()
            .contains("tuples"));
        assert!(u.account(&limits, 1000, 1, 7).is_ok(), "new window");
        let mut c = AddressCounts::default();
        c.add(ip("1.2.3.4"));
        c.add(ip("::ffff:1.2.3.4"));
        assert_eq!(c.count(ip("1.2.3.4")), 2);
        c.remove(ip("1.2.3.4"));
        c.remove(ip("1.2.3.4"));
        assert_eq!(c.count(ip("1.2.3.4")), 0);
    }
}
