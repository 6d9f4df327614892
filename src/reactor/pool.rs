//! Shared event-loop threads: the nodes of one process take turns on a few
//! threads (one by default, as libzmq's `io_threads`), instead of a thread
//! each.
//!
//! Every node of a thread registers its sockets and its waker with that
//! thread's poller, under tokens that carry the node's number in the upper
//! bits (above [`LOCAL_TOKENS`]). One poll serves them all.
//!
//! Nothing a node does may hold the thread for long: `$TERM`'s linger is a
//! state the node stays in while its output drains, not a wait. A node that
//! panics is closed (its application is told) and the others go on.
//!
//! `ZGOSSIP_IO_THREADS` sets the number of shared threads (nodes are placed
//! round-robin); `0` gives every node a thread of its own, which runs the
//! same loop for that one node and ends with it: there is one event loop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use log::Level;
use mio::{Events, Poll, Registry, Token, Waker};
use parking_lot::{Condvar, Mutex};

use super::{begin_round, end_round, round_instant, FastMap, Reactor, LOCAL_TOKENS};
use crate::error::{Error, Result};
use crate::logging;

/// Environment variable: number of shared event-loop threads.
pub const IO_THREADS_ENV: &str = "ZGOSSIP_IO_THREADS";

const WAKER: Token = Token(usize::MAX);
/// Node numbers: the bits above the local tokens.
const NODE_NUMBERS: usize = usize::MAX >> 32;
const _: () = assert!(
    LOCAL_TOKENS == (1 << 32) - 1,
    "node numbers start at bit 32"
);
/// A lingering node is looked at again at least this often.
const LINGER_TICK: Duration = Duration::from_millis(10);
/// Longest sleep when no node has a timer.
const IDLE: Duration = Duration::from_secs(3600);

/// Set once a node has ended and its application has been told.
#[derive(Default)]
pub(crate) struct Done {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Done {
    pub(crate) fn set(&self) {
        *self.done.lock() = true;
        self.cv.notify_all();
    }

    /// Waits until the node has ended.
    pub(crate) fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.cv.wait(&mut done);
        }
    }
}

/// A node handed to a shared thread, with what must happen when it ends
/// (dropped, even by a panic: tell its application, release its handle).
pub(crate) struct Hosted {
    pub(crate) reactor: Reactor,
    /// Only dropped (after the reactor: fields drop in order).
    #[allow(dead_code)]
    pub(crate) on_end: Box<dyn Send>,
}

struct Slot {
    hosted: Hosted,
    /// Lingering after `$TERM`.
    lingering: bool,
    /// It had events this round.
    ready: bool,
    /// Its next timer.
    due: Instant,
    /// `due` is in the heap of timers.
    armed: bool,
}

struct IoThread {
    tx: Sender<(usize, Hosted)>,
    wake: Arc<ThreadWake>,
    registry: Registry,
}

/// The waker of a shared thread, and the nodes woken since it last looked.
pub(crate) struct ThreadWake {
    waker: Waker,
    woken: Mutex<Vec<usize>>,
}

impl ThreadWake {
    /// Wakes node `node` (one system call per batch of wake-ups).
    pub(crate) fn wake(&self, node: usize) -> std::io::Result<()> {
        let mut woken = self.woken.lock();
        let first = woken.is_empty();
        woken.push(node);
        drop(woken);
        if first {
            self.waker.wake()
        } else {
            Ok(())
        }
    }

    fn take(&self, into: &mut Vec<usize>) {
        std::mem::swap(&mut *self.woken.lock(), into);
    }
}

/// What a node on a shared thread registers with.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    /// Its number on the thread: its tokens are `node << 32 | local`.
    pub(crate) node: usize,
    pub(crate) thread: Arc<ThreadWake>,
}

struct Pool {
    threads: Vec<IoThread>,
    next: AtomicUsize,
    next_node: AtomicUsize,
}

/// Where a node will run: a thread of the pool, or a thread of its own,
/// and its number there.
pub(crate) struct Place {
    thread: Thread,
    node: usize,
}

enum Thread {
    Pooled(usize),
    Own(IoThread),
}

/// The number of shared threads asked for (`ZGOSSIP_IO_THREADS`, default
/// 1; 0: a thread per node). A value that is not a number is ignored.
pub(crate) fn io_threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var(IO_THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(1, |n| n.min(64))
    })
}

fn pool() -> Result<&'static Pool> {
    static POOL: OnceLock<std::result::Result<Pool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = (0..io_threads().max(1))
            .map(|n| start_thread(format!("zgossip-io-{n}"), Lifetime::Process))
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(Pool {
            threads,
            next: AtomicUsize::new(0),
            next_node: AtomicUsize::new(1),
        })
    })
    .as_ref()
    .map_err(|e| {
        Error::io(
            "cannot start event-loop thread",
            std::io::Error::other(e.clone()),
        )
    })
}

/// How long an event-loop thread runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    /// A shared thread: for the life of the process.
    Process,
    /// A node's own thread: until its node has ended.
    Node,
}

fn start_thread(name: String, lifetime: Lifetime) -> std::result::Result<IoThread, String> {
    let poll = Poll::new().map_err(|e| e.to_string())?;
    let registry = poll.registry().try_clone().map_err(|e| e.to_string())?;
    let wake = Arc::new(ThreadWake {
        waker: Waker::new(poll.registry(), WAKER).map_err(|e| e.to_string())?,
        woken: Mutex::new(Vec::new()),
    });
    let (tx, rx) = mpsc::channel();
    let thread_wake = wake.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            super::affinity::apply_to_this_thread();
            run(poll, rx, thread_wake, lifetime)
        })
        .map_err(|e| e.to_string())?;
    Ok(IoThread { tx, wake, registry })
}

/// Chooses the thread of a new node: its place, and what it registers with.
pub(crate) fn place() -> Result<(Place, Shared)> {
    let pool = pool()?;
    let thread = pool.next.fetch_add(1, Ordering::Relaxed) % pool.threads.len();
    // Node numbers fill the bits above the local tokens; 0 and the all-ones
    // number (the thread's own waker) are never used.
    let node = loop {
        let n = pool.next_node.fetch_add(1, Ordering::Relaxed) & NODE_NUMBERS;
        if n != 0 && n != NODE_NUMBERS {
            break n;
        }
    };
    let registry = pool.threads[thread]
        .registry
        .try_clone()
        .map_err(|e| Error::io("cannot register with the event-loop thread", e))?;
    Ok((
        Place {
            thread: Thread::Pooled(thread),
            node,
        },
        Shared {
            registry,
            node,
            thread: pool.threads[thread].wake.clone(),
        },
    ))
}

/// A thread of its own for a new node (`ZGOSSIP_IO_THREADS=0`), named
/// after it; it ends when the node ends.
pub(crate) fn place_own(name: &str) -> Result<(Place, Shared)> {
    let t = start_thread(format!("zgossip-{name}"), Lifetime::Node)
        .map_err(|e| Error::io("cannot start node thread", std::io::Error::other(e)))?;
    let registry = t
        .registry
        .try_clone()
        .map_err(|e| Error::io("cannot register with the node's thread", e))?;
    let shared = Shared {
        registry,
        node: 1,
        thread: t.wake.clone(),
    };
    Ok((
        Place {
            thread: Thread::Own(t),
            node: 1,
        },
        shared,
    ))
}

/// Hands a node to the thread chosen by [`place`].
pub(crate) fn host(place: Place, hosted: Hosted) -> Result<()> {
    let t = match &place.thread {
        Thread::Pooled(i) => &pool()?.threads[*i],
        Thread::Own(t) => t,
    };
    t.tx.send((place.node, hosted)).map_err(|_| {
        Error::io(
            "event-loop thread is gone",
            std::io::Error::other("stopped"),
        )
    })?;
    t.wake
        .wake(place.node)
        .map_err(|e| Error::io("cannot wake event-loop thread", e))
}

/// The nodes of one shared thread, with what each iteration of its loop
/// needs found without visiting every node: the nodes with something to do
/// this round, and a heap of timers.
#[derive(Default)]
struct Nodes {
    slots: FastMap<usize, Slot>,
    /// Nodes to give a turn this round, each once (its `ready` is set).
    ready: Vec<usize>,
    /// (due, node) for every node's timer; an entry is stale once the
    /// node's `due` changed or the node ended, and is skipped then.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Nodes {
    /// Marks `node` for a turn this round.
    fn mark(&mut self, node: usize) {
        if let Some(s) = self.slots.get_mut(&node) {
            if !s.ready {
                s.ready = true;
                self.ready.push(node);
            }
        }
    }

    /// Puts the timer `node` has just set (its slot's `due`, the slot
    /// marked `armed` by the caller) in the heap.
    fn arm(&mut self, node: usize, due: Instant) {
        self.timers.push(Reverse((due, node)));
        // Stale entries pile up as timers move: rebuilt once they are
        // most of the heap, so it stays within a few entries per node.
        if self.timers.len() > 2 * self.slots.len() + 64 {
            self.timers = self
                .slots
                .iter_mut()
                .map(|(&node, s)| {
                    s.armed = true;
                    Reverse((s.due, node))
                })
                .collect();
        }
    }

    /// The slot of `node` if `due` is still its timer (an entry of the
    /// heap that is not stale).
    fn current(&mut self, due: Instant, node: usize) -> Option<&mut Slot> {
        self.slots.get_mut(&node).filter(|s| s.due == due)
    }

    /// How long until the next timer (None: no node has one).
    fn next_timer(&mut self, now: Instant) -> Option<Duration> {
        while let Some(&Reverse((due, node))) = self.timers.peek() {
            if self.current(due, node).is_some() {
                return Some(due.saturating_duration_since(now));
            }
            self.timers.pop();
        }
        None
    }

    /// Marks every node whose timer is due at `now`.
    fn mark_due(&mut self, now: Instant) {
        while let Some(&Reverse((due, node))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            if let Some(s) = self.current(due, node) {
                s.armed = false;
                self.mark(node);
            }
        }
    }
}

/// The event loop of a thread: a shared one runs for the life of the
/// process, a node's own until its node has ended. Each iteration costs in
/// proportion to the nodes that had events or timers, not to the nodes the
/// thread holds.
fn run(mut poll: Poll, rx: Receiver<(usize, Hosted)>, wake: Arc<ThreadWake>, lifetime: Lifetime) {
    let mut hosted_any = false;
    let mut events = Events::with_capacity(1024);
    let mut woken = Vec::new();
    let mut nodes = Nodes::default();
    let mut turns = Vec::new();
    let mut finished = Vec::new();
    let mut more = false;
    loop {
        end_round();
        let timeout = if more {
            Duration::ZERO
        } else {
            nodes.next_timer(Instant::now()).unwrap_or(IDLE)
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                // Cannot happen with a valid epoll set; never spin on it.
                logging::notice(
                    logging::REACTOR,
                    Level::Error,
                    None,
                    format_args!("event-loop poll failed: {e}"),
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // The nodes of this round share one reading of the clocks.
        begin_round();
        let mut count = 0;
        for ev in events.iter() {
            count += 1;
            if ev.token() == WAKER {
                while let Ok((node, mut hosted)) = rx.try_recv() {
                    // A command may have woken it before it got here.
                    let woke = catch_unwind(AssertUnwindSafe(|| hosted.reactor.wakeup()));
                    if woke.is_err() {
                        stopped_by_panic(hosted.reactor.name());
                        continue; // dropped: its application is told
                    }
                    hosted_any = true;
                    nodes.slots.insert(
                        node,
                        Slot {
                            hosted,
                            lingering: false,
                            ready: false,
                            due: Instant::now(),
                            armed: false,
                        },
                    );
                    nodes.mark(node);
                }
                // Nodes woken by their handles (commands) or by inproc
                // peers connecting.
                wake.take(&mut woken);
                for node in woken.drain(..) {
                    serve(&mut nodes, &mut finished, node, Reactor::wakeup);
                }
                continue;
            }
            serve(&mut nodes, &mut finished, ev.token().0 >> 32, |r| {
                r.on_event(ev)
            });
        }
        more = count >= events.capacity();
        // The turns read the clocks afresh (the events may have taken a
        // while), once for all.
        begin_round();
        nodes.mark_due(round_instant());
        take_turns(&mut nodes, &mut turns, &mut finished);
        for id in finished.drain(..) {
            if let Some(mut s) = nodes.slots.remove(&id) {
                let outcome = catch_unwind(AssertUnwindSafe(|| s.hosted.reactor.finish()));
                drop(outcome);
                // Dropping it tells its application and releases its handle.
            }
        }
        if lifetime == Lifetime::Node && hosted_any && nodes.slots.is_empty() {
            return;
        }
    }
}

/// Runs `f` on the reactor of `node` and marks the node for a turn, unless
/// it has ended (this round or before) or lingers (its turn pumps what is
/// left). A panic stops the node: it lingers and goes to `finished`.
fn serve(nodes: &mut Nodes, finished: &mut Vec<usize>, node: usize, f: impl FnOnce(&mut Reactor)) {
    if finished.contains(&node) {
        return;
    }
    nodes.mark(node);
    let Some(s) = nodes.slots.get_mut(&node) else {
        return;
    };
    if s.lingering {
        return;
    }
    let reactor = &mut s.hosted.reactor;
    if catch_unwind(AssertUnwindSafe(|| f(reactor))).is_err() {
        stopped_by_panic(reactor.name());
        s.lingering = true;
        finished.push(node);
    }
}

/// Gives every node marked ready its turn; a node that ends goes to
/// `finished`.
fn take_turns(nodes: &mut Nodes, turns: &mut Vec<usize>, finished: &mut Vec<usize>) {
    std::mem::swap(turns, &mut nodes.ready);
    for id in turns.drain(..) {
        let Some(s) = nodes.slots.get_mut(&id) else {
            continue;
        };
        s.ready = false;
        if finished.contains(&id) {
            continue;
        }
        let before = s.due;
        if give_turn(s) {
            // A timer that did not move is still in the heap.
            if !s.armed || s.due != before {
                s.armed = true;
                let due = s.due;
                nodes.arm(id, due);
            }
        } else {
            finished.push(id);
        }
    }
}

/// The rest of a node's round (or a step of its linger); false once it
/// has ended (or panicked).
fn give_turn(s: &mut Slot) -> bool {
    let reactor = &mut s.hosted.reactor;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if !s.lingering {
            reactor.after_events();
            if reactor.running() {
                s.due = reactor.wake_at();
                return true;
            }
            reactor.begin_shutdown();
            s.lingering = true;
        }
        s.due = round_instant() + LINGER_TICK;
        !reactor.linger_step()
    }));
    match outcome {
        Ok(keep) => keep,
        Err(_) => {
            stopped_by_panic(reactor.name());
            false
        }
    }
}

/// Says that the node `name` was stopped by a panic (an error; stderr
/// when no logger takes it).
fn stopped_by_panic(name: &str) {
    logging::notice(
        logging::REACTOR,
        Level::Error,
        Some(name),
        format_args!("node stopped by an internal error (panic)"),
    );
}
