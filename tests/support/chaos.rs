//! The chaos harness (issue 24): real `zgossip node` processes, one per
//! network namespace, on a bridge of their own, with packet loss, latency,
//! partitions, `kill -9` and restarts. Include it with
//! `#[path = "../../tests/support/chaos.rs"] mod chaos;` (from `cli/tests`)
//! and give [`Cluster::new`] the path of the `zgossip` binary.
//!
//! Shape: a bridge namespace holds `br0` (and `br1`, the other side of a
//! partition); host `i` is a namespace whose `eth0` (10.78.h.l/16) is a
//! veth into the bridge. Nothing is routed out: traffic stays between the
//! namespaces this harness made. Names carry the test's pid, so parallel
//! runs never clash; everything is removed on drop, and what a killed run
//! left behind (its pid gone) is removed by the next one.
//!
//! Faults:
//! - loss: `iptables` statistic match (random DROP) on a host's `eth0`,
//!   in both directions (the kernel here has no `netem`);
//! - latency: a delaying TCP proxy (this test binary run again as a
//!   proxy, see [`run_delay_proxy`]) in the host's namespace, with an
//!   `iptables` REDIRECT of the connections that arrive at its node;
//! - partitions: `ip link set vI master br1` moves hosts to a second bridge,
//!   healed by moving them back; [`Cluster::isolate`] takes a link down;
//! - crashes: `kill -9` of a node process, and restarts with the same
//!   arguments.
//!
//! Observation: each node runs with `--json`, and every line it prints
//! (`deliver`, `delete`, `expire`) is applied to a [`View`] of its store,
//! which is exact: a node tells its application of every change of its
//! store (a refresh of an unchanged value changes nothing it shows).
//! [`Cluster::dump`] reads a node's tuples again from outside, through
//! `zgossip watch --connect` run inside the namespace, as a cross-check.
//! Each line is kept with the time the harness read it, so that a test
//! can time when a process saw a tuple arrive or go ([`Cluster::with_view`],
//! [`View::tuple_events`]).
//! Nodes run with `--members` (see [`Cluster::node_args`]) also print
//! every change of another member's state, each kept with the time the
//! harness read it ([`Cluster::member_events`]); [`Cluster::members`]
//! reads a node's `MEMBERS` from outside, through `zgossip members --json`.
//! Writes go through `zgossip put/del --connect` run inside the host's
//! namespace against its node, as a user would from a shell.
//!
//! Every wait here is bounded in time, every loop in count.
#![allow(dead_code)]

#[path = "lines.rs"]
mod lines;
#[path = "netns.rs"]
mod netns;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub use lines::lines_of;
use netns::cmd::run_bounded;
use netns::cmd::{ip, ip_in, require_ip, run};
use netns::{add_bridge, plug};

/// The port every node binds.
pub const PORT: u16 = 5670;
/// The port of a host's delaying proxy.
pub const PROXY_PORT: u16 = 5671;
/// The environment variable that makes the test binary a delaying proxy.
pub const PROXY_ENV: &str = "ZG_CHAOS_PROXY";
/// The longest a proxy lives, whatever happens to the harness.
const PROXY_LIFETIME: Duration = Duration::from_secs(900);
const PREFIX: &str = "zgc";

/// A small deterministic generator (SplitMix64): the scenario's choices
/// follow from one seed, printed, and replayed with `CHAOS_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `k` distinct elements of `from`, in random order.
    pub fn pick(&mut self, from: &[usize], k: usize) -> Vec<usize> {
        let mut v = from.to_vec();
        for i in 0..v.len() {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

/// The seed: `CHAOS_SEED` if set, else one from the clock.
pub fn seed() -> u64 {
    match std::env::var("CHAOS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CHAOS_SEED={s}: not a number")),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (t.as_nanos() as u64) ^ u64::from(std::process::id()) << 32
        }
    }
}

/// A usize from the environment, or a default.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={s}: not a number"))
        })
        .unwrap_or(default)
}

/// `CHAOS_VERBOSE=1`: every node traces protocol events (into the logs
/// kept when a test fails); `CHAOS_VERBOSE=3,60`: those hosts' nodes only
/// (tracing every node changes the timing).
fn verbose(host: usize) -> bool {
    std::env::var("CHAOS_VERBOSE").is_ok_and(|v| {
        v == "1"
            || v.split(',')
                .any(|h| h.trim().parse::<usize>().is_ok_and(|h| h == host))
    })
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says why the harness cannot run: under `CI=true` a failure naming the
/// missing prerequisite, elsewhere a printed skip.
pub fn skip(why: &str) {
    if in_ci() {
        panic!(
            "the chaos harness cannot run ({why}): under CI=true this is a failure \
             (it needs root, iproute2 and Debian's iptables, see scripts/test.sh)"
        );
    }
    eprintln!(
        "SKIPPED: the chaos harness cannot run ({why}); it needs root, iproute2 and \
         Debian's iptables (apt-get install iproute2 iptables). It never falls back \
         to the real network."
    );
}

/// Runs `iptables args` inside namespace `ns`.
fn iptables(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "iptables", "-w", "5"];
    all.extend_from_slice(args);
    run("ip", &all).map(|_| ())
}

/// Removes what runs of this harness whose process is gone left behind:
/// their namespaces and the processes still in them.
fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if pid.is_empty() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = run("ip", &["netns", "pids", name]) {
            for p in pids.split_whitespace() {
                let _ = run("kill", &["-9", p]);
            }
        }
        let _ = ip(&["netns", "del", name]);
        eprintln!("chaos: removed stale namespace {name} (pid {pid} is gone)");
    }
}

/// The kernel's neighbour (ARP) table is one for every namespace of the
/// machine, at most `gc_thresh3` entries (1024 by default, settable only
/// from the host's namespace). Hosts on one bridge may each need an entry
/// for every other: past the limit, a host cannot resolve its peers
/// (`dmesg`: "neighbor table overflow") and stays cut off until entries
/// age out, 20 to 30 s with 64 hosts. Says so before a run that large.
fn warn_neighbour_table(n: usize) {
    let limit: usize = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    let worst = n * (n - 1);
    if worst > limit {
        eprintln!(
            "chaos: WARNING: {n} hosts may need {worst} ARP entries, and the kernel keeps at \
             most {limit} for the whole machine (net.ipv4.neigh.default.gc_thresh3); hosts \
             that cannot resolve their peers stay cut off for tens of seconds. For a run this \
             large, raise it first (and set it back after): sysctl -w \
             net.ipv4.neigh.default.gc_thresh2={} net.ipv4.neigh.default.gc_thresh3={}",
            worst.next_power_of_two(),
            2 * worst.next_power_of_two()
        );
    }
}

/// How the nodes find each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--join` through two contacts (host 0, and a random other host).
    Join,
    /// `--discover --interface eth0` (UDP beacons on the bridge).
    Discover,
}

/// What one node holds, as its `--json` lines told.
#[derive(Default)]
pub struct View {
    /// Live tuples.
    pub tuples: BTreeMap<String, String>,
    /// Keys this process was told were deleted.
    pub deleted: BTreeSet<String>,
    /// `key=value` delivered after this process was told the key was
    /// deleted (the workload never writes a key again once deleted).
    pub resurrected: Vec<String>,
    /// Lines read, and lines that were not understood.
    pub lines: u64,
    pub unknown: Vec<String>,
    /// The endpoint the node said it bound.
    pub bound: Option<String>,
    /// Its `member` lines (`zgossip node --members`), in order, each with
    /// the time it was read.
    pub member_events: Vec<MemberEvent>,
    /// Its `deliver`, `delete` and `expire` lines, in order, each with the
    /// time it was read.
    pub tuple_events: Vec<TupleEvent>,
    /// Its stdout closed (it exited).
    pub closed: bool,
}

/// The string field `name` of a one-line JSON object (None: not there).
fn json_field(line: &str, name: &str) -> Option<String> {
    let tag = format!("\"{name}\":\"");
    let start = line.find(&tag)? + tag.len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
}

/// One `--json` line: (event, key, value).
fn parse_line(line: &str) -> Option<(String, Option<String>, Option<String>)> {
    Some((
        json_field(line, "event")?,
        json_field(line, "key"),
        json_field(line, "value"),
    ))
}

/// A member as a node told it: in a `member` line of its output, or in a
/// line of `zgossip members --json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// 16 hex digits, drawn anew at every start of a node.
    pub id: String,
    pub name: String,
    /// alive, suspect, failed or left.
    pub state: String,
    pub endpoint: String,
}

impl Member {
    fn parse(line: &str) -> Option<Member> {
        Some(Member {
            id: json_field(line, "id")?,
            name: json_field(line, "name")?,
            state: json_field(line, "state")?,
            endpoint: json_field(line, "endpoint")?,
        })
    }
}

/// A change of a member's state as a node printed it, and when the
/// harness read the line (the node printed it at most a few ms before).
#[derive(Clone, Debug)]
pub struct MemberEvent {
    pub at: Instant,
    pub member: Member,
}

/// A change of a tuple as a node printed it (`deliver`, `delete` or
/// `expire`; the value of a `deliver`), and when the harness read the line.
#[derive(Clone, Debug)]
pub struct TupleEvent {
    pub at: Instant,
    pub event: String,
    pub key: String,
    pub value: Option<String>,
}

impl View {
    fn apply(&mut self, line: &str) {
        self.apply_at(line, Instant::now());
    }

    fn apply_at(&mut self, line: &str, at: Instant) {
        self.lines += 1;
        match parse_line(line) {
            Some((e, Some(k), Some(v))) if e == "deliver" => {
                if self.deleted.contains(&k) {
                    self.resurrected.push(format!("{k}={v}"));
                }
                self.tuple_events.push(TupleEvent {
                    at,
                    event: e,
                    key: k.clone(),
                    value: Some(v.clone()),
                });
                self.tuples.insert(k, v);
            }
            Some((e, Some(k), None)) if e == "delete" || e == "expire" => {
                self.tuples.remove(&k);
                self.deleted.insert(k.clone());
                self.tuple_events.push(TupleEvent {
                    at,
                    event: e,
                    key: k,
                    value: None,
                });
            }
            Some((e, _, _)) if e == "bound" => {
                self.bound = Some(line.to_string());
            }
            Some((e, _, _)) if e == "discovering" || e == "metrics" => {}
            Some((e, _, _)) if e == "member" => match Member::parse(line) {
                Some(member) => self.member_events.push(MemberEvent { at, member }),
                None => self.unknown.push(line.to_string()),
            },
            _ => self.unknown.push(line.to_string()),
        }
    }
}

/// One node's process (one incarnation of a host).
struct NodeProc {
    child: Child,
    view: Arc<Mutex<View>>,
}

/// A host: a namespace with one address, its node (when live), and what
/// every incarnation of its node did wrong.
pub struct Host {
    pub index: usize,
    pub ns: String,
    pub addr: String,
    /// How many times its node was started.
    pub starts: u32,
    node: Option<NodeProc>,
    /// Resurrections seen by earlier incarnations.
    past_resurrected: Vec<String>,
    /// The member lines of earlier incarnations, with the incarnation (the
    /// count of starts) that printed them.
    past_member_events: Vec<(u32, MemberEvent)>,
    proxy: Option<Child>,
    contacts: Vec<usize>,
    loss: Option<f64>,
    /// Arguments of this host's node alone (after the cluster's).
    args: Vec<String>,
}

impl Host {
    pub fn endpoint(&self) -> String {
        format!("tcp://{}:{PORT}", self.addr)
    }
}

/// N hosts on a bridge, each running (or not) a `zgossip node`.
pub struct Cluster {
    bin: PathBuf,
    mode: Mode,
    // Hosts first: their namespaces go before the bridge's.
    pub hosts: Vec<Host>,
    bridge: String,
    /// Logs (each node's stderr) and scratch files.
    pub dir: PathBuf,
    extra_args: Vec<String>,
    partitioned: BTreeSet<usize>,
    isolated: BTreeSet<usize>,
    delay_ms: BTreeMap<usize, u64>,
}

/// Host `i`'s address: 10.78.0.1 for host 0, 10.78.1.0 for host 255, ...
fn address(i: usize) -> String {
    let n = i + 1;
    format!("10.78.{}.{}", n / 256, n % 256)
}

impl Cluster {
    /// `n` hosts (no node started). Err: a prerequisite is missing (say
    /// it through [`skip`]).
    pub fn new(bin: &Path, n: usize, mode: Mode, tag: &str) -> Result<Cluster, String> {
        assert!((1..=1000).contains(&n), "1 to 1000 hosts");
        if !bin.exists() {
            return Err(format!("no zgossip binary at {}", bin.display()));
        }
        require_ip()?;
        run("iptables", &["--version"])
            .map_err(|e| format!("{e}; install Debian's iptables (apt-get install iptables)"))?;
        remove_stale();
        warn_neighbour_table(n);
        let base = format!("{PREFIX}{}{tag}", std::process::id());
        let bridge = format!("{base}b");
        ip(&["netns", "add", &bridge]).map_err(|e| format!("{e} (needs root)"))?;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&base);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cluster = Cluster {
            bin: bin.to_path_buf(),
            mode,
            hosts: Vec::new(),
            bridge: bridge.clone(),
            dir,
            extra_args: Vec::new(),
            partitioned: BTreeSet::new(),
            isolated: BTreeSet::new(),
            delay_ms: BTreeMap::new(),
        };
        for br in ["br0", "br1"] {
            add_bridge(&bridge, br)?;
        }
        for i in 0..n {
            let ns = format!("{base}h{i}");
            ip(&["netns", "add", &ns])?;
            let port = format!("v{i}");
            // The host goes on the list now, so that drop removes it
            // whatever fails next.
            cluster.hosts.push(Host {
                index: i,
                ns: ns.clone(),
                addr: address(i),
                starts: 0,
                node: None,
                past_resurrected: Vec::new(),
                past_member_events: Vec::new(),
                proxy: None,
                contacts: Vec::new(),
                loss: None,
                args: Vec::new(),
            });
            plug(&bridge, &port, &ns)?;
            let cidr = format!("{}/16", address(i));
            ip_in(&ns, &["addr", "add", &cidr, "brd", "+", "dev", "eth0"])?;
            ip_in(&ns, &["link", "set", "eth0", "up"])?;
        }
        // Check once that the statistic match works in a namespace here.
        let h0 = cluster.hosts[0].ns.clone();
        let rule = [
            "-A",
            "INPUT",
            "-i",
            "eth0",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.5",
            "-j",
            "DROP",
        ];
        iptables(&h0, &rule).map_err(|e| format!("iptables statistic match: {e}"))?;
        iptables(&h0, &["-F", "INPUT"])?;
        Ok(cluster)
    }

    /// Extra arguments for every `zgossip node` (for example `--config`).
    pub fn node_args(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|s| s.to_string()).collect();
    }

    /// Extra arguments for host `i`'s node alone, from its next start on
    /// (for example a data directory from [`Cluster::host_dir`]).
    pub fn host_args(&mut self, i: usize, args: &[&str]) {
        self.hosts[i].args = args.iter().map(|s| s.to_string()).collect();
    }

    /// A directory of host `i`'s own that outlives its node's restarts
    /// (removed with the cluster's logs).
    pub fn host_dir(&self, i: usize) -> PathBuf {
        let dir = self.dir.join(format!("h{i}.data"));
        std::fs::create_dir_all(&dir).expect("host dir");
        dir
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Sets the contacts (`--join`) of host `i`.
    pub fn contacts(&mut self, i: usize, contacts: &[usize]) {
        self.hosts[i].contacts = contacts.to_vec();
    }

    /// Starts the node of host `i` and waits (at most 10 s) until it says
    /// it bound its endpoint.
    pub fn start(&mut self, i: usize) {
        assert!(self.hosts[i].node.is_none(), "h{i} is running");
        let h = &mut self.hosts[i];
        h.starts += 1;
        let err = std::fs::File::create(self.dir.join(format!("h{i}.{}.stderr", h.starts)))
            .expect("log file");
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &h.ns])
            .arg(&self.bin)
            .args(["node", "--json", "--no-control", "--name", &format!("h{i}")])
            .args(["--bind", &h.endpoint()]);
        match self.mode {
            Mode::Join => {
                for &j in &h.contacts {
                    c.args(["--join", &format!("tcp://{}:{PORT}", address(j))]);
                }
            }
            Mode::Discover => {
                c.args(["--discover", "--interface", "eth0"]);
            }
        }
        if verbose(i) {
            c.arg("--verbose");
        }
        c.args(&self.extra_args)
            .args(&h.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = c.spawn().expect("cannot start zgossip node");
        let out = child.stdout.take().expect("stdout");
        let view = Arc::new(Mutex::new(View::default()));
        let v = view.clone();
        // Its output, each line with the time it was read, for the record.
        let mut record = std::fs::File::create(self.dir.join(format!("h{i}.{}.stdout", h.starts)))
            .expect("log file");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let _ = writeln!(record, "{:.3} {line}", t.as_secs_f64());
                v.lock().unwrap().apply_at(&line, Instant::now());
            }
            v.lock().unwrap().closed = true;
        });
        h.node = Some(NodeProc { child, view });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let v = self.hosts[i].node.as_ref().unwrap().view.lock().unwrap();
                if v.bound.is_some() {
                    return;
                }
                if v.closed || Instant::now() >= deadline {
                    panic!(
                        "h{i}: the node did not bind {} (see {})",
                        self.hosts[i].endpoint(),
                        self.dir.display()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn start_all(&mut self) {
        for i in 0..self.len() {
            self.start(i);
        }
    }

    pub fn is_live(&self, i: usize) -> bool {
        self.hosts[i].node.is_some()
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.is_live(i)).collect()
    }

    /// `kill -9` of host `i`'s node (`ip netns exec` execs the node, so
    /// the child is the node itself).
    pub fn kill9(&mut self, i: usize) {
        let mut p = self.hosts[i]
            .node
            .take()
            .expect("kill9 of a node that is not running");
        let _ = p.child.kill();
        let _ = p.child.wait();
        self.retire(i, p);
    }

    /// SIGTERM to host `i`'s node: it announces its leave and exits. Waits
    /// (at most 10 s) for it to exit, and its output to end; Ok(its exit
    /// code). Err: it did not exit in time (it is killed then).
    pub fn term(&mut self, i: usize) -> Result<Option<i32>, String> {
        let mut p = self.hosts[i]
            .node
            .take()
            .expect("term of a node that is not running");
        let pid = p.child.id().to_string();
        let sent = run("kill", &["-TERM", &pid]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match p.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    break None;
                }
            }
        };
        // Its last lines, read to the end of its output.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !p.view.lock().unwrap().closed && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.retire(i, p);
        sent?;
        match status {
            Some(s) => Ok(s.code()),
            None => Err(format!(
                "h{i}: the node did not exit within 10 s of SIGTERM"
            )),
        }
    }

    /// Keeps what an incarnation of host `i` that ended saw.
    fn retire(&mut self, i: usize, p: NodeProc) {
        let h = &mut self.hosts[i];
        let v = p.view.lock().unwrap();
        h.past_resurrected.extend(
            v.resurrected
                .iter()
                .map(|r| format!("h{i} #{}: {r}", h.starts)),
        );
        h.past_member_events
            .extend(v.member_events.iter().map(|e| (h.starts, e.clone())));
    }

    /// The `member` lines of host `i`'s running node, in order (empty if
    /// down; nodes print them with `--members`).
    pub fn member_events(&self, i: usize) -> Vec<MemberEvent> {
        match &self.hosts[i].node {
            Some(p) => p.view.lock().unwrap().member_events.clone(),
            None => Vec::new(),
        }
    }

    /// `f` of what host `i`'s running node told (its tuples, its tuple and
    /// member lines with their times), read under one lock: None if down.
    pub fn with_view<R>(&self, i: usize, f: impl FnOnce(&View) -> R) -> Option<R> {
        self.hosts[i]
            .node
            .as_ref()
            .map(|p| f(&p.view.lock().unwrap()))
    }

    /// Every `member` line any incarnation of any host printed: (host,
    /// incarnation, line).
    pub fn all_member_events(&self) -> Vec<(usize, u32, MemberEvent)> {
        let mut all = Vec::new();
        for h in &self.hosts {
            all.extend(
                h.past_member_events
                    .iter()
                    .map(|(n, e)| (h.index, *n, e.clone())),
            );
            if let Some(p) = &h.node {
                let v = p.view.lock().unwrap();
                all.extend(
                    v.member_events
                        .iter()
                        .map(|e| (h.index, h.starts, e.clone())),
                );
            }
        }
        all
    }

    /// Starts host `i`'s node again, with the same arguments.
    pub fn restart(&mut self, i: usize) {
        if self.is_live(i) {
            self.kill9(i);
        }
        self.start(i);
    }

    /// What host `i`'s node holds, as its output told (empty if down).
    pub fn held(&self, i: usize) -> BTreeMap<String, String> {
        match &self.hosts[i].node {
            Some(p) => p.view.lock().unwrap().tuples.clone(),
            None => BTreeMap::new(),
        }
    }

    /// Every resurrection any node showed: a deleted key delivered again
    /// to the same process.
    pub fn resurrections(&self) -> Vec<String> {
        let mut all = Vec::new();
        for h in &self.hosts {
            all.extend(h.past_resurrected.iter().cloned());
            if let Some(p) = &h.node {
                let v = p.view.lock().unwrap();
                all.extend(
                    v.resurrected
                        .iter()
                        .map(|r| format!("h{} #{}: {r}", h.index, h.starts)),
                );
            }
        }
        all
    }

    /// Lines of node output that were not understood.
    pub fn unknown_lines(&self) -> Vec<String> {
        let mut all = Vec::new();
        for h in &self.hosts {
            if let Some(p) = &h.node {
                all.extend(p.view.lock().unwrap().unknown.iter().cloned());
            }
        }
        all
    }

    fn cli(&self, i: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.hosts[i].ns])
            .arg(&self.bin)
            .args(args);
        c
    }

    fn cli_ok(&self, i: usize, what: &str, args: &[&str]) -> Result<(), String> {
        // Commands trace always: their stderr goes to writes.log alone.
        let mut all: Vec<&str> = args.to_vec();
        all.push("--verbose");
        let started = Instant::now();
        let out = run_bounded(self.cli(i, &all), Duration::from_secs(20));
        // Every write, its time and what the command said, for the record.
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("writes.log"))
        {
            // One write per record: commands run a few at once.
            let record = format!(
                "{:.3} h{i} {what}: {} in {:?}\n{}\n",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64(),
                out.status,
                started.elapsed(),
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = log.write_all(record.as_bytes());
        }
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "h{i}: {what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Writes `key=value` at host `i`: `zgossip put` in its namespace,
    /// connected to its node (over `lo`: no loss, no delay).
    pub fn put(&self, i: usize, key: &str, value: &str) -> Result<(), String> {
        let ep = self.hosts[i].endpoint();
        self.cli_ok(
            i,
            &format!("put {key}"),
            &["put", key, value, "--connect", &ep, "--timeout", "5000"],
        )
    }

    /// Deletes `key` at host `i` (`zgossip del`).
    pub fn del(&self, i: usize, key: &str) -> Result<(), String> {
        let ep = self.hosts[i].endpoint();
        self.cli_ok(
            i,
            &format!("del {key}"),
            &["del", key, "--connect", &ep, "--timeout", "5000"],
        )
    }

    /// Waits (at most `limit`) until host `i`'s node holds `key` with
    /// `value` (None: not at all). A write that `zgossip put` or `del`
    /// said it made must show at the node it was made at.
    pub fn wait_written(
        &self,
        i: usize,
        key: &str,
        value: Option<&str>,
        limit: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let held = self.held(i);
            if held.get(key).map(String::as_str) == value {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= limit {
                return Err(format!(
                    "h{i}: the command succeeded, but after {limit:?} its node holds {key}={:?}, \
                     not {value:?} (see writes.log in {})",
                    held.get(key),
                    self.dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads what host `i`'s node holds from outside: `zgossip watch
    /// --json --connect` in its namespace, until its output has been quiet
    /// for `quiet` (at most 10 s).
    pub fn dump(&self, i: usize, quiet: Duration) -> BTreeMap<String, String> {
        let ep = self.hosts[i].endpoint();
        let mut c = self.cli(i, &["watch", "--json", "--connect", &ep]);
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("zgossip watch");
        let out = child.stdout.take().expect("stdout");
        let rx = lines_of(out);
        let mut view = View::default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match rx.recv_timeout(quiet) {
                Ok(line) => view.apply(&line),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        view.tuples
    }

    /// Reads host `i`'s member table from outside: `zgossip members --json
    /// --connect` in its namespace (a short-lived node named `cli`, itself
    /// left out; the others list it as `left` after). The node of host
    /// `i` is listed too. Err: the command failed, or took more than
    /// `timeout` and 5 s (it is killed then, and others will list that
    /// short-lived node as failed: say so).
    pub fn members(&self, i: usize, timeout: Duration) -> Result<Vec<Member>, String> {
        let ep = self.hosts[i].endpoint();
        let ms = timeout.as_millis().to_string();
        let c = self.cli(
            i,
            &["members", "--json", "--connect", &ep, "--timeout", &ms],
        );
        let started = Instant::now();
        let limit = timeout + Duration::from_secs(5);
        let out = run_bounded(c, limit);
        if started.elapsed() >= limit {
            return Err(format!(
                "h{i}: zgossip members did not end within {limit:?} and was killed"
            ));
        }
        if !out.status.success() {
            return Err(format!(
                "h{i}: zgossip members failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| Member::parse(l).ok_or_else(|| format!("h{i}: zgossip members said {l:?}")))
            .collect()
    }

    /// Drops `pct` percent of the packets host `i` receives on `eth0`,
    /// and as many of those it sends (iptables statistic match).
    pub fn loss(&mut self, i: usize, pct: f64) -> Result<(), String> {
        self.clear_loss(i)?;
        let p = format!("{:.4}", pct / 100.0);
        let ns = self.hosts[i].ns.clone();
        for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
            iptables(
                &ns,
                &[
                    "-A",
                    chain,
                    dir,
                    "eth0",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        self.hosts[i].loss = Some(pct);
        Ok(())
    }

    pub fn clear_loss(&mut self, i: usize) -> Result<(), String> {
        let ns = self.hosts[i].ns.clone();
        iptables(&ns, &["-F", "INPUT"])?;
        iptables(&ns, &["-F", "OUTPUT"])?;
        self.hosts[i].loss = None;
        Ok(())
    }

    /// Hosts with loss, and their percentage.
    pub fn lossy(&self) -> Vec<(usize, f64)> {
        self.hosts
            .iter()
            .filter_map(|h| h.loss.map(|p| (h.index, p)))
            .collect()
    }

    /// Delays by `ms` (each way) every TCP connection that arrives at host
    /// `i`'s node from another host: a delaying proxy in its namespace
    /// and an `iptables` REDIRECT to it. Connections made before are not
    /// affected: call it before starting the node. `harness_test` is the
    /// name of the test that runs [`run_delay_proxy`].
    pub fn delay(&mut self, i: usize, ms: u64, harness_test: &str) -> Result<(), String> {
        assert!(self.hosts[i].proxy.is_none(), "h{i} is delayed already");
        let h = &self.hosts[i];
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let spec = format!("0.0.0.0:{PROXY_PORT},{}:{PORT},{ms}", h.addr);
        let err = std::fs::File::create(self.dir.join(format!("h{i}.proxy.stderr")))
            .map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &h.ns])
            .arg(&exe)
            .args([harness_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(PROXY_ENV, spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("delay proxy: {e}"))?;
        let ns = h.ns.clone();
        self.hosts[i].proxy = Some(child);
        iptables(
            &ns,
            &[
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-i",
                "eth0",
                "-p",
                "tcp",
                "--dport",
                &PORT.to_string(),
                "-j",
                "REDIRECT",
                "--to-ports",
                &PROXY_PORT.to_string(),
            ],
        )?;
        self.delay_ms.insert(i, ms);
        // The proxy listens within a moment; a connection refused before
        // is dialled again by the node.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let out = run("ip", &["netns", "exec", &ns, "ss", "-ltnH"]).unwrap_or_default();
            if out.contains(&format!(":{PROXY_PORT}")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("h{i}: the delay proxy does not listen"))
    }

    pub fn delayed(&self) -> Vec<(usize, u64)> {
        self.delay_ms.iter().map(|(&i, &d)| (i, d)).collect()
    }

    /// Connections the delaying proxies relayed so far.
    pub fn relayed(&self) -> usize {
        self.delay_ms
            .keys()
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("h{i}.proxy.stderr")))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.starts_with("relay "))
                    .count()
            })
            .sum()
    }

    /// Packets the loss rules dropped so far, summed over the hosts.
    pub fn dropped(&self) -> u64 {
        let mut total = 0;
        for h in self.hosts.iter().filter(|h| h.loss.is_some()) {
            for chain in ["INPUT", "OUTPUT"] {
                let out = run(
                    "ip",
                    &[
                        "netns", "exec", &h.ns, "iptables", "-w", "5", "-L", chain, "-v", "-n",
                        "-x",
                    ],
                )
                .unwrap_or_default();
                total += out
                    .lines()
                    .filter(|l| l.contains("DROP") && l.contains("statistic"))
                    .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
        }
        total
    }

    /// Cuts `side` off from the other hosts: their bridge ports move to a
    /// second bridge (`ip link set vI master br1`). The hosts of `side`
    /// still reach each other.
    pub fn partition(&mut self, side: &[usize]) -> Result<(), String> {
        for &i in side {
            ip(&[
                "-n",
                &self.bridge,
                "link",
                "set",
                &format!("v{i}"),
                "master",
                "br1",
            ])?;
            self.partitioned.insert(i);
        }
        Ok(())
    }

    /// Cuts host `i` off from every other (its bridge port down).
    pub fn isolate(&mut self, i: usize) -> Result<(), String> {
        ip(&["-n", &self.bridge, "link", "set", &format!("v{i}"), "down"])?;
        self.isolated.insert(i);
        Ok(())
    }

    /// Ends every partition and isolation.
    pub fn heal(&mut self) -> Result<(), String> {
        for i in std::mem::take(&mut self.partitioned) {
            ip(&[
                "-n",
                &self.bridge,
                "link",
                "set",
                &format!("v{i}"),
                "master",
                "br0",
            ])?;
        }
        for i in std::mem::take(&mut self.isolated) {
            ip(&["-n", &self.bridge, "link", "set", &format!("v{i}"), "up"])?;
        }
        Ok(())
    }

    /// Waits (at most `limit`) until every host of `hosts` holds exactly
    /// `expected`. Ok(time taken); Err(a report of who differs, and how).
    pub fn wait_holding(
        &self,
        hosts: &[usize],
        expected: &BTreeMap<String, String>,
        limit: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        // Bounded: one check every 50 ms until the limit.
        loop {
            let differ: Vec<usize> = hosts
                .iter()
                .copied()
                .filter(|&i| &self.held(i) != expected)
                .collect();
            if differ.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= limit {
                let mut report = format!(
                    "after {limit:?}, {} of {} hosts do not hold the {} expected tuples:",
                    differ.len(),
                    hosts.len(),
                    expected.len()
                );
                for &i in differ.iter().take(8) {
                    report.push_str(&format!("\n  h{i}: {}", diff(expected, &self.held(i))));
                }
                return Err(report);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What `got` lacks, has too many, or holds with another value.
pub fn diff(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> String {
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<String> = got
        .iter()
        .filter(|(k, _)| !expected.contains_key(*k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let wrong: Vec<String> = expected
        .iter()
        .filter_map(|(k, v)| match got.get(k) {
            Some(g) if g != v => Some(format!("{k}={g} (expected {v})")),
            _ => None,
        })
        .collect();
    format!(
        "holds {}; missing {:?}; extra (deleted, or never written) {:?}; wrong {:?}",
        got.len(),
        missing,
        extra,
        wrong
    )
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            if let Some(mut p) = h.node.take() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
            if let Some(mut p) = h.proxy.take() {
                let _ = p.kill();
                let _ = p.wait();
            }
        }
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.ns]);
        }
        let _ = ip(&["netns", "del", &self.bridge]);
        // The logs stay when the test failed, or with CHAOS_KEEP=1.
        if !std::thread::panicking() && !std::env::var("CHAOS_KEEP").is_ok_and(|v| v == "1") {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("chaos: the nodes' logs are in {}", self.dir.display());
        }
    }
}

/// The delaying proxy, run by the test binary inside a host's namespace
/// when [`PROXY_ENV`] is `LISTEN,TARGET,MS`: every connection accepted on
/// LISTEN is relayed to TARGET, each chunk held MS milliseconds in each
/// direction. It ends after [`PROXY_LIFETIME`] whatever happens (the
/// harness kills it before). Returns false when the variable is not set.
pub fn run_delay_proxy() -> bool {
    let Ok(spec) = std::env::var(PROXY_ENV) else {
        return false;
    };
    let parts: Vec<&str> = spec.split(',').collect();
    let [listen, target, ms] = parts[..] else {
        panic!("{PROXY_ENV}={spec}: expected LISTEN,TARGET,MS");
    };
    let delay = Duration::from_millis(ms.parse().expect("delay in ms"));
    let listener = TcpListener::bind(listen).expect("proxy bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let end = Instant::now() + PROXY_LIFETIME;
    while Instant::now() < end {
        match listener.accept() {
            Ok((down, from)) => {
                let _ = down.set_nonblocking(false);
                let Ok(up) = TcpStream::connect_timeout(
                    &target.parse().expect("target address"),
                    Duration::from_secs(2),
                ) else {
                    eprintln!("refused {from}");
                    continue;
                };
                // One line per connection: the harness counts them.
                eprintln!("relay {from} {target}");
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                let (d2, u2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
                relay(down, up, delay);
                relay(u2, d2, delay);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    true
}

/// Copies `from` to `to`, each chunk `delay` after it was read: a reader
/// thread stamps chunks, a writer thread sends them when due.
fn relay(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Dropping tx ends the writer once it sent what is queued.
    });
    std::thread::spawn(move || {
        while let Ok((due, chunk)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}
