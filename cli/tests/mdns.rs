//! mDNS / DNS-SD discovery (`DISCOVER mdns=1`, `zgossip node --discover
//! --mdns --no-beacon`) in network namespaces this test creates: hosts on
//! a private bridge (one veth each, no route out), so no multicast ever
//! reaches a real interface. The other implementation is python-zeroconf
//! (`cli/tests/mdns_peer.py`), which no one here wrote.
//!
//! - Our nodes find each other by mDNS alone (beacons off) and link, in
//!   plain and, on the same bridge, with CURVE (dialled with the key from
//!   the TXT record); plain and CURVE nodes ignore each other, counted.
//!   python-zeroconf browsing the bridge sees every node's service with
//!   its TXT records (`v`, `id`, `cluster`, `key`).
//! - python-zeroconf announces `_zgossip._tcp` services: one with only a
//!   port, pointing at a node started without discovery, which our mDNS
//!   node joins; and services with garbage TXT records (bad id, bad key,
//!   a key of the wrong length, too many keys, a bad version, a bad
//!   endpoint) and one of another cluster: ignored and counted, the node
//!   stays up.
//! - With `--discover-ipv6 both` (hosts with an IPv4 and a ULA IPv6
//!   address), nodes that beacon over both families and mDNS, and one
//!   with mDNS alone, form one network: each peer is one peer (same id,
//!   however heard), and the beacons of both families are counted.
//!
//! Needs root, iproute2 (`ip netns`) and python-zeroconf (PyPI
//! `zeroconf`, in the project's `.venv`; scripts/test.sh installs both).
//! Without them it skips saying why; under `CI=true` it fails naming what
//! is missing.

#[path = "support/bridge_net.rs"]
mod bridge_net;

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bridge_net::netns::cmd::{ip_in, run};
use bridge_net::BridgeNet;

const PORT: u16 = 5670;
/// How long a python-zeroconf helper runs at most (it is killed sooner).
const HELPER_SECONDS: &str = "120";

fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the mDNS test cannot run ({why}): under CI=true this is a failure \
             (it needs root, iproute2 and python-zeroconf in .venv; scripts/test.sh \
             installs them)"
        );
    }
    eprintln!(
        "SKIPPED: the mDNS test cannot run ({why}); it needs root, iproute2 and \
         python-zeroconf (.venv/bin/python -m pip install zeroconf). It never uses the \
         real network."
    );
}

/// A Python that has python-zeroconf: the project's `.venv` first.
fn zeroconf_python() -> Result<String, String> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let candidates = [venv.to_string_lossy().into_owned(), "python3".to_string()];
    for py in &candidates {
        if run(py, &["-c", "import zeroconf"]).is_ok() {
            return Ok(py.clone());
        }
    }
    Err("no python with zeroconf; run `.venv/bin/python -m pip install zeroconf`".into())
}

fn helper_script() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mdns_peer.py")
        .to_string_lossy()
        .into_owned()
}

/// A scenario's bridge, whose hosts get addresses `SUBNET.N` (a /24).
struct Net {
    base: BridgeNet,
    subnet: &'static str,
}

impl Deref for Net {
    type Target = BridgeNet;

    fn deref(&self) -> &BridgeNet {
        &self.base
    }
}

impl DerefMut for Net {
    fn deref_mut(&mut self) -> &mut BridgeNet {
        &mut self.base
    }
}

impl Net {
    /// A bridge, no host yet.
    fn new(tag: &str, subnet: &'static str) -> Result<Net, String> {
        let prefix = format!("zgm{tag}{}", std::process::id());
        let bridge = format!("{prefix}-br");
        let base = BridgeNet::new(prefix, bridge)?;
        Ok(Net { base, subnet })
    }

    /// A host on the bridge at `SUBNET.n`: `lo` and `eth0`, multicast
    /// routed to `eth0`, nothing else. Returns (namespace, address).
    fn host(&mut self, tag: &str, n: u8) -> Result<(String, String), String> {
        let ns = format!("{}-{tag}", self.prefix);
        self.add_host(&ns, &format!("v{tag}"))?;
        let addr = format!("{}.{n}", self.subnet);
        ip_in(&ns, &["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        ip_in(&ns, &["link", "set", "eth0", "multicast", "on", "up"])?;
        ip_in(&ns, &["route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        Ok((ns, addr))
    }

    /// A host as [`Net::host`] with an IPv6 address too, `fd83::n/64`
    /// (no duplicate address detection: usable at once).
    fn dual_host(&mut self, tag: &str, n: u8) -> Result<(String, String), String> {
        let (ns, addr) = self.host(tag, n)?;
        let v6 = format!("fd83::{n}/64");
        ip_in(&ns, &["addr", "add", &v6, "dev", "eth0", "nodad"])?;
        Ok((ns, addr))
    }

    /// Starts `zgossip node` in `ns`, bound to `addr`, and waits (at most
    /// 10 s) until it says it bound.
    fn node(&mut self, ns: &str, name: &str, addr: &str, args: &[&str]) -> Result<usize, String> {
        let bind = format!("tcp://{addr}:{PORT}");
        let mut all = vec!["--bind", bind.as_str()];
        all.extend_from_slice(args);
        self.base
            .node(ns, name, &all)
            .map_err(|e| format!("{e}\n{}", self.log(name)))
    }

    /// The names `proc` has printed `member ... NAME alive ENDPOINT` of
    /// (and not since printed another state of).
    fn alive(&self, proc: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in self.procs[proc].lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let ["member", _, name, state, _] = f.as_slice() {
                out.retain(|n| n != name);
                if *state == "alive" {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        out
    }

    fn still_running(&mut self, proc: usize) -> bool {
        matches!(self.procs[proc].child.try_wait(), Ok(None))
    }
}

/// Polls `f` every 100 ms for at most `limit`.
fn wait_for(what: &str, limit: Duration, f: impl FnMut() -> bool) -> Result<(), String> {
    bridge_net::wait_for(what, limit, Duration::from_millis(100), f)
}

/// `GET /metrics` from a node inside `ns` (empty if it does not answer).
fn metrics(ns: &str) -> String {
    bridge_net::metrics(ns).unwrap_or_default()
}

fn metric(text: &str, name: &str) -> u64 {
    bridge_net::metric(text, name).unwrap_or(0)
}

/// What python-zeroconf resolved: the JSON line of the service whose
/// instance name starts with `name-`, if any.
fn resolved<'a>(lines: &'a [String], name: &str) -> Option<&'a String> {
    let needle = format!("\"name\": \"{name}-");
    lines
        .iter()
        .rev()
        .find(|l| l.contains("\"resolved\"") && l.contains(&needle))
}

fn prerequisites() -> Result<String, String> {
    zeroconf_python()
}

const MDNS_ONLY: [&str; 6] = [
    "--discover",
    "--mdns",
    "--no-beacon",
    "--interface",
    "eth0",
    "--verbose",
];

#[test]
fn our_nodes_find_each_other_by_mdns_alone_plain_and_curve_and_zeroconf_sees_them() {
    let python = match prerequisites() {
        Ok(p) => p,
        Err(e) => return skip(&e),
    };
    let mut net = match Net::new("a", "10.83.0") {
        Ok(n) => n,
        Err(e) => return skip(&e),
    };
    if let Err(e) = our_nodes(&mut net, &python) {
        panic!("{e}");
    }
}

fn our_nodes(net: &mut Net, python: &str) -> Result<(), String> {
    let (zns, zaddr) = net.host("z", 9)?;
    let browser = net.spawn(
        &zns,
        "zeroconf",
        python,
        &[&helper_script(), "browse", &zaddr, HELPER_SECONDS],
    )?;
    let cluster_file = net.dir.join("cluster.cfg");
    std::fs::write(&cluster_file, "cluster\n    name = lab\n").map_err(|e| e.to_string())?;
    let cluster_file = cluster_file.to_string_lossy().into_owned();
    let (pa, spa) = zgossip::certs::keypair().map_err(|e| e.to_string())?;
    let (pb, spb) = zgossip::certs::keypair().map_err(|e| e.to_string())?;

    let mut nodes = Vec::new();
    for (tag, n, extra) in [
        ("a", 1, vec!["--publish", "from/a=1"]),
        ("b", 2, vec![]),
        (
            "c",
            3,
            vec![
                "--curve-secret",
                &spa,
                "--curve-allow",
                &pb,
                "--publish",
                "from/c=1",
            ],
        ),
        ("d", 4, vec!["--curve-secret", &spb, "--curve-allow", &pa]),
    ] {
        let (ns, addr) = net.host(tag, n)?;
        let mut args: Vec<&str> = MDNS_ONLY.to_vec();
        args.extend(["--config", &cluster_file, "--metrics", "127.0.0.1:9464"]);
        args.extend(extra.iter().copied());
        let p = net.node(&ns, tag, &addr, &args)?;
        nodes.push((tag, ns, p));
    }
    let started = Instant::now();
    let (a, b, c, d) = (nodes[0].2, nodes[1].2, nodes[2].2, nodes[3].2);
    let show = |net: &Net| {
        format!(
            "a knows {:?}, b {:?}, c {:?}, d {:?}\n--- a\n{}\n--- c\n{}",
            net.alive(a),
            net.alive(b),
            net.alive(c),
            net.alive(d),
            net.log("a"),
            net.log("c")
        )
    };
    wait_for("a and b, c and d to link", Duration::from_secs(30), || {
        net.alive(a) == ["b"]
            && net.alive(b) == ["a"]
            && net.alive(c) == ["d"]
            && net.alive(d) == ["c"]
    })
    .map_err(|e| format!("{e}: {}", show(net)))?;
    println!(
        "linked by mDNS alone within {:?} (plain a-b, CURVE c-d)",
        started.elapsed()
    );
    wait_for("the tuples to spread", Duration::from_secs(15), || {
        net.procs[b].lines().iter().any(|l| l == "from/a = 1")
            && net.procs[d].lines().iter().any(|l| l == "from/c = 1")
    })
    .map_err(|e| format!("{e}: {}", show(net)))?;

    // Counted: found over mDNS (the other three), no beacon heard, the
    // other kind (the two nodes of the other mechanism) ignored.
    for (who, ns, ignored) in [
        (
            "a",
            nodes[0].1.clone(),
            "zgossip_discovery_ignored_curve_total",
        ),
        (
            "c",
            nodes[2].1.clone(),
            "zgossip_discovery_ignored_plain_total",
        ),
    ] {
        let mut text = String::new();
        wait_for(
            &format!("{who} to count the services"),
            Duration::from_secs(20),
            || {
                text = metrics(&ns);
                metric(&text, "zgossip_mdns_found_total") >= 3
                    && metric(&text, "zgossip_mdns_announced_total") >= 1
                    && metric(&text, ignored) >= 2
            },
        )
        .map_err(|e| format!("{e}\n{text}"))?;
        let beacons = metric(&text, "zgossip_discovery_beacons_total");
        if beacons != 0 {
            return Err(format!("{who} heard {beacons} beacons with --no-beacon"));
        }
    }

    // python-zeroconf sees every node with its TXT records.
    let lines_of = |net: &Net| net.procs[browser].lines();
    wait_for(
        "python-zeroconf to resolve the four services",
        Duration::from_secs(20),
        || {
            let l = lines_of(net);
            ["a", "b", "c", "d"]
                .iter()
                .all(|n| resolved(&l, n).is_some())
        },
    )
    .map_err(|e| format!("{e}: {:?}\n{}", lines_of(net), net.log("zeroconf")))?;
    let l = lines_of(net);
    for (tag, addr, key) in [
        ("a", "10.83.0.1", None),
        ("b", "10.83.0.2", None),
        ("c", "10.83.0.3", Some(&pa)),
        ("d", "10.83.0.4", Some(&pb)),
    ] {
        let line = resolved(&l, tag).expect("resolved");
        let wants = [
            format!("\"port\": {PORT}"),
            format!("\"{addr}\""),
            "\"v\": \"1\"".to_string(),
            "\"cluster\": \"lab\"".to_string(),
            "\"id\": \"".to_string(),
        ];
        for w in &wants {
            if !line.contains(w.as_str()) {
                return Err(format!("zeroconf saw {tag} without {w}: {line}"));
            }
        }
        match key {
            Some(k) if !line.contains(&format!("\"key\": \"{k}\"")) => {
                return Err(format!("zeroconf saw {tag} without its key {k}: {line}"));
            }
            None if line.contains("\"key\"") => {
                return Err(format!("zeroconf saw a key for plain {tag}: {line}"));
            }
            _ => {}
        }
    }
    println!("python-zeroconf resolved the four services with their TXT records");
    Ok(())
}

#[test]
fn a_service_announced_by_zeroconf_is_joined_and_garbage_is_ignored() {
    let python = match prerequisites() {
        Ok(p) => p,
        Err(e) => return skip(&e),
    };
    let mut net = match Net::new("i", "10.84.0") {
        Ok(n) => n,
        Err(e) => return skip(&e),
    };
    if let Err(e) = interop(&mut net, &python) {
        panic!("{e}");
    }
}

fn interop(net: &mut Net, python: &str) -> Result<(), String> {
    // A node with no discovery at all: only python-zeroconf announces it.
    let (tns, taddr) = net.host("t", 1)?;
    let target = net.node(&tns, "t", &taddr, &[])?;
    let (zns, zaddr) = net.host("z", 9)?;
    let svc = |name: &str, port: u16, txt: &[(&str, &str)]| {
        let txt: Vec<String> = txt
            .iter()
            .map(|(k, v)| format!("\"{k}\": {}", json(v)))
            .collect();
        format!(
            "{{\"name\": \"{name}\", \"port\": {port}, \"address\": \"{taddr}\", \
             \"txt\": {{{}}}}}",
            txt.join(", ")
        )
    };
    let many: Vec<(String, String)> = (0..40).map(|i| (format!("k{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let garbage = [
        svc("bad-id", PORT, &[("id", "not-hex-at-all!!")]),
        svc("zero-id", PORT, &[("id", "0000000000000000")]),
        svc(
            "bad-key",
            PORT,
            &[("key", "this is not Z85 at all, forty chars....")],
        ),
        svc("short-key", PORT, &[("key", "rq:rM>}U?@Lns47E1%kR")]),
        svc("many-keys", PORT, &many),
        svc("bad-version", PORT, &[("v", "one")]),
        svc("bad-endpoint", PORT, &[("endpoint", "tcp://0.0.0.0:0")]),
        svc(
            "binary-id",
            PORT,
            &[("id", "\u{ff}\u{fe}\u{00}abcdefabcdefab")],
        ),
    ];
    let other_cluster = svc("elsewhere", PORT, &[("cluster", "other")]);
    let plain = svc("plain-target", PORT, &[]);
    let all = format!("[{}, {other_cluster}, {plain}]", garbage.join(", "));
    let publisher = net.spawn(
        &zns,
        "zeroconf",
        python,
        &[&helper_script(), "register", &zaddr, HELPER_SECONDS, &all],
    )?;
    wait_for(
        "python-zeroconf to register its services",
        Duration::from_secs(30),
        || {
            net.procs[publisher]
                .lines()
                .iter()
                .any(|l| l.contains("plain-target"))
        },
    )
    .map_err(|e| format!("{e}\n{}", net.log("zeroconf")))?;

    // Our node, mDNS only: joins the announced node.
    let (mns, maddr) = net.host("m", 2)?;
    let mut args: Vec<&str> = MDNS_ONLY.to_vec();
    args.extend(["--metrics", "127.0.0.1:9464"]);
    let m = net.node(&mns, "m", &maddr, &args)?;
    wait_for(
        "m and the zeroconf-announced t to link",
        Duration::from_secs(30),
        || net.alive(m) == ["t"] && net.alive(target) == ["m"],
    )
    .map_err(|e| {
        format!(
            "{e}: m knows {:?}, t {:?}\n--- m\n{}",
            net.alive(m),
            net.alive(target),
            net.log("m")
        )
    })?;
    println!("joined the node python-zeroconf announced");

    let mut text = String::new();
    wait_for("the garbage to be counted", Duration::from_secs(20), || {
        text = metrics(&mns);
        metric(&text, "zgossip_mdns_ignored_total") >= garbage.len() as u64
            && metric(&text, "zgossip_discovery_other_cluster_total") >= 1
    })
    .map_err(|e| format!("{e}\n{text}\n--- m\n{}", net.log("m")))?;
    if !net.still_running(m) {
        return Err(format!("m stopped\n{}", net.log("m")));
    }
    println!(
        "garbage: {} services ignored, {} of another cluster; the node runs on",
        metric(&text, "zgossip_mdns_ignored_total"),
        metric(&text, "zgossip_discovery_other_cluster_total")
    );
    Ok(())
}

/// A JSON string of `s` (each char 0-255 is one byte for the helper).
fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn dual_stack_beacons_and_mdns_make_one_network_one_peer_per_node() {
    let mut net = match Net::new("d", "10.85.0") {
        Ok(n) => n,
        Err(e) => return skip(&e),
    };
    if let Err(e) = dual_stack(&mut net) {
        panic!("{e}");
    }
}

fn dual_stack(net: &mut Net) -> Result<(), String> {
    let both = [
        "--discover",
        "--mdns",
        "--discover-ipv6",
        "both",
        "--interface",
        "eth0",
        "--verbose",
        "--metrics",
        "127.0.0.1:9464",
    ];
    let mut nodes = Vec::new();
    for (tag, n, mdns_only) in [("a", 1, false), ("b", 2, false), ("c", 3, true)] {
        let (ns, addr) = net.dual_host(tag, n)?;
        let mut args = both.to_vec();
        if mdns_only {
            args.push("--no-beacon");
        }
        let p = net.node(&ns, tag, &addr, &args)?;
        nodes.push((ns, p));
    }
    let (a, b, c) = (nodes[0].1, nodes[1].1, nodes[2].1);
    let show = |net: &Net| {
        format!(
            "a knows {:?}, b {:?}, c {:?}\n--- a\n{}\n--- c\n{}",
            net.alive(a),
            net.alive(b),
            net.alive(c),
            net.log("a"),
            net.log("c")
        )
    };
    wait_for(
        "the three nodes to know each other",
        Duration::from_secs(30),
        || net.alive(a) == ["b", "c"] && net.alive(b) == ["a", "c"] && net.alive(c) == ["a", "b"],
    )
    .map_err(|e| format!("{e}: {}", show(net)))?;
    // a hears b by beacons of both families and by mDNS, c by mDNS
    // alone: two peers. mDNS finds all three services (its own
    // included). c beacons nothing and hears none.
    let mut text = String::new();
    wait_for(
        "a to count both families and mDNS",
        Duration::from_secs(20),
        || {
            text = metrics(&nodes[0].0);
            metric(&text, "zgossip_discovery_beacons_ipv4_total") >= 1
                && metric(&text, "zgossip_discovery_beacons_ipv6_total") >= 1
                && metric(&text, "zgossip_mdns_found_total") >= 3
                && metric(&text, "zgossip_discovery_peers") >= 2
        },
    )
    .map_err(|e| format!("{e}\n{text}"))?;
    // Heard again for a few intervals: still one peer per node.
    std::thread::sleep(Duration::from_secs(3));
    let text = metrics(&nodes[0].0);
    let peers = metric(&text, "zgossip_discovery_peers");
    if peers != 2 {
        return Err(format!("a tracks {peers} peers, not 2\n{text}"));
    }
    let mut text = String::new();
    wait_for(
        "c to find the three services",
        Duration::from_secs(20),
        || {
            text = metrics(&nodes[2].0);
            metric(&text, "zgossip_mdns_found_total") >= 3
                && metric(&text, "zgossip_discovery_peers") == 2
        },
    )
    .map_err(|e| format!("{e}\n{text}"))?;
    let beacons = metric(&text, "zgossip_discovery_beacons_total");
    if beacons != 0 {
        return Err(format!("c (mDNS alone) heard {beacons} beacons\n{text}"));
    }
    println!("dual stack and mDNS: one network, one peer per node");
    Ok(())
}
