//! News for the application (`DELIVER key value`, `EXPIRE key`,
//! `DELETE key`) kept as text in one buffer instead of one allocation per
//! string.
//!
//! The engine appends news here as it merges tuples; the reactor moves a
//! whole batch into the reply pipe under one lock; the application's
//! receive borrows the strings straight from the pipe. A tuple delivered to
//! the application is thus copied, never allocated, until the receiver makes
//! its own strings (C strings, Python strings). Allocating on one thread and
//! freeing on another is what made the allocator the top of the profile.

use std::collections::VecDeque;

/// What a piece of news says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A new tuple or a new value.
    Deliver,
    /// A tuple's time to live ran out.
    Expire,
    /// A tuple was deleted.
    Delete,
}

impl Kind {
    /// The first frame of the message the application receives.
    pub fn command(self) -> &'static str {
        match self {
            Kind::Deliver => "DELIVER",
            Kind::Expire => "EXPIRE",
            Kind::Delete => "DELETE",
        }
    }
}

/// One piece of news, borrowed from the buffer that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewsRef<'a> {
    pub kind: Kind,
    pub key: &'a str,
    /// The value of a delivery; empty otherwise.
    pub value: &'a str,
}

impl<'a> NewsRef<'a> {
    /// Calls `f` with the frames of the application's message.
    #[inline]
    pub fn with_frames<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        match self.kind {
            Kind::Deliver => f(&[self.kind.command(), self.key, self.value]),
            _ => f(&[self.kind.command(), self.key]),
        }
    }
}

/// Where one piece of news sits in a text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) kind: Kind,
    pub(crate) key_len: u32,
    pub(crate) value_len: u32,
}

impl Item {
    pub(crate) fn len(&self) -> usize {
        self.key_len as usize + self.value_len as usize
    }

    /// The news this item describes, its text starting at `at` in `text`.
    #[inline]
    pub(crate) fn get<'a>(&self, text: &'a str, at: usize) -> NewsRef<'a> {
        let split = at + self.key_len as usize;
        NewsRef {
            kind: self.kind,
            key: &text[at..split],
            value: &text[split..split + self.value_len as usize],
        }
    }
}

/// Capacity kept once a batch is gone: room for twice the batch just
/// gone, at least this much. Buffers keep pace with steady traffic
/// (growing them from a smaller size for every batch copied them again and
/// again), and what a burst left is given back at the next, smaller batch.
const KEEP_ITEMS: usize = 1024;
const KEEP_TEXT: usize = 64 << 10;

/// The capacity to keep after a batch of `used` elements.
pub(crate) fn keep_after(used: usize, least: usize) -> usize {
    least.max(used.saturating_mul(2))
}

/// A queue of news, first in first out.
#[derive(Debug, Default)]
pub struct NewsQueue {
    text: String,
    /// Start of the first item's text.
    head: usize,
    items: VecDeque<Item>,
}

impl NewsQueue {
    pub fn new() -> NewsQueue {
        NewsQueue::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends a piece of news (the value is ignored unless it is a
    /// delivery).
    pub fn push(&mut self, kind: Kind, key: &str, value: &str) {
        let value = if kind == Kind::Deliver { value } else { "" };
        self.text.push_str(key);
        self.text.push_str(value);
        self.items.push_back(Item {
            kind,
            key_len: len32(key),
            value_len: len32(value),
        });
    }

    /// Removes the oldest piece of news and hands it to `f`.
    pub fn pop_with<R>(&mut self, f: impl FnOnce(NewsRef<'_>) -> R) -> Option<R> {
        let item = self.items.pop_front()?;
        let at = self.head;
        self.head += item.len();
        let out = f(item.get(&self.text, at));
        if self.items.is_empty() {
            self.text.clear();
            self.head = 0;
        }
        Some(out)
    }

    /// Hands every piece of news to `f`, oldest first, and empties the
    /// queue (its memory is kept for the next batch).
    pub fn drain(&mut self, mut f: impl FnMut(NewsRef<'_>)) {
        self.drain_items(|n, _| f(n));
    }

    /// Takes the whole batch at once: its text (the news back to back, in
    /// order) is swapped with `text`, which must be empty and whose memory
    /// the queue keeps for the next batch; each item goes to `f`.
    pub(crate) fn take_text(&mut self, text: &mut String, mut f: impl FnMut(Item)) {
        debug_assert!(text.is_empty());
        if self.head > 0 {
            self.text.drain(..self.head);
            self.head = 0;
        }
        let used_text = self.text.len();
        std::mem::swap(&mut self.text, text);
        // The buffer taken in exchange may be small: room for a batch like
        // this one now, rather than growing step by step with copies.
        self.text.reserve(used_text);
        let used = self.items.len();
        for item in self.items.drain(..) {
            f(item);
        }
        self.items.shrink_to(keep_after(used, KEEP_ITEMS));
    }

    /// The text of the waiting news, back to back, in order.
    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.text[self.head..]
    }

    pub(crate) fn drain_items(&mut self, mut f: impl FnMut(NewsRef<'_>, Item)) {
        let (used, used_text) = (self.items.len(), self.text.len());
        let mut at = self.head;
        for &item in &self.items {
            f(item.get(&self.text, at), item);
            at += item.len();
        }
        self.items.clear();
        self.text.clear();
        self.head = 0;
        self.text.shrink_to(keep_after(used_text, KEEP_TEXT));
        self.items.shrink_to(keep_after(used, KEEP_ITEMS));
    }
}

/// Keys are at most 255 bytes (ZGP) and values are bounded by the largest
/// frame accepted, far below 4 GiB; a longer string would be a bug upstream.
fn len32(s: &str) -> u32 {
    u32::try_from(s.len()).expect("news text shorter than 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_text() {
        let mut q = NewsQueue::new();
        q.push(Kind::Deliver, "k1", "v1");
        q.push(Kind::Expire, "k2", "ignored");
        q.push(Kind::Deliver, "ключ", "значение");
        q.push(Kind::Delete, "k3", "");
        let first = q.pop_with(|n| (n.kind, n.key.to_string(), n.value.to_string()));
        assert_eq!(first, Some((Kind::Deliver, "k1".into(), "v1".into())));
        let mut rest = Vec::new();
        q.drain(|n| n.with_frames(|f| rest.push(f.join(" "))));
        assert_eq!(rest, ["EXPIRE k2", "DELIVER ключ значение", "DELETE k3"]);
        assert!(q.is_empty());
        assert_eq!(q.pop_with(|_| ()), None);
    }

    #[test]
    fn keeps_room_for_steady_batches_and_gives_back_a_burst() {
        let mut q = NewsQueue::new();
        let batch = |q: &mut NewsQueue, n: usize| {
            for i in 0..n {
                q.push(Kind::Deliver, &format!("key-{i:08}"), "value");
            }
            q.drain(|_| ());
        };
        batch(&mut q, 5000);
        // Room for the next batch like it: it will not grow from nothing.
        assert!(q.items.capacity() >= 5000, "{}", q.items.capacity());
        assert!(q.text.capacity() >= 5000 * 17, "{}", q.text.capacity());
        batch(&mut q, 10);
        // Quiet again: the burst's room is given back.
        assert!(
            q.items.capacity() <= 2 * KEEP_ITEMS,
            "{}",
            q.items.capacity()
        );
        assert!(q.text.capacity() <= 2 * KEEP_TEXT, "{}", q.text.capacity());
    }

    #[test]
    fn reuses_its_buffer_once_emptied() {
        let mut q = NewsQueue::new();
        for round in 0..100 {
            q.push(Kind::Deliver, "key", &format!("{round:04}"));
            let got = q.pop_with(|n| n.value.to_string());
            assert_eq!(got.as_deref(), Some(format!("{round:04}").as_str()));
        }
        assert_eq!(q.text.len(), 0);
        assert_eq!(q.head, 0);
    }
}
