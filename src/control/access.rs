//! Who may connect and how: the node's CURVE key pair, the server keys of
//! its CURVE remotes, the access rules and limits, the commands that set
//! them, and for each new connection its security mechanism (or why it is
//! refused). The counts of open connections it consults are kept by the
//! reactor, which opens and closes them.

use std::net::IpAddr;
use std::sync::Arc;

use crate::control::command::Command;
use crate::engine::Role;
use crate::error::{Error, Result};
use crate::security::{AddressCounts, Limits, Policy};
use crate::wire::curve::{ClientCheck, Keypair};
use crate::wire::{z85, zmtp};

/// CURVE keys, access rules and limits of a node, and the counters of
/// what they refused.
#[derive(Default)]
pub(crate) struct Access {
    /// Our key pair, once a secret key is set (or drawn for a CURVE dial).
    pub keys: Option<Keypair>,
    /// A public key set before the secret key (checked against it).
    public: Option<[u8; 32]>,
    /// Secret key set: inbound connections are CURVE.
    pub server: bool,
    pub zap_domain: String,
    pub policy: Arc<Policy>,
    pub limits: Limits,
    /// Inbound TCP connections open per address, and in all.
    pub addresses: AddressCounts,
    pub inbound: usize,
    /// Plain (NULL) dials made while the node has a CURVE key pair.
    pub plain_dials: u64,
    /// Bytes of incomplete frames held by all connections.
    pub held_input: usize,
    /// Connections closed for `limits/input-buffers`, and refused at the
    /// descriptor limit.
    pub input_refused: u64,
    pub fd_refused: u64,
}

/// What an access command did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AccessOutcome {
    /// The reply to the application, if the command has one.
    pub reply: Option<Vec<String>>,
    /// The node's own key pair was set: its public key (discovery beacons
    /// it from now on).
    pub keys_set: Option<[u8; 32]>,
    /// A line for the `VERBOSE` trace.
    pub trace: Option<String>,
}

impl Access {
    /// Carries out a CURVE, key or access-rule command.
    pub(crate) fn execute(&mut self, cmd: Command) -> Result<AccessOutcome> {
        let mut done = AccessOutcome::default();
        match cmd {
            Command::SetPublicKey(public) => {
                if let Some(k) = &self.keys {
                    if self.server && k.public != public {
                        return Err(Error::Config(
                            "SET PUBLICKEY: the key does not belong to the secret key set".into(),
                        ));
                    }
                }
                self.public = Some(public);
            }
            Command::SetSecretKey(secret) => {
                done = self.set_keys(Keypair::from_secret(secret))?;
            }
            Command::ZapDomain(domain) => self.zap_domain = domain,
            Command::Keygen => {
                let k = Keypair::generate().map_err(Error::Config)?;
                done.reply = Some(vec![
                    "KEYGEN".into(),
                    z85::encode_key(&k.public),
                    z85::encode_key(&k.secret),
                ]);
            }
            Command::Cert(path) => {
                let cert = crate::certs::load_cert(&path)?;
                let Some(secret) = cert.secret else {
                    return Err(Error::Config(format!(
                        "CERT {path}: no secret key (neither {path}_secret nor {path} has one)"
                    )));
                };
                let secret = crate::certs::decode_key("secret-key", &secret)?;
                self.public = None;
                done = self.set_keys(Keypair::from_secret(secret))?;
            }
            Command::Allow(ips) => Arc::make_mut(&mut self.policy).allow(&ips),
            Command::Deny(ips) => Arc::make_mut(&mut self.policy).deny(&ips),
            Command::CurveAllow(keys) => Arc::make_mut(&mut self.policy).curve_allow(&keys),
            Command::CurveAny => Arc::make_mut(&mut self.policy).curve_allow_any(),
            Command::CurveCerts(dir) => {
                let keys = crate::certs::load_public_certs(&dir)?;
                done.trace = Some(format!("CURVE: {} client keys from {dir}", keys.len()));
                Arc::make_mut(&mut self.policy).curve_allow(&keys);
            }
            other => return Err(Error::command(format!("{other} is not an access command"))),
        }
        Ok(done)
    }

    /// Our long-term key pair: from now on inbound connections are CURVE.
    fn set_keys(&mut self, keys: Keypair) -> Result<AccessOutcome> {
        if let Some(public) = self.public {
            if public != keys.public {
                return Err(Error::Config(
                    "SET SECRETKEY: the key does not belong to the public key set".into(),
                ));
            }
        }
        let public = keys.public;
        self.keys = Some(keys);
        self.server = true;
        Ok(AccessOutcome {
            reply: None,
            keys_set: Some(public),
            trace: Some(format!(
                "CURVE server, public key {}",
                z85::encode_key(&public)
            )),
        })
    }

    /// The public key a node announces: set when the node has its own key
    /// pair (`SET SECRETKEY`, `CERT`), not one drawn for a CURVE dial.
    pub(crate) fn curve_public_key(&self) -> Option<[u8; 32]> {
        self.keys.as_ref().filter(|_| self.server).map(|k| k.public)
    }

    /// The security mechanism of a new connection: CURVE server for
    /// inbound ones once a secret key is set; CURVE client for a remote
    /// with a server key. The second value is `true` for a plain dial from
    /// a node that has a key pair (an explicit `CONNECT` without a server
    /// key: the one plain link a secured node may open; counted here, for
    /// the driver to trace).
    /// How a connection in `role` authenticates; `server_key`: the CURVE
    /// key an outbound one dials (the remote's, `Engine::remote_key`).
    pub(crate) fn mechanism_for(
        &mut self,
        role: Role,
        server_key: Option<[u8; 32]>,
    ) -> std::result::Result<(zmtp::MechanismConfig, bool), String> {
        match role {
            Role::Inbound => match (&self.keys, self.server) {
                (Some(keys), true) => {
                    let policy = self.policy.clone();
                    let check =
                        ClientCheck(Arc::new(move |key: &[u8; 32]| policy.check_curve_key(key)));
                    Ok((
                        zmtp::MechanismConfig::CurveServer {
                            keys: keys.clone(),
                            also: Vec::new(),
                            retired: Vec::new(),
                            check: Some(check),
                        },
                        false,
                    ))
                }
                _ => Ok((zmtp::MechanismConfig::Null, false)),
            },
            Role::Outbound(_) => match server_key.as_ref() {
                None => {
                    if self.server {
                        self.plain_dials += 1;
                    }
                    Ok((zmtp::MechanismConfig::Null, self.server))
                }
                Some(server_key) => {
                    if self.keys.is_none() {
                        // A client needs a long-term key pair; a node with
                        // none gets one for its lifetime.
                        self.keys = Some(Keypair::generate()?);
                    }
                    let keys = self.keys.clone().ok_or("no key pair")?;
                    Ok((
                        zmtp::MechanismConfig::CurveClient {
                            keys,
                            server_key: *server_key,
                        },
                        false,
                    ))
                }
            },
        }
    }

    /// Why a new inbound connection from `ip` is refused, if it is.
    pub(crate) fn refusal(&self, ip: Option<IpAddr>) -> Option<String> {
        let limits = &self.limits;
        if limits.connections > 0 && self.inbound >= limits.connections {
            return Some(format!(
                "limits/connections reached ({} open)",
                self.inbound
            ));
        }
        let ip = ip?;
        if let Err(why) = self.policy.check_address(ip) {
            return Some(why);
        }
        let open = self.addresses.count(ip);
        if limits.connections_per_address > 0 && open >= limits.connections_per_address {
            return Some(format!(
                "limits/connections-per-address reached ({open} open from {ip})"
            ));
        }
        None
    }

    /// This part's counters, in the order `STATS` gives them, with the
    /// engine's count of connections closed for `limits/frame-timeout`
    /// in its place among them.
    pub(crate) fn counters(&self, stalled_closed: u64) -> [(&'static str, u64); 5] {
        [
            ("input-held", self.held_input as u64),
            ("stalled-closed", stalled_closed),
            ("input-refused", self.input_refused),
            ("fd-refused", self.fd_refused),
            ("plain-dials", self.plain_dials),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secured_node_serves_curve_and_counts_its_plain_dials() {
        let mut a = Access::default();
        let (mech, plain) = a.mechanism_for(Role::Inbound, None).unwrap();
        assert!(matches!(mech, zmtp::MechanismConfig::Null) && !plain);
        let keys = Keypair::generate().unwrap();
        let done = a.execute(Command::SetSecretKey(keys.secret)).unwrap();
        assert_eq!(done.keys_set, Some(keys.public));
        assert_eq!(a.curve_public_key(), Some(keys.public));
        let (mech, _) = a.mechanism_for(Role::Inbound, None).unwrap();
        assert!(matches!(mech, zmtp::MechanismConfig::CurveServer { .. }));
        let (mech, plain) = a.mechanism_for(Role::Outbound(3), None).unwrap();
        assert!(matches!(mech, zmtp::MechanismConfig::Null) && plain);
        let (mech, plain) = a.mechanism_for(Role::Outbound(4), Some([9; 32])).unwrap();
        assert!(matches!(mech, zmtp::MechanismConfig::CurveClient { .. }) && !plain);
        assert_eq!(a.plain_dials, 1);
    }

    #[test]
    fn a_public_key_that_does_not_match_is_refused() {
        let mut a = Access::default();
        a.execute(Command::SetPublicKey([1; 32])).unwrap();
        let keys = Keypair::generate().unwrap();
        let e = a.execute(Command::SetSecretKey(keys.secret)).unwrap_err();
        assert!(e
            .to_string()
            .contains("does not belong to the public key set"));
        assert_eq!(a.curve_public_key(), None);
    }

    #[test]
    fn refusals_name_the_rule() {
        let mut a = Access {
            limits: Limits {
                connections: 2,
                connections_per_address: 1,
                ..Limits::default()
            },
            ..Access::default()
        };
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(a.refusal(Some(ip)), None);
        a.addresses.add(ip);
        let why = a.refusal(Some(ip)).unwrap();
        assert!(why.contains("connections-per-address reached"), "{why}");
        a.inbound = 2;
        assert!(a
            .refusal(None)
            .unwrap()
            .contains("limits/connections reached"));
        a.inbound = 0;
        a.execute(Command::Deny(vec!["10.0.0.2".parse().unwrap()]))
            .unwrap();
        assert!(a.refusal(Some("10.0.0.2".parse().unwrap())).is_some());
    }
}
