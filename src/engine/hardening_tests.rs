//! Engine tests of the store's hardening (issue 22): writes with clocks
//! from the future are refused, tombstones are collected by their local
//! time of arrival, and churn of short-lived writes keeps memory bounded;
//! and of the limits on one connection: handshake and frame timeouts,
//! tuples and bytes per second, carried over a reconnection. Times are
//! passed in; nothing sleeps.

use super::test_support::{actions, at, drain, enc, WALL};
use super::*;

const ZGP2_PEER: Peer = Peer {
    addr: None,
    zgp2: true,
    timeout_ms: Some(1000),
    max_frame: None,
};

/// An engine with ZGP/2 clients on connections 10 and 11, both past HELLO.
fn hub(settings: Settings) -> Engine {
    let mut e = Engine::new("hub", 1, settings);
    for conn in [10, 11] {
        e.handle_connected(conn, Role::Inbound, ZGP2_PEER, at(0));
        let mut hello = Vec::new();
        Message::Hello.encode(&mut hello);
        e.handle_frame(conn, &hello, false, at(0));
        drain(&mut e, conn);
    }
    e
}

/// A ZGP/2 TUPLE frame.
fn tuple(key: &str, value: &str, clock: u64, origin: u64, expires: u64, deleted: bool) -> Vec<u8> {
    let mut f = Vec::new();
    zgp2::encode_tuple(
        &zgp2::Tuple {
            key,
            value,
            clock,
            origin,
            expires,
            deleted,
            ephemeral: false,
        },
        &mut f,
    );
    f
}

/// The clock of a write made at `at(ms)`.
fn clock(ms: u64) -> u64 {
    (WALL + ms) << 16
}

/// Runs the engine's timers from `from` to `to` (ms), as a driver would.
fn run(e: &mut Engine, from: u64, to: u64) {
    let mut t = from;
    while t <= to {
        e.handle_timeout(at(t));
        t += 100;
    }
}

#[test]
fn a_clock_of_2_pow_64_minus_1_is_refused_counted_and_the_owner_still_wins() {
    let mut e = hub(Settings::default());
    e.publish("k", "mine", None, at(1));
    drain(&mut e, 10);
    drain(&mut e, 11);
    // The lock-for-ever write: refused, counted, not forwarded.
    let bad = tuple("k", "locked", u64::MAX, 66, 0, false);
    e.handle_frame(10, &bad, false, at(2));
    assert_eq!(e.store().value("k"), Some("mine"));
    assert_eq!(e.stats().future_versions, 1);
    assert!(drain(&mut e, 11).is_empty(), "never forwarded");
    // Nor does a new key take it.
    e.handle_frame(10, &tuple("new", "x", u64::MAX, 66, 0, false), false, at(3));
    assert!(e.store().get("new").is_none());
    assert_eq!(e.stats().future_versions, 2);
    // The owner's next PUBLISH wins, with a version of its own time: the
    // clock was not dragged into the future either.
    e.publish("k", "again", None, at(4));
    let t = e.store().get("k").unwrap();
    assert_eq!(t.value, "again");
    assert!(t.version.wall_ms() <= WALL + 4);
    // A tombstone from the future deletes nothing.
    let far = clock(Settings::default().max_clock_ahead_ms + 1_000);
    e.handle_frame(10, &tuple("k", "", far, 66, 0, true), false, at(5));
    assert_eq!(e.store().value("k"), Some("again"));
    assert_eq!(e.stats().future_versions, 3);
    // UNPUBLISH by the owner still works.
    e.unpublish("k", at(6));
    assert_eq!(e.store().value("k"), None);
}

#[test]
fn a_write_within_the_drift_is_taken_and_the_drift_is_a_setting() {
    let settings = Settings {
        max_clock_ahead_ms: 5_000,
        ..Settings::default()
    };
    let mut e = hub(settings);
    e.handle_frame(
        10,
        &tuple("near", "1", clock(4_000), 66, 0, false),
        false,
        at(0),
    );
    assert_eq!(e.store().value("near"), Some("1"));
    assert_eq!(drain(&mut e, 11).len(), 1, "forwarded");
    e.handle_frame(
        10,
        &tuple("far", "1", clock(6_000), 66, 0, false),
        false,
        at(0),
    );
    assert!(e.store().get("far").is_none());
    assert_eq!(e.stats().future_versions, 1);
    // The same write is taken once our clock has caught up with it.
    e.handle_frame(
        10,
        &tuple("far", "1", clock(6_000), 66, 0, false),
        false,
        at(1_000),
    );
    assert_eq!(e.store().value("far"), Some("1"));
}

#[test]
fn a_tombstone_with_an_old_version_is_kept_for_the_full_grace_from_arrival() {
    let grace = 10_000;
    let mut e = hub(Settings {
        tombstone_grace_ms: grace,
        ..Settings::default()
    });
    e.handle_frame(10, &tuple("k", "v", clock(0), 66, 0, false), false, at(0));
    // A delete made at 1 ms arrives at 5 s: its version is 5 s old.
    e.handle_frame(10, &tuple("k", "", clock(1), 66, 0, true), false, at(5_000));
    assert_eq!(e.store().tombstone_since("k"), Some(WALL + 5_000));
    // By the version's time it would go at 10 s; it stays until 15 s.
    run(&mut e, 5_000, 14_900);
    assert!(e.store().get("k").is_some_and(|t| t.deleted));
    // The old value coming back meanwhile loses.
    e.handle_frame(
        10,
        &tuple("k", "v", clock(0), 66, 0, false),
        false,
        at(14_900),
    );
    assert_eq!(e.store().value("k"), None);
    run(&mut e, 15_000, 16_100);
    assert!(e.store().get("k").is_none(), "collected after the grace");
    assert_eq!(e.stats().tombstones_collected, 1);
}

#[test]
fn a_tombstone_with_a_future_version_within_the_drift_is_still_collected() {
    let grace = 10_000;
    let mut e = hub(Settings {
        tombstone_grace_ms: grace,
        ..Settings::default()
    });
    // 50 s ahead: taken (within the drift), and collected 10 s after it
    // arrived, not 10 s after its version's time.
    e.handle_frame(
        10,
        &tuple("k", "", clock(50_000), 66, 0, true),
        false,
        at(0),
    );
    assert!(e.store().get("k").is_some());
    run(&mut e, 0, 11_000);
    assert!(e.store().get("k").is_none());
}

#[test]
fn expired_writes_keep_a_short_tombstone_and_deletes_the_long_one() {
    let mut e = hub(Settings {
        tombstone_grace_ms: 3_600_000,
        expired_grace_ms: 5_000,
        ..Settings::default()
    });
    e.publish("ttl", "v", Some(1_000), at(0));
    e.publish("gone", "v", None, at(0));
    e.unpublish("gone", at(0));
    run(&mut e, 0, 1_000);
    assert!(e.store().get("ttl").is_some_and(|t| t.deleted));
    run(&mut e, 1_100, 7_200);
    assert!(e.store().get("ttl").is_none(), "expired: short grace");
    assert!(e.store().get("gone").is_some(), "deleted: full grace");
}

#[test]
fn a_write_expired_on_arrival_makes_no_entry_unless_it_replaces_one() {
    let mut e = hub(Settings::default());
    // Nothing held: dropped, counted, not forwarded.
    let late = tuple("k", "v", clock(0), 66, WALL + 500, false);
    e.handle_frame(10, &late, false, at(1_000));
    assert!(e.store().get("k").is_none());
    assert_eq!(e.store().entries(), 0);
    assert_eq!(e.stats().expired_on_arrival, 1);
    assert!(drain(&mut e, 11).is_empty());
    // The same as a tombstone (sent by a node that expired it): the same.
    e.handle_frame(
        10,
        &tuple("k", "", clock(0), 66, WALL + 500, true),
        false,
        at(1_000),
    );
    assert_eq!(e.store().entries(), 0);
    assert_eq!(e.stats().expired_on_arrival, 2);
    // An older live write held: the expired one replaces it as a tombstone.
    e.handle_frame(
        10,
        &tuple("j", "old", clock(0), 66, 0, false),
        false,
        at(1_000),
    );
    drain(&mut e, 11);
    e.handle_frame(
        10,
        &tuple("j", "v", clock(1), 66, WALL + 500, false),
        false,
        at(1_000),
    );
    assert!(e.store().get("j").is_some_and(|t| t.deleted));
    assert_eq!(e.store().len(), 0);
}

/// Twenty new nodes a second, each writing a presence record with a 2 s
/// time to live and taking over one of a few shared keys, for an hour:
/// what the hub holds must level off, not grow with time.
#[test]
fn churn_of_short_lived_writers_keeps_the_store_bounded() {
    let settings = Settings::default();
    let mut e = hub(settings.clone());
    let mut origin = 1_000u64;
    let mut peak = (0, 0, 0);
    for second in 0..3_600u64 {
        let t0 = second * 1_000;
        for n in 0..20u64 {
            origin += 1;
            let now = t0 + n * 50;
            let presence = tuple(
                &format!("presence/{origin}"),
                "tcp://10.0.0.1:5670",
                clock(now),
                origin,
                WALL + now + 2_000,
                false,
            );
            e.handle_frame(10, &presence, false, at(now));
            let shared = format!("shared/{}", origin % 16);
            let claim = tuple(&shared, "here", clock(now), origin, 0, false);
            e.handle_frame(10, &claim, false, at(now));
        }
        drain(&mut e, 10);
        drain(&mut e, 11);
        for step in 0..4 {
            e.handle_timeout(at(t0 + step * 250));
        }
        if second >= 300 {
            let s = e.store();
            peak = (
                peak.0.max(s.entries()),
                peak.1.max(s.origin_count()),
                peak.2.max(e.expiries.len()),
            );
        }
    }
    // About expired-grace (60 s) plus a collection interval of presence
    // tombstones, 20 a second; the 16 shared keys; and their writers.
    let (entries, origins, queue) = peak;
    let bound = 20 * (60 + 6 + 5) + 16;
    assert!(entries <= bound, "{entries} entries (bound {bound})");
    assert!(origins <= bound, "{origins} node ids (bound {bound})");
    assert!(queue <= 20 * 3, "{queue} expiries queued");
    assert!(e.stats().tombstones_collected > 60_000);
    let live = e.store().len();
    assert!(
        (16 + 40..=16 + 60).contains(&live),
        "{live}: the shared keys and 2 to 3 s of presence"
    );
    eprintln!("churn peak: {entries} entries, {origins} node ids, {queue} expiries queued");
}

#[test]
fn a_key_refreshed_with_a_long_ttl_does_not_pile_up_expiries() {
    let mut e = hub(Settings::default());
    for s in 0..10_000u64 {
        e.publish("k", "v", Some(3_600_000), at(s * 10));
    }
    assert!(e.expiries.len() <= 2 * e.store().len() + 1024 + 1);
    run(&mut e, 100_000, 100_000);
    assert_eq!(e.store().value("k"), Some("v"));
}

/// A shorter grace set while the node runs takes effect at once: the next
/// collection is not the one planned with the old grace.
#[test]
fn a_shorter_grace_set_later_is_used_at_once() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.handle_timeout(at(0)); // plans the next collection with the defaults
    e.publish("k", "v", Some(10), at(0));
    e.handle_timeout(at(20)); // expired: a tombstone
    assert_eq!(e.store().entries(), 1);
    e.set_settings(Settings {
        expired_grace_ms: 100,
        ..Settings::default()
    });
    for t in (0..2_000).step_by(50) {
        e.handle_timeout(at(100 + t));
    }
    assert_eq!(e.store().entries(), 0, "collected with the new grace");
}

/// A driver that calls the engine only when `poll_timeout` says (the
/// reactor has no other timer): new settings and a tombstone on an idle
/// node still get their ticks.
#[test]
fn poll_timeout_asks_for_a_tick_whenever_there_is_work_without_one() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.handle_timeout(at(0));
    assert_eq!(e.poll_timeout(), None, "idle: nothing to do");
    e.publish("k", "v", None, at(10));
    e.unpublish("k", at(20));
    assert!(
        e.poll_timeout().is_some_and(|due| due <= 20),
        "a tombstone to collect: due now"
    );
    // Driven by poll_timeout alone, the tombstone goes after its grace.
    e.set_settings(Settings {
        tombstone_grace_ms: 1_000,
        ..Settings::default()
    });
    let mut t = 20;
    while let Some(next) = e.poll_timeout() {
        t = next.max(t);
        assert!(t < 10_000, "still a tombstone at {t} ms");
        e.handle_timeout(at(t));
    }
    assert_eq!(e.store().entries(), 0);
    // Connected: new settings make the next tick due at once.
    e.handle_connected(10, Role::Inbound, Peer::default(), at(t));
    e.handle_timeout(at(t));
    assert!(e.poll_timeout() > Some(t));
    e.set_settings(Settings::default());
    assert_eq!(e.poll_timeout(), Some(t));
}

// ----------------------------------------------------------------------
// The limits on one connection (`limits`): handshake and frame deadlines,
// tuples and bytes per second, carried over a reconnection.

fn publish(key: &str) -> Vec<u8> {
    enc(Message::Publish {
        key,
        value: "x",
        ttl: 0,
    })
}

/// The close actions asked for: (connection, reason, error for the peer).
fn closes(e: &mut Engine) -> Vec<(ConnId, String, Option<String>)> {
    actions(e)
        .into_iter()
        .filter_map(|a| match a {
            Action::Close {
                conn,
                reason,
                error,
            } => Some((conn, reason, error)),
            Action::Dial { .. } => None,
        })
        .collect()
}

/// An engine with a plain client on `conn`, opened from `ip` at `t` ms and
/// past HELLO.
fn client(e: &mut Engine, conn: ConnId, ip: &str, t: u64) {
    e.handle_opened(conn, Role::Inbound, Some(ip.parse().unwrap()), at(t));
    e.handle_connected(conn, Role::Inbound, Peer::default(), at(t));
    e.handle_frame(conn, &enc(Message::Hello), false, at(t));
    drain(e, conn);
}

#[test]
fn a_handshake_that_does_not_end_in_time_is_closed_with_an_error_for_the_peer() {
    let mut e = Engine::new(
        "e",
        1,
        Settings {
            handshake_timeout_ms: 200,
            ..Settings::default()
        },
    );
    e.handle_opened(5, Role::Inbound, None, at(1_000));
    e.handle_opened(6, Role::Outbound(0), None, at(1_050));
    e.handle_opened(7, Role::Inbound, None, at(1_100));
    assert_eq!(
        e.poll_timeout(),
        Some(1_201),
        "the first millisecond past it"
    );
    // 6 ends its handshake in time; 7 is closed by the driver first.
    e.handle_connected(6, Role::Inbound, Peer::default(), at(1_200));
    e.handle_closed(7, at(1_200));
    e.handle_timeout(at(1_200));
    assert!(closes(&mut e).is_empty(), "200 ms exactly is in time");
    e.handle_timeout(at(1_201));
    assert_eq!(
        closes(&mut e),
        [(
            5,
            "limits/handshake-timeout (200 ms) exceeded".to_string(),
            Some("handshake timed out".to_string())
        )]
    );
    for t in [1_260, 1_310, 5_000] {
        e.handle_timeout(at(t));
    }
    assert!(closes(&mut e).is_empty(), "6 is connected, 7 forgotten");
    assert_eq!(e.connection_count(), 1);
    // Closed by the engine: the driver's report of the close is a no-op.
    e.handle_closed(5, at(5_000));
}

#[test]
fn a_shorter_handshake_timeout_set_later_applies_to_open_connections() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.handle_opened(5, Role::Inbound, None, at(0));
    assert_eq!(e.poll_timeout(), Some(10_001));
    e.set_settings(Settings {
        handshake_timeout_ms: 50,
        ..Settings::default()
    });
    assert_eq!(e.poll_timeout(), Some(51));
    e.handle_timeout(at(51));
    assert_eq!(closes(&mut e).len(), 1);
}

#[test]
fn a_frame_that_stalls_closes_its_connection_and_is_counted() {
    let mut e = Engine::new(
        "e",
        1,
        Settings {
            frame_timeout_ms: 300,
            ..Settings::default()
        },
    );
    client(&mut e, 10, "10.0.0.1", 0);
    client(&mut e, 11, "10.0.0.2", 0);
    // 10: part of a frame at 100 ms, no more of it.
    e.handle_partial(10, 500, at(100));
    // 11: part of a frame at 100 ms, more of it and a frame completing at
    // 300 ms: timed from there.
    e.handle_partial(11, 500, at(100));
    e.handle_frame(11, &enc(Message::Ping), false, at(300));
    e.handle_partial(11, 900, at(300));
    assert_eq!(e.guards.poll_timeout(), Some(401));
    e.handle_timeout(at(400));
    assert!(closes(&mut e).is_empty(), "300 ms exactly is in time");
    // More bytes of the same frame, no frame completing: not progress.
    e.handle_partial(10, 800, at(401));
    e.handle_timeout(at(401));
    assert_eq!(
        closes(&mut e),
        [(
            10,
            "limits/frame-timeout (300 ms): a frame stalled".to_string(),
            Some("frame timed out".to_string())
        )]
    );
    assert_eq!(e.stats().stalled_closed, 1);
    // 11: less held (a frame completed from the bytes held) is progress
    // too; nothing held, nothing timed.
    e.handle_partial(11, 100, at(600));
    e.handle_timeout(at(700));
    assert!(closes(&mut e).is_empty());
    e.handle_partial(11, 0, at(700));
    for t in (800..=2_000).step_by(100) {
        e.handle_timeout(at(t));
    }
    assert!(closes(&mut e).is_empty());
    assert_eq!(e.stats().stalled_closed, 1);
}

#[test]
fn a_frame_timed_during_the_handshake_is_timed_on_after_it() {
    let mut e = Engine::new(
        "e",
        1,
        Settings {
            frame_timeout_ms: 300,
            ..Settings::default()
        },
    );
    e.handle_opened(10, Role::Inbound, None, at(0));
    e.handle_partial(10, 50, at(0));
    e.handle_timeout(at(301));
    assert!(closes(&mut e).is_empty(), "the handshake has its own limit");
    e.handle_connected(10, Role::Inbound, Peer::default(), at(302));
    e.handle_timeout(at(302));
    assert_eq!(closes(&mut e).len(), 1, "stalled since 0 ms");
}

#[test]
fn tuples_over_the_limit_close_the_connection_after_the_frame_is_handled() {
    let mut e = Engine::new(
        "e",
        1,
        Settings {
            tuples_per_second: 5,
            ..Settings::default()
        },
    );
    client(&mut e, 10, "10.0.0.1", 0);
    assert!(e.handle_read(10, 1_000, at(10)));
    for i in 0..5 {
        assert!(e.handle_frame(10, &publish(&format!("k{i}")), false, at(10)));
    }
    // Frames that carry no tuple do not count.
    assert!(e.handle_frame(10, &enc(Message::Ping), false, at(10)));
    assert!(closes(&mut e).is_empty());
    assert!(!e.handle_frame(10, &publish("k5"), false, at(10)));
    let why = "limits/tuples-per-second exceeded (6 tuples in a second, limit 5)";
    assert_eq!(
        closes(&mut e),
        [(10, why.to_string(), Some(why.to_string()))]
    );
    // The frame that passed the limit was handled; nothing after it is.
    assert_eq!(e.store().value("k5"), Some("x"));
    assert!(e.handle_frame(10, &publish("k6"), false, at(10)));
    assert!(e.store().get("k6").is_none());
    assert!(closes(&mut e).is_empty(), "closed once");
}

#[test]
fn a_new_second_starts_a_new_count() {
    let mut e = Engine::new(
        "e",
        1,
        Settings {
            tuples_per_second: 3,
            bytes_per_second: 100,
            ..Settings::default()
        },
    );
    client(&mut e, 10, "10.0.0.1", 0);
    for second in 0..5u64 {
        let t = 1_000 + second * 1_000;
        assert!(e.handle_read(10, 100, at(t)));
        for i in 0..3 {
            let key = format!("k{second}.{i}");
            assert!(e.handle_frame(10, &publish(&key), false, at(t + 999)));
        }
    }
    assert!(closes(&mut e).is_empty());
}

#[test]
fn bytes_over_the_limit_close_the_connection_before_they_are_handled() {
    let mut e = Engine::new(
        "e",
        1,
        Settings {
            bytes_per_second: 100,
            ..Settings::default()
        },
    );
    client(&mut e, 10, "10.0.0.1", 0);
    assert!(e.handle_read(10, 60, at(1_000)));
    assert!(!e.handle_read(10, 60, at(1_500)));
    let why = "limits/bytes-per-second exceeded (120 bytes in a second, limit 100)";
    assert_eq!(
        closes(&mut e),
        [(10, why.to_string(), Some(why.to_string()))]
    );
    // Before the handshake ends too.
    e.handle_opened(11, Role::Inbound, None, at(2_000));
    assert!(!e.handle_read(11, 101, at(2_000)));
    assert_eq!(closes(&mut e)[0].0, 11);
    e.handle_timeout(at(20_000));
    assert!(closes(&mut e).is_empty(), "forgotten: no handshake timeout");
}

/// The tuple count of a connection that closed carries on to the next
/// connection from its address within the same second: it may talk (its
/// handshake bytes count afresh), not send another tuple. Other addresses,
/// and the next second, start afresh.
#[test]
fn the_tuple_count_carries_over_a_reconnection_within_the_second() {
    let mut e = Engine::new(
        "e",
        1,
        Settings {
            tuples_per_second: 5,
            bytes_per_second: 1_000,
            ..Settings::default()
        },
    );
    client(&mut e, 10, "10.0.0.1", 5_000);
    assert!(e.handle_read(10, 900, at(5_000)));
    for i in 0..6 {
        e.handle_frame(10, &publish(&format!("a{i}")), false, at(5_005));
    }
    assert_eq!(closes(&mut e).len(), 1);
    e.handle_closed(10, at(5_010));
    // Back from the same address at once.
    e.handle_opened(
        11,
        Role::Inbound,
        Some("10.0.0.1".parse().unwrap()),
        at(5_020),
    );
    assert!(e.handle_read(11, 900, at(5_020)), "bytes start afresh");
    e.handle_connected(11, Role::Inbound, Peer::default(), at(5_020));
    assert!(e.handle_frame(11, &enc(Message::Hello), false, at(5_021)));
    assert!(!e.handle_frame(11, &publish("b0"), false, at(5_021)));
    let why = "limits/tuples-per-second exceeded (6 tuples in a second, limit 5)";
    assert_eq!(closes(&mut e)[0].1, why, "5 carried over (the limit), +1");
    e.handle_closed(11, at(5_030));
    // Another address is not concerned.
    client(&mut e, 12, "10.0.0.2", 5_040);
    assert!(e.handle_frame(12, &publish("c0"), false, at(5_040)));
    // The next second starts afresh, and the carried usage is forgotten.
    client(&mut e, 13, "10.0.0.1", 6_100);
    assert!(e.handle_frame(13, &publish("d0"), false, at(6_100)));
    assert!(closes(&mut e).is_empty());
    e.handle_closed(12, at(6_100));
    e.handle_closed(13, at(6_100));
    for t in (6_200..=8_000).step_by(100) {
        e.handle_timeout(at(t));
    }
    let pruned = e.guards.poll_timeout();
    assert_eq!(pruned, None, "nothing left to guard");
}
