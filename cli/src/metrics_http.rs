//! `zgossip node --metrics ADDR`: `GET /metrics` over plain HTTP/1.1, the
//! node's `METRICS` text (Prometheus text exposition format 0.0.4).
//!
//! A std `TcpListener` on one thread, not an HTTP crate: one path, one
//! method, no keep-alive, and so no need for `tiny_http`'s worker pool
//! and dependencies in the command. Requests are served one at a time
//! (a scraper asks every few seconds), each bounded: 8 KiB of request
//! head and 5 s to send it and take the answer, then the connection is
//! closed, so a client that stalls holds the endpoint for 5 s at most.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zgossip::Node;

/// Largest request head (request line and headers) read.
const MAX_HEAD: usize = 8 * 1024;
/// Longest a client may take to send its request, and to take the answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` (host:port; port 0 picks one) and serves `/metrics` on a
/// thread for as long as the process runs. Returns the address bound.
pub fn serve(addr: &str, node: Arc<Node>) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("--metrics: '{addr}' is not a host:port address: {e}"))?
        .collect();
    let listener = TcpListener::bind(&addrs[..])
        .map_err(|e| format!("--metrics: cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--metrics: {e}"))?;
    std::thread::Builder::new()
        .name("zgossip-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        let _ = handle(s, &node);
                    }
                    // Out of descriptors, say: do not spin.
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        })
        .map_err(|e| format!("--metrics: cannot start its thread: {e}"))?;
    Ok(bound)
}

fn handle(mut s: TcpStream, node: &Node) -> std::io::Result<()> {
    s.set_write_timeout(Some(TIMEOUT))?;
    let head = match read_head(&mut s) {
        Ok(h) => h,
        Err(Refused(status)) => return respond(&mut s, status, "text/plain", status, false),
    };
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(_)) = (
        method,
        target,
        version.filter(|v| v.starts_with("HTTP/1.") && parts.next().is_none()),
    ) else {
        return respond(
            &mut s,
            "400 Bad Request",
            "text/plain",
            "bad request line\n",
            false,
        );
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            &mut s,
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n",
            false,
        );
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != "/metrics" {
        return respond(
            &mut s,
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n",
            head_only,
        );
    }
    match node.metrics() {
        Ok(text) => respond(
            &mut s,
            "200 OK",
            zgossip::METRICS_CONTENT_TYPE,
            &text,
            head_only,
        ),
        Err(e) => respond(
            &mut s,
            "503 Service Unavailable",
            "text/plain",
            &format!("{e}\n"),
            head_only,
        ),
    }
}

/// Why a request was refused before it was read whole: its status line.
struct Refused(&'static str);

/// Reads up to the blank line that ends the head, within the bounds.
fn read_head(s: &mut TcpStream) -> Result<String, Refused> {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_end(&buf) {
            buf.truncate(end);
            return String::from_utf8(buf).map_err(|_| Refused("400 Bad Request"));
        }
        if buf.len() > MAX_HEAD {
            return Err(Refused("431 Request Header Fields Too Large"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return Err(Refused("408 Request Timeout"));
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(Refused("400 Bad Request")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(Refused("408 Request Timeout")),
        }
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"))
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    s.write_all(&out)?;
    s.flush()?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    Ok(())
}
