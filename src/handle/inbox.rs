//! The command queue from a node's handle to its event loop.
//!
//! PUBLISH and UNPUBLISH, by far the most frequent commands, are copied as
//! text into one buffer: nothing is allocated per command, and nothing
//! allocated on the application's thread is freed on the node's (the
//! allocator's slowest path). Other commands travel as [`Envelope`]s in the
//! same queue, so every command runs in the order it was sent.
//!
//! The loop takes the whole queue at once by swapping it with its own,
//! emptied, batch: the two buffers are reused for the life of the node.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::control::command::Envelope;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
enum Entry {
    Publish {
        key_len: u32,
        value_len: u32,
        ttl_ms: Option<u64>,
    },
    Unpublish {
        key_len: u32,
    },
    /// The next of `envelopes`.
    Command,
}

impl Entry {
    /// The bytes of text it holds: its key's and its value's.
    fn text_lens(&self) -> (usize, usize) {
        match *self {
            Entry::Publish {
                key_len, value_len, ..
            } => (key_len as usize, value_len as usize),
            Entry::Unpublish { key_len } => (key_len as usize, 0),
            Entry::Command => (0, 0),
        }
    }
}

/// Commands in the order they were sent.
#[derive(Default)]
pub(crate) struct Batch {
    text: String,
    entries: VecDeque<Entry>,
    envelopes: VecDeque<Envelope>,
    /// Read position in `text`.
    at: usize,
}

/// One command taken from a [`Batch`].
pub(crate) enum Next<'a> {
    Publish {
        key: &'a str,
        value: &'a str,
        ttl_ms: Option<u64>,
    },
    Unpublish(&'a str),
    Command(Envelope),
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the oldest command.
    pub(crate) fn next(&mut self) -> Option<Next<'_>> {
        let entry = self.entries.pop_front()?;
        let start = self.at;
        let (key_len, value_len) = entry.text_lens();
        let split = start + key_len;
        self.at = split + value_len;
        Some(match entry {
            Entry::Publish { ttl_ms, .. } => Next::Publish {
                key: &self.text[start..split],
                value: &self.text[split..self.at],
                ttl_ms,
            },
            Entry::Unpublish { .. } => Next::Unpublish(&self.text[start..split]),
            Entry::Command => match self.envelopes.pop_front() {
                Some(env) => Next::Command(env),
                // Every Command entry is pushed with its envelope.
                None => return None,
            },
        })
    }

    fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
        self.envelopes.clear();
        self.at = 0;
    }

    /// Empties the batch, giving back the memory a burst left behind.
    fn reset(&mut self) {
        self.clear();
        if self.text.capacity() > KEEP_BYTES {
            self.text = String::new();
        }
        if self.entries.capacity() > KEEP_ENTRIES {
            self.entries = VecDeque::new();
        }
    }
}

/// Commands queued before a sender waits for the node to catch up.
const MAX_ENTRIES: usize = 1024;
/// Text queued before a sender waits (a larger single command still goes
/// through once the queue is empty).
const MAX_BYTES: usize = 8 << 20;
/// Buffer sizes kept after a burst; larger ones are freed once drained.
const KEEP_BYTES: usize = 1 << 20;
const KEEP_ENTRIES: usize = MAX_ENTRIES;

/// The queue a handle fills and its node's loop empties. It is bounded: a
/// sender that gets more than [`MAX_ENTRIES`] commands or [`MAX_BYTES`] of
/// text ahead of its node waits until the node has taken them (as a CZMQ
/// actor's pipe blocks at its high-water mark), so memory stays bounded
/// however fast the application publishes.
pub(crate) struct Inbox {
    queue: Mutex<Batch>,
    /// Signalled when the node takes the queue, or closes it.
    space: Condvar,
    /// Senders waiting on `space`.
    waiters: std::sync::atomic::AtomicUsize,
    /// The node is gone: commands are refused (`Terminated`).
    closed: AtomicBool,
    /// The node's `limits/max-frame`: a PUBLISH whose tuple could not be
    /// forwarded within it is refused here, with the reason.
    max_frame: AtomicUsize,
}

impl Default for Inbox {
    fn default() -> Inbox {
        Inbox {
            queue: Mutex::default(),
            space: Condvar::new(),
            waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            max_frame: AtomicUsize::new(crate::security::Limits::default().max_frame),
        }
    }
}

/// Keys are limited to 255 bytes and values to the largest value accepted
/// (checked by the command parser), far below 4 GiB.
fn len32(s: &str) -> u32 {
    u32::try_from(s.len()).expect("checked by the command parser")
}

impl Inbox {
    /// Whether a PUBLISH obeys the size rule
    /// ([`crate::engine::check_tuple_size`]) with the node's current
    /// `limits/max-frame`; `Err` says why not.
    pub(crate) fn check_tuple_size(&self, key: &str, value: &str) -> Result<()> {
        let max_frame = self.max_frame.load(Ordering::Relaxed);
        crate::engine::check_tuple_size(key.len(), value.len(), max_frame)
            .map_err(|why| Error::command(format!("PUBLISH {key}: {why}")))
    }

    /// Queues a PUBLISH (checked by the caller).
    pub(crate) fn publish(&self, key: &str, value: &str, ttl_ms: Option<u64>) -> Result<()> {
        let mut q = self.open(key.len() + value.len())?;
        q.text.push_str(key);
        q.text.push_str(value);
        q.entries.push_back(Entry::Publish {
            key_len: len32(key),
            value_len: len32(value),
            ttl_ms,
        });
        Ok(())
    }

    /// The node's `limits/max-frame` changed.
    pub(crate) fn set_max_frame(&self, max_frame: usize) {
        self.max_frame.store(max_frame, Ordering::Relaxed);
    }

    /// Queues an UNPUBLISH (checked by the caller).
    pub(crate) fn unpublish(&self, key: &str) -> Result<()> {
        let mut q = self.open(key.len())?;
        q.text.push_str(key);
        q.entries.push_back(Entry::Unpublish {
            key_len: len32(key),
        });
        Ok(())
    }

    /// Queues any other command.
    pub(crate) fn command(&self, env: Envelope) -> Result<()> {
        let mut q = self.open(0)?;
        q.envelopes.push_back(env);
        q.entries.push_back(Entry::Command);
        Ok(())
    }

    /// The queue with room for a command of `bytes` of text, waiting for
    /// the node to take what is queued if it is full; an error if the node
    /// is gone. Checked under the lock, so a command is either refused or
    /// dropped by [`close`](Self::close), never left behind.
    fn open(&self, bytes: usize) -> Result<MutexGuard<'_, Batch>> {
        let mut q = self.queue.lock();
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(Error::Terminated);
            }
            let full = q.entries.len() >= MAX_ENTRIES
                || (!q.entries.is_empty() && q.text.len() + bytes > MAX_BYTES);
            if !full {
                return Ok(q);
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            self.space.wait(&mut q);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The node is gone: what waits is dropped (a caller waiting for its
    /// acknowledgement learns `Terminated`) and later commands are refused.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut q = self.queue.lock();
        q.clear();
        drop(q);
        self.space.notify_all();
    }

    /// Swaps everything queued into `batch` once `batch` is used up (what it
    /// still holds is kept and served first). False if nothing is queued.
    pub(crate) fn take(&self, batch: &mut Batch) -> bool {
        if !batch.is_empty() {
            return true;
        }
        batch.reset();
        let mut q = self.queue.lock();
        std::mem::swap(&mut *q, batch);
        // A waiting sender registered itself under the lock, so it is seen.
        let waiting = self.waiters.load(Ordering::SeqCst) > 0;
        drop(q);
        if waiting {
            self.space.notify_all();
        }
        !batch.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::command::Command;

    /// A STATUS without an acknowledgement.
    fn status() -> Envelope {
        Envelope {
            cmd: Command::Status,
            ack: None,
            direct: false,
        }
    }

    fn drain(inbox: &Inbox) -> Vec<String> {
        let mut batch = Batch::default();
        let mut out = Vec::new();
        while inbox.take(&mut batch) {
            while let Some(next) = batch.next() {
                out.push(match next {
                    Next::Publish { key, value, ttl_ms } => format!("P {key}={value} {ttl_ms:?}"),
                    Next::Unpublish(key) => format!("U {key}"),
                    Next::Command(env) => format!("C {}", env.cmd),
                });
            }
        }
        out
    }

    #[test]
    fn commands_come_out_in_the_order_they_went_in() {
        let inbox = Inbox::default();
        inbox.publish("k1", "v1", None).unwrap();
        inbox.command(status()).unwrap();
        inbox.publish("ключ", "", Some(5)).unwrap();
        inbox.unpublish("k1").unwrap();
        assert_eq!(
            drain(&inbox),
            ["P k1=v1 None", "C STATUS", "P ключ= Some(5)", "U k1"]
        );
        assert!(drain(&inbox).is_empty());
    }

    #[test]
    fn a_batch_in_progress_is_finished_before_the_next_is_taken() {
        let inbox = Inbox::default();
        inbox.publish("a", "1", None).unwrap();
        inbox.publish("b", "2", None).unwrap();
        let mut batch = Batch::default();
        assert!(inbox.take(&mut batch));
        assert!(matches!(batch.next(), Some(Next::Publish { key: "a", .. })));
        inbox.publish("c", "3", None).unwrap();
        assert!(inbox.take(&mut batch));
        assert!(matches!(batch.next(), Some(Next::Publish { key: "b", .. })));
        assert!(inbox.take(&mut batch));
        assert!(matches!(
            batch.next(),
            Some(Next::Publish {
                key: "c",
                value: "3",
                ..
            })
        ));
        assert!(!inbox.take(&mut batch));
    }

    #[test]
    fn a_closed_inbox_refuses_commands_and_drops_waiting_ones() {
        let inbox = Inbox::default();
        let (ack, acked) = std::sync::mpsc::sync_channel(1);
        inbox
            .command(Envelope {
                cmd: Command::Status,
                ack: Some(ack),
                direct: false,
            })
            .unwrap();
        inbox.close();
        assert!(acked.recv().is_err(), "the waiting caller is released");
        assert!(matches!(
            inbox.publish("k", "v", None),
            Err(Error::Terminated)
        ));
        assert!(matches!(inbox.unpublish("k"), Err(Error::Terminated)));
        assert!(drain(&inbox).is_empty());
    }

    #[test]
    fn a_sender_far_ahead_of_its_node_waits_and_loses_nothing() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let sender = {
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                for i in 0..3 * MAX_ENTRIES {
                    inbox.publish(&format!("k{i}"), "v", None).unwrap();
                }
            })
        };
        // Until the node takes something, the sender stops at the bound.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while inbox.queue.lock().entries.len() < MAX_ENTRIES {
            assert!(
                std::time::Instant::now() < deadline,
                "sender never filled the queue"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(inbox.queue.lock().entries.len(), MAX_ENTRIES, "bounded");
        let mut batch = Batch::default();
        let mut got = 0;
        while got < 3 * MAX_ENTRIES {
            assert!(std::time::Instant::now() < deadline, "only {got} taken");
            if !inbox.take(&mut batch) {
                std::thread::yield_now();
                continue;
            }
            while let Some(next) = batch.next() {
                let Next::Publish { key, .. } = next else {
                    panic!("not a publish")
                };
                assert_eq!(key, format!("k{got}"), "in order");
                got += 1;
            }
        }
        sender.join().unwrap();
    }

    #[test]
    fn a_large_command_waits_for_room_and_a_closed_inbox_releases_waiters() {
        let inbox = std::sync::Arc::new(Inbox::default());
        let big = "v".repeat(MAX_BYTES / 2 + 1);
        inbox.publish("a", &big, None).unwrap();
        let spawn = |key: &'static str| {
            let (inbox, big) = (inbox.clone(), big.clone());
            std::thread::spawn(move || inbox.publish(key, &big, None))
        };
        let second = spawn("b");
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(inbox.queue.lock().entries.len(), 1, "b waits for room");
        let mut batch = Batch::default();
        assert!(inbox.take(&mut batch));
        second.join().unwrap().unwrap();
        assert_eq!(
            inbox.queue.lock().entries.len(),
            1,
            "b queued once a was taken"
        );
        let third = spawn("c");
        std::thread::sleep(std::time::Duration::from_millis(50));
        inbox.close();
        assert!(matches!(third.join().unwrap(), Err(Error::Terminated)));
    }
}
