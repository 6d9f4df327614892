//! The node's settings read from its configuration tree (`SET path value`,
//! `LOAD file`): a pure mapping from the tree to the engine's settings, the
//! connection limits and the driver's own, checked as a whole before any
//! is applied. Paths and defaults are listed in docs/configuration.md.

use crate::config::Config;
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::persist::Fsync;
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
    /// `cluster/name`: nodes only link with nodes of the same name (empty
    /// by default, the name of CZMQ peers too).
    pub cluster: String,
    /// `store/path`: the data directory (absent or empty: none).
    pub store_path: Option<String>,
    /// `store/fsync`: how often the data directory's writes are forced to
    /// disk.
    pub fsync: Fsync,
    /// `membership/events`: `MEMBER id name state endpoint` on the pipe
    /// whenever a member's state changes.
    pub member_events: bool,
    /// `overlay/advertise`: the endpoint told to others instead of the
    /// bound one (`None`: the bound one).
    pub advertise: Option<String>,
    /// `overlay/dns-interval`: ms between two resolutions of a DNS seed.
    pub dns_interval_ms: u64,
}

/// `overlay/dns-interval` when unset, ms.
pub(crate) const DEFAULT_DNS_INTERVAL_MS: u64 = 30_000;

/// The longest cluster name (it travels in beacons, one length octet).
pub(crate) const MAX_CLUSTER_NAME: usize = 255;

/// `cluster/name`, checked: printable, at most 255 bytes.
fn cluster_from(cfg: &Config) -> Result<String> {
    let name = cfg.get("cluster/name").map(str::trim).unwrap_or("");
    if name.len() > MAX_CLUSTER_NAME {
        return Err(Error::Config(format!(
            "cluster/name must be at most {MAX_CLUSTER_NAME} bytes, got {}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Config(
            "cluster/name must not contain control characters".into(),
        ));
    }
    Ok(name.to_string())
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
    s.link_timeout_ms = ms("overlay/link-timeout", s.link_timeout_ms)?.max(3);
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
    s.views = views_from(&num, &defaults.views)?;
    s.tree = tree_from(&num, &defaults.tree)?;
    s.membership = membership_from(&num, &defaults.membership)?;
    let member_events = match cfg.get("membership/events").map(str::trim) {
        None | Some("0") => false,
        Some("1") => true,
        Some(v) => {
            return Err(Error::Config(format!(
                "membership/events must be 0 or 1, got '{v}'"
            )))
        }
    };
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
        cluster: cluster_from(cfg)?,
        store_path: store_path_from(cfg)?,
        fsync: match cfg.get("store/fsync") {
            None => Fsync::default(),
            Some(v) => Fsync::parse(v).map_err(Error::Config)?,
        },
        member_events,
        advertise: super::advertise::parse_advertise(cfg.get("overlay/advertise").unwrap_or(""))?,
        dns_interval_ms: ranged(
            &num,
            "overlay/dns-interval",
            DEFAULT_DNS_INTERVAL_MS,
            100,
            u64::MAX / 4,
        )?,
    })
}

/// The membership's settings, `membership/*` (absent: the defaults).
fn membership_from(
    num: &impl Fn(&str, u64) -> Result<u64>,
    d: &crate::engine::membership::MembershipSettings,
) -> Result<crate::engine::membership::MembershipSettings> {
    let ms = |path: &str, default: u64, lo: u64| ranged(num, path, default, lo, u64::MAX / 4);
    let m = crate::engine::membership::MembershipSettings {
        suspect_min_ms: ms("membership/suspect-min", d.suspect_min_ms, 1)?,
        suspect_max_ms: ms("membership/suspect-max", d.suspect_max_ms, 1)?,
        confirmations: ranged(
            num,
            "membership/confirmations",
            u64::from(d.confirmations),
            1,
            64,
        )? as u32,
        gone_keep_ms: ms("membership/gone-keep", d.gone_keep_ms, 0)?,
        tombstone_keep_ms: ms("membership/tombstone-keep", d.tombstone_keep_ms, 0)?,
        max_members: ranged(
            num,
            "membership/max-members",
            d.max_members as u64,
            1,
            1 << 24,
        )? as usize,
        batch_ms: ms("membership/batch", d.batch_ms, 0)?,
        sync_interval_ms: ms("membership/sync-interval", d.sync_interval_ms, 100)?,
    };
    if m.suspect_min_ms > m.suspect_max_ms {
        return Err(Error::Config(format!(
            "membership/suspect-min ({}) must not exceed membership/suspect-max ({})",
            m.suspect_min_ms, m.suspect_max_ms
        )));
    }
    Ok(m)
}

/// `store/path`, checked: a directory name without control characters
/// (empty: none).
fn store_path_from(cfg: &Config) -> Result<Option<String>> {
    let path = cfg.get("store/path").map(str::trim).unwrap_or("");
    if path.chars().any(char::is_control) {
        return Err(Error::Config(
            "store/path must not contain control characters".into(),
        ));
    }
    Ok((!path.is_empty()).then(|| path.to_string()))
}

/// A whole number read with `num` (the default when absent) that must lie
/// in `lo..=hi`.
fn ranged(
    num: &impl Fn(&str, u64) -> Result<u64>,
    path: &str,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<u64> {
    let v = num(path, default)?;
    if v < lo || v > hi {
        return Err(Error::Config(format!(
            "{path} must be between {lo} and {hi}, got {v}"
        )));
    }
    Ok(v)
}

/// The views' settings, `overlay/*` (absent: the defaults).
fn views_from(
    num: &impl Fn(&str, u64) -> Result<u64>,
    d: &crate::engine::views::ViewSettings,
) -> Result<crate::engine::views::ViewSettings> {
    let n = |path: &str, default: usize, lo: u64, hi: u64| -> Result<usize> {
        Ok(ranged(num, path, default as u64, lo, hi)? as usize)
    };
    let walk = |path: &str, default: u8| -> Result<u8> {
        Ok(ranged(num, path, u64::from(default), 0, 255)? as u8)
    };
    let ms = |path: &str, default: u64, lo: u64| ranged(num, path, default, lo, u64::MAX / 4);
    let v = crate::engine::views::ViewSettings {
        active_max: n("overlay/active-max", d.active_max, 1, 64)?,
        passive_max: n("overlay/passive-max", d.passive_max, 0, 1024)?,
        active_walk: walk("overlay/active-walk", d.active_walk)?,
        passive_walk: walk("overlay/passive-walk", d.passive_walk)?,
        shuffle_interval_ms: ms("overlay/shuffle-interval", d.shuffle_interval_ms, 100)?,
        shuffle_active: n("overlay/shuffle-active", d.shuffle_active, 0, 32)?,
        shuffle_passive: n("overlay/shuffle-passive", d.shuffle_passive, 0, 32)?,
        request_timeout_ms: ms("overlay/request-timeout", d.request_timeout_ms, 100)?,
        failed_keep_ms: ms("overlay/failed-keep", d.failed_keep_ms, 0)?,
    };
    if v.passive_walk > v.active_walk {
        return Err(Error::Config(format!(
            "overlay/passive-walk ({}) must not exceed overlay/active-walk ({})",
            v.passive_walk, v.active_walk
        )));
    }
    Ok(v)
}

/// The broadcast tree's settings, `overlay/*` (absent: the defaults).
fn tree_from(
    num: &impl Fn(&str, u64) -> Result<u64>,
    d: &crate::engine::tree::TreeSettings,
) -> Result<crate::engine::tree::TreeSettings> {
    let ms = |path: &str, default: u64| ranged(num, path, default, 1, u64::MAX / 4);
    Ok(crate::engine::tree::TreeSettings {
        announce_interval_ms: ms("overlay/announce-interval", d.announce_interval_ms)?,
        graft_timeout_ms: ms("overlay/graft-timeout", d.graft_timeout_ms)?,
        graft_retry_ms: ms("overlay/graft-retry", d.graft_retry_ms)?,
        max_missing: ranged(num, "overlay/max-missing", d.max_missing as u64, 1, 1 << 24)? as usize,
        sync_holdoff_ms: ranged(
            num,
            "overlay/sync-holdoff",
            d.sync_holdoff_ms,
            0,
            u64::MAX / 4,
        )?,
        root_interval_ms: ranged(
            num,
            "overlay/root-interval",
            d.root_interval_ms,
            0,
            u64::MAX / 4,
        )?,
        root_timeout_ms: ms("overlay/root-timeout", d.root_timeout_ms)?,
        ..d.clone()
    })
    .and_then(|t| {
        if t.root_interval_ms > 0 && t.root_timeout_ms <= t.root_interval_ms {
            return Err(Error::Config(format!(
                "overlay/root-timeout ({}) must exceed overlay/root-interval ({})",
                t.root_timeout_ms, t.root_interval_ms
            )));
        }
        Ok(t)
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
    fn the_advertised_endpoint_and_the_dns_interval_are_read_and_checked() {
        let n = read(&[]).unwrap();
        assert_eq!(n.advertise, None);
        assert_eq!(n.dns_interval_ms, DEFAULT_DNS_INTERVAL_MS);
        let n = read(&[
            ("overlay/advertise", "tcp://203.0.113.7:7000"),
            ("overlay/dns-interval", "500"),
        ])
        .unwrap();
        assert_eq!(n.advertise.as_deref(), Some("tcp://203.0.113.7:7000"));
        assert_eq!(n.dns_interval_ms, 500);
        assert_eq!(read(&[("overlay/advertise", "")]).unwrap().advertise, None);
        for (path, value, says) in [
            ("overlay/advertise", "tcp://*:5670", "cannot connect to '*'"),
            ("overlay/advertise", "ipc:///x", "not a tcp:// endpoint"),
            ("overlay/advertise", "10.0.0.1", "tcp://HOST:PORT"),
            ("overlay/dns-interval", "10", "between 100 and"),
            ("overlay/dns-interval", "soon", "whole number"),
        ] {
            let e = read(&[(path, value)]).unwrap_err().to_string();
            assert!(e.contains(says), "{path}={value}: {e}");
        }
    }

    #[test]
    fn the_store_settings_are_read_and_checked() {
        let n = read(&[]).unwrap();
        assert_eq!((n.store_path, n.fsync), (None, Fsync::Every(100)));
        let n = read(&[("store/path", " /var/lib/zg "), ("store/fsync", "always")]).unwrap();
        assert_eq!(n.store_path.as_deref(), Some("/var/lib/zg"));
        assert_eq!(n.fsync, Fsync::Always);
        assert_eq!(read(&[("store/path", "")]).unwrap().store_path, None);
        assert_eq!(
            read(&[("store/fsync", "20")]).unwrap().fsync,
            Fsync::Every(20)
        );
        for (path, value, says) in [
            ("store/fsync", "0", "between 1 and 60000, got '0'"),
            ("store/fsync", "sometimes", "'always', 'never' or a number"),
            (
                "store/path",
                "a\u{7}b",
                "must not contain control characters",
            ),
        ] {
            let e = read(&[(path, value)]).unwrap_err().to_string();
            assert!(e.contains(says), "{path}={value}: {e}");
        }
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
    fn the_membership_settings_are_read() {
        let n = read(&[
            ("membership/events", "1"),
            ("membership/suspect-min", "500"),
            ("membership/suspect-max", "4000"),
            ("membership/confirmations", "2"),
            ("membership/max-members", "1000"),
        ])
        .unwrap();
        assert!(n.member_events);
        let m = &n.engine.membership;
        assert_eq!((m.suspect_min_ms, m.suspect_max_ms), (500, 4000));
        assert_eq!((m.confirmations, m.max_members), (2, 1000));
        assert!(!read(&[]).unwrap().member_events);
    }

    #[test]
    fn the_overlay_settings_are_read_and_checked() {
        let n = read(&[
            ("overlay/active-max", "8"),
            ("overlay/passive-max", "50"),
            ("overlay/shuffle-interval", "5000"),
            ("overlay/graft-timeout", "250"),
            ("overlay/announce-interval", "20"),
            ("overlay/root-interval", "0"),
        ])
        .unwrap();
        assert_eq!(n.engine.views.active_max, 8);
        assert_eq!(n.engine.views.passive_max, 50);
        assert_eq!(n.engine.views.shuffle_interval_ms, 5000);
        assert_eq!(n.engine.tree.graft_timeout_ms, 250);
        assert_eq!(n.engine.tree.announce_interval_ms, 20);
        assert_eq!(n.engine.tree.root_interval_ms, 0, "0: no root");
        // Absent: the defaults again.
        let again = from_config(&tree(&[]), &n.engine, 500).unwrap();
        assert_eq!(again.engine.views, Settings::default().views);
        for (path, value, says) in [
            ("overlay/active-max", "0", "between 1 and 64"),
            ("membership/events", "yes", "must be 0 or 1"),
            ("membership/confirmations", "0", "between 1 and 64"),
            ("membership/sync-interval", "10", "between 100 and"),
            ("overlay/active-max", "65", "between 1 and 64"),
            ("overlay/shuffle-interval", "10", "between 100 and"),
            ("overlay/graft-timeout", "0", "between 1 and"),
            (
                "overlay/passive-walk",
                "7",
                "must not exceed overlay/active-walk",
            ),
            ("overlay/passive-max", "many", "must be a whole number"),
            (
                "overlay/root-timeout",
                "5000",
                "must exceed overlay/root-interval",
            ),
            (
                "membership/suspect-min",
                "9000",
                "must not exceed membership/suspect-max",
            ),
        ] {
            let e = read(&[(path, value)]).unwrap_err().to_string();
            assert!(e.contains(path) && e.contains(says), "{path}={value}: {e}");
        }
    }

    #[test]
    fn the_cluster_name_is_checked() {
        assert_eq!(read(&[]).unwrap().cluster, "");
        assert_eq!(read(&[("cluster/name", " prod ")]).unwrap().cluster, "prod");
        let long = "x".repeat(256);
        let e = read(&[("cluster/name", &long)]).unwrap_err().to_string();
        assert!(e.contains("cluster/name must be at most 255 bytes"), "{e}");
        let e = read(&[("cluster/name", "a\tb")]).unwrap_err().to_string();
        assert!(e.contains("control characters"), "{e}");
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
