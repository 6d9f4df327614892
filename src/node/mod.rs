//! The gossip engine: the protocol brain of a node, without any I/O.
//!
//! The engine is driven by calls that carry the current time ([`Now`]):
//! connections becoming ready, ZGP frames received, connections closed,
//! application publishes and timer ticks. It answers through queues that
//! the driver drains: bytes to send per connection ([`Engine::drain_outbox`]),
//! [`Action`]s (dial a remote, close a connection) and news for the
//! application (`DELIVER`, `EXPIRE`, `DELETE`; [`Engine::news`]). The reactor drives it over real sockets; tests and the
//! simulator drive it over virtual ones.
//!
//! Roles follow CZMQ's zgossip (the Harmony pattern): an *inbound*
//! connection was accepted on one of our listeners, and we play the ZGP
//! server (ROUTER) on it; an *outbound* connection is one we dialled to a
//! remote, where we play the ZGP client (DEALER).

mod sync;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::news::{Kind, NewsQueue};
use crate::store::{Hlc, Outcome, Store, Tuple, Version, Write};
use crate::wire::gossip::{self, Message};
use crate::wire::{ext, zmtp};

/// Identifies one connection; chosen by the driver, never reused.
pub type ConnId = u64;
/// Identifies one remote endpoint added with [`Engine::add_remote`].
pub type RemoteId = usize;

/// The current time as the driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic milliseconds from an arbitrary origin: all timers use this.
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch: only versions use this.
    pub wall_ms: u64,
}

/// Which side of the ZGP exchange we play on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted on a listener: we are the server.
    Inbound,
    /// Dialled to a remote: we are the client.
    Outbound(RemoteId),
}

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
    /// First delay before redialling a remote; doubles up to the maximum.
    pub reconnect_ivl_ms: u64,
    pub reconnect_ivl_max_ms: u64,
    /// How often the server side of an extended connection starts a
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
    /// `session_timeout_ms` of silence.
    pub idle_timeout_ms: u64,
    /// The largest frame a peer accepts (`limits/max-frame`): a tuple is
    /// stored only if it fits in every encoding it may be forwarded in
    /// (see [`Settings::check_tuple_size`]).
    pub max_frame: usize,
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
    let frame = ext::tuple_frame_len(key_len, value_len);
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
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to this remote's endpoint; report back with
    /// [`Engine::handle_connected`] or [`Engine::handle_dial_failed`].
    Dial { remote: RemoteId, endpoint: String },
    /// Send what is queued for this connection, then close it. The engine
    /// has already forgotten it.
    Close { conn: ConnId, reason: String },
}

/// News for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new tuple or a new value (`DELIVER key value`).
    Deliver { key: String, value: String },
    /// A tuple's time to live ran out (`EXPIRE key`).
    Expire { key: String },
    /// A tuple was deleted somewhere in the network (`DELETE key`).
    Delete { key: String },
}

impl Event {
    /// The key the news is about.
    pub fn key(&self) -> &str {
        match self {
            Event::Deliver { key, .. } | Event::Expire { key } | Event::Delete { key } => key,
        }
    }
}

/// What the driver learned about a peer in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer {
    /// The peer announced the ZGP/2 extension (and so did we).
    pub extended: bool,
    /// The session timeout the peer announced, in ms.
    pub timeout_ms: Option<u64>,
    /// The largest frame the peer announced it accepts: a tuple whose frame
    /// is longer is not offered to it (it would close the link, and meet
    /// the same tuple again when it comes back).
    pub max_frame: Option<usize>,
}

impl Peer {
    /// Whether the peer accepts a frame of `len` bytes.
    fn accepts(&self, len: usize) -> bool {
        self.max_frame.is_none_or(|max| len <= max)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    /// No HELLO seen (or the session was forgotten): only PING is valid.
    Start,
    /// HELLO seen: PUBLISH accepted, tuples forwarded.
    Connected,
    /// Silent for longer than the session timeout. On the wire this is
    /// CZMQ's forgotten session (the next message gets INVALID, so the
    /// client says HELLO again and is resynchronised), but since the
    /// connection itself is still open nothing is dropped: tuples are still
    /// forwarded to it and a PUBLISH that arrives is kept.
    Expired,
    /// An expired session that got its INVALID: the client's HELLO is on
    /// its way. Whatever it published meanwhile (it cannot know yet; CZMQ
    /// echoes our forwards too) is kept without another INVALID.
    Invalidated,
}

#[derive(Debug)]
struct Conn {
    role: Role,
    session: Session,
    peer: Peer,
    /// When the next anti-entropy round starts (server side, extended).
    next_sync: u64,
    /// When the server last started a round with us (client side,
    /// extended): if rounds stop coming, our HELLO was lost; say it again.
    last_sync_rx: u64,
    /// Outbound extended connection before the server's first RANGES:
    /// forwards wait here (until that RANGES is answered, or
    /// `hold_until`), so that tuples published while the connection came
    /// up do not overtake older ones that travel by the reconciliation.
    held: Option<Vec<u8>>,
    hold_until: u64,
    /// Frames waiting for the driver, each a ZGP message framed as a
    /// single ZMTP frame (see [`push_message`]).
    outbox: Vec<u8>,
    /// Read position in `outbox` (drained frames before it).
    outbox_pos: usize,
    last_rx: u64,
    last_tx: u64,
    /// Asked the driver to close it: no traffic in or out any more.
    closing: bool,
    /// Tuples received on this connection (for the driver's limits).
    tuples_in: u64,
    /// Sync sends not yet encoded, in order (see `sync::fill_sends`).
    sends: VecDeque<sync::SendJob>,
    /// Frames queued while sync sends are pending: they follow them, so
    /// nothing overtakes the tuples of a reconciliation.
    after_sends: Vec<u8>,
    /// The backlog passed `max_backlog_bytes` and the driver was told.
    over_limit: bool,
}

impl Conn {
    /// Where the next frame goes, and whether the driver must look at the
    /// connection: it had nothing queued, or its backlog has just passed
    /// `max` bytes (said once, so that [`Engine::take_dirty`] closes it
    /// even while the outbox never empties).
    fn queue(&mut self, max: usize) -> (&mut Vec<u8>, bool) {
        let over = !self.over_limit && self.queued() > max;
        self.over_limit |= over;
        if self.sends.is_empty() {
            let was_empty = self.outbox.len() == self.outbox_pos;
            (&mut self.outbox, was_empty || over)
        } else {
            (&mut self.after_sends, over)
        }
    }

    /// Forgets the sync sends still to encode and what waits behind them.
    fn discard_sends(&mut self) {
        self.sends.clear();
        self.after_sends = Vec::new();
    }

    /// Bytes waiting to be drained, encoded sync sends aside.
    fn queued(&self) -> usize {
        self.outbox.len() - self.outbox_pos + self.after_sends.len()
    }

    /// Marks the outbox drained up to `pos`; true if nothing is left.
    fn consume_outbox(&mut self, pos: usize) -> bool {
        if pos >= self.outbox.len() {
            self.outbox.clear();
            self.outbox_pos = 0;
            if self.outbox.capacity() > 1 << 20 {
                self.outbox.shrink_to(64 << 10);
            }
            true
        } else {
            self.outbox_pos = pos;
            if pos > self.outbox.len() / 2 {
                self.outbox.drain(..pos);
                self.outbox_pos = 0;
            }
            false
        }
    }
}

/// The connections by id, walked in id order (as a `BTreeMap` would be,
/// so that what a node does is deterministic), kept in a sorted vector: a
/// node has few connections, and every forward walks all of them.
#[derive(Debug, Default)]
struct ConnTable(Vec<(ConnId, Conn)>);

impl ConnTable {
    fn find(&self, id: ConnId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |&(k, _)| k)
    }

    fn get(&self, id: &ConnId) -> Option<&Conn> {
        self.find(*id).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, id: &ConnId) -> Option<&mut Conn> {
        self.find(*id).ok().map(|i| &mut self.0[i].1)
    }

    fn insert(&mut self, id: ConnId, conn: Conn) -> Option<Conn> {
        match self.find(id) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, conn)),
            Err(i) => {
                self.0.insert(i, (id, conn));
                None
            }
        }
    }

    fn remove(&mut self, id: &ConnId) -> Option<Conn> {
        self.find(*id).ok().map(|i| self.0.remove(i).1)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&ConnId, &Conn)> {
        self.0.iter().map(|(k, c)| (k, c))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&ConnId, &mut Conn)> {
        self.0.iter_mut().map(|(k, c)| (&*k, c))
    }
}

impl<'a> IntoIterator for &'a ConnTable {
    type Item = (&'a ConnId, &'a Conn);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (ConnId, Conn)>,
        fn(&'a (ConnId, Conn)) -> (&'a ConnId, &'a Conn),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, c)| (k, c))
    }
}

#[derive(Debug)]
struct Remote {
    endpoint: String,
    conn: Option<ConnId>,
    dialing: bool,
    backoff_ms: u64,
    redial_at: Option<u64>,
    /// Removed by [`Engine::remove_remote`]: never dialled again; the slot
    /// is reused once no dial is in flight.
    removed: bool,
}

/// Longest time forwards wait on a new outbound extended connection for
/// the server's first reconciliation message.
const HOLD_MS: u64 = 500;

/// Counters for STATUS-like introspection and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub invalid_sent: u64,
    pub malformed: u64,
    pub sessions_expired: u64,
    /// Tuples sent during set reconciliation (delta sync).
    pub sync_tuples_out: u64,
    /// Tuples received that changed the store.
    pub tuples_applied: u64,
    pub expired: u64,
    pub tombstones_collected: u64,
    /// Tuples refused by the size rule ([`Settings::check_tuple_size`]).
    pub oversize_tuples: u64,
    /// Inbound connections closed for silence.
    pub idle_closed: u64,
    /// Connections closed to keep all backlogs within
    /// `max_backlog_total`.
    pub backlog_closed: u64,
    /// Tuples not offered to a peer whose announced frame limit they
    /// exceed.
    pub oversize_skipped: u64,
    /// Remote writes refused because their clock was too far ahead of ours
    /// (see [`Settings::max_clock_ahead_ms`]).
    pub future_versions: u64,
    /// Remote writes dropped because their time to live had run out when
    /// they arrived and no older version of the key was held.
    pub expired_on_arrival: u64,
}

/// The gossip engine of one node.
pub struct Engine {
    name: String,
    id: u64,
    verbose: bool,
    settings: Settings,
    store: Store,
    hlc: Hlc,
    conns: ConnTable,
    remotes: Vec<Remote>,
    dirty: Vec<ConnId>,
    actions: VecDeque<Action>,
    news: NewsQueue,
    scratch: Vec<u8>,
    /// Keys with a time to live, by expiry (wall ms); stale entries are
    /// skipped when popped.
    expiries: BinaryHeap<Reverse<(u64, Box<str>)>>,
    next_tick: Option<u64>,
    next_gc: u64,
    last_now: Now,
    stats: Stats,
}

impl Engine {
    /// A new engine; `id` names this node in versions (any unique number).
    pub fn new(name: &str, id: u64, settings: Settings) -> Engine {
        Engine {
            name: name.to_string(),
            id,
            verbose: false,
            settings,
            store: Store::new(),
            hlc: Hlc::default(),
            conns: ConnTable::default(),
            remotes: Vec::new(),
            dirty: Vec::new(),
            actions: VecDeque::new(),
            news: NewsQueue::new(),
            scratch: Vec::with_capacity(256),
            expiries: BinaryHeap::new(),
            next_tick: None,
            next_gc: 0,
            last_now: Now::default(),
            stats: Stats::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Prints a trace of protocol events on stderr when on.
    pub fn set_verbose(&mut self, on: bool) {
        self.verbose = on;
    }

    pub fn verbose(&self) -> bool {
        self.verbose
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Changes timers; they apply from the next tick on.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
        self.next_tick = None;
        // The collection's cadence follows the graces: a shorter one set
        // now must not wait for a round planned with the old one.
        self.next_gc = 0;
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Number of connections that completed their handshake.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("zgossip {}: {}", self.name, what);
        }
    }

    /// Reads ahead, in the store's index, where the tuple `frame` carries
    /// (if it carries one) will be merged: called for a batch of frames
    /// before they are handled, it lets their cache misses overlap (see
    /// [`Store::prefetch`]; fold the results into one `black_box`).
    pub fn prefetch(&self, frame: &[u8]) -> u32 {
        crate::wire::tuple_key(frame).map_or(0, |key| self.store.prefetch(key))
    }

    // ------------------------------------------------------------------
    // Application side

    /// The application publishes a tuple, optionally with a time to live:
    /// stored if new, delivered back to the application (as CZMQ does) and
    /// forwarded to every peer. Publishing the same value again refreshes
    /// its version and its time to live.
    pub fn publish(&mut self, key: &str, value: &str, ttl_ms: Option<u64>, now: Now) {
        if let Err(why) = self.settings.check_tuple_size(key.len(), value.len()) {
            // The handle refuses these with an error; this is the net.
            self.stats.oversize_tuples += 1;
            self.trace(format_args!("PUBLISH {key} refused: {why}"));
            return;
        }
        let expires = ttl_ms.map_or(0, |t| now.wall_ms.saturating_add(t.max(1)));
        let Engine { store, hlc, id, .. } = self;
        // One look-up of the key serves the check and the merge.
        let merged = store.merge_entry_with(key, now.wall_ms, |old| {
            if ttl_ms.is_none() && old.is_some_and(|t| t.is_live() && t.value == value) {
                // CZMQ's rule for an unchanged value: nothing to do.
                return None;
            }
            Some(Write {
                value,
                version: Version {
                    clock: hlc.now(now.wall_ms),
                    origin: *id,
                },
                expires,
                deleted: false,
            })
        });
        if let Some((outcome, entry, w)) = merged {
            self.applied(key, w, outcome, entry, None, None, now);
        }
    }

    /// The application deletes a key network-wide: a tombstone spreads and
    /// every node removes the tuple and tells its application.
    pub fn unpublish(&mut self, key: &str, now: Now) {
        let version = self.stamp(now);
        let w = Write {
            value: "",
            version,
            expires: 0,
            deleted: true,
        };
        self.apply(key, w, None, None, now);
    }

    fn stamp(&mut self, now: Now) -> Version {
        Version {
            clock: self.hlc.now(now.wall_ms),
            origin: self.id,
        }
    }

    /// Adds a remote endpoint to keep connected. Adding an endpoint that is
    /// already known sends HELLO and every tuple again on its connection
    /// (CZMQ's behaviour) instead of opening a second connection.
    pub fn add_remote(&mut self, endpoint: &str, now: Now) -> RemoteId {
        if let Some(id) = self
            .remotes
            .iter()
            .position(|r| !r.removed && r.endpoint == endpoint)
        {
            if let Some(conn) = self.remotes[id].conn {
                self.send_hello_and_tuples(conn, now);
            }
            return id;
        }
        let remote = Remote {
            endpoint: endpoint.to_string(),
            conn: None,
            dialing: true,
            backoff_ms: self.settings.reconnect_ivl_ms,
            redial_at: None,
            removed: false,
        };
        let free = self
            .remotes
            .iter()
            .position(|r| r.removed && !r.dialing && r.conn.is_none());
        let id = match free {
            Some(id) => {
                self.remotes[id] = remote;
                id
            }
            None => {
                self.remotes.push(remote);
                self.remotes.len() - 1
            }
        };
        self.trace(format_args!("connecting to {endpoint}"));
        self.actions.push_back(Action::Dial {
            remote: id,
            endpoint: endpoint.to_string(),
        });
        id
    }

    /// Stops keeping a remote connected: its connection is closed and it
    /// is never redialled. A dial in flight is closed when it completes.
    /// Unknown or already removed ids are ignored.
    pub fn remove_remote(&mut self, remote: RemoteId, now: Now) {
        let Some(r) = self.remotes.get_mut(remote).filter(|r| !r.removed) else {
            return;
        };
        r.removed = true;
        r.redial_at = None;
        let conn = r.conn.take();
        let endpoint = std::mem::take(&mut r.endpoint);
        self.trace(format_args!("forgetting remote {endpoint}"));
        if let Some(conn) = conn {
            self.close(conn, "remote removed".to_string(), now);
        }
    }

    /// The endpoint a remote dials (`None`: unknown or removed).
    pub fn remote_endpoint(&self, remote: RemoteId) -> Option<&str> {
        self.remotes
            .get(remote)
            .filter(|r| !r.removed)
            .map(|r| r.endpoint.as_str())
    }

    /// Endpoints of every remote, in the order they were added.
    pub fn remote_endpoints(&self) -> impl Iterator<Item = &str> {
        self.remotes
            .iter()
            .filter(|r| !r.removed)
            .map(|r| r.endpoint.as_str())
    }

    // ------------------------------------------------------------------
    // Driver side: connection lifecycle

    /// A connection finished its handshake. For an outbound one we send
    /// HELLO, then every tuple we hold (plain ZGP) or nothing (extended: the
    /// server starts a set reconciliation).
    pub fn handle_connected(&mut self, conn: ConnId, role: Role, peer: Peer, now: Now) {
        self.last_now = now;
        self.conns.insert(
            conn,
            Conn {
                role,
                session: Session::Start,
                peer,
                next_sync: now.mono_ms + self.settings.sync_interval_ms,
                last_sync_rx: now.mono_ms,
                held: (peer.extended && matches!(role, Role::Outbound(_))).then(Vec::new),
                hold_until: now.mono_ms + HOLD_MS,
                outbox: Vec::new(),
                outbox_pos: 0,
                last_rx: now.mono_ms,
                last_tx: now.mono_ms,
                closing: false,
                tuples_in: 0,
                sends: VecDeque::new(),
                after_sends: Vec::new(),
                over_limit: false,
            },
        );
        if let Role::Outbound(remote) = role {
            if self.remotes.get(remote).is_some_and(|r| r.removed) {
                // Dialled before the remote was removed: not wanted now.
                if let Some(r) = self.remotes.get_mut(remote) {
                    r.dialing = false;
                }
                self.close(conn, "remote removed".to_string(), now);
                return;
            }
            if let Some(r) = self.remotes.get_mut(remote) {
                r.conn = Some(conn);
                r.dialing = false;
                r.redial_at = None;
                r.backoff_ms = self.settings.reconnect_ivl_ms;
            }
            self.trace(format_args!(
                "remote {conn} connected ({})",
                if peer.extended { "ZGP/2" } else { "ZGP v1" }
            ));
            self.send_hello_and_tuples(conn, now);
        } else {
            self.trace(format_args!("client {conn} connected"));
        }
        self.ensure_tick(now);
    }

    /// Dialling a remote failed before its handshake completed.
    pub fn handle_dial_failed(&mut self, remote: RemoteId, reason: &str, now: Now) {
        self.trace(format_args!("cannot reach remote {remote}: {reason}"));
        self.schedule_redial(remote, now);
    }

    /// A connection closed (by the peer or an error). Unknown ids are ignored.
    pub fn handle_closed(&mut self, conn: ConnId, now: Now) {
        if let Some(c) = self.conns.remove(&conn) {
            if c.closing {
                return;
            }
            self.trace(format_args!("connection {conn} closed"));
            if let Role::Outbound(remote) = c.role {
                self.schedule_redial(remote, now);
            }
        }
    }

    fn schedule_redial(&mut self, remote: RemoteId, now: Now) {
        let max = self.settings.reconnect_ivl_max_ms.max(1);
        if let Some(r) = self.remotes.get_mut(remote) {
            r.conn = None;
            r.dialing = false;
            if r.removed {
                r.redial_at = None;
                return;
            }
            let delay = r.backoff_ms.clamp(1, max);
            r.redial_at = Some(now.mono_ms + delay);
            r.backoff_ms = (delay * 2).min(max);
        }
        self.ensure_tick(now);
    }

    /// Asks the driver to flush and close a connection; from now on the
    /// engine sends nothing more on it and ignores what it receives.
    fn close(&mut self, conn: ConnId, reason: String, now: Now) {
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else {
            return;
        };
        c.closing = true;
        let role = c.role;
        self.trace(format_args!("closing connection {conn}: {reason}"));
        self.actions.push_back(Action::Close { conn, reason });
        if let Role::Outbound(remote) = role {
            self.schedule_redial(remote, now);
        }
    }

    // ------------------------------------------------------------------
    // Driver side: traffic

    /// One ZGP frame arrived on `conn`. `multipart` says the ZMTP message
    /// had more than one frame, which ZGP never sends.
    pub fn handle_frame(&mut self, conn: ConnId, frame: &[u8], multipart: bool, now: Now) {
        self.last_now = now;
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else {
            return;
        };
        c.last_rx = now.mono_ms;
        let role = c.role;
        let session = c.session;
        self.stats.frames_in += 1;
        let extended = c.peer.extended;
        if extended && !multipart && ext::is_extension(frame) {
            match ext::decode(frame) {
                Ok(m) => self.ext_message(conn, role, session, m, frame, now),
                Err(e) => {
                    self.stats.malformed += 1;
                    self.close(conn, format!("malformed ZGP/2 message: {e}"), now);
                }
            }
            return;
        }
        let msg = if multipart {
            Err("multipart message (ZGP messages are one frame)".to_string())
        } else {
            gossip::decode(frame).map_err(|e| e.to_string())
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                self.trace(format_args!("malformed message on {conn}: {e}"));
                if role == Role::Inbound {
                    self.send(conn, &Message::Invalid, now);
                    self.stats.invalid_sent += 1;
                }
                self.close(conn, format!("malformed message: {e}"), now);
                return;
            }
        };
        if self.verbose {
            self.trace(format_args!(
                "{} {conn}: recv {}",
                role_name(role),
                describe(&msg)
            ));
        }
        match role {
            Role::Inbound => self.server_message(conn, session, msg, now),
            Role::Outbound(_) => self.client_message(conn, msg, now),
        }
    }

    /// The ZGP server state machine (zgossip.xml).
    fn server_message(&mut self, conn: ConnId, session: Session, msg: Message<'_>, now: Now) {
        match (session, msg) {
            (_, Message::Ping) => {
                if session == Session::Expired {
                    // Alive after all: the session goes on.
                    self.set_session(conn, Session::Connected);
                }
                self.send(conn, &Message::Pong, now);
            }
            (Session::Start | Session::Expired | Session::Invalidated, Message::Hello) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = Session::Connected;
                    c.next_sync = now.mono_ms + self.settings.sync_interval_ms;
                }
                if self.is_extended(conn) {
                    self.start_sync(conn, now);
                } else {
                    self.send_all_tuples(conn, now);
                }
            }
            (Session::Connected, Message::Publish { key, value, ttl }) => {
                self.accept_v1(key, value, ttl, conn, now);
            }
            (Session::Expired, Message::Publish { key, value, ttl }) => {
                // CZMQ would drop this tuple for good. Keep it, and answer
                // INVALID as CZMQ does, so the client resends HELLO and
                // gets every tuple again.
                self.accept_v1(key, value, ttl, conn, now);
                self.send(conn, &Message::Invalid, now);
                self.stats.invalid_sent += 1;
                self.set_session(conn, Session::Invalidated);
            }
            (Session::Invalidated, Message::Publish { key, value, ttl }) => {
                self.accept_v1(key, value, ttl, conn, now);
            }
            (_, other) => {
                self.trace(format_args!(
                    "{} from client {conn} in state {:?}: INVALID, session forgotten",
                    other.name(),
                    session
                ));
                self.send(conn, &Message::Invalid, now);
                self.stats.invalid_sent += 1;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = Session::Start;
                }
            }
        }
    }

    /// Sends the forwards held on a new outbound connection.
    pub(super) fn release_held(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(held) = c.held.take() else {
            return;
        };
        if !held.is_empty() {
            let (out, dirty) = c.queue(self.settings.max_backlog_bytes);
            out.extend_from_slice(&held);
            if dirty {
                self.dirty.push(conn);
            }
        }
    }

    fn set_session(&mut self, conn: ConnId, session: Session) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = session;
        }
    }

    /// What a remote (the ZGP client side) does with server messages.
    fn client_message(&mut self, conn: ConnId, msg: Message<'_>, now: Now) {
        match msg {
            Message::Publish { key, value, ttl } => self.accept_v1(key, value, ttl, conn, now),
            // The server forgot our session: start over, resending every
            // tuple so that nothing sent into the forgotten session is lost.
            Message::Invalid => self.send_hello_and_tuples(conn, now),
            Message::Ping => self.send(conn, &Message::Pong, now),
            Message::Pong => {}
            Message::Hello => {
                self.trace(format_args!("unexpected HELLO from server {conn}, ignored"));
            }
        }
    }

    fn count_tuple_in(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.tuples_in += 1;
        }
    }

    /// Tuples received on `conn` so far (0 for an unknown connection), so
    /// the driver can enforce a per-connection limit.
    pub fn tuples_received(&self, conn: ConnId) -> u64 {
        self.conns.get(&conn).map_or(0, |c| c.tuples_in)
    }

    fn is_extended(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| c.peer.extended)
    }

    /// A plain ZGP PUBLISH (from CZMQ or any v1 peer): it carries no
    /// version, so it is taken as a new write made now, unless it is a
    /// stale copy of what we hold.
    fn accept_v1(&mut self, key: &str, value: &str, ttl: u32, from: ConnId, now: Now) {
        self.count_tuple_in(from);
        if !self.fits(key, value, from) {
            return;
        }
        if let Some(t) = self.store.get(key) {
            if t.is_live() && *t.value == *value {
                return; // duplicate, as CZMQ
            }
            // A copy of the value a recent write replaced (or of a deleted
            // or expired tuple within the grace period): a peer that cannot
            // know versions is echoing old state; ignore it rather than
            // flip the value back.
            let recent = now.wall_ms.saturating_sub(t.version.wall_ms()) < self.stale_window_ms(t);
            if t.prev_hash == crate::store::value_hash(value) && recent {
                self.trace(format_args!("stale copy of {key} from {from} ignored"));
                return;
            }
        }
        let version = self.stamp(now);
        let expires = if ttl == 0 {
            0
        } else {
            now.wall_ms.saturating_add(u64::from(ttl))
        };
        let w = Write {
            value,
            version,
            expires,
            deleted: false,
        };
        self.apply(key, w, Some(from), None, now);
    }

    /// Whether a tuple from a peer obeys the size rule
    /// ([`Settings::check_tuple_size`]); one that does not is ignored and
    /// counted, never stored nor forwarded.
    fn fits(&mut self, key: &str, value: &str, from: ConnId) -> bool {
        match self.settings.check_tuple_size(key.len(), value.len()) {
            Ok(()) => true,
            Err(why) => {
                self.stats.oversize_tuples += 1;
                self.trace(format_args!("tuple {key} from {from} ignored: {why}"));
                false
            }
        }
    }

    /// How long an echo of a replaced value counts as stale: for tombstones
    /// the whole grace period, for live values a few session timeouts.
    fn stale_window_ms(&self, t: Tuple<'_>) -> u64 {
        if t.deleted {
            self.settings.tombstone_grace_ms
        } else {
            self.settings
                .session_timeout_ms
                .saturating_mul(4)
                .max(4_000)
        }
    }

    /// A versioned write from an extended peer, which arrived as `frame`.
    fn accept_ext(&mut self, t: ext::Tuple<'_>, frame: &[u8], from: ConnId, now: Now) {
        self.count_tuple_in(from);
        if t.key.len() > gossip::MAX_KEY_LEN || !self.fits(t.key, t.value, from) {
            return;
        }
        let version = Version {
            clock: t.clock,
            origin: t.origin,
        };
        // From the future: refused, or one write with a wild clock would
        // win against every later one (see docs/protocol.md, section 4).
        if self.is_from_the_future(version, now) {
            self.stats.future_versions += 1;
            self.trace(format_args!(
                "{} from {from}: version {} ms ahead of our clock, refused",
                t.key,
                version.wall_ms().saturating_sub(now.wall_ms)
            ));
            return;
        }
        let s = &self.settings;
        self.hlc.observe(t.clock, now.wall_ms, s.max_clock_ahead_ms);
        // Too old to matter, when nothing of the key is held: a tombstone
        // past its grace period (tombstones are kept for their grace from
        // when a node stored them, so one whose version is older than the
        // grace may have been collected everywhere already; taking it
        // again would pass it around for ever), or a write whose time ran
        // out (every node expired it by now: nothing to remember it by).
        // The key is looked up only for these.
        let too_old =
            t.deleted && version.wall_ms().saturating_add(s.tombstone_grace_ms) < now.wall_ms;
        let expired = t.expires != 0 && t.expires <= now.wall_ms;
        if (too_old || expired) && self.store.get(t.key).is_none() {
            if expired {
                self.stats.expired_on_arrival += 1;
            }
            return;
        }
        let w = Write {
            value: t.value,
            version,
            expires: t.expires,
            // A write whose time ran out arrives as what it is everywhere
            // else by now: a tombstone with that version.
            deleted: t.deleted || expired,
        };
        // Stored as it arrived: the frame can be forwarded as it is.
        let raw = (!expired && ext::is_canonical_tuple(frame, &t)).then_some(frame);
        if self.apply(t.key, w, Some(from), raw, now) == Outcome::Stale {
            // The sender holds an older write: repair it with ours.
            self.send_tuple_to(from, t.key, now);
        }
    }

    /// True if `version` was made further ahead of our wall clock than
    /// `max_clock_ahead_ms`: such a remote write is refused.
    pub(super) fn is_from_the_future(&self, version: Version, now: Now) -> bool {
        version.wall_ms() > now.wall_ms.saturating_add(self.settings.max_clock_ahead_ms)
    }

    /// Merges a write into the store; on change tells the application and
    /// forwards it to every peer but `from` (as `raw` when given, the
    /// ZGP/2 frame of exactly this write).
    fn apply(
        &mut self,
        key: &str,
        w: Write<'_>,
        from: Option<ConnId>,
        raw: Option<&[u8]>,
        now: Now,
    ) -> Outcome {
        let (outcome, entry) = self.store.merge_entry(key, w, now.wall_ms);
        self.applied(key, w, outcome, entry, from, raw, now)
    }

    /// What follows the merge of `w`: news, expiry and forwarding (of
    /// `raw`, the ZGP/2 frame of exactly this write, when there is one).
    #[allow(clippy::too_many_arguments)]
    fn applied(
        &mut self,
        key: &str,
        w: Write<'_>,
        outcome: Outcome,
        entry: usize,
        from: Option<ConnId>,
        raw: Option<&[u8]>,
        now: Now,
    ) -> Outcome {
        match outcome {
            Outcome::Stored => self.news.push(Kind::Deliver, key, w.value),
            Outcome::Deleted => self.news.push(Kind::Delete, key, ""),
            Outcome::Refreshed | Outcome::TombstoneUpdated => {}
            Outcome::Duplicate | Outcome::Stale => return outcome,
        }
        if from.is_some() {
            self.stats.tuples_applied += 1;
        }
        if w.expires != 0 && !w.deleted {
            self.expiries.push(Reverse((w.expires, key.into())));
            self.prune_expiries();
            self.ensure_tick(now);
        }
        self.forward(entry, from, raw, now);
        outcome
    }

    /// Sends the current write of `key` to every peer except `from`: ZGP/2
    /// peers get the versioned tuple (`raw` as it is when given: the frame
    /// this very write arrived in), plain peers the live value only. The
    /// entry is read only once a peer needs it (a node whose only peer sent
    /// the write reads nothing; a relay between ZGP/2 peers neither reads
    /// nor encodes).
    fn forward(&mut self, entry: usize, from: Option<ConnId>, raw: Option<&[u8]>, now: Now) {
        let Engine {
            store,
            conns,
            scratch,
            dirty,
            settings,
            ..
        } = self;
        let max = settings.max_backlog_bytes;
        // The tuple, read at the first peer that needs it; the ZGP/2 frame,
        // encoded there once (unless given) and copied to the others.
        let mut current: Option<(&str, Tuple<'_>)> = None;
        let mut v2 = std::mem::take(scratch);
        v2.clear();
        let mut sent = 0;
        let mut skipped = 0;
        for (&id, c) in conns.iter_mut() {
            let eligible = Some(id) != from
                && !c.closing
                && (matches!(c.role, Role::Outbound(_)) || c.session != Session::Start);
            if !eligible {
                continue;
            }
            let extended = c.peer.extended;
            if !extended || (raw.is_none() && v2.is_empty()) {
                let (key, t) = match current {
                    Some(kt) => kt,
                    None => match store.entry(entry) {
                        Some(kt) => *current.insert(kt),
                        None => break,
                    },
                };
                if !extended && t.deleted {
                    continue;
                }
                if extended {
                    ext::encode_tuple(&ext_tuple(key, t), &mut v2);
                }
            }
            let frame = raw.unwrap_or(&v2);
            let len = match current {
                Some((key, t)) if !extended => plain_publish(key, t, now).encoded_len(),
                _ => frame.len(),
            };
            if !c.peer.accepts(len) {
                skipped += 1;
                continue;
            }
            if let Some(held) = c.held.as_mut() {
                push_raw(held, frame);
                sent += 1;
                continue;
            }
            let (out, notify) = c.queue(max);
            if extended {
                push_raw(out, frame);
            } else if let Some((key, t)) = current {
                push_frame(out, &plain_publish(key, t, now));
            }
            if notify {
                dirty.push(id);
            }
            c.last_tx = now.mono_ms;
            sent += 1;
        }
        *scratch = v2;
        self.stats.frames_out += sent;
        self.stats.oversize_skipped += skipped;
        if self.verbose {
            if let Some((key, t)) = self.store.entry(entry) {
                let what = describe(&plain_publish(key, t, now));
                self.trace(format_args!("forwarded {what} to {sent} peers"));
            }
        }
    }

    /// Sends our write of `key` to one extended connection.
    fn send_tuple_to(&mut self, conn: ConnId, key: &str, now: Now) {
        let Some(t) = self.store.get(key) else {
            return;
        };
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        ext::encode_tuple(&ext_tuple(key, t), &mut frame);
        self.queue_frame(conn, &frame, now);
        self.scratch = frame;
    }

    /// What a remote sends on connect and after INVALID: HELLO, then on a
    /// plain connection every tuple (CZMQ's way); on an extended one the
    /// server answers HELLO with a set reconciliation instead.
    fn send_hello_and_tuples(&mut self, conn: ConnId, now: Now) {
        self.send(conn, &Message::Hello, now);
        if !self.is_extended(conn) {
            self.send_all_tuples(conn, now);
        }
    }

    /// Every live tuple to a plain peer, as PUBLISH (CZMQ's way), encoded
    /// as the connection takes them: a CZMQ node joining a large store
    /// costs a few hundred KiB of output, not a second copy of the store.
    fn send_all_tuples(&mut self, conn: ConnId, now: Now) {
        if self.verbose {
            let role = self.conns.get(&conn).map_or("?", |c| role_name(c.role));
            self.trace(format_args!(
                "{role} {conn}: send every tuple ({} x PUBLISH)",
                self.store.len()
            ));
        }
        self.send_matching(conn, sync::Filter::All, now);
    }

    fn send(&mut self, conn: ConnId, msg: &Message<'_>, now: Now) {
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        msg.encode(&mut frame);
        self.queue_frame(conn, &frame, now);
        self.scratch = frame;
    }

    fn queue_frame(&mut self, conn: ConnId, frame: &[u8], now: Now) {
        if self.verbose {
            if let (Some(c), Ok(msg)) = (self.conns.get(&conn), gossip::decode(frame)) {
                self.trace(format_args!(
                    "{} {conn}: send {}",
                    role_name(c.role),
                    describe(&msg)
                ));
            }
        }
        let max = self.settings.max_backlog_bytes;
        if let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) {
            if !c.peer.accepts(frame.len()) {
                self.stats.oversize_skipped += 1;
                return;
            }
            let (out, dirty) = c.queue(max);
            push_raw(out, frame);
            c.last_tx = now.mono_ms;
            self.stats.frames_out += 1;
            if dirty {
                self.dirty.push(conn);
            }
        }
    }

    // ------------------------------------------------------------------
    // Driver side: output and timers

    /// Connections with frames waiting since the last call; the driver then
    /// calls [`Engine::drain_outbox`] for each. The vector is reused.
    /// A connection whose backlog passed `max_backlog_bytes` is closed
    /// here instead.
    pub fn take_dirty(&mut self, into: &mut Vec<ConnId>) {
        into.clear();
        std::mem::swap(into, &mut self.dirty);
        let max = self.settings.max_backlog_bytes;
        let mut k = 0;
        while let Some(&id) = into.get(k) {
            let over = self.conns.get_mut(&id).and_then(|c| {
                let queued = c.queued();
                // Under the limit again: the next time it passes counts.
                c.over_limit = queued > max;
                (queued > max && !c.closing).then_some(queued)
            });
            let Some(queued) = over else {
                k += 1;
                continue;
            };
            into.retain(|&c| c != id);
            // Nothing more of it is sent: the peer resynchronises later.
            if let Some(c) = self.conns.get_mut(&id) {
                c.outbox.clear();
                c.outbox_pos = 0;
                c.discard_sends();
            }
            self.close(
                id,
                format!("peer too slow: {queued} bytes waiting (limit {max})"),
                self.last_now,
            );
        }
    }

    /// Keeps the bytes waiting for all connections within
    /// `max_backlog_total`: the connections with the largest backlogs are
    /// closed (they resynchronise when they come back) until the rest fits.
    fn bound_backlogs(&mut self, now: Now) {
        let budget = self.settings.max_backlog_total;
        if budget == 0 {
            return;
        }
        let mut queued: Vec<(usize, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing)
            .map(|(&id, c)| (c.queued(), id))
            .filter(|&(q, _)| q > 0)
            .collect();
        let mut total: usize = queued.iter().map(|&(q, _)| q).sum();
        if total <= budget {
            return;
        }
        queued.sort_unstable_by(|a, b| b.cmp(a));
        for (q, id) in queued {
            if total <= budget {
                break;
            }
            total -= q;
            self.stats.backlog_closed += 1;
            if let Some(c) = self.conns.get_mut(&id) {
                c.outbox.clear();
                c.outbox_pos = 0;
                c.discard_sends();
            }
            self.close(
                id,
                format!("limits/max-backlog-total reached: {q} bytes waiting here, the most"),
                now,
            );
        }
    }

    /// Hands queued frames of `conn` to `sink`, oldest first, while it
    /// returns true; frames it refuses stay queued for a later call (the
    /// driver comes back when the connection can take more). Returns true
    /// when the outbox is now empty.
    pub fn drain_outbox(&mut self, conn: ConnId, mut sink: impl FnMut(&[u8]) -> bool) -> bool {
        // One message at a time through the framed path.
        loop {
            let mut refused = false;
            let empty = self.drain_outbox_framed(conn, 1, |run| {
                // A run of one message (the outbox holds whole ones).
                refused = !zmtp::split_single_frame(run).is_some_and(|(frame, _)| sink(frame));
                !refused
            });
            if empty || refused {
                return empty;
            }
        }
    }

    /// Like [`drain_outbox`](Self::drain_outbox), but hands the output as
    /// it is queued: runs of whole one-frame messages in ZMTP framing, for
    /// [`zmtp::Connection::queue_framed`]. Runs add up to at most `max`
    /// bytes (a single longer message goes alone, so that nothing stays
    /// stuck behind the bound). Returns true when the outbox is now empty.
    pub fn drain_outbox_framed(
        &mut self,
        conn: ConnId,
        max: usize,
        mut sink: impl FnMut(&[u8]) -> bool,
    ) -> bool {
        let mut room = max;
        loop {
            let drained = self.drain_queued_framed(conn, &mut room, &mut sink);
            let more = self.conns.get(&conn).is_some_and(|c| !c.sends.is_empty());
            if !drained || !more || room == 0 {
                return drained && !more;
            }
            self.fill_sends(conn, self.last_now);
        }
    }

    /// Hands one run of the messages already queued (at most `room` bytes,
    /// or one message) to `sink`; true if none is left.
    fn drain_queued_framed(
        &mut self,
        conn: ConnId,
        room: &mut usize,
        sink: &mut impl FnMut(&[u8]) -> bool,
    ) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return true;
        };
        let pos = c.outbox_pos;
        let queued = &c.outbox[pos..];
        if *room == 0 {
            return queued.is_empty();
        }
        let take = if queued.len() <= *room {
            queued.len()
        } else {
            // The longest run of whole messages that fits (at least one).
            let mut end = 0;
            while let Some((_, len)) = zmtp::split_single_frame(&queued[end..]) {
                if end > 0 && end + len > *room {
                    break;
                }
                end += len;
            }
            end
        };
        if take > 0 {
            if !sink(&queued[..take]) {
                return false;
            }
            *room = room.saturating_sub(take);
        }
        c.consume_outbox(pos + take)
    }

    /// Bytes of frames queued for `conn` and not yet drained (sync sends
    /// not encoded yet are not counted: see [`Engine::has_output`]).
    pub fn outbox_len(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, Conn::queued)
    }

    /// True while `conn` has frames queued or sync sends still to encode.
    pub fn has_output(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.queued() > 0 || !c.sends.is_empty())
    }

    /// The next thing the driver must do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next news for the application, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.news.pop_with(|n| match n.kind {
            Kind::Deliver => Event::Deliver {
                key: n.key.to_string(),
                value: n.value.to_string(),
            },
            Kind::Expire => Event::Expire {
                key: n.key.to_string(),
            },
            Kind::Delete => Event::Delete {
                key: n.key.to_string(),
            },
        })
    }

    /// The news not yet taken, for a driver that moves it in batches
    /// without allocating (see [`NewsQueue::drain`]).
    pub fn news(&mut self) -> &mut NewsQueue {
        &mut self.news
    }

    /// When [`Engine::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let expiry = self.expiries.peek().map(|Reverse((wall, _))| {
            let n = self.last_now;
            n.mono_ms + wall.saturating_sub(n.wall_ms)
        });
        match (self.next_tick, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tick_interval(&self) -> u64 {
        let s = &self.settings;
        (s.session_timeout_ms.min(s.ping_interval_ms) / 4).clamp(1, 250)
    }

    fn ensure_tick(&mut self, now: Now) {
        let at = now.mono_ms + self.tick_interval();
        if self.next_tick.is_none_or(|t| t > at) {
            self.next_tick = Some(at);
        }
    }

    /// Runs timers due at `now`: expires silent inbound sessions, pings idle
    /// remotes, closes dead ones and redials those whose backoff ran out.
    pub fn handle_timeout(&mut self, now: Now) {
        self.last_now = now;
        self.run_expiries(now);
        if self.next_tick.is_some_and(|t| t > now.mono_ms) {
            return;
        }
        self.next_tick = None;
        if now.mono_ms >= self.next_gc {
            let s = &self.settings;
            let shortest = s.tombstone_grace_ms.min(s.expired_grace_ms);
            self.next_gc = now.mono_ms + (shortest / 10).clamp(1_000, 60_000);
            let n = self.store.collect_tombstones(
                now.wall_ms,
                s.tombstone_grace_ms,
                s.expired_grace_ms,
            );
            self.stats.tombstones_collected += n as u64;
        }
        let t = now.mono_ms;
        let s = self.settings.clone();
        let mut expire = Vec::new();
        let mut ping = Vec::new();
        let mut dead = Vec::new();
        let mut sync = Vec::new();
        let mut rehello = Vec::new();
        let mut idle = Vec::new();
        for (&id, c) in &self.conns {
            if c.closing {
                continue;
            }
            match c.role {
                Role::Inbound => {
                    // A ZGP/2 client PINGs several times per session
                    // timeout: silence that long means it is gone. A plain
                    // client may be silent for long (CZMQ's never PING).
                    let limit = if c.peer.extended {
                        s.session_timeout_ms
                    } else {
                        s.idle_timeout_ms.max(s.session_timeout_ms)
                    };
                    if t.saturating_sub(c.last_rx) > limit {
                        idle.push((id, limit));
                    } else if c.session == Session::Connected
                        && t.saturating_sub(c.last_rx) > s.session_timeout_ms
                    {
                        expire.push(id);
                    } else if c.session == Session::Connected && c.peer.extended && t >= c.next_sync
                    {
                        sync.push(id);
                    }
                }
                Role::Outbound(_) => {
                    let interval = match c.peer.timeout_ms {
                        Some(peer) => (peer / 3).clamp(1, s.ping_interval_ms.max(1)),
                        None => s.ping_interval_ms,
                    };
                    if t.saturating_sub(c.last_rx) > s.remote_timeout_ms {
                        dead.push(id);
                    } else if c.peer.extended
                        && t.saturating_sub(c.last_sync_rx) > s.sync_interval_ms.saturating_mul(3)
                    {
                        rehello.push(id);
                    } else if t.saturating_sub(c.last_tx) >= interval {
                        ping.push(id);
                    }
                }
            }
        }
        for id in expire {
            self.trace(format_args!("client {id} silent too long: session expired"));
            self.stats.sessions_expired += 1;
            if let Some(c) = self.conns.get_mut(&id) {
                c.session = Session::Expired;
            }
        }
        for id in ping {
            self.send(id, &Message::Ping, now);
        }
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.held.is_some() && t >= c.hold_until)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.release_held(id);
        }
        for id in rehello {
            self.trace(format_args!(
                "remote {id}: no sync round for long, HELLO again"
            ));
            if let Some(c) = self.conns.get_mut(&id) {
                c.last_sync_rx = t;
            }
            self.send(id, &Message::Hello, now);
        }
        for id in sync {
            if let Some(c) = self.conns.get_mut(&id) {
                c.next_sync = t + s.sync_interval_ms;
            }
            self.start_sync(id, now);
        }
        for id in dead {
            self.close(id, "remote silent too long".to_string(), now);
        }
        for (id, limit) in idle {
            self.stats.idle_closed += 1;
            self.close(id, format!("client silent for more than {limit} ms"), now);
        }
        self.bound_backlogs(now);
        for (id, r) in self.remotes.iter_mut().enumerate() {
            if r.redial_at.is_some_and(|at| at <= t) {
                r.redial_at = None;
                r.dialing = true;
                self.actions.push_back(Action::Dial {
                    remote: id,
                    endpoint: r.endpoint.clone(),
                });
            }
        }
        let busy = !self.conns.is_empty()
            || self.remotes.iter().any(|r| r.redial_at.is_some())
            || self.store.entries() > self.store.len();
        if busy {
            self.ensure_tick(now);
        }
    }

    /// Rebuilds the expiry queue from the store when most of it is stale:
    /// a key refreshed with a long time to live leaves an element per
    /// refresh, and they must not pile up until the first one is due. The
    /// queue then holds one element per live tuple with an expiry; the
    /// rebuild costs a pass over the store once per that many refreshes.
    fn prune_expiries(&mut self) {
        if self.expiries.len() <= 2 * self.store.len() + 1024 {
            return;
        }
        self.expiries = self
            .store
            .live()
            .filter(|(_, t)| t.expires != 0)
            .map(|(key, t)| Reverse((t.expires, key.into())))
            .collect();
    }

    /// Turns tuples whose time ran out into tombstones and tells the
    /// application. Every node does this at the same wall time, so no
    /// message is needed.
    fn run_expiries(&mut self, now: Now) {
        while let Some(Reverse((wall, _))) = self.expiries.peek() {
            if *wall > now.wall_ms {
                break;
            }
            let Some(Reverse((_, key))) = self.expiries.pop() else {
                break;
            };
            if self.store.expire(&key, now.wall_ms) {
                self.stats.expired += 1;
                self.trace(format_args!("{key} expired"));
                self.news.push(Kind::Expire, &key, "");
            }
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Inbound => "client",
        Role::Outbound(_) => "remote",
    }
}

/// A message for the trace: name, and key and value size for PUBLISH.
fn describe(msg: &Message<'_>) -> String {
    match msg {
        Message::Publish { key, value, ttl } => {
            format!("PUBLISH key={key} value={} bytes ttl={ttl}", value.len())
        }
        other => other.name().to_string(),
    }
}

fn ext_tuple<'a>(key: &'a str, t: Tuple<'a>) -> ext::Tuple<'a> {
    ext::Tuple {
        key,
        value: t.value,
        clock: t.version.clock,
        origin: t.version.origin,
        expires: t.expires,
        deleted: t.deleted,
    }
}

/// The plain (ZGP v1) PUBLISH of a stored tuple: its ttl field is the time
/// left to live in ms, 0 for none.
fn plain_publish<'a>(key: &'a str, t: Tuple<'a>, now: Now) -> Message<'a> {
    let ttl = if t.expires == 0 {
        0
    } else {
        t.expires
            .saturating_sub(now.wall_ms)
            .clamp(1, u64::from(u32::MAX)) as u32
    };
    Message::Publish {
        key,
        value: t.value,
        ttl,
    }
}

// An outbox holds one-frame messages framed as on the wire of a NULL
// connection (zmtp::push_single_frame_header), so that the driver can hand
// whole runs of them to the connection at once (zmtp::Connection::
// queue_framed) instead of one call and one copy per message.

/// Appends a message of `len` bytes to an outbox: its header, then what
/// `write` appends (exactly `len` bytes).
fn push_message(outbox: &mut Vec<u8>, len: usize, write: impl FnOnce(&mut Vec<u8>)) {
    outbox.reserve(zmtp::MAX_HEADER_LEN + len);
    zmtp::push_single_frame_header(outbox, len);
    write(outbox);
}

fn push_raw(outbox: &mut Vec<u8>, frame: &[u8]) {
    push_message(outbox, frame.len(), |o| o.extend_from_slice(frame));
}

/// Appends a ZGP/2 TUPLE to an outbox, encoded in place.
fn push_tuple(outbox: &mut Vec<u8>, t: &ext::Tuple<'_>) {
    push_message(outbox, ext::tuple_len(t), |o| ext::encode_tuple(t, o));
}

fn push_frame(outbox: &mut Vec<u8>, msg: &Message<'_>) {
    push_message(outbox, msg.encoded_len(), |o| msg.encode(o));
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod tests;
