//! The gossip engine: the protocol brain of a node, without any I/O.
//!
//! The engine is driven by calls that carry the current time ([`Now`]):
//! connections opened and becoming ready, bytes and ZGP frames received,
//! connections closed, application publishes and timer ticks. It answers
//! through queues that the driver drains: bytes to send per connection
//! ([`Engine::drain_outbox`]), [`Action`]s (dial a remote, close a
//! connection) and news for the application (`DELIVER`, `EXPIRE`,
//! `DELETE`; [`Engine::news`]). The reactor drives it over real sockets;
//! tests and the simulator drive it over virtual ones.
//!
//! Roles follow CZMQ's zgossip (the Harmony pattern): an *inbound*
//! connection was accepted on one of our listeners, and we play the ZGP
//! server (ROUTER) on it; an *outbound* connection is one we dialled to a
//! remote, where we play the ZGP client (DEALER).
//!
//! The engine's parts, one file each: `settings` (timers, limits, the
//! size rule), `conn` (what it knows of one connection), `remotes` (the
//! endpoints it keeps connected), `sessions` (handshake to close, and the
//! ZGP server and client state machines), `limits` (what one connection
//! may cost: handshake and frame deadlines, tuples and bytes per second),
//! `writes` (writes checked and merged), `forward` (writes sent on),
//! `sync` (set reconciliation), `membership` and `members` (who is in the
//! network), `outbox` (what the driver takes out),
//! `journal` (what a data directory is told) and `timers`.

mod conn;
mod ephemeral;
mod forward;
mod journal;
mod limits;
mod member_table;
mod members;
pub mod membership;
pub mod metrics;
mod outbox;
mod overlay;
mod remotes;
mod sessions;
mod settings;
mod sync;
mod timers;
pub mod tree;
pub mod tree_root;
pub mod views;
mod writes;

pub use conn::Peer;
pub use journal::Restored;
pub use metrics::{DelayHistogram, LinkInfo, Traffic, DELAY_BUCKETS_MS};
pub use overlay::OverlayStats;
pub use settings::{check_tuple_size, Settings, MAX_VALUE_LEN};

use conn::{Conn, ConnTable, Session, HOLD_MS};
use forward::{describe, plain_publish, role_name, zgp2_tuple};
use limits::{Guards, Meter};
use outbox::{push_frame, push_raw, push_tuple};
use remotes::Remote;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::news::{Kind, NewsQueue};
use crate::store::{Hlc, Outcome, Store, Tuple, Version, Write};
use crate::wire::gossip::{self, Message};
use crate::wire::{zgp2, zmtp};

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

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to this remote's endpoint; report back with
    /// [`Engine::handle_connected`] or [`Engine::handle_dial_failed`].
    Dial { remote: RemoteId, endpoint: String },
    /// Close this connection, for `reason`. With an `error` (a limit was
    /// exceeded), fail the connection's codec with it first (the peer gets
    /// a ZMTP `ERROR` with that text) and send nothing more; otherwise send
    /// what is queued for it first. The engine takes nothing more from it;
    /// report the close with [`Engine::handle_closed`] as usual.
    Close {
        conn: ConnId,
        reason: String,
        error: Option<String>,
    },
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
    /// Connections closed because a frame stalled (`limits/frame-timeout`).
    pub stalled_closed: u64,
    /// Ephemeral tuples deleted here because their writer left or failed.
    pub ephemeral_deleted: u64,
    /// This node's ephemeral tuples written again after another node took
    /// it as failed.
    pub ephemeral_rewritten: u64,
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
    /// The limits' deadlines and the usage carried over reconnections.
    guards: Guards,
    last_now: Now,
    stats: Stats,
    /// The propagation delay of writes applied from ZGP/2 peers.
    delay: metrics::DelayHistogram,
    /// The overlay: active and passive views, and the broadcast tree.
    views: views::Views,
    tree: tree::Tree,
    /// The tree's root and this node's way to it (which links push).
    tree_root: tree_root::TreeRoot,
    /// Records for the data directory, when there is one.
    journal: Option<journal::Journal>,
    /// Who is in the network (`membership.rs`).
    membership: membership::Membership,
}

impl Engine {
    /// A new engine; `id` names this node in versions (any unique number).
    pub fn new(name: &str, id: u64, settings: Settings) -> Engine {
        let me = crate::wire::overlay::PeerEntry {
            id,
            endpoint: String::new(),
            key: None,
        };
        Engine {
            views: views::Views::new(me, settings.views.clone(), id),
            tree: tree::Tree::new(settings.tree.clone()),
            tree_root: tree_root::TreeRoot::new(
                id,
                settings.tree.root_interval_ms,
                settings.tree.root_timeout_ms,
            ),
            name: name.to_string(),
            id,
            verbose: false,
            membership: membership::Membership::new(id, name, settings.membership.clone()),
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
            guards: Guards::default(),
            last_now: Now::default(),
            stats: Stats::default(),
            delay: metrics::DelayHistogram::default(),
            journal: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Prints a trace of protocol events on stderr when on (the logger
    /// gets them whether or not: `src/logging.rs`).
    pub fn set_verbose(&mut self, on: bool) {
        self.verbose = on;
    }

    pub fn verbose(&self) -> bool {
        self.verbose
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Changes timers and limits; they apply from the next tick on (the
    /// handshake and frame deadlines at once).
    pub fn set_settings(&mut self, settings: Settings) {
        self.views.set_settings(settings.views.clone());
        self.tree.set_settings(settings.tree.clone());
        self.membership.set_settings(settings.membership.clone());
        self.tree_root.set_settings(
            settings.tree.root_interval_ms,
            settings.tree.root_timeout_ms,
            self.last_now.mono_ms,
        );
        self.settings = settings;
        self.next_tick = None;
        // The collection's cadence follows the graces: a shorter one set
        // now must not wait for a round planned with the old one.
        self.next_gc = 0;
        self.replan_guards();
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

    /// A line of the protocol trace (`VERBOSE`; the logger at debug level,
    /// target `zgossip::engine`).
    fn trace(&self, what: std::fmt::Arguments<'_>) {
        crate::logging::trace(
            self.verbose,
            crate::logging::ENGINE,
            log::Level::Debug,
            "zgossip",
            Some(&self.name),
            what,
        );
    }

    /// Whether lines per message (a frame received, sent, forwarded) go
    /// anywhere: callers check it before describing the message.
    fn tracing_messages(&self) -> bool {
        crate::logging::tracing(self.verbose, crate::logging::ENGINE, log::Level::Trace)
    }

    /// A line per message (`VERBOSE`; the logger at trace level).
    fn trace_message(&self, what: std::fmt::Arguments<'_>) {
        crate::logging::trace(
            self.verbose,
            crate::logging::ENGINE,
            log::Level::Trace,
            "zgossip",
            Some(&self.name),
            what,
        );
    }
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod overlay_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
