//! Handshake metadata: the properties of a NULL `READY` and of CURVE's
//! INITIATE and READY boxes. Ours are encoded from the [`ConnectionConfig`]; the
//! peer's are parsed, checked against our socket type and kept in a
//! [`PeerInfo`].

use super::config::ConnectionConfig;
use super::error::Error;
use super::socket_type::SocketType;
use crate::wire::curve::KEY_LEN;

/// What the peer told us in its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's `Socket-Type`.
    pub socket_type: SocketType,
    /// The peer's `Identity` property (empty when absent).
    pub identity: Vec<u8>,
    /// Major ZMTP version from the peer's greeting (3 or more).
    pub major_version: u8,
    /// Minor ZMTP version from the peer's greeting (0 for ZMTP 3.0).
    pub minor_version: u8,
    /// Every property of the peer's `READY`, in order, including
    /// `Socket-Type` and `Identity`. Names are decoded lossily as UTF-8.
    pub properties: Vec<(String, Vec<u8>)>,
    /// Under CURVE, the peer's long-term public key (the client's key as
    /// the server authenticated it, or the server's key we dialled).
    pub curve_key: Option<[u8; KEY_LEN]>,
}

impl PeerInfo {
    /// Value of the first property called `name`, compared without regard
    /// to ASCII case (metadata names are case-insensitive).
    pub fn property(&self, name: &str) -> Option<&[u8]> {
        self.properties
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the peer speaks ZMTP 3.1 or later (understands PING).
    pub fn supports_ping(&self) -> bool {
        supports_ping(self.major_version, self.minor_version)
    }
}

pub(super) fn supports_ping(major: u8, minor: u8) -> bool {
    major > 3 || (major == 3 && minor >= 1)
}

/// Our metadata (the body of a NULL `READY`, the tail of CURVE's
/// INITIATE and READY boxes): Socket-Type, Identity (empty), extras.
pub(super) fn metadata(config: &ConnectionConfig) -> Vec<u8> {
    let type_name = config.socket_type.name().as_bytes();
    let mut props: Vec<(&[u8], &[u8])> = vec![(b"Socket-Type", type_name), (b"Identity", b"")];
    for (name, value) in &config.properties {
        let ok_name = !name.is_empty() && name.len() <= 255;
        let ok_value = value.len() <= i32::MAX as usize;
        debug_assert!(ok_name && ok_value, "invalid READY property {name:?}");
        if ok_name && ok_value {
            props.push((name.as_bytes(), value));
        }
    }
    let mut body = Vec::new();
    for (name, value) in props {
        body.push(name.len() as u8);
        body.extend_from_slice(name);
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    }
    body
}

/// Parses and validates the peer's metadata.
pub(super) fn parse_metadata(
    config: &ConnectionConfig,
    mut data: &[u8],
    versions: (u8, u8),
    curve_key: Option<[u8; KEY_LEN]>,
) -> Result<PeerInfo, Error> {
    let mut properties = Vec::new();
    while let Some((&name_len, rest)) = data.split_first() {
        let name_len = usize::from(name_len);
        if name_len == 0 {
            return Err(Error::MalformedCommand("READY property with empty name"));
        }
        let (name, rest) = match rest.get(..name_len) {
            Some(name) => (name, rest.get(name_len..).unwrap_or(&[])),
            None => return Err(Error::MalformedCommand("READY property name truncated")),
        };
        let (len_bytes, rest) = match rest.get(..4) {
            Some(b) => (b, rest.get(4..).unwrap_or(&[])),
            None => return Err(Error::MalformedCommand("READY value length truncated")),
        };
        let mut a = [0u8; 4];
        a.copy_from_slice(len_bytes);
        let value_len = u32::from_be_bytes(a);
        if value_len > i32::MAX as u32 {
            return Err(Error::MalformedCommand("READY value longer than 2^31-1"));
        }
        let value_len = usize::try_from(value_len)
            .map_err(|_| Error::MalformedCommand("READY value truncated"))?;
        let value = rest
            .get(..value_len)
            .ok_or(Error::MalformedCommand("READY value truncated"))?;
        data = rest.get(value_len..).unwrap_or(&[]);
        properties.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    let find = |key: &str| {
        properties
            .iter()
            .find(|(n, _): &&(String, Vec<u8>)| n.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    };
    let type_name = find("Socket-Type").ok_or(Error::MissingSocketType)?;
    let socket_type = SocketType::from_name(type_name)
        .ok_or_else(|| Error::UnknownSocketType(String::from_utf8_lossy(type_name).into_owned()))?;
    if !config.socket_type.compatible_with(socket_type) {
        return Err(Error::IncompatibleSocketType {
            peer: socket_type,
            ours: config.socket_type,
        });
    }
    for (name, ours) in &config.matching {
        let peer = find(name).unwrap_or(&[]);
        if peer != ours.as_slice() {
            return Err(Error::PropertyMismatch {
                name: name.clone(),
                ours: String::from_utf8_lossy(ours).into_owned(),
                peer: String::from_utf8_lossy(peer).into_owned(),
            });
        }
    }
    let identity = find("Identity").unwrap_or(&[]).to_vec();
    Ok(PeerInfo {
        socket_type,
        identity,
        major_version: versions.0,
        minor_version: versions.1,
        properties,
        curve_key,
    })
}

#[cfg(test)]
mod tests {
    use super::super::connection::{Connection, ConnectionEvent};
    use super::super::frame::push_command;
    use super::super::test_support::{cfg, peer_bytes, take_output};
    use super::*;

    #[test]
    fn incompatible_socket_type_sends_error() {
        let mut c = Connection::new(cfg(SocketType::Router));
        c.feed(&peer_bytes(1, "PUB"));
        let e = c.poll().unwrap_err();
        assert_eq!(
            e.to_string(),
            "peer socket type PUB is incompatible with ROUTER"
        );
        let out = c.pending_output();
        let tail = b"ERROR\x30peer socket type PUB is incompatible with ROUTER";
        assert!(out.ends_with(tail), "{out:?}");
        assert!(c.is_closed());
        assert_eq!(c.queue_message(&[b"x"]), Err(Error::Closed));

        let mut c = Connection::new(cfg(SocketType::Router));
        c.feed(&peer_bytes(1, "BOGUS"));
        assert_eq!(c.poll(), Err(Error::UnknownSocketType("BOGUS".to_string())));

        let mut c = Connection::new(cfg(SocketType::Router));
        let mut v = peer_bytes(1, "X");
        v.truncate(64);
        push_command(&mut v, b"READY", &[]);
        c.feed(&v);
        assert_eq!(c.poll(), Err(Error::MissingSocketType));
    }

    #[test]
    fn a_property_that_must_match_refuses_a_peer_with_another_value_or_none() {
        for (peer_value, refused) in [(Some("prod"), false), (Some("test"), true), (None, true)] {
            let mut ours = cfg(SocketType::Dealer);
            ours.matching = vec![("X-Cluster".into(), b"prod".to_vec())];
            let mut theirs = cfg(SocketType::Router);
            if let Some(v) = peer_value {
                theirs.properties = vec![("x-cluster".into(), v.as_bytes().to_vec())];
            }
            let mut c = Connection::new(ours);
            let mut bytes = peer_bytes(1, "ROUTER");
            bytes.truncate(64); // the greeting
            push_command(&mut bytes, b"READY", &[&metadata(&theirs)]);
            c.feed(&bytes);
            let polled = c.poll();
            if !refused {
                assert!(
                    matches!(polled, Ok(Some(ConnectionEvent::Ready(_)))),
                    "{polled:?}"
                );
                continue;
            }
            let e = polled.unwrap_err();
            let want = format!(
                "X-Cluster differs: the peer's is '{}', ours is 'prod'",
                peer_value.unwrap_or("")
            );
            assert_eq!(e.to_string(), want);
            let out = c.pending_output();
            assert!(out.ends_with(want.as_bytes()), "the ERROR names it");
        }
    }

    #[test]
    fn malformed_ready_every_truncation() {
        let full = peer_bytes(1, "ROUTER");
        let body = &full[64 + 2 + 6..];
        for n in 0..body.len() {
            let mut v = full[..64].to_vec();
            push_command(&mut v, b"READY", &[&body[..n]]);
            let mut c = Connection::new(cfg(SocketType::Dealer));
            c.feed(&v);
            assert!(c.poll().is_err(), "truncated READY {n} accepted");
        }
    }

    #[test]
    fn extra_properties_and_lookup() {
        let mut a_cfg = cfg(SocketType::Dealer);
        a_cfg.properties.push(("X-ZGossip".into(), b"2".to_vec()));
        let mut a = Connection::new(a_cfg);
        let mut b = Connection::new(cfg(SocketType::Router));
        b.feed(&take_output(&mut a));
        a.feed(&take_output(&mut b));
        a.poll().unwrap();
        b.feed(&take_output(&mut a));
        match b.poll() {
            Ok(Some(ConnectionEvent::Ready(p))) => {
                assert_eq!(p.property("x-zgossip"), Some(&b"2"[..]));
                assert_eq!(p.property("socket-type"), Some(&b"DEALER"[..]));
                assert_eq!(p.property("nope"), None);
                let names: Vec<_> = p.properties.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, ["Socket-Type", "Identity", "X-ZGossip"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
