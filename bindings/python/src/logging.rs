//! The library's log lines to Python's `logging`, through a queue.
//!
//! A [`log::Log`] of ours is installed as the process's logger; it puts
//! each line it takes into a bounded queue and never waits: a full queue
//! drops the line and counts it. A Python thread (`zgossip/_logging.py`)
//! takes the lines out and logs them under the logger `zgossip`.
//!
//! Why not a bridge that calls into Python from the logger (pyo3-log):
//! the lines are written on the library's event-loop thread, which serves
//! every node of the process. Calling Python there would make that thread
//! wait for the GIL; and a node that Python's garbage collector drops waits
//! for the event loop with the GIL held, so the two would wait for each
//! other for ever. With the queue the event loop never waits for Python.
//!
//! The logger takes only what the `zgossip` logger would log: the Python
//! thread tells it the level (`log_set_level`), so below it nothing is
//! formatted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;

/// Lines waiting for the Python thread, at most; more are dropped.
const QUEUE_LINES: usize = 4096;

/// A line: the Python level number, the target, the message.
type Line = (u8, String, String);

struct Queue {
    tx: SyncSender<Line>,
    rx: Mutex<Receiver<Line>>,
}

fn queue() -> &'static Queue {
    static QUEUE: OnceLock<Queue> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUE_LINES);
        Queue {
            tx,
            rx: Mutex::new(rx),
        }
    })
}

/// The most detailed level taken, as a `LevelFilter` number (0: none).
static LEVEL: AtomicUsize = AtomicUsize::new(0);
/// Lines dropped because the queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

struct Bridge;

static BRIDGE: Bridge = Bridge;

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.level() as usize) <= LEVEL.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = (
            python_level(record.level()),
            record.target().to_string(),
            record.args().to_string(),
        );
        match queue().tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&self) {}
}

/// `logging.ERROR` and so on; `TRACE` is 5, below `logging.DEBUG`.
fn python_level(level: Level) -> u8 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

/// The most detailed level a Python logger at `level` logs.
fn filter_for(level: i64) -> LevelFilter {
    match level {
        i64::MIN..=5 => LevelFilter::Trace,
        6..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        31..=40 => LevelFilter::Error,
        _ => LevelFilter::Off,
    }
}

/// Installs the bridge as the process's logger; False if the process has
/// another one (then nothing reaches Python through it).
#[pyfunction]
pub fn log_install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| log::set_logger(&BRIDGE).is_ok())
}

/// Takes the lines a Python logger at `level` (a `logging` level number)
/// would log, and no more.
#[pyfunction]
pub fn log_set_level(level: i64) {
    let filter = filter_for(level);
    LEVEL.store(filter as usize, Ordering::Relaxed);
    log::set_max_level(filter);
}

/// The next line, `(level, target, message)`, or None when none came
/// within `timeout` seconds; waits with the GIL released.
#[pyfunction]
pub fn log_next(py: Python<'_>, timeout: f64) -> Option<Line> {
    let wait = Duration::from_secs_f64(timeout.clamp(0.0, 1.0));
    py.detach(|| {
        let rx = queue().rx.lock().unwrap_or_else(|e| e.into_inner());
        match rx.recv_timeout(wait) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    })
}

/// Lines dropped so far because Python did not take them fast enough.
#[pyfunction]
pub fn log_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}
