//! zgossip: nodes publish key/value tuples that spread through a loosely
//! connected network until every node holds them. Wire-compatible with
//! CZMQ 4.2.1 `zgossip`.
//!
//! Layers, each using only those below it: [`wire`] (sans-IO codecs),
//! [`store`] (tuples), [`engine`] (the sans-IO gossip engine), the reactor
//! (mio event loop, private) and the [`Node`] handle.

pub mod beacon;
pub mod certs;
pub mod config;
mod control;
pub mod dns_seed;
pub mod endpoint;
pub mod engine;
mod error;
pub mod ffi;
mod handle;
mod logging;
pub mod news;
mod persist;
mod reactor;
pub mod rng;
mod security;
pub mod sim;
pub mod store;
pub mod wire;

pub use beacon::discovery::DiscoverySettings;
pub use beacon::options::DiscoverOptions;
pub use beacon::{Beacon, Received, UdpOptions};
/// The former name of [`certs`], kept so code written against
/// `zgossip::curve::keypair` and the like still builds.
#[doc(hidden)]
pub use certs as curve;
pub use control::command::Command;
/// The HTTP content type of the `METRICS` text (Prometheus text
/// exposition format 0.0.4).
pub use control::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
pub use error::{Error, ErrorKind, Result};
pub use handle::{HeldKey, Member, MemberState, Node};

/// Helpers for tests and tools that speak to a node directly, below the
/// command API. Not part of the stable API.
#[doc(hidden)]
pub mod testing {
    /// Opens a raw stream to an `inproc://` name bound in this process; the
    /// caller speaks ZMTP on it (blocking).
    pub fn connect_inproc(name: &str) -> crate::Result<std::os::unix::net::UnixStream> {
        let s = crate::reactor::inproc::connect(name)?;
        s.set_nonblocking(false)
            .map_err(|e| crate::Error::io("cannot configure inproc stream", e))?;
        Ok(s)
    }
}

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
