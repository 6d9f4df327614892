//! LOAD, SET, SAVE and reload-on-change on a running node.

mod common;
#[path = "support/czmq.rs"]
mod czmq;

use std::time::{Duration, Instant};

use common::*;
use zgossip::config::Config;
use zgossip::{ErrorKind, Node};

const T: Duration = Duration::from_secs(5);

/// A scratch directory for one test, removed when the test ends (pass or fail).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("zgossip-cfg-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn save_then_load_round_trips() {
    let dir = Scratch::new();
    let a = Node::new("a").unwrap();
    a.send(&["SET", "server/timeout", "500"]).unwrap();
    a.send(&["SET", "app/name", "hello world"]).unwrap();
    let f = dir.file("a.cfg");
    a.send(&["SAVE", f.as_str()]).unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("timeout = \"500\""), "{text}");
    assert!(text.contains("name = \"hello world\""), "{text}");
    let b = Node::new("b").unwrap();
    b.send(&["LOAD", f.as_str()]).unwrap();
    let g = dir.file("b.cfg");
    b.send(&["SAVE", g.as_str()]).unwrap();
    let loaded = Config::load(&g).unwrap();
    assert_eq!(loaded.get("server/timeout"), Some("500"));
    assert_eq!(loaded.get("app/name"), Some("hello world"));
    // As zconfig, a bare section read back is saved as `name = ""`; from
    // there on SAVE and LOAD are a fixed point.
    let c = Node::new("c").unwrap();
    c.send(&["LOAD", g.as_str()]).unwrap();
    let h = dir.file("c.cfg");
    c.send(&["SAVE", h.as_str()]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&h).unwrap(),
        std::fs::read_to_string(&g).unwrap()
    );
}

#[test]
fn fresh_node_saves_czmq_default_tree() {
    let dir = Scratch::new();
    let n = Node::new("n").unwrap();
    let f = dir.file("n.cfg");
    n.send(&["SAVE", f.as_str()]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "server\n    timeout = \"1000\"\n"
    );
}

#[test]
fn load_binds_configured_endpoints_and_applies_timeout() {
    let dir = Scratch::new();
    let name = format!("inproc://cfg-{}", unique());
    let f = dir.file("bind.cfg");
    std::fs::write(
        &f,
        format!(
            "#   A zgossip node\n\nserver\n    timeout = 30\nzgossip\n    bind\n        endpoint = \"{name}\"\n"
        ),
    )
    .unwrap();
    let n = Node::new("n").unwrap();
    n.send(&["LOAD", f.as_str()]).unwrap();
    n.publish("k", "v").unwrap();
    let c = Node::new("c").unwrap();
    c.connect(&name).unwrap();
    wait_status(&c, 1, T);
}

#[test]
fn bad_files_and_values_are_errors_and_change_nothing() {
    let dir = Scratch::new();
    let n = Node::new("n").unwrap();
    let e = n.send(&["LOAD", "/nonexistent/zgossip.cfg"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("/nonexistent/zgossip.cfg"), "{e}");
    let f = dir.file("bad.cfg");
    std::fs::write(&f, "server\n  timeout = 1\n").unwrap();
    let e = n.send(&["LOAD", f.as_str()]).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    std::fs::write(&f, "server\n    timeout = soon\n").unwrap();
    let e = n.send(&["LOAD", f.as_str()]).unwrap_err();
    assert!(e.to_string().contains("server/timeout"), "{e}");
    let e = n.send(&["SET", "a//b", "x"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = n.send(&["SAVE", "/nonexistent/dir/x.cfg"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    // The tree is unchanged.
    let g = dir.file("after.cfg");
    n.send(&["SAVE", g.as_str()]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&g).unwrap(),
        "server\n    timeout = \"1000\"\n"
    );
}

#[test]
fn changed_file_is_reloaded() {
    let dir = Scratch::new();
    let f = dir.file("live.cfg");
    std::fs::write(&f, "server\n    timeout = 1000\n").unwrap();
    let n = Node::new("n").unwrap();
    n.send(&["LOAD", f.as_str()]).unwrap();
    n.publish("k", "v").unwrap();
    // Rewrite the file with a bind (a different size, so the change shows
    // even within the same second of mtime).
    let name = format!("inproc://reload-{}", unique());
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(
        &f,
        format!("server\n    timeout = 1000\nzgossip\n    bind\n        endpoint = \"{name}\"\n"),
    )
    .unwrap();
    let c = Node::new("c").unwrap();
    c.connect(&name).unwrap();
    let deadline = Instant::now() + T;
    while c.status().unwrap() < 1 {
        assert!(Instant::now() < deadline, "the node did not reload {f}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reads_a_file_written_by_czmq() {
    let dir = Scratch::new();
    if !czmq::require_czmq() {
        return;
    }
    let f = dir.file("czmq.cfg");
    let mut cz = czmq::CzmqNode::spawn("cz");
    cz.send(&["SET", "server/timeout", "300"]);
    cz.send(&["SET", "zgossip/bind/endpoint", "inproc://czmq-wrote-this"]);
    cz.send(&["SAVE", f.as_str()]);
    let deadline = Instant::now() + T;
    while !std::path::Path::new(&f).exists() {
        assert!(Instant::now() < deadline, "CZMQ did not save {f}");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let czmq_text = std::fs::read_to_string(&f).unwrap();
    let n = Node::new("n").unwrap();
    n.send(&["LOAD", f.as_str()]).unwrap();
    let g = dir.file("ours.cfg");
    n.send(&["SAVE", g.as_str()]).unwrap();
    let ours = Config::load(&g).unwrap();
    let theirs = Config::parse(&czmq_text).unwrap();
    for path in ["server/timeout", "zgossip/bind/endpoint"] {
        assert_eq!(ours.get(path), theirs.get(path), "{path}");
    }
    assert_eq!(ours.get("server/timeout"), Some("300"));
    // And the bind it describes took effect.
    let c = Node::new("c").unwrap();
    n.publish("k", "v").unwrap();
    c.connect("inproc://czmq-wrote-this").unwrap();
    wait_status(&c, 1, T);
}

#[test]
fn clock_drift_and_expired_grace_are_settings_and_their_counters_show() {
    let n = Node::new("n").unwrap();
    n.send(&["SET", "server/max-clock-drift", "5000"]).unwrap();
    n.send(&["SET", "server/expired-grace", "10000"]).unwrap();
    for path in ["server/max-clock-drift", "server/expired-grace"] {
        let e = n.send(&["SET", path, "soon"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains(path), "{e}");
    }
    let st = n.stats().unwrap();
    assert_eq!(st["future-versions"], 0);
    assert_eq!(st["expired-on-arrival"], 0);
}
