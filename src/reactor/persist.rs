//! The data directory's driver: the file I/O of persistence, on the
//! node's event loop. It opens the directory and loads it into the engine
//! before anything is served, takes the engine's journal after every turn,
//! hands it to the system and forces it to disk as `store/fsync` says
//! (its deadline is one of the reactor's timers), compacts the data file
//! when it holds more than about twice the live data, and turns write
//! errors into a counter, a message and an event for the application
//! while the node goes on serving from memory.
//!
//! A compaction is made without stopping the node: its snapshot is encoded
//! on the loop a part at a time ([`ENCODE_STEP`] entries a turn), then
//! written and synced on a thread of its own, while the node goes on
//! appending to the data file. The records appended from the snapshot's
//! start on are kept too, and go after it: the thread appends them while
//! they are many, the loop the last few ([`SMALL_TAIL`]) when it puts the
//! new file in place. An entry encoded before a later write of its key is
//! followed by that write, which wins on loading as it won in memory
//! (versions decide). A crash at any moment leaves a data file holding
//! everything synced.

use std::io;
use std::path::Path;
use std::sync::mpsc;

use log::Level;

use crate::engine::{Engine, Now, Restored};
use crate::error::Result;
use crate::logging;
use crate::persist::file::{self, DataDir};
use crate::persist::{record, snapshot, Counters, Fsync};

/// Records kept in memory before they are handed to the system whatever
/// the fsync interval.
const WRITE_AHEAD: usize = 1 << 20;
/// A data file smaller than this is never compacted.
const MIN_COMPACT: u64 = 1 << 20;
/// After a write error, ms before the directory is tried again (with a
/// compaction, which writes everything the node holds).
const RETRY_MS: u64 = 1_000;
/// While a compaction is made, how often the loop comes back to it (ms).
const BACKGROUND_CHECK_MS: u64 = 5;
/// Entries of the store a compaction encodes per turn of the loop (a few
/// ms of work).
pub(crate) const ENCODE_STEP: usize = 20_000;
/// A compaction's tail the loop appends itself when it puts the new file
/// in place; a longer one goes to the thread first.
const SMALL_TAIL: usize = 256 << 10;

/// The thread writing a compaction: the snapshot, then the parts of the
/// tail it is given, each synced; it answers once per piece.
struct Writer {
    parts: mpsc::Sender<Vec<u8>>,
    done: mpsc::Receiver<io::Result<()>>,
    thread: std::thread::JoinHandle<()>,
}
/// A compaction being made.
struct Background {
    /// The snapshot, encoded so far (a header first).
    out: Vec<u8>,
    /// The next entry to encode, and the store's generation when encoding
    /// started (entries renumbered: start again).
    next: usize,
    generation: u64,
    /// Set once the snapshot is whole and its thread writes it.
    writing: Option<Writer>,
    /// Records appended since the snapshot was started.
    tail: Vec<u8>,
    nonce: u32,
    len: u64,
    records: u64,
    /// When the loop comes back (mono ms).
    check_at: u64,
}

impl Background {
    /// Waits for the thread's answer to the piece it writes, and ends it;
    /// its result.
    fn wait(&mut self) -> io::Result<()> {
        let Some(w) = self.writing.take() else {
            return Err(io::Error::other("the compaction was not written"));
        };
        let result = w
            .done
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the compaction's thread ended")));
        drop(w.parts);
        let _ = w.thread.join();
        result
    }
}

/// A data directory in use.
pub(crate) struct Persist {
    dir: DataDir,
    /// `store/path` as it was set.
    path: String,
    /// The data file, for messages.
    shown: String,
    fsync: Fsync,
    /// Records taken from the engine, not handed to the system yet.
    pending: Vec<u8>,
    pending_records: u64,
    /// Records handed to the system but not synced.
    unsynced: bool,
    /// When what is pending or unsynced must be written and synced (mono
    /// ms).
    due: Option<u64>,
    /// The last write error, while the directory is failing: retried at
    /// `retry_at`.
    failing: Option<String>,
    retry_at: u64,
    /// An error the application has not been told of yet.
    report: Option<String>,
    /// A compaction being written.
    background: Option<Background>,
    /// No compaction starts before this (mono ms; after a failed one).
    compact_after: u64,
    pub(crate) stats: Counters,
}

impl Persist {
    /// Opens `path` and loads what it holds into `engine` (versions decide
    /// against what the engine holds already); from then on the engine
    /// keeps its journal. A torn tail is cut, with a warning on stderr.
    pub(crate) fn open(path: &str, fsync: Fsync, engine: &mut Engine, now: Now) -> Result<Persist> {
        let opened = DataDir::open(Path::new(path))?;
        let shown = opened.dir.path().display().to_string();
        let mut stats = Counters::default();
        if let Some((offset, why)) = opened.scan.torn {
            stats.torn_tails += 1;
            logging::notice(
                logging::STORE,
                Level::Warn,
                Some(engine.name()),
                format_args!(
                    "{shown}: cut {} bytes written after the last sync, from a torn or damaged \
                     record at offset {offset} ({why}); the {} records before it are loaded",
                    opened.cut_bytes, opened.scan.records
                ),
            );
        }
        let held_before = engine.store().entries();
        engine.set_journal(true);
        for rec in record::records(&opened.contents) {
            stats.loaded += 1;
            if engine.restore(rec.key, rec.write, rec.since, now) == Restored::Expired {
                stats.expired_on_load += 1;
            }
        }
        engine.restored(now);
        let mut p = Persist {
            path: path.to_string(),
            dir: opened.dir,
            shown,
            fsync,
            pending: Vec::new(),
            pending_records: 0,
            unsynced: false,
            due: None,
            failing: None,
            retry_at: 0,
            report: None,
            background: None,
            compact_after: 0,
            stats,
        };
        drop(opened.contents);
        if held_before > 0 {
            // Tuples the node held before the directory: all of it
            // written at once. If that fails the node has no directory
            // (what it read stays merged in memory).
            if let Err(e) = p.compact(engine, now) {
                engine.set_journal(false);
                return Err(e);
            }
        } else {
            p.take(engine, now);
        }
        Ok(p)
    }

    /// `store/path` as it was set.
    pub(crate) fn set_path(&self) -> &str {
        &self.path
    }

    pub(crate) fn set_fsync(&mut self, fsync: Fsync, now: Now) {
        if fsync != self.fsync {
            self.fsync = fsync;
            if self.due.is_some() {
                self.due = Some(now.mono_ms);
            }
        }
    }

    /// Takes the engine's journal (after each turn of the engine). With
    /// `store/fsync always` it is written and synced at once.
    pub(crate) fn take(&mut self, engine: &mut Engine, now: Now) {
        let before = self.pending.len();
        let n = engine.take_journal(&mut self.pending);
        if n == 0 {
            return;
        }
        if self.failing.is_some() {
            // The retry's compaction writes everything the node holds.
            self.pending.clear();
            return;
        }
        if let Some(bg) = self.background.as_mut() {
            // After the snapshot being written, in the new file too.
            bg.tail.extend_from_slice(&self.pending[before..]);
        }
        self.pending_records += n;
        match self.fsync {
            Fsync::Always => self.flush(true, now),
            _ => {
                if self.pending.len() >= WRITE_AHEAD {
                    self.flush(false, now);
                }
                if self.due.is_none() {
                    self.due = Some(now.mono_ms + self.fsync.write_delay_ms());
                }
            }
        }
    }

    /// When the driver must be called next (mono ms).
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        if self.failing.is_some() {
            return Some(self.retry_at);
        }
        let check = self.background.as_ref().map(|bg| bg.check_at);
        [self.due, check].into_iter().flatten().min()
    }

    /// Runs what is due: pending records written and synced, a
    /// compaction when the file outgrew the live data, a retry after a
    /// write error.
    pub(crate) fn timeout(&mut self, engine: &mut Engine, now: Now) {
        if self.failing.is_some() {
            if now.mono_ms >= self.retry_at && self.compact(engine, now).is_ok() {
                logging::notice(
                    logging::STORE,
                    Level::Info,
                    Some(engine.name()),
                    format_args!("{}: writing again", self.shown),
                );
            }
            return;
        }
        if self.due.is_some_and(|at| at <= now.mono_ms) {
            self.flush(self.fsync.syncs(), now);
        }
        if self.failing.is_some() {
            return;
        }
        if self.background.is_some() {
            if self
                .background
                .as_ref()
                .is_some_and(|bg| bg.check_at <= now.mono_ms)
            {
                self.finish_background(false, engine, now);
            }
        } else if now.mono_ms >= self.compact_after && self.wants_compaction(engine) {
            self.start_background(engine, now);
        }
    }

    /// Starts a compaction: its snapshot is encoded from the next turns.
    fn start_background(&mut self, engine: &Engine, now: Now) {
        let header = file::new_header();
        let mut out = Vec::with_capacity(snapshot::estimate(engine.store()) + 64);
        out.extend_from_slice(&header);
        self.background = Some(Background {
            out,
            next: 0,
            generation: engine.store().generation(),
            writing: None,
            tail: Vec::new(),
            nonce: record::nonce_of(&header),
            len: 0,
            records: 0,
            check_at: now.mono_ms,
        });
    }

    /// Moves a compaction on: encodes the next part of its snapshot, starts
    /// writing it once whole, and puts it in place once written (with
    /// `wait`, the node is ending: all of it at once).
    fn finish_background(&mut self, wait: bool, engine: &Engine, now: Now) {
        let Some(mut bg) = self.background.take() else {
            return;
        };
        let store = engine.store();
        if bg.writing.is_none() {
            if bg.generation != store.generation() {
                // Tombstones were collected: entry numbers moved.
                bg.out.truncate(record::HEADER_LEN);
                bg.next = 0;
                bg.records = 0;
                bg.generation = store.generation();
            }
            let end = if wait {
                store.entries()
            } else {
                (bg.next + ENCODE_STEP).min(store.entries())
            };
            bg.records += snapshot::encode_entries(store, bg.next..end, &mut bg.out) as u64;
            bg.next = end;
            if bg.next < store.entries() {
                bg.check_at = now.mono_ms + BACKGROUND_CHECK_MS;
                self.background = Some(bg);
                return;
            }
            record::mark(&mut bg.out, bg.nonce);
            bg.len = bg.out.len() as u64;
            let out = std::mem::take(&mut bg.out);
            let dir = self.dir.dir().to_path_buf();
            let (tx, done) = mpsc::channel();
            let (parts, part_rx) = mpsc::channel::<Vec<u8>>();
            let spawned = std::thread::Builder::new()
                .name("zgossip-compact".into())
                .spawn(move || {
                    let mut result = file::write_new(&dir, &out);
                    drop(out);
                    loop {
                        let ok = result.is_ok();
                        if tx.send(result).is_err() || !ok {
                            return;
                        }
                        let Ok(part) = part_rx.recv() else {
                            return;
                        };
                        result = file::append_new(&dir, &part);
                    }
                });
            match spawned {
                Ok(thread) => {
                    bg.writing = Some(Writer {
                        parts,
                        done,
                        thread,
                    })
                }
                Err(e) => {
                    logging::notice(
                        logging::STORE,
                        Level::Warn,
                        None,
                        format_args!("cannot compact {}: no thread: {e}", self.shown),
                    );
                    self.compact_after = now.mono_ms + RETRY_MS;
                    return;
                }
            }
            if !wait {
                bg.check_at = now.mono_ms + BACKGROUND_CHECK_MS;
                self.background = Some(bg);
                return;
            }
        }
        let written = if wait {
            bg.wait()
        } else {
            let Some(w) = bg.writing.as_ref() else {
                return;
            };
            match w.done.try_recv() {
                Ok(Ok(())) if bg.tail.len() > SMALL_TAIL => {
                    // Much was written meanwhile: the thread appends it
                    // first, and the loop what comes after.
                    let part = std::mem::take(&mut bg.tail);
                    bg.len += part.len() as u64;
                    self.stats.bytes_written += part.len() as u64;
                    if w.parts.send(part).is_ok() {
                        bg.check_at = now.mono_ms + BACKGROUND_CHECK_MS;
                        self.background = Some(bg);
                        return;
                    }
                    Err(io::Error::other("the compaction's thread ended"))
                }
                Ok(result) => {
                    if let Some(w) = bg.writing.take() {
                        drop(w.parts);
                        let _ = w.thread.join();
                    }
                    result
                }
                Err(mpsc::TryRecvError::Empty) => {
                    bg.check_at = now.mono_ms + BACKGROUND_CHECK_MS;
                    self.background = Some(bg);
                    return;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    Err(io::Error::other("the compaction's thread ended"))
                }
            }
        };
        let installed = written.and_then(|()| self.dir.install_new(&bg.tail, bg.nonce, bg.len));
        match installed {
            Ok(()) => {
                self.stats.compactions += 1;
                self.stats.records_written += bg.records + self.pending_records;
                self.stats.bytes_written += bg.len + bg.tail.len() as u64;
                self.stats.fsyncs += 2;
                // What is pending went into the new file with the tail;
                // what comes next starts with a mark of the new file.
                self.pending.clear();
                self.pending_records = 0;
                self.unsynced = false;
                self.due = None;
                self.dir.mark(&mut self.pending);
            }
            Err(e) => {
                // The data file is as it was, and still appended to: only
                // the compaction is lost, and tried again later.
                self.dir.discard_new();
                self.stats.write_errors += 1;
                logging::notice(
                    logging::STORE,
                    Level::Warn,
                    None,
                    format_args!("cannot compact {}: {e}", self.shown),
                );
                self.compact_after = now.mono_ms + RETRY_MS;
            }
        }
    }

    /// Hands what is pending to the system and, with `sync`, forces it to
    /// disk.
    fn flush(&mut self, sync: bool, now: Now) {
        if !self.pending.is_empty() {
            if let Err(e) = self.dir.append(&self.pending) {
                self.fail(format!("cannot write {}: {e}", self.shown), now);
                return;
            }
            self.stats.records_written += self.pending_records;
            self.stats.bytes_written += self.pending.len() as u64;
            self.pending.clear();
            self.pending_records = 0;
            self.unsynced = true;
        }
        if sync && self.unsynced {
            if let Err(e) = self.dir.sync() {
                self.fail(format!("cannot sync {}: {e}", self.shown), now);
                return;
            }
            self.stats.fsyncs += 1;
            self.unsynced = false;
            // Whatever goes next starts with a mark: all before it is on
            // disk (a crash may tear only what follows).
            self.dir.mark(&mut self.pending);
        }
        self.due = None;
    }

    /// A write failed: counted, told, and tried again later with a
    /// compaction; the node serves from memory meanwhile.
    fn fail(&mut self, why: String, now: Now) {
        if let Some(mut bg) = self.background.take() {
            // The retry writes a compaction of its own.
            if bg.writing.is_some() {
                let _ = bg.wait();
                self.dir.discard_new();
            }
        }
        self.stats.write_errors += 1;
        if self.failing.is_none() {
            logging::notice(
                logging::STORE,
                Level::Error,
                None,
                format_args!("{why}; the node goes on from memory and tries again every second"),
            );
            self.report = Some(why.clone());
        }
        self.failing = Some(why);
        self.retry_at = now.mono_ms + RETRY_MS;
        self.pending.clear();
        self.pending_records = 0;
        self.due = None;
    }

    /// An error the application has not been told of (once per failure).
    pub(crate) fn take_report(&mut self) -> Option<String> {
        self.report.take()
    }

    /// Whether the data file holds more than about twice the live data.
    fn wants_compaction(&self, engine: &Engine) -> bool {
        let live = snapshot::estimate(engine.store()) as u64 + record::HEADER_LEN as u64;
        self.dir.bytes() > MIN_COMPACT.max(2 * live)
    }

    /// Replaces the data file with a snapshot of everything the engine
    /// holds (live tuples and tombstones); what was pending is in it.
    pub(crate) fn compact(&mut self, engine: &mut Engine, now: Now) -> Result<()> {
        let mut out = crate::persist::file::new_header().to_vec();
        // Whatever the journal holds is in the snapshot too.
        let mut dropped = Vec::new();
        engine.take_journal(&mut dropped);
        let n = snapshot::encode(engine.store(), &mut out);
        let nonce = record::nonce_of(&out);
        record::mark(&mut out, nonce);
        match self.dir.replace(&out) {
            Ok(()) => {
                self.stats.compactions += 1;
                self.stats.records_written += n as u64;
                self.stats.bytes_written += out.len() as u64;
                self.stats.fsyncs += 1;
                self.pending.clear();
                self.pending_records = 0;
                self.unsynced = false;
                self.due = None;
                self.failing = None;
                Ok(())
            }
            Err(e) => {
                let why = format!("cannot compact {}: {e}", self.shown);
                self.stats.write_errors += 1;
                if self.failing.is_none() {
                    logging::notice(
                        logging::STORE,
                        Level::Error,
                        Some(engine.name()),
                        format_args!("{why}; the node goes on from memory"),
                    );
                    self.report = Some(why.clone());
                }
                self.retry_at = now.mono_ms + RETRY_MS;
                self.failing = Some(why.clone());
                Err(crate::error::Error::Config(why))
            }
        }
    }

    /// Writes and syncs what is pending, and marks it synced (the node is
    /// ending).
    pub(crate) fn close(&mut self, engine: &mut Engine, now: Now) {
        self.take(engine, now);
        if self.failing.is_none() {
            self.finish_background(true, engine, now);
            self.flush(true, now);
            if self.failing.is_none() {
                let _ = self.dir.append(&self.pending);
                self.pending.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Settings;

    fn tmp(name: &str) -> std::path::PathBuf {
        let mut id = [0u8; 8];
        getrandom::getrandom(&mut id).unwrap();
        std::env::temp_dir().join(format!(
            "zgossip-driver-{name}-{:016x}",
            u64::from_le_bytes(id)
        ))
    }

    fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            wall_ms: 1_700_000_000_000 + ms,
        }
    }

    #[test]
    fn records_wait_for_the_interval_then_are_written_and_synced() {
        let dir = tmp("interval");
        let mut e = Engine::new("e", 1, Settings::default());
        let mut p = Persist::open(dir.to_str().unwrap(), Fsync::Every(100), &mut e, at(0)).unwrap();
        assert_eq!(p.poll_timeout(), None, "nothing to do");
        e.publish("k", "v", None, at(10));
        p.take(&mut e, at(10));
        assert_eq!(p.poll_timeout(), Some(110));
        assert_eq!(p.stats.records_written, 0);
        e.publish("j", "w", None, at(50));
        p.take(&mut e, at(50));
        assert_eq!(
            p.poll_timeout(),
            Some(110),
            "the first write sets the deadline"
        );
        p.timeout(&mut e, at(109));
        assert_eq!(p.stats.fsyncs, 0);
        p.timeout(&mut e, at(110));
        assert_eq!((p.stats.records_written, p.stats.fsyncs), (2, 1));
        assert_eq!(p.poll_timeout(), None);
        // Always: at once.
        p.set_fsync(Fsync::Always, at(200));
        e.publish("k", "v2", None, at(200));
        p.take(&mut e, at(200));
        assert_eq!((p.stats.records_written, p.stats.fsyncs), (3, 2));
        // Never: written on the timer, not synced.
        p.set_fsync(Fsync::Never, at(300));
        e.publish("k", "v3", None, at(300));
        p.take(&mut e, at(300));
        p.timeout(&mut e, at(400));
        assert_eq!((p.stats.records_written, p.stats.fsyncs), (4, 2));
        drop(p);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_grown_past_twice_the_live_data_is_compacted() {
        let dir = tmp("compact");
        let mut e = Engine::new("e", 1, Settings::default());
        // Never synced: the test is about sizes, not disks.
        let mut p = Persist::open(dir.to_str().unwrap(), Fsync::Never, &mut e, at(0)).unwrap();
        let value = "x".repeat(1000);
        for k in 0..10 {
            e.publish(&format!("key{k}"), "first", None, at(1));
        }
        let mut t = 1;
        for round in 0..1500 {
            t += 1;
            let v = format!("{round}{value}");
            e.publish(&format!("key{}", round % 10), &v, None, at(t));
            p.take(&mut e, at(t));
            t += 100;
            p.timeout(&mut e, at(t));
        }
        p.close(&mut e, at(t));
        assert!(p.stats.compactions >= 1, "{:?}", p.stats);
        let live = snapshot::estimate(e.store()) as u64;
        assert!(
            p.dir.bytes() <= MIN_COMPACT.max(2 * live) + 2_000,
            "{}",
            p.dir.bytes()
        );
        drop(p);
        // What a compaction left reads back as the store.
        let mut f = Engine::new("f", 2, Settings::default());
        let p = Persist::open(dir.to_str().unwrap(), Fsync::Always, &mut f, at(t)).unwrap();
        for k in 0..10 {
            let key = format!("key{k}");
            assert_eq!(
                f.store().get(&key).map(|t| t.version),
                e.store().get(&key).map(|t| t.version)
            );
            assert_eq!(f.store().value(&key), e.store().value(&key));
        }
        drop(p);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_made_while_a_compaction_is_made_follow_it_in_the_new_file() {
        let dir = tmp("background");
        let mut e = Engine::new("e", 1, Settings::default());
        let mut p = Persist::open(dir.to_str().unwrap(), Fsync::Every(10), &mut e, at(0)).unwrap();
        let n = ENCODE_STEP + ENCODE_STEP / 2;
        for k in 0..n {
            e.publish(&format!("k{k}"), "v", None, at(1));
        }
        p.take(&mut e, at(1));
        p.start_background(&e, at(2));
        assert_eq!(p.poll_timeout(), Some(2));
        // A first part encoded; then writes to keys encoded and not yet.
        p.finish_background(false, &e, at(2));
        assert!(p
            .background
            .as_ref()
            .is_some_and(|bg| bg.next == ENCODE_STEP));
        e.publish("during", "1", None, at(3));
        e.publish("k0", "new", None, at(3));
        e.unpublish(&format!("k{}", n - 1), at(3));
        p.take(&mut e, at(3));
        // Appended to the old file meanwhile, synced.
        p.timeout(&mut e, at(20));
        assert!(p.stats.fsyncs >= 1);
        p.finish_background(true, &e, at(21));
        assert_eq!(p.stats.compactions, 1);
        assert!(p.background.is_none());
        e.publish("after", "2", None, at(22));
        p.take(&mut e, at(22));
        p.close(&mut e, at(30));
        drop(p);
        let mut f = Engine::new("f", 2, Settings::default());
        let p = Persist::open(dir.to_str().unwrap(), Fsync::Always, &mut f, at(40)).unwrap();
        assert_eq!(p.stats.torn_tails, 0);
        for (key, value) in [
            ("during", Some("1")),
            ("after", Some("2")),
            ("k0", Some("new")),
        ] {
            assert_eq!(f.store().value(key), value, "{key}");
        }
        assert_eq!(f.store().value(&format!("k{}", n - 1)), None);
        assert_eq!(f.store().len(), n + 1);
        drop(p);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_compaction_starts_its_snapshot_again_when_entries_are_renumbered() {
        let dir = tmp("renumbered");
        let mut e = Engine::new("e", 1, Settings::default());
        let mut p = Persist::open(dir.to_str().unwrap(), Fsync::Every(10), &mut e, at(0)).unwrap();
        let n = 2 * ENCODE_STEP;
        for k in 0..n {
            e.publish(&format!("k{k}"), "v", None, at(1));
        }
        e.unpublish("k1", at(1));
        p.take(&mut e, at(1));
        p.start_background(&e, at(2));
        p.finish_background(false, &e, at(2));
        // A day later the tombstone is collected: entries move down.
        let day = 25 * 3_600_000;
        e.handle_timeout(at(day));
        let generation = e.store().generation();
        assert!(generation > 0, "collected");
        p.finish_background(true, &e, at(day));
        assert_eq!(p.stats.compactions, 1);
        p.close(&mut e, at(day + 1));
        drop(p);
        let mut f = Engine::new("f", 2, Settings::default());
        let _p = Persist::open(dir.to_str().unwrap(), Fsync::Always, &mut f, at(day + 2)).unwrap();
        assert_eq!(f.store().len(), n - 1);
        assert_eq!(f.store().value("k0"), Some("v"));
        assert_eq!(f.store().value(&format!("k{}", n - 1)), Some("v"));
        drop(_p);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_error_is_counted_and_told_once_and_a_retry_writes_everything() {
        let dir = tmp("errors");
        let mut e = Engine::new("e", 1, Settings::default());
        let mut p = Persist::open(dir.to_str().unwrap(), Fsync::Always, &mut e, at(0)).unwrap();
        e.publish("a", "1", None, at(1));
        p.take(&mut e, at(1));
        p.dir.break_for_test();
        e.publish("b", "2", None, at(2));
        p.take(&mut e, at(2));
        e.publish("c", "3", None, at(3));
        p.take(&mut e, at(3));
        assert_eq!(p.stats.write_errors, 1, "failing: nothing more is tried");
        let told = p.take_report().expect("told");
        assert!(
            told.contains("cannot write") && told.contains("tuples.zgp"),
            "{told}"
        );
        assert_eq!(p.take_report(), None, "once");
        assert_eq!(p.poll_timeout(), Some(1_002));
        // The retry: a compaction, which writes all the node holds.
        p.timeout(&mut e, at(1_002));
        assert_eq!((p.stats.write_errors, p.stats.compactions), (1, 1));
        assert_eq!(p.poll_timeout(), None);
        e.publish("d", "4", None, at(1_003));
        p.take(&mut e, at(1_003));
        drop(p);
        let mut f = Engine::new("f", 2, Settings::default());
        let _p = Persist::open(dir.to_str().unwrap(), Fsync::Always, &mut f, at(2_000)).unwrap();
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
            assert_eq!(f.store().value(k), Some(v), "{k}");
        }
        drop(_p);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
