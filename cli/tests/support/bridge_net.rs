//! Test support: `zgossip node` processes (and helpers such as dnsmasq or
//! python-zeroconf) on hosts of a private bridge: network namespaces this
//! test makes, one veth each, no route out. Include it with
//! `#[path = "support/bridge_net.rs"] mod bridge_net;` from `cli/tests`;
//! a test gives its hosts their addresses (see [`BridgeNet::add_host`]).
#![allow(dead_code)]

#[path = "../../../tests/support/netns.rs"]
pub mod netns;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netns::cmd::{ip, require_ip, run};
use netns::{add_bridge, plug};

pub const BIN: &str = env!("CARGO_BIN_EXE_zgossip");
/// How often [`BridgeNet::node`] looks for a node's `bound` line.
const BIND_POLL: Duration = Duration::from_millis(50);

/// A process whose stdout lines are collected.
pub struct Proc {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(mut c: Command, log: PathBuf) -> Result<Proc, String> {
        let err = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {c:?}: {e}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Ok(Proc { child, lines })
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Everything a test made, undone on drop (even when it fails): the
/// processes killed, the namespaces deleted (and their `/etc/netns`
/// entries removed), the scratch directory removed unless the test
/// failed.
pub struct BridgeNet {
    pub prefix: String,
    /// The bridge's namespace first, then the hosts'.
    namespaces: Vec<String>,
    /// Namespaces with an `/etc/netns` entry of this test's.
    etc_entries: Vec<String>,
    pub procs: Vec<Proc>,
    /// Logs (each process's stderr) and scratch files.
    pub dir: PathBuf,
}

impl Drop for BridgeNet {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
            if self.etc_entries.contains(ns) {
                let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(ns));
            }
        }
        if !self.etc_entries.is_empty() {
            // Only when empty: another program's entries stay.
            let _ = std::fs::remove_dir("/etc/netns");
        }
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl BridgeNet {
    /// A bridge (`br0` in namespace `bridge`) and no host yet; `prefix`
    /// names the scratch directory (and, by the caller, the namespaces).
    pub fn new(prefix: String, bridge: String) -> Result<BridgeNet, String> {
        require_ip()?;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut net = BridgeNet {
            prefix,
            namespaces: Vec::new(),
            etc_entries: Vec::new(),
            procs: Vec::new(),
            dir,
        };
        ip(&["netns", "add", &bridge]).map_err(|e| format!("{e} (needs root)"))?;
        net.namespaces.push(bridge.clone());
        add_bridge(&bridge, "br0")?;
        Ok(net)
    }

    pub fn bridge(&self) -> &str {
        &self.namespaces[0]
    }

    /// Host namespace `ns` on the bridge through its port `port`, with `lo`
    /// up and `eth0` down, for the caller's addresses.
    pub fn add_host(&mut self, ns: &str, port: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_string());
        let bridge = self.bridge().to_string();
        plug(&bridge, port, ns)
    }

    /// Writes `/etc/netns/NS/resolv.conf`, which `ip netns exec NS` mounts
    /// over the machine's.
    pub fn resolv_conf(&mut self, ns: &str, text: &str) -> Result<(), String> {
        let etc = PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&etc).map_err(|e| format!("{}: {e}", etc.display()))?;
        self.etc_entries.push(ns.to_string());
        std::fs::write(etc.join("resolv.conf"), text).map_err(|e| format!("resolv.conf: {e}"))
    }

    /// Starts `program args` in `ns`, its stderr in the log `tag`.
    pub fn spawn(
        &mut self,
        ns: &str,
        tag: &str,
        program: &str,
        args: &[&str],
    ) -> Result<usize, String> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]).args(args);
        let log = self.dir.join(format!("{tag}.stderr"));
        self.procs.push(Proc::spawn(c, log)?);
        Ok(self.procs.len() - 1)
    }

    /// Starts `zgossip node --no-control --name NAME --members args` in
    /// `ns` (no local agent) and waits (at most 10 s) until it says it
    /// bound.
    pub fn node(&mut self, ns: &str, name: &str, args: &[&str]) -> Result<usize, String> {
        let mut all = vec!["node", "--no-control", "--name", name, "--members"];
        all.extend_from_slice(args);
        let i = self.spawn(ns, name, BIN, &all)?;
        wait_for(
            &format!("{name} to bind"),
            Duration::from_secs(10),
            BIND_POLL,
            || {
                self.procs[i]
                    .lines()
                    .iter()
                    .any(|l| l.starts_with("bound "))
            },
        )?;
        Ok(i)
    }

    /// What the process logged as `tag` wrote to its stderr.
    pub fn log(&self, tag: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{tag}.stderr"))).unwrap_or_default()
    }
}

/// Polls `f` every `poll` for at most `limit`.
pub fn wait_for(
    what: &str,
    limit: Duration,
    poll: Duration,
    mut f: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    for _ in 0..100_000 {
        if f() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(poll);
    }
    Err(format!("timed out after {limit:?} waiting for {what}"))
}

/// `GET /metrics` from a node's metrics server on 127.0.0.1:9464 inside
/// `ns` (bash's /dev/tcp: no HTTP client needed).
pub fn metrics(ns: &str) -> Result<String, String> {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "bash",
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/9464 && \
             printf 'GET /metrics HTTP/1.1\\r\\nHost: 127.0.0.1:9464\\r\\n\\r\\n' >&3 && timeout 5 cat <&3",
        ],
    )
}

/// The value of the metric `name` in `text`, the body of a `/metrics`.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
