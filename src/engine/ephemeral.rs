//! Ephemeral tuples: tuples tied to their writer's life
//! (`EPHEMERAL key value`; `docs/membership.md`, "Ephemeral tuples").
//!
//! A write made ephemeral carries a flag (ZGP/2 TUPLE flags bit 2); its
//! version's origin names its writer. When the membership takes a member
//! as failed or left (or replaced by a restart), every node turns that
//! member's live ephemeral tuples into tombstones by itself, each at the
//! same version (the write's clock plus one, the writer's origin), so the
//! nodes agree with no message, and tells its application `DELETE key`.
//! An ephemeral tuple of a member already gone that arrives later is
//! stored as that tombstone at once.
//!
//! A writer that was declared failed but is alive (it refutes) writes its
//! ephemeral tuples again at new versions, which override those
//! tombstones everywhere; and one that receives such a tombstone of its
//! own write (from a node that missed the refutation) refuses it and
//! writes the tuple again.

use super::writes::Arrival;
use super::*;

impl Engine {
    /// The tombstone every node makes of an ephemeral write `v` whose
    /// writer is gone.
    fn ephemeral_tombstone(v: Version) -> Version {
        Version {
            clock: v.clock.saturating_add(1),
            origin: v.origin,
        }
    }

    /// Member `id` is gone: its ephemeral tuples are deleted here.
    pub(super) fn bury_ephemerals_of(&mut self, id: u64, now: Now) {
        if id == self.id {
            return;
        }
        for key in self.store.ephemeral_of(id) {
            let Some(t) = self.store.get(&key) else {
                continue;
            };
            let version = Self::ephemeral_tombstone(t.version);
            self.bury(&key, version, now);
        }
    }

    /// Stores a tombstone every node makes by itself: not sent on (each
    /// node makes the same one), told to the application.
    fn bury(&mut self, key: &str, version: Version, now: Now) {
        let w = Write {
            value: "",
            version,
            expires: 0,
            deleted: true,
            ephemeral: false,
        };
        let (outcome, _) = self.store.merge_entry(key, w, now.wall_ms);
        match outcome {
            Outcome::Deleted => self.news.push(Kind::Delete, key, ""),
            Outcome::TombstoneUpdated => {}
            _ => return,
        }
        self.stats.ephemeral_deleted += 1;
        self.journal(key, &w, now.wall_ms);
        self.overlay_received(key, version, now);
    }

    /// An ephemeral write arrived: if its writer is gone here, it is stored
    /// as the tombstone the others made of it. True if so.
    pub(super) fn bury_if_writer_gone(&mut self, key: &str, version: Version, now: Now) -> bool {
        if version.origin == self.id || !self.membership.is_gone(version.origin) {
            return false;
        }
        self.bury(key, Self::ephemeral_tombstone(version), now);
        true
    }

    /// A tombstone of this node's own ephemeral write arrived while this
    /// node is alive (made by a node that took it as failed): refused,
    /// and the tuple written again. True if so.
    pub(super) fn refuse_own_burial(&mut self, key: &str, version: Version, now: Now) -> bool {
        if version.origin != self.id {
            return false;
        }
        let Some(t) = self.store.get(key) else {
            return false;
        };
        if !(t.is_live() && t.ephemeral && t.version.origin == self.id && t.version < version) {
            return false;
        }
        self.stats.ephemeral_rewritten += 1;
        let (value, expires) = (t.value.to_string(), t.expires);
        self.rewrite_ephemeral(key, &value, expires, version, now);
        true
    }

    /// Another node declared this one failed: its ephemeral tuples were
    /// deleted there; they are written again at new versions.
    pub(super) fn rewrite_own_ephemerals(&mut self, now: Now) {
        for key in self.store.ephemeral_of(self.id) {
            let Some(t) = self.store.get(&key) else {
                continue;
            };
            let (value, expires, version) = (t.value.to_string(), t.expires, t.version);
            self.stats.ephemeral_rewritten += 1;
            self.rewrite_ephemeral(
                &key,
                &value,
                expires,
                Self::ephemeral_tombstone(version),
                now,
            );
        }
    }

    /// Writes `key` again, ephemeral, at a version newer than `beyond`.
    fn rewrite_ephemeral(
        &mut self,
        key: &str,
        value: &str,
        expires: u64,
        beyond: Version,
        now: Now,
    ) {
        if expires != 0 && expires <= now.wall_ms {
            return;
        }
        let s = &self.settings;
        self.hlc
            .observe(beyond.clock, now.wall_ms, s.max_clock_ahead_ms);
        let version = self.stamp(now);
        let w = Write {
            value,
            version,
            expires,
            deleted: false,
            ephemeral: true,
        };
        self.apply(key, w, Arrival::LOCAL, now);
    }
}
