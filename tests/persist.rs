//! Persistence end to end (docs/persistence.md): real nodes reopened from
//! the same data directory. Tuples, TTL expiry on load, deletes that stay
//! deleted, versions deciding between disk and network, the lock, the
//! refusals, and a network of eight nodes stopped and started again.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::wait_until;
use zgossip::Node;

/// A fresh directory under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let mut id = [0u8; 8];
        getrandom::getrandom(&mut id).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "zgossip-persist-{name}-{:016x}",
            u64::from_le_bytes(id)
        ));
        let _ = fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A node keeping its tuples in `dir`.
fn node_in(name: &str, dir: &str) -> Node {
    let node = Node::new(name).unwrap();
    node.send(&["SET", "store/path", dir]).unwrap();
    node
}

fn stat(node: &Node, name: &str) -> u64 {
    node.stats().unwrap()[name]
}

fn term(node: Node) {
    node.send(&["$TERM"]).unwrap();
}

#[test]
fn tuples_ttls_and_deletes_survive_a_reopen() {
    let dir = TempDir::new("reopen");
    let a = node_in("a", dir.path());
    a.publish("plain", "1").unwrap();
    a.publish("gone", "2").unwrap();
    a.publish("plain", "1b").unwrap();
    a.publish_ttl("short", "3", Duration::from_millis(300))
        .unwrap();
    a.publish_ttl("long", "4", Duration::from_secs(600))
        .unwrap();
    a.unpublish("gone").unwrap();
    assert_eq!(a.status().unwrap(), 3);
    // Handed to the system within the fsync interval.
    assert!(wait_until(Duration::from_secs(5), || stat(
        &a,
        "store-records-written"
    ) == 6));
    term(a);
    std::thread::sleep(Duration::from_millis(400));

    let a = node_in("a-again", dir.path());
    // Served at once, before any network.
    assert_eq!(a.get("plain").unwrap().as_deref(), Some("1b"));
    assert_eq!(a.get("long").unwrap().as_deref(), Some("4"));
    assert_eq!(a.get("gone").unwrap(), None, "deleted stays deleted");
    assert_eq!(a.get("short").unwrap(), None, "expired while away");
    assert_eq!(a.status().unwrap(), 2);
    let s = a.stats().unwrap();
    assert_eq!(s["store-loaded"], 6, "{s:?}");
    assert_eq!(s["store-expired-on-load"], 1);
    assert_eq!(s["tombstones"], 2, "the delete and the expiry");
    assert_eq!(s["store-torn-tails"], 0);
    // The node's own clock moved past what it read: its next write wins.
    a.publish("plain", "after").unwrap();
    assert_eq!(a.get("plain").unwrap().as_deref(), Some("after"));
    term(a);
    let a = node_in("a-third", dir.path());
    assert_eq!(a.get("plain").unwrap().as_deref(), Some("after"));
    assert_eq!(a.get("gone").unwrap(), None);
    term(a);
}

#[test]
fn a_second_node_is_refused_the_same_directory() {
    let dir = TempDir::new("lock");
    let a = node_in("a", dir.path());
    let b = Node::new("b").unwrap();
    let e = b
        .send(&["SET", "store/path", dir.path()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("in use by another node"), "{e}");
    // Refused: the setting did not take, and B can still be given it.
    term(a);
    b.send(&["SET", "store/path", dir.path()]).unwrap();
    term(b);
}

#[test]
fn settings_are_checked_and_the_directory_cannot_change() {
    let dir = TempDir::new("settings");
    let other = TempDir::new("settings-other");
    let a = Node::new("a").unwrap();
    for (value, says) in [
        ("0", "between 1 and 60000, got '0'"),
        ("soon", "'always', 'never' or a number of milliseconds"),
    ] {
        let e = a
            .send(&["SET", "store/fsync", value])
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{value}: {e}");
    }
    a.send(&["SET", "store/fsync", "always"]).unwrap();
    a.send(&["SET", "store/path", dir.path()]).unwrap();
    a.send(&["SET", "store/path", dir.path()]).unwrap();
    let e = a
        .send(&["SET", "store/path", other.path()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot change while it runs"), "{e}");
    a.publish("k", "v").unwrap();
    a.send(&["SET", "store/fsync", "never"]).unwrap();
    assert!(stat(&a, "store-fsyncs") >= 1, "always: synced at once");
    term(a);
    // A file where the directory should be.
    let file = TempDir::new("not-a-dir");
    fs::write(&file.0, b"x").unwrap();
    let e = Node::new("b")
        .unwrap()
        .send(&["SET", "store/path", file.path()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot create data directory"), "{e}");
    let _ = fs::remove_file(&file.0);
}

/// The data file of a directory.
fn data_file(dir: &TempDir) -> PathBuf {
    Path::new(dir.path()).join("tuples.zgp")
}

#[test]
fn a_torn_tail_is_cut_and_damage_or_a_newer_format_is_an_error_naming_the_file() {
    let dir = TempDir::new("damage");
    let a = node_in("a", dir.path());
    for i in 0..10 {
        a.publish(&format!("k{i}"), &format!("v{i}")).unwrap();
    }
    term(a);
    let path = data_file(&dir);
    let good = fs::read(&path).unwrap();
    // Half a record at the end: cut, counted, the rest loaded.
    let mut torn = good.clone();
    torn.extend_from_slice(&good[16..40]);
    fs::write(&path, &torn).unwrap();
    let a = node_in("a", dir.path());
    assert_eq!(a.status().unwrap(), 10);
    assert_eq!(stat(&a, "store-torn-tails"), 1);
    term(a);
    assert_eq!(fs::read(&path).unwrap(), good, "the tail was cut on disk");
    // A flipped bit in the first record: damage before good records.
    let mut bad = good.clone();
    bad[30] ^= 4;
    fs::write(&path, &bad).unwrap();
    let e = Node::new("b")
        .unwrap()
        .send(&["SET", "store/path", dir.path()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains("damaged at offset 16"),
        "{e}"
    );
    // A newer format.
    let mut newer = good.clone();
    newer[11] = 9;
    fs::write(&path, &newer).unwrap();
    let e = Node::new("c")
        .unwrap()
        .send(&["SET", "store/path", dir.path()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("format 9, newer than this zgossip reads"), "{e}");
    fs::write(&path, &good).unwrap();
    let a = node_in("a", dir.path());
    assert_eq!(a.status().unwrap(), 10, "nothing was lost meanwhile");
    term(a);
}

#[test]
fn versions_decide_between_disk_and_network() {
    let dir = TempDir::new("versions");
    let a = node_in("a", dir.path());
    a.publish("shared", "from-disk").unwrap();
    a.publish("only-a", "a").unwrap();
    term(a);
    // Written later elsewhere: newer.
    let p = Node::new("p").unwrap();
    let port = p.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    p.publish("shared", "from-network").unwrap();
    p.publish("only-p", "p").unwrap();
    let a = node_in("a", dir.path());
    assert_eq!(a.get("shared").unwrap().as_deref(), Some("from-disk"));
    a.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        a.get("shared").unwrap().as_deref() == Some("from-network")
            && a.get("only-p").unwrap().is_some()
            && p.get("only-a").unwrap().is_some()
    }));
    assert_eq!(p.get("shared").unwrap().as_deref(), Some("from-network"));
    term(a);
    // What came from the network is on disk too.
    let a = node_in("a", dir.path());
    assert_eq!(a.get("shared").unwrap().as_deref(), Some("from-network"));
    assert_eq!(a.get("only-p").unwrap().as_deref(), Some("p"));
    term(a);
    term(p);
}

#[test]
fn tuples_held_before_the_directory_is_set_are_written_to_it() {
    let dir = TempDir::new("before");
    let a = Node::new("a").unwrap();
    a.publish("early", "1").unwrap();
    a.send(&["SET", "store/path", dir.path()]).unwrap();
    assert_eq!(stat(&a, "store-compactions"), 1);
    term(a);
    let a = node_in("a", dir.path());
    assert_eq!(a.get("early").unwrap().as_deref(), Some("1"));
    term(a);
}

#[test]
fn a_network_of_eight_stopped_and_started_again_holds_what_it_held() {
    let dirs: Vec<TempDir> = (0..8).map(|i| TempDir::new(&format!("net{i}"))).collect();
    let start = |connect: bool| -> Vec<Node> {
        let nodes: Vec<Node> = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| node_in(&format!("n{i}"), d.path()))
            .collect();
        if connect {
            let ports: Vec<u16> = nodes
                .iter()
                .map(|n| n.bind("tcp://127.0.0.1:*").unwrap().unwrap())
                .collect();
            // A ring.
            for (i, n) in nodes.iter().enumerate() {
                n.connect(&format!("tcp://127.0.0.1:{}", ports[(i + 1) % 8]))
                    .unwrap();
            }
        }
        nodes
    };
    let nodes = start(true);
    for (i, n) in nodes.iter().enumerate() {
        for k in 0..25 {
            n.publish(&format!("n{i}/k{k}"), &format!("v{k}")).unwrap();
        }
        n.publish_ttl(&format!("n{i}/brief"), "x", Duration::from_millis(500))
            .unwrap();
        n.publish_ttl(&format!("n{i}/lasting"), "y", Duration::from_secs(600))
            .unwrap();
        n.unpublish(&format!("n{i}/k0")).unwrap();
    }
    // 8 x (24 + brief + lasting).
    let all = 8 * 26;
    assert!(
        wait_until(Duration::from_secs(20), || nodes
            .iter()
            .all(|n| n.status().unwrap() == all)),
        "{:?}",
        nodes
            .iter()
            .map(|n| n.status().unwrap())
            .collect::<Vec<_>>()
    );
    for n in nodes {
        term(n);
    }
    std::thread::sleep(Duration::from_millis(600));
    // Started again, apart: each holds everything, the brief ones gone,
    // the deleted ones still deleted.
    let nodes = start(false);
    for n in &nodes {
        assert_eq!(n.status().unwrap(), 8 * 25);
        for i in 0..8 {
            assert_eq!(n.get(&format!("n{i}/k0")).unwrap(), None);
            assert_eq!(n.get(&format!("n{i}/brief")).unwrap(), None);
            assert_eq!(
                n.get(&format!("n{i}/lasting")).unwrap().as_deref(),
                Some("y")
            );
            assert_eq!(n.get(&format!("n{i}/k24")).unwrap().as_deref(), Some("v24"));
        }
    }
    for n in nodes {
        term(n);
    }
}
