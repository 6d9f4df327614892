//! The journal: the records of what changed in the store, for a data
//! directory (`store/path`). The engine decides what is written: every
//! write it applies (new values, refreshes, deletes, tombstones) and every
//! expiry; the driver takes the encoded records out
//! ([`Engine::take_journal`]) and does the file I/O. Tuples read back from
//! a directory are merged with [`Engine::restore`].

use super::*;
use crate::persist::record;

/// Records not taken out yet.
#[derive(Debug, Default)]
pub(super) struct Journal {
    bytes: Vec<u8>,
    records: u64,
}

/// What [`Engine::restore`] did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// Merged (or older than what is held: versions decide).
    Merged,
    /// A tuple whose time to live ran out while the node was down: stored
    /// as the tombstone it would have become.
    Expired,
}

impl Engine {
    /// Starts (or stops) keeping the journal.
    pub fn set_journal(&mut self, on: bool) {
        self.journal = on.then(Journal::default);
    }

    /// Whether the journal is kept.
    pub fn journal_on(&self) -> bool {
        self.journal.is_some()
    }

    /// Moves the records written since the last call to the end of `out`;
    /// returns how many.
    pub fn take_journal(&mut self, out: &mut Vec<u8>) -> u64 {
        let Some(j) = self.journal.as_mut() else {
            return 0;
        };
        if out.is_empty() {
            std::mem::swap(out, &mut j.bytes);
        } else {
            out.extend_from_slice(&j.bytes);
            j.bytes.clear();
        }
        std::mem::take(&mut j.records)
    }

    /// Writes the record of `key` holding `w` (a tombstone stored at
    /// local wall time `now_wall`).
    pub(super) fn journal(&mut self, key: &str, w: &Write<'_>, now_wall: u64) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        // Keys are at most 255 bytes wherever they come from (the size
        // rule, the codecs); a longer one could not be written.
        if key.len() > crate::wire::gossip::MAX_KEY_LEN {
            return;
        }
        let since = if w.deleted { now_wall.max(1) } else { 0 };
        record::encode(&mut j.bytes, key, w, since);
        j.records += 1;
    }

    /// Merges a tuple read back from a data directory: versions decide
    /// against what is held, as for any write; a tombstone keeps the time
    /// it was first stored (its grace goes on from then); a tuple whose
    /// time to live ran out by `now` becomes a tombstone. No news and no
    /// forwarding: reconciliation brings peers what they miss. The clock
    /// moves past the versions read, so that this node's next writes win
    /// over them.
    pub fn restore(&mut self, key: &str, w: Write<'_>, since: u64, now: Now) -> Restored {
        self.hlc.observe(
            w.version.clock,
            now.wall_ms,
            self.settings.max_clock_ahead_ms,
        );
        let mut w = w;
        let mut at = if since == 0 {
            now.wall_ms
        } else {
            since.min(now.wall_ms)
        };
        let expired = !w.deleted && w.expires != 0 && w.expires <= now.wall_ms;
        if expired {
            w.deleted = true;
            w.value = "";
            at = now.wall_ms;
        }
        let outcome = self.store.merge(key, w, at);
        if expired && outcome != Outcome::Stale && outcome != Outcome::Duplicate {
            // On disk as the tombstone it is now.
            self.journal(key, &w, at);
            return Restored::Expired;
        }
        if !w.deleted && w.expires != 0 && outcome == Outcome::Stored {
            self.expiries.push(Reverse((w.expires, key.into())));
        }
        Restored::Merged
    }

    /// After a directory was read: the expiry queue trimmed and the
    /// timers planned.
    pub fn restored(&mut self, now: Now) {
        self.prune_expiries();
        self.ensure_tick(now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, WALL};
    use super::*;
    use crate::persist::record::{self, Record};

    fn taken(e: &mut Engine) -> Vec<(String, String, bool, u64, u64)> {
        let mut bytes = record::header(1).to_vec();
        let n = e.take_journal(&mut bytes);
        let all: Vec<Record<'_>> = record::records(&bytes).collect();
        assert_eq!(all.len() as u64, n);
        all.iter()
            .map(|r| {
                (
                    r.key.to_string(),
                    r.write.value.to_string(),
                    r.write.deleted,
                    r.write.expires,
                    r.since,
                )
            })
            .collect()
    }

    #[test]
    fn every_applied_write_and_expiry_is_journaled_and_nothing_else() {
        let mut e = Engine::new("e", 1, Settings::default());
        e.publish("before", "x", None, at(0));
        e.set_journal(true);
        assert!(taken(&mut e).is_empty(), "only from when it is on");
        e.publish("k", "1", None, at(1));
        e.publish("k", "1", None, at(2)); // unchanged: nothing happens
        e.publish("t", "2", Some(50), at(3));
        e.unpublish("k", at(4));
        let got = taken(&mut e);
        assert_eq!(
            got,
            [
                ("k".into(), "1".into(), false, 0, 0),
                ("t".into(), "2".into(), false, WALL + 53, 0),
                ("k".into(), "".into(), true, 0, WALL + 4),
            ]
        );
        e.handle_timeout(at(100));
        let got = taken(&mut e);
        assert_eq!(got, [("t".into(), "".into(), true, WALL + 53, WALL + 100)]);
        e.set_journal(false);
        e.publish("after", "y", None, at(200));
        assert!(taken(&mut e).is_empty());
    }

    #[test]
    fn restored_tuples_merge_by_version_expire_and_keep_their_tombstone_time() {
        let mut e = Engine::new("e", 1, Settings::default());
        e.set_journal(true);
        let now = at(10_000);
        let v = |clock: u64, origin| Version { clock, origin };
        let w = |value, version| Write {
            value,
            version,
            expires: 0,
            deleted: false,
            ephemeral: false,
        };
        let hlc = |ms: u64| (WALL + ms) << 16;
        // Held already, newer than the disk's copy: kept.
        e.publish("held", "memory", None, now);
        assert_eq!(
            e.restore("held", w("disk", v(hlc(1), 9)), 0, now),
            Restored::Merged
        );
        assert_eq!(e.store().value("held"), Some("memory"));
        // A tombstone keeps the time it was stored.
        let del = Write {
            deleted: true,
            ..w("", v(hlc(2), 9))
        };
        e.restore("gone", del, WALL + 3_000, now);
        assert_eq!(e.store().tombstone_since("gone"), Some(WALL + 3_000));
        // Expired while away: a tombstone, journaled as one.
        let ttl = Write {
            expires: WALL + 5_000,
            ..w("brief", v(hlc(3), 9))
        };
        assert_eq!(e.restore("brief", ttl, 0, now), Restored::Expired);
        assert_eq!(e.store().value("brief"), None);
        let lasting = Write {
            expires: WALL + 50_000,
            ..w("lasting", v(hlc(4), 9))
        };
        e.restore("lasting", lasting, 0, now);
        e.restored(now);
        let got = taken(&mut e);
        assert_eq!(got.len(), 2, "the publish and the expiry: {got:?}");
        assert_eq!(got[1].0, "brief");
        assert!(got[1].2);
        // The expiry queue knows the lasting one.
        e.handle_timeout(at(50_000));
        assert_eq!(e.store().value("lasting"), None);
        // The clock moved past a version from the future of the wall
        // clock (within the drift allowed): the next write wins.
        let mut f = Engine::new("f", 2, Settings::default());
        f.restore("k", w("disk", v(hlc(10_500), 9)), 0, now);
        f.publish("k", "new", None, now);
        assert_eq!(f.store().value("k"), Some("new"));
    }
}
