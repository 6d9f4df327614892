//! The native half of the `zgossip` Python package: `zgossip._zgossip`.
//!
//! It holds two classes: `NodeCore`, a thin skin over [`zgossip::Node`]
//! that the pure-Python `zgossip.Node` subclasses (adding the context
//! manager, iteration and asyncio), and `Member`, the record
//! `NodeCore.members()` returns (`zgossip.Member`). Errors are raised as
//! the exception classes that `zgossip/__init__.py` defines (looked up
//! once, on first use), so they have the module path `zgossip.*`.
//!
//! Every call that can wait runs detached from the interpreter (`py.detach`)
//! so other Python threads go on; waits that may be long (`recv`) are cut
//! into short slices with a signal check between them, so Ctrl-C works.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyInt, PyString, PyType};

use zgossip::{Error, ErrorKind};

mod logging;

/// Longest time a wait runs detached before checking for signals.
const SLICE: Duration = Duration::from_millis(100);

static COMMAND_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static IO_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TERMINATED_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Turns a core error into the matching `zgossip.*Error`, with the core's
/// message; an I/O error also carries the system's `errno`.
fn raise(py: Python<'_>, err: Error) -> PyErr {
    let (cell, name) = match err.kind() {
        ErrorKind::Command => (&COMMAND_ERROR, "CommandError"),
        ErrorKind::Io => (&IO_ERROR, "IoError"),
        ErrorKind::Config => (&CONFIG_ERROR, "ConfigError"),
        ErrorKind::Terminated => (&TERMINATED_ERROR, "TerminatedError"),
    };
    let ty = match cell.import(py, "zgossip", name) {
        Ok(ty) => ty.clone(),
        Err(e) => return e,
    };
    let errno = match &err {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    };
    let pyerr = PyErr::from_type(ty, (err.to_string(),));
    if let Some(n) = errno {
        // OSError's errno attribute is writable; str() stays the core's
        // message.
        let _ = pyerr.value(py).setattr("errno", n);
    }
    pyerr
}

/// A refused argument, raised as `zgossip.CommandError` (a `ValueError`).
fn command_error(py: Python<'_>, msg: String) -> PyErr {
    raise(py, command_err(msg))
}

fn command_err(msg: String) -> Error {
    // The core builds Command errors itself; the binding has a few checks
    // of its own (timeouts, ttl, paths) that read the same way.
    Error::Command(msg)
}

/// A ttl in seconds as the milliseconds argument of `command` (at least
/// 1); anything but a positive finite number is refused, naming `command`.
fn ttl_ms(py: Python<'_>, command: &str, t: f64) -> PyResult<String> {
    if !(t.is_finite() && t > 0.0) {
        return Err(command_error(
            py,
            format!("{command}: ttl must be a positive number of seconds, got {t}"),
        ));
    }
    Ok(((t * 1000.0).round() as u64).max(1).to_string())
}

/// Seconds (a float, `None` for no limit) as a `Duration`.
fn timeout_arg(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be None or a finite number of seconds >= 0, got {t}"
        ))),
    }
}

/// The native node handle. Use `zgossip.Node`, which subclasses it.
#[pyclass(module = "zgossip._zgossip", subclass, frozen)]
pub struct NodeCore {
    node: zgossip::Node,
    closed: AtomicBool,
}

#[pymethods]
impl NodeCore {
    /// Starts a node (on the shared event-loop thread); ``name`` prefixes its trace
    /// lines (see ``verbose()``).
    #[new]
    #[pyo3(signature = (name = "zgossip"))]
    fn new(py: Python<'_>, name: &str) -> PyResult<Self> {
        // The node's log lines go to `logging` (zgossip/_logging.py), from
        // its first line on.
        py.import("zgossip._logging")?.call_method0("start")?;
        let node = zgossip::Node::new(name).map_err(|e| raise(py, e))?;
        Ok(NodeCore {
            node,
            closed: AtomicBool::new(false),
        })
    }

    /// The name given when the node was created.
    #[getter]
    fn name(&self) -> &str {
        self.node.name()
    }

    /// True once ``close()`` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Number of replies and deliveries waiting to be received.
    #[getter]
    fn pending(&self) -> usize {
        self.node.pending()
    }

    /// Stops the node (as the ``$TERM`` command) and waits until it has ended.
    /// Calling it again does nothing. Afterwards every command raises
    /// ``TerminatedError``; ``recv()`` first returns what was already
    /// waiting, then raises ``TerminatedError``.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match py.detach(|| self.node.send(&["$TERM"])) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Terminated => Ok(()),
            Err(e) => Err(raise(py, e)),
        }
    }

    /// Sends a raw command, one string per frame, as with CZMQ's actor:
    /// ``node.send("PUBLISH", "key", "value")``. The command is checked
    /// first (``CommandError`` says what is wrong); every command but
    /// ``PUBLISH`` then waits until the node has carried it out, so errors
    /// such as a busy port are raised here. Replies (``PORT``, ``STATUS``)
    /// are read with ``recv()``.
    #[pyo3(signature = (*frames))]
    fn send(&self, py: Python<'_>, frames: Vec<String>) -> PyResult<()> {
        py.detach(|| self.node.send(&frames))
            .map_err(|e| raise(py, e))
    }

    /// Receives the next reply or delivery as a list of strings, such as
    /// ``["DELIVER", key, value]`` or ``["STATUS", "4"]``.
    ///
    /// ``timeout`` is in seconds: ``None`` waits as long as it takes, ``0``
    /// only takes what is already waiting. Returns ``None`` when nothing came
    /// in time. Raises ``TerminatedError`` once the node has stopped and
    /// nothing is left to read. Other Python threads run meanwhile, and
    /// signal handlers (Ctrl-C) are honoured within about 0.1 s.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Vec<String>>> {
        let deadline = timeout_arg(timeout)?.map(|t| Instant::now() + t);
        loop {
            let slice = match deadline {
                None => SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            };
            match py.detach(|| self.node.recv_timeout(slice)) {
                Ok(Some(msg)) => return Ok(Some(msg)),
                Ok(None) => {}
                Err(e) => return Err(raise(py, e)),
            }
            if matches!(deadline, Some(d) if Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    /// A file descriptor that is readable while a reply or delivery waits
    /// (and for good once the node has stopped), for ``select``,
    /// ``selectors`` or an event loop. Never read from it or close it: use
    /// ``recv()``. It stays valid, even after ``close()``, as long as the
    /// node object lives.
    fn fileno(&self) -> i32 {
        self.node.fd()
    }

    /// Binds an endpoint for other nodes to connect to: ``tcp://host:port``
    /// (``*`` for any interface; port ``*`` or ``!`` for an ephemeral one),
    /// ``ipc://path``, ``ipc://@abstract`` or ``inproc://name``. Several may
    /// be bound. Returns the TCP port bound, ``None`` for ipc and inproc.
    /// A busy port raises ``IoError`` (an ``OSError``, ``errno`` set).
    fn bind(&self, py: Python<'_>, endpoint: &str) -> PyResult<Option<u16>> {
        py.detach(|| self.node.bind(endpoint))
            .map_err(|e| raise(py, e))
    }

    /// Connects to a remote node's endpoint and keeps the connection,
    /// redialling with backoff when it drops.
    fn connect(&self, py: Python<'_>, endpoint: &str) -> PyResult<()> {
        py.detach(|| self.node.connect(endpoint))
            .map_err(|e| raise(py, e))
    }

    /// Joins the overlay through a member at ``endpoint``
    /// (``tcp://host:port``), or through every address of a DNS name
    /// (``dns:NAME:PORT``, resolved off the event loop and again every
    /// ``overlay/dns-interval``): the node keeps a few links the overlay
    /// picks (at most ``overlay/active-max``) instead of one to every node.
    /// A bad endpoint raises ``CommandError``.
    fn join(&self, py: Python<'_>, endpoint: &str) -> PyResult<()> {
        py.detach(|| self.node.join(endpoint))
            .map_err(|e| raise(py, e))
    }

    /// Publishes a tuple: it spreads to every node of the network and is
    /// delivered to each node's application (this one's too, as in CZMQ).
    /// Keys are at most 255 bytes of UTF-8. ``ttl``, in seconds, makes the
    /// tuple expire network-wide after that long; ``None`` keeps it.
    #[pyo3(signature = (key, value, ttl = None))]
    fn publish(&self, py: Python<'_>, key: &str, value: &str, ttl: Option<f64>) -> PyResult<()> {
        let result = match ttl {
            None => py.detach(|| self.node.publish(key, value)),
            Some(t) => {
                let ms = ttl_ms(py, "PUBLISH", t)?;
                py.detach(|| self.node.send(&["PUBLISH", key, value, &ms]))
            }
        };
        result.map_err(|e| raise(py, e))
    }

    /// Publishes a tuple tied to this node's life (``EPHEMERAL``): it spreads
    /// as ``publish()`` does, and when this node stops (``close()``, garbage
    /// collection) or is declared failed (its process killed, its links
    /// lost), every node deletes it and each application gets ``DELETE
    /// key``. ``ttl``, in seconds, also makes it expire network-wide after
    /// that long; ``None`` keeps it as long as the node lives. Unlike
    /// ``publish()``, it waits until the node has carried it out.
    #[pyo3(signature = (key, value, ttl = None))]
    fn publish_ephemeral(
        &self,
        py: Python<'_>,
        key: &str,
        value: &str,
        ttl: Option<f64>,
    ) -> PyResult<()> {
        let result = match ttl {
            None => py.detach(|| self.node.publish_ephemeral(key, value)),
            Some(t) => {
                let ms = ttl_ms(py, "EPHEMERAL", t)?;
                py.detach(|| self.node.send(&["EPHEMERAL", key, value, &ms]))
            }
        };
        result.map_err(|e| raise(py, e))
    }

    /// The number of tuples the node holds, counted after every delivery
    /// produced before it. Takes nothing off the reply pipe.
    fn status(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.node.status()).map_err(|e| raise(py, e))
    }

    /// Deletes a key on every node of the network; each application gets
    /// ``DELETE key``.
    fn unpublish(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        py.detach(|| self.node.unpublish(key))
            .map_err(|e| raise(py, e))
    }

    /// The value of ``key`` if the node holds it, else ``None``. Takes
    /// nothing off the reply pipe.
    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Option<String>> {
        py.detach(|| self.node.get(key)).map_err(|e| raise(py, e))
    }

    /// The keys the node holds that start with ``prefix``, oldest first.
    /// Takes nothing off the reply pipe.
    #[pyo3(signature = (prefix = ""))]
    fn keys(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<String>> {
        py.detach(|| self.node.keys(prefix))
            .map_err(|e| raise(py, e))
    }

    /// The node's counters by name (tuples, tombstones, connections,
    /// frames, sync traffic, expiries, ...).
    fn stats(&self, py: Python<'_>) -> PyResult<std::collections::BTreeMap<String, u64>> {
        py.detach(|| self.node.stats()).map_err(|e| raise(py, e))
    }

    /// The members of the network this node knows of, this node first, as
    /// ``Member`` records. Failed and left members stay listed for
    /// ``membership/gone-keep`` (5 minutes by default). Takes nothing off
    /// the reply pipe.
    fn members(&self, py: Python<'_>) -> PyResult<Vec<Member>> {
        let list = py
            .detach(|| self.node.members())
            .map_err(|e| raise(py, e))?;
        Ok(list.into_iter().map(Member::from).collect())
    }

    /// The CURVE key pairs the node holds (public halves), the primary
    /// first, as ``(public_key, primary, handshakes)`` tuples; empty for a
    /// node without a key. ``node.send("KEYRING", "ADD", secret)``,
    /// ``"USE"`` and ``"REMOVE"`` change them (docs/security.md, "Key
    /// rotation"). Takes nothing off the reply pipe.
    fn keyring(&self, py: Python<'_>) -> PyResult<Vec<(String, bool, u64)>> {
        let list = py
            .detach(|| self.node.keyring())
            .map_err(|e| raise(py, e))?;
        Ok(list
            .into_iter()
            .map(|k| (k.public, k.primary, k.handshakes))
            .collect())
    }

    /// The node's counters, gauges and propagation delay histogram in the
    /// Prometheus text exposition format (version 0.0.4), for an HTTP
    /// endpoint to serve. Takes nothing off the reply pipe.
    fn metrics(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.node.metrics()).map_err(|e| raise(py, e))
    }

    /// The port of the last TCP bind, 0 if none. Takes nothing off the
    /// reply pipe.
    fn port(&self, py: Python<'_>) -> PyResult<u16> {
        py.detach(|| self.node.port()).map_err(|e| raise(py, e))
    }

    /// Traces protocol events on standard error.
    fn verbose(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.node.send(&["VERBOSE"]))
            .map_err(|e| raise(py, e))
    }

    /// Sets a configuration path, e.g. ``node.set("server/timeout", 100)``.
    /// ``value`` is a string or an int (a bool is written ``1`` or ``0``).
    /// A value the node cannot use raises ``ConfigError``.
    fn set(&self, py: Python<'_>, path: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value: String = if let Ok(b) = value.cast::<PyBool>() {
            if b.is_true() { "1" } else { "0" }.to_string()
        } else if value.is_instance_of::<PyInt>() {
            value.str()?.to_string()
        } else if value.is_instance_of::<PyString>() {
            value.extract::<String>()?
        } else {
            return Err(PyTypeError::new_err(format!(
                "set() value must be str or int, not {}",
                value.get_type().name()?
            )));
        };
        py.detach(|| self.node.send(&["SET", path, &value]))
            .map_err(|e| raise(py, e))
    }

    /// Loads a configuration file in ZPL (CZMQ ``zconfig``) format and
    /// applies it; the file is reloaded when it changes on disk. An
    /// unreadable or invalid file raises ``ConfigError``.
    fn load(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let path = utf8_path(py, path)?;
        py.detach(|| self.node.send(&["LOAD", &path]))
            .map_err(|e| raise(py, e))
    }

    /// Saves the configuration tree to a file in ZPL format (``load()``
    /// reads it back).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let path = utf8_path(py, path)?;
        py.detach(|| self.node.send(&["SAVE", &path]))
            .map_err(|e| raise(py, e))
    }

    fn __repr__(&self) -> String {
        format!(
            "<zgossip.Node {:?}{}>",
            self.node.name(),
            if self.closed() { " closed" } else { "" }
        )
    }
}

/// The four member states, as ``MEMBERS`` and ``MEMBER`` name them.
const MEMBER_STATES: [&str; 4] = ["alive", "suspect", "failed", "left"];

/// One member of the network, as ``Node.members()`` lists it: ``id`` (the
/// node id, drawn anew at every start), ``name``, ``state`` (``"alive"``,
/// ``"suspect"``, ``"failed"`` or ``"left"``) and ``endpoint`` (where
/// others dial it, ``""`` if it does not listen). Immutable, hashable;
/// equal when all four are.
#[pyclass(module = "zgossip", name = "Member", frozen, eq, hash, get_all)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// The member's node id (``format(id, "016x")`` is the 16 hex digits of
    /// ``MEMBERS`` and ``MEMBER``).
    id: u64,
    /// The name the member's node was created with.
    name: String,
    /// ``"alive"``, ``"suspect"``, ``"failed"`` or ``"left"``.
    state: String,
    /// Where others dial the member (``""``: it does not listen).
    endpoint: String,
}

impl From<zgossip::Member> for Member {
    fn from(m: zgossip::Member) -> Self {
        Member {
            id: m.id,
            name: m.name,
            state: m.state.name().to_string(),
            endpoint: m.endpoint,
        }
    }
}

#[pymethods]
impl Member {
    /// A member record; ``state`` must be one of ``"alive"``,
    /// ``"suspect"``, ``"failed"``, ``"left"`` (else ``ValueError``). A
    /// ``MEMBER`` message from ``recv()`` becomes one with
    /// ``Member(int(msg[1], 16), msg[2], msg[3], msg[4])``.
    #[new]
    fn new(id: u64, name: String, state: String, endpoint: String) -> PyResult<Self> {
        if !MEMBER_STATES.contains(&state.as_str()) {
            return Err(PyValueError::new_err(format!(
                "state must be one of alive, suspect, failed, left, got {state:?}"
            )));
        }
        Ok(Member {
            id,
            name,
            state,
            endpoint,
        })
    }

    /// The arguments that rebuild the record (for ``copy`` and ``pickle``).
    fn __getnewargs__(&self) -> (u64, String, String, String) {
        (
            self.id,
            self.name.clone(),
            self.state.clone(),
            self.endpoint.clone(),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // Python's own repr of the strings, quotes and escapes as Python
        // writes them.
        let r = |s: &str| -> PyResult<String> { Ok(PyString::new(py, s).repr()?.to_string()) };
        Ok(format!(
            "zgossip.Member(id=0x{:016x}, name={}, state={}, endpoint={})",
            self.id,
            r(&self.name)?,
            r(&self.state)?,
            r(&self.endpoint)?
        ))
    }
}

fn utf8_path(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    match path.into_os_string().into_string() {
        Ok(s) => Ok(s),
        Err(p) => Err(command_error(
            py,
            format!("file name {p:?} is not valid UTF-8"),
        )),
    }
}

/// Native part of the zgossip package; import ``zgossip`` instead.
/// Generates a CURVE key pair: ``(public, secret)``, two 40-character Z85
/// strings for ``SET PUBLICKEY``, ``SET SECRETKEY`` and ``CONNECT``.
#[pyfunction]
fn keypair(py: Python<'_>) -> PyResult<(String, String)> {
    zgossip::certs::keypair().map_err(|e| raise(py, e))
}

#[pymodule]
fn _zgossip(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NodeCore>()?;
    m.add_class::<Member>()?;
    m.add_function(wrap_pyfunction!(keypair, m)?)?;
    m.add_function(wrap_pyfunction!(logging::log_install, m)?)?;
    m.add_function(wrap_pyfunction!(logging::log_set_level, m)?)?;
    m.add_function(wrap_pyfunction!(logging::log_next, m)?)?;
    m.add_function(wrap_pyfunction!(logging::log_dropped, m)?)?;
    Ok(())
}
