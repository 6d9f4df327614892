//! A bounded message pipe from an actor thread to its application, with a
//! descriptor that is readable exactly while a message waits.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::handle::ready_signal::ReadySignal;

struct Inner<T> {
    queue: VecDeque<T>,
    closed: bool,
    signalled: bool,
    dropped: u64,
}

pub(crate) struct Pipe<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
    limit: usize,
    signal: ReadySignal,
}

impl<T> Pipe<T> {
    pub(crate) fn new(limit: usize) -> Result<Pipe<T>> {
        let signal = ReadySignal::new().map_err(|e| Error::io("cannot create beacon pipe", e))?;
        Ok(Pipe {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                closed: false,
                signalled: false,
                dropped: 0,
            }),
            ready: Condvar::new(),
            limit: limit.max(1),
            signal,
        })
    }

    /// Queues a message; with `droppable`, only while under the limit
    /// (returns false when it was dropped).
    pub(crate) fn push(&self, msg: T, droppable: bool) -> bool {
        let mut g = self.inner.lock();
        if droppable && g.queue.len() >= self.limit {
            g.dropped += 1;
            return false;
        }
        g.queue.push_back(msg);
        if !g.signalled {
            g.signalled = self.signal.raise();
        }
        self.ready.notify_all();
        true
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.inner.lock().dropped
    }

    pub(crate) fn close(&self) {
        let mut g = self.inner.lock();
        g.closed = true;
        if !g.signalled {
            g.signalled = self.signal.raise();
        }
        self.ready.notify_all();
    }

    /// Takes the next message, waiting until `deadline` (`None`: forever).
    /// `Ok(None)`: none in time; `Err(Terminated)`: closed and empty.
    pub(crate) fn pop(&self, deadline: Option<Instant>) -> Result<Option<T>> {
        let mut g = self.inner.lock();
        loop {
            if let Some(m) = g.queue.pop_front() {
                if g.queue.is_empty() && !g.closed && g.signalled {
                    self.signal.lower();
                    g.signalled = false;
                }
                return Ok(Some(m));
            }
            if g.closed {
                return Err(Error::Terminated);
            }
            match deadline {
                None => self.ready.wait(&mut g),
                Some(d) => {
                    if Instant::now() >= d {
                        return Ok(None);
                    }
                    // Woken, timed out or spurious: the loop looks again.
                    self.ready.wait_until(&mut g, d);
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.signal.fd()
    }
}
