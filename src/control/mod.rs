//! Control: the application's commands carried out against the engine,
//! and the replies built, without I/O. The reactor hands a command here
//! and moves what comes back (replies, settings to apply, sockets to
//! open); nothing here touches a socket or reads a clock.
//!
//! - [`command`]: the commands, parsed and checked from their frames.
//! - [`settings`]: the configuration tree mapped to the node's settings.
//! - [`reply`]: the replies that read the engine (`STATUS`, `GET`,
//!   `KEYS`, `STATS`).
//! - [`metrics`]: the `METRICS` text (Prometheus exposition format).
//! - [`access`]: CURVE keys, access rules and limits, their commands, and
//!   what each new connection may do (its mechanism, or its refusal).
//! - [`keyring`]: the node's own CURVE key pairs, several during a key
//!   rotation, one of them primary.
//! - [`config_file`]: the configuration file loaded, and when to check it
//!   for changes.
//! - [`advertise`]: the endpoint this node tells others to dial
//!   (`overlay/advertise`, else the bound one).

pub(crate) mod access;
pub(crate) mod advertise;
pub mod command;
pub(crate) mod config_file;
pub(crate) mod keyring;
pub(crate) mod metrics;
pub(crate) mod reply;
pub(crate) mod settings;
