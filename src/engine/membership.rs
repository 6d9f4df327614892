//! Membership: who is in the network, who failed, who left
//! (`docs/membership.md`).
//!
//! Every node keeps a table of members: id, name, endpoint, state
//! (alive, suspect, failed, left), incarnation. The design, argued in the
//! document:
//!
//! - **Observers are the overlay's neighbours.** Each node holds a few
//!   links (the active view, fixed links, its ZGP/2 clients) whose ends
//!   ping each other several times a second; those neighbours observe it.
//!   A link lost without a leave (reset, or silent past its timeout) makes
//!   the observer *suspect* the member. The load per node is its links',
//!   whatever the size of the network.
//! - **Suspicion, refutation, incarnations** (SWIM, Das et al. 2002): a
//!   suspicion spreads to every node, the suspect among them; a member
//!   that hears it is suspected says it is alive at a higher incarnation,
//!   which overrides the suspicion everywhere.
//! - **Confirmations shorten the wait** (Lifeguard, Dadgar et al. 2017): a
//!   suspicion's timeout falls from `suspect-max` toward `suspect-min` as
//!   more observers independently accuse the member; when it runs out, an
//!   accuser declares the member *failed*. A crashed process loses every
//!   link at once (all its observers accuse it), a slow one loses one.
//! - **Local health** (Lifeguard): a node whose own ticks came late (it was
//!   paused: a collector, a stopped VM) accuses nobody for what it saw
//!   meanwhile: the silence was its own.
//! - **Records spread by flooding** the membership links, batched; a
//!   record that changes nothing here goes no further. Digests of the
//!   table (256 buckets of hashes) compared on every new link and now and
//!   then on one link bring what a node missed (a partition, a join).
//! - Only links carry records, never beacons: on a CURVE network every
//!   record comes from an authenticated peer. Alive and left are only
//!   accepted as said by the member itself (the codec refuses others).
//!
//! A pure state machine like the views and the tree: link events,
//! messages and the time go in; messages to send, events for the
//! application and a deadline come out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

// Maps iterated in ways that decide what is sent are ordered, or hashed
// with fixed keys: a run of the simulator must not depend on a hash seed.

use super::member_table::MemberTable;
use super::ConnId;
use crate::rng::Rng;
use crate::wire::membership::{MemberRecord, MemberState, Message, MAX_DIGEST_BITS, MAX_RECORDS};

/// Buckets of the full digest (2^[`MAX_DIGEST_BITS`]).
const BUCKETS: usize = 1 << MAX_DIGEST_BITS;
/// A MEMBERS frame is closed at this many bytes (well under any peer's
/// frame limit).
const FRAME_BUDGET: usize = 32 << 10;
/// Accusers kept per suspicion (enough to count the confirmations).
const MAX_ACCUSERS: usize = 8;
/// How often the membership's clock ticks while it has links; a tick this
/// many times late means this node was stalled.
const TICK_MS: u64 = 250;
const STALL_TICKS: u64 = 3;

/// The membership's settings (`membership/*`; `docs/membership.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipSettings {
    /// A suspicion confirmed by enough observers waits this long.
    pub suspect_min_ms: u64,
    /// A suspicion of one observer waits this long.
    pub suspect_max_ms: u64,
    /// Accusers beyond the first that bring the wait down to the minimum.
    pub confirmations: u32,
    /// Failed and left members stay listed this long, then are forgotten
    /// (their ids are still refused at their last incarnation).
    pub gone_keep_ms: u64,
    /// Ids of forgotten or replaced members are refused this long.
    pub tombstone_keep_ms: u64,
    /// The most members the table holds; records of more are dropped and
    /// counted.
    pub max_members: usize,
    /// Records to spread wait this long to go in one frame per link.
    pub batch_ms: u64,
    /// How often a node compares digests with one of its links.
    pub sync_interval_ms: u64,
}

impl Default for MembershipSettings {
    fn default() -> MembershipSettings {
        MembershipSettings {
            suspect_min_ms: 2_000,
            suspect_max_ms: 6_000,
            confirmations: 3,
            gone_keep_ms: 300_000,
            tombstone_keep_ms: 24 * 3_600_000,
            max_members: 100_000,
            batch_ms: 20,
            sync_interval_ms: 10_000,
        }
    }
}

/// How a membership link ended, as its end here saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    /// One end chose to close it (a leave, the views' choice, a limit).
    Chosen,
    /// The peer's end went away: a reset or a close this end did not ask
    /// for (a process killed, its kernel closed the socket).
    Reset,
    /// This end closed it: the peer was silent past the link's timeout.
    /// Weaker evidence than a reset: the peer may only be paused.
    Silent,
}

/// A suspicion in progress.
#[derive(Debug, Clone)]
struct Suspicion {
    since: u64,
    accusers: Vec<u64>,
    /// This node accused the member itself (it lost its link).
    observer: bool,
    /// This node's own accusation came from a reset, not from silence: it
    /// may declare the failure after the confirmed wait. An accuser that
    /// only saw silence waits at least twice `suspect-min` (a node paused
    /// for two seconds loses all its links at once too, and must have the
    /// time to come back and deny).
    reset_seen: bool,
    /// A node that did not accuse waits this much longer (the accusers
    /// declare the failure; this node only steps in if none did).
    fallback: u64,
    deadline: u64,
}

/// A member's record as the table keeps it: the fixed fields, and the name
/// and endpoint in one allocation (about 188 bytes an entry in all,
/// measured, where a [`MemberRecord`] with its two strings took 310).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: u64,
    pub incarnation: u64,
    pub by: u64,
    pub started: u64,
    pub state: MemberState,
    name_len: u16,
    text: Box<str>,
}

impl Stored {
    pub(super) fn of(r: &MemberRecord) -> Stored {
        // Names from the wire are at most 255 bytes; a longer one (only
        // ever local) is cut at a character boundary.
        let mut n = r.name.len().min(usize::from(u16::MAX));
        while !r.name.is_char_boundary(n) {
            n -= 1;
        }
        let mut text = String::with_capacity(n + r.endpoint.len());
        text.push_str(&r.name[..n]);
        text.push_str(&r.endpoint);
        Stored {
            id: r.id,
            incarnation: r.incarnation,
            by: r.by,
            started: r.started,
            state: r.state,
            name_len: n as u16,
            text: text.into_boxed_str(),
        }
    }

    pub fn name(&self) -> &str {
        &self.text[..usize::from(self.name_len)]
    }

    pub fn endpoint(&self) -> &str {
        &self.text[usize::from(self.name_len)..]
    }

    /// The record as the messages carry it.
    pub fn to_record(&self) -> MemberRecord {
        MemberRecord {
            id: self.id,
            incarnation: self.incarnation,
            state: self.state,
            by: self.by,
            started: self.started,
            name: self.name().to_string(),
            endpoint: self.endpoint().to_string(),
        }
    }
}

/// One member as this node knows it.
#[derive(Debug, Clone)]
pub struct Member {
    pub record: Stored,
    /// The last change of state or incarnation, and the last record about
    /// it that came here, in tenths of a second of monotonic time (four
    /// bytes each: the table holds every member of the network).
    changed: u32,
    heard: u32,
    suspicion: Option<Box<Suspicion>>,
}

/// Monotonic ms as tenths of a second (136 years of them fit).
fn tenths(ms: u64) -> u32 {
    u32::try_from(ms / 100).unwrap_or(u32::MAX)
}

impl Member {
    pub(super) fn new(record: Stored, now: u64) -> Member {
        Member {
            record,
            changed: tenths(now),
            heard: tenths(now),
            suspicion: None,
        }
    }

    /// Monotonic ms of the last change of state or incarnation (to a
    /// tenth of a second).
    pub fn changed_at(&self) -> u64 {
        u64::from(self.changed) * 100
    }

    /// Monotonic ms of the last record about it that came here (to a
    /// tenth of a second).
    pub fn heard_at(&self) -> u64 {
        u64::from(self.heard) * 100
    }

    /// While the member is suspect: how many observers accused it (at most
    /// eight are counted), and whether this node is one of them.
    pub fn accusers(&self) -> Option<(usize, bool)> {
        self.suspicion
            .as_ref()
            .map(|s| (s.accusers.len(), s.observer))
    }
}

/// A change of a member's state, for the application (`MEMBER id name
/// state endpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    pub id: u64,
    pub name: String,
    pub state: MemberState,
    pub endpoint: String,
}

/// Counters of the membership (`STATS`, `METRICS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipStats {
    pub records_in: u64,
    pub records_out: u64,
    /// Records that changed nothing (old, or known).
    pub records_stale: u64,
    /// Records dropped because the table was full.
    pub records_dropped: u64,
    /// Records of a forgotten or replaced id at an old incarnation.
    pub records_refused: u64,
    pub suspicions: u64,
    /// Suspicions this node did not raise because it had been stalled.
    pub suspicions_withheld: u64,
    /// Suspicions this node raised because a dial to the member found no
    /// one there ([`Membership::unreachable`]).
    pub unreachable: u64,
    pub refutations: u64,
    pub failures: u64,
    pub leaves: u64,
    /// Members replaced by a newer start under the same name.
    pub replaced: u64,
    pub digests_sent: u64,
    pub digests_received: u64,
    pub stalls: u64,
}

/// Per link: the member at its other end, once its digest said so.
#[derive(Debug, Clone, Default)]
struct Link {
    peer: Option<u64>,
}

/// What was refused of a forgotten member: records at or below this
/// incarnation.
#[derive(Debug, Clone, Copy)]
struct Tombstone {
    incarnation: u64,
    until: u64,
}

/// The membership state machine of one node.
pub struct Membership {
    settings: MembershipSettings,
    me: MemberRecord,
    /// A hash map with a fixed hasher: iterated in one order run after
    /// run (the simulator replays), and about 25 bytes an entry lighter
    /// than a B-tree.
    members: MemberTable,
    /// (hash of the name, id): the members of a name, without a second
    /// copy of every name (a table entry costs about 200 bytes, not 280).
    by_name: BTreeSet<(u64, u64)>,
    tombstones: BTreeMap<u64, Tombstone>,
    digest: Box<[u64; BUCKETS]>,
    links: BTreeMap<ConnId, Link>,
    /// Who is at the other end of connections whose digest came before
    /// this end counted them as membership links (a client hears the
    /// server's digest before the reply that makes its link active).
    early: BTreeMap<ConnId, u64>,
    /// Records to spread, with the link each came on (not sent back there).
    pending: Vec<(MemberRecord, Option<ConnId>)>,
    flush_at: Option<u64>,
    next_sync: u64,
    last_tick: Option<u64>,
    /// Until then, lost links are not taken as the peer's fault.
    withhold_until: u64,
    suspects: usize,
    gone: usize,
    out: VecDeque<(ConnId, Message)>,
    events: VecDeque<MemberEvent>,
    stats: MembershipStats,
    rng: Rng,
    left: bool,
    /// Whether changes are kept for the application.
    events_on: bool,
    /// Members that became failed or left (or were replaced) since the
    /// engine last asked: their ephemeral tuples go.
    gone_out: Vec<u64>,
    /// Another node declared this one failed (or left) since the engine
    /// last asked: its ephemeral tuples were deleted, it writes them again.
    declared_gone: bool,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit hash of a member's name (FNV-1a, then mixed).
fn name_hash(name: &str) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    mix(h)
}

fn bucket(id: u64) -> usize {
    (mix(id) >> (64 - MAX_DIGEST_BITS)) as usize
}

/// A record's part of its bucket's hash: its id, incarnation and state.
/// What the overriding rule and the digests look at in a record.
trait Stamp {
    fn stamp(&self) -> (u64, u64, MemberState);
}

impl Stamp for MemberRecord {
    fn stamp(&self) -> (u64, u64, MemberState) {
        (self.id, self.incarnation, self.state)
    }
}

impl Stamp for Stored {
    fn stamp(&self) -> (u64, u64, MemberState) {
        (self.id, self.incarnation, self.state)
    }
}

fn record_hash(r: &impl Stamp) -> u64 {
    let (id, incarnation, state) = r.stamp();
    mix(id ^ mix(incarnation ^ mix(state as u64 + 1)))
}

fn rank(state: MemberState) -> u8 {
    match state {
        MemberState::Alive => 0,
        MemberState::Suspect => 1,
        MemberState::Failed => 2,
        MemberState::Left => 3,
    }
}

/// Whether record `a` overrides record `b` of the same member: a higher
/// incarnation, or the same one in a stronger state.
fn overrides(a: &impl Stamp, b: &impl Stamp) -> bool {
    let ((_, ai, ast), (_, bi, bst)) = (a.stamp(), b.stamp());
    ai > bi || (ai == bi && rank(ast) > rank(bst))
}

impl Membership {
    /// The membership of node `id` named `name`.
    pub fn new(id: u64, name: &str, settings: MembershipSettings) -> Membership {
        Membership {
            settings,
            me: MemberRecord {
                id,
                incarnation: 0,
                state: MemberState::Alive,
                by: id,
                started: 0,
                name: name.to_string(),
                endpoint: String::new(),
            },
            members: MemberTable::default(),
            by_name: BTreeSet::new(),
            tombstones: BTreeMap::new(),
            digest: Box::new([0; BUCKETS]),
            links: BTreeMap::new(),
            early: BTreeMap::new(),
            pending: Vec::new(),
            flush_at: None,
            next_sync: 0,
            last_tick: None,
            withhold_until: 0,
            suspects: 0,
            gone: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: MembershipStats::default(),
            rng: Rng::new(id ^ 0x6d65_6d62),
            left: false,
            events_on: false,
            gone_out: Vec::new(),
            declared_gone: false,
        }
    }

    pub fn settings(&self) -> &MembershipSettings {
        &self.settings
    }

    pub fn set_settings(&mut self, settings: MembershipSettings) {
        self.settings = settings;
    }

    pub fn stats(&self) -> MembershipStats {
        self.stats
    }

    /// This node's own record.
    pub fn me(&self) -> &MemberRecord {
        &self.me
    }

    /// The node started at `wall_ms` (the first time only: a restart is a
    /// new node with a new id).
    pub fn start(&mut self, wall_ms: u64) {
        if self.me.started == 0 {
            self.me.started = wall_ms.max(1);
        }
    }

    /// This node is dialled at `endpoint` from now on: a new incarnation
    /// tells the others, if any heard of it.
    pub fn set_endpoint(&mut self, endpoint: &str, now: u64) {
        if self.me.endpoint == endpoint {
            return;
        }
        self.me.endpoint = endpoint.to_string();
        if !self.links.is_empty() {
            self.me.incarnation += 1;
            self.spread(self.me.clone(), None, now);
        }
    }

    /// Members other than this node (every state).
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Members other than this node, by state: (alive, suspect, gone).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = self.members.len();
        (n - self.suspects - self.gone, self.suspects, self.gone)
    }

    /// Whether this node announced its leave.
    pub fn has_left(&self) -> bool {
        self.left
    }

    pub fn poll_send(&mut self) -> Option<(ConnId, Message)> {
        self.out.pop_front()
    }

    /// Members that became failed or left, or were replaced, since the
    /// last call (whatever `membership/events` says).
    pub fn take_gone(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.gone_out)
    }

    /// Whether another node declared this one failed or left since the
    /// last call.
    pub fn take_declared_gone(&mut self) -> bool {
        std::mem::take(&mut self.declared_gone)
    }

    /// Whether node `id` is failed, left, replaced or forgotten here.
    pub fn is_gone(&self, id: u64) -> bool {
        self.members
            .get(&id)
            .is_some_and(|m| m.record.state.is_gone())
            || self.tombstones.contains_key(&id)
    }

    /// Keeps changes of state for [`poll_event`](Self::poll_event) (off:
    /// none are kept).
    pub fn set_events(&mut self, on: bool) {
        self.events_on = on;
        if !on {
            self.events.clear();
        }
    }

    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let tick = self.last_tick.map(|t| t + TICK_MS);
        [tick, self.flush_at].into_iter().flatten().min()
    }

    /// A ZGP/2 link that carries membership opened: each end sends the
    /// other its own record and a digest of its table.
    pub fn link_up(&mut self, conn: ConnId, now: u64) {
        if self.left || self.links.contains_key(&conn) {
            return;
        }
        let peer = self.early.remove(&conn);
        self.links.insert(conn, Link { peer });
        if self.last_tick.is_none() {
            self.last_tick = Some(now);
            self.next_sync = now + self.settings.sync_interval_ms;
        }
        self.send_digest(conn, false);
    }

    /// A membership link closed. `lost`: not by a leave or a choice of
    /// either end (a reset, or silence past the link's timeout): the
    /// member at the other end is suspected, unless another link still
    /// joins this node to it, or this node was stalled. Returns the member
    /// it accused, if any.
    pub fn link_down(&mut self, conn: ConnId, end: LinkEnd, now: u64) -> Option<u64> {
        let lost = end != LinkEnd::Chosen;
        let Some(link) = self.links.remove(&conn) else {
            self.early.remove(&conn);
            return None;
        };
        let stalled = self.stalled(now);
        let peer = link.peer?;
        if !lost || self.links.values().any(|l| l.peer == Some(peer)) {
            return None;
        }
        let record = self.members.get(&peer).map(|m| m.record.to_record())?;
        if record.state.is_gone() || self.left {
            return None;
        }
        if stalled {
            self.stats.suspicions_withheld += 1;
            return None;
        }
        self.accuse(record, now);
        if end == LinkEnd::Reset {
            let settings = &self.settings;
            if let Some(s) = self
                .members
                .get_mut(&peer)
                .and_then(|m| m.suspicion.as_mut())
            {
                s.reset_seen = true;
                s.deadline = deadline(settings, s);
            }
        }
        Some(peer)
    }

    /// This node accuses the member of `record`: suspect, by this node.
    fn accuse(&mut self, record: MemberRecord, now: u64) {
        let accusation = MemberRecord {
            state: MemberState::Suspect,
            by: self.me.id,
            ..record
        };
        self.apply(accusation, None, now);
    }

    /// A dial to member `id` found no one (refused, or no answer in
    /// time). Its observers may all have failed with it (a host, a rack,
    /// one side of a cut): then no link loss accuses it, and this is the
    /// only evidence the network gets. An accusation as strong as a
    /// timed-out link's (it waits at least twice `suspect-min`), raised
    /// only against a member listed alive that no link of ours joins to
    /// (a link says it is there). A live member refutes it. Returns
    /// whether this node accused it.
    pub fn unreachable(&mut self, id: u64, now: u64) -> bool {
        if self.left || self.links.values().any(|l| l.peer == Some(id)) {
            return false;
        }
        let Some(record) = self.members.get(&id).map(|m| m.record.to_record()) else {
            return false;
        };
        if record.state != MemberState::Alive {
            return false;
        }
        if self.stalled(now) {
            self.stats.suspicions_withheld += 1;
            return false;
        }
        self.stats.unreachable += 1;
        self.accuse(record, now);
        true
    }

    /// Whether this node's own clock stalled lately: what it saw meanwhile
    /// says nothing of its peers.
    fn stalled(&mut self, now: u64) -> bool {
        if let Some(t) = self.last_tick {
            if now > t + STALL_TICKS * TICK_MS {
                self.note_stall(now, now - t);
            }
        }
        now < self.withhold_until
    }

    fn note_stall(&mut self, now: u64, late: u64) {
        if now >= self.withhold_until {
            self.stats.stalls += 1;
            // Those who lost this node meanwhile suspect it: it says it is
            // alive at once, at a new incarnation, before it hears of it
            // (it may have lost every link and hear late).
            if !self.left && !self.links.is_empty() {
                self.me.incarnation += 1;
                self.spread(self.me.clone(), None, now);
            }
        }
        // Peers that timed us out meanwhile close our links in the next
        // moments; they are not to blame.
        self.withhold_until = self
            .withhold_until
            .max(now + late.min(60_000) + 2 * TICK_MS);
        self.last_tick = Some(now);
    }

    /// This node leaves the network: every link is told at once.
    pub fn leave(&mut self, now: u64) {
        if self.left {
            return;
        }
        self.left = true;
        self.me.state = MemberState::Left;
        self.stats.leaves += 1;
        self.spread(self.me.clone(), None, now);
        self.flush();
    }

    /// A membership message arrived on `conn`.
    pub fn handle_message(&mut self, conn: ConnId, msg: Message, now: u64) {
        if self.left {
            return;
        }
        match msg {
            Message::Members(records) => {
                for r in records {
                    self.apply(r, Some(conn), now);
                }
            }
            Message::Digest {
                reply,
                me,
                bits,
                hashes,
            } => {
                self.stats.digests_received += 1;
                let peer = me.id;
                match self.links.get_mut(&conn) {
                    Some(link) if link.peer.is_none() => link.peer = Some(peer),
                    Some(_) => {}
                    None if self.early.len() < 1024 => {
                        self.early.insert(conn, peer);
                    }
                    None => {}
                }
                self.apply(me, Some(conn), now);
                let ours = self.folded(bits);
                let mismatched: Vec<usize> = (0..ours.len())
                    .filter(|&i| hashes.get(i) != Some(&ours[i]))
                    .collect();
                if !mismatched.is_empty() {
                    self.send_buckets(conn, bits, &mismatched);
                }
                if reply {
                    self.send_digest_bits(conn, false, bits);
                }
            }
        }
    }

    /// The timers: batches to send, suspicions that ran out, the periodic
    /// digest, members to forget.
    pub fn handle_timeout(&mut self, now: u64) {
        if let Some(t) = self.last_tick {
            if now > t + STALL_TICKS * TICK_MS {
                self.note_stall(now, now - t);
            }
        }
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush();
        }
        let Some(t) = self.last_tick else {
            return;
        };
        if now < t + TICK_MS {
            return;
        }
        self.last_tick = Some(now);
        self.run_suspicions(now);
        self.forget_gone(now);
        if self.links.is_empty() && self.suspects == 0 && self.gone == 0 {
            // Nothing left to watch: the clock stops until a link opens.
            // (A node that lost its last link still runs the suspicions it
            // raised: its peer may be the one that died.)
            self.last_tick = None;
            return;
        }
        if now >= self.next_sync && !self.left {
            self.next_sync = now + self.settings.sync_interval_ms;
            let conns: Vec<ConnId> = self
                .links
                .iter()
                .filter(|(_, l)| l.peer.is_some())
                .map(|(c, _)| *c)
                .collect();
            if !conns.is_empty() {
                let conn = conns[self.rng.index(conns.len())];
                self.send_digest(conn, true);
            }
        }
    }

    fn run_suspicions(&mut self, now: u64) {
        if self.suspects == 0 {
            return;
        }
        let due: Vec<u64> = self
            .members
            .values()
            .filter(|m| m.suspicion.as_ref().is_some_and(|s| s.deadline <= now))
            .map(|m| m.record.id)
            .collect();
        for id in due {
            let Some(m) = self.members.get(&id) else {
                continue;
            };
            let failed = MemberRecord {
                state: MemberState::Failed,
                by: self.me.id,
                ..m.record.to_record()
            };
            self.apply(failed, None, now);
        }
    }

    fn forget_gone(&mut self, now: u64) {
        self.tombstones.retain(|_, t| t.until > now);
        if self.gone == 0 {
            return;
        }
        let keep = self.settings.gone_keep_ms;
        let old: Vec<u64> = self
            .members
            .values()
            .filter(|m| m.record.state.is_gone() && now >= m.changed_at() + keep)
            .map(|m| m.record.id)
            .collect();
        for id in old {
            self.remove(id, now);
        }
    }

    /// Takes member `id` out of the table; its id is refused at its last
    /// incarnation for `tombstone-keep`.
    fn remove(&mut self, id: u64, now: u64) -> Option<Member> {
        let m = self.members.remove(&id)?;
        self.digest[bucket(id)] ^= record_hash(&m.record);
        if m.suspicion.is_some() {
            self.suspects -= 1;
        }
        if m.record.state.is_gone() {
            self.gone -= 1;
        }
        self.by_name.remove(&(name_hash(m.record.name()), id));
        self.tombstones.insert(
            id,
            Tombstone {
                incarnation: m.record.incarnation,
                until: now + self.settings.tombstone_keep_ms,
            },
        );
        if self.tombstones.len() > 4 * self.settings.max_members.max(1) {
            // The oldest go first.
            if let Some((&oldest, _)) = self.tombstones.iter().min_by_key(|(_, t)| t.until) {
                self.tombstones.remove(&oldest);
            }
        }
        Some(m)
    }

    /// Takes in a record from `from` (None: this node's own statement).
    fn apply(&mut self, r: MemberRecord, from: Option<ConnId>, now: u64) {
        if from.is_some() {
            self.stats.records_in += 1;
        }
        if r.id == self.me.id {
            self.about_me(r, now);
            return;
        }
        if let Some(t) = self.tombstones.get(&r.id) {
            if r.incarnation <= t.incarnation || r.state != MemberState::Alive {
                self.stats.records_refused += 1;
                return;
            }
            self.tombstones.remove(&r.id);
        }
        let Some(m) = self.members.get_mut(&r.id) else {
            self.add(r, from, now);
            return;
        };
        m.heard = tenths(now);
        if r.state == MemberState::Suspect
            && m.record.state == MemberState::Suspect
            && r.incarnation == m.record.incarnation
        {
            self.confirm(r, from, now);
            return;
        }
        if !overrides(&r, &m.record) {
            self.stats.records_stale += 1;
            // The sender is behind: tell it what we know, if it matters.
            if let Some(conn) = from {
                if overrides(&m.record, &r)
                    && (m.record.incarnation > r.incarnation || m.record.state.is_gone())
                {
                    let ours = m.record.to_record();
                    self.queue_to(conn, ours);
                }
            }
            return;
        }
        self.change(r, from, now);
    }

    /// A record about this node: a suspicion or a failure is refuted with a
    /// higher incarnation.
    fn about_me(&mut self, r: MemberRecord, now: u64) {
        if self.left {
            return;
        }
        let accused = r.state != MemberState::Alive && r.incarnation >= self.me.incarnation;
        let older_life = r.state == MemberState::Alive && r.incarnation > self.me.incarnation;
        if accused || older_life {
            if r.state.is_gone() {
                self.declared_gone = true;
            }
            self.me.incarnation = r.incarnation + 1;
            self.stats.refutations += 1;
            self.spread(self.me.clone(), None, now);
        }
    }

    fn add(&mut self, r: MemberRecord, from: Option<ConnId>, now: u64) {
        if self.members.len() >= self.settings.max_members {
            self.stats.records_dropped += 1;
            return;
        }
        if r.state == MemberState::Alive {
            self.replace_former_selves(&r, now);
        }
        let id = r.id;
        self.digest[bucket(id)] ^= record_hash(&r);
        self.by_name.insert((name_hash(&r.name), id));
        let mut m = Member::new(Stored::of(&r), now);
        if r.state.is_gone() {
            self.gone += 1;
            self.gone_out.push(id);
        }
        if r.state == MemberState::Suspect {
            m.suspicion = Some(self.new_suspicion(&r, now));
            self.suspects += 1;
        }
        self.members.insert(m);
        if !r.state.is_gone() {
            // A member first heard of as gone was never seen here: no news.
            self.event(&r);
        }
        self.spread(r, from, now);
    }

    /// A member that starts under a name takes the place of its former
    /// selves: members of that name that are gone, or alive at the same
    /// endpoint, and started earlier.
    fn replace_former_selves(&mut self, r: &MemberRecord, now: u64) {
        let h = name_hash(&r.name);
        let former: Vec<u64> = self
            .by_name
            .range((h, 0)..=(h, u64::MAX))
            .filter_map(|(_, id)| self.members.get(id))
            .filter(|m| {
                m.record.name() == r.name
                    && m.record.started < r.started
                    && (m.record.state.is_gone()
                        || (!r.endpoint.is_empty() && m.record.endpoint() == r.endpoint))
            })
            .map(|m| m.record.id)
            .collect();
        for id in former {
            if let Some(m) = self.remove(id, now) {
                self.stats.replaced += 1;
                if !m.record.state.is_gone() {
                    self.gone_out.push(id);
                    self.event(&MemberRecord {
                        state: MemberState::Left,
                        ..m.record.to_record()
                    });
                }
            }
        }
    }

    /// Another accuser of a member already suspected at that incarnation:
    /// the wait gets shorter, and the others hear of the accuser while
    /// their count is short.
    fn confirm(&mut self, r: MemberRecord, from: Option<ConnId>, now: u64) {
        let me = self.me.id;
        let Some(m) = self.members.get_mut(&r.id) else {
            return;
        };
        let Some(s) = m.suspicion.as_mut() else {
            return;
        };
        if s.accusers.contains(&r.by) || s.accusers.len() >= MAX_ACCUSERS {
            self.stats.records_stale += 1;
            return;
        }
        s.accusers.push(r.by);
        if r.by == me {
            s.observer = true;
        }
        let short = s.accusers.len() <= self.settings.confirmations as usize + 1;
        s.deadline = deadline(&self.settings, s);
        if short {
            self.spread(r, from, now);
        }
    }

    fn new_suspicion(&mut self, r: &MemberRecord, now: u64) -> Box<Suspicion> {
        let max = self.settings.suspect_max_ms;
        let mut s = Suspicion {
            since: now,
            accusers: vec![r.by],
            observer: r.by == self.me.id,
            reset_seen: false,
            fallback: max + self.rng.below(max.max(1)),
            deadline: 0,
        };
        s.deadline = deadline(&self.settings, &s);
        Box::new(s)
    }

    /// A record overriding what the table held for its member.
    fn change(&mut self, r: MemberRecord, from: Option<ConnId>, now: u64) {
        let suspicion = (r.state == MemberState::Suspect).then(|| self.new_suspicion(&r, now));
        let Some(m) = self.members.get_mut(&r.id) else {
            return;
        };
        self.digest[bucket(r.id)] ^= record_hash(&m.record) ^ record_hash(&r);
        let was = m.record.state;
        if was.is_gone() {
            self.gone -= 1;
        }
        if r.state.is_gone() {
            self.gone += 1;
            if !was.is_gone() {
                self.gone_out.push(r.id);
            }
        }
        if m.suspicion.is_some() {
            self.suspects -= 1;
        }
        m.suspicion = suspicion;
        if m.suspicion.is_some() {
            self.suspects += 1;
        }
        if m.record.name() != r.name {
            self.by_name.remove(&(name_hash(m.record.name()), r.id));
            self.by_name.insert((name_hash(&r.name), r.id));
        }
        m.record = Stored::of(&r);
        m.changed = tenths(now);
        match r.state {
            MemberState::Suspect => self.stats.suspicions += 1,
            MemberState::Failed => self.stats.failures += 1,
            _ => {}
        }
        if was != r.state || r.state == MemberState::Alive {
            self.event(&r);
        }
        self.spread(r, from, now);
    }

    fn event(&mut self, r: &MemberRecord) {
        if !self.events_on {
            return;
        }
        self.events.push_back(MemberEvent {
            id: r.id,
            name: r.name.clone(),
            state: r.state,
            endpoint: r.endpoint.clone(),
        });
    }

    /// Queues a record for every link but the one it came on.
    fn spread(&mut self, r: MemberRecord, from: Option<ConnId>, now: u64) {
        self.pending.push((r, from));
        if self.flush_at.is_none() {
            self.flush_at = Some(now + self.settings.batch_ms);
        }
    }

    /// Sends what waits to be spread, in frames of at most
    /// [`FRAME_BUDGET`] bytes.
    fn flush(&mut self) {
        self.flush_at = None;
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            let records = pending
                .iter()
                .filter(|(_, from)| *from != Some(conn))
                .map(|(r, _)| r.clone());
            self.send_records(conn, records);
        }
    }

    fn queue_to(&mut self, conn: ConnId, r: MemberRecord) {
        self.send_records(conn, std::iter::once(r));
    }

    fn send_records(&mut self, conn: ConnId, records: impl Iterator<Item = MemberRecord>) {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for r in records {
            let len = r.encoded_len();
            if !batch.is_empty() && (bytes + len > FRAME_BUDGET || batch.len() == MAX_RECORDS) {
                self.stats.records_out += batch.len() as u64;
                self.out
                    .push_back((conn, Message::Members(std::mem::take(&mut batch))));
                bytes = 0;
            }
            bytes += len;
            batch.push(r);
        }
        if !batch.is_empty() {
            self.stats.records_out += batch.len() as u64;
            self.out.push_back((conn, Message::Members(batch)));
        }
    }

    /// The digest's size for this table: about eight records a bucket.
    fn digest_bits(&self) -> u8 {
        let n = self.members.len() + 1;
        let mut bits = 0u8;
        while bits < MAX_DIGEST_BITS && (8usize << bits) < n {
            bits += 1;
        }
        bits
    }

    /// The digest folded to 2^`bits` buckets, this node's record in it.
    fn folded(&self, bits: u8) -> Vec<u64> {
        let bits = bits.min(MAX_DIGEST_BITS);
        let mut out = vec![0u64; 1 << bits];
        let shift = MAX_DIGEST_BITS - bits;
        for (i, h) in self.digest.iter().enumerate() {
            out[i >> shift] ^= h;
        }
        out[bucket(self.me.id) >> shift] ^= record_hash(&self.me);
        out
    }

    fn send_digest(&mut self, conn: ConnId, reply: bool) {
        let bits = self.digest_bits();
        self.send_digest_bits(conn, reply, bits);
    }

    fn send_digest_bits(&mut self, conn: ConnId, reply: bool, bits: u8) {
        self.stats.digests_sent += 1;
        let hashes = self.folded(bits);
        self.out.push_back((
            conn,
            Message::Digest {
                reply,
                me: self.me.clone(),
                bits,
                hashes,
            },
        ));
    }

    /// Sends this node's records of the given buckets (folded to `bits`).
    fn send_buckets(&mut self, conn: ConnId, bits: u8, buckets: &[usize]) {
        let shift = MAX_DIGEST_BITS - bits.min(MAX_DIGEST_BITS);
        let wanted = |id: u64| buckets.binary_search(&(bucket(id) >> shift)).is_ok();
        let mut records: Vec<MemberRecord> = self
            .members
            .values()
            .filter(|m| wanted(m.record.id))
            .map(|m| m.record.to_record())
            .collect();
        if wanted(self.me.id) {
            records.push(self.me.clone());
        }
        self.send_records(conn, records.into_iter());
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;

/// When a suspicion runs out: `suspect-max` for one accuser, falling as a
/// logarithm of the confirmations to `suspect-min` (Lifeguard's rule); a
/// node that did not accuse waits its fallback more.
fn deadline(s: &MembershipSettings, sus: &Suspicion) -> u64 {
    let min = s.suspect_min_ms.min(s.suspect_max_ms) as f64;
    let max = s.suspect_max_ms as f64;
    let k = f64::from(s.confirmations.max(1));
    let c = (sus.accusers.len().saturating_sub(1)) as f64;
    let mut wait = (max - (max - min) * (c + 1.0).ln() / (k + 1.0).ln()).max(min);
    if sus.observer && !sus.reset_seen {
        wait = wait.max(2.0 * min);
    }
    sus.since + wait as u64 + if sus.observer { 0 } else { sus.fallback }
}
