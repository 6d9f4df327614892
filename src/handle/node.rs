//! The node handle: the reactor running on an event-loop thread (shared by
//! the nodes of the process, see `reactor::pool`, or its own), a command
//! pipe into it and a reply pipe out of it, as a CZMQ `zactor`.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::control::command::{self, Command, Envelope};
use crate::error::{Error, Result};
use crate::handle::inbox::Inbox;
use crate::handle::replies::Replies;
use crate::reactor::affinity;
use crate::reactor::pool::{self, Done, Hosted};
use crate::reactor::Reactor;
pub use crate::wire::membership::MemberState;

/// A gossip node, running on an event-loop thread: the nodes of one
/// process share one by default (`ZGOSSIP_IO_THREADS` sets how many; `0`
/// gives each node its own thread; see `docs/configuration.md`).
///
/// Commands are multipart strings, as with CZMQ's zgossip actor:
///
/// ```no_run
/// let node = zgossip::Node::new("alpha")?;
/// node.send(&["BIND", "tcp://127.0.0.1:*"])?;
/// node.send(&["PORT"])?;
/// let reply = node.recv()?; // ["PORT", "49152"]
/// # Ok::<(), zgossip::Error>(())
/// ```
///
/// Replies (`PORT n`, `STATUS n`) and deliveries (`DELIVER key value`)
/// arrive in the order the node produced them. Dropping the handle stops
/// the node, like `$TERM`.
pub struct Node {
    name: String,
    commands: Arc<Inbox>,
    waker: Arc<crate::reactor::NodeWaker>,
    /// Set while a wakeup is on its way, so a burst of commands costs one.
    wake_pending: Arc<AtomicBool>,
    replies: Arc<Replies>,
    /// Set when the node has ended (taken by the first to wait for it).
    done: Mutex<Option<Arc<Done>>>,
}

// A handle stays usable after a panic caught while using it: the state
// behind its locks is consistent at every step. std's locks said so (their
// poisoning was ignored); parking_lot's do not poison and do not say it, so
// it is said here and the public type keeps these traits.
impl std::panic::UnwindSafe for Node {}
impl std::panic::RefUnwindSafe for Node {}

impl Node {
    /// Starts a node; `name` prefixes its trace lines.
    pub fn new(name: &str) -> Result<Node> {
        // A bad ZGOSSIP_IO_CPUS is refused before anything starts.
        affinity::io_cpus()?;
        let replies = Arc::new(Replies::new()?);
        let tx = Arc::new(Inbox::default());
        let rx = tx.clone();
        let wake_pending = Arc::new(AtomicBool::new(false));
        let (place, shared) = if pool::io_threads() == 0 {
            pool::place_own(name)?
        } else {
            pool::place()?
        };
        let (reactor, waker) =
            Reactor::new(name, rx, replies.clone(), wake_pending.clone(), shared)?;
        let done = Arc::new(Done::default());
        // Even if the node dies, readers are woken and told.
        let guard = CloseOnDrop(replies.clone(), tx.clone(), done.clone());
        pool::host(
            place,
            Hosted {
                reactor,
                on_end: Box::new(guard),
            },
        )?;
        Ok(Node {
            name: name.to_string(),
            commands: tx,
            waker,
            wake_pending,
            replies,
            done: Mutex::new(Some(done)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a command. It is checked here first: a bad one is refused with
    /// an error saying what is wrong. Every command but PUBLISH then waits
    /// until the node has carried it out, so errors such as a busy port
    /// come back here. `$TERM` stops the node and waits for its thread.
    pub fn send<S: AsRef<str>>(&self, frames: &[S]) -> Result<()> {
        // The fast path: PUBLISH and UNPUBLISH are checked and queued
        // without allocating.
        match frames.first().map(AsRef::as_ref) {
            Some("PUBLISH") => {
                let p = command::parse_publish(&frames[1..])?;
                self.commands.check_tuple_size(p.key, p.value)?;
                self.commands.publish(p.key, p.value, p.ttl_ms)?;
                self.wake()
            }
            Some("UNPUBLISH") => {
                let key = command::parse_unpublish(&frames[1..])?;
                self.commands.unpublish(key)?;
                self.wake()
            }
            _ => self.execute(Command::parse(frames)?),
        }
    }

    fn execute(&self, cmd: Command) -> Result<()> {
        self.execute_with(cmd, false).map(|_| ())
    }

    /// Runs a command; with `direct`, its reply comes back here.
    fn execute_with(&self, cmd: Command, direct: bool) -> Result<Option<Vec<String>>> {
        let term = cmd == Command::Term;
        if !cmd.acknowledged() {
            self.commands.command(Envelope {
                cmd,
                ack: None,
                direct: false,
            })?;
            return self.wake().map(|_| None);
        }
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.commands.command(Envelope {
            cmd,
            ack: Some(ack_tx),
            direct,
        })?;
        self.wake()?;
        let outcome = ack_rx.recv().map_err(|_| Error::Terminated)?;
        if term {
            self.wait_ended();
        }
        outcome
    }

    fn wake(&self) -> Result<()> {
        if self.wake_pending.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.waker
            .wake()
            .map_err(|e| Error::io("cannot wake node thread", e))
    }

    /// Waits until the node has ended.
    fn wait_ended(&self) {
        let done = self.done.lock().take();
        if let Some(done) = done {
            done.wait();
        }
    }

    /// Waits for the next reply or delivery.
    pub fn recv(&self) -> Result<Vec<String>> {
        self.replies.pop(None).map(|m| m.expect("no deadline"))
    }

    /// Waits at most `timeout` for the next reply or delivery; `Ok(None)`
    /// when none came in time.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Vec<String>>> {
        self.replies.pop(Some(timeout))
    }

    /// Takes a waiting reply without blocking.
    pub fn try_recv(&self) -> Result<Option<Vec<String>>> {
        self.replies.pop(Some(Duration::ZERO))
    }

    /// Waits for the next reply or delivery (at most `timeout`, forever if
    /// `None`) and hands its frames to `f` as borrowed strings: no
    /// `Vec<String>` is allocated, which makes this the fastest way to read
    /// deliveries. `Ok(None)` when nothing came in time.
    ///
    /// ```no_run
    /// # let node = zgossip::Node::new("a")?;
    /// let n = node.recv_with(Some(std::time::Duration::from_millis(100)), |frames| {
    ///     frames.first() == Some(&"DELIVER")
    /// })?;
    /// # Ok::<(), zgossip::Error>(())
    /// ```
    pub fn recv_with<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&[&str]) -> R,
    ) -> Result<Option<R>> {
        self.replies.pop_with(timeout, f)
    }

    /// Messages waiting in the reply pipe.
    pub fn pending(&self) -> usize {
        self.replies.len()
    }

    /// A file descriptor that is readable while a reply waits, for `poll`,
    /// `select`, `epoll` or an event loop. Do not read from it.
    pub fn fd(&self) -> RawFd {
        self.replies.fd()
    }

    // Typed conveniences over the string commands. They take nothing off
    // the reply pipe: replies come back directly.

    /// BIND; returns the TCP port bound, or `None` for ipc and inproc.
    pub fn bind(&self, endpoint: &str) -> Result<Option<u16>> {
        let cmd = Command::parse(&["BIND", endpoint])?;
        let reply = self.execute_with(cmd, true)?;
        Ok(reply
            .and_then(|r| r.get(1).and_then(|p| p.parse::<u16>().ok()))
            .filter(|p| *p != 0))
    }

    /// CONNECT to a remote endpoint.
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.send(&["CONNECT", endpoint])
    }

    /// JOIN the overlay through a member at `endpoint` (`tcp://host:port`),
    /// or through every address a DNS name resolves to (`dns:NAME:PORT`,
    /// resolved off the event loop and again every `overlay/dns-interval`):
    /// the node then keeps a few links the overlay picks (at most
    /// `overlay/active-max`) instead of one to every node. See
    /// `docs/overlay.md`.
    pub fn join(&self, endpoint: &str) -> Result<()> {
        self.send(&["JOIN", endpoint])
    }

    /// PUBLISH a tuple.
    pub fn publish(&self, key: &str, value: &str) -> Result<()> {
        self.send(&["PUBLISH", key, value])
    }

    /// The number of tuples held (as STATUS, without using the pipe).
    pub fn status(&self) -> Result<usize> {
        let reply = self.execute_with(Command::Status, true)?;
        Ok(reply
            .and_then(|r| r.get(1).and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }

    /// PUBLISH with a time to live: the tuple disappears from every node
    /// when it runs out (each application gets `EXPIRE key`).
    pub fn publish_ttl(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let ms = ttl.as_millis().max(1).to_string();
        self.send(&["PUBLISH", key, value, ms.as_str()])
    }

    /// EPHEMERAL: publishes a tuple tied to this node's life: when this
    /// node leaves or is declared failed, the tuple is deleted on every
    /// node (each application gets `DELETE key`). A service's advertised
    /// endpoint goes when the service does, with no time to live to tune.
    pub fn publish_ephemeral(&self, key: &str, value: &str) -> Result<()> {
        self.send(&["EPHEMERAL", key, value])
    }

    /// UNPUBLISH: deletes a key network-wide (each application gets
    /// `DELETE key`).
    pub fn unpublish(&self, key: &str) -> Result<()> {
        self.send(&["UNPUBLISH", key])
    }

    /// GET: the value of `key`, if the node holds it (without the pipe).
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        let cmd = Command::parse(&["GET", key])?;
        let reply = self.execute_with(cmd, true)?.unwrap_or_default();
        Ok(reply.into_iter().nth(2))
    }

    /// KEYS: the keys held that start with `prefix` (without the pipe).
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let cmd = Command::parse(&["KEYS", prefix])?;
        let reply = self.execute_with(cmd, true)?.unwrap_or_default();
        Ok(reply.into_iter().skip(1).collect())
    }

    /// STATS: the node's counters by name (without the pipe).
    pub fn stats(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        let reply = self.execute_with(Command::Stats, true)?.unwrap_or_default();
        Ok(reply[1.min(reply.len())..]
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => v.parse().ok().map(|v| (k.clone(), v)),
                _ => None,
            })
            .collect())
    }

    /// MEMBERS: the members of the network this node knows of, itself
    /// first (without the pipe). Failed and left members stay listed for
    /// `membership/gone-keep` (`docs/membership.md`).
    pub fn members(&self) -> Result<Vec<Member>> {
        let reply = self
            .execute_with(Command::Members, true)?
            .unwrap_or_default();
        reply[1.min(reply.len())..]
            .chunks(4)
            .map(|c| match c {
                [id, name, state, endpoint] => Member::from_frames(id, name, state, endpoint),
                _ => Err(Error::command(
                    "MEMBERS: a member of fewer than four frames",
                )),
            })
            .collect()
    }

    /// KEYRING LIST: the CURVE key pairs the node holds (public halves),
    /// the primary first (without the pipe). Empty for a node without a
    /// key. `docs/security.md`, "Key rotation".
    pub fn keyring(&self) -> Result<Vec<crate::HeldKey>> {
        let reply = self
            .execute_with(Command::KeyringList, true)?
            .unwrap_or_default();
        reply[1.min(reply.len())..]
            .chunks(3)
            .map(|c| match c {
                [public, role, handshakes] => crate::HeldKey::from_frames(public, role, handshakes),
                _ => Err(Error::command("KEYRING: a key of fewer than three frames")),
            })
            .collect()
    }

    /// METRICS: the node's counters, gauges and propagation delay
    /// histogram in the Prometheus text exposition format (version 0.0.4;
    /// `docs/metrics.md` lists them), for an HTTP endpoint to serve
    /// (without the pipe).
    pub fn metrics(&self) -> Result<String> {
        let reply = self.execute_with(Command::Metrics, true)?;
        reply
            .and_then(|r| r.into_iter().nth(1))
            .ok_or_else(|| Error::command("METRICS: the node gave no text"))
    }

    /// DISCOVER: beacons this node's TCP endpoint over UDP and connects to
    /// the peers it hears (see `docs/discovery.md`). Binds TCP first if
    /// the node has no TCP endpoint. Returns the address beaconed from
    /// (`*` for the wildcard) and the TCP port advertised.
    pub fn discover(&self, options: &crate::DiscoverOptions) -> Result<(String, u16)> {
        let mut frames = vec!["DISCOVER".to_string()];
        frames.extend(options.to_args());
        let cmd = Command::parse(&frames)?;
        let reply = self.execute_with(cmd, true)?.unwrap_or_default();
        let host = reply.get(1).cloned().unwrap_or_default();
        let port = reply.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
        Ok((host, port))
    }

    /// The port of the last TCP bind, 0 if none (as PORT, without the pipe).
    pub fn port(&self) -> Result<u16> {
        let reply = self.execute_with(Command::Port, true)?;
        Ok(reply
            .and_then(|r| r.get(1).and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.done.lock().is_some() {
            let _ = self.commands.command(Envelope {
                cmd: Command::Term,
                ack: None,
                direct: false,
            });
            let _ = self.waker.wake();
            self.wait_ended();
        }
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("name", &self.name).finish()
    }
}

/// Held with the running node: when it ends, even by a panic, readers are
/// woken and told, commands are refused instead of waiting forever, and
/// whoever waits for the end is released.
struct CloseOnDrop(Arc<Replies>, Arc<Inbox>, Arc<Done>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.1.close();
        self.0.close();
        self.2.set();
    }
}

/// One member of the network, as `MEMBERS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's node id (drawn anew at every start).
    pub id: u64,
    /// The name the member's node was created with.
    pub name: String,
    pub state: MemberState,
    /// Where others dial it (empty: it does not listen).
    pub endpoint: String,
}

impl Member {
    /// A member from the four frames `MEMBERS` (and `MEMBER`) give it.
    pub fn from_frames(id: &str, name: &str, state: &str, endpoint: &str) -> Result<Member> {
        let id = u64::from_str_radix(id, 16)
            .map_err(|_| Error::command(format!("MEMBERS: '{id}' is not a hex node id")))?;
        let state = MemberState::parse(state)
            .ok_or_else(|| Error::command(format!("MEMBERS: '{state}' is not a member state")))?;
        Ok(Member {
            id,
            name: name.to_string(),
            state,
            endpoint: endpoint.to_string(),
        })
    }
}
