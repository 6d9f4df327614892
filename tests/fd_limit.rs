//! At the process's descriptor limit a node refuses new connections
//! promptly (they are accepted and closed at once, with a spare
//! descriptor the process keeps), instead of leaving them hanging; the
//! trace and `STATS fd-refused` say so. Its own test binary: it lowers
//! this process's descriptor limit (with util-linux's `prlimit`).

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use zgossip::Node;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// This process's soft descriptor limit (the hard one stays: raising it
/// back would need a privilege a sandbox may not have).
fn soft_nofile() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn set_nofile(n: usize) {
    let pid = std::process::id().to_string();
    let ok = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={n}:")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prlimit (util-linux) is needed to lower the descriptor limit");
    }
    assert!(ok, "prlimit failed; install util-linux");
}

#[test]
fn at_the_descriptor_limit_connections_are_refused_promptly() {
    let node = Node::new("n").unwrap();
    let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let before = open_fds();
    let soft = soft_nofile();
    set_nofile(before + 40);
    // Use up the descriptors, leaving one for the client's socket.
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
        assert!(hog.len() < 100, "the limit did not take");
    }
    hog.pop();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let closed = loop {
        match client.read(&mut buf) {
            Ok(0) => break true,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            _ if start.elapsed() > Duration::from_secs(5) => break false,
            _ => {}
        }
    };
    drop(hog);
    set_nofile(soft);
    assert!(closed, "the connection hangs at the descriptor limit");
    assert_eq!(node.stats().unwrap().get("fd-refused").copied(), Some(1));
    // With descriptors again, the node serves as before.
    let other = Node::new("other").unwrap();
    other.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    node.publish("k", "v").unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while other.get("k").unwrap().is_none() {
        assert!(
            Instant::now() < end,
            "the node does not serve after the limit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
