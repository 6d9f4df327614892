//! The reply pipe from a node to its application: replies and news in the
//! order the node produced them, and a descriptor that is readable exactly
//! while something waits. It is the one pipe type (`pipe.rs`) carrying
//! [`ReplyBatch`]es, whose overflow policy coalesces news per key.
//!
//! The node never waits for the application. When the application falls
//! more than `limit` messages behind, news about a key that already waits
//! in the pipe's held batch (since the last reply) replaces it instead of
//! queueing again: the application still learns the latest state of every
//! key, the pipe is bounded by `limit` plus the number of keys, and the
//! number of news folded this way is counted (`STATS replies-coalesced`).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::time::Duration;

// The queue length beyond which news is coalesced per key, unless
// `server/pipe-limit` says otherwise, is a setting of control's.
use crate::control::settings::DEFAULT_PIPE_LIMIT as DEFAULT_LIMIT;
use crate::error::{Error, Result};
use crate::handle::pipe::{Batch, Pipe, Wait};
use crate::news::{keep_after, Item, NewsQueue, NewsRef};

/// Buffer sizes kept once a batch is read, at least: room for twice what
/// it needed is kept (see `news::keep_after`), what a burst left beyond
/// that is given back.
const KEEP_BYTES: usize = 64 << 10;
const KEEP_SLOTS: usize = 1024;

/// Text kept beyond twice the live text before it is compacted.
const TEXT_SLACK: usize = 64 << 10;

enum Slot {
    Reply(Vec<String>),
    /// News whose text starts at offset `at` of the batch's text.
    News {
        item: Item,
        at: usize,
    },
}

/// Replies and news, their text kept in one buffer: a batch of news from
/// the engine moves in by swapping buffers, nothing is allocated per news.
#[derive(Default)]
pub(crate) struct ReplyBatch {
    slots: Vec<Slot>,
    /// The next slot to read.
    next: usize,
    /// The text of the news, back to back (with holes once news was
    /// folded).
    text: String,
    /// Bytes of `text` that news still uses (the held batch's count).
    live_text: usize,
    /// In the held batch: key -> slot of news that later news of the same
    /// key may replace.
    foldable: HashMap<Box<str>, usize>,
    /// The slot of the last reply: in the held batch, news never moves
    /// past it.
    barrier: Option<usize>,
}

impl ReplyBatch {
    /// Appends the text of `n`; returns its offset.
    fn append_text(&mut self, n: &NewsRef<'_>) -> usize {
        let at = self.text.len();
        self.text.push_str(n.key);
        self.text.push_str(n.value);
        self.live_text += n.key.len() + n.value.len();
        at
    }

    fn append(&mut self, n: &NewsRef<'_>, item: Item) {
        let at = self.append_text(n);
        self.slots.push(Slot::News { item, at });
    }

    /// Replaces the waiting news of `n`'s key by `n`, if there is one
    /// after the last reply; appends `n` (which later news may replace)
    /// otherwise. True if it replaced.
    fn fold_or_append(&mut self, n: &NewsRef<'_>, item: Item) -> bool {
        if let Some(&i) = self.foldable.get(n.key) {
            if self.barrier.is_none_or(|b| i > b) {
                if let Slot::News { item: old, .. } = self.slots[i] {
                    let at = self.append_text(n);
                    self.live_text -= old.len();
                    self.slots[i] = Slot::News { item, at };
                    return true;
                }
            }
        }
        self.foldable.insert(n.key.into(), self.slots.len());
        self.append(n, item);
        false
    }

    /// Rewrites the text without the parts no news uses, once they
    /// outweigh the rest (folded news leaves such holes).
    fn compact_text(&mut self) {
        if self.text.len() <= 2 * self.live_text + TEXT_SLACK {
            return;
        }
        let mut text = String::with_capacity(self.live_text);
        for slot in self.slots.iter_mut() {
            if let Slot::News { item, at } = slot {
                let new_at = text.len();
                text.push_str(&self.text[*at..*at + item.len()]);
                *at = new_at;
            }
        }
        self.text = text;
    }

    /// Reads the next message, handing its frames to `f`.
    #[inline]
    fn read<R>(&mut self, f: impl FnOnce(&[&str]) -> R) -> R {
        let i = self.next;
        self.next += 1;
        match &self.slots[i] {
            Slot::Reply(m) => {
                let frames: Vec<&str> = m.iter().map(String::as_str).collect();
                f(&frames)
            }
            Slot::News { item, at } => item.get(&self.text, *at).with_frames(f),
        }
    }
}

impl Batch for ReplyBatch {
    fn len(&self) -> usize {
        self.slots.len() - self.next
    }

    /// Replies are always kept; news is kept while there is room, and
    /// beyond it replaces the waiting news of its key (see above).
    fn overflow(held: &mut Self, incoming: &mut Self, mut room: usize) {
        if room >= incoming.len() && incoming.next == 0 {
            // Everything fits: nothing is folded, and the text, which no
            // folding has left holes in, is copied in one go.
            let (slots, base) = (held.slots.len(), held.text.len());
            held.text.push_str(&incoming.text);
            held.live_text += incoming.text.len();
            held.slots
                .extend(incoming.slots.drain(..).map(|slot| match slot {
                    Slot::News { item, at } => Slot::News {
                        item,
                        at: at + base,
                    },
                    reply => reply,
                }));
            if let Some(last) = incoming.barrier {
                held.barrier = Some(slots + last);
            }
            return;
        }
        let text = &incoming.text;
        for slot in incoming.slots.drain(incoming.next..) {
            match slot {
                Slot::Reply(m) => {
                    held.slots.push(Slot::Reply(m));
                    held.barrier = Some(held.slots.len() - 1);
                    room = room.saturating_sub(1);
                }
                Slot::News { item, at } => {
                    let n = item.get(text, at);
                    if room > 0 {
                        held.append(&n, item);
                        room -= 1;
                    } else {
                        held.fold_or_append(&n, item);
                    }
                }
            }
        }
        held.compact_text();
    }

    fn recycle(&mut self) {
        let (slots, bytes) = (self.slots.len(), self.text.len());
        self.slots.clear();
        self.next = 0;
        self.text.clear();
        self.live_text = 0;
        if self.foldable.capacity() > KEEP_SLOTS {
            // Grown while the application lagged: given back.
            self.foldable = HashMap::new();
        } else {
            self.foldable.clear();
        }
        self.barrier = None;
        self.slots.shrink_to(keep_after(slots, KEEP_SLOTS));
        self.text.shrink_to(keep_after(bytes, KEEP_BYTES));
    }
}

pub(crate) struct Replies {
    pipe: Pipe<ReplyBatch>,
}

impl Replies {
    pub(crate) fn new() -> Result<Replies> {
        let pipe =
            Pipe::new(DEFAULT_LIMIT).map_err(|e| Error::io("cannot create reply pipe", e))?;
        Ok(Replies { pipe })
    }

    /// Sets the queue length beyond which news is coalesced.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.pipe.set_limit(limit);
    }

    /// Queues a reply (PORT, STATUS, ...): it follows all news before it.
    pub(crate) fn push(&self, msg: Vec<String>) {
        self.pipe.push_with(|batch| {
            batch.slots.push(Slot::Reply(msg));
            batch.barrier = Some(batch.slots.len() - 1);
        });
    }

    /// Moves every news of `news` into the pipe as one batch: its text
    /// changes hands whole (a swap of buffers).
    pub(crate) fn push_news(&self, news: &mut NewsQueue) {
        if news.is_empty() {
            return;
        }
        self.pipe.push_with(|batch| {
            let ReplyBatch { slots, text, .. } = batch;
            let mut at = 0;
            news.take_text(text, |item| {
                slots.push(Slot::News { item, at });
                at += item.len();
            });
        });
    }

    /// Marks the pipe closed: readers get what is queued, then `Terminated`.
    pub(crate) fn close(&self) {
        self.pipe.close();
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.pipe.len()
    }

    /// News folded into earlier news of the same key so far.
    pub(crate) fn coalesced(&self) -> u64 {
        self.pipe.shed()
    }

    /// The next message, waiting at most `timeout` (forever if None).
    pub(crate) fn pop(&self, timeout: Option<Duration>) -> Result<Option<Vec<String>>> {
        self.pop_with(timeout, |frames| {
            frames.iter().map(|f| f.to_string()).collect()
        })
    }

    /// The next message, waiting at most `timeout` (forever if None),
    /// handed to `f` as borrowed frames: nothing is allocated for news.
    pub(crate) fn pop_with<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&[&str]) -> R,
    ) -> Result<Option<R>> {
        let wait = timeout.map_or(Wait::Forever, Wait::For);
        self.pipe.pop_with(wait, |batch| batch.read(f))
    }

    /// The descriptor, readable exactly while something waits (from this
    /// call on: if something waits already, it is readable at once).
    pub(crate) fn fd(&self) -> RawFd {
        self.pipe.fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    use crate::news::Kind;

    /// A batch of deliveries.
    fn batch<K: AsRef<str>, V: AsRef<str>>(news: impl IntoIterator<Item = (K, V)>) -> NewsQueue {
        let mut q = NewsQueue::new();
        for (k, v) in news {
            q.push(Kind::Deliver, k.as_ref(), v.as_ref());
        }
        q
    }

    fn drain(r: &Replies) -> Vec<Vec<String>> {
        std::iter::from_fn(|| r.pop(Some(Duration::ZERO)).unwrap()).collect()
    }

    #[test]
    fn keeps_order_and_every_message_while_not_lagging() {
        let r = Replies::new().unwrap();
        r.push_news(&mut batch([("a", "1"), ("a", "2")]));
        r.push(vec!["STATUS".into(), "1".into()]);
        let got = drain(&r);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], ["DELIVER", "a", "2"]);
        assert_eq!(got[2], ["STATUS", "1"]);
        assert_eq!(r.coalesced(), 0);
    }

    #[test]
    fn batches_moved_whole_keep_their_text_across_partial_reads() {
        let r = Replies::new().unwrap();
        let mut news = batch([("k1", "v1"), ("key2", "")]);
        r.push_news(&mut news); // the pipe held no text: swapped in
        assert!(news.is_empty() && news.text().is_empty());
        news.push(Kind::Deliver, "κ3", "значение");
        r.push_news(&mut news); // appended after the first batch
        let first = r.pop(Some(Duration::ZERO)).unwrap().unwrap();
        assert_eq!(first, ["DELIVER", "k1", "v1"]);
        // The reader holds the rest; a batch arriving now waits behind it.
        news.push(Kind::Delete, "k1", "");
        news.push(Kind::Deliver, "k4", "v4");
        r.push_news(&mut news);
        r.push(vec!["STATUS".into(), "4".into()]);
        news.push(Kind::Deliver, "k5", "v5");
        r.push_news(&mut news);
        let rest = drain(&r);
        assert_eq!(
            rest,
            [
                vec!["DELIVER", "key2", ""],
                vec!["DELIVER", "κ3", "значение"],
                vec!["DELETE", "k1"],
                vec!["DELIVER", "k4", "v4"],
                vec!["STATUS", "4"],
                vec!["DELIVER", "k5", "v5"],
            ]
        );
        assert_eq!(r.coalesced(), 0);
    }

    #[test]
    fn lagging_application_gets_latest_value_of_every_key_in_bounded_memory() {
        let r = Replies::new().unwrap();
        r.set_limit(10);
        for round in 0..1000 {
            r.push_news(&mut batch(
                (0..20).map(|k| (format!("k{k}"), format!("{round}"))),
            ));
        }
        assert!(r.len() <= 10 + 20, "queue bounded: {}", r.len());
        assert!(r.coalesced() > 19_000);
        let got = drain(&r);
        let mut latest = std::collections::HashMap::new();
        for m in &got {
            latest.insert(m[1].clone(), m[2].clone());
        }
        assert_eq!(latest.len(), 20, "no key lost");
        assert!(latest.values().all(|v| v == "999"), "latest values");
    }

    #[test]
    fn text_left_by_coalesced_news_is_compacted_and_every_value_stays_right() {
        let r = Replies::new().unwrap();
        r.set_limit(4);
        r.push_news(&mut batch([("first", "1"), ("second", "2")]));
        r.push(vec!["STATUS".into(), "2".into()]);
        let big = "x".repeat(1000);
        for round in 0..500 {
            r.push_news(&mut batch(
                (0..4).map(|k| (format!("k{k}"), format!("{round}{big}"))),
            ));
        }
        r.pipe.with_held(|g| {
            assert!(
                g.text.len() <= 2 * g.live_text + TEXT_SLACK,
                "text {} bytes for {} live",
                g.text.len(),
                g.live_text
            );
        });
        let got = drain(&r);
        assert_eq!(got[0], ["DELIVER", "first", "1"]);
        assert_eq!(got[1], ["DELIVER", "second", "2"]);
        assert_eq!(got[2], ["STATUS", "2"]);
        let mut latest = std::collections::HashMap::new();
        for m in &got[3..] {
            assert!(m[2].ends_with(&big), "{}", &m[2][..10]);
            latest.insert(m[1].clone(), m[2].clone());
        }
        assert_eq!(latest.len(), 4);
        assert!(
            latest.values().all(|v| v.starts_with("499x")),
            "latest values"
        );
        assert_eq!(r.pipe.with_held(|g| g.live_text), 0);
    }

    #[test]
    fn coalesced_empty_news_and_partial_reads_keep_every_text_right() {
        let r = Replies::new().unwrap();
        r.set_limit(1);
        r.push_news(&mut batch([("x", "0"), ("", ""), ("b", "bee")]));
        // Lagging: "" is replaced by a longer value, stored after the rest,
        // though the text it replaces was empty (no garbage to tell).
        r.push_news(&mut batch([("", "now longer")]));
        assert_eq!(r.coalesced(), 1);
        let first = r.pop(Some(Duration::ZERO)).unwrap().unwrap();
        assert_eq!(first, ["DELIVER", "x", "0"]);
        // More arrives while the reader is half way through its batch.
        r.push_news(&mut batch([("d", "4")]));
        let rest = drain(&r);
        assert_eq!(
            rest,
            [
                ["DELIVER", "", "now longer"],
                ["DELIVER", "b", "bee"],
                ["DELIVER", "d", "4"]
            ]
        );
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn a_reader_waiting_forever_does_not_block_a_reader_with_a_timeout() {
        let r = std::sync::Arc::new(Replies::new().unwrap());
        let forever = {
            let r = r.clone();
            std::thread::spawn(move || r.pop(None))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let asked = Instant::now();
        let got = r.pop(Some(Duration::from_millis(100)));
        assert!(matches!(got, Ok(None)));
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        r.push(vec!["STATUS".into(), "0".into()]);
        assert_eq!(forever.join().unwrap().unwrap().unwrap(), ["STATUS", "0"]);
    }

    #[test]
    fn only_news_held_back_is_folded_and_each_fold_is_counted() {
        let r = Replies::new().unwrap();
        r.set_limit(2);
        r.push_news(&mut batch([("a", "1"), ("b", "1")])); // within the limit
        r.push_news(&mut batch([("a", "2")])); // beyond: may be folded
        r.push_news(&mut batch([("a", "3"), ("c", "1")]));
        r.push_news(&mut batch([("a", "4")]));
        assert_eq!(r.coalesced(), 2);
        assert_eq!(r.len(), 4);
        r.fd();
        let got = drain(&r);
        assert_eq!(
            got,
            [
                ["DELIVER", "a", "1"],
                ["DELIVER", "b", "1"],
                ["DELIVER", "a", "4"],
                ["DELIVER", "c", "1"],
            ]
        );
        assert!(!readable(&r));
        // Caught up: nothing is folded any more.
        r.push_news(&mut batch([("a", "5"), ("a", "6")]));
        assert_eq!(drain(&r).len(), 2);
        assert_eq!(r.coalesced(), 2);
    }

    #[test]
    fn news_never_moves_before_a_reply() {
        let r = Replies::new().unwrap();
        r.set_limit(1);
        r.push_news(&mut batch([("a", "1")]));
        r.push_news(&mut batch([("b", "1")]));
        r.push(vec!["STATUS".into(), "2".into()]);
        r.push_news(&mut batch([("a", "2")]));
        let got = drain(&r);
        let status = got.iter().position(|m| m[0] == "STATUS").unwrap();
        let a2 = got
            .iter()
            .position(|m| m[..] == ["DELIVER", "a", "2"])
            .unwrap();
        assert!(a2 > status, "{got:?}");
        assert!(
            got.iter().any(|m| m[..] == ["DELIVER", "a", "1"]),
            "{got:?}"
        );
    }

    /// True if the pipe's descriptor holds a byte (is readable).
    fn readable(r: &Replies) -> bool {
        r.pipe.is_raised()
    }

    #[test]
    fn descriptor_is_readable_exactly_while_a_message_waits() {
        let r = Replies::new().unwrap();
        r.fd();
        assert!(!readable(&r));
        r.push(vec!["X".into()]);
        assert!(readable(&r));
        drain(&r);
        assert!(!readable(&r));
        r.close();
        assert!(readable(&r), "a closed pipe is readable");
    }

    #[test]
    fn descriptor_is_written_only_once_asked_for_and_then_at_once() {
        let r = Replies::new().unwrap();
        r.push(vec!["X".into()]);
        r.push_news(&mut batch([("k", "v")]));
        assert!(!readable(&r), "nobody asked for the descriptor");
        r.fd();
        assert!(readable(&r), "something waits: readable at once");
        drain(&r);
        assert!(!readable(&r));
        r.push(vec!["Y".into()]);
        assert!(readable(&r));
        // Taken by the reader but not all read: still readable when asked.
        let r = Replies::new().unwrap();
        r.push(vec!["A".into()]);
        r.push(vec!["B".into()]);
        assert!(r.pop(Some(Duration::ZERO)).unwrap().is_some());
        r.fd();
        assert!(readable(&r));
        assert!(r.pop(Some(Duration::ZERO)).unwrap().is_some());
        assert!(!readable(&r));
    }
}
