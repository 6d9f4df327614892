//! The engine's timers and limits, and the one size rule of tuples.

use super::*;

/// Timers and limits of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// An inbound session silent for longer than this is forgotten, as CZMQ's
    /// `server/timeout` (1000 ms by default).
    pub session_timeout_ms: u64,
    /// A remote connection that sent nothing for this long gets a PING,
    /// so the peer's session never expires while the connection lives.
    pub ping_interval_ms: u64,
    /// A remote connection that received nothing (not even a PONG) for this
    /// long is considered dead: it is closed and redialled.
    pub remote_timeout_ms: u64,
    /// A link between two of our nodes (ZGP/2: overlay links, and CONNECTs
    /// between our nodes) silent for this long is dead, at either end
    /// (`overlay/link-timeout`). The server announces it at the handshake
    /// and the client pings at a third of it, so an idle link costs one
    /// PING and one PONG a third of this; CZMQ peers keep
    /// `session_timeout_ms` and `ping_interval_ms`.
    pub link_timeout_ms: u64,
    /// First delay before redialling a remote; doubles up to the maximum.
    pub reconnect_ivl_ms: u64,
    pub reconnect_ivl_max_ms: u64,
    /// How often the server side of a ZGP/2 connection starts a
    /// set reconciliation (anti-entropy) with its client.
    pub sync_interval_ms: u64,
    /// How long a tombstone (a deleted key) is kept, from when this node
    /// stored it.
    pub tombstone_grace_ms: u64,
    /// How long the tombstone of a write whose time to live ran out is
    /// kept, from when this node stored it or from the expiry, whichever
    /// is later (at most `tombstone_grace_ms`). Short: every node expires
    /// the write at the same wall time, and a late copy of it arrives
    /// already expired and is dropped; the tombstone only has to beat
    /// older copies still in flight or coming back soon.
    pub expired_grace_ms: u64,
    /// Writes whose clock is further ahead of our wall clock than this are
    /// refused (neither stored nor forwarded), and such clocks are not
    /// followed: a peer with a wild clock must not lock a key for good.
    pub max_clock_ahead_ms: u64,
    /// Bytes that may wait for one connection (a peer that does not read
    /// is closed beyond this, instead of growing memory without bound; it
    /// catches up by reconciliation when it comes back).
    pub max_backlog_bytes: usize,
    /// Bytes that may wait for all connections together
    /// (`limits/max-backlog-total`, 0 = no limit): beyond it the
    /// connections with the largest backlogs are closed, so many peers
    /// that stop reading cannot take the node's memory between them.
    pub max_backlog_total: usize,
    /// An inbound plain (ZGP v1) connection that sent nothing for this long
    /// is closed (`limits/idle-timeout`). CZMQ clients never PING, so this
    /// is long; ZGP/2 clients PING and are closed after
    /// `link_timeout_ms` of silence.
    pub idle_timeout_ms: u64,
    /// The largest frame a peer accepts (`limits/max-frame`): a tuple is
    /// stored only if it fits in every encoding it may be forwarded in
    /// (see [`Settings::check_tuple_size`]).
    pub max_frame: usize,
    /// Who is in the network (`membership/*`).
    pub membership: super::membership::MembershipSettings,
    /// The overlay's views (`overlay/*`).
    pub views: super::views::ViewSettings,
    /// The broadcast tree (`overlay/*`).
    pub tree: super::tree::TreeSettings,
    /// `limits/handshake-timeout`: ms a connection has, from when the
    /// driver opened it ([`Engine::handle_opened`]), to end its handshake.
    pub handshake_timeout_ms: u64,
    /// `limits/frame-timeout`: ms a frame may take from its first byte to
    /// its last, with no frame completing meanwhile; a connection whose
    /// frame stalls longer is closed.
    pub frame_timeout_ms: u64,
    /// `limits/tuples-per-second`: tuples one connection may send in a
    /// second (0 = no limit).
    pub tuples_per_second: u64,
    /// `limits/bytes-per-second`: bytes one connection may send in a
    /// second (0 = no limit).
    pub bytes_per_second: u64,
}

/// The largest value a tuple may have, from the application or a peer.
pub const MAX_VALUE_LEN: usize = 1 << 20;

impl Settings {
    /// [`check_tuple_size`] with this node's `max_frame`.
    pub fn check_tuple_size(&self, key_len: usize, value_len: usize) -> Result<(), String> {
        check_tuple_size(key_len, value_len, self.max_frame)
    }
}

/// The one size rule of tuples, wherever they come from (the application,
/// a ZGP v1 peer, a ZGP/2 peer): the value is at most [`MAX_VALUE_LEN`]
/// bytes and the tuple's largest encoding (its ZGP/2 frame) fits
/// `max_frame`, so every peer with the same limit can receive it whichever
/// way it is forwarded. `Err` says why not.
pub fn check_tuple_size(key_len: usize, value_len: usize, max_frame: usize) -> Result<(), String> {
    if value_len > MAX_VALUE_LEN {
        return Err(format!(
            "value of {value_len} bytes exceeds the limit of {MAX_VALUE_LEN} bytes"
        ));
    }
    let frame = zgp2::tuple_frame_len(key_len, value_len);
    if frame > max_frame {
        return Err(format!(
            "a tuple of a {key_len}-byte key and a {value_len}-byte value takes \
                 {frame} bytes on the wire, over limits/max-frame ({max_frame})"
        ));
    }
    Ok(())
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            session_timeout_ms: 1000,
            ping_interval_ms: 250,
            remote_timeout_ms: 10_000,
            link_timeout_ms: 3_000,
            reconnect_ivl_ms: 100,
            reconnect_ivl_max_ms: 2_000,
            sync_interval_ms: 10_000,
            tombstone_grace_ms: 24 * 3600 * 1000,
            expired_grace_ms: 60_000,
            max_clock_ahead_ms: 60_000,
            max_backlog_bytes: 256 << 20,
            max_backlog_total: 512 << 20,
            max_frame: crate::security::Limits::default().max_frame,
            idle_timeout_ms: 300_000,
            views: super::views::ViewSettings::default(),
            membership: super::membership::MembershipSettings::default(),
            tree: super::tree::TreeSettings::default(),
            handshake_timeout_ms: 10_000,
            frame_timeout_ms: 30_000,
            // Above what one honest connection sends at full speed (a
            // node joining a store of millions of tuples), so that the
            // defaults never cut a legitimate sync; lower them to bound
            // what one peer may cost.
            tuples_per_second: 4_000_000,
            bytes_per_second: 512 << 20,
        }
    }
}
