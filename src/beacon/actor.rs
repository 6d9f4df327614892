//! The `Beacon` actor: CZMQ's `zbeacon` in its own thread with a mio loop.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;

use super::udp::{Resolved, UdpBeacon, UdpOptions, MAX_BEACON};
use crate::error::{Error, Result};
use crate::handle::pipe::{Messages, Pipe, Wait};

const WAKER: Token = Token(0);
const UDP: Token = Token(1);
/// CZMQ's default beacon interval.
pub const DEFAULT_INTERVAL_MS: u64 = 1_000;
/// Received beacons kept for a slow application; more are dropped.
const PIPE_LIMIT: usize = 10_000;
/// The application's pipe: whole messages, a beacon dropped when full.
type BeaconPipe = Pipe<Messages<Vec<Vec<u8>>>>;
/// Datagrams read per wakeup before commands are looked at again.
const READ_BUDGET: usize = 1_024;

/// A beacon command, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeaconCommand {
    /// CONFIGURE port: open the UDP port; the reply is the hostname.
    Configure(u16),
    /// PUBLISH data [interval-ms]: beacon `data` every interval (0 or
    /// absent: 1000 ms), starting now.
    Publish(Vec<u8>, u64),
    Silence,
    /// SUBSCRIBE filter: deliver beacons starting with `filter` (empty:
    /// every beacon).
    Subscribe(Vec<u8>),
    Unsubscribe,
    Verbose,
    Term,
}

impl BeaconCommand {
    /// Parses a multipart command; frames are bytes (strings work too).
    pub fn parse<F: AsRef<[u8]>>(frames: &[F]) -> Result<BeaconCommand> {
        let Some(name) = frames.first().map(AsRef::as_ref) else {
            return Err(Error::command("empty command: expected a command name"));
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let args: Vec<&[u8]> = frames[1..].iter().map(AsRef::as_ref).collect();
        let want = |range: std::ops::RangeInclusive<usize>, usage: &str| -> Result<()> {
            if range.contains(&args.len()) {
                Ok(())
            } else {
                Err(Error::command(format!(
                    "{name}: got {} argument(s): usage: {usage}",
                    args.len()
                )))
            }
        };
        let number = |what: &str, v: &[u8]| -> Result<u64> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Error::command(format!(
                        "{name}: {what} must be a number, got '{}'",
                        String::from_utf8_lossy(v)
                    ))
                })
        };
        let sized = |what: &str, v: &[u8]| -> Result<Vec<u8>> {
            if v.len() > MAX_BEACON {
                Err(Error::command(format!(
                    "{name}: {what} of {} bytes exceeds the limit of {MAX_BEACON} bytes",
                    v.len()
                )))
            } else {
                Ok(v.to_vec())
            }
        };
        match name.as_str() {
            "CONFIGURE" => {
                want(1..=1, "CONFIGURE port")?;
                match number("port", args[0])? {
                    p @ 1..=65535 => Ok(BeaconCommand::Configure(p as u16)),
                    p => Err(Error::command(format!(
                        "CONFIGURE: port must be 1 to 65535, got {p}"
                    ))),
                }
            }
            "PUBLISH" => {
                want(1..=2, "PUBLISH data [interval-ms]")?;
                let data = sized("data", args[0])?;
                let interval = match args.get(1) {
                    Some(v) => number("interval", v)?,
                    None => 0,
                };
                let interval = if interval == 0 {
                    DEFAULT_INTERVAL_MS
                } else {
                    interval.min(u64::from(u32::MAX))
                };
                Ok(BeaconCommand::Publish(data, interval))
            }
            "SILENCE" => want(0..=0, "SILENCE").map(|_| BeaconCommand::Silence),
            "SUBSCRIBE" => {
                want(0..=1, "SUBSCRIBE [filter]")?;
                Ok(BeaconCommand::Subscribe(sized(
                    "filter",
                    args.first().copied().unwrap_or(b""),
                )?))
            }
            "UNSUBSCRIBE" => want(0..=0, "UNSUBSCRIBE").map(|_| BeaconCommand::Unsubscribe),
            "VERBOSE" => want(0..=0, "VERBOSE").map(|_| BeaconCommand::Verbose),
            "$TERM" => want(0..=0, "$TERM").map(|_| BeaconCommand::Term),
            other => Err(Error::command(format!(
                "unknown beacon command '{other}' (expected one of CONFIGURE, PUBLISH, \
                 SILENCE, SUBSCRIBE, UNSUBSCRIBE, VERBOSE, $TERM)"
            ))),
        }
    }
}

/// A beacon received: who sent it (IP address as text, as CZMQ) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub address: String,
    pub data: Vec<u8>,
}

struct Envelope {
    cmd: BeaconCommand,
    ack: mpsc::SyncSender<Option<String>>,
    /// Return CONFIGURE's hostname here, not on the pipe.
    direct: bool,
}

/// CZMQ's `zbeacon` actor: LAN discovery and presence over UDP.
///
/// Commands as zbeacon's, frames as bytes (`&str` frames work too):
/// `CONFIGURE port` (replies the hostname we beacon from, `*` for the
/// wildcard interface, empty when no interface is usable), `PUBLISH data
/// [interval-ms]`, `SILENCE`, `SUBSCRIBE [filter]`, `UNSUBSCRIBE`,
/// `VERBOSE`, `$TERM`. As zbeacon, nothing is delivered until SUBSCRIBE;
/// a beacon equal to the one we publish is taken for our own echo and not
/// delivered.
///
/// Received beacons arrive as two frames `[address, data]`; beacons are
/// binary, so [`Beacon::recv`] returns frames as bytes and
/// [`Beacon::recv_beacon`] a typed [`Received`].
///
/// The interface comes from [`UdpOptions`] or, as in CZMQ, the
/// environment (`ZSYS_INTERFACE`, `ZSYS_IPV6`, `ZSYS_IPV4_MCAST_ADDRESS`,
/// `ZSYS_IPV6_MCAST_ADDRESS`, `ZSYS_MCAST_TTL`). Unlike CZMQ a loopback
/// interface may be named (`lo`): beacons then stay inside the machine.
pub struct Beacon {
    commands: mpsc::Sender<Envelope>,
    waker: Arc<Waker>,
    pipe: Arc<BeaconPipe>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

// As for `Node`: the state behind its locks is consistent at every step, so
// the handle stays usable after a panic caught while using it (std's locks
// gave these traits; parking_lot's do not).
impl std::panic::UnwindSafe for Beacon {}
impl std::panic::RefUnwindSafe for Beacon {}

impl Beacon {
    /// A beacon configured from the environment, as CZMQ's.
    pub fn new() -> Result<Beacon> {
        Beacon::with_options(UdpOptions::default())
    }

    /// A beacon on the interface, group and family given (unset options
    /// come from the environment).
    pub fn with_options(options: UdpOptions) -> Result<Beacon> {
        let resolved = options
            .resolve(|k| std::env::var(k).ok())
            .map_err(|e| Error::command(format!("beacon options: {e}")))?;
        let poll = Poll::new().map_err(|e| Error::io("cannot create poller", e))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("cannot create waker", e))?,
        );
        let pipe =
            Arc::new(Pipe::new(PIPE_LIMIT).map_err(|e| Error::io("cannot create beacon pipe", e))?);
        let (tx, rx) = mpsc::channel();
        let mut state = State {
            poll,
            commands: rx,
            pipe: pipe.clone(),
            options: resolved,
            port: None,
            udp: None,
            transmit: None,
            interval_ms: DEFAULT_INTERVAL_MS,
            ping_at: Instant::now(),
            filter: None,
            verbose: false,
            running: true,
            backlog: false,
            more_commands: false,
        };
        let thread = std::thread::Builder::new()
            .name("zgossip-beacon".into())
            .spawn(move || {
                state.run();
                state.pipe.close();
            })
            .map_err(|e| Error::io("cannot start beacon thread", e))?;
        Ok(Beacon {
            commands: tx,
            waker,
            pipe,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Sends a command and waits until the beacon thread has carried it
    /// out. A bad command is refused with an error saying why.
    pub fn send<F: AsRef<[u8]>>(&self, frames: &[F]) -> Result<()> {
        let cmd = BeaconCommand::parse(frames)?;
        self.execute(cmd, false).map(|_| ())
    }

    fn execute(&self, cmd: BeaconCommand, direct: bool) -> Result<Option<String>> {
        let term = cmd == BeaconCommand::Term;
        let (ack, done) = mpsc::sync_channel(1);
        self.commands
            .send(Envelope { cmd, ack, direct })
            .map_err(|_| Error::Terminated)?;
        self.waker
            .wake()
            .map_err(|e| Error::io("cannot wake beacon thread", e))?;
        let reply = done.recv().map_err(|_| Error::Terminated)?;
        if term {
            self.join();
        }
        Ok(reply)
    }

    fn join(&self) {
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
    }

    /// CONFIGURE: opens `port`; returns the hostname we beacon from (`*`
    /// for the wildcard, empty when no interface is usable). The reply is
    /// returned here, not put on the pipe.
    pub fn configure(&self, port: u16) -> Result<String> {
        if port == 0 {
            return Err(Error::command("CONFIGURE: port must be 1 to 65535, got 0"));
        }
        Ok(self
            .execute(BeaconCommand::Configure(port), true)?
            .unwrap_or_default())
    }

    /// PUBLISH: beacons `data` (at most 255 bytes) every `interval`.
    pub fn publish(&self, data: &[u8], interval: Duration) -> Result<()> {
        let ms = interval.as_millis().max(1).to_string();
        self.send(&[b"PUBLISH".as_slice(), data, ms.as_bytes()])
    }

    /// SILENCE: stops publishing.
    pub fn silence(&self) -> Result<()> {
        self.send(&["SILENCE"])
    }

    /// SUBSCRIBE: delivers beacons that start with `filter`.
    pub fn subscribe(&self, filter: &[u8]) -> Result<()> {
        self.send(&[b"SUBSCRIBE".as_slice(), filter])
    }

    /// UNSUBSCRIBE: delivers nothing more.
    pub fn unsubscribe(&self) -> Result<()> {
        self.send(&["UNSUBSCRIBE"])
    }

    /// VERBOSE: traces to stderr.
    pub fn verbose(&self) -> Result<()> {
        self.send(&["VERBOSE"])
    }

    /// Waits for the next message: `[hostname]` after CONFIGURE sent as a
    /// string command, `[address, data]` for a beacon.
    pub fn recv(&self) -> Result<Vec<Vec<u8>>> {
        self.pipe.recv(Wait::Forever)?.ok_or(Error::Terminated)
    }

    /// Waits at most `timeout`; `Ok(None)` when nothing came.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Vec<Vec<u8>>>> {
        self.pipe.recv(Wait::For(timeout))
    }

    /// Takes a waiting message without blocking.
    pub fn try_recv(&self) -> Result<Option<Vec<Vec<u8>>>> {
        self.pipe.recv(Wait::For(Duration::ZERO))
    }

    /// The next beacon, waiting at most `timeout`. Messages that are not
    /// beacons (a hostname reply) are skipped.
    pub fn recv_beacon(&self, timeout: Duration) -> Result<Option<Received>> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(mut msg) = self.pipe.recv(Wait::Until(deadline))? else {
                return Ok(None);
            };
            if msg.len() == 2 {
                let data = msg.pop().unwrap_or_default();
                let address = String::from_utf8_lossy(&msg[0]).into_owned();
                return Ok(Some(Received { address, data }));
            }
        }
    }

    /// Messages waiting.
    pub fn pending(&self) -> usize {
        self.pipe.len()
    }

    /// Beacons dropped because the application read too slowly.
    pub fn dropped(&self) -> u64 {
        self.pipe.shed()
    }

    /// A descriptor readable while a message waits. Do not read from it.
    pub fn fd(&self) -> RawFd {
        self.pipe.fd()
    }
}

impl Drop for Beacon {
    fn drop(&mut self) {
        if self.thread.lock().is_some() {
            let (ack, _done) = mpsc::sync_channel(1);
            let _ = self.commands.send(Envelope {
                cmd: BeaconCommand::Term,
                ack,
                direct: false,
            });
            let _ = self.waker.wake();
            self.join();
        }
    }
}

impl std::fmt::Debug for Beacon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beacon").finish_non_exhaustive()
    }
}

struct Sockets {
    beacon: UdpBeacon,
    recv: mio::net::UdpSocket,
}

struct State {
    poll: Poll,
    commands: mpsc::Receiver<Envelope>,
    pipe: Arc<BeaconPipe>,
    options: Resolved,
    port: Option<u16>,
    udp: Option<Sockets>,
    transmit: Option<Vec<u8>>,
    interval_ms: u64,
    ping_at: Instant,
    filter: Option<Vec<u8>>,
    verbose: bool,
    running: bool,
    backlog: bool,
    /// Commands were left in the queue (budget used up).
    more_commands: bool,
}

impl State {
    /// A line of the beacon's trace (`VERBOSE`, printed as CZMQ's zbeacon
    /// does; the logger at debug level, target `zgossip::discovery`).
    fn trace(&self, what: std::fmt::Arguments<'_>) {
        crate::logging::trace(
            self.verbose,
            crate::logging::DISCOVERY,
            log::Level::Debug,
            "zbeacon",
            None,
            what,
        );
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(16);
        while self.running {
            let timeout = if self.backlog || self.more_commands {
                Some(Duration::ZERO)
            } else if self.transmit.is_some() {
                Some(self.ping_at.saturating_duration_since(Instant::now()))
            } else {
                None
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    crate::logging::notice_as(
                        "zbeacon",
                        crate::logging::DISCOVERY,
                        log::Level::Error,
                        None,
                        format_args!("poll failed: {e}"),
                    );
                    return;
                }
            }
            let mut commands = std::mem::take(&mut self.more_commands);
            let mut readable = self.backlog;
            for ev in events.iter() {
                match ev.token() {
                    WAKER => commands = true,
                    UDP => readable = true,
                    _ => {}
                }
            }
            if commands {
                self.handle_commands();
            }
            if readable && self.running {
                self.read();
            }
            if self.transmit.is_some() && Instant::now() >= self.ping_at && self.running {
                self.emit();
                self.ping_at = Instant::now() + Duration::from_millis(self.interval_ms);
            }
        }
    }

    fn handle_commands(&mut self) {
        for _ in 0..1024 {
            let Envelope { cmd, ack, direct } = match self.commands.try_recv() {
                Ok(e) => e,
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.running = false;
                    return;
                }
            };
            self.trace(format_args!("API command={cmd:?}"));
            let mut reply = None;
            match cmd {
                BeaconCommand::Verbose => self.verbose = true,
                BeaconCommand::Configure(port) => {
                    self.port = Some(port);
                    self.prepare();
                    let hostname = self
                        .udp
                        .as_ref()
                        .map(|s| s.beacon.hostname.clone())
                        .unwrap_or_default();
                    if hostname.is_empty() {
                        crate::logging::notice_as(
                            "zbeacon",
                            crate::logging::DISCOVERY,
                            log::Level::Warn,
                            None,
                            format_args!(
                                "no broadcast interface found (interface='{}')",
                                self.options.interface
                            ),
                        );
                    }
                    if direct {
                        reply = Some(hostname);
                    } else {
                        self.pipe.send(vec![hostname.into_bytes()], false);
                    }
                }
                BeaconCommand::Publish(data, interval) => {
                    self.transmit = Some(data);
                    self.interval_ms = interval;
                    self.ping_at = Instant::now();
                }
                BeaconCommand::Silence => self.transmit = None,
                BeaconCommand::Subscribe(filter) => self.filter = Some(filter),
                BeaconCommand::Unsubscribe => self.filter = None,
                BeaconCommand::Term => self.running = false,
            }
            let _ = ack.send(reply);
            if !self.running {
                return;
            }
        }
        self.more_commands = true;
    }

    /// (Re)opens the sockets for the configured port.
    fn prepare(&mut self) {
        if let Some(mut old) = self.udp.take() {
            let _ = self.poll.registry().deregister(&mut old.recv);
        }
        let Some(port) = self.port else { return };
        match UdpBeacon::open(port, &self.options) {
            Ok(Some(beacon)) => {
                let recv = match beacon.recv.try_clone() {
                    Ok(s) => mio::net::UdpSocket::from_std(s),
                    Err(e) => {
                        self.trace(format_args!("cannot use socket: {e}"));
                        return;
                    }
                };
                let mut sockets = Sockets { beacon, recv };
                if let Err(e) =
                    self.poll
                        .registry()
                        .register(&mut sockets.recv, UDP, Interest::READABLE)
                {
                    self.trace(format_args!("cannot register socket: {e}"));
                    return;
                }
                self.trace(format_args!(
                    "configured, hostname={} sending to {}",
                    sockets.beacon.hostname, sockets.beacon.dest
                ));
                self.udp = Some(sockets);
                // Datagrams that came before registration.
                self.backlog = true;
            }
            Ok(None) => self.trace(format_args!("no usable interface")),
            Err(e) => self.trace(format_args!("cannot open UDP port {port}: {e}")),
        }
    }

    fn read(&mut self) {
        self.backlog = false;
        let mut buf = [0u8; 2048];
        for _ in 0..READ_BUDGET {
            let Some(s) = self.udp.as_ref() else { return };
            let (n, from): (usize, SocketAddr) = match s.recv.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.trace(format_args!("recvfrom failed: {e}"));
                    return;
                }
            };
            // As zsys_udp_recv: at most UDP_FRAME_MAX bytes.
            let data = &buf[..n.min(MAX_BEACON)];
            let Some(filter) = &self.filter else { continue };
            if !data.starts_with(filter) {
                continue;
            }
            if self.transmit.as_deref() == Some(data) {
                continue; // our own beacon, echoed
            }
            let address = s.beacon.peer_name(from);
            if !self
                .pipe
                .send(vec![address.into_bytes(), data.to_vec()], true)
            {
                self.trace(format_args!("application too slow: beacon dropped"));
            }
        }
        self.backlog = true;
    }

    fn emit(&mut self) {
        let Some(data) = &self.transmit else { return };
        let sent = match &self.udp {
            Some(s) => s
                .beacon
                .send
                .send_to(data, s.beacon.dest)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("no socket".to_string()),
        };
        if let Err(reason) = sent {
            self.trace(format_args!(
                "failed to transmit ({reason}), opening the socket again"
            ));
            self.prepare();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zbeacon_commands() {
        assert_eq!(
            BeaconCommand::parse(&["CONFIGURE", "9999"]).unwrap(),
            BeaconCommand::Configure(9999)
        );
        assert_eq!(
            BeaconCommand::parse(&[b"PUBLISH".as_slice(), &[0, 255], b"250"]).unwrap(),
            BeaconCommand::Publish(vec![0, 255], 250)
        );
        assert_eq!(
            BeaconCommand::parse(&["PUBLISH", "x", "0"]).unwrap(),
            BeaconCommand::Publish(b"x".to_vec(), 1000)
        );
        assert_eq!(
            BeaconCommand::parse(&["SUBSCRIBE"]).unwrap(),
            BeaconCommand::Subscribe(vec![])
        );
        assert_eq!(
            BeaconCommand::parse(&["$TERM"]).unwrap(),
            BeaconCommand::Term
        );
        let err = |f: &[&str]| BeaconCommand::parse(f).unwrap_err().to_string();
        assert!(err(&["CONFIGURE", "0"]).contains("1 to 65535"));
        assert!(err(&["CONFIGURE", "x"]).contains("port must be a number"));
        assert!(err(&["CONFIGURE"]).contains("usage: CONFIGURE port"));
        assert!(err(&["PUBLISH", &"x".repeat(256), "1"]).contains("exceeds the limit of 255"));
        assert!(err(&["FROB"]).contains("unknown beacon command"));
        assert!(err(&[]).contains("empty"));
    }
}
