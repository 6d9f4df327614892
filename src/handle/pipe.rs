//! The one pipe type: messages from a thread that never waits (a node's
//! event loop, the beacon's thread) to an application that reads when it
//! likes, in order, with a descriptor that is readable exactly while
//! something waits. The reply pipe (`replies.rs`) and the beacon's pipe
//! (`beacon/actor.rs`) are this pipe with a batch type each.
//!
//! Fast path (allocations): with the inbox (`inbox.rs`) and the news
//! queue (`news.rs`), no allocation per tuple between the application and
//! its node; batches and their buffers are reused (docs/benchmarks.md,
//! "How the pipes avoid allocation" and "Fast-path review").
//!
//! Messages travel in batches ([`Batch`]) over a bounded
//! `crossbeam-channel` (its slots are allocated once): a sender fills a
//! batch the reader gave back and hands it over whole with one send; the
//! reader takes one batch at a time into its front and serves it from
//! there, message by message, then gives it back through a second channel,
//! so that buffers are reused instead of allocated per batch. A reader
//! with nothing to read sleeps on the pipe's condition variable, which a
//! sender signals only when a reader sleeps (see `ready`).
//!
//! The pipe never makes a sender wait. A batch is sent whole while the
//! pipe holds fewer messages than its limit and a batch came back to fill.
//! Otherwise (the reader lags, or the limit is reached) the messages go to
//! the held batch behind the channel, under a lock, where the batch type's
//! overflow policy ([`Batch::overflow`]) decides what is kept: below the
//! limit everything (copied), beyond it the beacon's [`Messages`] drop
//! droppable messages and the reply pipe folds news per key. What a policy
//! gives up is counted ([`Pipe::shed`]). Once something is held, every
//! later batch is held too, and the reader takes the held batch whole once
//! the channel is empty: the order is kept.
//!
//! The descriptor (`ready_signal.rs`) is written only once somebody asked
//! for it (`fd`): until then nothing can be polling it, so a pipe read with
//! `pop_with` alone costs no system call per batch (a chain of nodes saw
//! 7 % off each hop).

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::handle::ready_signal::ReadySignal;

/// Slots of the channel: a bounded channel allocates them once, nothing per
/// send (an unbounded one allocates and zeroes a block every 31 sends; see
/// docs/benchmarks.md). Every batch sent is one given back, so the channel
/// holds about `SPARES` at most; were every slot taken, a batch would be
/// held instead.
const SLOTS: usize = 8;

/// Emptied batches kept for the senders to reuse.
const SPARES: usize = 4;

/// Room kept in a recycled batch of [`Messages`].
const KEEP_MESSAGES: usize = 64;

/// What a pipe carries: a batch of messages, read from the front.
pub(crate) trait Batch: Default + Send {
    /// Messages in the batch not read yet.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The overflow policy, for messages that are not sent as a whole
    /// batch (the pipe is at its limit, or the reader lags): moves
    /// the messages of `incoming` behind those of `held` (the messages held
    /// back, read after everything sent before them), of which `room` more
    /// fit under the limit. A message not moved is shed. `incoming` is
    /// recycled afterwards.
    fn overflow(held: &mut Self, incoming: &mut Self, room: usize);

    /// Empties the batch for reuse, giving back the memory beyond what a
    /// batch like the last one needs.
    fn recycle(&mut self);

    /// Whether the limit counts the messages the reader took but has not
    /// read yet, as the beacon's pipe does; the reply pipe counts those not
    /// taken yet only (its reader takes a whole batch at a time).
    const LIMIT_COUNTS_TAKEN: bool = false;
}

/// How long a reader waits for a message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    Forever,
    /// From the call on (the clock is read only if there is something to
    /// wait for).
    For(Duration),
    Until(Instant),
}

/// What senders, the reader and `fd` share, under one lock.
struct Shared<B> {
    /// Somebody asked for the descriptor.
    watched: bool,
    /// The descriptor holds a byte (it is readable).
    raised: bool,
    /// Readers blocked in `pop_with`.
    readers: usize,
    /// Messages held back (see `push_with`), read after the channel's.
    held: B,
    /// The senders' batch, filled when none came back from the reader.
    own: B,
}

pub(crate) struct Pipe<B> {
    tx: Sender<B>,
    rx: Receiver<B>,
    /// Emptied batches, from the reader back to the senders.
    spare_tx: Sender<B>,
    spare_rx: Receiver<B>,
    /// `shared.held` is not empty.
    holding: AtomicBool,
    /// Messages in the channel and held (the reader's front aside).
    queued: AtomicUsize,
    limit: AtomicUsize,
    shed: AtomicU64,
    closed: AtomicBool,
    /// The batch being read. Lock order: `front`, then `shared`.
    front: Mutex<B>,
    /// `shared.watched`, for the reader, which holds `front` (as does
    /// `fd`, the only place that sets it): until then a reader that read a
    /// batch to the end does not take `shared` to lower the descriptor.
    watched: AtomicBool,
    /// Taken by every sender around its send, so that the descriptor and
    /// what waits change together for the reader and for `fd`, and a
    /// reader about to block cannot miss a batch.
    shared: Mutex<Shared<B>>,
    /// Blocked readers wait here (with `shared`), not in the channel's own
    /// blocking receive: a reader woken from that waited again at once for
    /// a lock the sender still held (strace: a second futex wait and wake
    /// per wake-up; see docs/benchmarks.md).
    ready: Condvar,
    signal: ReadySignal,
}

impl<B: Batch> Pipe<B> {
    /// A pipe whose overflow policy starts once `limit` messages wait.
    pub(crate) fn new(limit: usize) -> io::Result<Pipe<B>> {
        Pipe::with_slots(limit, SLOTS)
    }

    fn with_slots(limit: usize, slots: usize) -> io::Result<Pipe<B>> {
        let (tx, rx) = crossbeam_channel::bounded(slots);
        let (spare_tx, spare_rx) = crossbeam_channel::bounded(SPARES);
        Ok(Pipe {
            tx,
            rx,
            spare_tx,
            spare_rx,
            holding: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit.max(1)),
            shed: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            front: Mutex::new(B::default()),
            watched: AtomicBool::new(false),
            shared: Mutex::new(Shared {
                watched: false,
                raised: false,
                readers: 0,
                held: B::default(),
                own: B::default(),
            }),
            ready: Condvar::new(),
            signal: ReadySignal::new()?,
        })
    }

    /// Sets the number of waiting messages beyond which the overflow
    /// policy decides.
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// Hands the messages `fill` puts into an empty batch to the reader;
    /// returns how many of them the overflow policy shed.
    ///
    /// The batch filled is one the reader read to the end and gave back,
    /// sent whole (one channel send) while the pipe is under its limit and
    /// nothing is held. When none came back, the reader has not read the
    /// batches sent before: the messages are then filled into the pipe's
    /// own batch and copied to the held one (as they are while something
    /// is held), so that a reader that lags, or never reads, costs no
    /// allocation per batch.
    pub(crate) fn push_with(&self, fill: impl FnOnce(&mut B)) -> usize {
        let mut fill = Some(fill);
        // While something is held, whatever comes is held too: the pipe's
        // own batch does, and the spares are left for later.
        let mut spare = if self.holding.load(Ordering::Acquire) {
            None
        } else {
            self.spare_rx.try_recv().ok()
        };
        let given_back = spare.is_some();
        if let Some(batch) = &mut spare {
            // Outside the lock: the reader need not wait for the filling.
            (fill.take().expect("filled once"))(batch);
        }
        // Held to the end, so that what the reader took cannot move.
        let front = B::LIMIT_COUNTS_TAKEN.then(|| self.front.lock());
        let taken = front.as_ref().map_or(0, |front| front.len());
        let limit = self.limit.load(Ordering::Relaxed);
        let mut guard = self.shared.lock();
        let shared = &mut *guard;
        if let Some(fill) = fill {
            fill(&mut shared.own);
        }
        let n = spare.as_ref().map_or(shared.own.len(), B::len);
        if given_back
            && n > 0
            && !self.holding.load(Ordering::Acquire)
            && taken + self.queued.load(Ordering::Relaxed) + n <= limit
        {
            // Counted first: the reader counts it out once it has it.
            self.queued.fetch_add(n, Ordering::Relaxed);
            if let Err(full) = self.tx.try_send(spare.take().expect("a batch")) {
                // Every slot taken (the receiver lives as long as the pipe,
                // so it is never disconnected): held instead.
                self.queued.fetch_sub(n, Ordering::Relaxed);
                spare = Some(full.into_inner());
            }
        }
        let unsent = if given_back {
            spare.as_mut()
        } else {
            Some(&mut shared.own)
        };
        let mut shed = 0;
        if let Some(incoming) = unsent {
            if n > 0 {
                let before = shared.held.len();
                let waiting = taken + self.queued.load(Ordering::Relaxed);
                B::overflow(&mut shared.held, incoming, limit.saturating_sub(waiting));
                let kept = shared.held.len() - before;
                self.queued.fetch_add(kept, Ordering::Relaxed);
                shed = n - kept;
                if before == 0 && kept > 0 {
                    self.holding.store(true, Ordering::Release);
                }
            }
            incoming.recycle();
        }
        if n > 0 && shared.watched && !shared.raised {
            shared.raised = self.signal.raise();
        }
        // A notify with nobody waiting would still cost a system call.
        let blocked = n > 0 && shared.readers > 0;
        drop(guard);
        drop(front);
        if blocked {
            self.ready.notify_one();
        }
        if shed > 0 {
            self.shed.fetch_add(shed as u64, Ordering::Relaxed);
        }
        if let Some(batch) = spare {
            self.give_back(batch);
        }
        shed
    }

    /// Marks the pipe closed: readers get what waits, then `Terminated`.
    pub(crate) fn close(&self) {
        let mut shared = self.shared.lock();
        self.closed.store(true, Ordering::Release);
        if shared.watched && !shared.raised {
            shared.raised = self.signal.raise();
        }
        drop(shared);
        self.ready.notify_all();
    }

    /// Messages waiting: in the reader's front, the channel and held.
    pub(crate) fn len(&self) -> usize {
        let front = self.front.lock();
        front.len() + self.queued.load(Ordering::Relaxed)
    }

    /// Messages the overflow policy gave up so far.
    pub(crate) fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Waits for a message as `wait` says, then hands the front batch,
    /// which holds one at least, to `take`, which reads exactly one.
    /// `Ok(None)`: none in time; `Err(Terminated)`: closed and empty.
    pub(crate) fn pop_with<R>(
        &self,
        wait: Wait,
        take: impl FnOnce(&mut B) -> R,
    ) -> Result<Option<R>> {
        let mut front = self.front.lock();
        if front.is_empty() && !self.refill(&mut front) {
            drop(front);
            front = match self.wait_for_front(wait)? {
                Some(front) => front,
                None => return Ok(None),
            };
        }
        let out = take(&mut front);
        if front.is_empty() {
            self.read_to_the_end(&mut front);
        }
        Ok(Some(out))
    }

    /// The front, once it holds a message; `None` if none came in time.
    /// (Apart from `pop_with`, which a reader calls per message.)
    #[inline(never)]
    fn wait_for_front(&self, mut wait: Wait) -> Result<Option<MutexGuard<'_, B>>> {
        loop {
            let mut front = self.front.lock();
            if !front.is_empty() || self.refill(&mut front) {
                return Ok(Some(front));
            }
            let closed = self.closed.load(Ordering::Acquire);
            // What was sent before the close is visible from here on.
            if closed && self.refill(&mut front) {
                return Ok(Some(front));
            }
            drop(front);
            if closed {
                return Err(Error::Terminated);
            }
            if let Wait::For(t) = wait {
                if t.is_zero() {
                    return Ok(None);
                }
                // The deadline is fixed at the first wait; a timeout beyond
                // the clock's range is forever.
                wait = Instant::now()
                    .checked_add(t)
                    .map_or(Wait::Forever, Wait::Until);
            }
            let until = match wait {
                Wait::Until(d) if Instant::now() >= d => return Ok(None),
                Wait::Until(d) => Some(d),
                _ => None,
            };
            self.block(until);
        }
    }

    /// The front was read to the end: its buffers go back to the senders,
    /// and the descriptor stops being readable unless something else waits.
    #[inline(never)]
    fn read_to_the_end(&self, front: &mut B) {
        let mut done = mem::take(front);
        done.recycle();
        self.give_back(done);
        self.lower_if_idle();
    }

    /// The descriptor, readable exactly while something waits (from this
    /// call on: if something waits already, it is readable at once).
    pub(crate) fn fd(&self) -> RawFd {
        let front = self.front.lock();
        let mut shared = self.shared.lock();
        if !shared.watched {
            shared.watched = true;
            self.watched.store(true, Ordering::Relaxed);
            let waits = !front.is_empty()
                || !self.rx.is_empty()
                || self.holding.load(Ordering::Acquire)
                || self.closed.load(Ordering::Acquire);
            if waits && !shared.raised {
                shared.raised = self.signal.raise();
            }
        }
        self.signal.fd()
    }

    /// Takes the next batch into the empty front: from the channel, else
    /// the held one. False if nothing waits.
    fn refill(&self, front: &mut B) -> bool {
        if let Ok(batch) = self.rx.try_recv() {
            self.take(front, batch);
            return true;
        }
        if !self.holding.load(Ordering::Acquire) {
            return false;
        }
        let mut shared = self.shared.lock();
        // A batch sent before anything was held goes first (it may have
        // arrived since the look above).
        if let Ok(batch) = self.rx.try_recv() {
            drop(shared);
            self.take(front, batch);
            return true;
        }
        if shared.held.is_empty() {
            return false;
        }
        self.queued.fetch_sub(shared.held.len(), Ordering::Relaxed);
        // The front is empty and owns nothing: the held batch starts again
        // from it (a new batch, which joins those given back once read).
        mem::swap(front, &mut shared.held);
        self.holding.store(false, Ordering::Release);
        true
    }

    /// Makes `batch` the (empty) front.
    fn take(&self, front: &mut B, batch: B) {
        self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        *front = batch;
    }

    /// Keeps a recycled batch for a sender, if there is room for it.
    fn give_back(&self, batch: B) {
        let _ = self.spare_tx.try_send(batch);
    }

    /// Waits until a batch may be there to take, `until` passes or the
    /// pipe closes; the caller looks again either way.
    fn block(&self, until: Option<Instant>) {
        let mut shared = self.shared.lock();
        // Senders send under this lock: what came since the caller looked
        // is seen here, what comes later wakes the reader.
        if !self.rx.is_empty()
            || self.holding.load(Ordering::Acquire)
            || self.closed.load(Ordering::Acquire)
        {
            return;
        }
        shared.readers += 1;
        match until {
            None => self.ready.wait(&mut shared),
            Some(d) => {
                self.ready.wait_until(&mut shared, d);
            }
        }
        shared.readers -= 1;
    }

    /// After the front was read to the end: the descriptor stops being
    /// readable unless something else waits. The caller holds the front.
    fn lower_if_idle(&self) {
        if !self.watched.load(Ordering::Relaxed) {
            return; // never raised
        }
        let mut shared = self.shared.lock();
        if shared.raised
            && !self.closed.load(Ordering::Acquire)
            && self.rx.is_empty()
            && !self.holding.load(Ordering::Acquire)
        {
            self.signal.lower();
            shared.raised = false;
        }
    }

    /// Whether the descriptor is readable now.
    #[cfg(test)]
    pub(crate) fn is_raised(&self) -> bool {
        self.signal.is_raised()
    }

    /// Looks at the held batch.
    #[cfg(test)]
    pub(crate) fn with_held<R>(&self, f: impl FnOnce(&B) -> R) -> R {
        f(&self.shared.lock().held)
    }
}

/// A batch of whole messages, with the overflow policy of the beacon's
/// pipe: at the limit, a droppable message is dropped (the newest goes),
/// any other is kept. The limit counts every message not read yet.
pub(crate) struct Messages<T> {
    queue: VecDeque<T>,
    droppable: bool,
}

impl<T> Default for Messages<T> {
    fn default() -> Self {
        Messages {
            queue: VecDeque::new(),
            droppable: false,
        }
    }
}

impl<T: Send> Batch for Messages<T> {
    fn len(&self) -> usize {
        self.queue.len()
    }

    fn overflow(held: &mut Self, incoming: &mut Self, mut room: usize) {
        for msg in incoming.queue.drain(..) {
            if room > 0 || !incoming.droppable {
                held.queue.push_back(msg);
                room = room.saturating_sub(1);
            }
        }
    }

    fn recycle(&mut self) {
        self.queue.clear();
        self.queue.shrink_to(KEEP_MESSAGES);
        self.droppable = false;
    }

    const LIMIT_COUNTS_TAKEN: bool = true;
}

impl<T: Send> Pipe<Messages<T>> {
    /// Queues a message; a droppable one only while the pipe is under its
    /// limit (returns false when it was dropped).
    pub(crate) fn send(&self, msg: T, droppable: bool) -> bool {
        let shed = self.push_with(|batch| {
            batch.queue.push_back(msg);
            batch.droppable = droppable;
        });
        shed == 0
    }

    /// The next message, waiting as `wait` says.
    pub(crate) fn recv(&self, wait: Wait) -> Result<Option<T>> {
        self.pop_with(wait, |b| b.queue.pop_front().expect("a message waits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::thread;

    type Queue = Pipe<Messages<u32>>;

    fn drain(p: &Queue) -> Vec<u32> {
        std::iter::from_fn(|| p.recv(Wait::For(Duration::ZERO)).unwrap()).collect()
    }

    /// Pushes `msgs` as one batch; returns how many were shed.
    fn push(p: &Queue, msgs: &[u32], droppable: bool) -> usize {
        p.push_with(|b| {
            b.queue.extend(msgs);
            b.droppable = droppable;
        })
    }

    /// A pipe whose reader has given back as many batches as are kept, so
    /// that batches are sent whole.
    fn primed(limit: usize) -> Queue {
        let p = Queue::new(limit).unwrap();
        for round in 0..SPARES {
            // One batch sent per spare, one more held.
            for _ in 0..=round {
                p.send(0, false);
            }
            assert_eq!(drain(&p).len(), round + 1);
        }
        assert_eq!(p.spare_rx.len(), SPARES);
        p
    }

    #[test]
    fn messages_come_out_in_the_order_they_went_in() {
        for p in [Queue::new(100).unwrap(), primed(100)] {
            push(&p, &[1, 2, 3], false);
            assert!(p.send(4, false));
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(1));
            // More arrives while the reader is half way through a batch.
            push(&p, &[5, 6], false);
            assert_eq!(p.len(), 5);
            assert_eq!(drain(&p), [2, 3, 4, 5, 6]);
            assert_eq!(p.len(), 0);
            assert_eq!(p.shed(), 0);
        }
    }

    #[test]
    fn at_the_limit_droppable_messages_are_dropped_and_counted_others_kept() {
        for p in [Queue::new(3).unwrap(), primed(3)] {
            assert!(p.send(1, true));
            assert!(p.send(2, true));
            assert!(p.send(3, true));
            assert!(!p.send(4, true), "full: dropped");
            assert!(p.send(5, false), "not droppable: kept beyond the limit");
            assert!(!p.send(6, true));
            assert_eq!(p.shed(), 2);
            assert_eq!(p.len(), 4);
            assert_eq!(drain(&p), [1, 2, 3, 5]);
            // Read: there is room again.
            assert!(p.send(7, true));
            assert_eq!(drain(&p), [7]);
        }
        // Messages the reader took but has not read count too.
        for p in [Queue::new(3).unwrap(), primed(3)] {
            push(&p, &[1, 2, 3], true);
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(1));
            assert!(p.send(4, true));
            assert!(!p.send(5, true), "2, 3 and 4 wait");
            assert_eq!(drain(&p), [2, 3, 4]);
        }
        // A batch that fits in part: the room is filled, the rest dropped.
        for p in [Queue::new(3).unwrap(), primed(3)] {
            assert!(p.send(10, true));
            assert_eq!(push(&p, &[11, 12, 13, 14], true), 2);
            assert_eq!(drain(&p), [10, 11, 12]);
            assert_eq!(p.shed(), 2);
        }
    }

    #[test]
    fn held_messages_follow_every_batch_sent_before_them() {
        let p = primed(2);
        push(&p, &[1, 2], false); // sent whole
        p.with_held(|h| assert!(h.is_empty()));
        push(&p, &[3], false); // over the limit: held
        p.with_held(|h| assert_eq!(h.len(), 1));
        assert!(p.send(4, false), "held too, behind 3");
        assert_eq!(p.recv(Wait::Forever).unwrap(), Some(1));
        assert_eq!(p.recv(Wait::Forever).unwrap(), Some(2));
        // The reader has the front empty and nothing in the channel: it
        // takes the held batch; what follows is sent again.
        assert_eq!(p.recv(Wait::Forever).unwrap(), Some(3));
        p.with_held(|h| assert!(h.is_empty()));
        assert!(p.send(5, false));
        p.with_held(|h| assert!(h.is_empty()));
        assert_eq!(drain(&p), [4, 5]);
    }

    #[test]
    fn a_reader_that_gives_nothing_back_gets_every_message_held() {
        let p = Queue::new(1000).unwrap();
        for i in 0..100 {
            push(&p, &[2 * i, 2 * i + 1], true);
        }
        // Nothing came back to fill: every batch was copied to the held one.
        p.with_held(|h| assert_eq!(h.len(), 200));
        assert!(p.rx.is_empty());
        assert_eq!(p.len(), 200);
        assert_eq!(drain(&p), (0..200).collect::<Vec<_>>());
        assert_eq!(p.shed(), 0);
    }

    #[test]
    fn a_batch_finding_every_slot_taken_is_held_behind_the_others() {
        let p = Queue::with_slots(100, 1).unwrap();
        for round in 0..2 {
            for _ in 0..=round {
                p.send(0, false);
            }
            drain(&p);
        }
        push(&p, &[1, 2], false); // the one slot
        push(&p, &[3], false); // held
        p.with_held(|h| assert_eq!(h.len(), 1));
        push(&p, &[4], false); // held, behind 3
        assert_eq!(drain(&p), [1, 2, 3, 4]);
        assert_eq!(p.shed(), 0);
    }

    #[test]
    fn a_batch_read_comes_back_to_be_filled_again() {
        let p = Queue::new(1000).unwrap();
        push(&p, &(0..100).collect::<Vec<_>>(), false);
        assert_eq!(drain(&p).len(), 100);
        // The batch read (the held one, taken whole) came back, cleared,
        // with room kept.
        let mut room = 0;
        p.push_with(|b| {
            assert!(b.is_empty());
            room = b.queue.capacity();
            b.queue.push_back(7);
        });
        assert!(room >= KEEP_MESSAGES, "{room}");
        assert!(p.with_held(|h| h.is_empty()), "sent, not held");
        assert_eq!(drain(&p), [7]);
    }

    #[test]
    fn descriptor_is_readable_exactly_while_a_message_waits() {
        for p in [Queue::new(2).unwrap(), primed(2)] {
            p.fd();
            assert!(!p.is_raised());
            p.send(1, false);
            assert!(p.is_raised());
            p.send(2, false);
            p.send(3, false); // beyond the limit
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(1));
            assert!(p.is_raised(), "more waits");
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(2));
            assert!(p.is_raised(), "the held one waits");
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(3));
            assert!(!p.is_raised());
            assert_eq!(p.recv(Wait::For(Duration::ZERO)).unwrap(), None);
            assert!(!p.is_raised());
            p.close();
            assert!(p.is_raised(), "a closed pipe is readable");
        }
    }

    #[test]
    fn descriptor_is_written_only_once_asked_for() {
        for p in [Queue::new(10).unwrap(), primed(10)] {
            p.send(1, false);
            p.send(2, false);
            assert!(!p.is_raised(), "nobody asked for the descriptor");
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(1));
            p.fd();
            assert!(p.is_raised(), "something waits: readable at once");
            assert_eq!(drain(&p), [2]);
            assert!(!p.is_raised());
        }
        // A batch taken into the front but not all read still waits.
        for p in [Queue::new(10).unwrap(), primed(10)] {
            push(&p, &[1, 2], false);
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(1));
            p.fd();
            assert!(p.is_raised());
            assert_eq!(drain(&p), [2]);
            assert!(!p.is_raised());
        }
    }

    #[test]
    fn a_reader_waits_until_its_deadline_and_no_longer() {
        let p = Queue::new(10).unwrap();
        let asked = Instant::now();
        assert_eq!(p.recv(Wait::For(Duration::from_millis(50))).unwrap(), None);
        let waited = asked.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        let until = Instant::now() + Duration::from_millis(30);
        assert_eq!(p.recv(Wait::Until(until)).unwrap(), None);
        assert!(Instant::now() >= until);
        // A deadline already past still takes what waits.
        p.send(1, false);
        assert_eq!(p.recv(Wait::Until(asked)).unwrap(), Some(1));
        // A timeout beyond the clock's range is forever.
        let p = Arc::new(p);
        let reader = {
            let p = p.clone();
            thread::spawn(move || p.recv(Wait::For(Duration::MAX)))
        };
        thread::sleep(Duration::from_millis(30));
        p.send(2, false);
        assert_eq!(reader.join().unwrap().unwrap(), Some(2));
    }

    #[test]
    fn a_blocked_reader_is_woken_by_a_batch_sent_or_held() {
        for p in [Queue::new(1).unwrap(), primed(1)] {
            let p = Arc::new(p);
            let reader = {
                let p = p.clone();
                thread::spawn(move || {
                    (0..3)
                        .map(|_| p.recv(Wait::For(Duration::from_secs(10))).unwrap())
                        .collect::<Vec<_>>()
                })
            };
            for i in 0..3 {
                thread::sleep(Duration::from_millis(20));
                p.send(i, false);
            }
            assert_eq!(reader.join().unwrap(), [Some(0), Some(1), Some(2)]);
        }
    }

    #[test]
    fn a_reader_waiting_forever_does_not_block_a_reader_with_a_timeout() {
        let p = Arc::new(Queue::new(10).unwrap());
        let forever = {
            let p = p.clone();
            thread::spawn(move || p.recv(Wait::Forever))
        };
        thread::sleep(Duration::from_millis(30));
        let asked = Instant::now();
        assert_eq!(p.recv(Wait::For(Duration::from_millis(50))).unwrap(), None);
        assert!(asked.elapsed() < Duration::from_secs(2));
        p.send(1, false);
        assert_eq!(forever.join().unwrap().unwrap(), Some(1));
    }

    #[test]
    fn close_lets_readers_take_what_waits_then_tells_them() {
        for p in [Queue::new(1).unwrap(), primed(1)] {
            p.send(1, false);
            p.send(2, false); // beyond the limit
            p.close();
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(1));
            assert_eq!(p.recv(Wait::Forever).unwrap(), Some(2));
            assert!(matches!(p.recv(Wait::Forever), Err(Error::Terminated)));
            assert!(matches!(
                p.recv(Wait::For(Duration::ZERO)),
                Err(Error::Terminated)
            ));
        }
        // Every blocked reader is woken.
        let p = Arc::new(Queue::new(10).unwrap());
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                thread::spawn(move || p.recv(Wait::Forever))
            })
            .collect();
        thread::sleep(Duration::from_millis(30));
        p.close();
        for r in readers {
            assert!(matches!(r.join().unwrap(), Err(Error::Terminated)));
        }
    }

    #[test]
    fn a_sender_far_ahead_of_its_reader_loses_nothing_and_keeps_the_order() {
        // The sender runs ahead of the reader and back, sending whole and
        // holding; nothing droppable, so every message arrives, in order.
        let p = Arc::new(Queue::new(16).unwrap());
        let want: Vec<u32> = (0..5000u32)
            .flat_map(|i| (0..i % 4).map(move |j| i * 10 + j))
            .collect();
        let sender = {
            let p = p.clone();
            thread::spawn(move || {
                for i in 0..5000u32 {
                    let msgs: Vec<u32> = (0..i % 4).map(|j| i * 10 + j).collect();
                    push(&p, &msgs, false);
                }
                p.close();
            })
        };
        let mut got = Vec::new();
        while let Ok(Some(m)) = p.recv(Wait::Forever) {
            got.push(m);
        }
        sender.join().unwrap();
        assert_eq!(got, want);
    }
}
