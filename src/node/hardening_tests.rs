//! Engine tests of the store's hardening (issue 22): writes with clocks
//! from the future are refused, and tombstones are collected by their
//! local time of arrival. Times are passed in; nothing sleeps.

use super::*;

const WALL: u64 = 1_700_000_000_000;

fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: WALL + ms,
    }
}

fn drain(e: &mut Engine, conn: ConnId) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    e.drain_outbox(conn, |f| {
        out.push(f.to_vec());
        true
    });
    out
}

const EXT: Peer = Peer {
    extended: true,
    timeout_ms: Some(1000),
};

/// An engine with ZGP/2 clients on connections 10 and 11, both past HELLO.
fn hub(settings: Settings) -> Engine {
    let mut e = Engine::new("hub", 1, settings);
    for conn in [10, 11] {
        e.handle_connected(conn, Role::Inbound, EXT, at(0));
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
    ext::encode_tuple(
        &ext::Tuple {
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
