//! The `Host` check of the command's HTTP endpoints (`--http`,
//! `--metrics`), against DNS rebinding: a web site whose name an attacker
//! re-points at 127.0.0.1 makes the browser send `Host: evil.example` to
//! this node, and could read what it answers (the tuples, the members).
//! The node answers only names it can vouch for: an IP address, v4 or
//! bracketed v6 (no name to rebind), `localhost` (which browsers resolve
//! locally), and the names given with `--http-host`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The `Host` values an endpoint answers, each with or without a port.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    /// Extra host names (`--http-host`), in lower case.
    names: Vec<String>,
}

impl AllowedHosts {
    /// IP literals and `localhost`, and `names` (any ASCII case).
    pub fn new(names: &[String]) -> AllowedHosts {
        AllowedHosts {
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request with this `Host` value is answered.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = without_port(host) else {
            return false;
        };
        if let Some(v6) = name.strip_prefix('[') {
            return v6
                .strip_suffix(']')
                .is_some_and(|a| a.parse::<Ipv6Addr>().is_ok());
        }
        name.parse::<Ipv4Addr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.names.iter().any(|n| name.eq_ignore_ascii_case(n))
    }
}

/// `host` without its `:PORT` (1 to 5 digits), `None` when what follows
/// the name (or the bracketed v6 address) is not a port.
fn without_port(host: &str) -> Option<&str> {
    let end = if host.starts_with('[') {
        host.find(']')? + 1
    } else {
        host.find(':').unwrap_or(host.len())
    };
    let (name, rest) = host.split_at(end);
    if rest.is_empty() {
        return Some(name);
    }
    let port = rest.strip_prefix(':')?;
    let is_port = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    is_port.then_some(name)
}

/// Checks a `--http-host` value: a host name, without port or scheme.
pub fn parse_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "'{name}' is not a host name (letters, digits, '-', '.', '_'; no port)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_are_answered_with_or_without_port() {
        let hosts = AllowedHosts::default();
        for good in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "10.1.2.3:9464",
            "[::1]",
            "[::1]:8080",
            "[fe80::1]:1",
            "localhost",
            "localhost:8080",
            "LocalHost:80",
        ] {
            assert!(hosts.allows(good), "{good}");
        }
    }

    #[test]
    fn names_and_malformed_values_are_refused() {
        let hosts = AllowedHosts::default();
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "localhost.",
            "sub.localhost",
            "127.1",
            "0x7f.0.0.1",
            "::1",
            "[::1",
            "::1]:80",
            "[not-v6]:80",
            "[::1]x",
            "127.0.0.1:",
            "127.0.0.1:port",
            "127.0.0.1:123456",
            "127.0.0.1:80:80",
            "localhost:-1",
            " 127.0.0.1",
        ] {
            assert!(!hosts.allows(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_given_are_answered_in_any_case() {
        let hosts = AllowedHosts::new(&["Gossip.Example".to_string(), "node-1".to_string()]);
        assert!(hosts.allows("gossip.example"));
        assert!(hosts.allows("GOSSIP.EXAMPLE:8080"));
        assert!(hosts.allows("node-1:9464"));
        assert!(hosts.allows("127.0.0.1:1"));
        assert!(!hosts.allows("example"));
        assert!(!hosts.allows("x.gossip.example"));
        assert!(!hosts.allows("node-1:x"));
    }

    #[test]
    fn only_host_names_are_taken_by_the_flag() {
        assert_eq!(parse_name("gossip.example").unwrap(), "gossip.example");
        assert_eq!(parse_name("node_1").unwrap(), "node_1");
        for bad in ["", "a:80", "http://a", "a b", "a/b", "[::1]"] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
    }
}
