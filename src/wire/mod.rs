//! Sans-IO codecs: ZMTP 3.1 stream framing and handshake (NULL and CURVE),
//! Z85, ZGP messages.
//! Nothing here touches a socket or a clock.

pub mod curve;
pub mod gossip;
pub mod membership;
pub mod overlay;
pub(crate) mod text;
pub mod z85;
pub mod zgp2;
pub mod zmtp;
