//! `zgossip get|put|del|keys|members|stats|watch` through the local agent
//! (docs/agent.md): each is one request on the agent's control socket,
//! answered from the agent's node; nothing joins the network.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zgossip::Member;

use crate::control_client::{reply_or_error, Client};
use crate::json::json_text;
use crate::{
    print_event, print_members, printable, stop_flag, Failure, EXIT_FAILURE, EXIT_NOT_FOUND,
};

/// How often a streaming command looks at its stop flag.
const TICK: Duration = Duration::from_millis(100);

fn ask(path: &Path, frames: &[&str], timeout: Duration) -> Result<Vec<String>, Failure> {
    Client::connect(path)?.request(frames, timeout)
}

/// A reply that is not the one asked for: the agent is not speaking this
/// command's protocol.
fn unexpected(reply: &[String]) -> Failure {
    let word = reply.first().map_or("", String::as_str);
    Failure(
        EXIT_FAILURE,
        format!("the agent replied '{}'", printable(word)),
    )
}

pub fn get(path: &Path, key: &str, timeout: Duration) -> Result<(), Failure> {
    let reply = ask(path, &["GET", key], timeout)?;
    match reply.as_slice() {
        [w, _, value] if w == "VALUE" => {
            println!("{value}");
            Ok(())
        }
        [w, _] if w == "VALUE" => Err(Failure(EXIT_NOT_FOUND, format!("{key}: not found"))),
        _ => Err(unexpected(&reply)),
    }
}

pub fn put(
    path: &Path,
    key: &str,
    value: &str,
    ttl: Option<u64>,
    timeout: Duration,
) -> Result<(), Failure> {
    let ttl = ttl.map(|t| t.to_string());
    let mut frames = vec!["PUBLISH", key, value];
    frames.extend(ttl.as_deref());
    expect_ok(&ask(path, &frames, timeout)?)
}

pub fn del(path: &Path, key: &str, timeout: Duration) -> Result<(), Failure> {
    expect_ok(&ask(path, &["UNPUBLISH", key], timeout)?)
}

fn expect_ok(reply: &[String]) -> Result<(), Failure> {
    match reply {
        [w] if w == "OK" => Ok(()),
        _ => Err(unexpected(reply)),
    }
}

pub fn keys(path: &Path, prefix: &str, timeout: Duration) -> Result<(), Failure> {
    let reply = ask(path, &["KEYS", prefix], timeout)?;
    let Some((_, keys)) = reply.split_first().filter(|(w, _)| *w == "KEYS") else {
        return Err(unexpected(&reply));
    };
    print_keys(keys);
    Ok(())
}

/// One key a line, control characters escaped.
pub fn print_keys(keys: &[String]) {
    let mut out = std::io::stdout().lock();
    for k in keys {
        let _ = writeln!(out, "{}", printable(k));
    }
    let _ = out.flush();
}

pub fn stats(path: &Path, json: bool, timeout: Duration) -> Result<(), Failure> {
    let reply = ask(path, &["STATS"], timeout)?;
    let Some((_, counters)) = reply.split_first().filter(|(w, _)| *w == "STATS") else {
        return Err(unexpected(&reply));
    };
    let mut out = std::io::stdout().lock();
    if json {
        let fields: Vec<String> = counters
            .chunks(2)
            .filter_map(|c| match c {
                [name, value] => Some(format!("{}:{value}", json_text(name))),
                _ => None,
            })
            .collect();
        let _ = writeln!(out, "{{{}}}", fields.join(","));
    } else {
        for c in counters.chunks(2) {
            if let [name, value] = c {
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
    let _ = out.flush();
    Ok(())
}

/// The agent's member table, its own node first.
pub fn members(path: &Path, json: bool, timeout: Duration) -> Result<(), Failure> {
    let reply = ask(path, &["MEMBERS"], timeout)?;
    let Some((_, frames)) = reply.split_first().filter(|(w, _)| *w == "MEMBERS") else {
        return Err(unexpected(&reply));
    };
    let list = frames
        .chunks(4)
        .map(|c| match c {
            [id, name, state, endpoint] => Member::from_frames(id, name, state, endpoint)
                .map_err(|e| Failure(EXIT_FAILURE, e.to_string())),
            _ => Err(unexpected(&reply)),
        })
        .collect::<Result<Vec<Member>, Failure>>()?;
    print_members(&list, json);
    Ok(())
}

/// Every tuple under the prefix, then every change, until SIGINT or
/// SIGTERM (exit 0) or the agent goes (`EXIT_AGENT_GONE`).
pub fn watch(path: &Path, prefix: &str, json: bool) -> Result<(), Failure> {
    let stop = stop_flag()?;
    let mut client = Client::connect(path)?;
    client.send(&["WATCH", prefix])?;
    while !stop.load(Ordering::Relaxed) {
        if let Some(m) = client.next(Some(Instant::now() + TICK))? {
            let m = reply_or_error(m)?;
            print_event(&m, json, prefix);
        }
    }
    Ok(())
}

/// `put --ephemeral` through the agent: the agent's node publishes the
/// tuple `EPHEMERAL` and holds it for this command; on SIGINT or SIGTERM
/// the command asks the agent to delete it, and the agent deletes it too
/// when the command dies. Exit 1 when the tuple stops being the one held.
pub fn hold(
    path: &Path,
    key: &str,
    value: &str,
    ttl: Option<u64>,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut client = Client::connect(path)?;
    let ttl = ttl.map(|t| t.to_string());
    let mut frames = vec!["HOLD", key, value];
    frames.extend(ttl.as_deref());
    let reply = client.request(&frames, timeout)?;
    if reply.first().map(String::as_str) != Some("HOLDING") {
        return Err(unexpected(&reply));
    }
    let stop = stop_flag()?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "holding {}", printable(key));
        let _ = out.flush();
    }
    while !stop.load(Ordering::Relaxed) {
        if let Some(m) = client.next(Some(Instant::now() + TICK))? {
            return match reply_or_error(m)?.as_slice() {
                [w, _, why] if w == "LOST" => Err(Failure(
                    EXIT_NOT_FOUND,
                    format!("{}: {why}, no longer held", printable(key)),
                )),
                other => Err(unexpected(other)),
            };
        }
    }
    let reply = client.request(&["RELEASE"], timeout)?;
    match reply.as_slice() {
        [w, _] if w == "RELEASED" => Ok(()),
        // Lost just before the release: it is not held any more either way.
        [w, _, why] if w == "LOST" => Err(Failure(
            EXIT_NOT_FOUND,
            format!("{}: {why}, no longer held", printable(key)),
        )),
        _ => Err(unexpected(&reply)),
    }
}
