//! A small, bounded HTTP/1.1 server on std's `TcpListener`, for the
//! command's own endpoints (`--metrics`, `--http`): GET and HEAD, no
//! keep-alive, no request bodies. Not an HTTP crate: a handful of paths
//! and methods do not need `tiny_http`'s worker pool and dependencies.
//!
//! Every request is bounded: 8 KiB of request head and 5 s to send it
//! and to take the answer, then the connection is closed. At most
//! `MAX_CLIENTS` connections are served at once, each on a thread of its
//! own, so that a client that connects and sends nothing (a browser's
//! speculative connection, say) delays nobody; one more is answered
//! `503` at once.
//!
//! Every request's `Host` must be one the endpoints answer
//! (`http_host.rs`, against DNS rebinding), else it is answered `421`;
//! a request without one is answered only by the routes that take that
//! (`/metrics`, for HTTP/1.0 scrapers).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::accept_bounded;
use crate::http_host::AllowedHosts;

/// Largest request head (request line and headers) read.
const MAX_HEAD: usize = 8 * 1024;
/// Longest a client may take to send its request, and to take the answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
const MAX_CLIENTS: usize = 8;

/// A request, as far as the endpoints look at it.
#[derive(Debug)]
pub struct Request {
    /// The path of the target, without its query.
    pub path: String,
    /// The query string after `?`, undecoded (empty when none).
    pub query: String,
}

/// An answer: status line, content type, extra headers and body.
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: String,
}

impl Response {
    /// `200 OK` with a body.
    pub fn ok(content_type: &'static str, body: String) -> Response {
        Response {
            status: "200 OK",
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    /// An error status with a one-line plain-text body.
    pub fn error(status: &'static str, message: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: format!("{message}\n"),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Response {
        self.headers.push((name, value));
        self
    }
}

/// Answers a request for a path it serves, `None` for the others.
type Answer = Box<dyn Fn(&Request) -> Option<Response> + Send + Sync>;

/// The paths a route answers (the server answers `404` for a path no
/// route answers), and whether without a `Host`.
pub struct Route {
    answer: Answer,
    /// Whether a request without a `Host` header is answered too.
    without_host: bool,
}

impl Route {
    /// A route for requests with an allowed `Host` header.
    pub fn new(answer: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static) -> Route {
        Route {
            answer: Box::new(answer),
            without_host: false,
        }
    }

    /// The same route, also for requests without a `Host` header
    /// (HTTP/1.0 clients may send none).
    pub fn also_without_host(mut self) -> Route {
        self.without_host = true;
        self
    }
}

/// What a listener serves: its routes, and the `Host` values it answers.
pub struct Site {
    pub routes: Vec<Route>,
    pub hosts: AllowedHosts,
}

/// Binds `addr` (host:port; port 0 picks one) and serves `site` on a
/// thread for as long as the process runs: the first route that answers
/// a request answers it. `option` names the command-line option in
/// errors. Returns the address bound.
pub fn serve(addr: &str, option: &str, site: Site) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("{option}: '{addr}' is not a host:port address: {e}"))?
        .collect();
    let listener = TcpListener::bind(&addrs[..])
        .map_err(|e| format!("{option}: cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("{option}: {e}"))?;
    let site = Arc::new(site);
    std::thread::Builder::new()
        .name("zgossip-http".into())
        .spawn(move || accept_loop(listener, site))
        .map_err(|e| format!("{option}: cannot start its thread: {e}"))?;
    Ok(bound)
}

fn accept_loop(listener: TcpListener, site: Arc<Site>) {
    let refuse_busy = |mut s: TcpStream| {
        let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
        let busy = Response::error("503 Service Unavailable", "busy: try again");
        let _ = write_response(&mut s, &busy, false);
    };
    accept_bounded::serve_each(
        listener.incoming(),
        MAX_CLIENTS,
        "zgossip-http-client",
        refuse_busy,
        move |s| {
            let _ = handle(s, &site);
        },
    );
}

fn handle(mut s: TcpStream, site: &Site) -> std::io::Result<()> {
    s.set_write_timeout(Some(TIMEOUT))?;
    let head = match read_head(&mut s) {
        Ok(h) => h,
        Err(Refused(status)) => {
            return write_response(&mut s, &Response::error(status, status), false)
        }
    };
    let (answer, head_only) = answer(&head, site);
    write_response(&mut s, &answer, head_only)
}

/// The answer to a request head, and whether it is to a `HEAD` (no
/// body sent).
pub fn answer(head: &str, site: &Site) -> (Response, bool) {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(_)) = (
        method,
        target.filter(|t| t.starts_with('/')),
        version.filter(|v| v.starts_with("HTTP/1.") && parts.next().is_none()),
    ) else {
        return (
            Response::error("400 Bad Request", "bad request line"),
            false,
        );
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let refused = Response::error("405 Method Not Allowed", "only GET and HEAD")
            .with_header("Allow", "GET, HEAD");
        return (refused, false);
    }
    let host = match host_header(head) {
        Ok(host) => host,
        Err(()) => {
            let refused = Response::error("400 Bad Request", "more than one Host header");
            return (refused, false);
        }
    };
    if host.is_some_and(|h| !site.hosts.allows(h)) {
        let refused = Response::error(
            MISDIRECTED,
            "this Host is not served: use an IP address or localhost, \
             or start the node with --http-host NAME",
        );
        return (refused, false);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = Request {
        path: path.to_string(),
        query: query.to_string(),
    };
    let mut routes = site
        .routes
        .iter()
        .filter(|route| host.is_some() || route.without_host);
    let found = routes.find_map(|route| (route.answer)(&request));
    let answer = found.unwrap_or_else(|| match host {
        Some(_) => Response::error("404 Not Found", "not found"),
        None => Response::error(MISDIRECTED, "a Host header is required here"),
    });
    (answer, head_only)
}

/// The status of a request refused for its `Host`.
const MISDIRECTED: &str = "421 Misdirected Request";

/// The value of the request's `Host` header (trimmed), `None` without
/// one, `Err` with more than one.
fn host_header(head: &str) -> Result<Option<&str>, ()> {
    let mut hosts = head.lines().skip(1).filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("host").then(|| value.trim())
    });
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => Err(()),
        (host, None) => Ok(host),
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

fn write_response(s: &mut TcpStream, r: &Response, head_only: bool) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    for (name, value) in &r.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(r.body.as_bytes());
    }
    s.write_all(&out)?;
    s.flush()?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// The value of `name` in a query string (`a=1&q=x`), percent-decoded
/// (`+` is a space). `None` when absent, or not UTF-8 once decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/x` (its query in the body), and `/open`, served without a Host.
    fn site() -> Site {
        let x = Route::new(|r: &Request| {
            (r.path == "/x").then(|| Response::ok("text/plain", format!("q={}", r.query)))
        });
        let open = Route::new(|r: &Request| {
            (r.path == "/open").then(|| Response::ok("text/plain", String::new()))
        });
        Site {
            routes: vec![x, open.also_without_host()],
            hosts: AllowedHosts::new(&["gossip.example".to_string()]),
        }
    }

    /// Sends `request` to a server of `site()`; the whole answer.
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(request);
        let mut out = Vec::new();
        let _ = s.take(1 << 20).read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn requests_are_routed_and_the_rest_refused() {
        let site = site();
        let status = |head: &str| answer(head, &site).0.status;
        const HOST: &str = "\r\nHost: 127.0.0.1:80";
        assert_eq!(status(&format!("GET /x HTTP/1.1{HOST}")), "200 OK");
        assert_eq!(status(&format!("GET /x?a=1 HTTP/1.0{HOST}")), "200 OK");
        let (r, _) = answer(&format!("GET /x?a=1 HTTP/1.1{HOST}"), &site);
        assert_eq!(r.body, "q=a=1");
        let (r, head_only) = answer(&format!("HEAD /x HTTP/1.1{HOST}"), &site);
        assert!(head_only && r.status == "200 OK");
        assert_eq!(status(&format!("GET /y HTTP/1.1{HOST}")), "404 Not Found");
        assert_eq!(status(&format!("GET /x/ HTTP/1.1{HOST}")), "404 Not Found");
        let (r, _) = answer("POST /x HTTP/1.1", &site);
        assert_eq!(r.status, "405 Method Not Allowed");
        assert!(r.headers.contains(&("Allow", "GET, HEAD")));
        for bad in [
            "",
            "nonsense",
            "GET /x",
            "GET /x HTTP/2",
            "GET /x HTTP/1.1 extra",
            "GET x HTTP/1.1",
            "GET http://a/x HTTP/1.1",
        ] {
            assert_eq!(status(bad), "400 Bad Request", "{bad:?}");
        }
    }

    #[test]
    fn only_the_hosts_allowed_are_answered() {
        let site = site();
        let status = |head: &str| answer(head, &site).0.status;
        for host in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost",
            "LOCALHOST:8080",
            "gossip.example:8080",
        ] {
            assert_eq!(
                status(&format!("GET /x HTTP/1.1\r\nHost: {host}")),
                "200 OK"
            );
            assert_eq!(
                status(&format!("GET /x HTTP/1.1\r\nhost:{host} ")),
                "200 OK"
            );
        }
        // A rebound name, and anything not a host: refused, on every path,
        // before the route runs.
        for host in ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", ""] {
            for path in ["/x", "/open", "/nothing"] {
                let (r, _) = answer(&format!("GET {path} HTTP/1.1\r\nHost: {host}"), &site);
                assert_eq!(r.status, "421 Misdirected Request", "{host} {path}");
                assert!(r.body.contains("--http-host"), "{}", r.body);
            }
        }
        let two = "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example";
        assert_eq!(status(two), "400 Bad Request");
        // Without a Host (HTTP/1.0): only the routes that take that.
        assert_eq!(status("GET /open HTTP/1.0"), "200 OK");
        assert_eq!(status("GET /open HTTP/1.1\r\nX-Host: a"), "200 OK");
        assert_eq!(status("GET /x HTTP/1.0"), "421 Misdirected Request");
        assert_eq!(status("GET /nothing HTTP/1.0"), "421 Misdirected Request");
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(query_param("q=a%3Cb+c&x=1", "q").as_deref(), Some("a<b c"));
        assert_eq!(query_param("x=1&q=", "q").as_deref(), Some(""));
        assert_eq!(query_param("q", "q").as_deref(), Some(""));
        assert_eq!(query_param("x=1", "q"), None);
        assert_eq!(query_param("q=%e2%82%ac", "q").as_deref(), Some("€"));
        // Truncated escapes and bytes that are not UTF-8: no value.
        assert_eq!(query_param("q=%4", "q"), None);
        assert_eq!(query_param("q=%zz", "q"), None);
        assert_eq!(query_param("q=%ff", "q"), None);
    }

    #[test]
    fn the_server_bounds_what_it_reads_and_answers_over_tcp() {
        let addr = serve("127.0.0.1:0", "--test", site()).unwrap();
        let ok = exchange(addr, b"GET /x?1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 3\r\n") && ok.ends_with("\r\n\r\nq=1"));
        let head = exchange(addr, b"HEAD /x HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 2\r\n"));
        let missing = exchange(addr, b"GET /nothing HTTP/1.1\r\nHost: [::1]\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let not_utf8 = exchange(addr, b"GET /\xff HTTP/1.1\r\n\r\n");
        assert!(not_utf8.starts_with("HTTP/1.1 400 "), "{not_utf8}");
        let mut big = b"GET /x HTTP/1.1\r\nX-Big: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 20_000));
        let refused = exchange(addr, &big);
        assert!(refused.starts_with("HTTP/1.1 431 "), "{refused}");
        // Idle clients take slots, not the server: the next one is served.
        let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let started = Instant::now();
        let ok = exchange(addr, b"GET /open HTTP/1.0\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
        drop(idle);
        let rebound = exchange(addr, b"GET /x HTTP/1.1\r\nHost: evil.example:80\r\n\r\n");
        assert!(
            rebound.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
            "{rebound}"
        );
        assert!(!rebound.contains("q="), "{rebound}");
    }

    #[test]
    fn a_bad_address_is_a_clear_error() {
        let err = serve("no-port-here", "--http", site()).unwrap_err();
        assert!(err.starts_with("--http: 'no-port-here' is not a host:port address"));
    }
}
