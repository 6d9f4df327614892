//! The configuration file a node loaded, watched for changes: as CZMQ, a
//! loaded file that changes on disk is loaded again and applied. No I/O
//! here: the driver looks at the file's modification time when this says
//! a check is due, and says what it found.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How often a loaded configuration file is checked for changes.
pub(crate) const CHECK_MS: u64 = 1_000;

/// The file last loaded (`LOAD`), with its modification time as loaded.
#[derive(Debug, Default)]
pub(crate) struct ConfigFile {
    loaded: Option<(PathBuf, Option<SystemTime>)>,
    next_check: u64,
}

impl ConfigFile {
    /// `path` was loaded at `now_ms`; it was last modified at `stamp`
    /// (`None`: unknown).
    pub(crate) fn loaded(&mut self, path: PathBuf, stamp: Option<SystemTime>, now_ms: u64) {
        self.loaded = Some((path, stamp));
        self.next_check = now_ms + CHECK_MS;
    }

    /// When the next check is due (none while no file is loaded).
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.loaded.as_ref().map(|_| self.next_check)
    }

    /// The file to look at, if a check is due at `now_ms` (the next one
    /// is then planned).
    pub(crate) fn due(&mut self, now_ms: u64) -> Option<&Path> {
        let (path, _) = self.loaded.as_ref().filter(|_| now_ms >= self.next_check)?;
        self.next_check = now_ms + CHECK_MS;
        Some(path)
    }

    /// The file was last modified at `stamp`: whether it changed since it
    /// was loaded (then load it again; [`loaded`](Self::loaded) when that
    /// works, [`failed`](Self::failed) when not).
    pub(crate) fn changed(&self, stamp: Option<SystemTime>) -> bool {
        self.loaded.as_ref().is_some_and(|(_, s)| *s != stamp)
    }

    /// Loading the version of the file modified at `stamp` failed: it is
    /// not tried again, only a later change.
    pub(crate) fn failed(&mut self, stamp: Option<SystemTime>) {
        if let Some((_, s)) = self.loaded.as_mut() {
            *s = stamp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_loaded_file_is_checked_once_a_second_and_a_failed_version_once() {
        let mut f = ConfigFile::default();
        assert_eq!(f.poll_timeout(), None, "nothing loaded: no check");
        assert!(f.due(5_000).is_none());
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        f.loaded("node.cfg".into(), Some(t0), 5_000);
        assert_eq!(f.poll_timeout(), Some(6_000));
        assert!(f.due(5_999).is_none());
        assert_eq!(f.due(6_000), Some(Path::new("node.cfg")));
        assert_eq!(f.poll_timeout(), Some(7_000));
        assert!(!f.changed(Some(t0)));
        let t1 = t0 + Duration::from_secs(1);
        assert!(f.changed(Some(t1)));
        assert!(f.changed(None), "gone: a change too");
        f.failed(Some(t1));
        assert!(
            !f.changed(Some(t1)),
            "the broken version is not tried again"
        );
        assert!(f.changed(Some(t1 + Duration::from_secs(1))));
    }
}
