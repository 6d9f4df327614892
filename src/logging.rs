//! Where the library's log lines go: the one place that writes them.
//!
//! Every line goes through the [`log`] facade, with a target under
//! `zgossip` that names the part that wrote it ([`ENGINE`], [`REACTOR`],
//! [`DISCOVERY`], [`STORE`]) and a level:
//!
//! - the protocol trace, what `VERBOSE` shows: [`log::Level::Debug`], and
//!   [`log::Level::Trace`] for the lines written per message (a frame
//!   received, a tuple forwarded);
//! - what goes wrong but leaves the node running (a torn data file cut,
//!   a configuration file that no longer loads): [`log::Level::Warn`], and
//!   [`log::Level::Info`] for the recovery that follows;
//! - what stops a node or its disk: [`log::Level::Error`].
//!
//! Two more sinks keep CZMQ's behaviour:
//!
//! - a node with `VERBOSE` (or `server/verbose`) prints its trace lines to
//!   stderr as before (`zgossip NAME: what`), whatever the logger;
//! - a warning or an error, which was always printed, is printed to stderr
//!   as before when no logger takes it (no logger installed, or one whose
//!   level leaves it out).
//!
//! Nothing is formatted unless a sink takes the line: the `VERBOSE` flag
//! and [`log::log_enabled!`] (one atomic load when no logger is installed)
//! are checked first.

use std::fmt::Arguments;

use log::Level;

/// The gossip engine: sessions, writes, forwarding, timers, the overlay.
pub(crate) const ENGINE: &str = "zgossip::engine";
/// The event loop: sockets, binds, dials, commands, configuration files.
pub(crate) const REACTOR: &str = "zgossip::reactor";
/// Discovery: UDP beacons and mDNS.
pub(crate) const DISCOVERY: &str = "zgossip::discovery";
/// The data directory.
pub(crate) const STORE: &str = "zgossip::store";

/// Whether a trace line at `level` of `target` goes anywhere: the node is
/// verbose, or a logger takes it. Callers that build a costly description
/// check this first.
#[inline]
pub(crate) fn tracing(verbose: bool, target: &str, level: Level) -> bool {
    verbose || log::log_enabled!(target: target, level)
}

/// A trace line of the node `node` (`None`: a part without a node, shown
/// with `prefix` alone): printed to stderr when `verbose`, as CZMQ does,
/// and given to the logger when it takes it.
pub(crate) fn trace(
    verbose: bool,
    target: &str,
    level: Level,
    prefix: &str,
    node: Option<&str>,
    what: Arguments<'_>,
) {
    if verbose {
        match node {
            Some(name) => eprintln!("{prefix} {name}: {what}"),
            None => eprintln!("{prefix}: {what}"),
        }
    }
    if log::log_enabled!(target: target, level) {
        match node {
            Some(name) => log::log!(target: target, level, "{name}: {what}"),
            None => log::log!(target: target, level, "{what}"),
        }
    }
}

/// A line that was always printed (a warning, an error, a recovery): given
/// to the logger when it takes it, else printed to stderr as
/// `zgossip NAME: what` (`zgossip: what` without a node).
pub(crate) fn notice(target: &str, level: Level, node: Option<&str>, what: Arguments<'_>) {
    notice_as("zgossip", target, level, node, what);
}

/// [`notice`], printed with another `prefix` than `zgossip` (the beacon
/// prints `zbeacon: what`, as CZMQ's does).
pub(crate) fn notice_as(
    prefix: &str,
    target: &str,
    level: Level,
    node: Option<&str>,
    what: Arguments<'_>,
) {
    if log::log_enabled!(target: target, level) {
        match node {
            Some(name) => log::log!(target: target, level, "{name}: {what}"),
            None => log::log!(target: target, level, "{what}"),
        }
    } else {
        match node {
            Some(name) => eprintln!("{prefix} {name}: {what}"),
            None => eprintln!("{prefix}: {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_formatted_without_a_sink() {
        // No logger is installed in the library's unit tests (the C
        // handler's tests do not run here): only the flag decides.
        struct Panics;
        impl std::fmt::Display for Panics {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                panic!("formatted without a sink")
            }
        }
        if log::max_level() == log::LevelFilter::Off {
            assert!(!tracing(false, ENGINE, Level::Trace));
            trace(
                false,
                ENGINE,
                Level::Debug,
                "zgossip",
                Some("n"),
                format_args!("{}", Panics),
            );
        }
        assert!(tracing(true, ENGINE, Level::Trace));
    }
}
