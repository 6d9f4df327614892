//! A DNS seed, `dns:NAME:PORT` (`JOIN dns:NAME:PORT`): a host name whose
//! A and AAAA records are the addresses of members to join through, all
//! at one TCP port. The name is resolved by the system resolver, again
//! and again (`overlay/dns-interval`), so that a Kubernetes headless
//! service or a round-robin name works as a list of seeds.

use std::fmt;

use crate::error::Error;

/// The longest host name DNS carries (RFC 1035: 253 characters written).
pub const MAX_NAME_LEN: usize = 253;
/// The longest label of a name.
const MAX_LABEL_LEN: usize = 63;
/// The scheme a seed is written with.
pub const SCHEME: &str = "dns:";

/// A parsed `dns:NAME:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsSeed {
    /// The host name, without a trailing dot, as given (case kept).
    pub name: String,
    pub port: u16,
}

impl DnsSeed {
    /// Whether `s` is written as a DNS seed (`dns:...`), good or bad.
    pub fn is_seed(s: &str) -> bool {
        s.starts_with(SCHEME)
    }

    /// Parses `dns:NAME:PORT`. NAME is a host name (letters, digits, `-`,
    /// `_`, dot-separated labels of 1 to 63, at most 253 in all, one
    /// trailing dot allowed); PORT is 1 to 65535. An address is not a
    /// name: `JOIN tcp://address:port` joins through one.
    pub fn parse(s: &str) -> Result<DnsSeed, Error> {
        let bad = |why: &str| {
            Error::command(format!(
                "bad DNS seed '{s}': {why} (expected dns:NAME:PORT, as dns:seeds.example.com:5670)"
            ))
        };
        let rest = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it does not start with dns:"))?;
        if rest.starts_with("//") {
            return Err(bad("no // after dns:"));
        }
        let (name, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad(&format!("port '{port}' is not 1 to 65535"))),
            Ok(p) => p,
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(bad("missing host name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad(&format!(
                "host name longer than {MAX_NAME_LEN} characters"
            )));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(bad("empty label in host name"));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(bad(&format!(
                    "label '{label}' longer than {MAX_LABEL_LEN} characters"
                )));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(bad(&format!(
                    "'{c}' is not allowed in a host name (letters, digits, '-', '_', '.')"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad(&format!("label '{label}' starts or ends with '-'")));
            }
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(bad("an address, not a name: use tcp://ADDRESS:PORT"));
        }
        Ok(DnsSeed {
            name: name.to_string(),
            port,
        })
    }
}

impl fmt::Display for DnsSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}:{}", self.name, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        DnsSeed::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn good_seeds_parse_and_print_back() {
        for (s, name, port) in [
            ("dns:seeds.test:5670", "seeds.test", 5670),
            (
                "dns:zgossip-headless.default.svc.cluster.local:1",
                "zgossip-headless.default.svc.cluster.local",
                1,
            ),
            ("dns:localhost:65535", "localhost", 65535),
            ("dns:Seeds.Test.:80", "Seeds.Test", 80),
            ("dns:_svc.x:9", "_svc.x", 9),
        ] {
            let seed = DnsSeed::parse(s).unwrap();
            assert_eq!((seed.name.as_str(), seed.port), (name, port), "{s}");
            assert_eq!(DnsSeed::parse(&seed.to_string()).unwrap(), seed);
        }
    }

    #[test]
    fn bad_seeds_say_what_is_wrong() {
        assert!(err("dns:seeds.test").contains("missing :PORT"));
        assert!(err("dns:seeds.test:").contains("not 1 to 65535"));
        assert!(err("dns:seeds.test:0").contains("not 1 to 65535"));
        assert!(err("dns:seeds.test:70000").contains("not 1 to 65535"));
        assert!(err("dns:seeds.test:http").contains("not 1 to 65535"));
        assert!(err("dns::5670").contains("missing host name"));
        assert!(err("dns://seeds.test:5670").contains("no // after dns:"));
        assert!(err("dns:a..b:1").contains("empty label"));
        assert!(err("dns:a b:1").contains("' ' is not allowed"));
        assert!(err("dns:[::1]:1").contains("is not allowed"));
        assert!(err("dns:-a.b:1").contains("starts or ends with '-'"));
        assert!(err("dns:10.0.0.1:1").contains("use tcp://ADDRESS:PORT"));
        assert!(err(&format!("dns:{}:1", "a".repeat(64))).contains("longer than 63"));
        let long = vec!["a".repeat(50); 6].join(".");
        assert!(err(&format!("dns:{long}:1")).contains("longer than 253"));
        assert!(err("tcp://x:1").contains("does not start with dns:"));
        assert!(err("dns:x:1x").contains("expected dns:NAME:PORT"));
    }
}
