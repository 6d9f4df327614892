//! `zgossip node` as the local agent: it serves its node to the `zgossip
//! get|put|del|keys|members|stats|watch` commands of the same user over a
//! Unix socket (docs/agent.md), so that they do not join the network
//! themselves.
//!
//! One thread accepts; each connection gets a thread of its own (at most
//! `MAX_CLIENTS`). A connection sends requests in the node's command words
//! (`control_codec`) and gets one reply each; `WATCH` and `HOLD` turn it
//! into a stream of events. The node loop in `main.rs` hands every event
//! to `Watchers::dispatch`, which never blocks it: a watcher that falls
//! `WATCH_BACKLOG` events behind is dropped and told so. A bad connection
//! is closed with an `ERROR` message and affects nothing else.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zgossip::Node;

use crate::accept_bounded;
use crate::control_codec::{self, Decoder, GREETING, MAX_REQUEST};
use crate::control_path::{self, Existing};

/// Connections served at once; more are told so and closed.
const MAX_CLIENTS: usize = 64;
/// A request connection silent this long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// Longest a client may take to take a reply off the socket.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Events a watcher may have waiting before it is dropped.
const WATCH_BACKLOG: usize = 10_000;
/// How often a streaming connection checks that its client is still there.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// The commands the agent takes, as its `ERROR` for any other says.
const COMMANDS: &str = "GET, KEYS, STATS, MEMBERS, METRICS, STATUS, PUBLISH, UNPUBLISH, \
                        WATCH, HOLD";

/// The clients streaming events, each with the prefix of keys it wants.
#[derive(Default)]
pub struct Watchers {
    list: Mutex<Vec<(String, SyncSender<Vec<String>>)>>,
}

impl Watchers {
    /// Hands a message of the node to every watcher whose prefix its key
    /// has; `DELIVER`, `EXPIRE` and `DELETE` only. Never blocks: a watcher
    /// whose queue is full is dropped (its thread then says so).
    pub fn dispatch(&self, m: &[String]) {
        let key = match m {
            [e, k, _] if e == "DELIVER" => k,
            [e, k] if e == "EXPIRE" || e == "DELETE" => k,
            _ => return,
        };
        let Ok(mut list) = self.list.lock() else {
            return;
        };
        list.retain(|(prefix, tx)| {
            !key.starts_with(prefix.as_str())
                || match tx.try_send(m.to_vec()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                }
        });
    }

    fn add(&self, prefix: &str) -> Receiver<Vec<String>> {
        let (tx, rx) = mpsc::sync_channel(WATCH_BACKLOG);
        if let Ok(mut list) = self.list.lock() {
            list.push((prefix.to_string(), tx));
        }
        rx
    }
}

/// The agent's socket, removed when this is dropped (if still its own).
pub struct Agent {
    path: PathBuf,
    ino: u64,
}

impl Agent {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Listens at `path` (its directory checked, created 0700 when missing;
/// the socket made 0600) and serves `node` on a thread for as long as the
/// process runs. A socket left at `path` by an agent that died is
/// replaced; one an agent still listens on is an error.
pub fn serve(path: &Path, node: Arc<Node>, watchers: Arc<Watchers>) -> Result<Agent, String> {
    let shown = path.display();
    control_path::prepare_dir(path)?;
    if control_path::existing(path)? == Existing::Socket {
        match UnixStream::connect(path) {
            Ok(_) => return Err(format!("an agent already listens at {shown}")),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .map_err(|e| format!("cannot remove the stale socket {shown}: {e}"))?;
            }
            Err(e) => return Err(format!("cannot check the socket {shown}: {e}")),
        }
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("cannot listen at {shown}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot make {shown} private: {e}"))?;
    let ino = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .ino();
    std::thread::Builder::new()
        .name("zgossip-agent".into())
        .spawn(move || accept_loop(listener, node, watchers))
        .map_err(|e| format!("cannot start the agent's thread: {e}"))?;
    Ok(Agent {
        path: path.to_path_buf(),
        ino,
    })
}

fn accept_loop(listener: UnixListener, node: Arc<Node>, watchers: Arc<Watchers>) {
    let refuse_busy = |mut stream: UnixStream| {
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = refuse(
            &mut stream,
            &format!("too many clients (at most {MAX_CLIENTS})"),
        );
    };
    accept_bounded::serve_each(
        listener.incoming(),
        MAX_CLIENTS,
        "zgossip-agent-conn",
        refuse_busy,
        move |stream| {
            let _ = Connection::new(stream, &node, &watchers).serve();
        },
    );
}

/// The greeting and one `ERROR`, for a connection not served.
fn refuse(stream: &mut UnixStream, why: &str) -> std::io::Result<()> {
    let mut out = GREETING.to_vec();
    out.extend(control_codec::encode(&["ERROR", why]));
    stream.write_all(&out)
}

/// The peer's user id, when the system tells it.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials).ok().map(|c| c.uid())
}

/// What a request asks of the connection.
enum Next {
    Reply(Vec<String>),
    Watch(String),
    Hold {
        key: String,
        value: String,
        ttl: Option<String>,
    },
}

struct Connection<'a> {
    stream: UnixStream,
    decoder: Decoder,
    node: &'a Node,
    watchers: &'a Watchers,
}

impl<'a> Connection<'a> {
    fn new(stream: UnixStream, node: &'a Node, watchers: &'a Watchers) -> Connection<'a> {
        Connection {
            stream,
            decoder: Decoder::new(MAX_REQUEST),
            node,
            watchers,
        }
    }

    fn serve(mut self) -> std::io::Result<()> {
        self.stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        // The directory's mode keeps other users out; this says so to one
        // that got in anyway (root is the system's own).
        let me = control_path::uid();
        if let Some(uid) = peer_uid(&self.stream).filter(|u| *u != me && *u != 0) {
            return refuse(
                &mut self.stream,
                &format!("uid {uid} may not use the agent of uid {me}"),
            );
        }
        self.stream.write_all(&GREETING)?;
        self.stream.set_read_timeout(Some(IDLE))?;
        loop {
            let Some(request) = self.read_message()? else {
                return Ok(());
            };
            match self.handle(&request) {
                Next::Reply(frames) => self.send(&frames)?,
                Next::Watch(prefix) => return self.watch(&prefix),
                Next::Hold { key, value, ttl } => return self.hold(&key, &value, ttl),
            }
        }
    }

    /// The next request; `None` once the client has closed or broken the
    /// connection (a broken one is told why first).
    fn read_message(&mut self) -> std::io::Result<Option<Vec<String>>> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.decoder.next() {
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => {}
                Err(e) => {
                    self.send(&["ERROR", &e.to_string()])?;
                    return Ok(None);
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.decoder.feed(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let why = format!("idle for {} s", IDLE.as_secs());
                    self.send(&["ERROR", &why])?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn send<S: AsRef<str>>(&mut self, frames: &[S]) -> std::io::Result<()> {
        self.stream.write_all(&control_codec::encode(frames))
    }

    fn handle(&self, m: &[String]) -> Next {
        match self.carry_out(m) {
            Ok(next) => next,
            Err(e) => Next::Reply(vec!["ERROR".into(), e]),
        }
    }

    fn carry_out(&self, m: &[String]) -> Result<Next, String> {
        let (word, args) = m.split_first().ok_or("an empty request")?;
        let node = self.node;
        let err = |e: zgossip::Error| e.to_string();
        let reply = match (word.as_str(), args) {
            ("GET", [key]) => {
                let mut r = vec!["VALUE".to_string(), key.clone()];
                r.extend(node.get(key).map_err(err)?);
                r
            }
            ("KEYS", []) | ("KEYS", [_]) => {
                let prefix = args.first().map_or("", String::as_str);
                let mut r = vec!["KEYS".to_string()];
                r.extend(node.keys(prefix).map_err(err)?);
                r
            }
            ("STATS", []) => {
                let mut r = vec!["STATS".to_string()];
                for (name, value) in node.stats().map_err(err)? {
                    r.extend([name, value.to_string()]);
                }
                r
            }
            ("MEMBERS", []) => {
                let mut r = vec!["MEMBERS".to_string()];
                for m in node.members().map_err(err)? {
                    r.extend([
                        format!("{:016x}", m.id),
                        m.name,
                        m.state.name().to_string(),
                        m.endpoint,
                    ]);
                }
                r
            }
            ("METRICS", []) => vec!["METRICS".into(), node.metrics().map_err(err)?],
            ("STATUS", []) => vec!["STATUS".into(), node.status().map_err(err)?.to_string()],
            // The node checks these (key size, ttl) and says what is wrong.
            ("PUBLISH" | "UNPUBLISH", _) => {
                node.send(m).map_err(err)?;
                vec!["OK".into()]
            }
            ("WATCH", []) => return Ok(Next::Watch(String::new())),
            ("WATCH", [prefix]) => return Ok(Next::Watch(prefix.clone())),
            ("HOLD", [key, value]) | ("HOLD", [key, value, _]) => {
                return Ok(Next::Hold {
                    key: key.clone(),
                    value: value.clone(),
                    ttl: args.get(2).cloned(),
                })
            }
            ("GET" | "KEYS" | "STATS" | "MEMBERS" | "METRICS" | "STATUS" | "WATCH" | "HOLD", _) => {
                return Err(format!(
                    "{word}: wrong number of arguments ({}); usage: {}",
                    args.len(),
                    usage(word)
                ))
            }
            _ => {
                return Err(format!(
                    "the agent does not take '{word}'; it takes {COMMANDS}"
                ))
            }
        };
        Ok(Next::Reply(reply))
    }

    /// `WATCH [prefix]`: every tuple under the prefix as `DELIVER key
    /// value`, then every change, until the client goes.
    fn watch(mut self, prefix: &str) -> std::io::Result<()> {
        // Registered before the tuples are read: a change in between comes
        // twice rather than not at all.
        let events = self.watchers.add(prefix);
        match self.snapshot(prefix) {
            Ok(tuples) => {
                for m in tuples {
                    self.send(&m)?;
                }
            }
            Err(e) => return self.send(&["ERROR", &e.to_string()]),
        }
        self.stream
            .set_read_timeout(Some(Duration::from_millis(1)))?;
        loop {
            match events.recv_timeout(CHECK_EVERY) {
                Ok(m) => self.send(&m)?,
                Err(RecvTimeoutError::Timeout) => {
                    if self.client_gone()? {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return self.fell_behind(),
            }
        }
    }

    fn snapshot(&self, prefix: &str) -> zgossip::Result<Vec<[String; 3]>> {
        let mut out = Vec::new();
        for key in self.node.keys(prefix)? {
            if let Some(value) = self.node.get(&key)? {
                out.push(["DELIVER".to_string(), key, value]);
            }
        }
        Ok(out)
    }

    fn fell_behind(&mut self) -> std::io::Result<()> {
        let why = format!("this client fell {WATCH_BACKLOG} events behind the node; dropped");
        self.send(&["ERROR", &why])
    }

    /// Whether the client has closed its side (or sent garbage) while the
    /// connection streams; a `RELEASE` it sent is kept for `released`.
    fn client_gone(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 512];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(true),
            Ok(n) => {
                self.decoder.feed(&chunk[..n]);
                Ok(false)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
            Err(_) => Ok(true),
        }
    }

    /// `HOLD key value [ttl]`: the tuple published `EPHEMERAL` by the
    /// agent's node and held for this connection: refreshed every ttl/3,
    /// deleted (`UNPUBLISH`) when the client sends `RELEASE` or goes, and
    /// `LOST key why` when it is deleted, expires or is written over.
    fn hold(mut self, key: &str, value: &str, ttl: Option<String>) -> std::io::Result<()> {
        let events = self.watchers.add(key);
        let mut ephemeral = vec!["EPHEMERAL", key, value];
        ephemeral.extend(ttl.as_deref());
        if let Err(e) = self.node.send(&ephemeral) {
            return self.send(&["ERROR", &e.to_string()]);
        }
        self.send(&["HOLDING", key])?;
        let refresh = ttl
            .as_deref()
            .and_then(|t| t.parse::<u64>().ok())
            .map(|t| Duration::from_millis((t / 3).max(1)));
        let mut next_refresh = refresh.map(|r| Instant::now() + r);
        self.stream
            .set_read_timeout(Some(Duration::from_millis(1)))?;
        loop {
            match events.recv_timeout(CHECK_EVERY.min(refresh.unwrap_or(CHECK_EVERY))) {
                Ok(m) => {
                    let lost = match m.as_slice() {
                        [e, k, v] if e == "DELIVER" && k == key && v != value => {
                            Some("written over by another node")
                        }
                        [e, k] if e == "DELETE" && k == key => Some("deleted"),
                        [e, k] if e == "EXPIRE" && k == key => Some("expired"),
                        _ => None,
                    };
                    if let Some(why) = lost {
                        return self.send(&["LOST", key, why]);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.release(key, value);
                    return self.fell_behind();
                }
            }
            if let (Some(at), Some(r)) = (next_refresh, refresh) {
                if Instant::now() >= at {
                    let _ = self.node.send(&ephemeral);
                    next_refresh = Some(Instant::now() + r);
                }
            }
            let gone = self.client_gone()?;
            let released = match self.decoder.next() {
                Ok(m) => m.is_some_and(|m| m == ["RELEASE"]),
                // Garbage: released as if gone, and told why.
                Err(e) => {
                    self.release(key, value);
                    return self.send(&["ERROR", &e.to_string()]);
                }
            };
            if gone || released {
                self.release(key, value);
                return if released {
                    self.send(&["RELEASED", key])
                } else {
                    Ok(())
                };
            }
        }
    }

    /// Deletes the held tuple everywhere, if it is still the one held.
    fn release(&self, key: &str, value: &str) {
        if matches!(self.node.get(key), Ok(Some(v)) if v == value) {
            let _ = self.node.unpublish(key);
        }
    }
}

fn usage(word: &str) -> &'static str {
    match word {
        "GET" => "GET key",
        "KEYS" => "KEYS [prefix]",
        "WATCH" => "WATCH [prefix]",
        "HOLD" => "HOLD key value [ttl-msecs]",
        "STATS" => "STATS",
        "MEMBERS" => "MEMBERS",
        "METRICS" => "METRICS",
        _ => "STATUS",
    }
}
