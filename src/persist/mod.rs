//! Persistence: a node's tuples kept in a data directory (`store/path`),
//! so that they survive restarts and crashes. docs/persistence.md gives
//! the format, the reasons for it and the guarantees.
//!
//! This layer sits on the store (and beside the wire codecs); it knows
//! nothing of engines, commands or sockets:
//!
//! - [`record`]: the data file's bytes, without I/O (header, records,
//!   the check of a file read back: torn tails and damage).
//! - [`snapshot`]: a whole store as records (what a compaction writes).
//! - [`file`]: the data directory on disk (lock, read, append, sync,
//!   replace).
//! - [`Fsync`]: how often written data is forced to disk.
//!
//! The engine decides what is written (each write it applies, each
//! expiry) and encodes it with [`record`]; the reactor takes the bytes and
//! does the file I/O on its timer.

pub mod file;
pub mod record;
pub mod snapshot;

/// What the data directory did, for `STATS` (`store-*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records read back when the directory was opened.
    pub loaded: u64,
    /// Of those, tuples whose time to live ran out while the node was
    /// down.
    pub expired_on_load: u64,
    pub records_written: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub compactions: u64,
    /// Torn or damaged last records cut when the directory was opened.
    pub torn_tails: u64,
    pub write_errors: u64,
}

/// `store/fsync`: when written data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every batch of writes, before the next is taken.
    Always,
    /// At most this many ms after a write (its records are handed to the
    /// system at the same time).
    Every(u64),
    /// Never: records are handed to the system every
    /// [`DEFAULT_FSYNC_MS`], and it writes them when it likes.
    Never,
}

/// The default `store/fsync` interval, ms.
pub const DEFAULT_FSYNC_MS: u64 = 100;
/// The longest `store/fsync` interval, ms.
pub const MAX_FSYNC_MS: u64 = 60_000;

impl Default for Fsync {
    fn default() -> Fsync {
        Fsync::Every(DEFAULT_FSYNC_MS)
    }
}

impl Fsync {
    /// Reads a `store/fsync` value: `always`, `never` or a number of ms
    /// (1 to [`MAX_FSYNC_MS`]). `Err` says what is wrong.
    pub fn parse(value: &str) -> Result<Fsync, String> {
        let v = value.trim();
        match v {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            _ => match v.parse::<u64>() {
                Ok(ms) if (1..=MAX_FSYNC_MS).contains(&ms) => Ok(Fsync::Every(ms)),
                _ => Err(format!(
                    "store/fsync must be 'always', 'never' or a number of milliseconds \
                     between 1 and {MAX_FSYNC_MS}, got '{value}'"
                )),
            },
        }
    }

    /// How long written records may wait in memory before they are handed
    /// to the system, ms (0: not at all).
    pub fn write_delay_ms(self) -> u64 {
        match self {
            Fsync::Always => 0,
            Fsync::Every(ms) => ms,
            Fsync::Never => DEFAULT_FSYNC_MS,
        }
    }

    /// Whether handing records to the system is followed by an fsync.
    pub fn syncs(self) -> bool {
        self != Fsync::Never
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_values_are_read_and_checked() {
        assert_eq!(Fsync::parse("always"), Ok(Fsync::Always));
        assert_eq!(Fsync::parse(" never "), Ok(Fsync::Never));
        assert_eq!(Fsync::parse("250"), Ok(Fsync::Every(250)));
        assert_eq!(Fsync::default(), Fsync::Every(100));
        for bad in ["0", "60001", "soon", "-5", ""] {
            let e = Fsync::parse(bad).unwrap_err();
            assert!(e.contains("between 1 and 60000") && e.contains(bad), "{e}");
        }
        assert_eq!(Fsync::Always.write_delay_ms(), 0);
        assert!(!Fsync::Never.syncs() && Fsync::Every(5).syncs());
    }
}
