//! A small LAN chat over beacons: each line you type is beaconed until
//! the next one; everyone on the LAN prints each line once.
//!
//! ```sh
//! cargo run --example chat -- --nick alice      # type lines
//! cargo run --example chat -- --nick bob
//! ```
//!
//! Beacons stay on loopback (`lo`) unless `--interface NAME` says
//! otherwise. For scripts: `--say TEXT` sends one line instead of reading
//! stdin, `--until TEXT` exits once a line containing TEXT is heard, and
//! `--for SECS` bounds the run (default: 60).
//!
//! Beacon: "ZCHAT" | sequence (u32, big-endian) | nick | 0 | text, at most
//! 255 bytes.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zgossip::{Beacon, UdpOptions};

const MAGIC: &[u8] = b"ZCHAT";

fn encode(seq: u32, nick: &str, text: &str) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(nick.as_bytes());
    b.push(0);
    b.extend_from_slice(text.as_bytes());
    b.truncate(255);
    b
}

fn decode(b: &[u8]) -> Option<(u32, String, String)> {
    let rest = b.strip_prefix(MAGIC)?;
    let seq = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let body = &rest[4..];
    let nul = body.iter().position(|&c| c == 0)?;
    let nick = String::from_utf8_lossy(&body[..nul]).into_owned();
    let text = String::from_utf8_lossy(&body[nul + 1..]).into_owned();
    Some((seq, nick, text))
}

fn main() {
    let mut nick = format!("user{}", std::process::id());
    let mut interface = String::from("lo");
    let (mut say, mut until) = (None, None);
    let mut secs = 60u64;
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let v = it.next().unwrap_or_default();
        match x.as_str() {
            "--nick" => nick = v,
            "--interface" => interface = v,
            "--say" => say = Some(v),
            "--until" => until = Some(v),
            "--for" => secs = v.parse().unwrap_or(secs),
            _ => {
                eprintln!(
                    "usage: chat [--nick N] [--interface lo] [--say T] [--until T] [--for S]"
                );
                std::process::exit(2);
            }
        }
    }
    let beacon = Beacon::with_options(UdpOptions {
        interface: Some(interface.clone()),
        ..UdpOptions::default()
    })
    .and_then(|b| b.configure(5678).map(|h| (b, h)));
    let (beacon, host) = match beacon {
        Ok((b, h)) if !h.is_empty() => (b, h),
        Ok(_) => {
            eprintln!("chat: no usable interface '{interface}'");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("chat: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("chat: {nick} on {host}");
    if let Err(e) = beacon.subscribe(MAGIC) {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
    let (lines_tx, lines) = mpsc::channel::<String>();
    match say {
        Some(text) => {
            let _ = lines_tx.send(text);
        }
        None => {
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
    }
    let mut seq = 0u32;
    // Last sequence heard per sender: each line is printed once.
    let mut last: HashMap<(String, String), u32> = HashMap::new();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        while let Ok(line) = lines.try_recv() {
            seq += 1;
            let _ = beacon.publish(&encode(seq, &nick, &line), Duration::from_millis(100));
        }
        let Ok(Some(got)) = beacon.recv_beacon(Duration::from_millis(100)) else {
            continue;
        };
        let Some((s, who, text)) = decode(&got.data) else {
            continue;
        };
        let key = (got.address.clone(), who.clone());
        if last.get(&key).is_some_and(|&l| l >= s) {
            continue;
        }
        if last.len() < 10_000 {
            last.insert(key, s);
        }
        println!("{who}@{}: {text}", got.address);
        if until.as_deref().is_some_and(|u| text.contains(u)) {
            // Stay on air a moment so the others hear our line too.
            std::thread::sleep(Duration::from_millis(500));
            return;
        }
    }
    if until.is_some() {
        eprintln!("chat: never heard what we waited for");
        std::process::exit(1);
    }
}
