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
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::node::Event;

/// Queue length beyond which news is coalesced per key.
pub(crate) const DEFAULT_LIMIT: usize = 100_000;

enum Slot {
    Reply(Vec<String>),
    News(Event),
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
    signalled: bool,
}

pub(crate) struct Replies {
    inner: Mutex<Inner>,
    ready: Condvar,
    signal_tx: UnixStream,
    signal_rx: UnixStream,
}

impl Replies {
    pub(crate) fn new() -> Result<Replies> {
        let (signal_tx, signal_rx) =
            UnixStream::pair().map_err(|e| Error::io("cannot create reply pipe", e))?;
        signal_tx
            .set_nonblocking(true)
            .and_then(|_| signal_rx.set_nonblocking(true))
            .map_err(|e| Error::io("cannot create reply pipe", e))?;
        Ok(Replies {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                base: 0,
                barrier: None,
                waiting: HashMap::new(),
                limit: DEFAULT_LIMIT,
                coalesced: 0,
                closed: false,
                signalled: false,
            }),
            ready: Condvar::new(),
            signal_tx,
            signal_rx,
        })
    }

    /// Sets the queue length beyond which news is coalesced.
    pub(crate) fn set_limit(&self, limit: usize) {
        lock(&self.inner).limit = limit.max(1);
    }

    fn signal(&self, g: &mut Inner) {
        if !g.signalled {
            g.signalled = (&self.signal_tx).write(&[1]).is_ok();
        }
    }

    /// Queues a reply (PORT, STATUS, ...): it follows all news before it.
    pub(crate) fn push(&self, msg: Vec<String>) {
        let mut g = lock(&self.inner);
        g.queue.push_back(Slot::Reply(msg));
        g.barrier = Some(g.base + g.queue.len() as u64 - 1);
        self.signal(&mut g);
        drop(g);
        self.ready.notify_one();
    }

    /// Queues news from the engine, under one lock.
    pub(crate) fn push_news(&self, news: impl Iterator<Item = Event>) {
        let mut g = lock(&self.inner);
        let before = g.queue.len();
        for e in news {
            if g.queue.len() >= g.limit {
                let inner = &mut *g;
                if let Some(&seq) = inner.waiting.get(e.key()) {
                    let after_barrier = inner.barrier.is_none_or(|b| seq > b);
                    let slot = seq
                        .checked_sub(inner.base)
                        .and_then(|i| inner.queue.get_mut(i as usize));
                    if let (true, Some(slot)) = (after_barrier, slot) {
                        *slot = Slot::News(e);
                        inner.coalesced += 1;
                        continue;
                    }
                }
                let seq = inner.base + inner.queue.len() as u64;
                inner.waiting.insert(e.key().into(), seq);
                inner.queue.push_back(Slot::News(e));
            } else {
                g.queue.push_back(Slot::News(e));
            }
        }
        if g.queue.len() == before {
            return;
        }
        self.signal(&mut g);
        drop(g);
        self.ready.notify_one();
    }

    /// Marks the pipe closed: readers get what is queued, then `Terminated`.
    pub(crate) fn close(&self) {
        let mut g = lock(&self.inner);
        g.closed = true;
        self.signal(&mut g);
        drop(g);
        self.ready.notify_all();
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).queue.len()
    }

    /// News folded into earlier news of the same key so far.
    pub(crate) fn coalesced(&self) -> u64 {
        lock(&self.inner).coalesced
    }

    /// The next message, waiting until `deadline` (forever if None).
    pub(crate) fn pop(&self, deadline: Option<Instant>) -> Result<Option<Vec<String>>> {
        let mut g = lock(&self.inner);
        loop {
            if let Some(slot) = g.queue.pop_front() {
                let seq = g.base;
                g.base += 1;
                if g.queue.is_empty() {
                    g.waiting.clear();
                    if !g.closed && g.signalled {
                        let mut buf = [0u8; 16];
                        while matches!((&self.signal_rx).read(&mut buf), Ok(n) if n > 0) {}
                        g.signalled = false;
                    }
                }
                return Ok(Some(match slot {
                    Slot::Reply(m) => m,
                    Slot::News(e) => {
                        if g.waiting.get(e.key()) == Some(&seq) {
                            g.waiting.remove(e.key());
                        }
                        news_message(e)
                    }
                }));
            }
            if g.closed {
                return Err(Error::Terminated);
            }
            g = match deadline {
                None => self.ready.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(None);
                    }
                    self.ready
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.signal_rx.as_raw_fd()
    }
}

/// Locks a mutex, going on if another thread panicked while holding it
/// (the data here stays consistent at every step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The message form of news: `DELIVER key value`, `EXPIRE key`, `DELETE key`.
fn news_message(e: Event) -> Vec<String> {
    match e {
        Event::Deliver { key, value } => vec!["DELIVER".into(), key, value],
        Event::Expire { key } => vec!["EXPIRE".into(), key],
        Event::Delete { key } => vec!["DELETE".into(), key],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver(k: &str, v: &str) -> Event {
        Event::Deliver {
            key: k.into(),
            value: v.into(),
        }
    }

    fn drain(r: &Replies) -> Vec<Vec<String>> {
        std::iter::from_fn(|| r.pop(Some(Instant::now())).unwrap()).collect()
    }

    #[test]
    fn keeps_order_and_every_message_while_not_lagging() {
        let r = Replies::new().unwrap();
        r.push_news([deliver("a", "1"), deliver("a", "2")].into_iter());
        r.push(vec!["STATUS".into(), "1".into()]);
        let got = drain(&r);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], ["DELIVER", "a", "2"]);
        assert_eq!(got[2], ["STATUS", "1"]);
        assert_eq!(r.coalesced(), 0);
    }

    #[test]
    fn lagging_application_gets_latest_value_of_every_key_in_bounded_memory() {
        let r = Replies::new().unwrap();
        r.set_limit(10);
        for round in 0..1000 {
            r.push_news((0..20).map(|k| deliver(&format!("k{k}"), &format!("{round}"))));
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
    fn news_never_moves_before_a_reply() {
        let r = Replies::new().unwrap();
        r.set_limit(1);
        r.push_news([deliver("a", "1")].into_iter());
        r.push_news([deliver("b", "1")].into_iter());
        r.push(vec!["STATUS".into(), "2".into()]);
        r.push_news([deliver("a", "2")].into_iter());
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

    #[test]
    fn descriptor_is_readable_exactly_while_a_message_waits() {
        let r = Replies::new().unwrap();
        let readable = |r: &Replies| {
            let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
            socket2::SockRef::from(&r.signal_rx)
                .peek(&mut probe)
                .map(|n| n > 0)
                .unwrap_or(false)
        };
        assert!(!readable(&r));
        r.push(vec!["X".into()]);
        assert!(readable(&r));
        drain(&r);
        assert!(!readable(&r));
    }
}
