//! The `zgossip` command: run a node, read and write a gossip network from
//! the shell, or watch a demo cluster.

mod accept_bounded;
mod agent;
mod agent_commands;
mod control_client;
mod control_codec;
mod control_path;
mod demo;
mod http_endpoints;
mod http_host;
mod http_server;
mod json;
mod metrics_http;
mod metrics_text;
mod page_http;
mod page_state;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use json::json_text;
use zgossip::{Member, Node};

/// Exit codes scripts can rely on.
const EXIT_NOT_FOUND: u8 = 1;
const EXIT_FAILURE: u8 = 3;
/// No agent listens at the control socket (and no --connect was given).
const EXIT_NO_AGENT: u8 = 4;
/// The agent went away in the middle of a command (during `watch`, say).
const EXIT_AGENT_GONE: u8 = 5;

#[derive(Parser)]
#[command(
    name = "zgossip",
    version,
    about = "Spread key/value tuples across a network of nodes (wire-compatible with CZMQ zgossip)",
    after_help = "Exit codes: 0 success, 1 key not found or nothing reached in time, \
                  2 bad usage, 3 failure (cannot bind, bad endpoint, ...), \
                  4 no local agent at the control socket, 5 the agent went away \
                  during the command.\n\n\
                  get, put, del, keys, members, stats and watch ask the local agent \
                  (a running `zgossip node`) at --agent PATH, by default \
                  $XDG_RUNTIME_DIR/zgossip/node.sock, else /tmp/zgossip-UID/node.sock; \
                  with --connect they join the network themselves (docs/agent.md)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a node until interrupted, printing deliveries, expiries and deletes
    /// (and, with --members, the changes of members' states)
    Node(Box<NodeArgs>),
    /// Print the value of a key, asking the local agent (or, with
    /// --connect, the network)
    Get {
        key: String,
        #[command(flatten)]
        join: JoinArgs,
    },
    /// Publish a tuple into the network
    ///
    /// With --ephemeral the tuple is tied to this command's life: the
    /// command stays, prints `holding KEY` once the tuple is written, and
    /// holds it until SIGINT or SIGTERM; then it leaves and every node
    /// deletes the tuple (also when the command is killed: once the network
    /// declares it failed, within seconds). Exit code 1 if the tuple is
    /// deleted, expires or is written over by another node meanwhile.
    /// Through the agent the agent's node holds the tuple for this command
    /// and deletes it when the command stops or dies (docs/agent.md).
    Put {
        key: String,
        value: String,
        /// Time to live in milliseconds (the tuple disappears everywhere
        /// after it; with --ephemeral, refreshed every ttl/3 while held)
        #[arg(long)]
        ttl: Option<u64>,
        /// Tie the tuple to this command and hold it until interrupted
        /// (EPHEMERAL; see docs/membership.md)
        #[arg(long)]
        ephemeral: bool,
        #[command(flatten)]
        join: JoinArgs,
    },
    /// Delete a key everywhere in the network
    Del {
        key: String,
        #[command(flatten)]
        join: JoinArgs,
    },
    /// Print every tuple and every change (under a prefix) until interrupted
    /// (exit 5 if the agent goes meanwhile)
    Watch {
        /// Only keys starting with this
        #[arg(long, default_value = "")]
        prefix: String,
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        join: JoinArgs,
    },
    /// List the members of the network as a node of it knows them: ID,
    /// NAME, STATE (alive, suspect, failed, left), ENDPOINT
    ///
    /// Through the local agent: the agent's member table, its own node
    /// first. With --connect, a short-lived node connects, waits until another member
    /// appears in its table and the table has not changed for 300 ms (it
    /// arrives in batches), at most --timeout ms, and prints it; itself it
    /// leaves out. Exit code 1 when no node is reachable or no member table
    /// came in time (a CZMQ node keeps none).
    Members {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        join: JoinArgs,
    },
    /// Print the keys held (under a prefix), one a line
    Keys {
        /// Only keys starting with this
        #[arg(default_value = "")]
        prefix: String,
        #[command(flatten)]
        join: JoinArgs,
    },
    /// Print the local agent's node's counters (STATS), `name value` a line
    Stats {
        /// One JSON object
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Make a CURVE key pair: print the public and the secret key (Z85), or
    /// write a CZMQ zcert pair (PATH and PATH_secret) and print the public key
    Keygen {
        /// Write the certificate files here instead of printing the secret
        #[arg(long, value_name = "PATH")]
        cert: Option<std::path::PathBuf>,
    },
    /// Start a small cluster on loopback in this process and show tuples spreading
    Demo {
        /// Nodes in the cluster (2..=500)
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(2..=500))]
        nodes: u16,
        /// Tuples to publish (1..=100000)
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        tuples: u32,
    },
}

#[derive(Args)]
struct NodeArgs {
    /// Name shown in traces
    #[arg(long, default_value = "node")]
    name: String,
    /// Endpoint to bind (repeatable), e.g. tcp://*:5670 or tcp://127.0.0.1:*
    #[arg(long)]
    bind: Vec<String>,
    /// Endpoint of a node to keep connected (repeatable)
    #[arg(long)]
    connect: Vec<String>,
    /// Join the overlay through a member at this tcp:// endpoint, or
    /// through every address of a DNS name, dns:NAME:PORT (resolved again
    /// every --dns-interval) (repeatable): the node keeps a few links the
    /// overlay picks (see docs/overlay.md)
    #[arg(long)]
    join: Vec<String>,
    /// The endpoint other nodes dial to reach this one, tcp://HOST:PORT,
    /// when it is not the bound one (NAT, containers, several addresses;
    /// SET overlay/advertise)
    #[arg(long, value_name = "ENDPOINT")]
    advertise: Option<String>,
    /// How often the dns: names given to --join are resolved again, in ms
    /// (default 30000; SET overlay/dns-interval)
    #[arg(long, value_name = "MS")]
    dns_interval: Option<u64>,
    /// Tuple to publish at start, key=value (repeatable)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    publish: Vec<(String, String)>,
    /// Tuple to publish at start tied to this node's life, key=value
    /// (repeatable): every node deletes it when this node stops or is
    /// declared failed (EPHEMERAL; see docs/membership.md)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    ephemeral: Vec<(String, String)>,
    /// Time to live of the --publish and --ephemeral tuples, in ms (they
    /// are refreshed every ttl/3 while the node runs, as a presence record)
    #[arg(long)]
    ttl: Option<u64>,
    /// Configuration file to LOAD (ZPL, as CZMQ zconfig)
    #[arg(long)]
    config: Option<String>,
    /// Keep the tuples in this directory (created when missing) and load
    /// them at start, before binding (SET store/path; see
    /// docs/persistence.md)
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// How often the data directory's writes are forced to disk: always,
    /// never, or every N ms (default 100; SET store/fsync)
    #[arg(long, value_name = "WHEN", requires = "data_dir")]
    fsync: Option<String>,
    /// One JSON object per line instead of text
    #[arg(long)]
    json: bool,
    /// Also print every change of another member's state (it joined, is
    /// suspect, failed, left; SET membership/events 1): `member ID NAME
    /// STATE ENDPOINT`, or with --json
    /// {"event":"member","id":..,"name":..,"state":..,"endpoint":..}
    #[arg(long)]
    members: bool,
    /// Trace protocol events on stderr
    #[arg(long)]
    verbose: bool,
    /// Find other nodes by UDP beacons and connect to them (see
    /// docs/discovery.md); beacons go out on --interface
    #[arg(long)]
    discover: bool,
    /// Interface for --discover: a name (eth0, lo), an address, or `*`
    /// (default: ZSYS_INTERFACE, else the first non-loopback interface)
    #[arg(long, requires = "discover")]
    interface: Option<String>,
    /// UDP port of the beacons (default 5675)
    #[arg(long, requires = "discover")]
    discover_port: Option<u16>,
    /// With --discover: also announce the node and browse for the others
    /// over mDNS / DNS-SD (`_zgossip._tcp.local`, DISCOVER mdns=1)
    #[arg(long, requires = "discover")]
    mdns: bool,
    /// With --mdns: no UDP beacons, mDNS only (DISCOVER beacon=0)
    #[arg(long, requires = "mdns")]
    no_beacon: bool,
    /// Address family of the beacons (and of mDNS with --mdns): 0 (IPv4
    /// broadcast), 1 (IPv6 multicast) or both (the two at once, and a TCP
    /// endpoint that takes both; docs/discovery.md, "Dual stack").
    /// Default: ZSYS_IPV6, else 0
    #[arg(long, requires = "discover", value_name = "0|1|both")]
    discover_ipv6: Option<DiscoverFamily>,
    /// Serve the node's metrics at http://ADDR/metrics (Prometheus text
    /// format; see docs/metrics.md), e.g. 127.0.0.1:9464 (port 0 picks one)
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Serve a page that shows the network at http://ADDR/ (members,
    /// links, tuples, propagation delay; see docs/page.md), e.g.
    /// 127.0.0.1:8080 (port 0 picks one); the same ADDR as --metrics
    /// serves both on one listener
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// A host name the --http and --metrics endpoints answer to
    /// (repeatable), besides IP addresses and localhost: a request whose
    /// Host header names anything else is refused (421), against DNS
    /// rebinding (see docs/page.md)
    #[arg(long, value_name = "NAME", value_parser = http_host::parse_name)]
    http_host: Vec<String>,
    /// Serve the local agent (get, put, ... of this user) at this Unix
    /// socket; default $XDG_RUNTIME_DIR/zgossip/NAME.sock, else
    /// /tmp/zgossip-UID/NAME.sock. Its directory must be the user's own,
    /// mode 0700 (created so when missing); the socket is made 0600
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Serve no local agent
    #[arg(long, conflicts_with = "control")]
    no_control: bool,
    #[command(flatten)]
    curve: CurveArgs,
}

/// The beacons' address family (`--discover-ipv6`), as `DISCOVER ipv6=`
/// takes it.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DiscoverFamily {
    #[value(name = "0")]
    Ipv4,
    #[value(name = "1")]
    Ipv6,
    Both,
}

impl DiscoverFamily {
    fn as_option(self) -> &'static str {
        match self {
            DiscoverFamily::Ipv4 => "0",
            DiscoverFamily::Ipv6 => "1",
            DiscoverFamily::Both => "both",
        }
    }
}

#[derive(Args)]
struct JoinArgs {
    /// Endpoint of a node of the network (repeatable): a short-lived node
    /// joins through it, instead of asking the local agent
    #[arg(long, short = 'c')]
    connect: Vec<String>,
    /// The local agent's control socket (default: the one `zgossip node`
    /// serves by default)
    #[arg(long, value_name = "PATH", conflicts_with = "connect")]
    agent: Option<PathBuf>,
    /// How long to wait for the network or the agent, in ms
    #[arg(long, default_value_t = 3000)]
    timeout: u64,
    /// Configuration file to LOAD first (with --connect)
    #[arg(long, requires = "connect")]
    config: Option<String>,
    /// Trace protocol events on stderr (with --connect)
    #[arg(long, requires = "connect")]
    verbose: bool,
    #[command(flatten)]
    curve: CurveArgs,
}

impl JoinArgs {
    /// The agent's socket to ask, or `None` with --connect.
    fn agent_path(&self) -> Option<PathBuf> {
        if !self.connect.is_empty() {
            return None;
        }
        if !self.curve.is_empty() {
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "the --curve-* options need --connect (the local agent uses its own keys)",
                )
                .exit();
        }
        Some(
            self.agent
                .clone()
                .unwrap_or_else(|| control_path::default_path(control_path::DEFAULT_NAME)),
        )
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }
}

/// The options of a command that only the local agent answers.
#[derive(Args)]
struct AgentArgs {
    /// The local agent's control socket (default: the one `zgossip node`
    /// serves by default)
    #[arg(long, value_name = "PATH")]
    agent: Option<PathBuf>,
    /// How long to wait for the agent's reply, in ms
    #[arg(long, default_value_t = 3000)]
    timeout: u64,
}

impl AgentArgs {
    fn path(&self) -> PathBuf {
        self.agent
            .clone()
            .unwrap_or_else(|| control_path::default_path(control_path::DEFAULT_NAME))
    }
}

/// CURVE security (see docs/security.md). Keys are 40-character Z85, whose
/// alphabet has `-`: a key may start with it and is still a value.
#[derive(Args, Default)]
struct CurveArgs {
    /// Our CURVE secret key (the public key is derived from it); given
    /// again, more keys held for a key rotation, the first primary
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    curve_secret: Vec<String>,
    /// Load our CURVE key pair from a CZMQ zcert secret file
    #[arg(long, value_name = "FILE")]
    curve_cert: Option<String>,
    /// The server public key of the nodes given with --connect and --join;
    /// given again, more keys tried in turn (a server rotating its key);
    /// --join uses the first
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    curve_server: Vec<String>,
    /// Accept only CURVE clients with this public key (repeatable; `*` for any)
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    curve_allow: Vec<String>,
}

impl CurveArgs {
    fn is_empty(&self) -> bool {
        self.curve_secret.is_empty()
            && self.curve_cert.is_none()
            && self.curve_server.is_empty()
            && self.curve_allow.is_empty()
    }

    /// Applies the keys to a node; returns the server key for CONNECT.
    fn apply(&self, node: &Node) -> Result<(), zgossip::Error> {
        if let Some((primary, more)) = self.curve_secret.split_first() {
            node.send(&["SET SECRETKEY", primary])?;
            for secret in more {
                node.send(&["KEYRING", "ADD", secret])?;
            }
        }
        if let Some(cert) = &self.curve_cert {
            node.send(&["CERT", cert])?;
        }
        for key in &self.curve_allow {
            if key == "*" {
                node.send(&["CURVE", "*"])?;
            } else {
                node.send(&["CURVE ALLOW", key])?;
            }
        }
        Ok(())
    }

    fn connect(&self, node: &Node, endpoint: &str) -> Result<(), zgossip::Error> {
        if self.curve_server.is_empty() {
            return node.connect(endpoint);
        }
        let mut frames = vec!["CONNECT", endpoint];
        frames.extend(self.curve_server.iter().map(String::as_str));
        node.send(&frames)
    }

    fn join(&self, node: &Node, endpoint: &str) -> Result<(), zgossip::Error> {
        match self.curve_server.first() {
            Some(key) => node.send(&["JOIN", endpoint, key]),
            None => node.join(endpoint),
        }
    }
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got '{s}'"))
}

/// A failure with its exit code.
struct Failure(u8, String);

impl From<zgossip::Error> for Failure {
    fn from(e: zgossip::Error) -> Failure {
        Failure(EXIT_FAILURE, e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Node(args) => run_node(*args),
        Cmd::Get { key, join } => match join.agent_path() {
            Some(path) => agent_commands::get(&path, &key, join.timeout()),
            None => get(&key, &join),
        },
        Cmd::Put {
            key,
            value,
            ttl,
            ephemeral,
            join,
        } => match (join.agent_path(), ephemeral) {
            (Some(path), false) => agent_commands::put(&path, &key, &value, ttl, join.timeout()),
            (Some(path), true) => agent_commands::hold(&path, &key, &value, ttl, join.timeout()),
            (None, false) => put(&key, &value, ttl, &join),
            (None, true) => hold(&key, &value, ttl, &join),
        },
        Cmd::Del { key, join } => match join.agent_path() {
            Some(path) => agent_commands::del(&path, &key, join.timeout()),
            None => del(&key, &join),
        },
        Cmd::Watch { prefix, json, join } => match join.agent_path() {
            Some(path) => agent_commands::watch(&path, &prefix, json),
            None => watch(&prefix, json, &join),
        },
        Cmd::Members { json, join } => match join.agent_path() {
            Some(path) => agent_commands::members(&path, json, join.timeout()),
            None => members(json, &join),
        },
        Cmd::Keys { prefix, join } => match join.agent_path() {
            Some(path) => agent_commands::keys(&path, &prefix, join.timeout()),
            None => keys(&prefix, &join),
        },
        Cmd::Stats { json, agent } => {
            agent_commands::stats(&agent.path(), json, Duration::from_millis(agent.timeout))
        }
        Cmd::Keygen { cert } => keygen(cert.as_deref()),
        Cmd::Demo { nodes, tuples } => {
            demo::run(usize::from(nodes), tuples as usize).map_err(|e| Failure(EXIT_FAILURE, e))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("zgossip: {message}");
            ExitCode::from(code)
        }
    }
}

fn keygen(cert: Option<&std::path::Path>) -> Result<(), Failure> {
    let (public, secret) = zgossip::certs::keypair()?;
    match cert {
        None => println!("{public}\n{secret}"),
        Some(path) => {
            zgossip::certs::save_cert(path, &public, &secret)
                .map_err(|e| Failure(EXIT_FAILURE, e.to_string()))?;
            println!("{public}");
        }
    }
    Ok(())
}

/// Set when SIGINT or SIGTERM arrives.
fn stop_flag() -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| Failure(EXIT_FAILURE, format!("cannot handle signals: {e}")))?;
    }
    Ok(flag)
}

/// Prints one message from a node, as text or JSON. Returns false for
/// messages that are not news (replies).
fn print_event(m: &[String], json: bool, prefix: &str) -> bool {
    if let [e, id, name, state, endpoint] = m {
        if e == "MEMBER" {
            print_member_event(id, name, state, endpoint, json);
            return true;
        }
    }
    let (event, key, value) = match m {
        [e, k, v] if e == "DELIVER" => ("deliver", k, Some(v)),
        [e, k] if e == "EXPIRE" => ("expire", k, None),
        [e, k] if e == "DELETE" => ("delete", k, None),
        _ => return false,
    };
    if !key.starts_with(prefix) {
        return true;
    }
    let line = if json {
        match value {
            Some(v) => format!(
                "{{\"event\":\"{event}\",\"key\":{},\"value\":{}}}",
                json_text(key),
                json_text(v)
            ),
            None => format!("{{\"event\":\"{event}\",\"key\":{}}}", json_text(key)),
        }
    } else {
        match (event, value) {
            ("deliver", Some(v)) => format!("{key} = {v}"),
            ("expire", _) => format!("{key} expired"),
            _ => format!("{key} deleted"),
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    true
}

/// One `MEMBER id name state endpoint` from a node, as a line.
fn print_member_event(id: &str, name: &str, state: &str, endpoint: &str, json: bool) {
    let line = if json {
        format!(
            "{{\"event\":\"member\",\"id\":{},\"name\":{},\"state\":{},\"endpoint\":{}}}",
            json_text(id),
            json_text(name),
            json_text(state),
            json_text(endpoint)
        )
    } else {
        let endpoint = if endpoint.is_empty() { "-" } else { endpoint };
        format!("member {id} {} {state} {endpoint}", printable(name))
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn run_node(args: NodeArgs) -> Result<(), Failure> {
    let stop = stop_flag()?;
    let node = Arc::new(Node::new(&args.name)?);
    if args.verbose {
        node.send(&["VERBOSE"])?;
    }
    if let Some(file) = &args.config {
        node.send(&["LOAD", file])?;
    }
    if let Some(when) = &args.fsync {
        node.send(&["SET", "store/fsync", when])?;
    }
    if args.members {
        node.send(&["SET", "membership/events", "1"])?;
    }
    if let Some(endpoint) = &args.advertise {
        node.send(&["SET", "overlay/advertise", endpoint])?;
    }
    if let Some(ms) = args.dns_interval {
        node.send(&["SET", "overlay/dns-interval", &ms.to_string()])?;
    }
    if let Some(dir) = &args.data_dir {
        // Loaded before the node is reachable: it serves its tuples from
        // the first connection on.
        node.send(&["SET", "store/path", dir])?;
    }
    args.curve.apply(&node)?;
    for ep in &args.bind {
        let port = node.bind(ep)?;
        let shown = match (port, ep.rsplit_once(':')) {
            (Some(p), Some((host, _))) if ep.starts_with("tcp://") => format!("{host}:{p}"),
            _ => ep.clone(),
        };
        if args.json {
            println!("{{\"event\":\"bound\",\"endpoint\":{}}}", json_text(&shown));
        } else {
            println!("bound {shown}");
        }
    }
    http_endpoints::start(
        args.metrics.as_deref(),
        args.http.as_deref(),
        &args.http_host,
        &node,
        args.json,
    )
    .map_err(|e| Failure(EXIT_FAILURE, e))?;
    let watchers = Arc::new(agent::Watchers::default());
    let agent = start_agent(&args, &node, &watchers)?;
    for ep in &args.connect {
        args.curve.connect(&node, ep)?;
    }
    for ep in &args.join {
        args.curve.join(&node, ep)?;
    }
    if args.discover {
        let mut options = zgossip::DiscoverOptions {
            interface: args.interface.clone(),
            mdns: args.mdns,
            beacon: !args.no_beacon,
            ..Default::default()
        };
        if let Some(port) = args.discover_port {
            options.port = port;
        }
        if let Some(family) = args.discover_ipv6 {
            options.set("ipv6", family.as_option())?;
        }
        let (host, port) = node.discover(&options)?;
        if args.json {
            println!(
                "{{\"event\":\"discovering\",\"host\":{},\"port\":{port}}}",
                json_text(&host)
            );
        } else if args.no_beacon {
            println!("discovering from {host} over mDNS");
        } else {
            let mdns = if args.mdns { " and mDNS" } else { "" };
            println!("discovering from {host}, beacons on UDP port {port}{mdns}");
        }
    }
    let publish_all = |node: &Node| -> Result<(), zgossip::Error> {
        for (k, v) in &args.publish {
            match args.ttl {
                Some(t) => node.publish_ttl(k, v, Duration::from_millis(t))?,
                None => node.publish(k, v)?,
            }
        }
        for (k, v) in &args.ephemeral {
            publish_ephemeral(node, k, v, args.ttl)?;
        }
        Ok(())
    };
    publish_all(&node)?;
    let _ = std::io::stdout().flush();
    let refresh = args.ttl.map(|t| Duration::from_millis((t / 3).max(1)));
    let mut next_refresh = refresh.map(|r| Instant::now() + r);
    while !stop.load(Ordering::Relaxed) {
        if let Some(m) = node.recv_timeout(Duration::from_millis(100))? {
            watchers.dispatch(&m);
            print_event(&m, args.json, "");
        }
        if let (Some(at), Some(r)) = (next_refresh, refresh) {
            if Instant::now() >= at {
                publish_all(&node)?;
                next_refresh = Some(Instant::now() + r);
            }
        }
    }
    // The socket goes first: a command started now finds no agent.
    drop(agent);
    node.send(&["$TERM"])?;
    Ok(())
}

/// Serves the local agent at --control (an error if it cannot), or at the
/// default path (a warning if it cannot: the node runs without it), unless
/// --no-control.
fn start_agent(
    args: &NodeArgs,
    node: &Arc<Node>,
    watchers: &Arc<agent::Watchers>,
) -> Result<Option<agent::Agent>, Failure> {
    if args.no_control {
        return Ok(None);
    }
    let path = args
        .control
        .clone()
        .unwrap_or_else(|| control_path::default_path(&args.name));
    match agent::serve(&path, node.clone(), watchers.clone()) {
        Ok(agent) => {
            let shown = agent.path().display().to_string();
            if args.json {
                println!("{{\"event\":\"control\",\"path\":{}}}", json_text(&shown));
            } else {
                println!("control at {shown}");
            }
            Ok(Some(agent))
        }
        Err(e) if args.control.is_some() => Err(Failure(EXIT_FAILURE, format!("--control: {e}"))),
        Err(e) => {
            eprintln!("zgossip: no local agent: {e} (--control PATH serves one elsewhere)");
            Ok(None)
        }
    }
}

/// A node set up from the shared options, connecting to `--connect`.
fn open(args: &JoinArgs, name: &str) -> Result<Node, Failure> {
    let node = Node::new(name)?;
    if args.verbose {
        node.send(&["VERBOSE"])?;
    }
    if let Some(file) = &args.config {
        node.send(&["LOAD", file])?;
    }
    args.curve.apply(&node)?;
    for ep in &args.connect {
        args.curve.connect(&node, ep)?;
    }
    Ok(node)
}

/// Joins the network briefly: a node that connects to the given endpoints
/// and waits until at least one connection is up and the store has been
/// quiet for a moment (the initial synchronisation is over).
fn join(args: &JoinArgs) -> Result<Node, Failure> {
    let (node, deadline) = reach(args)?;
    wait_quiet(&node, deadline)?;
    Ok(node)
}

/// A node that connects to the given endpoints, once at least one of its
/// connections is up, and the deadline `--timeout` sets.
fn reach(args: &JoinArgs) -> Result<(Node, Instant), Failure> {
    let node = open(args, "cli")?;
    let deadline = Instant::now() + Duration::from_millis(args.timeout);
    while node.stats()?.get("connections").copied().unwrap_or(0) == 0 {
        if Instant::now() >= deadline {
            return Err(Failure(
                EXIT_NOT_FOUND,
                format!(
                    "no node reachable at {} within {} ms",
                    args.connect.join(", "),
                    args.timeout
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok((node, deadline))
}

/// Waits until the store has not changed for 250 ms (or the deadline).
fn wait_quiet(node: &Node, deadline: Instant) -> Result<(), Failure> {
    let mut last = node.stats()?;
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < Duration::from_millis(250) {
        std::thread::sleep(Duration::from_millis(25));
        let now = node.stats()?;
        if now.get("tuples") != last.get("tuples")
            || now.get("tuples-applied") != last.get("tuples-applied")
        {
            since = Instant::now();
        }
        last = now;
    }
    Ok(())
}

fn get(key: &str, args: &JoinArgs) -> Result<(), Failure> {
    let node = join(args)?;
    match node.get(key)? {
        Some(v) => {
            println!("{v}");
            Ok(())
        }
        None => Err(Failure(EXIT_NOT_FOUND, format!("{key}: not found"))),
    }
}

fn put(key: &str, value: &str, ttl: Option<u64>, args: &JoinArgs) -> Result<(), Failure> {
    let node = join(args)?;
    match ttl {
        Some(t) => node.publish_ttl(key, value, Duration::from_millis(t))?,
        None => node.publish(key, value)?,
    }
    // The node lingers on $TERM until the tuple has left.
    node.send(&["$TERM"])?;
    Ok(())
}

/// EPHEMERAL key value [ttl]: a ttl of 0 is refused, as the command does.
fn publish_ephemeral(
    node: &Node,
    key: &str,
    value: &str,
    ttl: Option<u64>,
) -> Result<(), zgossip::Error> {
    match ttl {
        Some(t) => node.send(&["EPHEMERAL", key, value, &t.to_string()]),
        None => node.publish_ephemeral(key, value),
    }
}

/// `put --ephemeral`: writes the tuple tied to this node's life and holds
/// it until SIGINT or SIGTERM, refreshing it every ttl/3 with a ttl; then
/// the node leaves, and every node deletes the tuple. Fails (exit 1) when
/// the tuple stops being this command's: deleted, expired or written over.
fn hold(key: &str, value: &str, ttl: Option<u64>, args: &JoinArgs) -> Result<(), Failure> {
    let node = join(args)?;
    // Set up once the network is reached: a signal before then ends the
    // command at once, with nothing written.
    let stop = stop_flag()?;
    publish_ephemeral(&node, key, value, ttl)?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "holding {}", printable(key));
        let _ = out.flush();
    }
    let refresh = ttl.map(|t| Duration::from_millis((t / 3).max(1)));
    let mut next_refresh = refresh.map(|r| Instant::now() + r);
    let mut lost = None;
    while lost.is_none() && !stop.load(Ordering::Relaxed) {
        if let Some(m) = node.recv_timeout(Duration::from_millis(100))? {
            lost = match m.as_slice() {
                [e, k, v] if e == "DELIVER" && k == key && v != value => {
                    Some("written over by another node")
                }
                [e, k] if e == "DELETE" && k == key => Some("deleted"),
                [e, k] if e == "EXPIRE" && k == key => Some("expired"),
                _ => None,
            };
        }
        if let (Some(at), Some(r)) = (next_refresh, refresh) {
            if lost.is_none() && Instant::now() >= at {
                publish_ephemeral(&node, key, value, ttl)?;
                next_refresh = Some(Instant::now() + r);
            }
        }
    }
    node.send(&["$TERM"])?;
    match lost {
        None => Ok(()),
        Some(why) => Err(Failure(
            EXIT_NOT_FOUND,
            format!("{}: {why}, no longer held", printable(key)),
        )),
    }
}

fn keys(prefix: &str, args: &JoinArgs) -> Result<(), Failure> {
    let node = join(args)?;
    agent_commands::print_keys(&node.keys(prefix)?);
    node.send(&["$TERM"])?;
    Ok(())
}

fn del(key: &str, args: &JoinArgs) -> Result<(), Failure> {
    let node = join(args)?;
    node.unpublish(key)?;
    node.send(&["$TERM"])?;
    Ok(())
}

/// How long the member table must stay the same before `members` prints it.
const MEMBERS_SETTLE: Duration = Duration::from_millis(300);

fn members(json: bool, args: &JoinArgs) -> Result<(), Failure> {
    let (node, deadline) = reach(args)?;
    let list = wait_members(&node, deadline, args)?;
    print_members(&list, json);
    // The node leaves: the others list it as left, not failed.
    node.send(&["$TERM"])?;
    Ok(())
}

/// The members the node learnt from the network, without itself (the
/// first of its list): waits until another member appears, then until the
/// list has stayed the same for `MEMBERS_SETTLE` (the table arrives in
/// batches) or the deadline comes, which prints it as it stands.
fn wait_members(node: &Node, deadline: Instant, args: &JoinArgs) -> Result<Vec<Member>, Failure> {
    let mut last: Vec<Member> = Vec::new();
    let mut since = Instant::now();
    loop {
        let list: Vec<Member> = node.members()?.into_iter().skip(1).collect();
        let now = Instant::now();
        if list != last {
            last = list;
            since = now;
        }
        if !last.is_empty() && (now.duration_since(since) >= MEMBERS_SETTLE || now >= deadline) {
            return Ok(last);
        }
        if now >= deadline {
            return Err(Failure(
                EXIT_NOT_FOUND,
                format!(
                    "no member table from {} within {} ms (a CZMQ node keeps none)",
                    args.connect.join(", "),
                    args.timeout
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `s` with its control characters escaped, so that a member takes one
/// table row whatever its name.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints the members as an aligned table, or as one JSON object per line.
fn print_members(list: &[Member], json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        for m in list {
            let _ = writeln!(
                out,
                "{{\"id\":\"{:016x}\",\"name\":{},\"state\":\"{}\",\"endpoint\":{}}}",
                m.id,
                json_text(&m.name),
                m.state.name(),
                json_text(&m.endpoint)
            );
        }
    } else {
        let header = ["ID", "NAME", "STATE", "ENDPOINT"].map(String::from);
        let rows: Vec<[String; 4]> = std::iter::once(header)
            .chain(list.iter().map(|m| {
                [
                    format!("{:016x}", m.id),
                    printable(&m.name),
                    m.state.name().to_string(),
                    match m.endpoint.as_str() {
                        "" => "-".to_string(),
                        e => printable(e),
                    },
                ]
            }))
            .collect();
        let mut width = [0usize; 3];
        for row in &rows {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for [id, name, state, endpoint] in &rows {
            let _ = writeln!(
                out,
                "{id:<w0$}  {name:<w1$}  {state:<w2$}  {endpoint}",
                w0 = width[0],
                w1 = width[1],
                w2 = width[2]
            );
        }
    }
    let _ = out.flush();
}

fn watch(prefix: &str, json: bool, args: &JoinArgs) -> Result<(), Failure> {
    let stop = stop_flag()?;
    let node = open(args, "watch")?;
    while !stop.load(Ordering::Relaxed) {
        if let Some(m) = node.recv_timeout(Duration::from_millis(100))? {
            print_event(&m, json, prefix);
        }
    }
    node.send(&["$TERM"])?;
    Ok(())
}
