//! The log handler: the library's log lines (`src/logging.rs`) given to a
//! C function instead of stderr.
//!
//! A [`log::Log`] of our own is installed as the process's logger the
//! first time a handler is set; it hands each line taken to the handler.
//! The handler and its `user` pointer sit behind a lock that a call holds
//! while the handler runs, so once `zgossip_set_log_handler` has returned
//! the old handler is never called again (its `user` may be freed).

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::RwLock;

use super::boundary::{guard, Failure};
use super::error::zgossip_result;

/// The levels of log lines, as `zgossip_set_log_level` takes them and the
/// handler receives them: the lower, the more severe.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum zgossip_log_level {
    /// No line at all (only for `zgossip_set_log_level`).
    ZGOSSIP_LOG_OFF = 0,
    /// Something stopped a node or its data directory.
    ZGOSSIP_LOG_ERROR = 1,
    /// Something went wrong and the node goes on (a torn data file cut, a
    /// configuration file that no longer loads).
    ZGOSSIP_LOG_WARN = 2,
    /// A recovery (the data directory is written again).
    ZGOSSIP_LOG_INFO = 3,
    /// The protocol trace `VERBOSE` prints: connections, binds, dials,
    /// writes refused, sessions expired.
    ZGOSSIP_LOG_DEBUG = 4,
    /// A line per message received, sent or forwarded.
    ZGOSSIP_LOG_TRACE = 5,
}

/// A log handler: `level` is a `zgossip_log_level` (1 to 5), `target` the
/// part that wrote the line (`zgossip::engine`, `zgossip::reactor`,
/// `zgossip::discovery`, `zgossip::store`; other targets come from the
/// libraries zgossip uses, e.g. `mdns_sd`), `message` the line without a
/// newline (`NAME: what`, NAME the node's), `user` what was given to
/// `zgossip_set_log_handler`. Both strings are valid only during the call.
#[allow(non_camel_case_types)]
pub type zgossip_log_fn = Option<
    unsafe extern "C" fn(
        level: c_int,
        target: *const c_char,
        message: *const c_char,
        user: *mut c_void,
    ),
>;

/// The handler set, and what to pass it.
struct Handler {
    call: unsafe extern "C" fn(c_int, *const c_char, *const c_char, *mut c_void),
    user: *mut c_void,
}

// SAFETY: `user` is the application's pointer, never dereferenced here; the
// API contract is that the handler may be called from any thread with it.
unsafe impl Send for Handler {}
// SAFETY: as above; the handler is called with a shared reference only.
unsafe impl Sync for Handler {}

static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);
/// The most detailed level given to the handler, as a `LevelFilter`
/// number (0 off, 5 trace).
static LEVEL: AtomicUsize = AtomicUsize::new(LevelFilter::Info as usize);
/// Whether our logger is the process's (`log::set_logger` succeeded).
static INSTALLED: OnceLock<bool> = OnceLock::new();

struct CLogger;

static LOGGER: CLogger = CLogger;

impl Log for CLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.level() as usize) <= LEVEL.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Recursive: a line logged on this thread while a handler runs (or
        // while a new handler waits for the lock) must not deadlock.
        let handler = HANDLER.read_recursive();
        let Some(h) = handler.as_ref() else {
            return;
        };
        let target = c_string(record.target().to_string());
        let message = c_string(record.args().to_string());
        // SAFETY: the handler is a C function the application gave us with
        // this signature; both strings are NUL-terminated and live until it
        // returns; `user` is passed back untouched.
        unsafe {
            (h.call)(
                level_number(record.level()),
                target.as_ptr(),
                message.as_ptr(),
                h.user,
            )
        };
    }

    fn flush(&self) {}
}

/// A C string of `s`; a NUL inside (a key can hold none, but be sure)
/// becomes a space.
fn c_string(s: String) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

fn level_number(level: Level) -> c_int {
    level as usize as c_int
}

/// Installs our logger once; false if the process has another.
fn installed() -> bool {
    *INSTALLED.get_or_init(|| log::set_logger(&LOGGER).is_ok())
}

/// Tells the facade what to ask our logger for: the level set while a
/// handler is set, nothing otherwise (lines then go to stderr as before).
fn apply_level() {
    let level = if HANDLER.read().is_some() {
        LEVEL.load(Ordering::Relaxed)
    } else {
        0
    };
    let filter = [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ][level.min(5)];
    log::set_max_level(filter);
}

/// Routes the library's log lines to `handler` instead of stderr, for the
/// whole process (every node), from now on; `handler` NULL restores the
/// default (warnings and errors on stderr, and the trace of `VERBOSE`
/// nodes). Lines up to `zgossip_set_log_level` reach it
/// (`ZGOSSIP_LOG_INFO` by default): set `ZGOSSIP_LOG_DEBUG` to receive the
/// protocol trace of every node, `VERBOSE` or not. A `VERBOSE` node still
/// prints its trace on stderr too, as in CZMQ.
///
/// The handler is called from the library's threads (the event loop,
/// discovery), several at once, and must be thread-safe. It must return
/// quickly and must not call any zgossip function: it runs on the event
/// loop, which serves every node. Once this call returns, the handler it
/// replaced is no longer running nor called. Returns 0, or
/// -`ZGOSSIP_ERR_CONFIG` when the process already has another logger of
/// Rust's `log` facade (a Rust program that installed its own).
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_set_log_handler(handler: zgossip_log_fn, user: *mut c_void) -> c_int {
    guard(|| {
        if !installed() {
            return Err(Failure::new(
                zgossip_result::ZGOSSIP_ERR_CONFIG,
                "the process already has a logger of Rust's log facade: \
                 its lines go there, not to a handler",
            ));
        }
        *HANDLER.write() = handler.map(|call| Handler { call, user });
        apply_level();
        Ok(0)
    })
}

/// Sets the most detailed level given to the log handler, a
/// `zgossip_log_level` (`ZGOSSIP_LOG_OFF` to `ZGOSSIP_LOG_TRACE`; by
/// default `ZGOSSIP_LOG_INFO`). It may be called before or after
/// `zgossip_set_log_handler`. Below `ZGOSSIP_LOG_DEBUG`, nothing of the
/// trace is even formatted. Returns 0, or -`ZGOSSIP_ERR_INVALID_ARG` for
/// a level out of range.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_set_log_level(level: c_int) -> c_int {
    guard(|| {
        let Ok(n) = usize::try_from(level) else {
            return Err(bad_level(level));
        };
        if n > zgossip_log_level::ZGOSSIP_LOG_TRACE as usize {
            return Err(bad_level(level));
        }
        LEVEL.store(n, Ordering::Relaxed);
        if INSTALLED.get() == Some(&true) {
            apply_level();
        }
        Ok(0)
    })
}

fn bad_level(level: c_int) -> Failure {
    Failure::new(
        zgossip_result::ZGOSSIP_ERR_INVALID_ARG,
        format!("log level must be 0 (ZGOSSIP_LOG_OFF) to 5 (ZGOSSIP_LOG_TRACE), got {level}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_match_the_facade() {
        assert_eq!(level_number(Level::Error), 1);
        assert_eq!(level_number(Level::Trace), 5);
        assert_eq!(
            zgossip_log_level::ZGOSSIP_LOG_DEBUG as usize,
            Level::Debug as usize
        );
    }

    #[test]
    fn a_level_out_of_range_is_refused() {
        assert_eq!(
            zgossip_set_log_level(6),
            -(zgossip_result::ZGOSSIP_ERR_INVALID_ARG as c_int)
        );
        assert_eq!(
            zgossip_set_log_level(-1),
            -(zgossip_result::ZGOSSIP_ERR_INVALID_ARG as c_int)
        );
    }
}
