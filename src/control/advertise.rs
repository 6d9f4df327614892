//! The endpoint this node tells others to dial: `overlay/advertise` when
//! set (for NAT, containers and hosts with several addresses), else the
//! first TCP endpoint it bound. Overlay messages, membership records and
//! beacons all carry what [`own_endpoint`] gives; nothing else derives it.

use crate::endpoint::{Endpoint, Port};
use crate::error::{Error, Result};

/// `overlay/advertise`, checked: `tcp://HOST:PORT` with a concrete host
/// (a name or an address, not a wildcard) and a port from 1 to 65535.
/// Empty (or absent): `None`, the bound endpoint is told.
pub(crate) fn parse_advertise(value: &str) -> Result<Option<String>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        Error::Config(format!(
            "overlay/advertise must be tcp://HOST:PORT, the endpoint other nodes dial \
             (as tcp://203.0.113.7:5670): '{value}' {why}"
        ))
    };
    let ep = Endpoint::parse_connect(value).map_err(|e| bad(&format!("is not one ({e})")))?;
    let Endpoint::Tcp { host, port } = ep else {
        return Err(bad("is not a tcp:// endpoint"));
    };
    if matches!(
        Endpoint::bare_host(&host),
        "*" | "0.0.0.0" | "::" | "255.255.255.255"
    ) {
        return Err(bad("names no host: give the address others reach"));
    }
    match port {
        Port::Fixed(p) if p > 0 => Ok(Some(format!("tcp://{host}:{p}"))),
        _ => Err(bad("has no port from 1 to 65535")),
    }
}

/// The endpoint told to others: the advertised one when set, else the one
/// derived from the first TCP bind (`listening`), else empty (the node
/// does not listen).
pub(crate) fn own_endpoint(advertise: Option<&str>, listening: Option<&str>) -> String {
    advertise.or(listening).unwrap_or_default().to_string()
}

/// The endpoint told to others for a first TCP bind of `host` at `port`:
/// a wildcard bind says `tcp://*:PORT`, and each peer puts in the address
/// our connection to it comes from.
pub(crate) fn listening_endpoint(host: &str, port: u16) -> String {
    match host {
        "*" | "0.0.0.0" | "[::]" => format!("tcp://*:{port}"),
        _ => format!("tcp://{host}:{port}"),
    }
}

/// The TCP port in a `tcp://host:port` endpoint (what beacons carry).
pub(crate) fn endpoint_port(endpoint: &str) -> Option<u16> {
    endpoint
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(v: &str) -> String {
        parse_advertise(v).unwrap_err().to_string()
    }

    #[test]
    fn a_tcp_endpoint_with_host_and_port_is_taken() {
        assert_eq!(parse_advertise("").unwrap(), None);
        assert_eq!(parse_advertise("  ").unwrap(), None);
        for ep in [
            "tcp://203.0.113.7:5670",
            "tcp://[2001:db8::7]:5670",
            "tcp://node-3.zgossip.default.svc:1",
        ] {
            assert_eq!(parse_advertise(ep).unwrap().as_deref(), Some(ep));
        }
        assert_eq!(
            parse_advertise(" tcp://10.0.0.1:9 ").unwrap().as_deref(),
            Some("tcp://10.0.0.1:9")
        );
    }

    #[test]
    fn anything_else_is_refused_saying_why() {
        assert!(err("10.0.0.1:5670").contains("is not one"));
        assert!(err("ipc:///tmp/x").contains("not a tcp:// endpoint"));
        assert!(err("inproc://x").contains("not a tcp:// endpoint"));
        assert!(err("tcp://10.0.0.1").contains("expected host:port"));
        assert!(err("tcp://10.0.0.1:*").contains("only valid when binding"));
        assert!(err("tcp://10.0.0.1:0").contains("port 0 is not valid"));
        assert!(err("tcp://10.0.0.1:70000").contains("is not one"));
        assert!(err("tcp://*:5670").contains("cannot connect to '*'"));
        assert!(err("tcp://0.0.0.0:5670").contains("names no host"));
        assert!(err("tcp://[::]:5670").contains("names no host"));
        assert!(err("tcp://::1:5670").contains("in brackets"));
        assert!(err("udp://x:1").starts_with("overlay/advertise must be tcp://HOST:PORT"));
    }

    #[test]
    fn the_advertised_endpoint_wins_over_the_bound_one() {
        assert_eq!(own_endpoint(None, None), "");
        assert_eq!(own_endpoint(None, Some("tcp://*:5670")), "tcp://*:5670");
        assert_eq!(
            own_endpoint(Some("tcp://198.51.100.1:7000"), Some("tcp://*:5670")),
            "tcp://198.51.100.1:7000"
        );
        assert_eq!(
            own_endpoint(Some("tcp://198.51.100.1:7000"), None),
            "tcp://198.51.100.1:7000"
        );
        assert_eq!(listening_endpoint("0.0.0.0", 9), "tcp://*:9");
        assert_eq!(listening_endpoint("[::]", 9), "tcp://*:9");
        assert_eq!(listening_endpoint("*", 9), "tcp://*:9");
        assert_eq!(listening_endpoint("10.0.0.1", 9), "tcp://10.0.0.1:9");
        assert_eq!(endpoint_port("tcp://[::1]:7000"), Some(7000));
        assert_eq!(endpoint_port("tcp://h:0"), None);
        assert_eq!(endpoint_port(""), None);
    }
}
