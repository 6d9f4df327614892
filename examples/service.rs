//! A service advertises itself with a beacon; clients find it and say
//! hello over TCP (the ZeroMQ Guide's "find the server" pattern).
//!
//! ```sh
//! cargo run --example service -- serve            # one terminal
//! cargo run --example service -- hello            # another
//! ```
//!
//! Beacons stay on loopback (`lo`) unless `--interface NAME` says
//! otherwise; `--for SECS` bounds the run (default 10).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use zgossip::{Beacon, UdpOptions};

const MAGIC: &[u8] = b"SVC1 ";

struct Args {
    role: String,
    interface: String,
    port: u16,
    secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        role: String::new(),
        interface: "lo".into(),
        port: 5677,
        secs: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--interface" => a.interface = it.next().unwrap_or_default(),
            "--port" => a.port = it.next().and_then(|p| p.parse().ok()).unwrap_or(a.port),
            "--for" => a.secs = it.next().and_then(|p| p.parse().ok()).unwrap_or(a.secs),
            _ => a.role = x,
        }
    }
    a
}

fn beacon(a: &Args) -> Result<(Beacon, String), Box<dyn std::error::Error>> {
    let b = Beacon::with_options(UdpOptions {
        interface: Some(a.interface.clone()),
        ..UdpOptions::default()
    })?;
    let host = b.configure(a.port)?;
    if host.is_empty() {
        return Err(format!("no usable interface '{}'", a.interface).into());
    }
    Ok((b, host))
}

fn serve(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (b, host) = beacon(a)?;
    let bind_host = if host == "*" {
        "0.0.0.0"
    } else {
        host.as_str()
    };
    let listener = TcpListener::bind((bind_host, 0))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(port.to_string().as_bytes());
    b.publish(&data, Duration::from_millis(200))?;
    println!("service on {host}:{port}, advertised");
    let end = Instant::now() + Duration::from_secs(a.secs);
    while Instant::now() < end {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line)?;
                println!("{peer} says: {}", line.trim());
                writeln!(
                    &stream,
                    "hello, {}",
                    line.trim().trim_start_matches("hello from ")
                )?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn hello(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (b, _) = beacon(a)?;
    b.subscribe(MAGIC)?;
    let got = b
        .recv_beacon(Duration::from_secs(a.secs))?
        .ok_or("no service found")?;
    let port: u16 = std::str::from_utf8(&got.data[MAGIC.len()..])?.parse()?;
    println!("found the service at {}:{port}", got.address);
    let stream = TcpStream::connect((got.address.as_str(), port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    writeln!(&stream, "hello from client {}", std::process::id())?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    println!("service replied: {}", reply.trim());
    Ok(())
}

fn main() {
    let a = args();
    let result = match a.role.as_str() {
        "serve" => serve(&a),
        "hello" => hello(&a),
        _ => Err("usage: service serve|hello [--interface lo] [--port 5677] [--for SECS]".into()),
    };
    if let Err(e) = result {
        eprintln!("service: {e}");
        std::process::exit(1);
    }
}
