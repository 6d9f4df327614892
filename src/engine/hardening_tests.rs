//! Engine tests of the store's hardening (issue 22): writes with clocks
//! from the future are refused, tombstones are collected by their local
//! time of arrival, and churn of short-lived writes keeps memory bounded.
//! Times are passed in; nothing sleeps.

use super::test_support::{at, drain, WALL};
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
