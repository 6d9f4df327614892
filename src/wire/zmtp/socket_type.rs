//! ZeroMQ socket types and the RFC 37 table of which may talk to which.

use std::fmt;

/// A ZeroMQ socket type, as announced in the `Socket-Type` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// `PAIR`
    Pair,
    /// `PUB`
    Pub,
    /// `SUB`
    Sub,
    /// `REQ`
    Req,
    /// `REP`
    Rep,
    /// `DEALER`
    Dealer,
    /// `ROUTER`
    Router,
    /// `PULL`
    Pull,
    /// `PUSH`
    Push,
    /// `XPUB`
    XPub,
    /// `XSUB`
    XSub,
    /// `STREAM` (raw TCP in libzmq; never completes a ZMTP handshake)
    Stream,
}

impl SocketType {
    /// Every socket type, for tests and fuzzing.
    pub const ALL: [SocketType; 12] = [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pull,
        SocketType::Push,
        SocketType::XPub,
        SocketType::XSub,
        SocketType::Stream,
    ];

    /// The name sent in `Socket-Type`, e.g. `"DEALER"`.
    pub fn name(self) -> &'static str {
        match self {
            SocketType::Pair => "PAIR",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pull => "PULL",
            SocketType::Push => "PUSH",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
            SocketType::Stream => "STREAM",
        }
    }

    /// Parses a `Socket-Type` value. Exact, case-sensitive match, as libzmq.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        SocketType::ALL
            .iter()
            .copied()
            .find(|t| t.name().as_bytes() == name)
    }

    /// Whether a socket of this type may talk to a peer of type `peer`
    /// (the RFC 37 table of legal combinations).
    pub fn compatible_with(self, peer: SocketType) -> bool {
        use SocketType::*;
        matches!(
            (self, peer),
            (Req, Rep | Router)
                | (Rep, Req | Dealer)
                | (Dealer, Rep | Dealer | Router)
                | (Router, Req | Dealer | Router)
                | (Pub | XPub, Sub | XSub)
                | (Sub | XSub, Pub | XPub)
                | (Push, Pull)
                | (Pull, Push)
                | (Pair, Pair)
        )
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::connected;
    use super::*;

    #[test]
    fn all_compatible_pairs_handshake() {
        for x in SocketType::ALL {
            for y in SocketType::ALL {
                assert_eq!(x.compatible_with(y), y.compatible_with(x), "{x} {y}");
                assert_eq!(SocketType::from_name(x.name().as_bytes()), Some(x));
                if x.compatible_with(y) {
                    connected(x, y);
                }
            }
        }
        assert_eq!(SocketType::from_name(b"dealer"), None);
    }
}
