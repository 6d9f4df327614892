//! Test support: the `zgossip` binary run as a child process, its stdout
//! lines on a channel, every wait bounded by [`T`], killed when dropped.
#![allow(dead_code)]

#[path = "../../../tests/support/lines.rs"]
mod lines;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub use lines::lines_of;

pub const BIN: &str = env!("CARGO_BIN_EXE_zgossip");
/// The longest any one wait of a test takes.
pub const T: Duration = Duration::from_secs(10);

/// A process whose stdout lines arrive on a channel (and whose stderr is
/// kept, for [`Proc::spawn_keeping_stderr`]).
pub struct Proc {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    /// `zgossip node --no-control args`: a node that serves no local
    /// agent (tests of the agent start theirs with `start`).
    pub fn node(args: &[&str]) -> Proc {
        let mut all = vec!["node", "--no-control"];
        all.extend_from_slice(args);
        Proc::start(&all)
    }

    /// `zgossip args`, its stderr inherited.
    pub fn start(args: &[&str]) -> Proc {
        let mut c = Command::new(BIN);
        c.args(args);
        Proc::spawn(c)
    }

    /// Runs `c`, its stderr inherited.
    pub fn spawn(c: Command) -> Proc {
        let (child, lines) = launch(c, Stdio::inherit());
        Proc {
            child,
            lines,
            stderr: Arc::default(),
        }
    }

    /// Runs `c`, its stderr kept for [`Proc::wait_with_stderr`].
    pub fn spawn_keeping_stderr(c: Command) -> Proc {
        let (mut child, lines) = launch(c, Stdio::piped());
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            kept.lock().unwrap().push_str(&s);
        });
        Proc {
            child,
            lines,
            stderr,
        }
    }

    /// Waits for a line satisfying `f`; returns it.
    pub fn expect(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if f(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!("no line '{what}' within {T:?}"),
            }
        }
    }

    /// Waits for a line that starts with `prefix`; returns the rest of it.
    pub fn expect_prefix(&self, prefix: &str) -> String {
        let line = self.expect(&format!("{prefix}..."), |l| l.starts_with(prefix));
        line[prefix.len()..].to_string()
    }

    /// Waits for lines satisfying each of `wanted`, in any order.
    pub fn expect_all(&self, wanted: &[&str]) {
        let mut missing: Vec<&str> = wanted.to_vec();
        let deadline = Instant::now() + T;
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => missing.retain(|w| *w != l),
                Err(_) => panic!("no lines {missing:?} within {T:?}"),
            }
        }
    }

    /// The lines that come within `d`.
    pub fn lines_for(&self, d: Duration) -> Vec<String> {
        let deadline = Instant::now() + d;
        let mut lines = Vec::new();
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(l);
        }
        lines
    }

    /// The `tcp://HOST:PORT` of its `bound tcp://...` line.
    pub fn bound_endpoint(&self) -> String {
        let line = self.expect("bound", |l| l.starts_with("bound tcp://"));
        line.trim_start_matches("bound ").to_string()
    }

    /// Sends `sig` (`-TERM`, ...) with kill(1).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill").args([sig, &pid]).status().unwrap();
    }

    /// Sends SIGTERM and waits for a clean exit; the exit code.
    pub fn terminate(mut self) -> i32 {
        self.signal("-TERM");
        self.wait("stop on SIGTERM")
    }

    /// Waits for the process to exit (at most `T`); its exit code.
    pub fn wait(&mut self, what: &str) -> i32 {
        let deadline = Instant::now() + T;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "process did not {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit (at most `T`); its exit code and
    /// what it wrote to stderr (kept: [`Proc::spawn_keeping_stderr`]).
    pub fn wait_with_stderr(&mut self, what: &str) -> (i32, String) {
        let code = self.wait(what);
        // The stderr reader ends with the process.
        let read_by = Instant::now() + Duration::from_secs(2);
        std::thread::sleep(Duration::from_millis(50));
        while Instant::now() < read_by && Arc::strong_count(&self.stderr) > 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let err = self.stderr.lock().unwrap().clone();
        (code, err)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// Starts `c` with its stdout piped and read as lines, and `stderr`.
fn launch(mut c: Command, stderr: Stdio) -> (Child, mpsc::Receiver<String>) {
    let mut child = c.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    (child, lines)
}

/// Runs `zgossip args` to its end; its exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
