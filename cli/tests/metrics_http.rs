//! `zgossip node --metrics ADDR`: the metrics endpoint fetched over
//! loopback (every wait and read bounded).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use support::http::{get, request as http};
use support::process::{run, Proc, T};

#[test]
fn the_metrics_endpoint_serves_the_text_and_refuses_the_rest() {
    let a = Proc::node(&[
        "--bind",
        "tcp://127.0.0.1:*",
        "--publish",
        "from-a=1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let ep = a.expect_prefix("bound ");
    let url = a.expect_prefix("metrics at http://");
    let addr = url.trim_end_matches("/metrics").to_string();
    let b = Proc::node(&["--connect", &ep, "--publish", "from-b=2"]);
    b.expect_prefix("from-a = 1");
    a.expect_prefix("from-b = 2");

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
fn the_metrics_endpoint_answers_ip_addresses_localhost_and_the_names_given() {
    let a = Proc::node(&["--metrics", "127.0.0.1:0", "--http-host", "Gossip.Example"]);
    let url = a.expect_prefix("metrics at http://");
    let addr = url.trim_end_matches("/metrics").to_string();
    let with_host = |host: &str| {
        let head = format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n");
        http(&addr, head.as_bytes())
    };
    for host in [
        addr.as_str(),
        "localhost:9464",
        "[::1]",
        "gossip.example:9464",
    ] {
        let (status, _, body) = with_host(host);
        assert_eq!(status, "HTTP/1.1 200 OK", "{host}");
        assert!(body.contains("# TYPE zgossip_tuples gauge"), "{host}");
    }
    // A rebound name: refused, nothing of the node in the answer.
    let (status, _, body) = with_host("evil.example:9464");
    assert_eq!(status, "HTTP/1.1 421 Misdirected Request");
    assert!(!body.contains("zgossip_"), "{body}");
    // An HTTP/1.0 scraper that sends no Host is answered.
    let (status, _, body) = http(&addr, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("# TYPE zgossip_tuples gauge"));
}

#[test]
fn a_bad_http_host_is_a_usage_error() {
    let args = [
        "node",
        "--no-control",
        "--metrics",
        "127.0.0.1:0",
        "--http-host",
        "a:80",
    ];
    let (code, _, err) = run(&args);
    assert_eq!(code, 2);
    assert!(err.contains("'a:80' is not a host name"), "{err}");
}

#[test]
fn a_bad_metrics_address_is_a_clear_error() {
    let (code, _, err) = run(&["node", "--no-control", "--metrics", "no-port-here"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("--metrics: 'no-port-here' is not a host:port address"),
        "{err}"
    );
}
