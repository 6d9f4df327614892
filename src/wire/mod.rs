//! Sans-IO codecs: ZMTP 3.1 stream framing and handshake, ZGP messages.
//! Nothing here touches a socket or a clock.

pub mod ext;
pub mod gossip;
pub mod zmtp;
