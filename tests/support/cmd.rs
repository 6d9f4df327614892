//! Test support: running commands, every one bounded or failing with a
//! message that names it. Included by tests/support/netns.rs (as
//! `netns::cmd`) and by the harnesses built on it; include it alone with
//! `#[path = "support/cmd.rs"] mod cmd;`.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `program args` to its end (stdin empty): its stdout, or an error
/// naming the command and what it wrote to stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    run_or_say(program, args, "")
}

/// Runs `ip args`; an `ip` that cannot be started is said to be missing
/// with the package that has it.
pub fn ip(args: &[&str]) -> Result<(), String> {
    run_or_say("ip", args, "; install iproute2").map(|_| ())
}

/// Runs `ip -n NS args`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    ip(&all)
}

/// Checks that `ip` runs at all (`ip -V`), naming the package if not.
pub fn require_ip() -> Result<(), String> {
    run("ip", &["-V"])
        .map(|_| ())
        .map_err(|e| format!("{e}; install iproute2"))
}

/// [`run`], with `missing` added to the message when `program` cannot be
/// started.
fn run_or_say(program: &str, args: &[&str], missing: &str) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{program}` ({e}){missing}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs a command to its end, at most `limit`; kills it after.
pub fn run_bounded(mut c: Command, limit: Duration) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start child");
    // Read the pipes while waiting, so that a chatty child never blocks.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                break child.wait().expect("child status");
            }
        }
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}
