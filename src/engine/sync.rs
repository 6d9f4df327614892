//! Set reconciliation between two nodes that speak ZGP/2 (delta sync and
//! anti-entropy), after range-based set reconciliation.
//!
//! Every entry of the store (tombstones too) is an item placed by its
//! [`key_hash`](crate::store::key_hash) on the 64-bit line, with a
//! fingerprint of its version. A range of the line is summarised by its
//! item count and the wrapping sum of its items' fingerprints. The server
//! of a connection sends RANGES covering the whole line; each side answers
//! a range that differs by splitting it (RANGES again), by listing its items
//! (ITEMS) when it holds few, or by sending its tuples outright when the
//! other side holds none. ITEMS is answered with the tuples the other side
//! lacks or holds older, and a WANT for those it has newer. Messages carry
//! their whole context, so the exchange needs no per-connection state and
//! survives loss and reordering; the periodic rerun repairs what was lost.

use super::*;
use crate::wire::zgp2::{Group, Item, Range};

/// Output a connection's pending sends keep encoded ahead of the socket.
const SEND_AHEAD: usize = 256 << 10;

/// Which tuples a pending send selects.
#[derive(Debug)]
pub(super) enum Filter {
    All,
    /// Key hashes in these sorted disjoint ranges.
    Ranges(Vec<(u64, u64)>),
    Hashes(std::collections::HashSet<u64>),
}

/// Tuples still to send on a connection: a walk over the store's entries.
#[derive(Debug)]
pub(super) struct SendJob {
    /// The next entry to look at.
    next: usize,
    /// The first entry not to look at: the store's end when the job began
    /// (what is written later travels as forwards, queued behind the job).
    end: usize,
    /// The store's generation when `next` was valid.
    generation: u64,
    filter: Filter,
}

/// How many parts a differing range is split into.
const FANOUT: u64 = 16;
/// A side holding at most this many items in a differing range lists them.
const LEAF: u32 = 48;
/// Largest list put into one message (keeps frames well under the limit).
const CHUNK_RANGES: usize = 8_192;
const CHUNK_ITEMS: usize = 16_384;
const CHUNK_WANT: usize = 32_768;

/// `n` equal parts of `[lo, hi]` (fewer when the range is narrower).
fn split(lo: u64, hi: u64, n: u64) -> Vec<(u64, u64)> {
    let width = hi - lo;
    if width < n {
        return (lo..=hi).map(|x| (x, x)).collect();
    }
    let step = width / n + 1;
    let mut parts = Vec::with_capacity(n as usize);
    let mut start = lo;
    loop {
        let end = start.saturating_add(step - 1).min(hi);
        parts.push((start, end));
        if end == hi {
            break;
        }
        start = end + 1;
    }
    parts
}

/// True if sorted disjoint `ranges` cover the whole 64-bit line.
fn covers_the_line(ranges: &[(u64, u64)]) -> bool {
    ranges.first().is_some_and(|&(lo, _)| lo == 0)
        && ranges.last().is_some_and(|&(_, hi)| hi == u64::MAX)
        && ranges
            .windows(2)
            .all(|w| w[0].1.checked_add(1) == Some(w[1].0))
}

/// Index of the range holding `h`, for sorted disjoint ranges.
fn find(ranges: &[(u64, u64)], h: u64) -> Option<usize> {
    let i = ranges.partition_point(|&(_, hi)| hi < h);
    ranges.get(i).filter(|&&(lo, _)| lo <= h).map(|_| i)
}

impl Engine {
    /// Count and fingerprint of our items in each range (one pass).
    fn summarize(&self, ranges: &[(u64, u64)]) -> Vec<(u32, u64)> {
        let mut sums = vec![(0u32, 0u64); ranges.len()];
        if ranges.is_empty() {
            return sums;
        }
        for (_, t) in self.store.iter() {
            let kh = t.key_hash();
            if let Some(i) = find(ranges, kh) {
                let s = &mut sums[i];
                s.0 += 1;
                s.1 =
                    s.1.wrapping_add(crate::store::item_fingerprint(kh, t.version, t.deleted));
            }
        }
        sums
    }

    /// Our items in each range (one pass).
    fn collect(&self, ranges: &[(u64, u64)]) -> Vec<Vec<Item>> {
        let mut out = vec![Vec::new(); ranges.len()];
        if ranges.is_empty() {
            return out;
        }
        for (_, t) in self.store.iter() {
            let kh = t.key_hash();
            if let Some(i) = find(ranges, kh) {
                out[i].push(Item {
                    key_hash: kh,
                    clock: t.version.clock,
                    origin: t.version.origin,
                });
            }
        }
        out
    }

    fn send_ranges(&mut self, conn: ConnId, parts: &[(u64, u64)], now: Now) {
        let sums = self.summarize(parts);
        let ranges: Vec<Range> = parts
            .iter()
            .zip(sums)
            .map(|(&(lo, hi), (count, fingerprint))| Range {
                lo,
                hi,
                count,
                fingerprint,
            })
            .collect();
        for chunk in ranges.chunks(CHUNK_RANGES) {
            let mut frame = Vec::with_capacity(8 + chunk.len() * zgp2::RANGE_LEN);
            zgp2::encode_ranges(chunk, &mut frame);
            self.queue_frame(conn, &frame, now);
        }
    }

    /// Starts a reconciliation round on a ZGP/2 connection: one range,
    /// the whole line. Two nodes in sync (an idle network's every round)
    /// exchange its fingerprint alone, 34 bytes, not sixteen ranges (460);
    /// where they differ, the peer splits it and the round goes on.
    pub(super) fn start_sync(&mut self, conn: ConnId, now: Now) {
        self.send_ranges(conn, &[(0, u64::MAX)], now);
    }

    /// Sends every tuple we hold whose key hash falls in `ranges`.
    fn send_tuples_in(&mut self, conn: ConnId, ranges: &[(u64, u64)], now: Now) {
        if covers_the_line(ranges) {
            // A peer that holds nothing at all (a fresh node joining):
            // everything goes, and no key needs hashing to place it.
            self.send_matching(conn, Filter::All, now);
        } else if !ranges.is_empty() {
            self.send_matching(conn, Filter::Ranges(ranges.to_vec()), now);
        }
    }

    /// Sends, as TUPLE messages on `conn` (to a plain peer: PUBLISH, live
    /// tuples only), every entry of the store that `filter` selects. The
    /// tuples are encoded as the connection takes them (see
    /// [`Engine::fill_sends`]), not all at once: a node of a million tuples
    /// answering a fresh peer holds a few hundred KiB of output for it, not
    /// the whole store again, and the first tuples leave at once.
    pub(super) fn send_matching(&mut self, conn: ConnId, filter: Filter, now: Now) {
        let generation = self.store.generation();
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else {
            return;
        };
        c.sends.push_back(SendJob {
            next: 0,
            end: self.store.entries(),
            generation,
            filter,
        });
        self.fill_sends(conn, now);
    }

    /// Encodes the next tuples of `conn`'s pending sends into its outbox,
    /// until the outbox holds `SEND_AHEAD` bytes or the sends are done.
    pub(super) fn fill_sends(&mut self, conn: ConnId, now: Now) {
        let holdoff = self.tree.settings().sync_holdoff_ms;
        let Engine {
            store,
            conns,
            stats,
            dirty,
            ..
        } = self;
        let Some(c) = conns.get_mut(&conn) else {
            return;
        };
        // On a ZGP/2 link that was up when they were made, new writes are
        // the tree's business (see `TreeSettings::sync_holdoff_ms`).
        let leave_new = c.peer.zgp2 && now.mono_ms.saturating_sub(c.since_ms) >= holdoff;
        let is_new = |t: &Tuple<'_>| now.wall_ms.saturating_sub(t.version.wall_ms()) < holdoff;
        if c.closing {
            c.discard_sends();
            return;
        }
        let was_empty = c.outbox.len() == c.outbox_pos;
        let mut n = 0;
        while let Some(job) = c.sends.front_mut() {
            if c.outbox.len() - c.outbox_pos >= SEND_AHEAD {
                break;
            }
            if job.generation != store.generation() {
                // Entries were renumbered: start over (a tuple sent twice
                // is a duplicate to the peer; one skipped is not).
                job.next = 0;
                job.end = store.entries();
                job.generation = store.generation();
            }
            let mut done = true;
            while job.next < job.end {
                let Some((key, t)) = store.entry(job.next) else {
                    break;
                };
                job.next += 1;
                let wanted = match &job.filter {
                    Filter::All => true,
                    Filter::Ranges(r) => find(r, t.key_hash()).is_some(),
                    Filter::Hashes(h) => h.contains(&t.key_hash()),
                };
                if !wanted || (leave_new && is_new(&t)) {
                    continue;
                }
                if c.peer.zgp2 {
                    let tuple = zgp2_tuple(key, t);
                    if !c.peer.accepts(zgp2::tuple_len(&tuple)) {
                        stats.oversize_skipped += 1;
                        continue;
                    }
                    push_tuple(&mut c.outbox, &tuple);
                } else if t.is_live() {
                    // A plain (CZMQ) peer: every live tuple, as PUBLISH.
                    let msg = plain_publish(key, t, now);
                    if !c.peer.accepts(msg.encoded_len()) {
                        stats.oversize_skipped += 1;
                        continue;
                    }
                    push_frame(&mut c.outbox, &msg);
                } else {
                    continue;
                }
                n += 1;
                if c.outbox.len() - c.outbox_pos >= SEND_AHEAD {
                    done = job.next >= job.end.min(store.entries());
                    break;
                }
            }
            if !done {
                break;
            }
            c.sends.pop_front();
            if c.sends.is_empty() && !c.after_sends.is_empty() {
                // What was queued meanwhile follows now.
                let after = std::mem::take(&mut c.after_sends);
                c.outbox.extend_from_slice(&after);
            }
        }
        if n > 0 {
            c.last_tx = now.mono_ms;
            c.traffic.frames_out += n;
            stats.frames_out += n;
            if c.peer.zgp2 {
                stats.sync_tuples_out += n;
            }
        }
        if was_empty && c.outbox.len() > c.outbox_pos {
            dirty.push(conn);
        }
    }

    /// A ZGP/2 message arrived.
    pub(super) fn zgp2_message(
        &mut self,
        conn: ConnId,
        role: Role,
        session: Session,
        msg: zgp2::Message<'_>,
        frame: &[u8],
        now: Now,
    ) {
        if self.tracing_messages() {
            let what = match &msg {
                zgp2::Message::Tuple(t) => format!(
                    "TUPLE key={}{}",
                    t.key,
                    if t.deleted { " (deleted)" } else { "" }
                ),
                zgp2::Message::Ranges(r) => format!("RANGES x{}", r.len()),
                zgp2::Message::Items(g) => format!("ITEMS x{}", g.len()),
                zgp2::Message::Want(w) => format!("WANT x{}", w.len()),
                zgp2::Message::Overlay(m) => m.name().to_string(),
                zgp2::Message::Membership(m) => m.name().to_string(),
            };
            self.trace_message(format_args!("{} {conn}: recv {what}", role_name(role)));
        }
        if role == Role::Inbound && matches!(session, Session::Expired | Session::Invalidated) {
            // ZGP/2 clients ping; traffic means the session is alive.
            self.set_session(conn, Session::Connected);
        } else if role == Role::Inbound && session != Session::Connected {
            // As every message before HELLO: refused, session stays new.
            self.send(conn, &Message::Invalid, now);
            self.stats.invalid_sent += 1;
            return;
        }
        if role != Role::Inbound && matches!(msg, zgp2::Message::Ranges(_)) {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.last_sync_rx = now.mono_ms;
            }
            self.overlay_server_answered(conn, role, now);
        }
        match msg {
            zgp2::Message::Tuple(t) => self.accept_zgp2(t, frame, conn, now),
            zgp2::Message::Ranges(ranges) => {
                self.on_ranges(conn, &ranges, now);
                // What we answered goes first, then the forwards held
                // while the connection came up.
                self.release_held(conn);
            }
            zgp2::Message::Items(groups) => self.on_items(conn, &groups, now),
            zgp2::Message::Want(hashes) => self.on_want(conn, &hashes, now),
            zgp2::Message::Overlay(m) => self.on_overlay(conn, m, now),
            zgp2::Message::Membership(m) => self.on_membership(conn, m, now),
        }
    }

    fn on_ranges(&mut self, conn: ConnId, theirs: &[Range], now: Now) {
        let mut parts: Vec<(u64, u64)> = Vec::with_capacity(theirs.len());
        for r in theirs {
            if r.lo > r.hi || parts.last().is_some_and(|&(_, hi)| hi >= r.lo) {
                self.close(conn, "RANGES not sorted and disjoint".into(), now);
                return;
            }
            parts.push((r.lo, r.hi));
        }
        let ours = self.summarize(&parts);
        let mut push = Vec::new(); // they hold nothing here: send ours
        let mut list = Vec::new(); // list our items
        let mut deeper = Vec::new(); // split further
        for (r, (count, fp)) in theirs.iter().zip(ours) {
            if count == r.count && fp == r.fingerprint {
                continue;
            }
            if r.count == 0 {
                push.push((r.lo, r.hi));
            } else if count <= LEAF || r.hi - r.lo < FANOUT {
                list.push((r.lo, r.hi));
            } else {
                deeper.extend(split(r.lo, r.hi, FANOUT));
            }
        }
        self.send_tuples_in(conn, &push, now);
        if !list.is_empty() {
            let items = self.collect(&list);
            let groups: Vec<Group> = list
                .iter()
                .zip(items)
                .map(|(&(lo, hi), items)| Group { lo, hi, items })
                .collect();
            self.send_groups(conn, groups, now);
        }
        if !deeper.is_empty() {
            self.send_ranges(conn, &deeper, now);
        }
    }

    fn send_groups(&mut self, conn: ConnId, groups: Vec<Group>, now: Now) {
        let mut batch: Vec<Group> = Vec::new();
        let mut size = 0;
        let flush = |engine: &mut Engine, batch: &mut Vec<Group>| {
            if !batch.is_empty() {
                let mut frame = Vec::new();
                zgp2::encode_items(batch, &mut frame);
                engine.queue_frame(conn, &frame, now);
                batch.clear();
            }
        };
        for g in groups {
            if size + g.items.len() > CHUNK_ITEMS {
                flush(self, &mut batch);
                size = 0;
            }
            size += g.items.len();
            batch.push(g);
        }
        flush(self, &mut batch);
    }

    fn on_items(&mut self, conn: ConnId, groups: &[Group], now: Now) {
        let mut parts: Vec<(u64, u64)> = Vec::with_capacity(groups.len());
        for g in groups {
            if g.lo > g.hi || parts.last().is_some_and(|&(_, hi)| hi >= g.lo) {
                self.close(conn, "ITEMS not sorted and disjoint".into(), now);
                return;
            }
            parts.push((g.lo, g.hi));
        }
        // Ranges where the peer holds nothing: send all of ours, one pass.
        let (empty, listed): (Vec<&Group>, Vec<&Group>) =
            groups.iter().partition(|g| g.items.is_empty());
        let empty: Vec<(u64, u64)> = empty.iter().map(|g| (g.lo, g.hi)).collect();
        self.send_tuples_in(conn, &empty, now);
        let listed_parts: Vec<(u64, u64)> = listed.iter().map(|g| (g.lo, g.hi)).collect();
        let ours = self.collect(&listed_parts);
        // Writes of theirs still new are on their way by the tree (see
        // `TreeSettings::sync_holdoff_ms`): not asked for on an old link.
        let holdoff = self.tree.settings().sync_holdoff_ms;
        let old_link = self
            .conns
            .get(&conn)
            .is_some_and(|c| now.mono_ms.saturating_sub(c.since_ms) >= holdoff);
        let arriving = |v: Version| old_link && now.wall_ms.saturating_sub(v.wall_ms()) < holdoff;
        let mut send: Vec<u64> = Vec::new();
        let mut want: Vec<u64> = Vec::new();
        for (g, mine) in listed.iter().zip(ours) {
            let theirs: std::collections::HashMap<u64, Version> = g
                .items
                .iter()
                .map(|i| {
                    (
                        i.key_hash,
                        Version {
                            clock: i.clock,
                            origin: i.origin,
                        },
                    )
                })
                .collect();
            let mut seen = std::collections::HashSet::with_capacity(mine.len());
            for i in &mine {
                let v = Version {
                    clock: i.clock,
                    origin: i.origin,
                };
                seen.insert(i.key_hash);
                match theirs.get(&i.key_hash) {
                    None => send.push(i.key_hash),
                    Some(tv) if *tv < v => send.push(i.key_hash),
                    // Not asked for when from the future: it would be
                    // refused on arrival (see `accept_zgp2`).
                    Some(tv) if *tv > v && !self.is_from_the_future(*tv, now) && !arriving(*tv) => {
                        want.push(i.key_hash)
                    }
                    Some(_) => {}
                }
            }
            for i in &g.items {
                let v = Version {
                    clock: i.clock,
                    origin: i.origin,
                };
                if !seen.contains(&i.key_hash) && !self.is_from_the_future(v, now) && !arriving(v) {
                    want.push(i.key_hash);
                }
            }
        }
        self.send_hashes(conn, &send, now);
        want.sort_unstable();
        want.dedup();
        for chunk in want.chunks(CHUNK_WANT) {
            let mut frame = Vec::with_capacity(8 + chunk.len() * 8);
            zgp2::encode_want(chunk, &mut frame);
            self.queue_frame(conn, &frame, now);
        }
    }

    fn on_want(&mut self, conn: ConnId, hashes: &[u64], now: Now) {
        self.send_hashes(conn, hashes, now);
    }

    /// Sends our tuples whose key hash is in `hashes`.
    fn send_hashes(&mut self, conn: ConnId, hashes: &[u64], now: Now) {
        if hashes.is_empty() {
            return;
        }
        let set: std::collections::HashSet<u64> = hashes.iter().copied().collect();
        self.send_matching(conn, Filter::Hashes(set), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_range_exactly() {
        for &(lo, hi) in &[(0, u64::MAX), (0, 15), (5, 9), (100, 1000), (7, 7)] {
            let parts = split(lo, hi, FANOUT);
            assert_eq!(parts.first().unwrap().0, lo);
            assert_eq!(parts.last().unwrap().1, hi);
            for w in parts.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
            assert!(parts.len() as u64 <= FANOUT.max((hi - lo).saturating_add(1)));
        }
        assert_eq!(split(0, u64::MAX, 16).len(), 16);
    }

    #[test]
    fn covering_the_line_needs_every_point() {
        assert!(covers_the_line(&split(0, u64::MAX, FANOUT)));
        assert!(covers_the_line(&[(0, u64::MAX)]));
        assert!(!covers_the_line(&[]));
        let mut parts = split(0, u64::MAX, FANOUT);
        parts.remove(5);
        assert!(!covers_the_line(&parts));
        assert!(!covers_the_line(&[(1, u64::MAX)]));
        assert!(!covers_the_line(&[(0, u64::MAX - 1)]));
        assert!(!covers_the_line(&[(0, 9), (11, u64::MAX)]));
    }

    #[test]
    fn find_locates_ranges() {
        let r = [(0, 9), (10, 19), (30, 39)];
        assert_eq!(find(&r, 0), Some(0));
        assert_eq!(find(&r, 15), Some(1));
        assert_eq!(find(&r, 25), None);
        assert_eq!(find(&r, 39), Some(2));
        assert_eq!(find(&r, 40), None);
    }
}
