//! The broadcast tree, in the manner of Plumtree (Leitao, Pereira,
//! Rodrigues, SRDS 2007): every ZGP/2 link is *eager* (new writes are
//! pushed on it) or *lazy* (they are only announced, in batches). A link
//! that brings a write we already hold becomes lazy (PRUNE), so the eager
//! links thin out to a spanning tree; a write announced but not received
//! within a timeout is pulled (GRAFT) from its announcer, whose link becomes
//! eager again: the tree repairs itself.
//!
//! Writes from many senders at once overlap on the tree: a cycle may then
//! bring a duplicate of one write on a link just as it brings the first copy
//! of another, and pruning on every duplicate cut cycles twice, below a
//! spanning tree (many pulls, each pulled write sent on again). So a link
//! that brought the first copy of a pushed write within the wait before a
//! pull ([`Tree::graft_timeout`]) is not pruned by a duplicate: it is
//! carrying writes the node has no other eager way to get yet. Unless the
//! duplicates keep coming with no first copy between: the
//! [`HELD_DUPLICATES_MAX`]th in a row prunes anyway (a cycle of eager links
//! that writes keep crossing would otherwise never be cut).
//!
//! The wait before a pull is short when the tree is idle (eight round
//! trips of the links: a broken tree is repaired at once), but a tree that
//! carries many writes at once is slow, not broken: each hop queues, and
//! announcements on short lazy paths overtake the pushes. Pulling then
//! would make lazy links eager all over, whose duplicates then cut the
//! tree. So while pushes keep coming (one within a quarter of the
//! [`Tree::patience`]), an announced write waits for its push up to the
//! patience (twice `overlay/graft-timeout`). Simulator, 1,000 nodes, 200
//! writes 20 ms apart: 1.31 payload frames per node per write and 38
//! pulls per write before, 1.00 and none after; real sockets, 256 nodes,
//! a burst of 1,000 writes: 2.6-2.9 frames per node per write before, 1.05
//! to 1.13 after (docs/benchmarks.md).
//!
//! Both ends of a lazy link usually get a write at about the same time, and
//! both would announce it to the other. So for each write one end *leads*
//! (the driver draws which from the write's id and which end dialled: both
//! ends draw the same) and announces after the batch interval; the other
//! *follows*, a few round trips later, and only if the leader's
//! announcement has not come by then: an announcement that arrives for a
//! write still waiting to be announced on that link takes it back.
//!
//! A write is named by its key and version (`WriteId`), and whether one is
//! held is the store's answer (a newer version of the key counts): there is
//! no cache of message ids to grow.
//!
//! A pure state machine like the views: link events, announcements and the
//! time go in, [`TreeAction`]s come out. Links are the driver's connection
//! ids. Plain (ZGP v1) links are never in the tree: they get every write.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::ConnId;
use crate::wire::overlay::{write_id_len, Message, WriteId, MAX_ANNOUNCED};

/// Duplicates in a row, with no first copy between, after which a link is
/// pruned even within the wait (simulator, 200 writes 20 ms apart at 1,000
/// nodes: payload 1.43 frames per node per write without, 1.37 at 4, 1.36
/// at 5, 1.40 at 8; pulls per write 41 without and at 8, 61 at 4, 52 at
/// 5).
pub const HELD_DUPLICATES_MAX: u32 = 8;

/// The tree's settings (`overlay/*`; `docs/overlay.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSettings {
    /// Announcements wait this long to be sent in one IHAVE per link.
    pub announce_interval_ms: u64,
    /// A write announced and not received within this is pulled, at
    /// most: the tree waits eight round trips of its links (at least
    /// `graft_timeout_min_ms`), so on a LAN a broken tree is repaired in
    /// milliseconds. (Waiting for a multiple of the lag seen between
    /// announcements and pushes instead was tried: the lags beyond the
    /// wait are never seen, the wait shrinks, and on slow links the
    /// simulator pulled twice as often for writes on their way.)
    pub graft_timeout_ms: u64,
    /// The shortest wait before a pull, whatever the lag observed.
    pub graft_timeout_min_ms: u64,
    /// Then the next announcer is asked after this.
    pub graft_retry_ms: u64,
    /// Most writes waited for at once; announcements beyond are dropped
    /// (set reconciliation brings those writes).
    pub max_missing: usize,
    /// An IHAVE is sent early once its batch holds this many bytes.
    pub max_batch_bytes: usize,
    /// How long a new write is left to the tree: a reconciliation on a
    /// link older than this neither sends nor asks for a write younger
    /// than this (it is on its way; sending it too would race the tree
    /// and cost a duplicate). The next round brings what the tree missed.
    pub sync_holdoff_ms: u64,
    /// How often the tree's root counts its number up (`tree_root.rs`);
    /// 0: no root, every link follows Plumtree's rules alone.
    pub root_interval_ms: u64,
    /// A root whose number has not advanced for this long is gone.
    pub root_timeout_ms: u64,
}

impl Default for TreeSettings {
    fn default() -> TreeSettings {
        TreeSettings {
            announce_interval_ms: 25,
            graft_timeout_ms: 400,
            graft_timeout_min_ms: 10,
            graft_retry_ms: 200,
            max_missing: 100_000,
            max_batch_bytes: 16 << 10,
            sync_holdoff_ms: 2_000,
            root_interval_ms: 5_000,
            root_timeout_ms: 15_000,
        }
    }
}

/// Whether writes are pushed on a link or announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Eager,
    Lazy,
}

/// What the driver must send for the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeAction {
    Send { conn: ConnId, msg: Message },
}

/// Counters of the tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Write ids announced, and the IHAVE frames they took.
    pub announced: u64,
    pub announce_frames: u64,
    /// Write ids pulled, and GRAFT frames sent.
    pub grafted: u64,
    pub graft_frames: u64,
    pub prunes_sent: u64,
    pub prunes_received: u64,
    /// Duplicates that did not prune their link: it had brought a first
    /// copy within the wait before a pull.
    pub prunes_held: u64,
    /// Links made eager again by a GRAFT (ours or the peer's).
    pub repairs: u64,
    /// Announcements dropped because `max_missing` writes were waited for.
    pub missing_dropped: u64,
    /// Announcements taken back before they went: the link announced the
    /// write to us first.
    pub unannounced: u64,
    /// Duplicates that came on a link of the root's tree (kept eager: the
    /// first copy came by a repair, which is pruned instead).
    pub tree_duplicates: u64,
}

#[derive(Debug)]
struct Missing {
    clock: u64,
    origin: u64,
    /// When it was last pulled: its arrival then gives a round trip of the
    /// link it was pulled on.
    grafted_at: Option<u64>,
    /// When it was first announced.
    since: u64,
    /// Who announced it, in order: asked one after the other.
    announcers: VecDeque<ConnId>,
    /// The links that announced this very version (older ones may have
    /// announced older versions of the key).
    have_it: Vec<ConnId>,
    graft_at: u64,
}

#[derive(Debug, Default)]
struct Batch {
    ids: Vec<WriteId>,
    bytes: usize,
}

/// The broadcast tree of one node.
#[derive(Debug, Default)]
pub struct Tree {
    settings: TreeSettings,
    links: BTreeMap<ConnId, Mode>,
    /// What the tree's root says of each link (`tree_root.rs`): `true`, a
    /// link to the parent or a child, which pushes; `false`, one that
    /// announces. Links it says nothing of follow Plumtree's rules alone.
    guide: BTreeMap<ConnId, bool>,
    /// Links the root calls lazy that this node grafted (a repair): pruned
    /// once the root's tree brings writes again.
    repair_links: BTreeSet<ConnId>,
    /// When a duplicate on a link off the root's tree last made this node
    /// send PRUNE on it.
    pruned_at: BTreeMap<ConnId, u64>,
    /// When each link last brought the first copy of a pushed write.
    first_at: BTreeMap<ConnId, u64>,
    /// Pushed duplicates each link brought since its last first copy.
    dups: BTreeMap<ConnId, u32>,
    /// Announcements this node leads, sent after the batch interval.
    batches: BTreeMap<ConnId, Batch>,
    flush_at: Option<u64>,
    /// Announcements this node follows, sent later unless the link's
    /// other end announces the write first.
    following: BTreeMap<ConnId, Batch>,
    follow_at: Option<u64>,
    /// The last write received that had been announced to us, and the
    /// links that announced it: they have it, it is not announced back.
    just_received: Option<(WriteId, Vec<ConnId>)>,
    /// Writes announced but not held, by key (only the newest matters).
    missing: BTreeMap<String, Missing>,
    next_graft: Option<u64>,
    /// Smoothed round trip (ms) of this node's links.
    rtt_ms: Option<f64>,
    /// When a pushed write last came on any link.
    last_push_at: Option<u64>,
    out: VecDeque<TreeAction>,
    pub stats: TreeStats,
}

impl Tree {
    pub fn new(settings: TreeSettings) -> Tree {
        Tree {
            settings,
            ..Tree::default()
        }
    }

    pub fn settings(&self) -> &TreeSettings {
        &self.settings
    }

    pub fn set_settings(&mut self, settings: TreeSettings) {
        self.settings = settings;
    }

    /// A ZGP/2 link opened: eager until it brings a duplicate.
    pub fn link_up(&mut self, conn: ConnId) {
        self.links.insert(conn, Mode::Eager);
    }

    /// A link closed. Where it cut the tree, announcements of the writes
    /// that no longer arrive are grafted (making another link eager only
    /// where one is needed: promoting one at once measured 35 % more
    /// pushes in the simulator, for links that churn).
    pub fn link_down(&mut self, conn: ConnId) {
        self.links.remove(&conn);
        self.guide.remove(&conn);
        self.repair_links.remove(&conn);
        self.pruned_at.remove(&conn);
        self.first_at.remove(&conn);
        self.dups.remove(&conn);
        self.batches.remove(&conn);
        self.following.remove(&conn);
        for m in self.missing.values_mut() {
            m.announcers.retain(|&c| c != conn);
            m.have_it.retain(|&c| c != conn);
        }
    }

    /// What the tree's root says of `conn` (`None`: nothing). A link of
    /// the root's tree pushes (again, if its other end had pruned it
    /// while the two disagreed); a link that becomes one of the others
    /// announces from then on. Both ends learn the same from the root's
    /// adverts, so neither sends GRAFT or PRUNE for it.
    pub fn guide(&mut self, conn: ConnId, tree_link: Option<bool>) {
        let Some(mode) = self.links.get_mut(&conn) else {
            return;
        };
        let Some(tree_link) = tree_link else {
            self.guide.remove(&conn);
            return;
        };
        let before = self.guide.insert(conn, tree_link);
        if tree_link {
            *mode = Mode::Eager;
            self.repair_links.remove(&conn);
        } else if before != Some(false) {
            // The other end may push on it still (a GRAFT of this node's
            // from before the root spoke): told to stop.
            self.prune(conn);
        }
    }

    /// How writes go on `conn` (`None`: not a tree link).
    pub fn mode(&self, conn: ConnId) -> Option<Mode> {
        self.links.get(&conn).copied()
    }

    /// (eager, lazy) link counts.
    pub fn counts(&self) -> (usize, usize) {
        let eager = self.links.values().filter(|m| **m == Mode::Eager).count();
        (eager, self.links.len() - eager)
    }

    /// Writes waited for.
    pub fn missing_len(&self) -> usize {
        self.missing.len()
    }

    pub fn poll_action(&mut self) -> Option<TreeAction> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        [self.flush_at, self.follow_at, self.next_graft]
            .into_iter()
            .flatten()
            .min()
    }

    /// A new write goes to the lazy link `conn` as an announcement: after
    /// the batch interval if this end `leads` it on the link, else a few
    /// round trips later, unless the other end announces it first.
    pub fn announce(&mut self, conn: ConnId, id: WriteId, leads: bool, now: u64) {
        if let Some((w, announcers)) = &self.just_received {
            if *w == id && announcers.contains(&conn) {
                // That end announced it to us: it has it.
                self.stats.unannounced += 1;
                return;
            }
        }
        let (batches, at, wait) = if leads {
            let wait = self.settings.announce_interval_ms;
            (&mut self.batches, &mut self.flush_at, wait)
        } else {
            let wait = self.follow_wait();
            (&mut self.following, &mut self.follow_at, wait)
        };
        let batch = batches.entry(conn).or_default();
        batch.bytes += write_id_len(id.key.len());
        batch.ids.push(id);
        self.stats.announced += 1;
        if batch.bytes >= self.settings.max_batch_bytes || batch.ids.len() >= MAX_ANNOUNCED {
            let batch = batches.remove(&conn).unwrap_or_default();
            self.send_batch(conn, batch);
        } else if at.is_none() {
            *at = Some(now + wait);
        }
    }

    /// How long an announcement this node follows waits: the batch
    /// interval and two round trips of the links (time for the leader's
    /// to arrive).
    pub fn follow_wait(&self) -> u64 {
        let interval = self.settings.announce_interval_ms;
        let rtt = self.rtt_ms.map_or(interval, |r| r.round() as u64);
        interval + 2 * rtt.min(self.settings.graft_timeout_ms)
    }

    /// A write arrived that we now hold (from any link, or by
    /// reconciliation): it is no longer waited for.
    pub fn received(&mut self, key: &str, clock: u64, origin: u64, now: u64) {
        if let Some(m) = self.missing.get(key) {
            if (clock, origin) >= (m.clock, m.origin) {
                if let Some(at) = m.grafted_at {
                    self.observe_rtt(now.saturating_sub(at));
                }
                if let Some(m) = self.missing.remove(key) {
                    let same = (clock, origin) == (m.clock, m.origin);
                    let id = WriteId {
                        key: key.to_string(),
                        clock,
                        origin,
                    };
                    self.just_received = same.then_some((id, m.have_it));
                }
            }
        }
    }

    /// A round trip measured on one of the node's links.
    pub fn observe_rtt(&mut self, rtt_ms: u64) {
        self.rtt_ms = Some(smooth(self.rtt_ms, rtt_ms));
    }

    /// How long an announced write may wait for its push, at most, while
    /// pushes keep coming (the tree works, slowly): twice the longest wait
    /// of an idle tree (`overlay/graft-timeout`).
    pub fn patience(&self) -> u64 {
        (2 * self.settings.graft_timeout_ms).max(self.graft_timeout())
    }

    /// How long an announced write may take before it is pulled.
    pub fn graft_timeout(&self) -> u64 {
        let s = &self.settings;
        let adaptive = self
            .rtt_ms
            .map_or(s.graft_timeout_ms, |rtt| (rtt * 8.0).round() as u64);
        adaptive.clamp(
            s.graft_timeout_min_ms.min(s.graft_timeout_ms),
            s.graft_timeout_ms,
        )
    }

    /// A pushed write came on `conn` and was new here: the link carries
    /// writes that reach the node first by it.
    pub fn first_push(&mut self, conn: ConnId, now: u64) {
        self.last_push_at = Some(now);
        if self.links.contains_key(&conn) {
            self.first_at.insert(conn, now);
            self.dups.remove(&conn);
        }
    }

    /// A write we already held came pushed on `conn`: the link is
    /// redundant for pushes, unless it brought the first copy of a pushed
    /// write within the wait before a pull (writes overlap: it may be the
    /// only eager way for others) and has not brought
    /// [`HELD_DUPLICATES_MAX`] duplicates since.
    pub fn duplicate(&mut self, conn: ConnId, now: u64) {
        self.last_push_at = Some(now);
        match self.guide.get(&conn) {
            Some(true) => {
                // The root's tree brings writes again: the repairs and
                // other links off it that overtook it lately are no longer
                // needed.
                self.stats.tree_duplicates += 1;
                let holdoff = self.graft_timeout();
                let overtook: Vec<ConnId> = self
                    .first_at
                    .iter()
                    .filter(|&(c, &at)| {
                        self.guide.get(c) == Some(&false) && now.saturating_sub(at) < holdoff
                    })
                    .map(|(&c, _)| c)
                    .collect();
                let repairs = std::mem::take(&mut self.repair_links);
                for c in overtook.into_iter().chain(repairs) {
                    self.first_at.remove(&c);
                    self.prune(c);
                }
                return;
            }
            Some(false) => {
                // Pushed on a link off the root's tree (a repair, or an
                // end that has not heard the root yet): told to stop, once
                // per wait (more pushes may be on their way meanwhile).
                let wait = self.graft_timeout();
                let told = self.pruned_at.get(&conn);
                if told.is_none_or(|&at| now.saturating_sub(at) >= wait) {
                    self.pruned_at.insert(conn, now);
                    self.prune(conn);
                }
                return;
            }
            None => {}
        }
        if self.links.get(&conn) == Some(&Mode::Eager) {
            let holdoff = self.graft_timeout();
            let dups = self.dups.entry(conn).or_default();
            *dups += 1;
            let recent = self
                .first_at
                .get(&conn)
                .is_some_and(|&at| now.saturating_sub(at) < holdoff);
            if recent && *dups < HELD_DUPLICATES_MAX {
                self.stats.prunes_held += 1;
                return;
            }
            self.prune(conn);
        }
    }

    /// Makes `conn` lazy at both ends.
    fn prune(&mut self, conn: ConnId) {
        if !self.links.contains_key(&conn) {
            return;
        }
        self.dups.remove(&conn);
        self.repair_links.remove(&conn);
        self.links.insert(conn, Mode::Lazy);
        self.stats.prunes_sent += 1;
        self.out.push_back(TreeAction::Send {
            conn,
            msg: Message::Prune,
        });
    }

    /// Whether this write of `key` is one we pulled and wait for: it
    /// arrives in answer to our GRAFT, and is pushed on from here (it
    /// repairs the tree below this node).
    pub fn pulled(&self, key: &str, clock: u64, origin: u64) -> bool {
        self.missing
            .get(key)
            .is_some_and(|m| m.grafted_at.is_some() && (clock, origin) >= (m.clock, m.origin))
    }

    /// The peer on `conn` pruned the link. A link of the root's tree
    /// keeps pushing: the peer pruned it on an older word of the root
    /// (while one of the two was detached, say), and both ends take it as
    /// a tree link now.
    pub fn pruned(&mut self, conn: ConnId) {
        if let Some(m) = self.links.get_mut(&conn) {
            self.stats.prunes_received += 1;
            if self.guide.get(&conn) != Some(&true) {
                *m = Mode::Lazy;
            }
        }
    }

    /// The peer on `conn` grafted the link: pushes go on it again (the
    /// driver sends the writes it asked for).
    pub fn grafted(&mut self, conn: ConnId) {
        if let Some(m) = self.links.get_mut(&conn) {
            if *m == Mode::Lazy {
                self.stats.repairs += 1;
            }
            *m = Mode::Eager;
        }
    }

    /// Writes announced on `conn`; `held` says which we have (a version at
    /// least as new of the key).
    pub fn announced(
        &mut self,
        conn: ConnId,
        ids: Vec<WriteId>,
        held: impl Fn(&WriteId) -> bool,
        now: u64,
    ) {
        if !self.links.contains_key(&conn) {
            return;
        }
        for id in ids {
            if held(&id) {
                // The peer has it: an announcement of it still waiting
                // for this link would tell it nothing.
                self.unannounce(conn, &id);
                continue;
            }
            if let Some(m) = self.missing.get_mut(&id.key) {
                if (id.clock, id.origin) > (m.clock, m.origin) {
                    (m.clock, m.origin) = (id.clock, id.origin);
                    m.have_it.clear();
                }
                if (id.clock, id.origin) == (m.clock, m.origin) && !m.have_it.contains(&conn) {
                    m.have_it.push(conn);
                }
                if !m.announcers.contains(&conn) {
                    m.announcers.push_back(conn);
                }
                continue;
            }
            if self.missing.len() >= self.settings.max_missing {
                self.stats.missing_dropped += 1;
                continue;
            }
            let graft_at = now + self.graft_timeout();
            self.missing.insert(
                id.key,
                Missing {
                    since: now,
                    clock: id.clock,
                    origin: id.origin,
                    announcers: VecDeque::from([conn]),
                    have_it: vec![conn],
                    grafted_at: None,
                    graft_at,
                },
            );
            self.next_graft = Some(self.next_graft.map_or(graft_at, |t| t.min(graft_at)));
        }
    }

    /// Sends the announcements that are due and pulls the writes waited
    /// for too long, one GRAFT per announcer.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush_at = None;
            for (conn, batch) in std::mem::take(&mut self.batches) {
                self.send_batch(conn, batch);
            }
        }
        if self.follow_at.is_some_and(|t| t <= now) {
            self.follow_at = None;
            for (conn, batch) in std::mem::take(&mut self.following) {
                self.send_batch(conn, batch);
            }
        }
        if self.next_graft.is_none_or(|t| t > now) {
            return;
        }
        let mut grafts: BTreeMap<ConnId, Vec<WriteId>> = BTreeMap::new();
        let mut next: Option<u64> = None;
        let retry = self.settings.graft_retry_ms;
        let wait = self.graft_timeout();
        let patience = self.patience();
        // Pushes came lately: the tree works, if slowly (many writes in
        // flight, a busy node). A write announced but not yet pushed is
        // then most likely on its way down the tree: it is pulled only
        // once the patience is out, or once the pushes stop.
        let busy = self.last_push_at.is_some_and(|t| now < t + patience / 4);
        self.missing.retain(|key, m| {
            if m.graft_at > now {
                next = Some(next.map_or(m.graft_at, |t| t.min(m.graft_at)));
                return true;
            }
            if busy && m.grafted_at.is_none() && now < m.since + patience {
                m.graft_at = (now + wait.max(patience / 8)).min(m.since + patience);
                next = Some(next.map_or(m.graft_at, |t| t.min(m.graft_at)));
                return true;
            }
            let Some(conn) = m.announcers.pop_front() else {
                // Nobody left to ask: reconciliation brings it.
                return false;
            };
            grafts.entry(conn).or_default().push(WriteId {
                key: key.clone(),
                clock: m.clock,
                origin: m.origin,
            });
            m.grafted_at = Some(now);
            m.graft_at = now + retry;
            next = Some(next.map_or(m.graft_at, |t| t.min(m.graft_at)));
            true
        });
        self.next_graft = next;
        for (conn, ids) in grafts {
            if self.guide.get(&conn) == Some(&false) {
                // A link off the root's tree: it pushes to this node until
                // the tree brings writes again; this end stays lazy.
                if self.repair_links.insert(conn) {
                    self.stats.repairs += 1;
                }
            } else if self.links.insert(conn, Mode::Eager) == Some(Mode::Lazy) {
                self.stats.repairs += 1;
            }
            self.stats.grafted += ids.len() as u64;
            for chunk in ids.chunks(MAX_ANNOUNCED) {
                self.stats.graft_frames += 1;
                self.out.push_back(TreeAction::Send {
                    conn,
                    msg: Message::Graft(chunk.to_vec()),
                });
            }
        }
    }

    /// Takes `id` out of the announcements waiting for `conn`, if there.
    fn unannounce(&mut self, conn: ConnId, id: &WriteId) {
        for batches in [&mut self.batches, &mut self.following] {
            if let Some(batch) = batches.get_mut(&conn) {
                if let Some(i) = batch.ids.iter().position(|w| w == id) {
                    batch.bytes -= write_id_len(id.key.len());
                    batch.ids.swap_remove(i);
                    self.stats.announced -= 1;
                    self.stats.unannounced += 1;
                }
            }
        }
    }

    fn send_batch(&mut self, conn: ConnId, batch: Batch) {
        if !batch.ids.is_empty() && self.links.contains_key(&conn) {
            self.stats.announce_frames += 1;
            self.out.push_back(TreeAction::Send {
                conn,
                msg: Message::IHave(batch.ids),
            });
        }
    }
}

/// Whether the end of a lazy link that `dialled` it (or the other) leads
/// the announcement of `id` on it: one bit drawn from the write's id, the
/// same at both ends, so each end leads about half the writes.
pub fn leads(id: &WriteId, dialled: bool) -> bool {
    let mixed = (id.clock ^ id.origin.rotate_left(29) ^ key_bits(&id.key))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 63 == 1) == dialled
}

fn key_bits(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// An exponentially weighted average (weight 1/8 for the new sample).
fn smooth(avg: Option<f64>, sample: u64) -> f64 {
    let sample = sample as f64;
    avg.map_or(sample, |a| a + (sample - a) / 8.0)
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
