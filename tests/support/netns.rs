//! Test support: network namespaces, so that no beacon leaves the machine.
//! Include it with `#[path = "support/netns.rs"] mod netns;`.
//!
//! A test that sends beacons creates its own namespaces (unique names per
//! run, deleted on drop) and runs its body *inside* them by running this
//! very test binary again under `ip netns exec NAME`, with the env var
//! `ZG_NETNS_TEST` naming the test (and `ZG_NETNS_ROLE` saying which part
//! to play). Without root or `ip`, tests print why and skip (under
//! `CI=true` they fail, naming what is missing); they never fall back to the
//! machine's real interfaces.
//!
//! Shapes:
//! - [`Netns::sealed`]: only `lo`, up, with routes `default dev lo` and
//!   `224.0.0.0/4 dev lo` (source 127.0.0.1): broadcasts and multicasts
//!   loop back.
//! - [`Lan::new`]: `n` hosts, each with `lo` and `eth0` (10.77.0.i/24,
//!   fd77::i/64), joined by veth pairs on a bridge in a namespace of its
//!   own; default and multicast routes point at `eth0`.
#![allow(dead_code)]

#[path = "cmd.rs"]
pub mod cmd;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use cmd::{ip, ip_in};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The role this process plays, when it runs inside a namespace for
/// `test`: `Some(role)`; in the parent: `None`.
/// Panics if this process is not in a network namespace of its own (a
/// safety belt: a body that sends beacons never runs on the host's).
pub fn inside(test: &str) -> Option<String> {
    match std::env::var("ZG_NETNS_TEST") {
        Ok(t) if t == test => {
            // The parent told us its namespace; ours must differ.
            let ours = own_netns();
            let parent = std::env::var("ZG_NETNS_PARENT").ok();
            assert!(
                ours.is_some() && parent.is_some() && ours != parent,
                "ZG_NETNS_TEST is set but this process is in the host's network \
                 namespace: refusing to send beacons"
            );
            Some(std::env::var("ZG_NETNS_ROLE").unwrap_or_default())
        }
        _ => None,
    }
}

fn unique(tag: &str) -> String {
    format!(
        "zgt{}{}{}",
        std::process::id() % 100_000,
        tag,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// This process's network namespace (`net:[inode]`).
pub fn own_netns() -> Option<String> {
    std::fs::read_link("/proc/self/ns/net")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Says why a namespace test does not run: under `CI=true` a failure
/// naming the missing prerequisite, elsewhere a printed skip.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "cannot create network namespaces ({why}): under CI=true this is a \
             failure (needs root and iproute2)"
        );
    }
    eprintln!(
        "SKIPPED: cannot create network namespaces ({why}); this test sends \
         beacons and runs only inside namespaces it creates (needs root and \
         iproute2). It never falls back to the real network."
    );
}

impl Netns {
    /// An empty namespace.
    pub fn new(tag: &str) -> Result<Netns, String> {
        let name = unique(tag);
        ip(&["netns", "add", &name])?;
        Ok(Netns { name })
    }

    /// A namespace with only `lo`, up, and broadcast and multicast routed
    /// to it.
    pub fn sealed() -> Result<Netns, String> {
        let ns = Netns::new("s")?;
        let n = ns.name.as_str();
        ip_in(n, &["link", "set", "lo", "up"])?;
        // `src`: lo's address has host scope, so without it a datagram to
        // 255.255.255.255 from an unbound socket would leave from 0.0.0.0.
        for to in ["default", "224.0.0.0/4"] {
            ip_in(n, &["route", "add", to, "dev", "lo", "src", "127.0.0.1"])?;
        }
        Ok(ns)
    }

    /// Runs `program args` inside, with `env`.
    pub fn command(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs the test `test` of this binary inside, as `role`.
    pub fn test_command(&self, test: &str, role: &str, env: &[(&str, &str)]) -> Command {
        let exe = std::env::current_exe().expect("test binary path");
        let exe = exe.to_string_lossy().into_owned();
        let mut c = self.command(
            &exe,
            &[test, "--exact", "--nocapture", "--test-threads=1"],
            env,
        );
        c.env("ZG_NETNS_TEST", test)
            .env("ZG_NETNS_ROLE", role)
            .env("ZG_NETNS_PARENT", own_netns().unwrap_or_default());
        c
    }
}

/// Checks that a child test passed (its body ran and succeeded).
pub fn assert_passed(what: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{what} failed ({:?}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// Hosts on one bridged LAN.
pub struct Lan {
    // Hosts first: they go before the bridge namespace on drop.
    pub hosts: Vec<Netns>,
    pub bridge: Netns,
}

impl Lan {
    pub fn new(n: usize) -> Result<Lan, String> {
        let bridge = Netns::new("b")?;
        let b = bridge.name.clone();
        add_bridge(&b, "br0")?;
        let mut hosts = Vec::new();
        for i in 1..=n {
            let h = Netns::new("h")?;
            let name = h.name.clone();
            plug(&b, &format!("v{i}"), &name)?;
            let v4 = format!("10.77.0.{i}/24");
            ip_in(&name, &["addr", "add", &v4, "brd", "+", "dev", "eth0"])?;
            let v6 = format!("fd77::{i}/64");
            ip_in(&name, &["-6", "addr", "add", &v6, "dev", "eth0", "nodad"])?;
            ip_in(&name, &["link", "set", "eth0", "up"])?;
            ip_in(&name, &["route", "add", "default", "dev", "eth0"])?;
            ip_in(&name, &["route", "add", "224.0.0.0/4", "dev", "eth0"])?;
            hosts.push(h);
        }
        Ok(Lan { hosts, bridge })
    }
}

/// Adds bridge `br` to namespace `ns`, up.
pub fn add_bridge(ns: &str, br: &str) -> Result<(), String> {
    ip_in(ns, &["link", "add", br, "type", "bridge"])?;
    ip_in(ns, &["link", "set", br, "up"])
}

/// Plugs namespace `host` into bridge `br0` of namespace `bridge`: a veth
/// pair, `port` on the bridge (up), `eth0` in `host`; `host`'s `lo` up.
/// `eth0` stays down, for its addresses to be added first.
pub fn plug(bridge: &str, port: &str, host: &str) -> Result<(), String> {
    ip_in(
        bridge,
        &[
            "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host,
        ],
    )?;
    ip_in(bridge, &["link", "set", port, "master", "br0", "up"])?;
    ip_in(host, &["link", "set", "lo", "up"])
}

/// A fresh empty directory under the test temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique(tag));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
