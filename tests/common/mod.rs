//! Shared helpers for integration tests: a raw ZMTP peer speaking ZGP to a
//! node, and small waiting utilities. Every wait is bounded.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use zgossip::wire::gossip::{self, Message};
use zgossip::wire::zmtp::{self, SocketType};
use zgossip::Node;

/// Polls `done` until it is true or `limit` passed; true if it became true.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// A blocking byte stream of any transport.
pub trait Io: Read + Write + Send {
    fn set_timeout(&self, d: Duration);
}
impl Io for TcpStream {
    fn set_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}
impl Io for UnixStream {
    fn set_timeout(&self, d: Duration) {
        self.set_read_timeout(Some(d)).unwrap();
    }
}

/// Opens a raw stream to a node's endpoint (tcp, ipc or inproc).
pub fn raw_stream(endpoint: &str) -> Box<dyn Io> {
    if let Some(rest) = endpoint.strip_prefix("tcp://") {
        Box::new(TcpStream::connect(rest).unwrap())
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        Box::new(UnixStream::connect(path).unwrap())
    } else if let Some(name) = endpoint.strip_prefix("inproc://") {
        Box::new(zgossip::testing::connect_inproc(name).unwrap())
    } else {
        panic!("unknown endpoint {endpoint}")
    }
}

/// A hand-driven ZMTP peer: we control every byte it sends.
pub struct RawPeer {
    pub io: Box<dyn Io>,
    pub zmtp: zmtp::Connection,
}

impl RawPeer {
    /// Connects as `socket_type` and completes the handshake.
    pub fn connect(endpoint: &str, socket_type: SocketType) -> RawPeer {
        let io = raw_stream(endpoint);
        io.set_timeout(Duration::from_millis(100));
        let mut p = RawPeer {
            io,
            zmtp: zmtp::Connection::new(zmtp::ConnectionConfig::new(socket_type)),
        };
        p.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !p.zmtp.is_ready() {
            assert!(Instant::now() < deadline, "handshake timed out");
            p.read_some();
            match p.zmtp.poll() {
                Ok(_) => {}
                Err(e) => panic!("handshake failed: {e}"),
            }
            p.flush();
        }
        p
    }

    /// Connects with a given ZMTP configuration (e.g. CURVE keys) and runs
    /// the handshake to its end: `Err` is why it failed. Every byte
    /// received is kept in `received` (to check a refused peer learnt
    /// nothing).
    pub fn try_connect(
        endpoint: &str,
        config: zmtp::ConnectionConfig,
        received: &mut Vec<u8>,
    ) -> Result<RawPeer, String> {
        let io = raw_stream(endpoint);
        io.set_timeout(Duration::from_millis(50));
        let mut p = RawPeer {
            io,
            zmtp: zmtp::Connection::new(config),
        };
        p.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        loop {
            match p.zmtp.poll() {
                Ok(Some(zmtp::ConnectionEvent::Ready(_))) => return Ok(p),
                Ok(Some(zmtp::ConnectionEvent::Message(_))) => {
                    return Err("message before ready".into())
                }
                Ok(None) => {}
                Err(e) => {
                    // Collect whatever else arrives until the node closes.
                    let end = Instant::now() + Duration::from_millis(500);
                    while Instant::now() < end {
                        match p.io.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => received.extend_from_slice(&buf[..n]),
                            Err(e)
                                if e.kind() == std::io::ErrorKind::WouldBlock
                                    || e.kind() == std::io::ErrorKind::TimedOut => {}
                            Err(_) => break,
                        }
                    }
                    return Err(e.to_string());
                }
            }
            if p.io.write_all(p.zmtp.pending_output()).is_err() {
                return Err("write failed".into());
            }
            let n = p.zmtp.pending_output().len();
            p.zmtp.consume_output(n);
            assert!(Instant::now() < deadline, "handshake timed out");
            match p.io.read(&mut buf) {
                Ok(0) => return Err("closed by node".into()),
                Ok(n) => {
                    received.extend_from_slice(&buf[..n]);
                    p.zmtp.feed(&buf[..n]);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    pub fn flush(&mut self) {
        while !self.zmtp.pending_output().is_empty() {
            let n = self.io.write(self.zmtp.pending_output()).unwrap();
            self.zmtp.consume_output(n);
        }
    }

    /// Reads what is there within the read timeout; false on EOF.
    pub fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.io.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.zmtp.feed(&buf[..n]);
                true
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                true
            }
            Err(_) => false,
        }
    }

    pub fn send(&mut self, msg: &Message<'_>) {
        let mut frame = Vec::new();
        msg.encode(&mut frame);
        self.send_raw(&frame);
    }

    pub fn send_raw(&mut self, frame: &[u8]) {
        self.zmtp.queue_message(&[frame]).unwrap();
        self.flush();
    }

    /// The next ZGP frame within `timeout`, as owned bytes.
    pub fn recv_frame(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.zmtp.poll() {
                Ok(Some(zmtp::ConnectionEvent::Message(m))) => return Some(m.first().to_vec()),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(_) => return None,
            }
            self.flush();
            if Instant::now() >= deadline || !self.read_some() {
                return None;
            }
        }
    }

    /// The next ZGP message within `timeout`, decoded to an owned form.
    pub fn recv(&mut self, timeout: Duration) -> Option<Owned> {
        self.recv_frame(timeout)
            .map(|f| Owned::from(gossip::decode(&f).unwrap()))
    }

    /// True when the node closed the connection within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.read_some() {
                return true;
            }
        }
        false
    }
}

/// A ZGP message with owned strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    Hello,
    Publish(String, String),
    Ping,
    Pong,
    Invalid,
}

impl From<Message<'_>> for Owned {
    fn from(m: Message<'_>) -> Owned {
        match m {
            Message::Hello => Owned::Hello,
            Message::Publish { key, value, .. } => Owned::Publish(key.into(), value.into()),
            Message::Ping => Owned::Ping,
            Message::Pong => Owned::Pong,
            Message::Invalid => Owned::Invalid,
        }
    }
}

/// A fresh endpoint for `transport` ("inproc", "ipc" or "tcp"); for tcp it
/// binds `node` and returns the concrete endpoint.
pub fn bind_fresh(node: &Node, transport: &str, tag: &str) -> String {
    let ep = match transport {
        "inproc" => format!("inproc://{tag}-{}", unique()),
        "ipc" => format!("ipc:///tmp/zgossip-test-{tag}-{}.sock", unique()),
        "tcp" => {
            let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
            return format!("tcp://127.0.0.1:{port}");
        }
        other => panic!("unknown transport {other}"),
    };
    node.send(&["BIND", ep.as_str()]).unwrap();
    ep
}

pub fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// STATUS of `node`, skipping deliveries.
pub fn status(node: &Node) -> usize {
    node.status().unwrap()
}

/// Waits until `node` holds `n` tuples; panics after `timeout`.
pub fn wait_status(node: &Node, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status(node);
        if s == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {s} tuples, expected {n}",
            node.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collects `DELIVER` messages until `n` arrived; panics after `timeout`.
pub fn deliveries(node: &Node, n: usize, timeout: Duration) -> Vec<(String, String)> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = node
            .recv_timeout(left)
            .unwrap()
            .unwrap_or_else(|| panic!("only {} of {n} deliveries: {got:?}", got.len()));
        assert_eq!(m[0], "DELIVER", "unexpected {m:?}");
        got.push((m[1].clone(), m[2].clone()));
    }
    got
}

/// The CPUs the calling thread may run on, in increasing order.
pub fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    let set = sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap())
        .collect()
}

/// The CPUs the thread named `name` may run on (as /proc lists them),
/// once they are `want` or after 5 s: a thread sets them as it starts.
pub fn wait_cpus_of_thread(name: &str, want: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let cpus = cpus_of_thread(name);
        if cpus.as_deref() == Some(want) || Instant::now() >= deadline {
            return cpus;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The threads of this process: each one's name and its /proc directory.
pub fn threads() -> Vec<(String, std::path::PathBuf)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            Some((comm.trim().to_string(), dir))
        })
        .collect()
}

/// The CPUs a thread of this process may run on, from /proc, by name.
fn cpus_of_thread(name: &str) -> Option<String> {
    let (_, dir) = threads().into_iter().find(|(n, _)| n == name)?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_string())
}
