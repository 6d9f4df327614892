//! `inproc://` endpoints: a process-wide registry of bound names. A
//! connection is a Unix socket pair whose far end is handed to the binder.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::error::Error;

/// The binder's end of a connection.
pub(crate) type Accepted = UnixStream;

struct Binding {
    owner: u64,
    deliver: Sender<Accepted>,
    waker: Arc<super::NodeWaker>,
}

fn registry() -> &'static Mutex<HashMap<String, Binding>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Binding>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Binds `name` for the reactor `owner`: accepted streams go to `deliver`
/// and `waker` is woken for each.
pub(crate) fn bind(
    name: &str,
    owner: u64,
    deliver: Sender<Accepted>,
    waker: Arc<super::NodeWaker>,
) -> Result<(), Error> {
    let mut map = registry().lock();
    if map.contains_key(name) {
        return Err(Error::io(
            format!("cannot bind inproc://{name}"),
            std::io::Error::from(std::io::ErrorKind::AddrInUse),
        ));
    }
    map.insert(
        name.to_string(),
        Binding {
            owner,
            deliver,
            waker,
        },
    );
    Ok(())
}

/// Removes every name bound by `owner`.
pub(crate) fn unbind_all(owner: u64) {
    registry().lock().retain(|_, b| b.owner != owner);
}

/// Connects to a bound name; returns our end of the pair.
pub(crate) fn connect(name: &str) -> Result<UnixStream, Error> {
    let map = registry().lock();
    let refused = |e: std::io::Error| Error::io(format!("cannot connect to inproc://{name}"), e);
    let b = map
        .get(name)
        .ok_or_else(|| refused(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))?;
    let (ours, theirs) = UnixStream::pair().map_err(refused)?;
    ours.set_nonblocking(true).map_err(refused)?;
    theirs.set_nonblocking(true).map_err(refused)?;
    b.deliver
        .send(theirs)
        .map_err(|_| refused(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)))?;
    let _ = b.waker.wake();
    Ok(ours)
}
