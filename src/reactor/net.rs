//! Sockets: listeners and streams over tcp, ipc and inproc.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};
use std::os::unix::net::SocketAddr as UnixAddr;
use std::path::PathBuf;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::endpoint::{Endpoint, Port};
use crate::error::Error;

/// A connected byte stream of any transport (inproc uses a Unix socket pair).
pub(crate) enum Stream {
    Tcp(TcpStream),
    /// An ipc stream, or one end of an inproc pair.
    Unix(UnixStream),
}

impl Stream {
    /// For a stream still connecting: `Ok(true)` once connected, `Ok(false)`
    /// while in progress, `Err` when the connection failed.
    pub(crate) fn connect_finished(&self) -> io::Result<bool> {
        match self {
            Stream::Tcp(s) => {
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
            Stream::Unix(s) => {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                Ok(true)
            }
        }
    }

    /// The peer's IP address (TCP only). An IPv4 peer of a listener that
    /// takes both families (`[::]`) is given as its IPv4 address, not as
    /// `::ffff:a.b.c.d`, for the access rules and the endpoints told.
    pub(crate) fn peer_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.ip().to_canonical()),
            Stream::Unix(..) => None,
        }
    }

    /// The peer's address for traces.
    pub(crate) fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "tcp peer".into()),
            Stream::Unix(..) => "local peer".into(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
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
                Ok(Stream::Tcp(s))
            }
            Listener::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0)),
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
            let try_port = |p: u16| -> io::Result<TcpListener> { listen(SocketAddr::new(ip, p)) };
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

/// A TCP listener on `addr`, as mio binds one; on the IPv6 wildcard
/// (`[::]`) it takes IPv4 connections too, whatever the system's default
/// (`net.ipv6.bindv6only`): one socket for both families.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    if addr.ip() != IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        return TcpListener::bind(addr);
    }
    let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    s.set_only_v6(false)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.set_cloexec(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(TcpListener::from_std(s.into()))
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
            Ok(Stream::Tcp(s))
        }
        Endpoint::Ipc(path) => {
            let std_stream = if let Some(name) = path.strip_prefix('@') {
                std::os::unix::net::UnixStream::connect_addr(&abstract_addr(name, ep)?)
            } else {
                std::os::unix::net::UnixStream::connect(path)
            }
            .and_then(|s| s.set_nonblocking(true).map(|_| s))
            .map_err(|e| Error::io(format!("cannot connect to {ep}"), e))?;
            Ok(Stream::Unix(UnixStream::from_std(std_stream)))
        }
        Endpoint::Inproc(_) => Err(Error::command(format!(
            "{ep}: inproc is dialled through the registry"
        ))),
    }
}
