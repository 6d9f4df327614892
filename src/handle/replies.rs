//! The reply pipe from a node to its application: replies and news in the
//! order the node produced them, and a descriptor that is readable exactly
//! while something waits.
//!
//! The node never waits for the application. When the application falls
//! more than `limit` messages behind, news about a key that already waits
//! in the queue (since the last reply) replaces it instead of queueing
//! again: the application still learns the latest state of every key, the
//! queue is bounded by `limit` plus the number of keys, and the number of
//! news folded this way is counted (`STATS replies-coalesced`).

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

// The queue length beyond which news is coalesced per key, unless
// `server/pipe-limit` says otherwise, is a setting of control's.
use crate::control::settings::DEFAULT_PIPE_LIMIT as DEFAULT_LIMIT;
use crate::error::{Error, Result};
use crate::handle::ready_signal::ReadySignal;
use crate::news::{keep_after, Item, NewsQueue, NewsRef};

/// Buffer sizes kept once the pipe is empty, at least: room for twice what
/// the last batch needed is kept (see `news::keep_after`), what a burst
/// left beyond that is given back.
const KEEP_BYTES: usize = 64 << 10;
const KEEP_SLOTS: usize = 1024;

/// Text kept beyond twice the live text before it is compacted.
const TEXT_SLACK: usize = 64 << 10;

enum Slot {
    Reply(Vec<String>),
    /// News whose text starts at absolute offset `at` of the text buffer.
    News {
        item: Item,
        at: u64,
    },
}

struct Inner {
    queue: VecDeque<Slot>,
    /// Sequence number of `queue[0]`.
    base: u64,
    /// Sequence number of the last reply queued (news never moves past it).
    barrier: Option<u64>,
    /// While lagging: key -> sequence number of its waiting news.
    waiting: HashMap<Box<str>, u64>,
    limit: usize,
    coalesced: u64,
    closed: bool,
    /// The descriptor holds a byte (it is readable).
    signalled: bool,
    /// Somebody asked for the descriptor: until then nothing can be polling
    /// it, so it is not written (a pipe read with `pop` alone costs no
    /// system call per batch; a chain of nodes saw 7 % off each hop).
    watched: bool,
    /// The text of every waiting news, back to back.
    text: String,
    /// Absolute offset of `text[0]` (offsets only grow, so a slot's offset
    /// stays valid across compactions that rewrite it).
    text_base: u64,
    /// Bytes of `text` that waiting news still uses.
    live_text: usize,
    /// Readers blocked in `pop`.
    readers: usize,
}

impl Inner {
    /// Appends the text of `n`; returns its absolute offset.
    fn append(&mut self, n: &NewsRef<'_>) -> u64 {
        let at = self.text_base + self.text.len() as u64;
        self.text.push_str(n.key);
        self.text.push_str(n.value);
        self.live_text += n.key.len() + n.value.len();
        at
    }

    fn push_one(&mut self, n: NewsRef<'_>, item: Item) {
        if self.queue.len() >= self.limit {
            if let Some(&seq) = self.waiting.get(n.key) {
                let after_barrier = self.barrier.is_none_or(|b| seq > b);
                let index = seq.checked_sub(self.base).map(|i| i as usize);
                if let (true, Some(i)) = (after_barrier, index) {
                    if let Some(Slot::News { item: old, .. }) = self.queue.get(i) {
                        let old_len = old.len();
                        let at = self.append(&n);
                        self.live_text -= old_len;
                        self.queue[i] = Slot::News { item, at };
                        self.coalesced += 1;
                        return;
                    }
                }
            }
            let seq = self.base + self.queue.len() as u64;
            self.waiting.insert(n.key.into(), seq);
        }
        let at = self.append(&n);
        self.queue.push_back(Slot::News { item, at });
    }

    /// Rewrites the text without the parts no waiting news uses, once they
    /// outweigh the rest (coalesced news leaves such holes).
    fn compact_text(&mut self) {
        if self.text.len() <= 2 * self.live_text + TEXT_SLACK {
            return;
        }
        let new_base = self.text_base + self.text.len() as u64;
        let mut text = String::with_capacity(self.live_text);
        for slot in self.queue.iter_mut() {
            if let Slot::News { item, at } = slot {
                let start = (*at - self.text_base) as usize;
                let new_at = new_base + text.len() as u64;
                text.push_str(&self.text[start..start + item.len()]);
                *at = new_at;
            }
        }
        self.text = text;
        self.text_base = new_base;
    }
}

/// What the reader took from the pipe in one go: served without taking
/// the pipe's lock per message (which the node's thread also takes).
#[derive(Default)]
struct Front {
    /// The pipe's queue as it was taken (news offsets in it are not used:
    /// the text below holds the news back to back, in order).
    slots: VecDeque<Slot>,
    /// The text of the news in `slots`, in order.
    text: String,
    /// Where the next news' text starts.
    at: usize,
    /// Slots and text bytes of the last batch taken.
    taken: (usize, usize),
}

pub(crate) struct Replies {
    /// Lock order: `front`, then `inner`.
    front: Mutex<Front>,
    inner: Mutex<Inner>,
    ready: Condvar,
    signal: ReadySignal,
}

impl Replies {
    pub(crate) fn new() -> Result<Replies> {
        let signal = ReadySignal::new().map_err(|e| Error::io("cannot create reply pipe", e))?;
        Ok(Replies {
            front: Mutex::new(Front::default()),
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                base: 0,
                barrier: None,
                waiting: HashMap::new(),
                limit: DEFAULT_LIMIT,
                coalesced: 0,
                closed: false,
                signalled: false,
                watched: false,
                text: String::new(),
                text_base: 0,
                live_text: 0,
                readers: 0,
            }),
            ready: Condvar::new(),
            signal,
        })
    }

    /// Sets the queue length beyond which news is coalesced.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.inner.lock().limit = limit.max(1);
    }

    fn signal(&self, g: &mut Inner) {
        if g.watched && !g.signalled {
            g.signalled = self.signal.raise();
        }
    }

    /// Queues a reply (PORT, STATUS, ...): it follows all news before it.
    pub(crate) fn push(&self, msg: Vec<String>) {
        let mut g = self.inner.lock();
        g.queue.push_back(Slot::Reply(msg));
        g.barrier = Some(g.base + g.queue.len() as u64 - 1);
        self.signal(&mut g);
        self.wake_reader(g);
    }

    /// Wakes a reader blocked in `pop`, if there is one (a notify with
    /// nobody waiting would still cost a system call per batch).
    fn wake_reader(&self, g: MutexGuard<'_, Inner>) {
        let waiting = g.readers > 0;
        drop(g);
        if waiting {
            self.ready.notify_one();
        }
    }

    /// Moves every news of `news` into the pipe, under one lock.
    pub(crate) fn push_news(&self, news: &mut NewsQueue) {
        if news.is_empty() {
            return;
        }
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if inner.queue.len() + news.len() <= inner.limit {
            // Not lagging: nothing to coalesce, the text moves whole (a
            // swap when the pipe holds no text, one copy otherwise).
            let mut at = inner.text_base + inner.text.len() as u64;
            let added = news.text().len();
            let queue = &mut inner.queue;
            let mut push = |item: Item| {
                queue.push_back(Slot::News { item, at });
                at += item.len() as u64;
            };
            if inner.text.is_empty() {
                news.take_text(&mut inner.text, &mut push);
            } else {
                inner.text.push_str(news.text());
                news.drain_items(|_, item| push(item));
            }
            inner.live_text += added;
        } else {
            news.drain_items(|n, item| inner.push_one(n, item));
            inner.compact_text();
        }
        self.signal(&mut g);
        self.wake_reader(g);
    }

    /// Marks the pipe closed: readers get what is queued, then `Terminated`.
    pub(crate) fn close(&self) {
        let mut g = self.inner.lock();
        g.closed = true;
        self.signal(&mut g);
        drop(g);
        self.ready.notify_all();
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        let front = self.front.lock();
        front.slots.len() + self.inner.lock().queue.len()
    }

    /// News folded into earlier news of the same key so far.
    pub(crate) fn coalesced(&self) -> u64 {
        self.inner.lock().coalesced
    }

    /// The next message, waiting at most `timeout` (forever if None).
    pub(crate) fn pop(&self, timeout: Option<Duration>) -> Result<Option<Vec<String>>> {
        self.pop_with(timeout, |frames| {
            frames.iter().map(|f| f.to_string()).collect()
        })
    }

    /// The next message, waiting until `deadline` (forever if None), handed
    /// to `f` as borrowed frames: nothing is allocated for news. The reader
    /// takes everything waiting in one go and serves it from there.
    pub(crate) fn pop_with<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&[&str]) -> R,
    ) -> Result<Option<R>> {
        // The clock is read only if there is something to wait for.
        let mut deadline: Option<Instant> = None;
        loop {
            let mut front = self.front.lock();
            if front.slots.is_empty() {
                let mut g = self.inner.lock();
                if g.queue.is_empty() {
                    drop(front);
                    if g.closed {
                        return Err(Error::Terminated);
                    }
                    let until = match timeout {
                        None => None,
                        Some(t) if t.is_zero() => return Ok(None),
                        Some(t) => {
                            let now = Instant::now();
                            let d = *deadline.get_or_insert(now + t);
                            if now >= d {
                                return Ok(None);
                            }
                            Some(d)
                        }
                    };
                    g.readers += 1;
                    // Woken, timed out or spurious: the loop looks again.
                    match until {
                        None => self.ready.wait(&mut g),
                        Some(d) => {
                            self.ready.wait_until(&mut g, d);
                        }
                    }
                    g.readers -= 1;
                    continue;
                }
                take_all(&mut g, &mut front);
            }
            let out = match front.slots.pop_front() {
                Some(Slot::Reply(m)) => {
                    let frames: Vec<&str> = m.iter().map(String::as_str).collect();
                    f(&frames)
                }
                Some(Slot::News { item, .. }) => {
                    let at = front.at;
                    front.at += item.len();
                    item.get(&front.text, at).with_frames(f)
                }
                None => continue,
            };
            if front.slots.is_empty() {
                front.text.clear();
                front.at = 0;
                let (slots, bytes) = front.taken;
                front.text.shrink_to(keep_after(bytes, KEEP_BYTES));
                front.slots.shrink_to(keep_after(slots, KEEP_SLOTS));
                // Nothing waits any more: the descriptor stops being readable.
                let mut g = self.inner.lock();
                if g.queue.is_empty() && !g.closed && g.signalled {
                    self.signal.lower();
                    g.signalled = false;
                }
            }
            return Ok(Some(out));
        }
    }

    /// The descriptor, readable exactly while something waits (from this
    /// call on: if something waits already, it is readable at once).
    pub(crate) fn fd(&self) -> RawFd {
        let front = self.front.lock();
        let mut g = self.inner.lock();
        if !g.watched {
            g.watched = true;
            if !front.slots.is_empty() || !g.queue.is_empty() || g.closed {
                self.signal(&mut g);
            }
        }
        self.signal.fd()
    }
}

/// Moves everything waiting in the pipe to the reader's front (which is
/// empty), in order: the queue itself changes hands, and without coalesced
/// news so does the text.
fn take_all(inner: &mut Inner, front: &mut Front) {
    debug_assert!(front.slots.is_empty());
    front.text.clear();
    front.at = 0;
    // No news was coalesced (that needs `waiting`) and no text is garbage:
    // the text is exactly the news', in order.
    let clean = inner.waiting.is_empty() && inner.live_text == inner.text.len();
    if clean {
        std::mem::swap(&mut front.text, &mut inner.text);
    } else {
        for slot in &inner.queue {
            if let Slot::News { item, at } = slot {
                let start = (at - inner.text_base) as usize;
                front.text.push_str(&inner.text[start..start + item.len()]);
            }
        }
    }
    let n = inner.queue.len() as u64;
    front.taken = (inner.queue.len(), front.text.len());
    std::mem::swap(&mut front.slots, &mut inner.queue);
    inner.base += n;
    inner.waiting.clear();
    inner.text_base += inner.text.len() as u64;
    inner.text.clear();
    inner.live_text = 0;
    inner.queue.shrink_to(keep_after(front.taken.0, KEEP_SLOTS));
}

#[cfg(test)]
mod tests {
    use super::*;

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
        {
            let g = r.inner.lock();
            assert!(
                g.text.len() <= 2 * g.live_text + TEXT_SLACK,
                "text {} bytes for {} live",
                g.text.len(),
                g.live_text
            );
        }
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
        assert_eq!(r.inner.lock().live_text, 0);
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
        r.signal.is_raised()
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
