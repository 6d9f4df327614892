//! Our CURVE against libzmq's (system libzmq 4.3.x), both ways, carrying
//! ZGP: tests/czmq/curve_peer.c is a libzmq ROUTER (CURVE server) or DEALER
//! (CURVE client) speaking ZGP v1 by hand. Loopback only, bounded waits.

mod common;
#[path = "support/czmq.rs"]
mod czmq;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use zgossip::Node;

const T: Duration = Duration::from_secs(10);

struct Peer {
    child: Child,
    lines: Receiver<String>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let tool = czmq::build_c_tool("curve_peer");
        let mut child = Command::new(tool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start curve_peer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer { child, lines }
    }

    /// Waits for a line starting with `prefix`.
    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => panic!("curve_peer never printed '{prefix}'"),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Closing stdin ends it; kill is the fallback.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn our_curve_client_to_libzmq_router() {
    if !czmq::require_czmq() {
        return;
    }
    let (public, secret) = zgossip::certs::keypair().unwrap();
    let router = Peer::spawn(&["server", &secret, &public]);
    let port = router.expect("PORT ")[5..].to_string();
    let ours = Node::new("ours").unwrap();
    ours.send(&["VERBOSE"]).unwrap();
    ours.publish("from-ours", "zgossip").unwrap();
    ours.send(&["CONNECT", &format!("tcp://127.0.0.1:{port}"), &public])
        .unwrap();
    // libzmq opened our boxes: it printed our tuple, and we opened its.
    assert_eq!(router.expect("PUBLISH "), "PUBLISH from-ours zgossip");
    common::wait_status(&ours, 2, T);
    assert_eq!(ours.get("from-router").unwrap().as_deref(), Some("libzmq"));
}

#[test]
fn libzmq_dealer_to_our_curve_server() {
    if !czmq::require_czmq() {
        return;
    }
    let ours = Node::new("ours").unwrap();
    let (public, secret) = zgossip::certs::keypair().unwrap();
    ours.send(&["SET SECRETKEY", &secret]).unwrap();
    let (client_public, client_secret) = zgossip::certs::keypair().unwrap();
    ours.send(&["CURVE ALLOW", &client_public]).unwrap();
    let port = ours.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    ours.publish("from-ours", "zgossip").unwrap();
    let ep = format!("tcp://127.0.0.1:{port}");
    let dealer = Peer::spawn(&["client", &ep, &public, &client_public, &client_secret]);
    assert_eq!(dealer.expect("PUBLISH "), "PUBLISH from-ours zgossip");
    common::wait_status(&ours, 2, T);
    assert_eq!(ours.get("from-dealer").unwrap().as_deref(), Some("libzmq"));

    // A libzmq client with an unlisted key gets nothing.
    let (other_public, other_secret) = zgossip::certs::keypair().unwrap();
    let stranger = Peer::spawn(&["client", &ep, &public, &other_public, &other_secret]);
    assert!(
        stranger
            .lines
            .recv_timeout(Duration::from_millis(1500))
            .is_err(),
        "an unlisted libzmq client received gossip"
    );
    assert_eq!(common::status(&ours), 2);
}
