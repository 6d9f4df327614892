//! Dual stack discovery (`DISCOVER ipv6=both`) and beacons that carry the
//! advertised endpoint (version 5). Every test runs inside network
//! namespaces it creates (tests/support/netns.rs): nothing leaves the
//! machine. Without root, iproute2 or IPv6 in namespaces these tests skip,
//! saying so; under `CI=true` they fail, naming what is missing.

mod common;
#[path = "support/netns.rs"]
mod netns;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::wait_until;
use netns::cmd::{ip_in, run_bounded};
use netns::{assert_passed, inside, skip, Lan};
use zgossip::{MemberState, Node};

fn stat(n: &Node, name: &str) -> u64 {
    n.stats().unwrap().get(name).copied().unwrap_or(0)
}

/// The members a node lists, by name, with their states and endpoints.
fn members(n: &Node) -> BTreeMap<String, (MemberState, String)> {
    n.members()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, (m.state, m.endpoint)))
        .collect()
}

/// Waits (at most 40 s) for `done`; fails showing the node's keys,
/// members and stats if it never is.
fn converge(node: &Node, role: &str, done: impl FnMut() -> bool) {
    assert!(
        wait_until(Duration::from_secs(40), done),
        "host {role}: keys {:?}, members {:?}, stats {:?}",
        node.keys(""),
        members(node),
        node.stats()
    );
}

/// Waits (bounded) for every host of the test to have written its
/// `done-i` file, after writing this one's.
fn done_and_wait(dir: &Path, role: &str, hosts: usize) {
    std::fs::write(dir.join(format!("done-{role}")), b"").unwrap();
    assert!(
        wait_until(Duration::from_secs(40), || {
            (0..hosts).all(|i| dir.join(format!("done-{i}")).exists())
        }),
        "not every host finished"
    );
    std::thread::sleep(Duration::from_millis(300));
}

/// Spawns every host's part (bounded in time) and checks that each passed.
fn run_hosts(test: &str, lan: &Lan, dir: &Path) {
    let dir_s = dir.to_string_lossy().into_owned();
    let handles: Vec<_> = (0..lan.hosts.len())
        .map(|i| {
            let c = lan.hosts[i].test_command(test, &i.to_string(), &[("ZG_DIR", &dir_s)]);
            std::thread::spawn(move || run_bounded(c, Duration::from_secs(100)))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_passed(&format!("{test} host {i}"), &h.join().unwrap());
    }
}

/// The parent's part of a test: a LAN of `hosts`, changed by `setup`
/// (a failure there is a reason to skip, as a failure to make the LAN
/// is), then every host's part run with a scratch directory `tag`.
fn run_on_lan(test: &str, hosts: usize, tag: &str, setup: impl FnOnce(&Lan) -> Result<(), String>) {
    let lan = match Lan::new(hosts) {
        Ok(l) => l,
        Err(why) => return skip(&why),
    };
    if let Err(why) = setup(&lan) {
        return skip(&why);
    }
    let dir = netns::temp_dir(tag);
    run_hosts(test, &lan, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

fn test_dir() -> PathBuf {
    PathBuf::from(std::env::var("ZG_DIR").unwrap())
}

/// Four hosts on one bridge: host 0 has IPv4 only and beacons IPv4
/// broadcast, host 1 has IPv6 only (fd77::2) and beacons IPv6 multicast,
/// hosts 2 and 3 have both and beacon both. Hosts 0 and 1 never hear each
/// other and cannot reach each other; they meet through the dual nodes.
/// Every node ends up listing all four members alive and holding every
/// node's tuple; a dual node counts each other dual node once.
#[test]
fn ipv4_only_ipv6_only_and_dual_stack_nodes_form_one_network() {
    const T: &str = "ipv4_only_ipv6_only_and_dual_stack_nodes_form_one_network";
    const HOSTS: usize = 4;
    if let Some(role) = inside(T) {
        let args: &[&str] = match role.as_str() {
            "0" => &["ipv6=0"],
            "1" => &["ipv6=1"],
            _ => &["ipv6=both"],
        };
        let node = Node::new(&format!("host{role}")).unwrap();
        // Loud beacons (quiet-interval=0): every node hears every other
        // it can, however soon the overlay links them.
        let mut frames = vec![
            "DISCOVER",
            "interface=eth0",
            "interval=100",
            "quiet-interval=0",
        ];
        frames.extend_from_slice(args);
        node.send(&frames).unwrap();
        node.publish(&format!("host/{role}"), &role).unwrap();
        let all_alive = |n: &Node| {
            let m = members(n);
            m.len() == HOSTS && m.values().all(|(s, _)| *s == MemberState::Alive)
        };
        converge(&node, &role, || {
            node.keys("").unwrap().len() == HOSTS && all_alive(&node)
        });
        // Peers heard by discovery: each other host once, whatever the
        // families it was heard over; the single-family hosts never hear
        // each other.
        let heard = |n: &Node| {
            let peers = stat(n, "discovery-peers");
            let (v4, v6) = (
                stat(n, "discovery-beacons-ipv4"),
                stat(n, "discovery-beacons-ipv6"),
            );
            match role.as_str() {
                "0" => peers == 2 && v4 > 0 && v6 == 0,
                "1" => peers == 2 && v4 == 0 && v6 > 0,
                _ => peers == 3 && v4 > 0 && v6 > 0,
            }
        };
        assert!(
            wait_until(Duration::from_secs(10), || heard(&node)),
            "host {role}: {:?}",
            node.stats()
        );
        std::thread::sleep(Duration::from_millis(500));
        assert!(heard(&node), "host {role}: {:?}", node.stats());
        // A tuple written now reaches everyone, through the dual nodes
        // for the single-family ones.
        node.publish(&format!("late/{role}"), "x").unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || node
                .keys("late/")
                .unwrap()
                .len()
                == HOSTS),
            "host {role}: {:?}",
            node.keys("")
        );
        done_and_wait(&test_dir(), &role, HOSTS);
        return;
    }
    // Host 0: IPv4 only. Host 1: IPv6 only.
    run_on_lan(T, HOSTS, "dual", |lan| {
        let (h0, h1) = (&lan.hosts[0].name, &lan.hosts[1].name);
        ip_in(h0, &["-6", "addr", "del", "fd77::1/64", "dev", "eth0"])?;
        ip_in(h1, &["addr", "del", "10.77.0.2/24", "dev", "eth0"])?;
        ip_in(h1, &["-4", "route", "flush", "dev", "eth0"])
    });
}

/// Host 0 advertises `tcp://10.77.9.1:7001`, an address of its own that
/// is not the source of its beacons (10.77.0.1, fd77::1), and listens
/// there only; it beacons both families. Host 1 (IPv4 only) and host 2
/// (both) take its version 5 beacons, and the three form one network.
#[test]
fn a_node_is_dialled_at_its_advertised_endpoint_not_its_beacon_source() {
    const T: &str = "a_node_is_dialled_at_its_advertised_endpoint_not_its_beacon_source";
    const HOSTS: usize = 3;
    const ADVERTISED: &str = "tcp://10.77.9.1:7001";
    if let Some(role) = inside(T) {
        let node = Node::new(&format!("host{role}")).unwrap();
        if role == "0" {
            node.send(&["BIND", ADVERTISED]).unwrap();
            node.send(&["SET", "overlay/advertise", ADVERTISED])
                .unwrap();
        }
        let family = if role == "1" { "ipv6=0" } else { "ipv6=both" };
        node.send(&[
            "DISCOVER",
            "interface=eth0",
            "interval=100",
            "quiet-interval=0",
            family,
        ])
        .unwrap();
        node.publish(&format!("host/{role}"), &role).unwrap();
        converge(&node, &role, || {
            node.keys("").unwrap().len() == HOSTS
                && members(&node).get("host0").map(|m| m.1.as_str()) == Some(ADVERTISED)
        });
        // Every other host was heard (over one family or two: one peer
        // each), and host 0's version 5 beacons were taken.
        assert!(
            wait_until(Duration::from_secs(10), || stat(&node, "discovery-peers")
                == 2),
            "{:?}",
            node.stats()
        );
        assert_eq!(stat(&node, "discovery-rejected"), 0, "{:?}", node.stats());
        done_and_wait(&test_dir(), &role, HOSTS);
        return;
    }
    // Host 0 gets a second address; host 1 has IPv4 only.
    run_on_lan(T, HOSTS, "adv", |lan| {
        let (h0, h1) = (&lan.hosts[0].name, &lan.hosts[1].name);
        ip_in(h0, &["addr", "add", "10.77.9.1/32", "dev", "eth0"])?;
        ip_in(h1, &["-6", "addr", "del", "fd77::2/64", "dev", "eth0"])
    });
}

/// Host 0 is not a node: a TCP listener on `10.77.9.1:7001` alone (an
/// address that is not the beacons' source, 10.77.0.1) and a UDP socket
/// that broadcasts version 5 beacons advertising that endpoint, flagged
/// "looking". The node on host 1, alone, dials the first peer it finds:
/// the connection arrives at the advertised endpoint (a dial to the
/// source address would be refused: nothing listens there).
#[test]
fn a_discovered_peer_is_dialled_at_the_endpoint_its_beacon_advertises() {
    const T: &str = "a_discovered_peer_is_dialled_at_the_endpoint_its_beacon_advertises";
    const HOSTS: usize = 2;
    if let Some(role) = inside(T) {
        if role == "1" {
            let node = Node::new("host1").unwrap();
            node.send(&["DISCOVER", "interface=eth0", "interval=100"])
                .unwrap();
            assert!(wait_until(Duration::from_secs(20), || stat(
                &node,
                "discovery-peers"
            ) == 1));
            done_and_wait(&test_dir(), &role, HOSTS);
            return;
        }
        let listener = std::net::TcpListener::bind("10.77.9.1:7001").unwrap();
        listener.set_nonblocking(true).unwrap();
        let udp = std::net::UdpSocket::bind("10.77.0.1:0").unwrap();
        udp.set_broadcast(true).unwrap();
        let id = 0x0707_0707_0707_0707;
        let mut beacon = zgossip::beacon::frame::encode_advertised(
            7001,
            id,
            None,
            "",
            id,
            "tcp://10.77.9.1:7001",
        );
        zgossip::beacon::frame::set_flag(&mut beacon, zgossip::beacon::frame::FLAG_LOOKING, true);
        let mut from = None;
        for _ in 0..200 {
            udp.send_to(&beacon, "10.77.0.255:5675").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            if let Ok((_, peer)) = listener.accept() {
                from = Some(peer.ip());
                break;
            }
        }
        assert_eq!(
            from,
            Some("10.77.0.2".parse().unwrap()),
            "host 1 never dialled the advertised endpoint"
        );
        done_and_wait(&test_dir(), &role, HOSTS);
        return;
    }
    run_on_lan(T, HOSTS, "advdial", |lan| {
        ip_in(
            &lan.hosts[0].name,
            &["addr", "add", "10.77.9.1/32", "dev", "eth0"],
        )
    });
}
