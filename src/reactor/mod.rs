//! The reactor: one mio event loop per node. It is the only place that does
//! I/O: it accepts and dials connections, runs each through the ZMTP codec,
//! hands ZGP frames to the engine and writes what the engine queues. Its
//! timers are the engine's, the discovery's and the configuration file's
//! check: [`Reactor::poll_timeout`] and [`Reactor::handle_timeout`].

pub(crate) mod affinity;
pub(crate) mod dns;
pub(crate) mod inproc;
mod net;
mod persist;
pub(crate) mod pool;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use log::Level;
use mio::{Interest, Token};

/// Wakes a node's event loop: a note to its thread naming the node (a
/// poller allows one waker, and a thread may run several nodes).
pub(crate) struct NodeWaker {
    node: usize,
    thread: Arc<pool::ThreadWake>,
}

impl NodeWaker {
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.thread.wake(self.node)
    }
}

use crate::config::Config;
use crate::control::access::Access;
use crate::control::command::{Command, Envelope};
use crate::control::config_file::ConfigFile;
use crate::control::{advertise, metrics, reply, settings};
use crate::endpoint::Endpoint;
use crate::engine::{Action, ConnId, Engine, Now, Peer, RemoteId, Role, Settings};
use crate::error::{Error, Result};
use crate::handle::inbox::{Batch, Inbox, Next};
use crate::handle::replies::Replies;
use crate::logging;
use crate::wire::{zgp2, zmtp};

use net::{Listener, Stream};

/// Local tokens of a node: the low 32 bits (a shared thread tells nodes
/// apart by the bits above).
pub(crate) const LOCAL_TOKENS: usize = 0xffff_ffff;
/// Bytes read from one connection per wakeup before serving the others.
const READ_BUDGET: usize = 1 << 20;
/// Encoded bytes kept ahead of the socket per connection; the rest waits
/// in the engine's outbox until the socket drains.
const WRITE_AHEAD: usize = 256 << 10;
/// Commands taken from the application per wakeup before the network is
/// served again.
const COMMAND_BUDGET: usize = 4096;

/// One connection as the reactor holds it: the socket, its ZMTP codec,
/// and the input it holds (the engine counts and times the rest).
struct Socket {
    stream: Stream,
    zmtp: zmtp::Connection,
    role: Role,
    /// TCP connect still in progress.
    connecting: bool,
    /// The TCP connect failed for want of anyone there (refused, timed
    /// out, host unreachable): told to the engine as such.
    unanswered: bool,
    /// Handshake done and the engine has been told (`handle_connected`).
    ready: bool,
    peer: String,
    /// Inbound TCP peer address (counted for `limits/connections-per-address`).
    ip: Option<std::net::IpAddr>,
    /// Bytes of an incomplete frame the codec holds (counted against
    /// `limits/input-buffers`; the engine times it, `limits/frame-timeout`).
    held_input: usize,
    /// Registered for writability too (only while output waits or a
    /// connect is in progress: otherwise every ACK would wake us).
    writable_interest: bool,
    /// Under CURVE, the peer's long-term public key once the handshake
    /// is done (a client's is checked again when the admitted keys
    /// change).
    curve_peer: Option<[u8; 32]>,
}

pub(crate) struct Reactor {
    /// Where its sources are registered (its thread's poller), under
    /// tokens `base | local`.
    registry: mio::Registry,
    base: usize,
    engine: Engine,
    commands: Arc<Inbox>,
    /// Commands taken from `commands`, not all carried out yet.
    batch: Batch,
    replies: Arc<Replies>,
    waker: Arc<NodeWaker>,
    inproc_tx: Sender<inproc::Accepted>,
    inproc_rx: Receiver<inproc::Accepted>,
    owner: u64,
    listeners: TokenMap<(Listener, String)>,
    bound: Vec<String>,
    conns: TokenMap<Socket>,
    next_token: usize,
    port: i64,
    config: Config,
    config_file: ConfigFile,
    dirty: Vec<ConnId>,
    /// Connections that still had unread input when their budget ran out.
    backlog: Vec<Token>,
    /// Announce and speak ZGP/2 with peers that announce it too.
    zgp2_enabled: bool,
    /// `cluster/name`: announced in handshakes and beacons; peers of
    /// another cluster are refused.
    cluster: String,
    /// Handshakes that failed because the peer is of another cluster (we
    /// refused it, or it refused us).
    cluster_refused: u64,
    /// Bytes read from and written to the node's connections (ZMTP, as on
    /// the wire).
    bytes_in: u64,
    bytes_out: u64,
    /// How long `$TERM` waits for queued output to leave.
    linger_ms: u64,
    /// Set by `$TERM`: when lingering ends.
    linger_until: Option<Instant>,
    /// Set by the handle when it woke us; cleared when commands are drained.
    wake_pending: Arc<AtomicBool>,
    /// Commands were left in the queue (budget used up).
    commands_pending: bool,
    running: bool,
    access: Access,
    /// UDP discovery, after DISCOVER.
    discovery: Option<crate::beacon::driver::Driver>,
    /// The data directory (`store/path`), once set.
    persist: Option<persist::Persist>,
    /// `overlay/advertise`: the endpoint told to others, when set.
    advertise: Option<String>,
    /// The endpoint the first TCP bind gives others (`tcp://*:PORT` for a
    /// wildcard bind), when there was one.
    listening: Option<String>,
    /// DNS seeds (`JOIN dns:NAME:PORT`), resolved on helper threads.
    dns: dns::DnsSeeds,
}

impl Reactor {
    /// A node's event loop. With `shared`, its sources are registered
    /// with a shared thread's poller under tokens `base | local` (see
    /// [`pool`]); otherwise it has a poller of its own.
    pub(crate) fn new(
        name: &str,
        commands: Arc<Inbox>,
        replies: Arc<Replies>,
        wake_pending: Arc<AtomicBool>,
        shared: pool::Shared,
    ) -> Result<(Reactor, Arc<NodeWaker>)> {
        // One waker per node: the handle and the inproc registry share it.
        let pool::Shared {
            registry,
            node,
            thread,
        } = shared;
        let base = node << 32;
        let waker = NodeWaker { node, thread };
        let waker = Arc::new(waker);
        let mut id = [0u8; 8];
        getrandom::getrandom(&mut id)
            .map_err(|e| Error::io("cannot draw a node id", io::Error::other(e.to_string())))?;
        let owner = u64::from_le_bytes(id);
        let (inproc_tx, inproc_rx) = mpsc::channel();
        let mut config = Config::new();
        // As CZMQ: the default client timeout is part of the saved tree.
        config
            .put("server/timeout", "1000")
            .map_err(|e| Error::Config(e.to_string()))?;
        let reactor = Reactor {
            registry,
            base,
            engine: Engine::new(name, owner, Settings::default()),
            commands,
            batch: Batch::default(),
            replies,
            waker: waker.clone(),
            inproc_tx,
            inproc_rx,
            owner,
            listeners: TokenMap::default(),
            bound: Vec::new(),
            conns: TokenMap::default(),
            next_token: 1,
            port: 0,
            config,
            config_file: ConfigFile::default(),
            dirty: Vec::new(),
            backlog: Vec::new(),
            zgp2_enabled: true,
            cluster: String::new(),
            cluster_refused: 0,
            bytes_in: 0,
            bytes_out: 0,
            linger_ms: 500,
            linger_until: None,
            wake_pending: wake_pending.clone(),
            commands_pending: false,
            running: true,
            access: Access::default(),
            discovery: None,
            persist: None,
            advertise: None,
            listening: None,
            dns: dns::DnsSeeds::new(settings::DEFAULT_DNS_INTERVAL_MS),
        };
        Ok((reactor, waker))
    }

    /// The time. Within a round of the thread's event loop every node
    /// sees the same reading (see [`begin_round`]): a round is short
    /// (reads are bounded by `READ_BUDGET`), the engine's timers count in
    /// milliseconds, and reading the two clocks at every step cost a fifth
    /// of the event loop's instructions per hop of a chain.
    fn now(&self) -> Now {
        read_clocks().now
    }

    /// A line of the trace (`VERBOSE`; the logger at debug level, target
    /// `zgossip::reactor`).
    fn trace(&self, what: std::fmt::Arguments<'_>) {
        logging::trace(
            self.engine.verbose(),
            logging::REACTOR,
            Level::Debug,
            "zgossip",
            Some(self.engine.name()),
            what,
        );
    }

    /// Whether the node still runs (no `$TERM` yet).
    pub(crate) fn running(&self) -> bool {
        self.running
    }

    /// The registered token of a local token.
    fn tok(&self, local: Token) -> Token {
        Token(self.base | local.0)
    }

    pub(crate) fn name(&self) -> &str {
        self.engine.name()
    }

    /// Takes the commands waiting (a node just handed to a shared thread
    /// may have been woken before it got there).
    pub(crate) fn wakeup(&mut self) {
        self.handle_wakeup();
        self.after_engine();
    }

    /// Serves one readiness event (its token is this node's).
    pub(crate) fn on_event(&mut self, ev: &mio::event::Event) {
        // Commands the application sent before this event are carried out
        // first, whatever order the poll reported the two in: a PUBLISH is
        // then delivered to the application before what peers sent since
        // (CZMQ's selftest, ffi-tests/selftest.c, relies on that order).
        if self.wake_pending.load(Ordering::SeqCst) {
            self.handle_wakeup();
        }
        let token = Token(ev.token().0 & LOCAL_TOKENS);
        if crate::beacon::driver::is_token(token) {
            let now = self.now();
            if let Some(d) = self.discovery.as_mut() {
                let links = crate::beacon::driver::Links {
                    engine: &mut self.engine,
                };
                d.readable(token, links, &self.access.policy, now);
            }
        } else if !self.conns.contains_key(&token) && self.listeners.contains_key(&token) {
            // Connections first: one look-up of a map already at hand
            // for the common event, none of the listeners' map.
            self.accept(token);
        } else {
            // A readable event without a hang-up: a short read means
            // the socket is drained (a later arrival raises a new event).
            let mode = if ev.is_readable() && !ev.is_read_closed() && !ev.is_error() {
                ReadMode::ShortDrains
            } else {
                ReadMode::Drain
            };
            self.conn_ready(token, mode);
        }
        self.after_engine();
    }

    /// The rest of a round, after its events: commands left over, input
    /// left over, timers.
    pub(crate) fn after_events(&mut self) {
        if !self.running {
            return;
        }
        if self.commands_pending {
            self.handle_wakeup();
            self.after_engine();
        }
        for token in std::mem::take(&mut self.backlog) {
            self.conn_ready(token, ReadMode::Drain);
            self.after_engine();
        }
        let now = self.now();
        self.handle_timeout(now);
        self.after_engine();
    }

    /// The node's one timer: the earliest of the engine's (sessions,
    /// pings, rounds, redials, expiries, handshake and frame deadlines),
    /// the discovery's (beacons) and the configuration file's check, in
    /// the engine's monotonic milliseconds.
    fn poll_timeout(&self) -> Option<u64> {
        let discovery = self.discovery.as_ref().map(|d| d.poll_timeout());
        [
            self.engine.poll_timeout(),
            discovery,
            self.config_file.poll_timeout(),
            self.persist.as_ref().and_then(|p| p.poll_timeout()),
            self.dns.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs what is due at `now` of the timers [`poll_timeout`] covers
    /// (the engine's decides for itself, and is called every round).
    fn handle_timeout(&mut self, now: Now) {
        if let Some(d) = self.discovery.as_mut() {
            if d.poll_timeout() <= now.mono_ms {
                let links = crate::beacon::driver::Links {
                    engine: &mut self.engine,
                };
                d.timeout(links, &self.access.policy, now);
            }
        }
        self.dns.start_due(now.mono_ms, &self.waker);
        self.engine.handle_timeout(now);
        if let Some(p) = self.persist.as_mut() {
            p.take(&mut self.engine, now);
            p.timeout(&mut self.engine, now);
        }
        if let Some(path) = self.config_file.due(now.mono_ms) {
            let path = path.to_path_buf();
            self.reload_if_changed(&path);
        }
    }

    /// When the node next has something to do: its earliest timer, as an
    /// instant (the timers are absolute, so the answer stays the same from
    /// one turn to the next until a timer moves), or a past instant when
    /// commands or input are left over.
    pub(crate) fn wake_at(&self) -> Instant {
        if !self.backlog.is_empty() || self.commands_pending {
            return epoch();
        }
        // No timer, or one too far ahead to count: an hour from now is as
        // good (any event gives the node a turn, and a new timer with it).
        let later = || round_instant() + Duration::from_secs(3600);
        match self.poll_timeout() {
            Some(at) => epoch()
                .checked_add(Duration::from_millis(at))
                .unwrap_or_else(later),
            None => later(),
        }
    }

    /// Stops listening, and starts giving output still queued on
    /// established connections a bounded time (`server/linger`) to leave,
    /// so a tuple published just before `$TERM` is not lost.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(p) = self.persist.as_mut() {
            let now = read_clocks().now;
            p.close(&mut self.engine, now);
        }
        inproc::unbind_all(self.owner);
        self.listeners.clear();
        // Beacons stop, and the mDNS service says goodbye.
        if let Some(d) = self.discovery.take() {
            d.stop(&self.registry);
        }
        // The others list this node as left at once, not failed later: the
        // leave goes out with the output the linger flushes.
        let now = self.now();
        self.engine.leave(now);
        self.after_engine();
        self.engine.quiet_overlay();
        self.linger_until = Some(Instant::now() + Duration::from_millis(self.linger_ms));
    }

    /// Writes what it can of the queued output (the thread's loop calls it
    /// again as sockets take more). True once nothing is left or the linger
    /// time is over.
    pub(crate) fn linger_step(&mut self) -> bool {
        let deadline = self.linger_until.unwrap_or_else(Instant::now);
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        let mut pending = false;
        for t in tokens {
            if self.pump(t).is_err() {
                self.conns.remove(&t);
                continue;
            }
            if let Some(c) = self.conns.get(&t) {
                let queued = self.engine.has_output(t.0 as ConnId);
                if c.ready && (queued || !c.zmtp.pending_output().is_empty()) {
                    pending = true;
                }
            }
        }
        let now = Instant::now();
        if !pending || now >= deadline {
            return true;
        }
        // The thread's loop comes back with the sockets' readiness.
        false
    }

    /// Closes every connection and the reply pipe.
    pub(crate) fn finish(&mut self) {
        for (_, mut c) in self.conns.drain() {
            let _ = self.registry.deregister(&mut c.stream);
        }
        self.replies.close();
    }

    // ------------------------------------------------------------------
    // Commands from the application

    fn handle_wakeup(&mut self) {
        // Cleared before draining: a command sent from now on wakes us again.
        self.wake_pending.store(false, Ordering::SeqCst);
        self.commands_pending = false;
        while let Ok(stream) = self.inproc_rx.try_recv() {
            let stream = Stream::Unix(mio::net::UnixStream::from_std(stream));
            let refuse = self.access.refusal(None);
            self.add_conn_with(
                stream,
                Role::Inbound,
                false,
                "inproc peer".into(),
                None,
                refuse,
            );
        }
        let now = self.now();
        self.take_dns_answers(now);
        if let Some(d) = self.discovery.as_mut() {
            let links = crate::beacon::driver::Links {
                engine: &mut self.engine,
            };
            d.take_mdns(links, &self.access.policy, now);
        }
        for _ in 0..COMMAND_BUDGET {
            if !self.commands.take(&mut self.batch) {
                return;
            }
            let Some(next) = self.batch.next() else {
                continue;
            };
            let Envelope { cmd, ack, direct } = match next {
                Next::Publish { key, value, ttl_ms } => {
                    // Its output goes out with the rest of the batch.
                    self.engine.publish(key, value, ttl_ms, now);
                    continue;
                }
                Next::Unpublish(key) => {
                    self.engine.unpublish(key, now);
                    continue;
                }
                Next::Command(env) => env,
            };
            let Some(ack) = ack else {
                if let Err(e) = self.execute(cmd) {
                    self.trace(format_args!("command failed: {e}"));
                }
                if !self.running {
                    return;
                }
                continue;
            };
            let pipe_reply = matches!(
                cmd,
                Command::Port
                    | Command::Status
                    | Command::Stats
                    | Command::Metrics
                    | Command::Get(_)
                    | Command::Keys(_)
                    | Command::Members
                    | Command::Keygen
                    | Command::KeyringList
            );
            // The writes before it reach the data directory first (with
            // `store/fsync always`, synced before the command is carried
            // out).
            self.take_journal(now);
            let outcome = self.execute(cmd);
            // Everything the commands before it caused goes first.
            self.after_engine();
            let outcome = match outcome {
                Ok(Some(reply)) if !direct => {
                    if pipe_reply {
                        self.replies.push(reply);
                    }
                    Ok(None)
                }
                other => other,
            };
            let _ = ack.send(outcome);
            if !self.running {
                return;
            }
        }
        // More commands wait: serve the network, then come back.
        self.commands_pending = true;
    }

    /// Carries out a command; returns its reply, if it has one.
    fn execute(&mut self, cmd: Command) -> Result<Option<Vec<String>>> {
        let now = self.now();
        self.trace(format_args!("API command {cmd}"));
        match cmd {
            Command::Verbose => {
                self.engine.set_verbose(true);
                Ok(None)
            }
            Command::Term => {
                self.running = false;
                Ok(None)
            }
            Command::Bind(ep) => {
                // No reply on the pipe (as CZMQ); the typed API gets the port.
                self.bind(&ep)?;
                Ok(Some(self.port_reply()))
            }
            Command::Port => {
                self.flush_deliveries();
                Ok(Some(self.port_reply()))
            }
            Command::Status => {
                self.flush_deliveries();
                Ok(Some(reply::status(self.engine.store())))
            }
            Command::Connect(ep, keys) => {
                let remote = self.engine.add_remote(&ep.to_string(), now);
                self.engine.set_remote_keys(remote, keys);
                Ok(None)
            }
            Command::Join(ep, key) => {
                self.engine.join(&ep.to_string(), key, now);
                Ok(None)
            }
            Command::JoinDns(seed, key) => {
                self.dns.add(seed, key, now.mono_ms)?;
                self.dns.start_due(now.mono_ms, &self.waker);
                Ok(None)
            }
            Command::SetPublicKey(_)
            | Command::SetSecretKey(_)
            | Command::ZapDomain(_)
            | Command::Keygen
            | Command::Cert(_)
            | Command::Allow(_)
            | Command::Deny(_)
            | Command::CurveAllow(_)
            | Command::CurveAny
            | Command::CurveCerts(_)
            | Command::CurveRemove(_)
            | Command::KeyringAdd(_)
            | Command::KeyringCert(_)
            | Command::KeyringUse(_)
            | Command::KeyringRemove(_)
            | Command::KeyringList => self.execute_access(cmd),
            Command::Publish { key, value, ttl_ms } => {
                self.engine.publish(&key, &value, ttl_ms, now);
                Ok(None)
            }
            Command::Ephemeral { key, value, ttl_ms } => {
                self.engine
                    .settings()
                    .check_tuple_size(key.len(), value.len())
                    .map_err(|why| Error::command(format!("EPHEMERAL: {why}")))?;
                self.engine.publish_with(&key, &value, ttl_ms, true, now);
                Ok(None)
            }
            Command::Unpublish(key) => {
                self.engine.unpublish(&key, now);
                Ok(None)
            }
            Command::Stats => {
                self.flush_deliveries();
                Ok(Some(reply::stats(self.stats_counters())))
            }
            Command::Metrics => {
                self.flush_deliveries();
                let text = metrics::exposition(self.stats_counters(), &self.engine);
                Ok(Some(vec!["METRICS".to_string(), text]))
            }
            Command::Get(key) => {
                self.flush_deliveries();
                Ok(Some(reply::value(self.engine.store(), &key)))
            }
            Command::Keys(prefix) => {
                self.flush_deliveries();
                Ok(Some(reply::keys(self.engine.store(), &prefix)))
            }
            Command::Members => {
                self.flush_deliveries();
                Ok(Some(reply::members(&self.engine)))
            }
            Command::Discover(args) => self.discover(&args, now).map(Some),
            Command::Set(path, value) => self.set(&path, &value).map(|_| None),
            Command::Load(file) => self.load(&file).map(|_| None),
            Command::Save(file) => self
                .config
                .save(&file)
                .map(|_| None)
                .map_err(|e| Error::Config(format!("cannot save configuration: {e}"))),
        }
    }

    /// The counters of `STATS` (and `METRICS`), in order.
    fn stats_counters(&self) -> Vec<(&'static str, u64)> {
        let own = [
            ("replies-pending", self.replies.len() as u64),
            ("replies-coalesced", self.replies.coalesced()),
            // Kept, always 0, so that STATS keeps its names: the
            // hand-offs between nodes of one thread it counted are
            // gone (issue 23, docs/benchmarks.md).
            ("handoff-reads", 0),
            ("cluster-refused", self.cluster_refused),
            ("bytes-in", self.bytes_in),
            ("bytes-out", self.bytes_out),
        ];
        let store = self.persist.as_ref().map(|p| p.stats).unwrap_or_default();
        let discovery = self.discovery.as_ref().map(|d| d.counters());
        let mdns = self.discovery.as_ref().and_then(|d| d.mdns_counters());
        let stalled = self.engine.stats().stalled_closed;
        reply::engine_counters(&self.engine)
            .into_iter()
            .chain(reply::overlay_counters(&self.engine))
            .chain(reply::membership_counters(&self.engine))
            .chain(self.access.counters(stalled))
            .chain(own)
            .chain(reply::store_counters(&store))
            .chain(self.dns.counters())
            .chain(reply::seed_counters(&self.engine))
            .chain(discovery.into_iter().flatten())
            .chain(mdns.into_iter().flatten())
            .collect()
    }

    fn port_reply(&self) -> Vec<String> {
        vec!["PORT".into(), self.port.to_string()]
    }

    /// The CURVE, authentication and key commands.
    fn execute_access(&mut self, cmd: Command) -> Result<Option<Vec<String>>> {
        let done = self.access.execute(cmd)?;
        if let Some(line) = &done.trace {
            self.trace(format_args!("{line}"));
        }
        if let Some(public) = done.keys_set {
            let now = self.now();
            // Overlay peers learn the key, to dial this node as CURVE
            // clients.
            self.engine.set_public_key(Some(public));
            if let Some(d) = self.discovery.as_mut() {
                // From now on the node speaks only CURVE: its beacons carry
                // its key, and the overlay links made in plain are dropped
                // (the overlay starts over with peers found with keys).
                d.set_public_key(Some(&public), now);
                self.engine
                    .restart_overlay("the node's key pair changed", now);
            }
        }
        if let Some(public) = done.primary_changed {
            // A rotation: announced from now on (overlay messages,
            // beacons); the links made with the old key stay.
            let now = self.now();
            self.engine.announce_public_key(Some(public), now);
            if let Some(d) = self.discovery.as_mut() {
                d.announce_key(&public, now);
            }
        }
        if done.clients_removed {
            self.close_removed_clients();
        }
        Ok(done.reply)
    }

    /// Closes the connections whose CURVE client key is no longer
    /// admitted (`CURVE REMOVE`, a `CURVE dir` read again without it),
    /// with an `ERROR` saying why; they are refused when they come back.
    fn close_removed_clients(&mut self) {
        let now = self.now();
        let gone: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.role == Role::Inbound && c.ready)
            .filter(|(_, c)| c.curve_peer.is_some_and(|k| !self.access.admits_client(&k)))
            .map(|(t, _)| *t)
            .collect();
        for token in gone {
            let why = "client key removed from the admitted CURVE keys";
            if let Some(c) = self.conns.get_mut(&token) {
                c.zmtp.fail(why);
            }
            self.access.client_closed += 1;
            self.drop_conn(token, why, now);
        }
    }

    fn bind(&mut self, ep: &Endpoint) -> Result<()> {
        let text = ep.to_string();
        if let Endpoint::Inproc(name) = ep {
            inproc::bind(name, self.owner, self.inproc_tx.clone(), self.waker.clone())?;
            self.port = 0;
            self.bound.push(text);
            self.trace(format_args!("bound {ep}"));
            return Ok(());
        }
        reserve_spare_descriptor();
        let (mut listener, port) = net::bind(ep)?;
        let token = self.token();
        self.registry
            .register(listener.source(), self.tok(token), Interest::READABLE)
            .map_err(|e| Error::io(format!("cannot bind {ep}"), e))?;
        self.port = port.map_or(0, i64::from);
        let shown = match (ep, port) {
            (Endpoint::Tcp { host, .. }, Some(p)) => format!("tcp://{host}:{p}"),
            _ => text.clone(),
        };
        self.trace(format_args!("bound {shown}"));
        if let (Endpoint::Tcp { host, .. }, Some(p), None) = (ep, port, &self.listening) {
            // The first TCP endpoint is what overlay peers dial, unless
            // `overlay/advertise` says otherwise.
            self.listening = Some(advertise::listening_endpoint(host, p));
            self.tell_own_endpoint();
        }
        self.bound.push(text);
        self.listeners.insert(token, (listener, shown));
        Ok(())
    }

    /// DISCOVER: options from `discovery/*` in the configuration, then the
    /// arguments. Binds TCP on the beacon's address first when the node
    /// has no TCP endpoint. Replies `DISCOVER hostname port`.
    fn discover(&mut self, args: &[String], now: Now) -> Result<Vec<String>> {
        use crate::beacon::{driver as disc, options::DiscoverOptions};
        let mut options = DiscoverOptions::default();
        for name in crate::beacon::options::OPTION_NAMES {
            if let Some(v) = self.config.get(&format!("discovery/{name}")) {
                options.set(name, v)?;
            }
        }
        options.apply_args(args)?;
        if let Some(old) = self.discovery.take() {
            old.stop(&self.registry);
        }
        let Some(iface) = disc::open(&options)? else {
            return Err(Error::command(format!(
                "DISCOVER: no usable interface (interface '{}')",
                options
                    .interface
                    .clone()
                    .or_else(|| std::env::var("ZSYS_INTERFACE").ok())
                    .unwrap_or_default()
            )));
        };
        if self.port <= 0 {
            let host = match iface.hostname.as_str() {
                // Both families: one socket that takes both (docs/discovery.md).
                _ if options.dual_stack => "[::]".to_string(),
                "*" => "*".to_string(),
                h if h.contains(':') => format!("[{}]", h.split('%').next().unwrap_or(h)),
                h => h.to_string(),
            };
            self.bind(&Endpoint::parse_bind(&format!("tcp://{host}:*"))?)?;
        }
        // Beacons carry the port of the endpoint told to others.
        let port = advertise::endpoint_port(&self.own_endpoint())
            .or_else(|| u16::try_from(self.port).ok().filter(|p| *p != 0))
            .ok_or_else(|| Error::command("DISCOVER: the node has no TCP port"))?;
        let waker = self.waker.clone();
        let advertised = self.advertised_endpoint();
        let driver = disc::Driver::start(
            iface,
            &options,
            self.engine.id(),
            disc::Identity {
                name: self.engine.name(),
                advertised: advertised.as_deref(),
            },
            port,
            self.access.curve_public_key().as_ref(),
            &self.cluster,
            &self.registry,
            crate::beacon::driver::TOKENS.map(|t| self.tok(t)),
            Box::new(move || {
                let _ = waker.wake();
            }),
            now.mono_ms,
        )?;
        let hostname = driver.hostname().to_string();
        self.trace(format_args!(
            "discovering on {hostname}{}{}{}, advertising TCP port {port} ({})",
            if driver.dual_stack() { " and IPv6" } else { "" },
            if options.beacon {
                format!(", UDP port {}", options.port)
            } else {
                String::new()
            },
            if options.mdns { ", mDNS" } else { "" },
            if self.access.server {
                "CURVE: only peers that beacon a public key"
            } else {
                "plain: only peers that beacon no key"
            }
        ));
        self.discovery = Some(driver);
        Ok(vec!["DISCOVER".into(), hostname, port.to_string()])
    }

    fn set(&mut self, path: &str, value: &str) -> Result<()> {
        let mut next = self.config.clone();
        next.put(path, value)
            .map_err(|e| Error::Config(format!("SET {path}: {e}")))?;
        self.apply_config(&next)?;
        self.config = next;
        Ok(())
    }

    fn load(&mut self, file: &str) -> Result<()> {
        let cfg = Config::load(file)
            .map_err(|e| Error::Config(format!("cannot load configuration: {e}")))?;
        self.apply_config(&cfg)?;
        self.config = cfg;
        let now_ms = self.now().mono_ms;
        self.config_file
            .loaded(PathBuf::from(file), modified(file), now_ms);
        self.bind_from_config()
    }

    /// Binds the `zgossip/bind/endpoint` entries not bound yet.
    fn bind_from_config(&mut self) -> Result<()> {
        let mut endpoints = Vec::new();
        if let Some(section) = self.config.locate("zgossip") {
            for child in section.children() {
                if child.name() == "bind" {
                    if let Some(ep) = child.child("endpoint").and_then(|e| e.value()) {
                        endpoints.push(ep.to_string());
                    }
                }
            }
        }
        for ep in endpoints {
            if self.bound.contains(&ep) {
                continue;
            }
            let parsed = Endpoint::parse_bind(&ep)
                .map_err(|e| Error::Config(format!("zgossip/bind/endpoint: {e}")))?;
            self.bind(&parsed)?;
        }
        Ok(())
    }

    /// A new cluster name: beacons and handshakes carry it from now on, and
    /// the overlay starts over among the nodes of that cluster (`CONNECT`
    /// links stay until they reconnect, when the other side decides).
    fn set_cluster(&mut self, name: String) {
        let now = self.now();
        self.trace(format_args!("cluster name now '{name}'"));
        self.cluster = name;
        if let Some(d) = self.discovery.as_mut() {
            d.set_cluster(&self.cluster, now);
        }
        self.engine.restart_overlay("cluster/name changed", now);
    }

    /// Applies the settings the node reads from its configuration tree.
    fn apply_config(&mut self, cfg: &Config) -> Result<()> {
        let n = settings::from_config(cfg, self.engine.settings(), self.linger_ms)?;
        self.apply_store(n.store_path.as_deref(), n.fsync)?;
        self.zgp2_enabled = n.zgp2_enabled;
        self.linger_ms = n.linger_ms;
        if n.cluster != self.cluster {
            self.set_cluster(n.cluster);
        }
        self.replies.set_limit(n.pipe_limit);
        if n.verbose {
            self.engine.set_verbose(true);
        }
        self.commands.set_max_frame(n.limits.max_frame);
        self.engine.set_settings(n.engine);
        self.engine.set_member_events(n.member_events);
        self.access.limits = n.limits;
        self.dns.set_interval(n.dns_interval_ms);
        if n.advertise != self.advertise {
            self.advertise = n.advertise;
            self.tell_own_endpoint();
        }
        Ok(())
    }

    /// The endpoint this node tells others to dial: `overlay/advertise`,
    /// else its first TCP bind's (empty: it does not listen). The one
    /// place it is derived.
    fn own_endpoint(&self) -> String {
        advertise::own_endpoint(self.advertise.as_deref(), self.listening.as_deref())
    }

    /// The endpoint beacons carry whole (version 5): the node's own
    /// endpoint when `overlay/advertise` makes it (else beacons carry
    /// its port, and peers dial their source address).
    fn advertised_endpoint(&self) -> Option<String> {
        self.advertise.as_ref().map(|_| self.own_endpoint())
    }

    /// Tells the engine (overlay and membership) and the beacons the
    /// endpoint others dial, when it changed.
    fn tell_own_endpoint(&mut self) {
        let own = self.own_endpoint();
        if own == self.engine.endpoint() {
            return;
        }
        self.trace(format_args!("telling others to dial {own}"));
        self.engine.set_endpoint(&own);
        if let Some(port) = advertise::endpoint_port(&own) {
            let now = self.now();
            let advertised = self.advertised_endpoint();
            if let Some(d) = self.discovery.as_mut() {
                d.set_endpoint(port, advertised.as_deref(), now);
            }
        }
    }

    /// Hands the DNS seeds' answers to the engine.
    fn take_dns_answers(&mut self, now: Now) {
        for answer in self.dns.take_answers(now.mono_ms) {
            match answer {
                Ok(r) => {
                    self.trace(format_args!(
                        "{} resolved to {} address(es)",
                        r.seed,
                        r.endpoints.len()
                    ));
                    self.engine.seed_resolved(&r.seed, &r.endpoints, r.key, now);
                }
                Err(e) => self.trace(format_args!("DNS seed: {e}")),
            }
        }
    }

    /// `store/path` and `store/fsync`: the data directory opened and
    /// loaded when first set (an error leaves the node without one, and
    /// the setting refused); it cannot change while the node runs.
    /// Removed from the tree, the directory stays in use.
    fn apply_store(&mut self, path: Option<&str>, fsync: crate::persist::Fsync) -> Result<()> {
        let now = self.now();
        match (&mut self.persist, path) {
            (Some(p), Some(path)) if p.set_path() != path => Err(Error::Config(format!(
                "store/path is {}: a node's data directory cannot change while it runs",
                p.set_path()
            ))),
            (Some(p), _) => {
                p.set_fsync(fsync, now);
                Ok(())
            }
            (None, Some(path)) => {
                let p = persist::Persist::open(path, fsync, &mut self.engine, now)?;
                self.trace(format_args!(
                    "data directory {path}: {} records loaded ({} expired while away)",
                    p.stats.loaded, p.stats.expired_on_load
                ));
                self.persist = Some(p);
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    // ------------------------------------------------------------------
    // Connections

    /// A new local token (wrapping within the local range, skipping the
    /// discovery socket's and any still in use).
    fn token(&mut self) -> Token {
        loop {
            let t = Token(self.next_token & LOCAL_TOKENS);
            self.next_token = self.next_token.wrapping_add(1);
            let reserved = crate::beacon::driver::is_token(t);
            if !reserved && !self.conns.contains_key(&t) && !self.listeners.contains_key(&t) {
                return t;
            }
        }
    }

    fn add_conn(&mut self, stream: Stream, role: Role, connecting: bool, peer: String) {
        self.add_conn_with(stream, role, connecting, peer, None, None);
    }

    fn add_conn_with(
        &mut self,
        mut stream: Stream,
        role: Role,
        connecting: bool,
        peer: String,
        ip: Option<std::net::IpAddr>,
        refuse: Option<String>,
    ) {
        let token = self.token();
        if let Err(e) = self.registry.register(
            &mut stream,
            self.tok(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.trace(format_args!("cannot register connection: {e}"));
            if let Role::Outbound(remote) = role {
                let now = self.now();
                self.engine.handle_dial_failed(remote, &e.to_string(), now);
            }
            return;
        }
        let socket_type = match role {
            Role::Inbound => zmtp::SocketType::Router,
            Role::Outbound(_) => zmtp::SocketType::Dealer,
        };
        let mut properties = Vec::new();
        if self.zgp2_enabled {
            properties.push((zgp2::PROPERTY.to_string(), b"2".to_vec()));
            let timeout = self
                .engine
                .settings()
                .link_timeout_ms
                .min(u64::from(u32::MAX));
            properties.push((
                zgp2::TIMEOUT_PROPERTY.to_string(),
                timeout.to_string().into_bytes(),
            ));
            properties.push((
                zgp2::MAX_FRAME_PROPERTY.to_string(),
                self.access.limits.max_frame.to_string().into_bytes(),
            ));
        }
        // Nodes of two clusters never link: each refuses the other's
        // handshake with an ERROR naming the property.
        let cluster = self.cluster.as_bytes().to_vec();
        if !cluster.is_empty() {
            properties.push((zgp2::CLUSTER_PROPERTY.to_string(), cluster.clone()));
        }
        let matching = vec![(zgp2::CLUSTER_PROPERTY.to_string(), cluster)];
        let server_key = match role {
            Role::Outbound(remote) => self.engine.remote_key(remote),
            Role::Inbound => None,
        };
        let mechanism = match self.access.mechanism_for(role, server_key) {
            Ok((m, plain)) => {
                if plain {
                    self.trace(format_args!(
                        "dialling {peer} in plain (NULL): CONNECT named no server key, \
                         though this node has a CURVE key pair"
                    ));
                }
                m
            }
            Err(e) => {
                self.trace(format_args!("cannot dial {peer}: {e}"));
                let _ = self.registry.deregister(&mut stream);
                if let Role::Outbound(remote) = role {
                    let now = self.now();
                    self.engine.handle_dial_failed(remote, &e, now);
                }
                return;
            }
        };
        let zmtp = zmtp::Connection::new(zmtp::ConnectionConfig {
            socket_type,
            as_server: false,
            max_frame: self.access.limits.max_frame,
            properties,
            mechanism,
            refuse,
            matching,
        });
        if let Some(ip) = ip {
            self.access.addresses.add(ip);
        }
        if role == Role::Inbound {
            self.access.inbound += 1;
        }
        // From now on the engine times its handshake and counts what it
        // costs (a reconnection from the address carries on its usage).
        let now = self.now();
        self.engine.handle_opened(token.0 as ConnId, role, ip, now);
        self.conns.insert(
            token,
            Socket {
                stream,
                zmtp,
                role,
                connecting,
                unanswered: false,
                ready: false,
                peer,
                ip,
                held_input: 0,
                writable_interest: true,
                curve_peer: None,
            },
        );
        // Send our greeting now if we can.
        self.conn_ready(token, ReadMode::Drain);
    }

    fn accept(&mut self, token: Token) {
        loop {
            let Some((listener, name)) = self.listeners.get(&token) else {
                return;
            };
            match listener.accept() {
                Ok(stream) => {
                    let peer = stream.peer();
                    let ip = stream.peer_ip();
                    let refuse = self.access.refusal(ip);
                    match &refuse {
                        Some(why) => self.trace(format_args!(
                            "refusing {peer} on {name} (ZAP domain '{}'): {why}",
                            self.access.zap_domain
                        )),
                        None => self.trace(format_args!("accepted {peer} on {name}")),
                    }
                    self.add_conn_with(stream, Role::Inbound, false, peer, ip, refuse);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_out_of_descriptors(&e) => {
                    // The peer waits in the listen queue and would hang:
                    // free the spare descriptor, take the connection and
                    // close it at once, then hold a spare again. (accept
                    // fails so even when no connection waits.)
                    let taken = with_spare_descriptor(|| {
                        // Dropped here: closed before the spare is taken again.
                        self.listeners
                            .get(&token)
                            .map(|(l, _)| l.accept().map(drop))
                    });
                    match taken {
                        Some(Ok(())) => {
                            self.access.fd_refused += 1;
                            let name = self.listeners.get(&token).map(|(_, n)| n.clone());
                            self.trace(format_args!(
                                "refused a connection on {}: out of file descriptors ({e})",
                                name.unwrap_or_default()
                            ));
                        }
                        Some(Err(e)) if e.kind() != io::ErrorKind::WouldBlock => {
                            self.trace(format_args!("accept failed at the descriptor limit: {e}"));
                            return;
                        }
                        _ => return,
                    }
                }
                Err(e) => {
                    // Another failure: log, try again on the next event.
                    self.trace(format_args!("accept failed on {name}: {e}"));
                    return;
                }
            }
        }
    }

    fn dial(&mut self, remote: RemoteId, endpoint: &str) {
        let now = self.now();
        let result = Endpoint::parse_connect(endpoint).and_then(|ep| match &ep {
            Endpoint::Inproc(name) => {
                inproc::connect(name).map(|s| Stream::Unix(mio::net::UnixStream::from_std(s)))
            }
            _ => net::dial(&ep),
        });
        match result {
            Ok(stream) => {
                let connecting = matches!(stream, Stream::Tcp(..));
                self.add_conn(stream, Role::Outbound(remote), connecting, endpoint.into())
            }
            Err(e) => match &e {
                Error::Io { source, .. } if net::nobody_there(source) => self
                    .engine
                    .handle_dial_unanswered(remote, &e.to_string(), now),
                _ => self.engine.handle_dial_failed(remote, &e.to_string(), now),
            },
        }
    }

    /// The socket of `token` may be readable or writable (or both: with
    /// edge-triggered events we simply try); `mode` says how to read it.
    fn conn_ready(&mut self, token: Token, mode: ReadMode) {
        let now = self.now();
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        if c.connecting {
            match c.stream.connect_finished() {
                Ok(true) => c.connecting = false,
                Ok(false) => return,
                Err(e) => {
                    c.unanswered = net::nobody_there(&e);
                    let reason = e.to_string();
                    self.drop_conn(token, &reason, now);
                    return;
                }
            }
        }
        match self.read_conn(token, now, mode) {
            Ok(Input::Taken) => {}
            // The engine closes it for a limit: its Action::Close follows,
            // nothing more is written before its ERROR.
            Ok(Input::Refused) => return,
            Err(reason) => {
                self.drop_conn(token, &reason, now);
                return;
            }
        }
        if let Err(reason) = self.pump(token) {
            self.drop_after_write_error(token, &reason, now);
        }
    }

    /// A write failed: the peer closed or reset the connection. What it
    /// sent before is still in the socket (Linux keeps data received
    /// before a reset readable): read it, then close. Otherwise the last
    /// frames of a peer that leaves, such as the tuple `zgossip put`
    /// publishes just before it exits, are lost whenever a forward to it
    /// happens to be written first.
    fn drop_after_write_error(&mut self, token: Token, reason: &str, now: Now) {
        if self.conns.get(&token).is_some_and(|c| !c.connecting) {
            // Its own failure (the reset itself) changes nothing: we close.
            let _ = self.read_conn(token, now, ReadMode::Drain);
        }
        self.drop_conn(token, reason, now);
    }

    /// Reads what the socket has (up to the budget), feeding the codec and
    /// the engine. `Err` carries the reason to close.
    fn read_conn(
        &mut self,
        token: Token,
        now: Now,
        mode: ReadMode,
    ) -> std::result::Result<Input, String> {
        READ_BUF.with(|shared| match shared.try_borrow_mut() {
            Ok(mut buf) => self.read_conn_with(&mut buf, token, now, mode),
            // Not reentered today; if it ever were, a buffer of its own.
            Err(_) => self.read_conn_with(&mut vec![0; READ_SIZE], token, now, mode),
        })
    }

    fn read_conn_with(
        &mut self,
        read_buf: &mut [u8],
        token: Token,
        now: Now,
        mode: ReadMode,
    ) -> std::result::Result<Input, String> {
        let Reactor {
            conns,
            engine,
            backlog,
            zgp2_enabled,
            access,
            bytes_in,
            ..
        } = self;
        let Some(c) = conns.get_mut(&token) else {
            return Ok(Input::Taken);
        };
        let id = token.0 as ConnId;
        let mut total = 0;
        let mut eof = false;
        loop {
            if total >= READ_BUDGET {
                backlog.push(token);
                break;
            }
            match c.stream.read(read_buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    let data = &read_buf[..n];
                    total += n;
                    *bytes_in += n as u64;
                    let input = take_in(c, engine, access, *zgp2_enabled, id, now, data)?;
                    if input == Input::Refused {
                        return Ok(input);
                    }
                    if mode != ReadMode::Drain && n < read_buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        // What the codec holds of an incomplete frame counts against the
        // node's budget, and the engine times it while no frame completes.
        let held = c.zmtp.buffered_input();
        access.held_input = access.held_input - c.held_input + held;
        if held != 0 || c.held_input != 0 {
            engine.handle_partial(id, held, now);
        }
        c.held_input = held;
        let budget = access.limits.input_buffers;
        if budget > 0 && held > 0 && access.held_input > budget {
            access.input_refused += 1;
            let why = format!(
                "limits/input-buffers reached ({} bytes of incomplete frames held, limit {budget})",
                access.held_input
            );
            c.zmtp.fail(&why);
            return Err(why);
        }
        if eof {
            return Err("closed by peer".into());
        }
        Ok(Input::Taken)
    }

    /// Moves engine output into the codec and codec output into the socket
    /// until the socket would block or nothing is left.
    fn pump(&mut self, token: Token) -> std::result::Result<(), String> {
        let Reactor {
            conns,
            engine,
            registry,
            base,
            bytes_out,
            ..
        } = self;
        let Some(c) = conns.get_mut(&token) else {
            return Ok(());
        };
        if c.connecting {
            return Ok(());
        }
        let id = token.0 as ConnId;
        let mut wrote = 0;
        let blocked = loop {
            if c.ready && c.zmtp.passes_framed_through() {
                // NULL with nothing pending: the outbox's runs are wire
                // bytes already, written straight from it; only what the
                // socket does not take is copied, into the codec.
                let (zmtp, stream) = (&mut c.zmtp, &mut c.stream);
                let mut moved = false;
                let mut failed = None;
                let mut would_block = false;
                let emptied = engine.drain_outbox_framed(id, WRITE_AHEAD, |frames| {
                    if !zmtp.passes_framed_through() || !zmtp::is_framed_run(frames) {
                        return false;
                    }
                    match write_some(stream, frames) {
                        Ok(Some(written)) => {
                            if written < frames.len() {
                                zmtp.queue_unwritten(&frames[written..]);
                            }
                            moved = true;
                            wrote += written;
                            true
                        }
                        Ok(None) => {
                            would_block = true;
                            false
                        }
                        Err(why) => {
                            failed = Some(why);
                            false
                        }
                    }
                });
                if let Some(reason) = failed {
                    return Err(reason);
                }
                if would_block {
                    break true;
                }
                if moved && !emptied {
                    continue; // more waits
                }
            } else if c.ready {
                // Whole runs of messages move into the codec at once.
                let zmtp = &mut c.zmtp;
                let room = WRITE_AHEAD.saturating_sub(zmtp.pending_output().len());
                engine.drain_outbox_framed(id, room, |frames| zmtp.queue_framed(frames).is_ok());
            }
            let out = c.zmtp.pending_output();
            if out.is_empty() {
                break false;
            }
            match write_some(&mut c.stream, out)? {
                Some(n) => {
                    c.zmtp.consume_output(n);
                    wrote += n;
                }
                None => break true,
            }
        };
        *bytes_out += wrote as u64;
        // Ask for writability exactly while output waits.
        if blocked != c.writable_interest {
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry
                .reregister(&mut c.stream, Token(*base | token.0), interest)
                .map_err(|e| e.to_string())?;
            c.writable_interest = blocked;
        }
        Ok(())
    }

    /// Closes a connection and tells the engine.
    fn drop_conn(&mut self, token: Token, reason: &str, now: Now) {
        let Some(mut c) = self.conns.remove(&token) else {
            return;
        };
        self.trace(format_args!(
            "connection {} ({}) closed: {reason}",
            token.0, c.peer
        ));
        if reason.contains(zgp2::CLUSTER_PROPERTY) {
            // Ours or the peer's ERROR: "X-ZGossip-Cluster differs: ...".
            self.cluster_refused += 1;
        }
        // Best effort: an ERROR the codec queued (refusal, limit, protocol
        // error) reaches the peer before the close.
        if !c.connecting {
            let _ = c.stream.write(c.zmtp.pending_output());
        }
        if c.role == Role::Inbound && !c.ready {
            self.access.count_handshake(None, Some(reason));
        }
        if let Some(ip) = c.ip {
            self.access.addresses.remove(ip);
        }
        self.access.held_input -= c.held_input;
        if c.role == Role::Inbound {
            self.access.inbound = self.access.inbound.saturating_sub(1);
        }
        let _ = self.registry.deregister(&mut c.stream);
        // The engine forgets it, handshake ended or not; a dial that never
        // got through is a failed dial.
        self.engine.handle_closed(token.0 as ConnId, now);
        if let (false, Role::Outbound(remote)) = (c.ready, c.role) {
            if c.unanswered {
                self.engine.handle_dial_unanswered(remote, reason, now);
            } else {
                self.engine.handle_dial_failed(remote, reason, now);
            }
        }
    }

    /// Carries out what the engine asked for and passes its output on,
    /// until it has nothing more (closing a connection can cause more).
    fn after_engine(&mut self) {
        let now = self.now(); // the turn's reading (see `now`)
        loop {
            let mut acted = false;
            while let Some(action) = self.engine.poll_action() {
                acted = true;
                match action {
                    Action::Dial { remote, endpoint } => self.dial(remote, &endpoint),
                    Action::Close {
                        conn,
                        reason,
                        error,
                    } => {
                        let token = Token(conn as usize);
                        if let Some(c) = self.conns.get_mut(&token) {
                            match &error {
                                // A limit: the peer gets an ERROR, and
                                // nothing the engine queued.
                                Some(error) => c.zmtp.fail(error),
                                // Flush what is queued (an INVALID, say),
                                // best effort: `drop_conn` writes it, once.
                                None => {
                                    let zmtp = &mut c.zmtp;
                                    self.engine.drain_outbox_framed(conn, usize::MAX, |f| {
                                        zmtp.queue_framed(f).is_ok()
                                    });
                                }
                            }
                        }
                        self.drop_conn(token, &reason, now);
                    }
                }
            }
            self.flush_deliveries();
            let mut dirty = std::mem::take(&mut self.dirty);
            self.engine.take_dirty(&mut dirty);
            for &id in &dirty {
                let token = Token(id as usize);
                if let Err(reason) = self.pump(token) {
                    self.drop_after_write_error(token, &reason, now);
                }
            }
            let done = dirty.is_empty() && !acted;
            self.dirty = dirty;
            if done {
                self.take_journal(now);
                return;
            }
        }
    }

    /// Passes the engine's journal to the data directory, and a write
    /// error there to the application (`STORE-ERROR reason`, once per
    /// failure).
    fn take_journal(&mut self, now: Now) {
        if let Some(p) = self.persist.as_mut() {
            p.take(&mut self.engine, now);
            if let Some(why) = p.take_report() {
                self.replies.push(vec!["STORE-ERROR".into(), why]);
            }
        }
    }

    /// Passes the engine's news to the application, in order, then the
    /// changes of members' states (`MEMBER id name state endpoint`, kept
    /// only after `SET membership/events 1`).
    fn flush_deliveries(&mut self) {
        self.replies.push_news(self.engine.news());
        while let Some(e) = self.engine.poll_member_event() {
            self.replies.push(vec![
                "MEMBER".to_string(),
                format!("{:016x}", e.id),
                e.name,
                e.state.name().to_string(),
                e.endpoint,
            ]);
        }
    }

    /// As CZMQ: a loaded configuration file that changes on disk is loaded
    /// again and applied (a check [`ConfigFile`] said was due).
    fn reload_if_changed(&mut self, path: &Path) {
        let current = modified(path);
        if !self.config_file.changed(current) {
            return;
        }
        let file = path.to_string_lossy().into_owned();
        match self.load(&file) {
            Ok(()) => self.trace(format_args!("reloaded configuration from {file}")),
            Err(e) => {
                logging::notice(
                    logging::REACTOR,
                    Level::Warn,
                    Some(self.engine.name()),
                    format_args!("{e}"),
                );
                self.config_file.failed(current);
            }
        }
    }
}

fn modified(path: impl AsRef<std::path::Path>) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// What became of input handed to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Taken: read on.
    Taken,
    /// The engine closes the connection for a limit (its `Action::Close`
    /// follows): read nothing more of it, write nothing before its ERROR.
    Refused,
}

/// Takes in bytes read from connection `id`: reports them to the engine
/// (which counts them against the limits), then hands whole short messages
/// to the engine straight from `data` (the codec's short-message pass, a
/// fast path: see `wire::zmtp::connection`), copies only the rest into the
/// codec, and processes that.
fn take_in(
    c: &mut Socket,
    engine: &mut Engine,
    access: &mut Access,
    zgp2_enabled: bool,
    id: ConnId,
    now: Now,
    data: &[u8],
) -> std::result::Result<Input, String> {
    if !engine.handle_read(id, data.len(), now) {
        return Ok(Input::Refused);
    }
    let mut input = Input::Taken;
    let taken = c.zmtp.take_short_messages_from(data, |frame| {
        if engine.handle_frame(id, frame, false, now) {
            return true;
        }
        input = Input::Refused;
        false
    });
    if input == Input::Refused {
        return Ok(input);
    }
    c.zmtp.feed(&data[taken..]);
    process_input(c, engine, access, zgp2_enabled, id, now)
}

/// Runs the codec over buffered input: handshake completion tells the
/// engine, each message goes to the engine.
fn process_input(
    c: &mut Socket,
    engine: &mut Engine,
    access: &mut Access,
    zgp2_enabled: bool,
    id: ConnId,
    now: Now,
) -> std::result::Result<Input, String> {
    loop {
        match c.zmtp.poll() {
            Ok(None) => return Ok(Input::Taken),
            Ok(Some(zmtp::ConnectionEvent::Ready(info))) => {
                c.ready = true;
                c.curve_peer = info.curve_key;
                if c.role == Role::Inbound {
                    access.count_handshake(c.zmtp.curve_server_key(), None);
                }
                let number = |name: &str| {
                    info.property(name)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                let peer = Peer {
                    addr: c.ip.or_else(|| c.stream.peer_ip()),
                    zgp2: zgp2_enabled && number(zgp2::PROPERTY).is_some_and(|v| v >= 2),
                    timeout_ms: number(zgp2::TIMEOUT_PROPERTY),
                    // Below the smallest limit a node can have: not a limit.
                    max_frame: number(zgp2::MAX_FRAME_PROPERTY)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n >= crate::security::MIN_MAX_FRAME),
                };
                engine.handle_connected(id, c.role, peer, now);
            }
            Ok(Some(zmtp::ConnectionEvent::Message(msg))) => {
                let (first, multipart) = (msg.first(), msg.is_multipart());
                if !engine.handle_frame(id, first, multipart, now) {
                    return Ok(Input::Refused);
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One write of `bytes` (not empty) to a socket: how many it took, or None
/// when it would block; an interrupted write is tried again. A socket that
/// takes nothing, or fails, ends the connection (the reason is returned).
fn write_some(stream: &mut Stream, bytes: &[u8]) -> std::result::Result<Option<usize>, String> {
    loop {
        match stream.write(bytes) {
            Ok(0) => return Err("connection closed while writing".into()),
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Maps keyed by small integers of our own (tokens, node numbers): looked
/// up several times per event, so hashed with foldhash rather than
/// SipHash (which cost a quarter of the event loop's instructions per hop
/// of a chain).
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type TokenMap<V> = FastMap<Token, V>;

/// Bytes read from a socket at a time.
const READ_SIZE: usize = 64 << 10;

/// How [`Reactor::read_conn`] reads a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    /// Until the socket says it would block.
    Drain,
    /// Until a read does not fill the buffer: the socket is drained then
    /// (saving the read that would only say "would block"), and a later
    /// arrival raises a new event.
    ShortDrains,
}

thread_local! {
    /// The read buffer of every node on this thread: what is read goes
    /// straight into the connection's codec, so one buffer serves them all.
    /// Fast path (memory): 64 KiB per event-loop thread instead of per node
    /// (64 MB for mesh1000's 1,000 nodes); with one node per process the
    /// same as a buffer of the node's own (docs/benchmarks.md,
    /// "Fast-path review").
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_SIZE]);
}

/// One reading of the two clocks: the instant, and the time as the
/// engine counts it.
#[derive(Clone, Copy)]
struct Reading {
    at: Instant,
    now: Now,
}

/// The origin of every node's monotonic milliseconds: one for the process,
/// so that the nodes of a thread share a reading as it is.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

thread_local! {
    /// The reading of the current round of this thread's event loop, if a
    /// round is on (`.0`) and the clocks have been read in it (`.1`).
    static ROUND: std::cell::Cell<(bool, Option<Reading>)> =
        const { std::cell::Cell::new((false, None)) };
}

/// Starts a round of this thread's event loop, or its next step: the
/// clocks are read at their next use, and that reading serves every node
/// of the thread until the round ends or the next step begins. A step is
/// short (a batch of events, or the turns that follow it); a chain hop
/// read the clocks eight times, and now two to five.
pub(crate) fn begin_round() {
    ROUND.with(|r| r.set((true, None)));
}

/// Ends the round: outside a round, every reading is fresh.
pub(crate) fn end_round() {
    ROUND.with(|r| r.set((false, None)));
}

fn read_clocks() -> Reading {
    let fresh = || {
        let at = Instant::now();
        Reading {
            at,
            now: Now {
                mono_ms: millis(at.saturating_duration_since(epoch())),
                wall_ms: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, millis),
            },
        }
    };
    ROUND.with(|r| match r.get() {
        (true, Some(reading)) => reading,
        (true, None) => {
            let reading = fresh();
            r.set((true, Some(reading)));
            reading
        }
        (false, _) => fresh(),
    })
}

/// The instant of the current round's reading (fresh outside a round).
pub(crate) fn round_instant() -> Instant {
    read_clocks().at
}

/// Whole milliseconds of `d`, in 64-bit arithmetic (`as_millis` divides
/// a 128-bit number, a library call on every clock reading).
fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// A descriptor the process holds in reserve (one for all its nodes): at
/// the descriptor limit it is given up for the time of `f`, which accepts
/// a waiting connection and closes it, a prompt refusal instead of a hang.
fn with_spare_descriptor<R>(f: impl FnOnce() -> R) -> R {
    static SPARE: parking_lot::Mutex<Option<std::fs::File>> = parking_lot::Mutex::new(None);
    let mut spare = SPARE.lock();
    *spare = None;
    let r = f();
    *spare = std::fs::File::open("/dev/null").ok();
    r
}

/// Reserves the spare descriptor of [`with_spare_descriptor`] early, while
/// descriptors are still to be had.
fn reserve_spare_descriptor() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| with_spare_descriptor(|| ()));
}

/// Whether an `accept` failed because the process or the system has no
/// descriptor left (EMFILE, ENFILE).
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::{begin_round, end_round, millis, round_instant};
    use std::time::Duration;

    #[test]
    fn a_round_shares_one_reading_of_the_clocks_and_outside_one_each_is_fresh() {
        let pause = || std::thread::sleep(Duration::from_millis(2));
        end_round();
        let a = round_instant();
        pause();
        assert!(round_instant() > a, "outside a round: fresh");
        begin_round();
        let b = round_instant();
        pause();
        assert_eq!(round_instant(), b, "one reading for the round");
        begin_round();
        assert!(round_instant() > b, "its next step reads again");
        end_round();
        let c = round_instant();
        pause();
        assert!(round_instant() > c, "fresh again once it ended");
    }

    #[test]
    fn millis_agrees_with_as_millis_and_saturates() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999_999),
            Duration::from_micros(1_234_567),
            Duration::new(1_700_000_000, 999_999_999),
        ] {
            assert_eq!(u128::from(millis(d)), d.as_millis(), "{d:?}");
        }
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
