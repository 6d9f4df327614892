//! Shared event-loop threads: the nodes of one process take turns on a few
//! threads (one by default, as libzmq's `io_threads`), instead of a thread
//! each.
//!
//! Each node keeps its own poller; a shared thread watches those pollers
//! through its own (an epoll set can be watched like a socket), and gives a
//! node a [`turn`](Reactor::turn) when its poller has events or its next
//! timer is due. A tuple crossing between two nodes of one thread then costs
//! a write and the next poll, with no thread to wake: that is what makes a
//! chain of nodes in one process fast.
//!
//! Nothing a node does may hold the thread for long: `$TERM`'s linger is a
//! state the node stays in while its output drains, not a wait. A node that
//! panics is closed (its application is told) and the others go on.
//!
//! `ZGOSSIP_IO_THREADS` sets the number of shared threads (nodes are placed
//! round-robin); `0` gives every node a thread of its own.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::Reactor;
use crate::error::{Error, Result};
use crate::replies::lock;

/// Environment variable: number of shared event-loop threads.
pub const IO_THREADS_ENV: &str = "ZGOSSIP_IO_THREADS";

const WAKER: Token = Token(usize::MAX);
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
        *lock(&self.done) = true;
        self.cv.notify_all();
    }

    /// Waits until the node has ended.
    pub(crate) fn wait(&self) {
        let mut done = lock(&self.done);
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(|p| p.into_inner());
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
    /// Its poller reported events.
    ready: bool,
    /// It may have more events right now (a full buffer, a backlog).
    again: bool,
    /// Its next timer.
    due: Instant,
}

struct IoThread {
    tx: Sender<Hosted>,
    waker: Arc<Waker>,
}

struct Pool {
    threads: Vec<IoThread>,
    next: AtomicUsize,
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
            .map(start_thread)
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(Pool {
            threads,
            next: AtomicUsize::new(0),
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

fn start_thread(n: usize) -> std::result::Result<IoThread, String> {
    let poll = Poll::new().map_err(|e| e.to_string())?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| e.to_string())?);
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("zgossip-io-{n}"))
        .spawn(move || run(poll, rx))
        .map_err(|e| e.to_string())?;
    Ok(IoThread { tx, waker })
}

/// Hands a node to one of the shared threads.
pub(crate) fn host(hosted: Hosted) -> Result<()> {
    let pool = pool()?;
    let i = pool.next.fetch_add(1, Ordering::Relaxed) % pool.threads.len();
    let t = &pool.threads[i];
    t.tx.send(hosted).map_err(|_| {
        Error::io(
            "event-loop thread is gone",
            std::io::Error::other("stopped"),
        )
    })?;
    t.waker
        .wake()
        .map_err(|e| Error::io("cannot wake event-loop thread", e))
}

/// The loop of one shared thread; it runs for the life of the process.
fn run(mut poll: Poll, rx: Receiver<Hosted>) {
    let mut events = Events::with_capacity(1024);
    let mut slots: HashMap<usize, Slot> = HashMap::new();
    let mut next_id = 0usize;
    let mut finished = Vec::new();
    loop {
        let now = Instant::now();
        let timeout = slots
            .values()
            .map(|s| {
                if s.again {
                    Duration::ZERO
                } else {
                    s.due.saturating_duration_since(now)
                }
            })
            .min()
            .unwrap_or(IDLE);
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                // Cannot happen with a valid epoll set; never spin on it.
                eprintln!("zgossip: event-loop poll failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for ev in events.iter() {
            if ev.token() == WAKER {
                while let Ok(hosted) = rx.try_recv() {
                    let id = next_id;
                    next_id += 1;
                    let fd = hosted.reactor.poll_fd();
                    if let Err(e) =
                        poll.registry()
                            .register(&mut SourceFd(&fd), Token(id), Interest::READABLE)
                    {
                        eprintln!("zgossip {}: cannot watch node: {e}", hosted.reactor.name());
                        continue; // dropped: its application is told
                    }
                    slots.insert(
                        id,
                        Slot {
                            hosted,
                            lingering: false,
                            ready: true,
                            again: false,
                            due: Instant::now(),
                        },
                    );
                }
            } else if let Some(s) = slots.get_mut(&ev.token().0) {
                s.ready = true;
            }
        }
        let now = Instant::now();
        for (&id, s) in slots.iter_mut() {
            if !(s.ready || s.again || now >= s.due) {
                continue;
            }
            s.ready = false;
            if !give_turn(s) {
                finished.push(id);
            }
        }
        for id in finished.drain(..) {
            if let Some(mut s) = slots.remove(&id) {
                let fd = s.hosted.reactor.poll_fd();
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
                let outcome = catch_unwind(AssertUnwindSafe(|| s.hosted.reactor.finish()));
                drop(outcome);
                // Dropping it tells its application and releases its handle.
            }
        }
    }
}

/// Gives a node its turn; false once it has ended (or panicked).
fn give_turn(s: &mut Slot) -> bool {
    let reactor = &mut s.hosted.reactor;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if !s.lingering {
            s.again = reactor.turn(Some(Duration::ZERO));
            if reactor.running() {
                let wait = reactor.poll_timeout().unwrap_or(IDLE);
                s.again |= wait.is_zero();
                s.due = Instant::now() + wait;
                return true;
            }
            reactor.begin_shutdown();
            s.lingering = true;
            s.again = false;
        }
        s.due = Instant::now() + LINGER_TICK;
        !reactor.linger_step(Some(Duration::ZERO))
    }));
    match outcome {
        Ok(keep) => keep,
        Err(_) => {
            eprintln!(
                "zgossip {}: node stopped by an internal error (panic)",
                reactor.name()
            );
            false
        }
    }
}
