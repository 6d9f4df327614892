//! `zgossip node --metrics ADDR`: the metrics endpoint fetched over
//! loopback (every wait and read bounded).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");
const T: Duration = Duration::from_secs(10);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `zgossip node` with `args`; returns it and its stdout lines.
fn node(args: &[&str]) -> (Killed, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg("node")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Killed(child), rx)
}

fn expect(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.starts_with(prefix) => return l[prefix.len()..].to_string(),
            Ok(_) => {}
            Err(_) => panic!("no line '{prefix}...' within {T:?}"),
        }
    }
}

/// Sends `request` to `addr`; returns the status line, headers and body.
fn http(addr: &str, request: &[u8]) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.take(16 << 20).read_to_end(&mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect(&out);
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

fn get(addr: &str, path: &str) -> (String, String, String) {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

#[test]
fn the_metrics_endpoint_serves_the_text_and_refuses_the_rest() {
    let (a, a_lines) = node(&[
        "--bind",
        "tcp://127.0.0.1:*",
        "--publish",
        "from-a=1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let ep = expect(&a_lines, "bound ");
    let url = expect(&a_lines, "metrics at http://");
    let addr = url.trim_end_matches("/metrics").to_string();
    let (_b, b_lines) = node(&["--connect", &ep, "--publish", "from-b=2"]);
    expect(&b_lines, "from-a = 1");
    expect(&a_lines, "from-b = 2");

    let (status, headers, body) = get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("Content-Type: text/plain; version=0.0.4"),
        "{headers}"
    );
    assert!(
        headers.contains(&format!("Content-Length: {}", body.len())),
        "{headers}"
    );
    assert!(body.contains("\nzgossip_tuples 2\n"), "{body}");
    assert!(
        body.contains("\nzgossip_tuples_applied_total 1\n"),
        "{body}"
    );
    assert!(
        body.contains("\nzgossip_propagation_delay_seconds_count 1\n"),
        "{body}"
    );
    assert!(
        body.contains("zgossip_link_frames_in_total{conn="),
        "{body}"
    );

    let (status, _, body) = get(&addr, "/metrics?x=1");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("# TYPE zgossip_tuples gauge"));
    let (status, headers, body) = http(&addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.is_empty() && headers.contains("Content-Length: "));
    assert_eq!(get(&addr, "/").0, "HTTP/1.1 404 Not Found");
    assert_eq!(get(&addr, "/metricsx").0, "HTTP/1.1 404 Not Found");
    let post = http(
        &addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.0, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(
        http(&addr, b"nonsense\r\n\r\n").0,
        "HTTP/1.1 400 Bad Request"
    );
    // A head larger than the bound is refused, not read on for ever.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let _ = s.write_all(&big);
    let mut out = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A client that sends nothing is dropped after the bound, and the
    // endpoint serves the next one.
    let idle = TcpStream::connect(&addr).unwrap();
    let started = Instant::now();
    let (status, _, _) = get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(started.elapsed() < T, "{:?}", started.elapsed());
    drop(idle);
    drop(a);
}

#[test]
fn a_bad_metrics_address_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["node", "--metrics", "no-port-here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics: 'no-port-here' is not a host:port address"),
        "{err}"
    );
}
