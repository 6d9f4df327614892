//! The data directory on disk: one data file of records, appended to and
//! now and then replaced whole by a compaction, and a lock file that keeps
//! a second node out.
//!
//! ```text
//! DIR/lock            held with flock(2) while a node has DIR open
//! DIR/tuples.zgp      the header and the records (record.rs)
//! DIR/tuples.zgp.new  a compaction being written; renamed over the data
//!                     file once synced, deleted if found at open
//! ```
//!
//! Every replacement goes through the `.new` file, a sync, a rename and a
//! sync of the directory, so that a crash leaves either the old file or
//! the new one, whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::record::{self, Scan};
use crate::error::{Error, Result};

/// The data file's name in the directory.
pub const DATA_FILE: &str = "tuples.zgp";
/// A compaction's file until it is renamed over [`DATA_FILE`].
pub const NEW_FILE: &str = "tuples.zgp.new";
/// The lock file's name.
pub const LOCK_FILE: &str = "lock";

/// A data directory held open (and locked) by one node.
#[derive(Debug)]
pub struct DataDir {
    dir: PathBuf,
    path: PathBuf,
    /// The data file, opened for appending.
    file: File,
    /// Released (and the lock with it) when the directory is dropped.
    _lock: Flock<File>,
    /// Bytes of the data file that are good: a failed append is cut back
    /// to here.
    len: u64,
    /// The nonce of the data file's marks.
    nonce: u32,
}

/// A directory just opened: its good part read, checked and ready to be
/// loaded.
#[derive(Debug)]
pub struct Opened {
    pub dir: DataDir,
    /// The good part of the data file (header included).
    pub contents: Vec<u8>,
    /// What the check found; a torn tail has been cut from the file.
    pub scan: Scan,
    /// Bytes cut (0 without a torn tail).
    pub cut_bytes: usize,
}

impl DataDir {
    /// Opens `dir` (created when missing): takes its lock, reads its data
    /// file (created when missing) and checks it. A torn tail is cut off
    /// the file (`scan.torn` says so). Damage elsewhere, a newer format or
    /// a lock held by another node are errors that name the file.
    pub fn open(dir: &Path) -> Result<Opened> {
        let shown = dir.display();
        fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create data directory {shown}"), e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("cannot open {}", lock_path.display()), e))?;
        let lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(Error::Config(format!(
                    "data directory {shown} is in use by another node (it holds {})",
                    lock_path.display()
                )))
            }
            Err((_, errno)) => {
                return Err(Error::io(
                    format!("cannot lock {}", lock_path.display()),
                    io::Error::from(errno),
                ))
            }
        };
        match fs::remove_file(dir.join(NEW_FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::io(
                    format!("cannot remove {}", dir.join(NEW_FILE).display()),
                    e,
                ))
            }
            _ => {}
        }
        let path = dir.join(DATA_FILE);
        if !path.exists() {
            write_whole(dir, &new_header())
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        }
        let mut contents =
            fs::read(&path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let scan = record::scan(&contents).map_err(|d| {
            Error::Config(format!(
                "{}: damaged at offset {}: {}",
                path.display(),
                d.offset,
                d.why
            ))
        })?;
        let cut_bytes = contents.len() - scan.good_len;
        if scan.torn.is_some() {
            contents.truncate(scan.good_len);
            cut(&path, scan.good_len as u64)
                .map_err(|e| Error::io(format!("cannot cut the tail of {}", path.display()), e))?;
        }
        let file = append_to(&path)?;
        let nonce = record::nonce_of(&contents);
        Ok(Opened {
            dir: DataDir {
                dir: dir.to_path_buf(),
                path,
                file,
                _lock: lock,
                len: contents.len() as u64,
                nonce,
            },
            contents,
            scan,
            cut_bytes,
        })
    }

    /// The data file's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the data file.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// Appends a sync mark of this file to `out` (to be appended after a
    /// sync: it says that everything before it is on disk).
    pub fn mark(&self, out: &mut Vec<u8>) {
        record::mark(out, self.nonce);
    }

    /// Appends records (handed to the system, not synced). On an error the
    /// file is cut back to what it held before, so that no partial record
    /// stays in the middle of it.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Err(e) = self.file.write_all(bytes) {
            // Best effort: if even this fails, the next open finds a torn
            // tail, or the next compaction replaces the file.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Forces what was appended to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ends a compaction whose file [`write_new`] wrote (`len` bytes, its
    /// marks of `nonce`): `tail` (the records appended since its snapshot
    /// was taken) is appended to it and synced, and it is renamed over the
    /// data file. On an error the data file stays as it was.
    pub fn install_new(&mut self, tail: &[u8], nonce: u32, len: u64) -> io::Result<()> {
        let new = self.dir.join(NEW_FILE);
        let mut f = OpenOptions::new().append(true).open(&new)?;
        f.write_all(tail)?;
        f.sync_data()?;
        drop(f);
        fs::rename(&new, &self.path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = append_to(&self.path).map_err(|e| match e {
            Error::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })?;
        self.nonce = nonce;
        self.len = len + tail.len() as u64;
        Ok(())
    }

    /// Removes a `.new` file a failed compaction left.
    pub fn discard_new(&self) {
        let _ = fs::remove_file(self.dir.join(NEW_FILE));
    }

    /// Replaces the data file with `contents` (a header from
    /// [`new_header`] and records, a compaction's snapshot): written
    /// beside it, synced, renamed over it. On an error the old file stays
    /// as it was.
    pub fn replace(&mut self, contents: &[u8]) -> io::Result<()> {
        write_whole(&self.dir, contents)?;
        self.nonce = record::nonce_of(contents);
        self.file = append_to(&self.path).map_err(|e| match e {
            Error::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })?;
        self.len = contents.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
impl DataDir {
    /// Makes the next appends fail, as a full disk would (the data file
    /// reopened read-only); a replacement heals it.
    pub(crate) fn break_for_test(&mut self) {
        self.file = File::open(&self.path).unwrap();
    }
}

/// The header of a new data file, with a nonce of its own.
pub fn new_header() -> [u8; record::HEADER_LEN] {
    let mut b = [0u8; 4];
    // A nonce only tells this file's marks from bytes that look like
    // them: without the system's randomness, the time will do.
    if getrandom::getrandom(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        b = t.to_be_bytes();
    }
    record::header(u32::from_be_bytes(b))
}

/// Writes `contents` as the directory's data file through the `.new` file.
fn write_whole(dir: &Path, contents: &[u8]) -> io::Result<()> {
    write_new(dir, contents)?;
    fs::rename(dir.join(NEW_FILE), dir.join(DATA_FILE))?;
    File::open(dir)?.sync_all()
}

/// Writes and syncs `contents` (a header from [`new_header`] and records)
/// as the directory's `.new` file, without putting it in place: the slow
/// part of a compaction, which can run on a thread of its own while the
/// node appends to the data file ([`DataDir::install_new`] ends it).
pub fn write_new(dir: &Path, contents: &[u8]) -> io::Result<()> {
    let mut f = File::create(dir.join(NEW_FILE))?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Appends `bytes` to the `.new` file [`write_new`] wrote, and syncs it.
pub fn append_new(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(dir.join(NEW_FILE))?;
    f.write_all(bytes)?;
    f.sync_data()
}

/// Cuts the file at `path` to `len` bytes, durably.
fn cut(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

fn append_to(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Version, Write};

    /// A fresh directory under the system's temporary one.
    fn tmp(name: &str) -> PathBuf {
        let mut id = [0u8; 8];
        getrandom::getrandom(&mut id).unwrap();
        let dir =
            std::env::temp_dir().join(format!("zgossip-file-{name}-{}", u64::from_le_bytes(id)));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn rec(key: &str, value: &str, clock: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let w = Write {
            value,
            version: Version { clock, origin: 1 },
            expires: 0,
            deleted: false,
            ephemeral: false,
        };
        record::encode(&mut out, key, &w, 0);
        out
    }

    #[test]
    fn a_directory_is_created_appended_to_reopened_and_replaced() {
        let dir = tmp("basic");
        let mut o = DataDir::open(&dir).unwrap();
        assert_eq!(o.scan.records, 0);
        assert_eq!(o.contents.len(), record::HEADER_LEN);
        o.dir.append(&rec("a", "1", 1)).unwrap();
        o.dir.append(&rec("b", "2", 2)).unwrap();
        o.dir.sync().unwrap();
        let len = o.dir.bytes();
        drop(o);
        let mut o = DataDir::open(&dir).unwrap();
        assert_eq!((o.scan.records, o.dir.bytes()), (2, len));
        let mut snapshot = new_header().to_vec();
        snapshot.extend(rec("b", "2", 2));
        o.dir.replace(&snapshot).unwrap();
        o.dir.append(&rec("c", "3", 3)).unwrap();
        drop(o);
        let o = DataDir::open(&dir).unwrap();
        let keys: Vec<&str> = record::records(&o.contents).map(|r| r.key).collect();
        assert_eq!(keys, ["b", "c"]);
        drop(o);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_lock() {
        let dir = tmp("lock");
        let first = DataDir::open(&dir).unwrap();
        let e = DataDir::open(&dir).unwrap_err().to_string();
        assert!(
            e.contains("in use by another node") && e.contains("lock"),
            "{e}"
        );
        drop(first);
        DataDir::open(&dir).expect("free again");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_from_the_file_and_damage_is_named() {
        let dir = tmp("torn");
        let mut o = DataDir::open(&dir).unwrap();
        o.dir.append(&rec("a", "1", 1)).unwrap();
        let whole = o.dir.bytes();
        o.dir.append(&rec("b", "2", 2)[..9]).unwrap();
        drop(o);
        let o = DataDir::open(&dir).unwrap();
        assert!(o.scan.torn.is_some());
        assert_eq!(o.dir.bytes(), whole);
        assert_eq!(fs::metadata(dir.join(DATA_FILE)).unwrap().len(), whole);
        drop(o);
        // Damage before a good record.
        let path = dir.join(DATA_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend(rec("c", "3", 3));
        // Synced since: damage before the mark is an error.
        let nonce = record::nonce_of(&bytes);
        record::mark(&mut bytes, nonce);
        bytes[record::HEADER_LEN + 9] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let e = DataDir::open(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("offset 16"),
            "{e}"
        );
        // A leftover compaction file is removed.
        fs::write(dir.join(NEW_FILE), b"half").unwrap();
        fs::write(&path, new_header()).unwrap();
        DataDir::open(&dir).unwrap();
        assert!(!dir.join(NEW_FILE).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
