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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::command::Envelope;
use crate::error::{Error, Result};
use crate::replies::lock;

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
        Some(match entry {
            Entry::Publish {
                key_len,
                value_len,
                ttl_ms,
            } => {
                let split = start + key_len as usize;
                self.at = split + value_len as usize;
                Next::Publish {
                    key: &self.text[start..split],
                    value: &self.text[split..self.at],
                    ttl_ms,
                }
            }
            Entry::Unpublish { key_len } => {
                self.at = start + key_len as usize;
                Next::Unpublish(&self.text[start..self.at])
            }
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
}

/// The queue a handle fills and its node's loop empties.
#[derive(Default)]
pub(crate) struct Inbox {
    queue: Mutex<Batch>,
    /// The node is gone: commands are refused (`Terminated`).
    closed: AtomicBool,
}

/// Keys are limited to 255 bytes and values to the largest value accepted
/// (checked by the command parser), far below 4 GiB.
fn len32(s: &str) -> u32 {
    u32::try_from(s.len()).expect("checked by the command parser")
}

impl Inbox {
    /// Queues a PUBLISH (checked by the caller).
    pub(crate) fn publish(&self, key: &str, value: &str, ttl_ms: Option<u64>) -> Result<()> {
        let mut q = self.open()?;
        q.text.push_str(key);
        q.text.push_str(value);
        q.entries.push_back(Entry::Publish {
            key_len: len32(key),
            value_len: len32(value),
            ttl_ms,
        });
        Ok(())
    }

    /// Queues an UNPUBLISH (checked by the caller).
    pub(crate) fn unpublish(&self, key: &str) -> Result<()> {
        let mut q = self.open()?;
        q.text.push_str(key);
        q.entries.push_back(Entry::Unpublish {
            key_len: len32(key),
        });
        Ok(())
    }

    /// Queues any other command.
    pub(crate) fn command(&self, env: Envelope) -> Result<()> {
        let mut q = self.open()?;
        q.envelopes.push_back(env);
        q.entries.push_back(Entry::Command);
        Ok(())
    }

    /// The queue, unless the node is gone. Checked under the lock, so a
    /// command is either refused or dropped by [`close`](Self::close),
    /// never left behind.
    fn open(&self) -> Result<std::sync::MutexGuard<'_, Batch>> {
        let q = lock(&self.queue);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Terminated);
        }
        Ok(q)
    }

    /// The node is gone: what waits is dropped (a caller waiting for its
    /// acknowledgement learns `Terminated`) and later commands are refused.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut q = lock(&self.queue);
        q.clear();
    }

    /// Swaps everything queued into `batch` once `batch` is used up (what it
    /// still holds is kept and served first). False if nothing is queued.
    pub(crate) fn take(&self, batch: &mut Batch) -> bool {
        if !batch.is_empty() {
            return true;
        }
        batch.clear();
        let mut q = lock(&self.queue);
        std::mem::swap(&mut *q, batch);
        !batch.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

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
        inbox
            .command(Envelope {
                cmd: Command::Status,
                ack: None,
                direct: false,
            })
            .unwrap();
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
}
