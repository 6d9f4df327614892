//! Writes: from the application and from peers (ZGP v1 and ZGP/2),
//! checked, merged into the store, told to the application and forwarded.

use super::*;

impl Engine {
    /// The application publishes a tuple, optionally with a time to live:
    /// stored if new, delivered back to the application (as CZMQ does) and
    /// forwarded to every peer. Publishing the same value again refreshes
    /// its version and its time to live.
    pub fn publish(&mut self, key: &str, value: &str, ttl_ms: Option<u64>, now: Now) {
        self.publish_with(key, value, ttl_ms, false, now);
    }

    /// As [`publish`](Self::publish); `ephemeral`: the tuple is tied to
    /// this node's life, and deleted on every node when this node leaves
    /// or is declared failed (`EPHEMERAL key value`).
    pub fn publish_with(
        &mut self,
        key: &str,
        value: &str,
        ttl_ms: Option<u64>,
        ephemeral: bool,
        now: Now,
    ) {
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
            if ttl_ms.is_none()
                && old.is_some_and(|t| t.is_live() && t.value == value && t.ephemeral == ephemeral)
            {
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
                ephemeral,
            })
        });
        if let Some((outcome, entry, w)) = merged {
            self.applied(key, w, outcome, entry, Arrival::LOCAL, now);
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
            ephemeral: false,
        };
        self.apply(key, w, Arrival::LOCAL, now);
    }

    pub(super) fn stamp(&mut self, now: Now) -> Version {
        Version {
            clock: self.hlc.now(now.wall_ms),
            origin: self.id,
        }
    }

    /// A plain ZGP PUBLISH (from CZMQ or any v1 peer): it carries no
    /// version, so it is taken as a new write made now, unless it is a
    /// stale copy of what we hold.
    pub(super) fn accept_v1(&mut self, key: &str, value: &str, ttl: u32, from: ConnId, now: Now) {
        self.count_tuple_in(from, now);
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
            ephemeral: false,
        };
        // A plain peer's write enters the tree here: pushed on.
        let arrival = Arrival {
            from: Some(from),
            raw: None,
            pushed: true,
        };
        self.apply(key, w, arrival, now);
    }

    /// Whether a tuple from a peer obeys the size rule
    /// ([`Settings::check_tuple_size`]); one that does not is ignored and
    /// counted, never stored nor forwarded.
    pub(super) fn fits(&mut self, key: &str, value: &str, from: ConnId) -> bool {
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
    pub(super) fn stale_window_ms(&self, t: Tuple<'_>) -> u64 {
        if t.deleted {
            self.settings.tombstone_grace_ms
        } else {
            self.settings
                .session_timeout_ms
                .saturating_mul(4)
                .max(4_000)
        }
    }

    /// A versioned write from a ZGP/2 peer, which arrived as `frame`.
    pub(super) fn accept_zgp2(&mut self, t: zgp2::Tuple<'_>, frame: &[u8], from: ConnId, now: Now) {
        self.count_tuple_in(from, now);
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
        if t.ephemeral && !t.deleted && self.bury_if_writer_gone(t.key, version, now) {
            return;
        }
        if t.deleted && self.refuse_own_burial(t.key, version, now) {
            return;
        }
        let w = Write {
            value: t.value,
            version,
            expires: t.expires,
            // A write whose time ran out arrives as what it is everywhere
            // else by now: a tombstone with that version.
            deleted: t.deleted || expired,
            ephemeral: t.ephemeral && !expired,
        };
        // Stored as it arrived: the frame can be forwarded as it is.
        let raw = (!expired && zgp2::is_canonical_tuple(frame, &t)).then_some(frame);
        let pushed = zgp2::is_pushed(frame);
        // A write we pulled is pushed on from here: the tree below this
        // node missed it too (a reconciliation's is not: see `Arrival`).
        let pulled = !pushed && self.tree.pulled(t.key, t.clock, t.origin);
        let arrival = Arrival {
            from: Some(from),
            raw,
            pushed: pushed || pulled,
        };
        let outcome = self.apply(t.key, w, arrival, now);
        if !matches!(outcome, Outcome::Duplicate | Outcome::Stale) {
            // Applied (as `tuples-applied` counts it): how long it took to
            // come here from its writer.
            self.delay.record(version.wall_ms(), now.wall_ms);
        }
        match outcome {
            // The sender holds an older write: repair it with ours.
            Outcome::Stale => self.send_tuple_to(from, t.key, now),
            // Pushed to us by two paths: this link is redundant.
            Outcome::Duplicate if pushed => self.overlay_duplicate(from, now),
            Outcome::Duplicate => {}
            // New here, pushed: the link carries the tree's writes.
            _ if pushed => self.tree.first_push(from, now.mono_ms),
            _ => {}
        }
    }

    /// True if `version` was made further ahead of our wall clock than
    /// `max_clock_ahead_ms`: such a remote write is refused.
    pub(super) fn is_from_the_future(&self, version: Version, now: Now) -> bool {
        version.wall_ms() > now.wall_ms.saturating_add(self.settings.max_clock_ahead_ms)
    }

    /// Merges a write into the store; on change tells the application and
    /// forwards it to every peer but the one it came from.
    pub(super) fn apply(
        &mut self,
        key: &str,
        w: Write<'_>,
        arrival: Arrival<'_>,
        now: Now,
    ) -> Outcome {
        let (outcome, entry) = self.store.merge_entry(key, w, now.wall_ms);
        self.applied(key, w, outcome, entry, arrival, now)
    }

    /// What follows the merge of `w`: news, expiry and forwarding.
    pub(super) fn applied(
        &mut self,
        key: &str,
        w: Write<'_>,
        outcome: Outcome,
        entry: usize,
        arrival: Arrival<'_>,
        now: Now,
    ) -> Outcome {
        match outcome {
            Outcome::Stored => self.news.push(Kind::Deliver, key, w.value),
            Outcome::Deleted => self.news.push(Kind::Delete, key, ""),
            Outcome::Refreshed | Outcome::TombstoneUpdated => {}
            Outcome::Duplicate | Outcome::Stale => return outcome,
        }
        if arrival.from.is_some() {
            self.stats.tuples_applied += 1;
        }
        self.journal(key, &w, now.wall_ms);
        self.overlay_received(key, w.version, now);
        if w.expires != 0 && !w.deleted {
            self.expiries.push(Reverse((w.expires, key.into())));
            self.prune_expiries();
            self.ensure_tick(now);
        }
        self.forward(entry, arrival, now);
        outcome
    }
}

/// How a write reached the engine, which decides how it is sent on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival<'a> {
    /// The connection it came on (`None`: the application).
    pub(super) from: Option<ConnId>,
    /// The ZGP/2 frame of exactly this write, as it came: forwarded as
    /// it is.
    pub(super) raw: Option<&'a [u8]>,
    /// Pushed by the broadcast tree (or new here, or pulled by our GRAFT):
    /// its forwards are pushes too. A write that came by a reconciliation
    /// is sent on unmarked, so that a node that holds it already does not
    /// take the link for a redundant one of the tree: it may be the very
    /// link the tree brings the write on, a moment later. (Pulled writes
    /// were sent on unmarked too until the simulator's overlapping writes
    /// showed the cost: every node below a pull got it by a flood of the
    /// eager links that no duplicate thinned, 2.2 payload frames per node
    /// per write at 1,000 nodes.)
    pub(super) pushed: bool,
}

impl Arrival<'_> {
    /// A write made here (by the application): a push from its source.
    pub(super) const LOCAL: Arrival<'static> = Arrival {
        from: None,
        raw: None,
        pushed: true,
    };
}
