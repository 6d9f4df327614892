//! What the engine measures for `METRICS` beyond its counters: each
//! connection's traffic, and the propagation delay of the writes that
//! arrive from the network. Counted where frames are handled; times come
//! in as [`Now`], as everywhere in the engine.

use super::*;

/// Upper bounds (ms) of the propagation delay histogram's buckets, from a
/// LAN hop to a slow WAN path; delays above the last fall in `+Inf`.
pub const DELAY_BUCKETS_MS: [u64; 16] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 60_000,
];

/// The propagation delay of the writes applied from the network: for each,
/// its arrival here (our wall clock) less its version's wall-clock stamp
/// (the physical part of the writer's hybrid logical clock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelayHistogram {
    /// Writes per bucket, not cumulative: `buckets[i]` counts delays in
    /// `(DELAY_BUCKETS_MS[i-1], DELAY_BUCKETS_MS[i]]`, the last one those
    /// above every bound.
    pub buckets: [u64; DELAY_BUCKETS_MS.len() + 1],
    /// Writes observed.
    pub count: u64,
    /// Their delays added up, in ms.
    pub sum_ms: u64,
    /// Writes stamped later than their arrival here (the writer's clock
    /// ahead of ours): counted as a delay of 0.
    pub clamped: u64,
}

impl DelayHistogram {
    /// Observes a write stamped at `stamp_ms` that arrived at `arrival_ms`
    /// (both wall-clock ms since the Unix epoch).
    pub fn record(&mut self, stamp_ms: u64, arrival_ms: u64) {
        let delay = match arrival_ms.checked_sub(stamp_ms) {
            Some(d) => d,
            None => {
                self.clamped += 1;
                0
            }
        };
        let i = DELAY_BUCKETS_MS.partition_point(|&b| b < delay);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(delay);
    }

    /// The buckets as Prometheus gives them: (upper bound in ms, `None`
    /// for `+Inf`; writes at or below it).
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let bounds = DELAY_BUCKETS_MS.iter().map(|&b| Some(b)).chain([None]);
        bounds.zip(self.buckets.iter().scan(0u64, |acc, &n| {
            *acc += n;
            Some(*acc)
        }))
    }
}

/// What went through one connection since its handshake ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// ZGP frames handed to the engine.
    pub frames_in: u64,
    /// ZGP frames queued for the peer.
    pub frames_out: u64,
    /// Bytes read from the connection (as the driver reported them with
    /// [`Engine::handle_read`]: the wire's bytes, ZMTP framing and CURVE
    /// boxes included).
    pub bytes_in: u64,
    /// Bytes handed to the driver for the connection (ZMTP frames as on a
    /// NULL connection, before any CURVE encryption).
    pub bytes_out: u64,
}

/// One connection, for the per-link metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub conn: ConnId,
    /// Accepted on a listener (we are the ZGP server) or dialled.
    pub inbound: bool,
    /// The peer's endpoint as this node knows it: the remote's endpoint
    /// when dialled, the one the peer announced in the overlay, else its
    /// address; empty when none is known. Peer-controlled text.
    pub endpoint: String,
    /// The peer's overlay node id, when it is an active overlay peer.
    pub peer_id: Option<u64>,
    pub traffic: Traffic,
    /// Bytes waiting to be sent to the peer.
    pub backlog_bytes: usize,
    /// The last round trip measured on the link (PING to PONG, on the
    /// connections we dialled), in ms.
    pub rtt_ms: Option<u64>,
    /// How the broadcast tree uses the link: `Some(true)` eager,
    /// `Some(false)` lazy, `None` not a tree link.
    pub eager: Option<bool>,
}

impl Engine {
    /// The propagation delay of the writes applied from ZGP/2 peers.
    pub fn delay_histogram(&self) -> &DelayHistogram {
        &self.delay
    }

    /// The connections whose handshake ended, in id order.
    pub fn links(&self) -> Vec<LinkInfo> {
        let active: Vec<(ConnId, u64, String)> = self.active_peers();
        self.conns
            .iter()
            .map(|(&conn, c)| {
                let overlay = active.iter().find(|(id, _, _)| *id == conn);
                let endpoint = match c.role {
                    Role::Outbound(r) => self.remote_endpoint(r).map(str::to_string),
                    Role::Inbound => None,
                }
                .or_else(|| overlay.map(|(_, _, ep)| ep.clone()))
                .filter(|ep| !ep.is_empty())
                .or_else(|| c.meter.addr().or(c.peer.addr).map(|ip| ip.to_string()))
                .unwrap_or_default();
                LinkInfo {
                    conn,
                    inbound: c.role == Role::Inbound,
                    endpoint,
                    peer_id: overlay.map(|(_, id, _)| *id),
                    traffic: c.traffic,
                    backlog_bytes: c.queued(),
                    rtt_ms: c.rtt_ms,
                    eager: self.link_is_eager(conn),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, drain, enc};
    use super::*;

    /// A dialled link counts its frames and bytes, learns its round trip
    /// from PONG, and shows the remote's endpoint.
    #[test]
    fn a_link_counts_its_traffic_and_round_trip() {
        let mut c = Engine::new("c", 2, Settings::default());
        let r = c.add_remote("tcp://x:1", at(0));
        let _ = c.poll_action();
        c.handle_opened(5, Role::Outbound(r), None, at(0));
        assert!(c.handle_read(5, 64, at(0))); // the handshake
        c.handle_connected(5, Role::Outbound(r), Peer::default(), at(10));
        let hello = drain(&mut c, 5);
        let mut now = 10;
        let mut pinged = false;
        for _ in 0..20 {
            now = c.poll_timeout().unwrap();
            c.handle_timeout(at(now));
            if !drain(&mut c, 5).is_empty() {
                pinged = true;
                break;
            }
        }
        assert!(pinged);
        let pong = enc(Message::Pong);
        assert!(c.handle_read(5, pong.len() + 2, at(now + 7)));
        assert!(c.handle_frame(5, &pong, false, at(now + 7)));
        let links = c.links();
        assert_eq!(links.len(), 1);
        let l = &links[0];
        assert_eq!((l.conn, l.inbound), (5, false));
        assert_eq!(l.endpoint, "tcp://x:1");
        assert_eq!(l.peer_id, None);
        assert_eq!(l.rtt_ms, Some(7));
        assert_eq!(l.traffic.frames_in, 1);
        assert_eq!(l.traffic.frames_out, 2); // HELLO, PING
        assert_eq!(l.traffic.frames_out, c.stats().frames_out);
        assert_eq!(l.traffic.bytes_in, 64 + pong.len() as u64 + 2);
        // Each frame drained with its ZMTP header (2 bytes when short).
        let hello_len: usize = hello.iter().map(|f| f.len() + 2).sum();
        let ping_len = enc(Message::Ping).len() + 2;
        assert_eq!(l.traffic.bytes_out, (hello_len + ping_len) as u64);
        assert_eq!(l.backlog_bytes, 0);
    }

    /// Every write applied from a ZGP/2 peer is observed once; a duplicate
    /// is not.
    #[test]
    fn applied_writes_are_observed_once() {
        let mut e = Engine::new("e", 1, Settings::default());
        let peer = Peer {
            zgp2: true,
            ..Peer::default()
        };
        e.handle_connected(3, Role::Inbound, peer, at(0));
        let write = |clock_ms: u64| {
            let t = zgp2::Tuple {
                key: "k",
                value: "v",
                clock: clock_ms << 16,
                origin: 9,
                expires: 0,
                deleted: false,
                ephemeral: false,
            };
            let mut f = Vec::new();
            zgp2::encode_tuple(&t, &mut f);
            f
        };
        let w = write(test_support::WALL + 100);
        e.handle_frame(3, &enc(Message::Hello), false, at(0));
        e.handle_frame(3, &w, false, at(130)); // 30 ms on the way
        e.handle_frame(3, &w, false, at(140)); // a duplicate
        assert_eq!(e.stats().tuples_applied, 1);
        let h = e.delay_histogram();
        assert_eq!((h.count, h.sum_ms, h.clamped), (1, 30, 0));
        assert_eq!(e.links()[0].traffic.frames_in, 3);
    }

    #[test]
    fn delays_fall_in_their_buckets_and_skew_is_clamped() {
        let mut h = DelayHistogram::default();
        h.record(1_000, 1_000); // 0 ms: first bucket
        h.record(1_000, 1_001); // 1 ms: first bucket (le is inclusive)
        h.record(1_000, 1_003); // 3 ms: le 5
        h.record(1_000, 100_000); // 99 s: +Inf
        h.record(2_000, 1_000); // from the future: 0, clamped
        assert_eq!(h.count, 5);
        assert_eq!(h.clamped, 1);
        assert_eq!(h.sum_ms, 1 + 3 + 99_000);
        let c: Vec<_> = h.cumulative().collect();
        assert_eq!(c[0], (Some(1), 3));
        assert_eq!(c[1], (Some(2), 3));
        assert_eq!(c[2], (Some(5), 4));
        assert_eq!(c[DELAY_BUCKETS_MS.len() - 1], (Some(60_000), 4));
        assert_eq!(c[DELAY_BUCKETS_MS.len()], (None, 5));
    }
}
