//! Helpers shared by the unit tests of the ZMTP codec: fake peers and
//! pairs of connections that talk to each other in memory.

use super::config::ConnectionConfig;
use super::connection::{Connection, ConnectionEvent};
use super::error::Error;
use super::frame::push_command;
use super::socket_type::SocketType;

pub(super) fn cfg(t: SocketType) -> ConnectionConfig {
    ConnectionConfig::new(t)
}

/// Collected outcome of polling a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    Ready(SocketType, Vec<u8>),
    Msg(Vec<Vec<u8>>),
}

pub(super) fn drain(c: &mut Connection, seen: &mut Vec<Seen>) -> Result<(), Error> {
    drain_with(c, seen, Connection::poll)
}

/// Like [`drain`], polling with `poll` (e.g. the general path alone).
pub(super) fn drain_with(
    c: &mut Connection,
    seen: &mut Vec<Seen>,
    poll: fn(&mut Connection) -> Result<Option<ConnectionEvent<'_>>, Error>,
) -> Result<(), Error> {
    while let Some(ev) = poll(c)? {
        seen.push(match ev {
            ConnectionEvent::Ready(p) => Seen::Ready(p.socket_type, p.identity),
            ConnectionEvent::Message(m) => {
                assert_eq!(m.first(), m.parts().next().unwrap());
                assert_eq!(m.len(), m.parts().count());
                Seen::Msg(m.to_vec())
            }
        });
    }
    Ok(())
}

pub(super) fn take_output(c: &mut Connection) -> Vec<u8> {
    let v = c.pending_output().to_vec();
    c.consume_output(v.len());
    v
}

/// Shuttles bytes between two connections until both are quiet.
pub(super) fn pump(a: &mut Connection, b: &mut Connection) -> (Vec<Seen>, Vec<Seen>) {
    let (sa, sb) = pump_result(a, b);
    (sa.unwrap(), sb.unwrap())
}

/// As [`pump`], keeping on after a side fails: each side's events, or its
/// first error.
pub(super) fn pump_result(
    a: &mut Connection,
    b: &mut Connection,
) -> (Result<Vec<Seen>, Error>, Result<Vec<Seen>, Error>) {
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let (mut ea, mut eb) = (None, None);
    for _ in 0..100 {
        let ab = take_output(a);
        let ba = take_output(b);
        if ab.is_empty() && ba.is_empty() {
            break;
        }
        b.feed(&ab);
        a.feed(&ba);
        if ea.is_none() {
            ea = drain(a, &mut sa).err();
        }
        if eb.is_none() {
            eb = drain(b, &mut sb).err();
        }
    }
    (ea.map_or(Ok(sa), Err), eb.map_or(Ok(sb), Err))
}

pub(super) fn connected(x: SocketType, y: SocketType) -> (Connection, Connection) {
    let mut a = Connection::new(cfg(x));
    let mut b = Connection::new(cfg(y));
    let (sa, sb) = pump(&mut a, &mut b);
    assert_eq!(sa, vec![Seen::Ready(y, vec![])]);
    assert_eq!(sb, vec![Seen::Ready(x, vec![])]);
    assert!(a.is_ready() && b.is_ready());
    (a, b)
}

/// A fake peer: greeting of the given version followed by READY.
pub(super) fn peer_bytes(minor: u8, socket_type: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, minor];
    let mut mech = [0u8; 20];
    mech[..4].copy_from_slice(b"NULL");
    v.extend_from_slice(&mech);
    v.push(0);
    v.extend_from_slice(&[0; 31]);
    let mut body = vec![11];
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    push_command(&mut v, b"READY", &[&body]);
    v
}

pub(super) fn ready_dealer(minor: u8) -> Connection {
    let mut c = Connection::new(cfg(SocketType::Dealer));
    c.feed(&peer_bytes(minor, "ROUTER"));
    let mut seen = Vec::new();
    drain(&mut c, &mut seen).unwrap();
    assert_eq!(seen, vec![Seen::Ready(SocketType::Router, vec![])]);
    take_output(&mut c);
    c
}
