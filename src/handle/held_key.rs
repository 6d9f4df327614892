//! [`HeldKey`]: one of the node's own CURVE keys, as `KEYRING LIST`
//! reports it (`Node::keyring`).

use crate::error::{Error, Result};

/// One CURVE key pair a node holds (its public half only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKey {
    /// The public key, Z85 (40 characters).
    pub public: String,
    /// The primary key: announced (beacons, overlay) and used to dial as
    /// a CURVE client. Exactly one held key is.
    pub primary: bool,
    /// Handshakes clients completed addressed to this key.
    pub handshakes: u64,
}

impl HeldKey {
    /// A held key from the three frames `KEYRING LIST` gives for it:
    /// public key, `primary` or `secondary`, handshakes.
    pub fn from_frames(public: &str, role: &str, handshakes: &str) -> Result<HeldKey> {
        let primary = match role {
            "primary" => true,
            "secondary" => false,
            other => {
                return Err(Error::command(format!(
                    "KEYRING: unknown key role '{other}'"
                )))
            }
        };
        let handshakes = handshakes
            .parse()
            .map_err(|_| Error::command(format!("KEYRING: '{handshakes}' is not a count")))?;
        Ok(HeldKey {
            public: public.to_string(),
            primary,
            handshakes,
        })
    }
}
