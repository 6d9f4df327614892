//! Test support: one HTTP/1.1 request to the command's endpoints over
//! loopback, every read and write bounded.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;

use super::process::T;

/// Sends `request` to `addr` (host:port); returns the status line, the
/// headers and the body.
pub fn request(addr: &str, request: &[u8]) -> (String, String, String) {
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

/// `GET path` from `addr`, with `Host: addr` as a browser sends it.
pub fn get(addr: &str, path: &str) -> (String, String, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    request(addr, head.as_bytes())
}

/// The body of `GET path` from `addr`, which must answer `200 OK`.
pub fn get_ok(addr: &str, path: &str) -> String {
    let (status, _, body) = get(addr, path);
    assert_eq!(status, "HTTP/1.1 200 OK", "GET {path}: {body}");
    body
}
