//! Where the local agent's control socket lives, and the checks that keep
//! it the user's own (docs/agent.md, "Access").
//!
//! The default is `$XDG_RUNTIME_DIR/zgossip/<name>.sock`, else
//! `/tmp/zgossip-<uid>/<name>.sock`. The socket's directory must belong to
//! the user and give nobody else any access (mode 0700 or stricter): the
//! socket is created with the process's umask before it is made 0600,
//! and anyone who could write the directory could put their own socket
//! in its place. A missing directory (only the last component) is
//! created 0700.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The node name whose agent the client commands reach by default.
pub const DEFAULT_NAME: &str = "node";

/// The default control socket of the node named `name`.
pub fn default_path(name: &str) -> PathBuf {
    let file = format!("{}.sock", sanitize(name));
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("zgossip").join(file),
        None => PathBuf::from(format!("/tmp/zgossip-{}", uid())).join(file),
    }
}

/// The node's name as a file name: path separators and control
/// characters become `_` (a name is free text; a path is not).
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => s,
    }
}

pub fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// Makes sure the socket's directory exists and is private to the user:
/// creates it (0700) when missing, refuses it otherwise unless it is a
/// directory (not a symbolic link) owned by the user with no group or
/// other permission.
pub fn prepare_dir(socket: &Path) -> Result<(), String> {
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    check_private_dir(dir, uid())
}

/// Refuses a directory that another user could change: see the module.
pub fn check_private_dir(dir: &Path, uid: u32) -> Result<(), String> {
    let meta =
        fs::symlink_metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!(
            "{} is not a directory (a symbolic link is refused too)",
            dir.display()
        ));
    }
    if meta.uid() != uid {
        return Err(format!(
            "{} belongs to uid {}, not to this user (uid {uid}): another user \
             could replace the control socket; use a directory of your own",
            dir.display(),
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:o}: the control socket's directory must give \
             nobody but its owner access (chmod 700 {})",
            dir.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// What is at the socket path before the agent binds it.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    /// A socket of this user: in use or left by an agent that died.
    Socket,
}

/// Refuses anything at `path` but a socket of this user.
pub fn existing(path: &Path) -> Result<Existing, String> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Existing::Nothing),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        Ok(m) if !m.file_type().is_socket() => Err(format!(
            "{} exists and is not a socket: not replaced",
            path.display()
        )),
        Ok(m) if m.uid() != uid() => Err(format!(
            "{} is another user's socket (uid {}): not replaced",
            path.display(),
            m.uid()
        )),
        Ok(_) => Ok(Existing::Socket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("zgossip-control-path-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn names_become_file_names() {
        assert_eq!(sanitize("node"), "node");
        assert_eq!(sanitize("a/b"), "a_b");
        assert_eq!(sanitize(".."), "_");
        assert_eq!(sanitize("x\ny"), "x_y");
        assert!(default_path("../x").ends_with(".._x.sock"));
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let dir = temp("create");
        prepare_dir(&dir.join("n.sock")).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_open_directory_is_refused() {
        let dir = temp("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let e = prepare_dir(&dir.join("n.sock")).unwrap_err();
        assert!(e.contains("mode 755"), "{e}");
        assert!(check_private_dir(&dir, uid() + 1)
            .unwrap_err()
            .contains("not to this user"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_not_replaced() {
        let dir = temp("file");
        prepare_dir(&dir.join("n.sock")).unwrap();
        fs::write(dir.join("n.sock"), "x").unwrap();
        assert!(existing(&dir.join("n.sock"))
            .unwrap_err()
            .contains("not a socket"));
        assert_eq!(existing(&dir.join("m.sock")), Ok(Existing::Nothing));
        fs::remove_dir_all(&dir).unwrap();
    }
}
