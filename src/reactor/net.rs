//! Sockets: listeners and streams over tcp, ipc and inproc.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::net::SocketAddr as UnixAddr;
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::loopback::Identity;
use crate::endpoint::{Endpoint, Port};
use crate::error::Error;

/// A connected byte stream of any transport (inproc uses a Unix socket pair).
pub(crate) enum Stream {
    /// A TCP stream, and how many bytes at the head of its receive queue
    /// a look-ahead has given out already (see [`Stream::receive`]).
    Tcp(TcpStream, usize),
    /// An ipc stream, or one end of an inproc pair with the pair's number
    /// and which end it is.
    Unix(UnixStream, Option<(u64, bool)>),
}

impl Stream {
    /// For a stream still connecting: `Ok(true)` once connected, `Ok(false)`
    /// while in progress, `Err` when the connection failed.
    pub(crate) fn connect_finished(&self) -> io::Result<bool> {
        match self {
            Stream::Tcp(s, _) => {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                match s.peer_addr() {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Stream::Unix(s, _) => {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                Ok(true)
            }
        }
    }

    /// What the other end of this connected stream is found by, if it can
    /// be (TCP: the two addresses; inproc: the pair's number), for
    /// hand-offs between nodes of one thread.
    pub(crate) fn identity(&self) -> Option<Identity> {
        match self {
            Stream::Tcp(s, _) => Some(Identity::Tcp {
                local: s.local_addr().ok()?,
                peer: s.peer_addr().ok()?,
            }),
            Stream::Unix(_, pair) => pair.map(|(pair, side)| Identity::Pair { pair, side }),
        }
    }

    /// The peer's IP address (TCP only).
    pub(crate) fn peer_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Stream::Tcp(s, _) => s.peer_addr().ok().map(|a| a.ip()),
            Stream::Unix(..) => None,
        }
    }

    /// The peer's address for traces.
    pub(crate) fn peer(&self) -> String {
        match self {
            Stream::Tcp(s, _) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "tcp peer".into()),
            Stream::Unix(..) => "local peer".into(),
        }
    }
}

/// What one [`Stream::receive`] brought: `buf[start..end]` holds the new
/// bytes; `more` says the read filled the room it had, so the socket may
/// hold more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadSpan {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) more: bool,
}

/// The most a look-ahead takes. Looking ahead pays off for the small
/// writes whose latency counts; a larger write is read as usual after
/// this much (which it copies once more).
pub(crate) const LOOK_AHEAD: usize = 4 << 10;

impl Stream {
    /// Reads the bytes not yet received into `buf`; `Ok(None)` at the end
    /// of the stream.
    ///
    /// With `look_ahead` a TCP stream only looks (`MSG_PEEK`): the bytes
    /// stay in the socket, counted as given out, and the next plain
    /// receive takes them out of the socket without returning them again.
    /// Why: taking bytes out of a TCP socket is what makes the kernel send
    /// its acknowledgement, there and then, in the reading thread. After a
    /// hand-off (see [`super::loopback`]) that thread carries the message
    /// on to the next node; looking sends the acknowledgement later, when
    /// the poll reports the socket readable, after the message has gone
    /// on (no extra system call: that read was made before too, and found
    /// nothing). Passing 42 bytes along 32 loopback connections in one
    /// thread, a hop takes about 2.5 µs less so (7.5 → 4.9 µs).
    ///
    /// A look-ahead is made only while nothing given out is left in the
    /// socket, so that the bytes kept there stay under [`LOOK_AHEAD`];
    /// otherwise, and for Unix sockets, it is a plain receive.
    pub(crate) fn receive(
        &mut self,
        buf: &mut [u8],
        look_ahead: bool,
    ) -> io::Result<Option<ReadSpan>> {
        match self {
            Stream::Tcp(s, ahead) if look_ahead && *ahead == 0 => {
                let room = buf.len().min(LOOK_AHEAD);
                let n = s.peek(&mut buf[..room])?;
                if n == 0 {
                    return Ok(None);
                }
                *ahead = n;
                Ok(Some(ReadSpan {
                    start: 0,
                    end: n,
                    more: n == room,
                }))
            }
            Stream::Tcp(s, ahead) => {
                let n = s.read(buf)?;
                if n == 0 {
                    *ahead = 0;
                    return Ok(None);
                }
                let given = (*ahead).min(n);
                *ahead -= given;
                Ok(Some(ReadSpan {
                    start: given,
                    end: n,
                    more: n == buf.len(),
                }))
            }
            Stream::Unix(s, _) => match s.read(buf)? {
                0 => Ok(None),
                n => Ok(Some(ReadSpan {
                    start: 0,
                    end: n,
                    more: n == buf.len(),
                })),
            },
        }
    }
}

impl Drop for Stream {
    /// Takes out of the socket what a look-ahead left there: closing a TCP
    /// socket with unread bytes resets the connection (RST), and a reset
    /// drops what is still queued to send (the last messages to the peer).
    fn drop(&mut self) {
        if let Stream::Tcp(s, ahead) = self {
            if *ahead == 0 {
                return;
            }
            let mut sink = [0u8; LOOK_AHEAD];
            while *ahead > 0 {
                let want = (*ahead).min(sink.len());
                match s.read(&mut sink[..want]) {
                    Ok(n) if n > 0 => *ahead -= n.min(*ahead),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s, _) => s.write(buf),
            Stream::Unix(s, _) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s, _) => s.register(r, t, i),
            Stream::Unix(s, _) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s, _) => s.reregister(r, t, i),
            Stream::Unix(s, _) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s, _) => s.deregister(r),
            Stream::Unix(s, _) => s.deregister(r),
        }
    }
}

/// A listening socket.
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// With the path to remove when the listener closes (none if abstract).
    Unix(UnixListener, Option<PathBuf>),
}

impl Listener {
    /// Accepts one pending connection, if any.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s, 0))
            }
            Listener::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0, None)),
        }
    }

    pub(crate) fn source(&mut self) -> &mut dyn Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, Some(path)) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a tcp or ipc endpoint; returns the listener and the tcp port.
pub(crate) fn bind(ep: &Endpoint) -> Result<(Listener, Option<u16>), Error> {
    match ep {
        Endpoint::Tcp { host, port } => {
            let ip = bind_ip(host, ep)?;
            let try_port =
                |p: u16| -> io::Result<TcpListener> { TcpListener::bind(SocketAddr::new(ip, p)) };
            let listener = match *port {
                Port::Fixed(p) => try_port(p),
                Port::Any => try_port(0),
                Port::First(a, b) => scan(a, b, a, try_port),
                Port::Random(a, b) => {
                    let mut r = [0u8; 2];
                    let _ = getrandom::getrandom(&mut r);
                    let span = u32::from(b - a) + 1;
                    let start = a + (u32::from(u16::from_le_bytes(r)) % span) as u16;
                    scan(a, b, start, try_port)
                }
            }
            .map_err(|e| Error::io(format!("cannot bind {ep}"), e))?;
            let bound = listener
                .local_addr()
                .map_err(|e| Error::io(format!("cannot bind {ep}"), e))?
                .port();
            Ok((Listener::Tcp(listener), Some(bound)))
        }
        Endpoint::Ipc(path) => {
            if let Some(name) = path.strip_prefix('@') {
                let addr = abstract_addr(name, ep)?;
                let l = std::os::unix::net::UnixListener::bind_addr(&addr)
                    .and_then(|l| l.set_nonblocking(true).map(|_| l))
                    .map_err(|e| Error::io(format!("cannot bind {ep}"), e))?;
                return Ok((Listener::Unix(UnixListener::from_std(l), None), None));
            }
            let l = match UnixListener::bind(path) {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && stale_socket(path) => {
                    // Nobody listens there any more: take the path over.
                    let _ = std::fs::remove_file(path);
                    UnixListener::bind(path)
                }
                other => other,
            }
            .map_err(|e| Error::io(format!("cannot bind {ep}"), e))?;
            Ok((Listener::Unix(l, Some(PathBuf::from(path))), None))
        }
        Endpoint::Inproc(_) => Err(Error::command(format!(
            "{ep}: inproc is bound through the registry"
        ))),
    }
}

fn scan(
    first: u16,
    last: u16,
    start: u16,
    mut f: impl FnMut(u16) -> io::Result<TcpListener>,
) -> io::Result<TcpListener> {
    let mut p = start;
    let mut last_err = io::Error::from(io::ErrorKind::AddrInUse);
    for _ in 0..=(u32::from(last - first)) {
        match f(p) {
            Ok(l) => return Ok(l),
            Err(e) => last_err = e,
        }
        p = if p >= last { first } else { p + 1 };
    }
    Err(last_err)
}

fn stale_socket(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    is_socket
        && matches!(
            std::os::unix::net::UnixStream::connect(path),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
        )
}

fn abstract_addr(name: &str, ep: &Endpoint) -> Result<UnixAddr, Error> {
    use std::os::linux::net::SocketAddrExt;
    UnixAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| Error::io(format!("bad abstract socket name in {ep}"), e))
}

fn bind_ip(host: &str, ep: &Endpoint) -> Result<IpAddr, Error> {
    if host == "*" {
        return Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    resolve(host, 0, ep).map(|a| a.ip())
}

fn resolve(host: &str, port: u16, ep: &Endpoint) -> Result<SocketAddr, Error> {
    let bare = Endpoint::bare_host(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = (bare, port)
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("cannot resolve host in {ep}"), e))?;
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| {
            Error::io(
                format!("cannot resolve host in {ep}"),
                io::Error::from(io::ErrorKind::NotFound),
            )
        })
}

/// Starts connecting to a tcp or ipc endpoint (non-blocking).
pub(crate) fn dial(ep: &Endpoint) -> Result<Stream, Error> {
    match ep {
        Endpoint::Tcp { host, port } => {
            let Port::Fixed(p) = *port else {
                return Err(Error::command(format!("cannot connect to {ep}: no port")));
            };
            let addr = resolve(host, p, ep)?;
            let s = TcpStream::connect(addr)
                .map_err(|e| Error::io(format!("cannot connect to {ep}"), e))?;
            let _ = s.set_nodelay(true);
            Ok(Stream::Tcp(s, 0))
        }
        Endpoint::Ipc(path) => {
            let std_stream = if let Some(name) = path.strip_prefix('@') {
                std::os::unix::net::UnixStream::connect_addr(&abstract_addr(name, ep)?)
            } else {
                std::os::unix::net::UnixStream::connect(path)
            }
            .and_then(|s| s.set_nonblocking(true).map(|_| s))
            .map_err(|e| Error::io(format!("cannot connect to {ep}"), e))?;
            Ok(Stream::Unix(UnixStream::from_std(std_stream), None))
        }
        Endpoint::Inproc(_) => Err(Error::command(format!(
            "{ep}: inproc is dialled through the registry"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{TcpListener as StdListener, TcpStream as StdStream};
    use std::time::{Duration, Instant};

    /// A loopback connection: our end (non-blocking) and the peer's
    /// (blocking, with a read timeout).
    fn pair() -> (Stream, StdStream) {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let peer = StdStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Stream::Tcp(TcpStream::from_std(ours), 0), peer)
    }

    /// One receive that brought something (bytes or the end): waits while
    /// the socket would block, up to 5 s.
    fn receive_ready(s: &mut Stream, buf: &mut [u8], look_ahead: bool) -> Option<ReadSpan> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match s.receive(buf, look_ahead) {
                Ok(got) => return got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("receive failed: {e}"),
            }
        }
    }

    /// Waits until `n` bytes wait in the socket (up to 5 s).
    fn wait_queued(s: &Stream, n: usize) {
        let Stream::Tcp(s, _) = s else {
            panic!("a TCP stream")
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while s.peek(&mut [0u8; 64]).unwrap_or(0) < n {
            assert!(Instant::now() < deadline, "{n} bytes never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Receives until `want` new bytes came or the stream ended.
    fn receive_all(s: &mut Stream, want: usize, look_ahead: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0; 64 << 10];
        while out.len() < want {
            match receive_ready(s, &mut buf, look_ahead) {
                Some(got) => out.extend_from_slice(&buf[got.start..got.end]),
                None => break,
            }
        }
        out
    }

    #[test]
    fn a_look_ahead_leaves_the_bytes_and_the_next_receive_skips_them() {
        let (mut ours, mut peer) = pair();
        peer.write_all(b"hello").unwrap();
        let mut buf = [0u8; 64];
        let got = receive_ready(&mut ours, &mut buf, true).expect("bytes");
        assert_eq!(&buf[got.start..got.end], b"hello");
        assert!(!got.more);
        assert!(matches!(ours, Stream::Tcp(_, 5)), "five bytes given out");
        // A second look-ahead while those are in the socket reads plainly:
        // the five are taken out and not given again.
        peer.write_all(b" world").unwrap();
        wait_queued(&ours, 11);
        let got = receive_ready(&mut ours, &mut buf, true).expect("bytes");
        assert_eq!(&buf[got.start..got.end], b" world");
        assert!(matches!(ours, Stream::Tcp(_, 0)));
    }

    #[test]
    fn a_look_ahead_takes_at_most_its_limit_and_says_there_is_more() {
        let (mut ours, mut peer) = pair();
        let sent: Vec<u8> = (0..3 * LOOK_AHEAD).map(|i| (i % 251) as u8).collect();
        peer.write_all(&sent).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let got = receive_ready(&mut ours, &mut buf, true).expect("bytes");
        assert_eq!(got.start, 0);
        assert!(got.end <= LOOK_AHEAD);
        assert_eq!(got.more, got.end == LOOK_AHEAD);
        let mut all = buf[..got.end].to_vec();
        all.extend(receive_all(&mut ours, sent.len() - all.len(), false));
        assert_eq!(all, sent);
    }

    #[test]
    fn the_end_of_the_stream_is_seen_by_a_look_ahead() {
        let (mut ours, peer) = pair();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(receive_ready(&mut ours, &mut [0u8; 16], true), None);
    }

    #[test]
    fn closing_after_a_look_ahead_ends_the_connection_cleanly_not_by_reset() {
        let (mut ours, mut peer) = pair();
        peer.write_all(b"ping").unwrap();
        assert!(receive_ready(&mut ours, &mut [0u8; 16], true).is_some());
        ours.write_all(b"last words").unwrap();
        drop(ours);
        // The peer gets what we sent and then the end of the stream; with
        // the looked-at bytes left unread, the close would be a reset.
        let mut got = Vec::new();
        let mut chunk = [0u8; 64];
        loop {
            match peer.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("the peer's read failed ({e}) after {got:?}"),
            }
        }
        assert_eq!(got, b"last words");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(usize),
        Receive { look_ahead: bool, room: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1usize..3 * LOOK_AHEAD).prop_map(Op::Write),
            (any::<bool>(), 1usize..2 * LOOK_AHEAD)
                .prop_map(|(look_ahead, room)| Op::Receive { look_ahead, room }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever mix of writes, look-aheads and receives: every byte
        /// written is received exactly once, in order.
        #[test]
        fn every_byte_is_received_once_in_order(ops in proptest::collection::vec(op(), 1..24)) {
            let (mut ours, mut peer) = pair();
            let mut sent = Vec::new();
            let mut received = Vec::new();
            let mut buf = vec![0u8; 2 * LOOK_AHEAD];
            for op in ops {
                match op {
                    // Bounded, so that the blocking write never waits on
                    // a full socket.
                    Op::Write(n) if sent.len() - received.len() + n <= 64 << 10 => {
                        let start = sent.len();
                        sent.extend((start..start + n).map(|i| (i % 253) as u8));
                        peer.write_all(&sent[start..]).unwrap();
                    }
                    Op::Write(_) => {}
                    Op::Receive { look_ahead, room } => {
                        match ours.receive(&mut buf[..room], look_ahead) {
                            Ok(Some(got)) => {
                                prop_assert!(got.start <= got.end && got.end <= room);
                                received.extend_from_slice(&buf[got.start..got.end]);
                            }
                            Ok(None) => prop_assert!(false, "end of stream"),
                            Err(e) => prop_assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
                        }
                        prop_assert!(received.len() <= sent.len());
                        prop_assert_eq!(&received[..], &sent[..received.len()]);
                    }
                }
            }
            received.extend(receive_all(&mut ours, sent.len() - received.len(), false));
            prop_assert_eq!(received, sent);
        }
    }
}
