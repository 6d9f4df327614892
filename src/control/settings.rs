//! The node's settings read from its configuration tree (`SET path value`,
//! `LOAD file`): a pure mapping from the tree to the engine's settings, the
//! connection limits and the driver's own, checked as a whole before any
//! is applied. Paths and defaults are listed in docs/configuration.md.

use crate::config::Config;
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::security::{Limits, MIN_MAX_FRAME};

/// `server/pipe-limit` when unset: the reply pipe's length beyond which
/// news is coalesced per key.
pub(crate) const DEFAULT_PIPE_LIMIT: usize = 100_000;

/// Every setting a configuration tree gives a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeSettings {
    pub engine: Settings,
    pub limits: Limits,
    /// `server/extensions`: announce and speak ZGP/2 with peers that do.
    pub zgp2_enabled: bool,
    /// `server/linger`: how long `$TERM` waits for queued output, ms.
    pub linger_ms: u64,
    /// `server/pipe-limit`: messages the reply pipe holds before it
    /// coalesces deliveries.
    pub pipe_limit: usize,
    /// `server/verbose` set to something other than 0.
    pub verbose: bool,
}

/// Reads `cfg` over the current engine settings and linger: a path that
/// is absent keeps the current value (`server/timeout`,
/// `limits/idle-timeout` and the limits fall back to their defaults).
/// `Err` names the first path whose value is not valid.
pub(crate) fn from_config(
    cfg: &Config,
    current: &Settings,
    linger_ms: u64,
) -> Result<NodeSettings> {
    let mut s = current.clone();
    let ms = |path: &str, current: u64| -> Result<u64> {
        match cfg.get(path) {
            None => Ok(current),
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                Error::Config(format!(
                    "{path} must be a number of milliseconds, got '{v}'"
                ))
            }),
        }
    };
    let num = |path: &str, default: u64| -> Result<u64> {
        match cfg.get(path) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::Config(format!("{path} must be a whole number, got '{v}'"))),
        }
    };
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let defaults = Settings::default();
    s.session_timeout_ms = ms("server/timeout", defaults.session_timeout_ms)?;
    s.ping_interval_ms = ms("remote/ping-interval", s.ping_interval_ms)?.max(1);
    s.remote_timeout_ms = ms("remote/timeout", s.remote_timeout_ms)?.max(1);
    s.reconnect_ivl_ms = ms("remote/reconnect-ivl", s.reconnect_ivl_ms)?.max(1);
    s.reconnect_ivl_max_ms = ms("remote/reconnect-ivl-max", s.reconnect_ivl_max_ms)?.max(1);
    s.sync_interval_ms = ms("server/sync-interval", s.sync_interval_ms)?.max(1);
    s.tombstone_grace_ms = ms("server/tombstone-grace", s.tombstone_grace_ms)?;
    s.idle_timeout_ms = ms("limits/idle-timeout", defaults.idle_timeout_ms)?.max(1);
    s.expired_grace_ms = ms("server/expired-grace", s.expired_grace_ms)?;
    s.max_clock_ahead_ms = ms("server/max-clock-drift", s.max_clock_ahead_ms)?;
    // The limits fall back to their defaults when absent.
    s.handshake_timeout_ms = num("limits/handshake-timeout", defaults.handshake_timeout_ms)?.max(1);
    s.frame_timeout_ms = num("limits/frame-timeout", defaults.frame_timeout_ms)?.max(1);
    s.tuples_per_second = num("limits/tuples-per-second", defaults.tuples_per_second)?;
    s.bytes_per_second = num("limits/bytes-per-second", defaults.bytes_per_second)?;
    let zgp2_enabled = match cfg.get("server/extensions").map(str::trim) {
        None | Some("1") => true,
        Some("0") => false,
        Some(v) => {
            return Err(Error::Config(format!(
                "server/extensions must be 0 or 1, got '{v}'"
            )))
        }
    };
    let linger_ms = ms("server/linger", linger_ms)?;
    let d = Limits::default();
    s.max_backlog_bytes = size(num(
        "limits/max-backlog",
        defaults.max_backlog_bytes as u64,
    )?)
    .max(64 << 10);
    s.max_backlog_total = size(num(
        "limits/max-backlog-total",
        defaults.max_backlog_total as u64,
    )?);
    let limits = Limits {
        max_frame: size(num("limits/max-frame", d.max_frame as u64)?).max(MIN_MAX_FRAME),
        connections_per_address: size(num(
            "limits/connections-per-address",
            d.connections_per_address as u64,
        )?),
        connections: size(num("limits/connections", d.connections as u64)?),
        input_buffers: size(num("limits/input-buffers", d.input_buffers as u64)?),
    };
    let pipe_limit = size(ms("server/pipe-limit", DEFAULT_PIPE_LIMIT as u64)?);
    let verbose =
        matches!(cfg.get("server/verbose").map(str::trim), Some(v) if v != "0" && !v.is_empty());
    if s.session_timeout_ms == 0 {
        // CZMQ treats 0 as "never expire".
        s.session_timeout_ms = u64::MAX / 4;
    }
    s.max_frame = limits.max_frame;
    Ok(NodeSettings {
        engine: s,
        limits,
        zgp2_enabled,
        linger_ms,
        pipe_limit,
        verbose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (p, v) in pairs {
            c.put(p, v).unwrap();
        }
        c
    }

    fn read(pairs: &[(&str, &str)]) -> Result<NodeSettings> {
        from_config(&tree(pairs), &Settings::default(), 500)
    }

    #[test]
    fn an_empty_tree_gives_the_defaults() {
        let n = read(&[]).unwrap();
        assert_eq!(
            n.engine,
            Settings {
                max_frame: Limits::default().max_frame,
                ..Settings::default()
            }
        );
        assert_eq!(n.limits, Limits::default());
        assert!(n.zgp2_enabled && !n.verbose);
        assert_eq!(n.linger_ms, 500);
    }

    #[test]
    fn values_are_read_and_floored() {
        let n = read(&[
            ("server/timeout", "0"),
            ("remote/ping-interval", "0"),
            ("limits/max-frame", "10"),
            ("limits/max-backlog", "1"),
            ("limits/idle-timeout", "2500"),
            ("server/extensions", "0"),
            ("server/verbose", "1"),
            ("server/linger", "20"),
        ])
        .unwrap();
        assert_eq!(n.engine.session_timeout_ms, u64::MAX / 4, "0: never expire");
        assert_eq!(n.engine.ping_interval_ms, 1);
        assert_eq!(n.limits.max_frame, MIN_MAX_FRAME);
        assert_eq!(n.engine.max_frame, MIN_MAX_FRAME, "the size rule follows");
        assert_eq!(n.engine.max_backlog_bytes, 64 << 10);
        assert_eq!(n.engine.idle_timeout_ms, 2500);
        assert!(!n.zgp2_enabled && n.verbose);
        assert_eq!(n.linger_ms, 20);
    }

    #[test]
    fn the_limits_on_what_a_connection_does_are_the_engines() {
        let n = read(&[
            ("limits/handshake-timeout", "0"),
            ("limits/frame-timeout", "250"),
            ("limits/tuples-per-second", "5"),
            ("limits/bytes-per-second", "0"),
        ])
        .unwrap();
        assert_eq!(n.engine.handshake_timeout_ms, 1, "floored");
        assert_eq!(n.engine.frame_timeout_ms, 250);
        assert_eq!(n.engine.tuples_per_second, 5);
        assert_eq!(n.engine.bytes_per_second, 0, "0: no limit");
        // Absent from the tree: back to the defaults.
        let again = from_config(&tree(&[]), &n.engine, 500).unwrap();
        let d = Settings::default();
        assert_eq!(again.engine.handshake_timeout_ms, d.handshake_timeout_ms);
        assert_eq!(again.engine.tuples_per_second, d.tuples_per_second);
        assert_eq!(again.engine.bytes_per_second, d.bytes_per_second);
        assert_eq!(again.engine.frame_timeout_ms, d.frame_timeout_ms);
    }

    #[test]
    fn a_bad_value_names_its_path() {
        let e = read(&[("remote/timeout", "soon")]).unwrap_err().to_string();
        assert!(
            e.contains("remote/timeout must be a number of milliseconds"),
            "{e}"
        );
        let e = read(&[("limits/connections", "-1")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("limits/connections must be a whole number"),
            "{e}"
        );
        let e = read(&[("server/extensions", "2")]).unwrap_err().to_string();
        assert!(e.contains("server/extensions must be 0 or 1"), "{e}");
    }
}
