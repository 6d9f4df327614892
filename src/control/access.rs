//! Who may connect and how: the node's CURVE key pair, the server keys of
//! its CURVE remotes, the access rules and limits, the commands that set
//! them, and for each new connection its security mechanism (or why it is
//! refused). The counts of open connections it consults are kept by the
//! reactor, which opens and closes them.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use crate::control::command::Command;
use crate::control::keyring::Keyring;
use crate::engine::Role;
use crate::error::{Error, Result};
use crate::security::{AddressCounts, Limits, Policy};
use crate::wire::curve::{ClientCheck, Keypair};
use crate::wire::{z85, zmtp};

/// CURVE keys, access rules and limits of a node, and the counters of
/// what they refused.
#[derive(Default)]
pub(crate) struct Access {
    /// Our key pairs (`SET SECRETKEY`, `CERT`, `KEYRING`): once one is
    /// held, inbound connections are CURVE.
    pub keyring: Keyring,
    /// A key pair drawn for CURVE dials by a node that holds none.
    drawn: Option<Keypair>,
    /// A public key set before the secret key (checked against it).
    public: Option<[u8; 32]>,
    /// A key is held: inbound connections are CURVE.
    pub server: bool,
    pub zap_domain: String,
    pub policy: Arc<Policy>,
    /// The policy as CURVE servers check client keys with it: the
    /// current one, also for handshakes that began before it changed.
    live_policy: Arc<RwLock<Arc<Policy>>>,
    /// Handshakes refused because the client's key is not admitted
    /// (`CURVE ALLOW`, `CURVE dir`).
    pub client_refused: u64,
    /// Open connections closed because their client's key was removed
    /// from the admitted keys.
    pub client_closed: u64,
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
    /// The primary key changed from one key pair to another (`KEYRING
    /// USE`): its public key, to announce from now on; links stay.
    pub primary_changed: Option<[u8; 32]>,
    /// Client keys are no longer admitted: open connections that
    /// authenticated with one are to be closed.
    pub clients_removed: bool,
    /// A line for the `VERBOSE` trace.
    pub trace: Option<String>,
}

impl Access {
    /// Carries out a CURVE, key or access-rule command.
    pub(crate) fn execute(&mut self, cmd: Command) -> Result<AccessOutcome> {
        let mut done = AccessOutcome::default();
        match cmd {
            Command::SetPublicKey(public) => {
                if let Some(k) = self.keyring.primary() {
                    if k.public != public {
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
                let pair = cert_keypair("CERT", &path)?;
                self.public = None;
                done = self.set_keys(pair)?;
            }
            Command::KeyringAdd(secret) => done = self.keyring_add(Keypair::from_secret(secret))?,
            Command::KeyringCert(path) => {
                let pair = cert_keypair("KEYRING CERT", &path)?;
                done = self.keyring_add(pair)?;
            }
            Command::KeyringUse(public) => {
                if self.keyring.use_key(&public).map_err(Error::command)? {
                    self.public = None;
                    done.primary_changed = Some(public);
                    done.trace = Some(format!(
                        "CURVE: primary key now {}",
                        z85::encode_key(&public)
                    ));
                }
            }
            Command::KeyringRemove(public) => {
                self.keyring.remove(&public).map_err(Error::command)?;
                done.trace = Some(format!("CURVE: key {} retired", z85::encode_key(&public)));
            }
            Command::KeyringList => done.reply = Some(self.keyring.list()),
            Command::Allow(ips) => Arc::make_mut(&mut self.policy).allow(&ips),
            Command::Deny(ips) => Arc::make_mut(&mut self.policy).deny(&ips),
            Command::CurveAllow(keys) => Arc::make_mut(&mut self.policy).curve_allow(&keys),
            Command::CurveAny => Arc::make_mut(&mut self.policy).curve_allow_any(),
            Command::CurveCerts(dir) => {
                let keys = crate::certs::load_public_certs(&dir)?;
                let gone = Arc::make_mut(&mut self.policy).curve_allow_dir(&dir, &keys);
                done.trace = Some(format!(
                    "CURVE: {} client keys from {dir} ({} no longer admitted)",
                    keys.len(),
                    gone.len()
                ));
                done.clients_removed = !gone.is_empty();
            }
            Command::CurveRemove(keys) => {
                if !self.policy.curve_listed() {
                    return Err(Error::command(
                        "CURVE REMOVE: the node admits any client key (CURVE *): \
                         set a list with CURVE ALLOW or CURVE dir first",
                    ));
                }
                let removed = Arc::make_mut(&mut self.policy).curve_remove(&keys);
                done.trace = Some(format!(
                    "CURVE: {removed} of {} client keys removed",
                    keys.len()
                ));
                done.clients_removed = removed > 0;
            }
            other => return Err(Error::command(format!("{other} is not an access command"))),
        }
        self.publish_policy();
        Ok(done)
    }

    /// Hands the current policy to the CURVE servers of every connection.
    fn publish_policy(&self) {
        if let Ok(mut live) = self.live_policy.write() {
            if !Arc::ptr_eq(&live, &self.policy) {
                *live = self.policy.clone();
            }
        }
    }

    /// Whether a CURVE client with this key is admitted now.
    pub(crate) fn admits_client(&self, key: &[u8; 32]) -> bool {
        self.policy.check_curve_key(key).is_ok()
    }

    /// `KEYRING ADD`, `KEYRING CERT`: one more key pair held; the first
    /// makes the node a CURVE server, as `SET SECRETKEY` does.
    fn keyring_add(&mut self, pair: Keypair) -> Result<AccessOutcome> {
        let public = pair.public;
        if self.keyring.add(pair).map_err(Error::command)? {
            self.server = true;
            return Ok(AccessOutcome {
                keys_set: Some(public),
                trace: Some(format!(
                    "CURVE server, public key {}",
                    z85::encode_key(&public)
                )),
                ..AccessOutcome::default()
            });
        }
        Ok(AccessOutcome {
            trace: Some(format!(
                "CURVE: key {} held beside the primary key",
                z85::encode_key(&public)
            )),
            ..AccessOutcome::default()
        })
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
        self.keyring.replace(keys);
        self.server = true;
        Ok(AccessOutcome {
            keys_set: Some(public),
            primary_changed: None,
            clients_removed: false,
            reply: None,
            trace: Some(format!(
                "CURVE server, public key {}",
                z85::encode_key(&public)
            )),
        })
    }

    /// The public key a node announces: set when the node has its own key
    /// pair (`SET SECRETKEY`, `CERT`), not one drawn for a CURVE dial.
    pub(crate) fn curve_public_key(&self) -> Option<[u8; 32]> {
        self.keyring.primary().map(|k| k.public)
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
            Role::Inbound => match self.keyring.primary() {
                Some(keys) => {
                    let live = self.live_policy.clone();
                    let check = ClientCheck(Arc::new(move |key: &[u8; 32]| match live.read() {
                        Ok(policy) => policy.check_curve_key(key),
                        Err(_) => Err("access policy unavailable".into()),
                    }));
                    Ok((
                        zmtp::MechanismConfig::CurveServer {
                            keys: keys.clone(),
                            also: self.keyring.others(),
                            retired: self.keyring.retired(),
                            check: Some(check),
                        },
                        false,
                    ))
                }
                None => Ok((zmtp::MechanismConfig::Null, false)),
            },
            Role::Outbound(_) => match server_key.as_ref() {
                None => {
                    if self.server {
                        self.plain_dials += 1;
                    }
                    Ok((zmtp::MechanismConfig::Null, self.server))
                }
                Some(server_key) => {
                    let keys = match (self.keyring.primary(), &self.drawn) {
                        (Some(k), _) | (None, Some(k)) => k.clone(),
                        (None, None) => {
                            // A client needs a long-term key pair; a node
                            // with none gets one for its lifetime.
                            let k = Keypair::generate()?;
                            self.drawn = Some(k.clone());
                            k
                        }
                    };
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
    pub(crate) fn counters(&self, stalled_closed: u64) -> [(&'static str, u64); 11] {
        let ring = &self.keyring;
        [
            ("input-held", self.held_input as u64),
            ("stalled-closed", stalled_closed),
            ("input-refused", self.input_refused),
            ("fd-refused", self.fd_refused),
            ("plain-dials", self.plain_dials),
            ("curve-handshakes", ring.handshakes),
            ("curve-handshakes-secondary", ring.secondary_handshakes),
            ("curve-retired-refused", ring.retired_refused),
            ("curve-unknown-refused", ring.unknown_refused),
            ("curve-client-refused", self.client_refused),
            ("curve-client-closed", self.client_closed),
        ]
    }

    /// Counts how an inbound CURVE handshake ended: completed with our
    /// key `server_key`, or failed for `reason` (a HELLO for a retired or
    /// unknown key, a client key not admitted).
    pub(crate) fn count_handshake(&mut self, server_key: Option<[u8; 32]>, reason: Option<&str>) {
        if let Some(key) = server_key {
            self.keyring.count_handshake(&key);
        }
        let Some(reason) = reason else { return };
        if reason.contains(crate::wire::curve::HELLO_RETIRED) {
            self.keyring.retired_refused += 1;
        } else if reason.contains(crate::wire::curve::HELLO_UNKNOWN) {
            self.keyring.unknown_refused += 1;
        } else if reason.contains(crate::security::CLIENT_NOT_ALLOWED) {
            self.client_refused += 1;
        }
    }
}

/// The key pair of a CZMQ zcert file (`path_secret`, else `path`).
fn cert_keypair(command: &str, path: &str) -> Result<Keypair> {
    let cert = crate::certs::load_cert(path)?;
    let Some(secret) = cert.secret else {
        return Err(Error::Config(format!(
            "{command} {path}: no secret key (neither {path}_secret nor {path} has one)"
        )));
    };
    let secret = crate::certs::decode_key("secret-key", &secret)?;
    Ok(Keypair::from_secret(secret))
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

    /// The keys a new inbound connection's CURVE server answers to.
    fn served(a: &mut Access) -> (Keypair, Vec<Keypair>, Vec<Keypair>) {
        match a.mechanism_for(Role::Inbound, None).unwrap().0 {
            zmtp::MechanismConfig::CurveServer {
                keys,
                also,
                retired,
                ..
            } => (keys, also, retired),
            other => panic!("not a CURVE server: {other:?}"),
        }
    }

    #[test]
    fn a_rotation_adds_switches_and_retires_keys() {
        let mut a = Access::default();
        let (old, new) = (Keypair::generate().unwrap(), Keypair::generate().unwrap());
        // The first key held makes the node a CURVE server, as SET SECRETKEY.
        let done = a.execute(Command::KeyringAdd(old.secret)).unwrap();
        assert_eq!(done.keys_set, Some(old.public));
        assert!(a.server);
        let done = a.execute(Command::KeyringAdd(new.secret)).unwrap();
        assert_eq!((done.keys_set, done.primary_changed), (None, None));
        assert_eq!(served(&mut a), (old.clone(), vec![new.clone()], vec![]));
        assert_eq!(
            a.curve_public_key(),
            Some(old.public),
            "announced: still old"
        );
        // Switched: the new key is announced and dials with it.
        let done = a.execute(Command::KeyringUse(new.public)).unwrap();
        assert_eq!(done.primary_changed, Some(new.public));
        assert_eq!(a.curve_public_key(), Some(new.public));
        let (mech, _) = a.mechanism_for(Role::Outbound(1), Some([5; 32])).unwrap();
        assert!(matches!(mech, zmtp::MechanismConfig::CurveClient { keys, .. } if keys == new));
        // Retired: served no more, remembered to name the refusal.
        a.execute(Command::KeyringRemove(old.public)).unwrap();
        assert_eq!(served(&mut a), (new.clone(), vec![], vec![old.clone()]));
        let e = a.execute(Command::KeyringRemove(new.public)).unwrap_err();
        assert!(e.to_string().contains("the node's only key"), "{e}");
        let list = a.execute(Command::KeyringList).unwrap().reply.unwrap();
        assert_eq!(
            list,
            ["KEYRING", &z85::encode_key(&new.public), "primary", "0"]
        );
    }

    #[test]
    fn removed_client_keys_are_refused_even_by_handshakes_under_way() {
        let mut a = Access::default();
        a.execute(Command::SetSecretKey(Keypair::generate().unwrap().secret))
            .unwrap();
        let e = a.execute(Command::CurveRemove(vec![[1; 32]])).unwrap_err();
        assert!(e.to_string().contains("admits any client key"), "{e}");
        a.execute(Command::CurveAllow(vec![[1; 32], [2; 32]]))
            .unwrap();
        // A connection accepted now checks the key at its INITIATE, later.
        let check = match a.mechanism_for(Role::Inbound, None).unwrap().0 {
            zmtp::MechanismConfig::CurveServer { check, .. } => check.unwrap(),
            other => panic!("not a CURVE server: {other:?}"),
        };
        assert!((check.0)(&[1; 32]).is_ok());
        let done = a.execute(Command::CurveRemove(vec![[1; 32]])).unwrap();
        assert!(done.clients_removed);
        assert!(!a.admits_client(&[1; 32]) && a.admits_client(&[2; 32]));
        assert_eq!(
            (check.0)(&[1; 32]).unwrap_err(),
            "client key is not allowed"
        );
        assert!((check.0)(&[2; 32]).is_ok());
        // Removing a key not listed changes nothing to close.
        let done = a.execute(Command::CurveRemove(vec![[1; 32]])).unwrap();
        assert!(!done.clients_removed);
    }

    #[test]
    fn handshake_outcomes_are_counted_by_key_and_reason() {
        let mut a = Access::default();
        let (old, new) = (Keypair::generate().unwrap(), Keypair::generate().unwrap());
        a.execute(Command::KeyringAdd(old.secret)).unwrap();
        a.execute(Command::KeyringAdd(new.secret)).unwrap();
        a.count_handshake(Some(old.public), None);
        a.count_handshake(Some(new.public), None);
        a.count_handshake(None, Some(crate::wire::curve::HELLO_RETIRED));
        a.count_handshake(
            None,
            Some("CURVE: cannot open HELLO box (wrong server key?)"),
        );
        a.count_handshake(None, Some("access denied: client key is not allowed"));
        a.count_handshake(None, Some("closed by peer"));
        let c: std::collections::HashMap<_, _> = a.counters(0).into_iter().collect();
        assert_eq!(c["curve-handshakes"], 2);
        assert_eq!(c["curve-handshakes-secondary"], 1);
        assert_eq!(c["curve-retired-refused"], 1);
        assert_eq!(c["curve-unknown-refused"], 1);
        assert_eq!(c["curve-client-refused"], 1);
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
