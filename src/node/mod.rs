//! The gossip engine: the protocol brain of a node, without any I/O.
//!
//! The engine is driven by calls that carry the current time ([`Now`]):
//! connections becoming ready, ZGP frames received, connections closed,
//! application publishes and timer ticks. It answers through queues that
//! the driver drains: bytes to send per connection ([`Engine::drain_outbox`]),
//! [`Action`]s (dial a remote, close a connection) and [`Delivery`]s for
//! the application. The reactor drives it over real sockets; tests and the
//! simulator drive it over virtual ones.
//!
//! Roles follow CZMQ's zgossip (the Harmony pattern): an *inbound*
//! connection was accepted on one of our listeners, and we play the ZGP
//! server (ROUTER) on it; an *outbound* connection is one we dialled to a
//! remote, where we play the ZGP client (DEALER).

use std::collections::{BTreeMap, VecDeque};

use crate::store::{Hlc, Outcome, Store, Version};
use crate::wire::gossip::{self, Message};

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
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            session_timeout_ms: 1000,
            ping_interval_ms: 250,
            remote_timeout_ms: 10_000,
            reconnect_ivl_ms: 100,
            reconnect_ivl_max_ms: 2_000,
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

/// A tuple for the application (`DELIVER key value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    /// No HELLO seen (or the session was forgotten): only PING is valid.
    Start,
    /// HELLO seen: PUBLISH accepted, tuples forwarded.
    Connected,
}

#[derive(Debug)]
struct Conn {
    role: Role,
    session: Session,
    /// Frames waiting for the driver: each is a 4-byte little-endian length
    /// then the ZGP body.
    outbox: Vec<u8>,
    /// Read position in `outbox` (drained frames before it).
    outbox_pos: usize,
    last_rx: u64,
    last_tx: u64,
    /// Asked the driver to close it: no traffic in or out any more.
    closing: bool,
}

#[derive(Debug)]
struct Remote {
    endpoint: String,
    conn: Option<ConnId>,
    dialing: bool,
    backoff_ms: u64,
    redial_at: Option<u64>,
}

/// Counters for STATUS-like introspection and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub invalid_sent: u64,
    pub malformed: u64,
    pub sessions_expired: u64,
}

/// The gossip engine of one node.
pub struct Engine {
    name: String,
    id: u64,
    verbose: bool,
    settings: Settings,
    store: Store,
    hlc: Hlc,
    conns: BTreeMap<ConnId, Conn>,
    remotes: Vec<Remote>,
    dirty: Vec<ConnId>,
    actions: VecDeque<Action>,
    deliveries: VecDeque<Delivery>,
    scratch: Vec<u8>,
    next_tick: Option<u64>,
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
            conns: BTreeMap::new(),
            remotes: Vec::new(),
            dirty: Vec::new(),
            actions: VecDeque::new(),
            deliveries: VecDeque::new(),
            scratch: Vec::with_capacity(256),
            next_tick: None,
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

    // ------------------------------------------------------------------
    // Application side

    /// The application publishes a tuple: stored if new, delivered back to
    /// the application (as CZMQ does) and forwarded to every peer.
    pub fn publish(&mut self, key: &str, value: &str, now: Now) {
        self.accept(key, value, None, now);
    }

    /// Adds a remote endpoint to keep connected. Adding an endpoint that is
    /// already known sends HELLO and every tuple again on its connection
    /// (CZMQ's behaviour) instead of opening a second connection.
    pub fn add_remote(&mut self, endpoint: &str, now: Now) -> RemoteId {
        if let Some(id) = self.remotes.iter().position(|r| r.endpoint == endpoint) {
            if let Some(conn) = self.remotes[id].conn {
                self.send_hello_and_tuples(conn, now);
            }
            return id;
        }
        let id = self.remotes.len();
        self.remotes.push(Remote {
            endpoint: endpoint.to_string(),
            conn: None,
            dialing: true,
            backoff_ms: self.settings.reconnect_ivl_ms,
            redial_at: None,
        });
        self.trace(format_args!("connecting to {endpoint}"));
        self.actions.push_back(Action::Dial {
            remote: id,
            endpoint: endpoint.to_string(),
        });
        id
    }

    /// Endpoints of every remote, in the order they were added.
    pub fn remote_endpoints(&self) -> impl Iterator<Item = &str> {
        self.remotes.iter().map(|r| r.endpoint.as_str())
    }

    // ------------------------------------------------------------------
    // Driver side: connection lifecycle

    /// A connection finished its handshake. For an outbound one we send
    /// HELLO and every tuple we hold.
    pub fn handle_connected(&mut self, conn: ConnId, role: Role, now: Now) {
        self.conns.insert(
            conn,
            Conn {
                role,
                session: Session::Start,
                outbox: Vec::new(),
                outbox_pos: 0,
                last_rx: now.mono_ms,
                last_tx: now.mono_ms,
                closing: false,
            },
        );
        if let Role::Outbound(remote) = role {
            if let Some(r) = self.remotes.get_mut(remote) {
                r.conn = Some(conn);
                r.dialing = false;
                r.redial_at = None;
                r.backoff_ms = self.settings.reconnect_ivl_ms;
            }
            self.trace(format_args!("remote {conn} connected"));
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
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else {
            return;
        };
        c.last_rx = now.mono_ms;
        let role = c.role;
        let session = c.session;
        self.stats.frames_in += 1;
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
            self.trace(format_args!("{} {conn}: recv {}", role_name(role), describe(&msg)));
        }
        match role {
            Role::Inbound => self.server_message(conn, session, msg, now),
            Role::Outbound(_) => self.client_message(conn, msg, now),
        }
    }

    /// The ZGP server state machine (zgossip.xml).
    fn server_message(&mut self, conn: ConnId, session: Session, msg: Message<'_>, now: Now) {
        match (session, msg) {
            (_, Message::Ping) => self.send(conn, &Message::Pong, now),
            (Session::Start, Message::Hello) => {
                self.send_all_tuples(conn, now);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session = Session::Connected;
                }
            }
            (Session::Connected, Message::Publish { key, value, .. }) => {
                self.accept(key, value, Some(conn), now);
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

    /// What a remote (the ZGP client side) does with server messages.
    fn client_message(&mut self, conn: ConnId, msg: Message<'_>, now: Now) {
        match msg {
            Message::Publish { key, value, .. } => self.accept(key, value, Some(conn), now),
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

    /// Stores a tuple if new; then delivers it and forwards it to every
    /// connected peer except `from`.
    fn accept(&mut self, key: &str, value: &str, from: Option<ConnId>, now: Now) {
        let version = Version {
            clock: self.hlc.now(now.wall_ms),
            origin: self.id,
        };
        if self.store.apply(key, value, version) == Outcome::Duplicate {
            return;
        }
        self.deliveries.push_back(Delivery {
            key: key.to_string(),
            value: value.to_string(),
        });
        let msg = Message::Publish { key, value, ttl: 0 };
        let mut sent = 0;
        for (&id, c) in self.conns.iter_mut() {
            let forward = Some(id) != from
                && !c.closing
                && (matches!(c.role, Role::Outbound(_)) || c.session == Session::Connected);
            if forward {
                if c.outbox.len() == c.outbox_pos {
                    self.dirty.push(id);
                }
                push_frame(&mut c.outbox, &msg);
                c.last_tx = now.mono_ms;
                sent += 1;
            }
        }
        self.stats.frames_out += sent;
        if self.verbose {
            self.trace(format_args!("forwarded {} to {sent} peers", describe(&msg)));
        }
    }

    fn send_hello_and_tuples(&mut self, conn: ConnId, now: Now) {
        self.send(conn, &Message::Hello, now);
        self.send_all_tuples(conn, now);
    }

    fn send_all_tuples(&mut self, conn: ConnId, now: Now) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let was_empty = c.outbox.len() == c.outbox_pos;
        let mut n = 0u64;
        for (key, t) in self.store.iter() {
            let msg = Message::Publish {
                key,
                value: &t.value,
                ttl: 0,
            };
            push_frame(&mut c.outbox, &msg);
            n += 1;
        }
        if self.verbose && n > 0 {
            eprintln!("zgossip {}: {} {conn}: send {n} x PUBLISH (every tuple)", self.name, role_name(c.role));
        }
        if n > 0 {
            c.last_tx = now.mono_ms;
            self.stats.frames_out += n;
            if was_empty {
                self.dirty.push(conn);
            }
        }
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
                self.trace(format_args!("{} {conn}: send {}", role_name(c.role), describe(&msg)));
            }
        }
        if let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) {
            let was_empty = c.outbox.len() == c.outbox_pos;
            c.outbox
                .extend_from_slice(&(frame.len() as u32).to_le_bytes());
            c.outbox.extend_from_slice(frame);
            c.last_tx = now.mono_ms;
            self.stats.frames_out += 1;
            if was_empty {
                self.dirty.push(conn);
            }
        }
    }

    // ------------------------------------------------------------------
    // Driver side: output and timers

    /// Connections with frames waiting since the last call; the driver then
    /// calls [`Engine::drain_outbox`] for each. The vector is reused.
    pub fn take_dirty(&mut self, into: &mut Vec<ConnId>) {
        into.clear();
        std::mem::swap(into, &mut self.dirty);
    }

    /// Hands queued frames of `conn` to `sink`, oldest first, while it
    /// returns true; frames it refuses stay queued for a later call (the
    /// driver comes back when the connection can take more). Returns true
    /// when the outbox is now empty.
    pub fn drain_outbox(&mut self, conn: ConnId, mut sink: impl FnMut(&[u8]) -> bool) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return true;
        };
        let mut pos = c.outbox_pos;
        let buf = &c.outbox;
        while buf.len() >= pos + 4 {
            let len =
                u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
            let frame = &buf[pos + 4..pos + 4 + len];
            if !sink(frame) {
                break;
            }
            pos += 4 + len;
        }
        if pos >= c.outbox.len() {
            c.outbox.clear();
            c.outbox_pos = 0;
            if c.outbox.capacity() > 1 << 20 {
                c.outbox.shrink_to(64 << 10);
            }
            true
        } else {
            c.outbox_pos = pos;
            if pos > c.outbox.len() / 2 {
                c.outbox.drain(..pos);
                c.outbox_pos = 0;
            }
            false
        }
    }

    /// Bytes of frames queued for `conn` and not yet drained.
    pub fn outbox_len(&self, conn: ConnId) -> usize {
        self.conns
            .get(&conn)
            .map_or(0, |c| c.outbox.len() - c.outbox_pos)
    }

    /// The next thing the driver must do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next tuple for the application, if any.
    pub fn poll_delivery(&mut self) -> Option<Delivery> {
        self.deliveries.pop_front()
    }

    /// When [`Engine::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_tick
    }

    fn tick_interval(&self) -> u64 {
        let s = &self.settings;
        (s.session_timeout_ms.min(s.ping_interval_ms) / 4).clamp(1, 250)
    }

    fn ensure_tick(&mut self, now: Now) {
        let at = now.mono_ms + self.tick_interval();
        if self.next_tick.map_or(true, |t| t > at) {
            self.next_tick = Some(at);
        }
    }

    /// Runs timers due at `now`: expires silent inbound sessions, pings idle
    /// remotes, closes dead ones and redials those whose backoff ran out.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.next_tick.is_some_and(|t| t > now.mono_ms) {
            return;
        }
        self.next_tick = None;
        let t = now.mono_ms;
        let s = self.settings.clone();
        let mut expire = Vec::new();
        let mut ping = Vec::new();
        let mut dead = Vec::new();
        for (&id, c) in &self.conns {
            if c.closing {
                continue;
            }
            match c.role {
                Role::Inbound => {
                    if c.session == Session::Connected
                        && t.saturating_sub(c.last_rx) > s.session_timeout_ms
                    {
                        expire.push(id);
                    }
                }
                Role::Outbound(_) => {
                    if t.saturating_sub(c.last_rx) > s.remote_timeout_ms {
                        dead.push(id);
                    } else if t.saturating_sub(c.last_tx) >= s.ping_interval_ms {
                        ping.push(id);
                    }
                }
            }
        }
        for id in expire {
            self.trace(format_args!("client {id} silent too long: session expired"));
            self.stats.sessions_expired += 1;
            if let Some(c) = self.conns.get_mut(&id) {
                c.session = Session::Start;
            }
        }
        for id in ping {
            self.send(id, &Message::Ping, now);
        }
        for id in dead {
            self.close(id, "remote silent too long".to_string(), now);
        }
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
        let busy = !self.conns.is_empty() || self.remotes.iter().any(|r| r.redial_at.is_some());
        if busy {
            self.ensure_tick(now);
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

fn push_frame(outbox: &mut Vec<u8>, msg: &Message<'_>) {
    let len = msg.encoded_len();
    outbox.extend_from_slice(&(len as u32).to_le_bytes());
    msg.encode(outbox);
}

#[cfg(test)]
mod tests;
