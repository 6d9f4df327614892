//! Endpoint strings as ZeroMQ writes them: `tcp://host:port`,
//! `ipc://path` and `inproc://name`.

use std::fmt;

use crate::error::Error;

/// The port part of a tcp endpoint to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// A fixed port number.
    Fixed(u16),
    /// `*`: any free port (the system picks an ephemeral one).
    Any,
    /// `*[first-last]`: the first free port in the range, scanning upward.
    First(u16, u16),
    /// `!` or `![first-last]`: a free port at a random place in the range
    /// (49152-65535 by default), as CZMQ's `zsock_bind`.
    Random(u16, u16),
}

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Host is `*`, an IPv4 address, a bracketed IPv6 address, or a name.
    Tcp { host: String, port: Port },
    /// A Unix socket path; `@name` is a Linux abstract socket.
    Ipc(String),
    /// A name inside this process.
    Inproc(String),
}

const DYNAMIC_FIRST: u16 = 0xc000;
const DYNAMIC_LAST: u16 = 0xffff;

impl Endpoint {
    /// Parses an endpoint for binding (`*` host and wildcard ports allowed).
    pub fn parse_bind(s: &str) -> Result<Endpoint, Error> {
        Endpoint::parse(s, true)
    }

    /// Parses an endpoint for connecting (a concrete host and port).
    pub fn parse_connect(s: &str) -> Result<Endpoint, Error> {
        Endpoint::parse(s, false)
    }

    fn parse(s: &str, bind: bool) -> Result<Endpoint, Error> {
        let bad = |why: &str| Error::command(format!("bad endpoint '{s}': {why}"));
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(bad("expected tcp://, ipc:// or inproc://"));
        };
        match scheme {
            "tcp" => {
                let (host, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| bad("expected host:port"))?;
                if host.is_empty() {
                    return Err(bad("missing host"));
                }
                if host.starts_with('[') != host.ends_with(']') {
                    return Err(bad("unbalanced brackets around IPv6 address"));
                }
                if !host.starts_with('[') && host.contains(':') {
                    return Err(bad(
                        "IPv6 addresses must be in brackets, as tcp://[::1]:port",
                    ));
                }
                if host == "*" && !bind {
                    return Err(bad("cannot connect to '*': name a host"));
                }
                let port = parse_port(port, bind).map_err(|why| bad(&why))?;
                Ok(Endpoint::Tcp {
                    host: host.to_string(),
                    port,
                })
            }
            "ipc" => {
                if rest.is_empty() || rest == "@" {
                    return Err(bad("missing socket path"));
                }
                if rest == "*" {
                    return Err(bad("ipc://* is not supported: name a path"));
                }
                if rest.len() > 107 {
                    return Err(bad("socket path longer than 107 bytes"));
                }
                Ok(Endpoint::Ipc(rest.to_string()))
            }
            "inproc" => {
                if rest.is_empty() {
                    return Err(bad("missing name"));
                }
                Ok(Endpoint::Inproc(rest.to_string()))
            }
            _ => Err(bad(&format!(
                "unknown transport '{scheme}' (expected tcp, ipc or inproc)"
            ))),
        }
    }

    /// The host with IPv6 brackets removed, for tcp endpoints.
    pub fn bare_host(host: &str) -> &str {
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }
}

fn parse_port(p: &str, bind: bool) -> Result<Port, String> {
    let wildcard = |op: char, rest: &str| -> Result<Port, String> {
        if !bind {
            return Err(format!("port '{op}' is only valid when binding"));
        }
        let (first, last) = if rest.is_empty() {
            (DYNAMIC_FIRST, DYNAMIC_LAST)
        } else {
            let inner = rest
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or("port range must look like [first-last]")?;
            let (a, b) = inner
                .split_once('-')
                .ok_or("port range must look like [first-last]")?;
            let a = if a.is_empty() {
                DYNAMIC_FIRST
            } else {
                a.parse::<u16>().map_err(|_| format!("bad port '{a}'"))?
            };
            let b = if b.is_empty() {
                DYNAMIC_LAST
            } else {
                b.parse::<u16>().map_err(|_| format!("bad port '{b}'"))?
            };
            if a == 0 || a > b {
                return Err(format!("empty port range {a}-{b}"));
            }
            (a, b)
        };
        Ok(match op {
            '*' if rest.is_empty() => Port::Any,
            '*' => Port::First(first, last),
            _ => Port::Random(first, last),
        })
    };
    if let Some(rest) = p.strip_prefix('*') {
        return wildcard('*', rest);
    }
    if let Some(rest) = p.strip_prefix('!') {
        return wildcard('!', rest);
    }
    match p.parse::<u16>() {
        Ok(0) if !bind => Err("port 0 is not valid when connecting".into()),
        Ok(n) => Ok(Port::Fixed(n)),
        Err(_) => Err(format!("bad port '{p}' (expected 1-65535 or *)")),
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => match port {
                Port::Fixed(n) => write!(f, "tcp://{host}:{n}"),
                Port::Any => write!(f, "tcp://{host}:*"),
                Port::First(a, b) => write!(f, "tcp://{host}:*[{a}-{b}]"),
                Port::Random(a, b) => write!(f, "tcp://{host}:![{a}-{b}]"),
            },
            Endpoint::Ipc(p) => write!(f, "ipc://{p}"),
            Endpoint::Inproc(n) => write!(f, "inproc://{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_transports() {
        assert_eq!(
            Endpoint::parse_bind("tcp://*:*").unwrap(),
            Endpoint::Tcp {
                host: "*".into(),
                port: Port::Any
            }
        );
        assert_eq!(
            Endpoint::parse_connect("tcp://[::1]:5670").unwrap(),
            Endpoint::Tcp {
                host: "[::1]".into(),
                port: Port::Fixed(5670)
            }
        );
        assert_eq!(
            Endpoint::parse_bind("ipc:///tmp/x.sock").unwrap(),
            Endpoint::Ipc("/tmp/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse_bind("inproc://a b").unwrap(),
            Endpoint::Inproc("a b".into())
        );
        assert_eq!(
            Endpoint::parse_bind("tcp://127.0.0.1:*[6000-6010]").unwrap(),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: Port::First(6000, 6010)
            }
        );
        assert_eq!(
            Endpoint::parse_bind("tcp://127.0.0.1:!").unwrap(),
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: Port::Random(DYNAMIC_FIRST, DYNAMIC_LAST)
            }
        );
    }

    #[test]
    fn refuses_bad_endpoints_with_reasons() {
        for (s, why) in [
            ("127.0.0.1:5", "expected tcp://"),
            ("udp://x:1", "unknown transport"),
            ("tcp://host", "expected host:port"),
            ("tcp://:5", "missing host"),
            ("tcp://h:99999", "bad port"),
            ("tcp://h:x", "bad port"),
            ("tcp://::1:5", "brackets"),
            ("ipc://", "missing socket path"),
            ("inproc://", "missing name"),
            ("tcp://h:*[9-1]", "empty port range"),
        ] {
            let e = Endpoint::parse_bind(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
        let e = Endpoint::parse_connect("tcp://*:5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot connect to '*'"), "{e}");
        let e = Endpoint::parse_connect("tcp://h:*")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only valid when binding"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp://*:*",
            "tcp://[::1]:1",
            "ipc://@abstract",
            "inproc://x",
            "tcp://h:*[1-2]",
        ] {
            assert_eq!(Endpoint::parse_bind(s).unwrap().to_string(), s);
        }
    }
}
