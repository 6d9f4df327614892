//! The string commands an application sends to a node, parsed and checked
//! in the caller's thread so a bad one is refused before it is queued.

use std::sync::mpsc;

use crate::dns_seed::DnsSeed;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::wire::gossip::MAX_KEY_LEN;
use crate::wire::text::has_nul;

/// Largest value a PUBLISH may carry (the default largest frame less the
/// message header).
pub const MAX_VALUE_LEN: usize = crate::engine::MAX_VALUE_LEN;

/// Longest time to live a PUBLISH may ask for (about 49 days: what the
/// ttl field of a plain ZGP PUBLISH can carry).
pub const MAX_TTL_MS: u64 = u32::MAX as u64;

/// A command on its way to the node thread, with where to send the outcome
/// when the caller waits for it.
pub(crate) struct Envelope {
    pub cmd: Command,
    pub ack: Option<mpsc::SyncSender<Result<Option<Vec<String>>>>>,
    /// Return the command's reply (PORT, STATUS) through `ack` instead of
    /// the reply pipe: the typed conveniences use this, so they never take
    /// deliveries off the pipe.
    pub direct: bool,
}

/// A command, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Verbose,
    Term,
    Bind(Endpoint),
    Port,
    /// LOAD or its old name CONFIGURE.
    Load(String),
    Set(String, String),
    Save(String),
    /// CONNECT endpoint [server-public-key...]: with a key, dial as a
    /// CURVE client of that server; with several (a server rotating its
    /// key holds more than one), the first, then the next after a dial
    /// that fails. Empty: plain.
    Connect(Endpoint, Vec<[u8; 32]>),
    /// JOIN endpoint [server-public-key]: join the overlay through the
    /// member at `endpoint` (a contact), dialled as a CURVE client of the
    /// key when given. The overlay then picks this node's links.
    Join(Endpoint, Option<[u8; 32]>),
    /// `JOIN dns:NAME:PORT [server-public-key]`: join the overlay through
    /// the addresses NAME resolves to (A and AAAA records), resolved again
    /// every `overlay/dns-interval`; dialled as CURVE clients of the key
    /// when given.
    JoinDns(DnsSeed, Option<[u8; 32]>),
    /// `SET PUBLICKEY key` (one frame "SET PUBLICKEY", as CZMQ): our CURVE
    /// public key, Z85.
    SetPublicKey([u8; 32]),
    /// `SET SECRETKEY key`: our CURVE secret key, Z85. Once set, inbound
    /// connections are CURVE.
    SetSecretKey([u8; 32]),
    /// `ZAP DOMAIN domain` (as CZMQ; recorded, shown in traces).
    ZapDomain(String),
    /// KEYGEN: reply `KEYGEN public secret` (a new key pair, Z85).
    Keygen,
    /// CERT path: our key pair from a CZMQ zcert file (`path_secret` or
    /// `path`).
    Cert(String),
    /// ALLOW address...: only these peer addresses may connect (zauth).
    Allow(Vec<std::net::IpAddr>),
    /// DENY address...: these peer addresses may not connect (zauth).
    Deny(Vec<std::net::IpAddr>),
    /// `CURVE ALLOW key...`: only these CURVE client keys (Z85) may connect.
    CurveAllow(Vec<[u8; 32]>),
    /// `CURVE *`: any CURVE client that knows our public key (default).
    CurveAny,
    /// `CURVE directory`: clients whose zcert public files are there
    /// (zauth); sent again, the directory is read again and replaces what
    /// it gave before.
    CurveCerts(String),
    /// `CURVE REMOVE key...`: these client keys are no longer admitted;
    /// their open connections are closed.
    CurveRemove(Vec<[u8; 32]>),
    /// `KEYRING ADD secret-key`: one more key pair held (a client may
    /// address any held key); the first one held is primary.
    KeyringAdd([u8; 32]),
    /// `KEYRING CERT path`: as `KEYRING ADD`, the key pair of a zcert file.
    KeyringCert(String),
    /// `KEYRING USE public-key`: a held key becomes primary (announced,
    /// and used as a CURVE client).
    KeyringUse([u8; 32]),
    /// `KEYRING REMOVE public-key`: a held key other than the primary is
    /// retired; clients addressing it are refused from now on.
    KeyringRemove([u8; 32]),
    /// `KEYRING LIST`: reply `KEYRING` and three frames per held key:
    /// public key, `primary` or `secondary`, handshakes completed with it.
    KeyringList,
    /// PUBLISH key value [ttl-msecs]
    Publish {
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    },
    /// EPHEMERAL key value [ttl-msecs]: as PUBLISH, the tuple tied to this
    /// node's life (deleted everywhere when the node leaves or fails).
    Ephemeral {
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    },
    /// UNPUBLISH key: delete network-wide.
    Unpublish(String),
    /// GET key: reply `VALUE key value`, or `VALUE key` when absent.
    Get(String),
    /// KEYS prefix: reply `KEYS key...` (live keys starting with prefix).
    Keys(String),
    Status,
    /// STATS: reply `STATS name value name value ...` (counters).
    Stats,
    /// MEMBERS: reply `MEMBERS` and four frames per member, this node
    /// first: id (16 hex digits), name, state, endpoint.
    Members,
    /// METRICS: reply `METRICS text`, the counters, gauges and histogram
    /// in the Prometheus text exposition format (`docs/metrics.md`).
    Metrics,
    /// DISCOVER [name=value ...]: find peers with UDP beacons and connect
    /// to them (see `docs/discovery.md`). Options checked, as given.
    Discover(Vec<String>),
}

impl Command {
    /// Parses a multipart string command (`["BIND", "tcp://*:*"]`). Names are
    /// case-sensitive, as in CZMQ.
    pub fn parse<S: AsRef<str>>(frames: &[S]) -> Result<Command, Error> {
        let Some(name) = frames.first().map(AsRef::as_ref) else {
            return Err(Error::command("empty command: expected a command name"));
        };
        let args: Vec<&str> = frames[1..].iter().map(AsRef::as_ref).collect();
        for a in frames {
            if has_nul(a.as_ref().as_bytes()) {
                return Err(Error::command(format!(
                    "{name}: arguments cannot contain NUL characters"
                )));
            }
        }
        let want = |n: usize, usage: &str| -> Result<(), Error> {
            if args.len() == n {
                Ok(())
            } else {
                Err(Error::command(format!(
                    "{name} takes {n} argument{}, got {}: usage: {usage}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                )))
            }
        };
        match name {
            "VERBOSE" => want(0, "VERBOSE").map(|_| Command::Verbose),
            "$TERM" => want(0, "$TERM").map(|_| Command::Term),
            "BIND" => {
                want(1, "BIND endpoint")?;
                Endpoint::parse_bind(args[0]).map(Command::Bind)
            }
            "PORT" => want(0, "PORT").map(|_| Command::Port),
            "LOAD" | "CONFIGURE" => {
                want(1, &format!("{name} filename"))?;
                non_empty(name, "filename", args[0])?;
                Ok(Command::Load(args[0].to_string()))
            }
            "SET" => {
                want(2, "SET path value")?;
                non_empty(name, "path", args[0])?;
                Ok(Command::Set(args[0].to_string(), args[1].to_string()))
            }
            "SAVE" => {
                want(1, "SAVE filename")?;
                non_empty(name, "filename", args[0])?;
                Ok(Command::Save(args[0].to_string()))
            }
            "CONNECT" => {
                if args.is_empty() || args.len() > 1 + MAX_SERVER_KEYS {
                    return Err(Error::command(format!(
                        "CONNECT takes 1 to {} arguments, got {}: usage: CONNECT endpoint \
                         [server-public-key...] (at most {MAX_SERVER_KEYS} keys)",
                        1 + MAX_SERVER_KEYS,
                        args.len()
                    )));
                }
                let ep = Endpoint::parse_connect(args[0])?;
                let mut keys: Vec<[u8; 32]> = Vec::new();
                for k in &args[1..] {
                    let key = crate::certs::decode_key("CONNECT: server public key", k)?;
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                Ok(Command::Connect(ep, keys))
            }
            "JOIN" => {
                if args.len() != 2 {
                    want(1, "JOIN endpoint [server-public-key]")?;
                }
                let key = match args.get(1) {
                    Some(k) => Some(crate::certs::decode_key("JOIN: server public key", k)?),
                    None => None,
                };
                if DnsSeed::is_seed(args[0]) {
                    return Ok(Command::JoinDns(DnsSeed::parse(args[0])?, key));
                }
                let ep = Endpoint::parse_connect(args[0])?;
                if !matches!(ep, Endpoint::Tcp { .. }) {
                    return Err(Error::command(format!(
                        "JOIN: '{}' is not a tcp:// endpoint or a dns:NAME:PORT seed (the overlay links nodes over TCP)",
                        args[0]
                    )));
                }
                Ok(Command::Join(ep, key))
            }
            "SET PUBLICKEY" | "SET SECRETKEY" => {
                want(1, &format!("{name} key"))?;
                let key = crate::certs::decode_key(name, args[0])?;
                Ok(if name == "SET PUBLICKEY" {
                    Command::SetPublicKey(key)
                } else {
                    Command::SetSecretKey(key)
                })
            }
            "ZAP DOMAIN" => {
                want(1, "ZAP DOMAIN domain")?;
                Ok(Command::ZapDomain(args[0].to_string()))
            }
            "KEYGEN" => want(0, "KEYGEN").map(|_| Command::Keygen),
            "CERT" => {
                want(1, "CERT path")?;
                non_empty(name, "path", args[0])?;
                Ok(Command::Cert(args[0].to_string()))
            }
            "ALLOW" | "DENY" => {
                if args.is_empty() {
                    return Err(Error::command(format!(
                        "{name} takes at least 1 argument: usage: {name} address..."
                    )));
                }
                let ips = args
                    .iter()
                    .map(|a| {
                        crate::security::parse_address(a)
                            .map_err(|e| Error::command(format!("{name}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if name == "ALLOW" {
                    Command::Allow(ips)
                } else {
                    Command::Deny(ips)
                })
            }
            "CURVE REMOVE" => parse_keys("CURVE REMOVE", "client key", &args).map(Command::CurveRemove),
            "CURVE" if args.first() == Some(&"REMOVE") => {
                parse_keys("CURVE REMOVE", "client key", &args[1..]).map(Command::CurveRemove)
            }
            "KEYRING" | "KEYRING ADD" | "KEYRING CERT" | "KEYRING USE" | "KEYRING REMOVE"
            | "KEYRING LIST" => parse_keyring(name, &args),
            "CURVE" | "CURVE ALLOW" => {
                let keys = match (name, args.first()) {
                    ("CURVE ALLOW", _) => &args[..],
                    (_, Some(&"ALLOW")) => &args[1..],
                    _ => {
                        want(
                            1,
                            "CURVE * | CURVE directory | CURVE ALLOW key... | CURVE REMOVE key...",
                        )?;
                        non_empty(name, "directory", args[0])?;
                        return Ok(if args[0] == "*" {
                            Command::CurveAny
                        } else {
                            Command::CurveCerts(args[0].to_string())
                        });
                    }
                };
                if keys.is_empty() {
                    return Err(Error::command(
                        "CURVE ALLOW takes at least 1 key: usage: CURVE ALLOW key...",
                    ));
                }
                keys.iter()
                    .map(|k| crate::certs::decode_key("CURVE ALLOW: client key", k))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Command::CurveAllow)
            }
            "PUBLISH" => {
                let p = parse_publish(&args)?;
                Ok(Command::Publish {
                    key: p.key.to_string(),
                    value: p.value.to_string(),
                    ttl_ms: p.ttl_ms,
                })
            }
            "EPHEMERAL" => {
                let p = parse_write("EPHEMERAL", &args)?;
                Ok(Command::Ephemeral {
                    key: p.key.to_string(),
                    value: p.value.to_string(),
                    ttl_ms: p.ttl_ms,
                })
            }
            "UNPUBLISH" => parse_unpublish(&args).map(|k| Command::Unpublish(k.to_string())),
            "GET" => {
                want(1, "GET key")?;
                check_key(args[0])?;
                Ok(Command::Get(args[0].to_string()))
            }
            "KEYS" => {
                if args.len() > 1 {
                    want(1, "KEYS [prefix]")?;
                }
                Ok(Command::Keys(args.first().unwrap_or(&"").to_string()))
            }
            "STATUS" => want(0, "STATUS").map(|_| Command::Status),
            "STATS" => want(0, "STATS").map(|_| Command::Stats),
            "MEMBERS" => want(0, "MEMBERS").map(|_| Command::Members),
            "METRICS" => want(0, "METRICS").map(|_| Command::Metrics),
            "DISCOVER" => {
                // Checked here, applied over the configuration by the node.
                crate::beacon::options::DiscoverOptions::default().apply_args(&args)?;
                Ok(Command::Discover(
                    args.iter().map(|a| a.to_string()).collect(),
                ))
            }
            "" => Err(Error::command("empty command name")),
            other => Err(Error::command(format!(
                "unknown command '{other}' (expected one of VERBOSE, $TERM, BIND, PORT, LOAD, \
                 CONFIGURE, SET, SAVE, CONNECT, JOIN, PUBLISH, EPHEMERAL, UNPUBLISH, GET, KEYS, STATUS, \
                 STATS, METRICS, MEMBERS, SET PUBLICKEY, SET SECRETKEY, ZAP DOMAIN, KEYGEN, CERT, ALLOW, DENY, CURVE, \
                 KEYRING, DISCOVER)"
            ))),
        }
    }

    /// Whether the caller waits until the node has carried the command out
    /// (so it sees execution errors such as a busy port). Only PUBLISH is
    /// fire-and-forget, for throughput.
    pub fn acknowledged(&self) -> bool {
        !matches!(self, Command::Publish { .. } | Command::Unpublish(_))
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Verbose => write!(f, "VERBOSE"),
            Command::Term => write!(f, "$TERM"),
            Command::Bind(ep) => write!(f, "BIND {ep}"),
            Command::Port => write!(f, "PORT"),
            Command::Load(file) => write!(f, "LOAD {file}"),
            Command::Set(path, value) => write!(f, "SET {path} {value}"),
            Command::Save(file) => write!(f, "SAVE {file}"),
            Command::Connect(ep, keys) => {
                write!(f, "CONNECT {ep}")?;
                keys.iter()
                    .try_for_each(|k| write!(f, " {}", crate::wire::z85::encode_key(k)))
            }
            Command::Join(ep, None) => write!(f, "JOIN {ep}"),
            Command::Join(ep, Some(k)) => {
                write!(f, "JOIN {ep} {}", crate::wire::z85::encode_key(k))
            }
            Command::JoinDns(seed, None) => write!(f, "JOIN {seed}"),
            Command::JoinDns(seed, Some(k)) => {
                write!(f, "JOIN {seed} {}", crate::wire::z85::encode_key(k))
            }
            Command::SetPublicKey(k) => {
                write!(f, "SET PUBLICKEY {}", crate::wire::z85::encode_key(k))
            }
            // Never show a secret in a trace.
            Command::SetSecretKey(_) => write!(f, "SET SECRETKEY <redacted>"),
            Command::ZapDomain(d) => write!(f, "ZAP DOMAIN {d}"),
            Command::Keygen => write!(f, "KEYGEN"),
            Command::Cert(p) => write!(f, "CERT {p}"),
            Command::Allow(ips) | Command::Deny(ips) => {
                let verb = if matches!(self, Command::Allow(_)) {
                    "ALLOW"
                } else {
                    "DENY"
                };
                write!(f, "{verb}")?;
                ips.iter().try_for_each(|ip| write!(f, " {ip}"))
            }
            Command::CurveAllow(keys) => write!(f, "CURVE ALLOW ({} keys)", keys.len()),
            Command::CurveAny => write!(f, "CURVE *"),
            Command::CurveCerts(dir) => write!(f, "CURVE {dir}"),
            Command::CurveRemove(keys) => write!(f, "CURVE REMOVE ({} keys)", keys.len()),
            // Never show a secret in a trace.
            Command::KeyringAdd(_) => write!(f, "KEYRING ADD <redacted>"),
            Command::KeyringCert(p) => write!(f, "KEYRING CERT {p}"),
            Command::KeyringUse(k) => {
                write!(f, "KEYRING USE {}", crate::wire::z85::encode_key(k))
            }
            Command::KeyringRemove(k) => {
                write!(f, "KEYRING REMOVE {}", crate::wire::z85::encode_key(k))
            }
            Command::KeyringList => write!(f, "KEYRING LIST"),
            Command::Publish { key, value, ttl_ms } => {
                write!(f, "PUBLISH {key} ({} bytes)", value.len())?;
                match ttl_ms {
                    Some(t) => write!(f, " ttl {t} ms"),
                    None => Ok(()),
                }
            }
            Command::Ephemeral { key, value, ttl_ms } => {
                write!(f, "EPHEMERAL {key} ({} bytes)", value.len())?;
                match ttl_ms {
                    Some(t) => write!(f, " ttl {t} ms"),
                    None => Ok(()),
                }
            }
            Command::Unpublish(key) => write!(f, "UNPUBLISH {key}"),
            Command::Get(key) => write!(f, "GET {key}"),
            Command::Keys(prefix) => write!(f, "KEYS {prefix}"),
            Command::Status => write!(f, "STATUS"),
            Command::Stats => write!(f, "STATS"),
            Command::Members => write!(f, "MEMBERS"),
            Command::Metrics => write!(f, "METRICS"),
            Command::Discover(args) => write!(f, "DISCOVER {}", args.join(" ")),
        }
    }
}

/// Most server keys one `CONNECT` may name (a rotation needs two).
pub const MAX_SERVER_KEYS: usize = 4;

/// `KEYRING verb ...`, as one frame `KEYRING ADD` or two, `KEYRING` `ADD`.
fn parse_keyring(name: &str, args: &[&str]) -> Result<Command, Error> {
    let (verb, args) =
        match name.strip_prefix("KEYRING ") {
            Some(verb) => (verb, args),
            None => match args.split_first() {
                Some((verb, rest)) => (*verb, rest),
                None => return Err(Error::command(
                    "KEYRING takes a verb: usage: KEYRING ADD secret-key | KEYRING CERT path | \
                     KEYRING USE public-key | KEYRING REMOVE public-key | KEYRING LIST",
                )),
            },
        };
    let one = |usage: &str| -> Result<&str, Error> {
        match args {
            [a] => Ok(a),
            _ => Err(Error::command(format!(
                "KEYRING {verb} takes 1 argument, got {}: usage: KEYRING {verb} {usage}",
                args.len()
            ))),
        }
    };
    let what = format!("KEYRING {verb}");
    match verb {
        "ADD" => Ok(Command::KeyringAdd(crate::certs::decode_key(
            &format!("{what}: secret key"),
            one("secret-key")?,
        )?)),
        "CERT" => {
            let path = one("path")?;
            non_empty(&what, "path", path)?;
            Ok(Command::KeyringCert(path.to_string()))
        }
        "USE" => Ok(Command::KeyringUse(crate::certs::decode_key(
            &format!("{what}: public key"),
            one("public-key")?,
        )?)),
        "REMOVE" => Ok(Command::KeyringRemove(crate::certs::decode_key(
            &format!("{what}: public key"),
            one("public-key")?,
        )?)),
        "LIST" if args.is_empty() => Ok(Command::KeyringList),
        "LIST" => Err(Error::command(format!(
            "KEYRING LIST takes 0 arguments, got {}: usage: KEYRING LIST",
            args.len()
        ))),
        other => Err(Error::command(format!(
            "KEYRING: unknown verb '{other}' (expected ADD, CERT, USE, REMOVE or LIST)"
        ))),
    }
}

/// One or more Z85 keys, as `CURVE ALLOW` and `CURVE REMOVE` take them.
fn parse_keys(name: &str, what: &str, args: &[&str]) -> Result<Vec<[u8; 32]>, Error> {
    if args.is_empty() {
        return Err(Error::command(format!(
            "{name} takes at least 1 key: usage: {name} key..."
        )));
    }
    args.iter()
        .map(|k| crate::certs::decode_key(&format!("{name}: {what}"), k))
        .collect()
}

fn non_empty(name: &str, what: &str, v: &str) -> Result<(), Error> {
    if v.is_empty() {
        Err(Error::command(format!("{name}: {what} is empty")))
    } else {
        Ok(())
    }
}

/// The arguments of `PUBLISH key value [ttl-msecs]`, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublishArgs<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub ttl_ms: Option<u64>,
}

/// Checks the arguments of PUBLISH (the frames after the name) without
/// allocating: the handle's fast path for the most frequent command.
pub(crate) fn parse_publish<S: AsRef<str>>(args: &[S]) -> Result<PublishArgs<'_>, Error> {
    parse_write("PUBLISH", args)
}

/// Checks the arguments of PUBLISH or EPHEMERAL, naming `name` in errors.
fn parse_write<'a, S: AsRef<str>>(name: &str, args: &'a [S]) -> Result<PublishArgs<'a>, Error> {
    let (key, value, ttl) = match args {
        [k, v] => (k.as_ref(), v.as_ref(), None),
        [k, v, t] => (k.as_ref(), v.as_ref(), Some(t.as_ref())),
        _ => {
            return Err(Error::command(format!(
                "{name} takes 2 arguments, got {}: usage: {name} key value [ttl-msecs]",
                args.len()
            )))
        }
    };
    if has_nul(key.as_bytes()) || has_nul(value.as_bytes()) {
        return Err(Error::command(format!(
            "{name}: arguments cannot contain NUL characters"
        )));
    }
    check_key(key)?;
    let ttl_ms = match ttl {
        None => None,
        Some(t) => match t.parse::<u64>() {
            Ok(0) | Err(_) => {
                return Err(Error::command(format!(
                    "{name}: ttl must be a positive number of milliseconds, got '{t}'"
                )))
            }
            Ok(n) if n > MAX_TTL_MS => {
                return Err(Error::command(format!(
                    "{name}: ttl of {n} ms exceeds the limit of {MAX_TTL_MS} ms"
                )))
            }
            Ok(n) => Some(n),
        },
    };
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::command(format!(
            "{name}: value of {} bytes exceeds the limit of {MAX_VALUE_LEN} bytes",
            value.len()
        )));
    }
    Ok(PublishArgs { key, value, ttl_ms })
}

/// Checks the argument of `UNPUBLISH key` without allocating.
pub(crate) fn parse_unpublish<S: AsRef<str>>(args: &[S]) -> Result<&str, Error> {
    let [key] = args else {
        return Err(Error::command(format!(
            "UNPUBLISH takes 1 argument, got {}: usage: UNPUBLISH key",
            args.len()
        )));
    };
    let key = key.as_ref();
    if has_nul(key.as_bytes()) {
        return Err(Error::command(
            "UNPUBLISH: arguments cannot contain NUL characters",
        ));
    }
    check_key(key)?;
    Ok(key)
}

/// A key must fit ZGP's one-byte length.
pub fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::command(format!(
            "key of {} bytes exceeds the limit of {MAX_KEY_LEN} bytes",
            key.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(frames: &[&str]) -> String {
        Command::parse(frames).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(Command::parse(&["VERBOSE"]).unwrap(), Command::Verbose);
        assert_eq!(Command::parse(&["$TERM"]).unwrap(), Command::Term);
        assert!(matches!(
            Command::parse(&["BIND", "tcp://*:*"]).unwrap(),
            Command::Bind(_)
        ));
        assert_eq!(Command::parse(&["PORT"]).unwrap(), Command::Port);
        assert_eq!(
            Command::parse(&["CONFIGURE", "f"]).unwrap(),
            Command::Load("f".into())
        );
        assert_eq!(
            Command::parse(&["SET", "server/timeout", "100"]).unwrap(),
            Command::Set("server/timeout".into(), "100".into())
        );
        assert_eq!(
            Command::parse(&["PUBLISH", "k", ""]).unwrap(),
            Command::Publish {
                key: "k".into(),
                value: "".into(),
                ttl_ms: None
            }
        );
        assert_eq!(
            Command::parse(&["PUBLISH", "k", "v", "1500"]).unwrap(),
            Command::Publish {
                key: "k".into(),
                value: "v".into(),
                ttl_ms: Some(1500)
            }
        );
        assert_eq!(
            Command::parse(&["UNPUBLISH", "k"]).unwrap(),
            Command::Unpublish("k".into())
        );
        assert_eq!(
            Command::parse(&["GET", "k"]).unwrap(),
            Command::Get("k".into())
        );
        assert_eq!(Command::parse(&["KEYS"]).unwrap(), Command::Keys("".into()));
        assert_eq!(
            Command::parse(&["KEYS", "a/"]).unwrap(),
            Command::Keys("a/".into())
        );
        assert_eq!(Command::parse(&["STATUS"]).unwrap(), Command::Status);
        assert_eq!(
            Command::parse(&["DISCOVER", "interface=lo"]).unwrap(),
            Command::Discover(vec!["interface=lo".into()])
        );
        assert!(err(&["DISCOVER", "port=x"]).contains("port must be"));
        assert!(!Command::parse(&["PUBLISH", "k", "v"])
            .unwrap()
            .acknowledged());
        assert!(Command::parse(&["STATUS"]).unwrap().acknowledged());
    }

    #[test]
    fn refuses_bad_commands_saying_why() {
        assert!(err(&[]).contains("empty command"));
        assert!(err(&["FROB"]).contains("unknown command 'FROB'"));
        assert!(err(&["status"]).contains("unknown command 'status'"));
        assert!(err(&["BIND"]).contains("BIND takes 1 argument, got 0"));
        assert!(err(&["PUBLISH", "k"]).contains("usage: PUBLISH key value [ttl-msecs]"));
        assert!(err(&["PUBLISH", "k", "v", "soon"]).contains("ttl must be a positive number"));
        assert!(err(&["PUBLISH", "k", "v", "0"]).contains("ttl must be a positive number"));
        assert!(err(&["PUBLISH", "k", "v", "99999999999"]).contains("exceeds the limit"));
        assert!(err(&["UNPUBLISH"]).contains("usage: UNPUBLISH key"));
        assert!(err(&["KEYS", "a", "b"]).contains("usage: KEYS [prefix]"));
        assert!(err(&["STATUS", "x"]).contains("STATUS takes 0 arguments, got 1"));
        assert!(err(&["BIND", "foo"]).contains("bad endpoint 'foo'"));
        let long = "k".repeat(256);
        assert!(err(&["PUBLISH", &long, "v"]).contains("key of 256 bytes exceeds"));
        assert!(Command::parse(&["PUBLISH", &"k".repeat(255), "v"]).is_ok());
        assert!(err(&["PUBLISH", "a\0b", "v"]).contains("NUL"));
        assert!(err(&["SAVE", ""]).contains("filename is empty"));
    }

    #[test]
    fn join_takes_a_tcp_contact_and_an_optional_key() {
        let (public, _) = crate::certs::keypair().unwrap();
        let key = crate::wire::z85::decode_key(&public).unwrap();
        let plain = Command::parse(&["JOIN", "tcp://10.0.0.1:5670"]).unwrap();
        assert!(matches!(plain, Command::Join(_, None)));
        assert_eq!(plain.to_string(), "JOIN tcp://10.0.0.1:5670");
        assert!(matches!(
            Command::parse(&["JOIN", "tcp://10.0.0.1:5670", &public]).unwrap(),
            Command::Join(_, Some(k)) if k == key
        ));
        assert!(err(&["JOIN"]).contains("JOIN endpoint [server-public-key]"));
        assert!(err(&["JOIN", "ipc:///tmp/x"]).contains("not a tcp:// endpoint"));
        assert!(err(&["JOIN", "tcp://host"]).contains("expected host:port"));
        assert!(err(&["JOIN", "tcp://h:1", "short"]).contains("40-character Z85"));
    }

    #[test]
    fn join_takes_a_dns_seed_and_an_optional_key() {
        let (public, _) = crate::certs::keypair().unwrap();
        let key = crate::wire::z85::decode_key(&public).unwrap();
        let seed = Command::parse(&["JOIN", "dns:seeds.test:5670"]).unwrap();
        assert_eq!(
            seed,
            Command::JoinDns(
                DnsSeed {
                    name: "seeds.test".into(),
                    port: 5670
                },
                None
            )
        );
        assert_eq!(seed.to_string(), "JOIN dns:seeds.test:5670");
        let keyed = Command::parse(&["JOIN", "dns:seeds.test:5670", &public]).unwrap();
        assert!(matches!(keyed, Command::JoinDns(_, Some(k)) if k == key));
        assert_eq!(
            keyed.to_string(),
            format!("JOIN dns:seeds.test:5670 {public}")
        );
        assert!(err(&["JOIN", "dns:seeds.test"]).contains("missing :PORT"));
        assert!(err(&["JOIN", "dns:seeds.test:0"]).contains("not 1 to 65535"));
        assert!(err(&["JOIN", "dns::1"]).contains("missing host name"));
        assert!(err(&["JOIN", "dns:a b:1"]).contains("not allowed in a host name"));
        assert!(err(&["JOIN", "dns:s.test:1", "short"]).contains("40-character Z85"));
        assert!(err(&["JOIN", "dns:s.test:1", &public, "x"]).contains("usage"));
    }

    #[test]
    fn security_commands() {
        let (public, secret) = crate::certs::keypair().unwrap();
        let key = crate::wire::z85::decode_key(&public).unwrap();
        assert_eq!(
            Command::parse(&["SET PUBLICKEY", &public]).unwrap(),
            Command::SetPublicKey(key)
        );
        let c = Command::parse(&["SET SECRETKEY", &secret]).unwrap();
        assert!(matches!(c, Command::SetSecretKey(_)));
        assert!(!c.to_string().contains(&secret), "secret shown: {c}");
        assert!(matches!(
            Command::parse(&["CONNECT", "tcp://127.0.0.1:5", &public]).unwrap(),
            Command::Connect(_, k) if k == vec![key]
        ));
        assert!(err(&["CONNECT", "tcp://127.0.0.1:5", "short"]).contains("40-character Z85"));
        assert!(err(&["SET PUBLICKEY", "HelloWorld"]).contains("40-character Z85"));
        assert_eq!(
            Command::parse(&["ZAP DOMAIN", "global"]).unwrap(),
            Command::ZapDomain("global".into())
        );
        assert_eq!(Command::parse(&["KEYGEN"]).unwrap(), Command::Keygen);
        assert_eq!(Command::parse(&["CURVE", "*"]).unwrap(), Command::CurveAny);
        assert_eq!(
            Command::parse(&["CURVE", ".curve"]).unwrap(),
            Command::CurveCerts(".curve".into())
        );
        for frames in [
            vec!["CURVE ALLOW", public.as_str()],
            vec!["CURVE", "ALLOW", public.as_str()],
        ] {
            assert_eq!(
                Command::parse(&frames).unwrap(),
                Command::CurveAllow(vec![key])
            );
        }
        assert!(err(&["CURVE", "ALLOW"]).contains("at least 1 key"));
        assert!(matches!(
            Command::parse(&["ALLOW", "127.0.0.1", "::1"]).unwrap(),
            Command::Allow(v) if v.len() == 2
        ));
        assert!(err(&["DENY", "example.com"]).contains("not an IP address"));
        assert!(err(&["DENY"]).contains("at least 1 argument"));
    }

    #[test]
    fn keyring_and_rotation_commands() {
        let (public, secret) = crate::certs::keypair().unwrap();
        let (other, _) = crate::certs::keypair().unwrap();
        let key = crate::wire::z85::decode_key(&public).unwrap();
        let key2 = crate::wire::z85::decode_key(&other).unwrap();
        let secret_key = crate::wire::z85::decode_key(&secret).unwrap();
        for frames in [
            vec!["KEYRING", "ADD", &secret],
            vec!["KEYRING ADD", &secret],
        ] {
            let c = Command::parse(&frames).unwrap();
            assert_eq!(c, Command::KeyringAdd(secret_key));
            assert!(!c.to_string().contains(&secret), "secret shown: {c}");
        }
        assert_eq!(
            Command::parse(&["KEYRING", "USE", &public]).unwrap(),
            Command::KeyringUse(key)
        );
        assert_eq!(
            Command::parse(&["KEYRING REMOVE", &public]).unwrap(),
            Command::KeyringRemove(key)
        );
        assert_eq!(
            Command::parse(&["KEYRING", "CERT", "a/node"]).unwrap(),
            Command::KeyringCert("a/node".into())
        );
        assert_eq!(
            Command::parse(&["KEYRING", "LIST"]).unwrap(),
            Command::KeyringList
        );
        // Several server keys, in order, a repeated one once.
        assert_eq!(
            Command::parse(&["CONNECT", "tcp://h:1", &other, &public, &other]).unwrap(),
            Command::Connect(
                Endpoint::parse_connect("tcp://h:1").unwrap(),
                vec![key2, key]
            )
        );
        assert_eq!(
            Command::parse(&["CURVE", "REMOVE", &public]).unwrap(),
            Command::CurveRemove(vec![key])
        );
        assert_eq!(
            Command::parse(&["CURVE REMOVE", &public, &other]).unwrap(),
            Command::CurveRemove(vec![key, key2])
        );
    }

    /// Keys that are not Z85, not 32 bytes, missing or too many: refused
    /// with a message that says what is wrong.
    #[test]
    fn bad_keys_and_keyring_usage_are_refused_saying_why() {
        let (public, _) = crate::certs::keypair().unwrap();
        let not_z85 = "\\".repeat(40);
        let short = &public[..20]; // Z85 of 16 bytes
        for bad in [not_z85.as_str(), short, "", &format!("{public}x")] {
            for frames in [
                vec!["KEYRING", "ADD", bad],
                vec!["KEYRING", "USE", bad],
                vec!["KEYRING REMOVE", bad],
                vec!["CURVE", "REMOVE", bad],
                vec!["CONNECT", "tcp://h:1", &public, bad],
            ] {
                let e = err(&frames);
                assert!(e.contains("40-character Z85"), "{frames:?}: {e}");
            }
        }
        assert!(err(&["KEYRING"]).contains("KEYRING takes a verb"));
        assert!(err(&["KEYRING", "INSTALL", &public]).contains("unknown verb 'INSTALL'"));
        assert!(err(&["KEYRING", "USE"]).contains("KEYRING USE takes 1 argument, got 0"));
        assert!(err(&["KEYRING LIST", "x"]).contains("KEYRING LIST takes 0 arguments"));
        assert!(err(&["KEYRING", "CERT", ""]).contains("path is empty"));
        assert!(err(&["CURVE", "REMOVE"]).contains("at least 1 key"));
        let five: Vec<&str> = std::iter::once("tcp://h:1")
            .chain(std::iter::repeat_n(public.as_str(), MAX_SERVER_KEYS + 1))
            .collect();
        let mut frames = vec!["CONNECT"];
        frames.extend(five);
        assert!(err(&frames).contains("at most 4 keys"));
        assert!(err(&["CONNECT"]).contains("usage: CONNECT endpoint"));
    }
}
