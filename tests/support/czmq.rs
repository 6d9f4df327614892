//! Test support: a real CZMQ 4.2.1 zgossip node in a child process
//! (`tests/czmq/czmq_node.c`, built on first use against the system
//! libczmq), driven line by line. Include it with
//! `#[path = "support/czmq.rs"] mod czmq;`.
//!
//! Lines are frames joined by TAB; `\t`, `\n`, `\r` and `\\` are escaped
//! with a backslash in both directions, so any frame survives.
//! Every wait here is bounded; a driver that does not answer in time fails
//! the test with a message naming the node.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long `port`, `status` and friends wait for a reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most stderr lines kept per node.
const LOG_LINES: usize = 10_000;

/// True when pkg-config finds libczmq (checked once).
pub fn czmq_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("pkg-config")
            .args(["--exists", "libczmq"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// True when CZMQ tests can run. Without libczmq: under CI (env `CI` set
/// and not "false"/"0") this panics, since CI must have it; elsewhere it
/// prints a skip notice and returns false.
pub fn require_czmq() -> bool {
    if czmq_available() {
        return true;
    }
    let ci = std::env::var("CI").unwrap_or_default();
    if !ci.is_empty() && ci != "false" && ci != "0" {
        panic!(
            "CI must have libczmq-dev: the test command installs it \
             (pkg-config cannot find libczmq)"
        );
    }
    eprintln!("skipping: libczmq not found (apt-get install libczmq-dev pkg-config)");
    false
}

/// Builds `tests/czmq/<name>.c` against libczmq into the test temp dir,
/// once per source content; safe when several test binaries build at the
/// same time (each compiles to a unique file, then renames it into place).
pub fn build_c_tool(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = manifest.join("tests/czmq").join(format!("{name}.c"));
    let text =
        std::fs::read(&source).unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
    // FNV-1a: stable across runs, so an unchanged source is built once.
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = dir.join(format!("{name}-{hash:016x}"));
    if target.exists() {
        return target;
    }
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libczmq"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run pkg-config: {e}"));
    assert!(flags.status.success(), "pkg-config cannot find libczmq");
    let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
    let unique = dir.join(format!(
        "{name}-{hash:016x}.{}.{:?}.tmp",
        std::process::id(),
        thread::current().id()
    ));
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-O1")
        .arg("-o")
        .arg(&unique)
        .arg(&source)
        .args(flags.split_whitespace())
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler: {e}"));
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&unique, &target)
        .unwrap_or_else(|e| panic!("cannot move {} into place: {e}", unique.display()));
    target
}

/// The zgossip driver, built once per test binary.
fn driver() -> &'static Path {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER.get_or_init(|| build_c_tool("czmq_node"))
}

/// Escapes a frame for a driver line.
pub fn escape(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len());
    for c in frame.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Splits a driver line into frames, undoing [`escape`].
pub fn unescape_line(line: &str) -> Vec<String> {
    let mut frames = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let current = frames.last_mut().expect("never empty");
        match c {
            '\t' => frames.push(String::new()),
            '\\' => match chars.next() {
                Some('t') => current.push('\t'),
                Some('n') => current.push('\n'),
                Some('r') => current.push('\r'),
                Some(other) => current.push(other),
                None => current.push('\\'),
            },
            c => current.push(c),
        }
    }
    frames
}

/// One CZMQ zgossip actor in a child process.
pub struct CzmqNode {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Vec<String>>,
    /// Messages read while waiting for a PORT or STATUS reply, handed out
    /// by `recv_timeout` before anything newer.
    pending: RefCell<VecDeque<Vec<String>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl CzmqNode {
    /// Starts a CZMQ node; `name` is its log prefix. Panics when the driver
    /// cannot be built or started (call [`require_czmq`] first).
    pub fn spawn(name: &str) -> CzmqNode {
        let mut child = Command::new(driver())
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the CZMQ driver: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(format!("czmq-{name}-out"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(unescape_line(&line)).is_err() {
                        break;
                    }
                }
            })
            .expect("cannot start a reader thread");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        thread::Builder::new()
            .name(format!("czmq-{name}-err"))
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut log) = sink.lock() {
                        if log.len() < LOG_LINES {
                            log.push(line);
                        }
                    }
                }
            })
            .expect("cannot start a log thread");
        CzmqNode {
            name: name.to_string(),
            child,
            stdin,
            rx,
            pending: RefCell::new(VecDeque::new()),
            log,
        }
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one command (a multipart string message) to the actor.
    pub fn send(&mut self, frames: &[&str]) {
        let line: Vec<String> = frames.iter().map(|f| escape(f)).collect();
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("CZMQ node {} is closed", self.name));
        if let Err(e) = writeln!(stdin, "{}", line.join("\t")).and_then(|()| stdin.flush()) {
            panic!(
                "CZMQ node {} stopped taking commands: {e}\nlog:\n{}",
                self.name,
                self.log().join("\n")
            );
        }
    }

    /// The next message from the actor, waiting at most `d`.
    pub fn recv_timeout(&self, d: Duration) -> Option<Vec<String>> {
        if let Some(msg) = self.pending.borrow_mut().pop_front() {
            return Some(msg);
        }
        // Timeout, or the driver has exited.
        self.rx.recv_timeout(d).ok()
    }

    /// Waits for a reply whose first frame is `command`; other messages
    /// are kept for `recv_timeout`.
    fn wait_reply(&mut self, command: &str) -> Vec<String> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = match self.rx.recv_timeout(left) {
                Ok(msg) => msg,
                Err(e) => panic!(
                    "CZMQ node {}: no {command} reply within {REPLY_TIMEOUT:?} ({e:?})\nlog:\n{}",
                    self.name,
                    self.log().join("\n")
                ),
            };
            if msg.first().map(String::as_str) == Some(command) {
                self.pending.borrow_mut().extend(skipped);
                return msg;
            }
            skipped.push(msg);
        }
    }

    /// Sends `BIND endpoint`.
    pub fn bind(&mut self, endpoint: &str) {
        self.send(&["BIND", endpoint]);
    }

    /// Sends `PUBLISH key value`.
    pub fn publish(&mut self, key: &str, value: &str) {
        self.send(&["PUBLISH", key, value]);
    }

    /// Sends `CONNECT endpoint`.
    pub fn connect(&mut self, endpoint: &str) {
        self.send(&["CONNECT", endpoint]);
    }

    /// Sends PORT and returns the port of the last tcp BIND.
    pub fn port(&mut self) -> u16 {
        self.send(&["PORT"]);
        let reply = self.wait_reply("PORT");
        let port = reply.get(1).and_then(|p| p.parse::<i64>().ok());
        match port.and_then(|p| u16::try_from(p).ok()) {
            Some(p) => p,
            None => panic!("CZMQ node {}: bad PORT reply {reply:?}", self.name),
        }
    }

    /// Sends STATUS and returns the number of tuples the node holds.
    /// DELIVERs that arrive first stay queued for `recv_timeout`.
    pub fn status(&mut self) -> usize {
        self.send(&["STATUS"]);
        let reply = self.wait_reply("STATUS");
        match reply.get(1).and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => panic!("CZMQ node {}: bad STATUS reply {reply:?}", self.name),
        }
    }

    /// Polls STATUS until it reports `want` tuples or `within` elapses;
    /// returns the last count seen.
    pub fn wait_status(&mut self, want: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let n = self.status();
            if n == want || Instant::now() >= deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every message queued so far (without waiting), as `(key, value)` for
    /// the DELIVERs among them; other messages are dropped.
    pub fn drain_deliveries(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Some(msg) = self.recv_timeout(Duration::ZERO) {
            if let [cmd, key, value] = msg.as_slice() {
                if cmd == "DELIVER" {
                    out.push((key.clone(), value.clone()));
                }
            }
        }
        out
    }

    /// What the node wrote on stderr so far (CZMQ's log), at most
    /// 10,000 lines.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for CzmqNode {
    fn drop(&mut self) {
        // End of input makes the driver destroy its actor and exit.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
