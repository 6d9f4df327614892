//! Discovery: the [`Beacon`] actor (CZMQ's `zbeacon`), the gossip node's
//! `DISCOVER` beacon frame, its DNS-SD record for mDNS (`dnssd`, `mdns`)
//! and the sans-IO discovery state machine both feed. See
//! `docs/discovery.md`.

mod actor;
pub mod discovery;
pub mod dnssd;
pub(crate) mod driver;
pub mod frame;
pub mod iface;
pub(crate) mod mdns;
pub mod options;
pub mod udp;

pub use actor::{Beacon, BeaconCommand, Received, DEFAULT_INTERVAL_MS};
pub use udp::UdpOptions;
