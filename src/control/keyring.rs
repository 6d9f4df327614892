//! The node's own CURVE key pairs (its keyring): one or more held at once
//! so that a key can be rotated on a running node. A CURVE server answers
//! a client that addressed any held key; the *primary* key is the one the
//! node announces (beacons, overlay) and uses as a CURVE client. Keys
//! retired from the ring are remembered for a while so that a client
//! still using one is refused with a reason of its own, and counted.
//! Serf's keyring (install, use, remove, list) is the model.

use std::collections::VecDeque;

use crate::wire::curve::Keypair;
use crate::wire::z85;

/// Most keys a node holds at once (a rotation needs two; a few more
/// leave room for an overlap of rotations). Each held key costs a
/// Diffie-Hellman per HELLO addressed to none of the keys before it.
pub(crate) const MAX_HELD: usize = 8;

/// Retired keys remembered to name the refusal of a HELLO addressed to
/// one (the oldest is forgotten first).
pub(crate) const MAX_RETIRED: usize = 4;

/// One held key pair and the handshakes clients completed with it.
#[derive(Debug, Clone)]
struct Held {
    pair: Keypair,
    handshakes: u64,
}

/// The node's CURVE key pairs: the first held is primary.
#[derive(Debug, Default)]
pub(crate) struct Keyring {
    held: Vec<Held>,
    retired: VecDeque<Keypair>,
    /// Handshakes completed, whatever key they addressed.
    pub handshakes: u64,
    /// Handshakes completed with a held key other than the primary.
    pub secondary_handshakes: u64,
    /// HELLOs refused because they were addressed to a retired key.
    pub retired_refused: u64,
    /// HELLOs refused because no key held or retired opens them.
    pub unknown_refused: u64,
}

impl Keyring {
    /// The primary key pair, if the node holds any.
    pub(crate) fn primary(&self) -> Option<&Keypair> {
        self.held.first().map(|h| &h.pair)
    }

    /// The held key pairs other than the primary one.
    pub(crate) fn others(&self) -> Vec<Keypair> {
        self.held.iter().skip(1).map(|h| h.pair.clone()).collect()
    }

    /// The retired key pairs still remembered.
    pub(crate) fn retired(&self) -> Vec<Keypair> {
        self.retired.iter().cloned().collect()
    }

    fn position(&self, public: &[u8; 32]) -> Option<usize> {
        self.held.iter().position(|h| &h.pair.public == public)
    }

    fn unretire(&mut self, public: &[u8; 32]) {
        self.retired.retain(|k| &k.public != public);
    }

    fn retire(&mut self, pair: Keypair) {
        self.unretire(&pair.public);
        if self.retired.len() == MAX_RETIRED {
            self.retired.pop_front();
        }
        self.retired.push_back(pair);
    }

    /// `SET SECRETKEY`, `CERT`: this key pair is the only one held, as
    /// before key rotation existed; the keys held until now are retired.
    pub(crate) fn replace(&mut self, pair: Keypair) {
        for h in std::mem::take(&mut self.held) {
            if h.pair.public != pair.public {
                self.retire(h.pair);
            }
        }
        self.unretire(&pair.public);
        self.held.push(Held {
            pair,
            handshakes: 0,
        });
    }

    /// `KEYRING ADD`: one more key held; the first key held becomes
    /// primary (returns whether it did).
    pub(crate) fn add(&mut self, pair: Keypair) -> Result<bool, String> {
        let shown = z85::encode_key(&pair.public);
        if self.position(&pair.public).is_some() {
            return Err(format!("KEYRING ADD: key {shown} is already held"));
        }
        if self.held.len() >= MAX_HELD {
            return Err(format!(
                "KEYRING ADD: the node holds {MAX_HELD} keys already, the most it may \
                 (KEYRING REMOVE one first)"
            ));
        }
        self.unretire(&pair.public);
        self.held.push(Held {
            pair,
            handshakes: 0,
        });
        Ok(self.held.len() == 1)
    }

    /// `KEYRING USE`: a held key becomes primary. Returns whether the
    /// primary changed.
    pub(crate) fn use_key(&mut self, public: &[u8; 32]) -> Result<bool, String> {
        let Some(at) = self.position(public) else {
            return Err(not_held("KEYRING USE", public));
        };
        if at == 0 {
            return Ok(false);
        }
        let h = self.held.remove(at);
        self.held.insert(0, h);
        Ok(true)
    }

    /// `KEYRING REMOVE`: a held key is retired; never the primary one
    /// (which is also the last one left).
    pub(crate) fn remove(&mut self, public: &[u8; 32]) -> Result<(), String> {
        let shown = z85::encode_key(public);
        match self.position(public) {
            None => Err(not_held("KEYRING REMOVE", public)),
            Some(0) if self.held.len() == 1 => Err(format!(
                "KEYRING REMOVE: key {shown} is the node's only key (KEYRING ADD and \
                 KEYRING USE its successor first)"
            )),
            Some(0) => Err(format!(
                "KEYRING REMOVE: key {shown} is the primary key (KEYRING USE another \
                 held key first)"
            )),
            Some(at) => {
                let h = self.held.remove(at);
                self.retire(h.pair);
                Ok(())
            }
        }
    }

    /// A client completed a handshake addressed to `public`.
    pub(crate) fn count_handshake(&mut self, public: &[u8; 32]) {
        if let Some(at) = self.position(public) {
            self.handshakes += 1;
            self.held[at].handshakes += 1;
            if at != 0 {
                self.secondary_handshakes += 1;
            }
        }
    }

    /// The `KEYRING LIST` reply: `KEYRING`, then three frames per held
    /// key, the primary first: public key (Z85), `primary` or
    /// `secondary`, handshakes completed with it.
    pub(crate) fn list(&self) -> Vec<String> {
        let mut reply = vec!["KEYRING".to_string()];
        for (i, h) in self.held.iter().enumerate() {
            reply.push(z85::encode_key(&h.pair.public));
            reply.push(if i == 0 { "primary" } else { "secondary" }.to_string());
            reply.push(h.handshakes.to_string());
        }
        reply
    }
}

fn not_held(command: &str, public: &[u8; 32]) -> String {
    format!(
        "{command}: key {} is not held by this node (KEYRING LIST shows the keys held)",
        z85::encode_key(public)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> Keypair {
        Keypair::generate().unwrap()
    }

    #[test]
    fn add_use_remove_as_serf() {
        let mut ring = Keyring::default();
        let (a, b) = (pair(), pair());
        assert!(ring.add(a.clone()).unwrap(), "the first key is primary");
        assert!(!ring.add(b.clone()).unwrap());
        assert_eq!(ring.primary(), Some(&a));
        assert_eq!(ring.others(), vec![b.clone()]);
        ring.count_handshake(&b.public);
        assert_eq!((ring.secondary_handshakes, ring.handshakes), (1, 1));
        assert!(ring.use_key(&b.public).unwrap());
        assert!(!ring.use_key(&b.public).unwrap(), "already primary");
        assert_eq!(ring.primary(), Some(&b));
        let list = ring.list();
        assert_eq!(
            list[1..4],
            [z85::encode_key(&b.public), "primary".into(), "1".into()]
        );
        assert_eq!(
            list[4..7],
            [z85::encode_key(&a.public), "secondary".into(), "0".into()]
        );
        ring.remove(&a.public).unwrap();
        assert_eq!(ring.others(), vec![]);
        assert_eq!(ring.retired(), vec![a.clone()]);
        // Added again, it is held and no longer retired.
        ring.add(a.clone()).unwrap();
        assert!(ring.retired().is_empty());
    }

    #[test]
    fn refusals_say_why() {
        let mut ring = Keyring::default();
        let (a, b) = (pair(), pair());
        let e = ring.use_key(&a.public).unwrap_err();
        assert!(e.contains("is not held by this node"), "{e}");
        ring.add(a.clone()).unwrap();
        let e = ring.add(a.clone()).unwrap_err();
        assert!(e.contains("already held"), "{e}");
        let e = ring.remove(&a.public).unwrap_err();
        assert!(e.contains("the node's only key"), "{e}");
        ring.add(b.clone()).unwrap();
        let e = ring.remove(&a.public).unwrap_err();
        assert!(e.contains("is the primary key"), "{e}");
        let e = ring.remove(&[7; 32]).unwrap_err();
        assert!(
            e.contains("KEYRING REMOVE: key") && e.contains("not held"),
            "{e}"
        );
        for _ in 2..MAX_HELD {
            ring.add(pair()).unwrap();
        }
        let e = ring.add(pair()).unwrap_err();
        assert!(e.contains("the most it may"), "{e}");
    }

    #[test]
    fn replace_retires_the_keys_held_and_retired_keys_are_bounded() {
        let mut ring = Keyring::default();
        let first = pair();
        ring.replace(first.clone());
        for _ in 0..MAX_RETIRED + 2 {
            ring.replace(pair());
        }
        assert_eq!(ring.others(), vec![]);
        assert_eq!(ring.retired().len(), MAX_RETIRED);
        assert!(!ring.retired().contains(&first), "the oldest is forgotten");
    }
}
