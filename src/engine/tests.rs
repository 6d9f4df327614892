//! Engine tests on a virtual network: engines wired by in-memory links,
//! a fake clock, and a step limit that catches livelock.

use super::test_support::{actions, at, drain, enc};
use super::*;
use crate::wire::gossip::decode;

fn names(frames: &[Vec<u8>]) -> Vec<&'static str> {
    frames.iter().map(|f| decode(f).unwrap().name()).collect()
}

fn server() -> Engine {
    Engine::new("server", 1, Settings::default())
}

/// A server with `settings` and a plain client (connection 1) that said
/// HELLO at time 0.
fn server_with_client(settings: Settings) -> Engine {
    let mut s = Engine::new("s", 1, settings);
    s.handle_connected(1, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(1, &enc(Message::Hello), false, at(0));
    s
}

#[test]
fn hello_gets_every_tuple_then_session_is_connected() {
    let mut s = server();
    s.publish("a", "1", None, at(0));
    s.publish("b", "2", None, at(0));
    assert_eq!(s.poll_event().unwrap().key(), "a");
    assert_eq!(s.poll_event().unwrap().key(), "b");
    s.handle_connected(10, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(10, &enc(Message::Hello), false, at(1));
    assert_eq!(names(&drain(&mut s, 10)), ["PUBLISH", "PUBLISH"]);
    // Connected: a PUBLISH is stored and delivered, not echoed back.
    s.handle_frame(10, &enc(pubmsg("c", "3")), false, at(2));
    assert_eq!(s.store().len(), 3);
    assert!(drain(&mut s, 10).is_empty());
    assert_eq!(s.poll_event().unwrap().key(), "c");
}

fn pubmsg<'a>(k: &'a str, v: &'a str) -> Message<'a> {
    Message::Publish {
        key: k,
        value: v,
        ttl: 0,
    }
}

#[test]
fn ping_gets_pong_in_any_state() {
    let mut s = server();
    s.handle_connected(1, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(1, &enc(Message::Ping), false, at(0));
    assert_eq!(names(&drain(&mut s, 1)), ["PONG"]);
    s.handle_frame(1, &enc(Message::Hello), false, at(0));
    s.handle_frame(1, &enc(Message::Ping), false, at(0));
    assert_eq!(names(&drain(&mut s, 1)), ["PONG"]);
}

#[test]
fn anything_else_is_invalid_and_forgets_the_session() {
    let mut s = server();
    s.handle_connected(1, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(1, &enc(pubmsg("k", "v")), false, at(0));
    assert_eq!(names(&drain(&mut s, 1)), ["INVALID"]);
    assert_eq!(s.store().len(), 0);
    s.handle_frame(1, &enc(Message::Hello), false, at(0));
    s.handle_frame(1, &enc(Message::Pong), false, at(0));
    assert_eq!(names(&drain(&mut s, 1)), ["INVALID"]);
    // Forgotten: a PUBLISH is invalid again until the next HELLO.
    s.handle_frame(1, &enc(pubmsg("k", "v")), false, at(0));
    assert_eq!(names(&drain(&mut s, 1)), ["INVALID"]);
    assert!(s.poll_action().is_none(), "the connection stays open");
}

#[test]
fn malformed_frame_gets_invalid_and_close() {
    let mut s = server();
    s.publish("keep", "me", None, at(0));
    s.handle_connected(1, Role::Inbound, Peer::default(), at(0));
    s.handle_connected(2, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(2, &enc(Message::Hello), false, at(0));
    drain(&mut s, 2);
    s.handle_frame(1, b"\xaa\xa0\x01\x07", false, at(0));
    assert_eq!(names(&drain(&mut s, 1)), ["INVALID"]);
    assert!(matches!(
        s.poll_action(),
        Some(Action::Close { conn: 1, .. })
    ));
    // Nothing more goes to or comes from the closing connection.
    s.publish("new", "x", None, at(1));
    assert!(drain(&mut s, 1).is_empty());
    assert_eq!(names(&drain(&mut s, 2)), ["PUBLISH"]);
    s.handle_frame(1, &enc(Message::Ping), false, at(0));
    assert!(drain(&mut s, 1).is_empty());
    s.handle_closed(1, at(2));
    assert_eq!(s.store().len(), 2);
    // A multipart message is malformed too.
    s.handle_frame(2, &enc(Message::Ping), true, at(3));
    assert!(matches!(
        s.poll_action(),
        Some(Action::Close { conn: 2, .. })
    ));
}

#[test]
fn silent_session_expires_after_timeout() {
    let mut s = server_with_client(Settings {
        session_timeout_ms: 100,
        ..Settings::default()
    });
    let mut t = 0;
    while t < 200 {
        t = s.poll_timeout().unwrap();
        s.handle_timeout(at(t));
    }
    assert_eq!(s.stats().sessions_expired, 1);
    // Still forwarded to: the connection is open.
    s.publish("mine", "1", None, at(t));
    assert_eq!(names(&drain(&mut s, 1)), ["PUBLISH"]);
    // A PUBLISH into the expired session gets INVALID, as from CZMQ, but
    // the tuple is kept (CZMQ loses it).
    s.handle_frame(1, &enc(pubmsg("k", "v")), false, at(t));
    assert_eq!(names(&drain(&mut s, 1)), ["INVALID"]);
    assert_eq!(s.store().value("k"), Some("v"));
    // What it publishes before its HELLO arrives (a CZMQ node also echoes
    // our forwards) is kept too, without another INVALID.
    s.handle_frame(1, &enc(pubmsg("mine", "1")), false, at(t));
    s.handle_frame(1, &enc(pubmsg("k2", "v2")), false, at(t));
    assert!(drain(&mut s, 1).is_empty());
    assert_eq!(s.store().value("k2"), Some("v2"));
    assert_eq!(s.stats().invalid_sent, 1);
    // The client says HELLO again and gets everything.
    s.handle_frame(1, &enc(Message::Hello), false, at(t));
    assert_eq!(names(&drain(&mut s, 1)), ["PUBLISH", "PUBLISH", "PUBLISH"]);
    // Connected again: a PUBLISH is simply taken.
    s.handle_frame(1, &enc(pubmsg("k3", "v3")), false, at(t));
    assert!(drain(&mut s, 1).is_empty());
    assert_eq!(s.store().len(), 4);
}

#[test]
fn a_backlog_that_keeps_growing_closes_the_connection() {
    let mut s = server_with_client(Settings {
        max_backlog_bytes: 10_000,
        ..Settings::default()
    });
    let value = "x".repeat(1000);
    let mut dirty = Vec::new();
    // The driver never drains: the outbox is never empty again after the
    // first tuple, yet passing the limit must still reach `take_dirty`.
    let mut closed_at = None;
    for i in 0..30 {
        s.publish(&format!("k{i}"), &value, None, at(1));
        s.take_dirty(&mut dirty);
        if let Some(Action::Close { conn, reason, .. }) = s.poll_action() {
            assert_eq!(conn, 1);
            assert!(reason.contains("peer too slow"), "{reason}");
            closed_at = Some(i);
            break;
        }
    }
    // Ten tuples of a thousand bytes fill the limit; the eleventh passes it.
    assert_eq!(closed_at, Some(10));
    assert!(!dirty.contains(&1), "a closed connection is not drained");
    assert_eq!(s.store().len(), 11, "nothing stored is lost");
}

#[test]
fn remote_lifecycle_dial_hello_ping_invalid_redial() {
    let mut c = Engine::new("c", 2, Settings::default());
    c.publish("k", "v", None, at(0));
    let r = c.add_remote("tcp://x:1", at(0));
    assert_eq!(
        c.poll_action(),
        Some(Action::Dial {
            remote: r,
            endpoint: "tcp://x:1".into()
        })
    );
    // Adding it again does not dial twice.
    assert_eq!(c.add_remote("tcp://x:1", at(0)), r);
    assert!(c.poll_action().is_none());
    c.handle_dial_failed(r, "refused", at(0));
    let t = 0;
    let mut redialled_at = None;
    for step in 0..100 {
        let next = c.poll_timeout().expect("a redial is pending");
        assert!(next >= t, "time never goes back (step {step})");
        c.handle_timeout(at(next));
        if let Some(Action::Dial { .. }) = c.poll_action() {
            redialled_at = Some(next);
            break;
        }
    }
    let redialled_at = redialled_at.expect("redialled");
    assert!((100..=200).contains(&redialled_at), "{redialled_at}");
    c.handle_connected(5, Role::Outbound(r), Peer::default(), at(redialled_at));
    assert_eq!(names(&drain(&mut c, 5)), ["HELLO", "PUBLISH"]);
    // Idle: a PING within the ping interval.
    let mut now = redialled_at;
    let mut pinged = false;
    for _ in 0..20 {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(at(now));
        if names(&drain(&mut c, 5)) == ["PING"] {
            pinged = true;
            break;
        }
    }
    assert!(pinged);
    assert!(
        now - redialled_at <= 250 + 62,
        "pinged after {}",
        now - redialled_at
    );
    // INVALID: HELLO and every tuple again.
    c.handle_frame(5, &enc(Message::Invalid), false, at(now));
    assert_eq!(names(&drain(&mut c, 5)), ["HELLO", "PUBLISH"]);
    // More INVALIDs within the round trip answer frames sent before that
    // HELLO: they start nothing over (on a link that reorders, each
    // restart's tuples drew INVALIDs of their own, without end).
    for _ in 0..3 {
        c.handle_frame(5, &enc(Message::Invalid), false, at(now + 5));
    }
    assert!(drain(&mut c, 5).is_empty());
    // One later than that means the server forgot us again.
    now += 1_000;
    c.handle_frame(5, &enc(Message::Invalid), false, at(now));
    assert_eq!(names(&drain(&mut c, 5)), ["HELLO", "PUBLISH"]);
    // Tuples from the server are stored, delivered, not sent back.
    c.handle_frame(5, &enc(pubmsg("s", "1")), false, at(now));
    assert!(drain(&mut c, 5).is_empty());
    // Closed: redial with backoff reset.
    c.handle_closed(5, at(now));
    let next = c.poll_timeout().unwrap();
    assert!(next <= now + 100 + 62);
}

#[test]
fn dead_remote_is_closed_and_redialled() {
    let mut c = Engine::new("c", 2, Settings::default());
    let r = c.add_remote("inproc://x", at(0));
    c.poll_action();
    c.handle_connected(5, Role::Outbound(r), Peer::default(), at(0));
    let mut now = 0;
    let mut closed = false;
    for _ in 0..1000 {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(at(now));
        drain(&mut c, 5);
        if let Some(Action::Close { conn: 5, .. }) = c.poll_action() {
            closed = true;
            break;
        }
    }
    assert!(closed);
    assert!(now > 10_000 && now < 10_400, "{now}");
}

/// A cycle of five nodes with a chord, on the simulator: every write
/// reaches every node and is delivered to each application exactly once,
/// and once quiet the network carries only its pings (no livelock: writes
/// do not circulate).
#[test]
fn cycle_of_nodes_converges_without_livelock() {
    use crate::sim::Sim;
    let mut sim = Sim::new(5, 7, Sim::fast_settings());
    for i in 0..5 {
        sim.connect(i, (i + 1) % 5);
    }
    sim.connect(0, 2);
    sim.run_until(500);
    for i in 0..5 {
        sim.publish(i, &format!("k{i}"), "v", None);
    }
    assert!(sim.settle(1_000, 20_000), "no quiescence");
    for i in 0..5 {
        assert_eq!(sim.engine(i).unwrap().store().len(), 5, "node {i}");
    }
    // A new value for an existing key reaches everyone once.
    sim.publish(3, "k0", "new", None);
    assert!(sim.settle(1_000, 20_000), "no quiescence");
    for i in 0..5 {
        let e = sim.engine_mut(i).unwrap();
        assert_eq!(e.store().get("k0").unwrap().value, "new");
        let delivered: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
        assert_eq!(
            delivered.len(),
            6,
            "node {i}: 5 tuples then the update, each once"
        );
    }
    // Quiet: ten seconds carry pings and pongs on the six links and the
    // periodic reconciliation rounds, nothing that grows with time.
    let before = sim.stats.frames_sent;
    let t = sim.now_ms() + 10_000;
    sim.run_until(t);
    let per_link_per_second = (sim.stats.frames_sent - before) as f64 / 6.0 / 10.0;
    assert!(
        per_link_per_second < 20.0,
        "{per_link_per_second} frames per link per second"
    );
}

#[test]
fn forwards_wait_for_the_first_reconciliation_on_a_new_connection() {
    // k0 exists before the connection (it travels by reconciliation), k1
    // is published right after it came up (it is forwarded): the server
    // must still see k0 first.
    let zgp2_peer = Peer {
        addr: None,
        zgp2: true,
        timeout_ms: Some(1000),
        max_frame: None,
    };
    let mut c = Engine::new("c", 2, Settings::default());
    let mut s = Engine::new("s", 1, Settings::default());
    c.publish("k0", "v", None, at(0));
    let r = c.add_remote("sim://s", at(0));
    c.poll_action();
    s.handle_connected(11, Role::Inbound, zgp2_peer, at(0));
    c.handle_connected(10, Role::Outbound(r), zgp2_peer, at(0));
    c.publish("k1", "v", None, at(1));
    for _ in 0..20 {
        let to_s = drain(&mut c, 10);
        let to_c = drain(&mut s, 11);
        if to_s.is_empty() && to_c.is_empty() {
            break;
        }
        for f in to_s {
            s.handle_frame(11, &f, false, at(2));
        }
        for f in to_c {
            c.handle_frame(10, &f, false, at(2));
        }
    }
    let keys: Vec<String> = std::iter::from_fn(|| s.poll_event())
        .map(|e| e.key().to_string())
        .collect();
    assert_eq!(keys, ["k0", "k1"]);
}

#[test]
fn a_removed_remote_is_closed_and_never_redialled() {
    let mut e = server();
    let r = e.add_remote("tcp://10.0.0.2:7000", at(0));
    assert!(matches!(&actions(&mut e)[..], [Action::Dial { remote, .. }] if *remote == r));
    e.handle_connected(10, Role::Outbound(r), Peer::default(), at(1));
    assert_eq!(names(&drain(&mut e, 10)), ["HELLO"]);
    e.remove_remote(r, at(2));
    assert!(matches!(
        &actions(&mut e)[..],
        [Action::Close { conn: 10, .. }]
    ));
    e.handle_closed(10, at(3));
    e.remove_remote(r, at(3)); // twice: ignored
    e.remove_remote(99, at(3)); // unknown: ignored
    for t in (4..120_000).step_by(250) {
        e.handle_timeout(at(t));
    }
    assert!(actions(&mut e).is_empty());
    assert_eq!(e.remote_endpoints().count(), 0);
}

#[test]
fn a_remote_removed_while_dialling_is_closed_when_the_dial_completes() {
    let mut e = server();
    let r = e.add_remote("tcp://10.0.0.2:7000", at(0));
    actions(&mut e);
    e.remove_remote(r, at(1));
    assert!(actions(&mut e).is_empty());
    // The slot is not reused while the dial is in flight.
    let r2 = e.add_remote("tcp://10.0.0.3:7000", at(1));
    assert_ne!(r2, r);
    actions(&mut e);
    e.handle_connected(10, Role::Outbound(r), Peer::default(), at(2));
    assert!(matches!(
        &actions(&mut e)[..],
        [Action::Close { conn: 10, .. }]
    ));
    assert!(drain(&mut e, 10).is_empty());
    e.handle_closed(10, at(3));
    for t in (4..60_000).step_by(250) {
        e.handle_timeout(at(t));
    }
    assert!(actions(&mut e)
        .iter()
        .all(|a| !matches!(a, Action::Dial { remote, .. } if *remote == r)));
    // Now the slot is free: reused, dialled afresh.
    let r3 = e.add_remote("tcp://10.0.0.2:7000", at(60_000));
    assert_eq!(r3, r);
    assert!(
        matches!(&actions(&mut e)[..], [Action::Dial { remote, endpoint }]
        if *remote == r && endpoint == "tcp://10.0.0.2:7000")
    );
}

#[test]
fn a_failed_dial_of_a_removed_remote_is_not_retried() {
    let mut e = server();
    let r = e.add_remote("tcp://10.0.0.2:7000", at(0));
    actions(&mut e);
    e.remove_remote(r, at(1));
    e.handle_dial_failed(r, "refused", at(2));
    for t in (3..60_000).step_by(250) {
        e.handle_timeout(at(t));
    }
    assert!(actions(&mut e).is_empty());
}

/// A server holding far more than one send-ahead of tuples answers a
/// fresh ZGP/2 client that reads slowly: `take` drains a little of the
/// server's output per step. Its queued output stays bounded; a tuple
/// published meanwhile arrives after every tuple of the reconciliation;
/// the client ends with all.
fn large_reconciliation_read_slowly(mut take: impl FnMut(&mut Engine) -> Vec<Vec<u8>>) {
    let zgp2_peer = Peer {
        addr: None,
        zgp2: true,
        timeout_ms: Some(1000),
        max_frame: None,
    };
    const N: usize = 30_000;
    let mut s = Engine::new("s", 1, Settings::default());
    for i in 0..N {
        s.publish(&format!("key-{i:08}"), "value-0123456789", None, at(0));
    }
    while s.poll_event().is_some() {}
    let mut c = Engine::new("c", 2, Settings::default());
    let r = c.add_remote("sim://s", at(0));
    c.poll_action();
    s.handle_connected(11, Role::Inbound, zgp2_peer, at(0));
    c.handle_connected(10, Role::Outbound(r), zgp2_peer, at(0));
    let mut published_late = false;
    let mut most_queued = 0;
    for step in 0..10_000 {
        let to_c = take(&mut s);
        most_queued = most_queued.max(s.outbox_len(11));
        let to_s = drain(&mut c, 10);
        if to_s.is_empty() && to_c.is_empty() && !s.has_output(11) {
            break;
        }
        for f in to_s {
            s.handle_frame(11, &f, false, at(1));
        }
        for f in to_c {
            c.handle_frame(10, &f, false, at(1));
        }
        if step == 20 && !published_late {
            assert!(s.has_output(11), "the reconciliation is still going");
            s.publish("late", "v", None, at(1));
            published_late = true;
        }
    }
    assert!(published_late);
    assert_eq!(c.store().len(), N + 1);
    let keys: Vec<String> = std::iter::from_fn(|| c.poll_event())
        .map(|e| e.key().to_string())
        .collect();
    assert_eq!(keys.len(), N + 1);
    assert_eq!(keys.last().map(String::as_str), Some("late"));
    // Bounded: one send-ahead plus a frame, not the whole store (~1.1 MB).
    assert!(most_queued < 300 << 10, "{most_queued} bytes queued");
}

#[test]
fn a_large_reconciliation_is_encoded_as_the_peer_takes_it_and_nothing_overtakes_it() {
    // At most 100 frames a step, one by one.
    large_reconciliation_read_slowly(|s| {
        let mut to_c = Vec::new();
        s.drain_outbox(11, |f| {
            to_c.push(f.to_vec());
            to_c.len() < 100
        });
        to_c
    });
}

#[test]
fn framed_output_comes_in_runs_of_whole_messages_within_the_bound() {
    // At most 4 KiB a step, as runs of framed messages (the driver's way).
    const MAX: usize = 4096;
    large_reconciliation_read_slowly(|s| {
        let mut to_c = Vec::new();
        let mut runs = 0;
        s.drain_outbox_framed(11, MAX, |run| {
            runs += 1;
            assert!(run.len() <= MAX, "run of {} bytes", run.len());
            let mut rest = run;
            while !rest.is_empty() {
                let (body, len) = zmtp::split_single_frame(rest).expect("whole messages");
                to_c.push(body.to_vec());
                rest = &rest[len..];
            }
            true
        });
        assert!(runs <= 2, "{runs} runs for one bound");
        to_c
    });
}

#[test]
fn a_message_longer_than_the_bound_goes_alone() {
    let mut s = server();
    s.handle_connected(10, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(10, &enc(Message::Hello), false, at(1));
    drain(&mut s, 10);
    let long = "x".repeat(1000);
    s.publish("a", "1", None, at(2));
    s.publish("b", &long, None, at(2));
    s.publish("c", "3", None, at(2));
    let mut runs = Vec::new();
    for _ in 0..10 {
        if s.drain_outbox_framed(10, 100, |run| {
            runs.push(run.to_vec());
            true
        }) {
            break;
        }
    }
    let per_run: Vec<Vec<&'static str>> = runs
        .iter()
        .map(|run| {
            let mut rest = &run[..];
            let mut keys = Vec::new();
            while let Some((body, len)) = zmtp::split_single_frame(rest) {
                match decode(body).unwrap() {
                    Message::Publish { key: "a", .. } => keys.push("a"),
                    Message::Publish { key: "b", .. } => keys.push("b"),
                    Message::Publish { key: "c", .. } => keys.push("c"),
                    other => panic!("{other:?}"),
                }
                rest = &rest[len..];
            }
            keys
        })
        .collect();
    assert_eq!(per_run, [vec!["a"], vec!["b"], vec!["c"]]);
}

#[test]
fn a_relay_passes_a_zgp2_tuple_on_as_it_came_and_encodes_what_it_changed() {
    let zgp2_peer = Peer {
        addr: None,
        zgp2: true,
        timeout_ms: Some(1000),
        max_frame: None,
    };
    let mut hub = server();
    for (conn, peer) in [(10, zgp2_peer), (11, zgp2_peer), (12, Peer::default())] {
        hub.handle_connected(conn, Role::Inbound, peer, at(0));
        hub.handle_frame(conn, &enc(Message::Hello), false, at(1));
        drain(&mut hub, conn);
    }
    let wall = at(2).wall_ms;
    // Write number `n` of key k (later numbers win).
    let frame = |n: u64, value: &str, expires: u64, deleted: bool, extra_flags: u8| {
        let mut f = Vec::new();
        zgp2::encode_tuple(
            &zgp2::Tuple {
                key: "k",
                value,
                clock: (wall + n) << 16,
                origin: 77,
                expires,
                deleted,
                ephemeral: false,
            },
            &mut f,
        );
        // Pushed by the peer's tree: so are its forwards.
        zgp2::mark_pushed(&mut f);
        *f.last_mut().unwrap() |= extra_flags;
        f
    };
    let as_stored = |hub: &Engine| {
        let t = hub.store().get("k").unwrap();
        let mut f = Vec::new();
        zgp2::encode_tuple(&zgp2_tuple("k", t), &mut f);
        // Forwards are pushes of the broadcast tree, marked so.
        zgp2::mark_pushed(&mut f);
        f
    };
    // As it came: byte for byte to the ZGP/2 peer; the plain peer gets a
    // PUBLISH.
    let sent = frame(1, "v1", 0, false, 0);
    hub.handle_frame(10, &sent, false, at(2));
    assert_eq!(drain(&mut hub, 11), [sent]);
    assert_eq!(names(&drain(&mut hub, 12)), ["PUBLISH"]);
    // Unknown flag bits: passed on as the hub encodes what it stored.
    let odd = frame(2, "v2", wall + 60_000, false, 0x80);
    hub.handle_frame(10, &odd, false, at(3));
    let out = drain(&mut hub, 11);
    assert_eq!(out, [as_stored(&hub)]);
    assert_ne!(out[0], odd);
    drain(&mut hub, 12);
    // Expired on arrival: stored and passed on as a tombstone.
    hub.handle_frame(10, &frame(3, "v3", wall, false, 0), false, at(4));
    let out = drain(&mut hub, 11);
    assert!(
        matches!(zgp2::decode(&out[0]), Ok(zgp2::Message::Tuple(t)) if t.deleted && t.value.is_empty())
    );
    assert_eq!(out, [as_stored(&hub)]);
    // A tombstone carrying a value: passed on without it.
    let ghost = frame(4, "v4", 0, true, 0);
    hub.handle_frame(10, &ghost, false, at(5));
    let out = drain(&mut hub, 11);
    assert_eq!(out, [as_stored(&hub)]);
    assert_ne!(out[0], ghost);
    assert!(
        drain(&mut hub, 12).is_empty(),
        "plain peers get no tombstones"
    );
}

#[test]
fn a_plain_peer_gets_every_live_tuple_streamed_and_what_came_meanwhile_after() {
    const N: usize = 30_000;
    let mut s = server();
    for i in 0..N {
        s.publish(&format!("key-{i:08}"), "value-0123456789", None, at(0));
    }
    s.unpublish("key-00000000", at(0));
    while s.poll_event().is_some() {}
    s.handle_connected(10, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(10, &enc(Message::Hello), false, at(1));
    let mut keys: Vec<String> = Vec::new();
    let mut most_queued = 0;
    for step in 0..10_000 {
        // A slow reader: at most 100 messages a step.
        let mut taken = 0;
        s.drain_outbox(10, |f| {
            if taken == 100 {
                return false;
            }
            match decode(f).unwrap() {
                Message::Publish { key, .. } => keys.push(key.to_string()),
                other => panic!("{}", other.name()),
            }
            taken += 1;
            true
        });
        most_queued = most_queued.max(s.outbox_len(10));
        if step == 20 {
            assert!(s.has_output(10), "still sending");
            s.publish("late", "v", None, at(2));
        }
        if taken == 0 && !s.has_output(10) {
            break;
        }
    }
    // Every live tuple once (not the deleted one), then the late one.
    assert_eq!(keys.len(), N);
    assert_eq!(keys.last().map(String::as_str), Some("late"));
    assert!(!keys.iter().any(|k| k == "key-00000000"));
    let unique: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), N);
    assert!(most_queued < 300 << 10, "{most_queued} bytes queued");
}

#[test]
fn connections_are_walked_in_id_order_whatever_order_they_came_in() {
    let mut s = server();
    for conn in [30, 10, 40, 20] {
        s.handle_connected(conn, Role::Inbound, Peer::default(), at(0));
        s.handle_frame(conn, &enc(Message::Hello), false, at(0));
    }
    s.handle_closed(40, at(1));
    // The same id again: the new connection replaces the old one.
    s.handle_connected(10, Role::Inbound, Peer::default(), at(1));
    s.handle_frame(10, &enc(Message::Hello), false, at(1));
    let mut dirty = Vec::new();
    s.take_dirty(&mut dirty);
    for conn in [10, 20, 30] {
        drain(&mut s, conn);
    }
    s.publish("k", "v", None, at(2));
    s.take_dirty(&mut dirty);
    assert_eq!(dirty, [10, 20, 30]);
    for conn in [10, 20, 30] {
        assert_eq!(names(&drain(&mut s, conn)), ["PUBLISH"]);
    }
    assert!(drain(&mut s, 40).is_empty());
}

/// The size rule: a ZGP v1 PUBLISH whose frame fits the limit but whose
/// ZGP/2 frame (21 bytes longer) would not is ignored and counted, never
/// stored nor forwarded; so is a value over `MAX_VALUE_LEN`.
#[test]
fn a_tuple_that_could_not_be_forwarded_is_refused_at_the_edge() {
    let mut s = server_with_client(Settings {
        max_frame: 2_000,
        ..Settings::default()
    });
    s.handle_connected(2, Role::Inbound, Peer::default(), at(0));
    s.handle_frame(2, &enc(Message::Hello), false, at(0));
    let key = "k".repeat(255);
    // v1 frame: 13 + 255 + 1732 = 2000 bytes; its ZGP/2 frame: 2021.
    let poison = "v".repeat(2_000 - 13 - 255);
    s.handle_frame(1, &enc(pubmsg(&key, &poison)), false, at(1));
    assert!(s.store().get(&key).is_none());
    assert_eq!(s.stats().oversize_tuples, 1);
    assert!(drain(&mut s, 2).is_empty(), "nothing forwarded");
    // The largest that fits in every encoding is stored and forwarded.
    let largest = "v".repeat(2_000 - zgp2::tuple_frame_len(255, 0));
    s.handle_frame(1, &enc(pubmsg(&key, &largest)), false, at(2));
    assert_eq!(s.store().value(&key), Some(largest.as_str()));
    assert_eq!(names(&drain(&mut s, 2)), ["PUBLISH"]);

    // With the default limit, a value over 1 MiB that fits the frame.
    let mut s = server_with_client(Settings::default());
    let big = "v".repeat(MAX_VALUE_LEN + 1);
    s.handle_frame(1, &enc(pubmsg("big", &big)), false, at(1));
    assert!(s.store().get("big").is_none());
    assert_eq!(s.stats().oversize_tuples, 1);
    // The application's own oversize write (the handle refuses it first).
    s.publish("big", &big, None, at(2));
    assert!(s.store().get("big").is_none());
    assert_eq!(s.stats().oversize_tuples, 2);
}

#[test]
fn the_size_rule_fits_the_default_frame_limit() {
    // The largest tuple the rule admits fits the default limits/max-frame.
    let d = Settings::default();
    assert!(d.check_tuple_size(255, MAX_VALUE_LEN).is_ok());
    assert!(zgp2::tuple_frame_len(255, MAX_VALUE_LEN) <= d.max_frame);
    let e = d.check_tuple_size(0, MAX_VALUE_LEN + 1).unwrap_err();
    assert!(e.contains("exceeds the limit of 1048576 bytes"), "{e}");
    let small = Settings {
        max_frame: 1_024,
        ..d
    };
    let e = small.check_tuple_size(10, 1_000).unwrap_err();
    assert!(e.contains("over limits/max-frame (1024)"), "{e}");
}

fn closes(e: &mut Engine) -> Vec<ConnId> {
    actions(e)
        .into_iter()
        .filter_map(|a| match a {
            Action::Close { conn, .. } => Some(conn),
            _ => None,
        })
        .collect()
}

/// A silent inbound connection is closed, not just its session: a ZGP/2
/// client (which PINGs) after the link timeout, a plain one (CZMQ's
/// never PING) after `idle_timeout_ms`.
#[test]
fn silent_inbound_connections_are_closed() {
    let settings = Settings {
        session_timeout_ms: 200,
        link_timeout_ms: 1_000,
        idle_timeout_ms: 5_000,
        ..Settings::default()
    };
    let mut s = server_with_client(settings);
    let zgp2_peer = Peer {
        addr: None,
        zgp2: true,
        ..Peer::default()
    };
    s.handle_connected(2, Role::Inbound, zgp2_peer, at(0));
    for t in (0..=1_000).step_by(100) {
        s.handle_timeout(at(t));
    }
    assert!(closes(&mut s).is_empty());
    s.handle_timeout(at(1_100));
    assert_eq!(
        closes(&mut s),
        [2],
        "the ZGP/2 client, silent past the link timeout (not the session timeout)"
    );
    s.handle_timeout(at(4_900));
    assert!(
        closes(&mut s).is_empty(),
        "the plain client may be silent longer"
    );
    s.handle_timeout(at(5_100));
    assert_eq!(closes(&mut s), [1]);
    assert_eq!(s.stats().idle_closed, 2);
}

/// A ZGP/2 server announces its link timeout: our client pings at a third
/// of it (not at `remote/ping-interval`, meant for CZMQ servers), and gives
/// the link up after twice that much silence (not after `remote/timeout`).
#[test]
fn a_zgp2_remote_pings_at_a_third_of_the_announced_link_timeout() {
    let mut c = Engine::new("c", 2, Settings::default());
    let r = c.add_remote("tcp://x:1", at(0));
    assert!(matches!(c.poll_action(), Some(Action::Dial { .. })));
    let peer = Peer {
        zgp2: true,
        timeout_ms: Some(3_000),
        ..Peer::default()
    };
    c.handle_connected(5, Role::Outbound(r), peer, at(0));
    drain(&mut c, 5);
    let mut pings = Vec::new();
    let mut t = 0;
    // The server answers every PING, so the link stays up.
    while t < 10_000 {
        t = c.poll_timeout().unwrap();
        c.handle_timeout(at(t));
        if names(&drain(&mut c, 5)).contains(&"PING") {
            pings.push(t);
            c.handle_frame(5, &enc(Message::Pong), false, at(t + 1));
        }
    }
    assert!(closes(&mut c).is_empty(), "answered: never dead");
    assert!(
        (9..=11).contains(&pings.len()),
        "one PING a second, got {pings:?}"
    );
    assert!(pings.windows(2).all(|w| w[1] - w[0] >= 1_000));
    // Unanswered: dead once twice the timeout passed without a PONG.
    let last = t;
    let mut closed_at = None;
    while t < last + 10_000 && closed_at.is_none() {
        t = c.poll_timeout().unwrap();
        c.handle_timeout(at(t));
        drain(&mut c, 5);
        if !closes(&mut c).is_empty() {
            closed_at = Some(t);
        }
    }
    let silent = closed_at.expect("closed") - (pings.last().unwrap() + 1);
    assert!(
        (6_000..6_400).contains(&silent),
        "closed after {silent} ms of silence"
    );
}

/// A ZGP/2 client that only sends (its server has nothing to say back)
/// still pings, so the PONGs keep the link alive: the silence one way is
/// not a dead link.
#[test]
fn a_zgp2_remote_that_only_sends_pings_for_the_silence_it_hears() {
    let mut c = Engine::new("c", 2, Settings::default());
    let r = c.add_remote("tcp://x:1", at(0));
    assert!(matches!(c.poll_action(), Some(Action::Dial { .. })));
    let peer = Peer {
        zgp2: true,
        timeout_ms: Some(3_000),
        ..Peer::default()
    };
    c.handle_connected(5, Role::Outbound(r), peer, at(0));
    drain(&mut c, 5);
    let mut pings = 0;
    for step in 1..=200u64 {
        let t = step * 50;
        c.publish(&format!("k{step}"), "v", None, at(t));
        c.handle_timeout(at(t));
        let sent = drain(&mut c, 5);
        // The tuples go in ZGP/2 frames; only the PING is a ZGP v1 one.
        if sent.iter().any(|f| matches!(decode(f), Ok(Message::Ping))) {
            pings += 1;
            c.handle_frame(5, &enc(Message::Pong), false, at(t + 1));
        }
        assert!(
            closes(&mut c).is_empty(),
            "closed at {t} ms, after {pings} pings"
        );
    }
    assert!((9..=11).contains(&pings), "{pings} pings in 10 s");
}

/// A plain client that keeps talking is never closed.
#[test]
fn a_talking_plain_client_is_not_closed() {
    let mut s = server_with_client(Settings {
        idle_timeout_ms: 1_000,
        ..Settings::default()
    });
    for t in (0..10_000).step_by(500) {
        s.handle_frame(1, &enc(Message::Ping), false, at(t));
        s.handle_timeout(at(t + 1));
    }
    assert!(closes(&mut s).is_empty());
}

/// The safety net of the size rule: a tuple whose frame exceeds the limit
/// a peer announced is never offered to that peer (live or in a sync),
/// so it cannot make the link close and meet the same tuple again.
#[test]
fn a_tuple_over_a_peers_announced_limit_is_not_offered_to_it() {
    let limited = Peer {
        addr: None,
        max_frame: Some(1_100),
        ..Peer::default()
    };
    let mut s = server();
    s.publish("small", "v", None, at(0));
    s.handle_connected(1, Role::Inbound, limited, at(0));
    s.handle_connected(2, Role::Inbound, Peer::default(), at(0));
    for c in [1, 2] {
        s.handle_frame(c, &enc(Message::Hello), false, at(0));
        assert_eq!(names(&drain(&mut s, c)), ["PUBLISH"]);
    }
    let big = "v".repeat(1_200);
    s.publish("big", &big, None, at(1));
    assert!(
        drain(&mut s, 1).is_empty(),
        "not offered to the limited peer"
    );
    assert_eq!(names(&drain(&mut s, 2)), ["PUBLISH"]);
    assert_eq!(s.stats().oversize_skipped, 1);
    // A new limited peer's snapshot leaves it out too.
    s.handle_connected(3, Role::Inbound, limited, at(2));
    s.handle_frame(3, &enc(Message::Hello), false, at(2));
    let snapshot = drain(&mut s, 3);
    assert_eq!(snapshot.len(), 1);
    assert_eq!(
        decode(&snapshot[0]).unwrap(),
        Message::Publish {
            key: "small",
            value: "v",
            ttl: 0
        }
    );
    assert_eq!(s.stats().oversize_skipped, 2);
    // A ZGP/2 peer with a limit: the forward skips it as well.
    let zgp2_limited = Peer {
        addr: None,
        zgp2: true,
        timeout_ms: Some(1000),
        max_frame: Some(1_100),
    };
    s.handle_connected(4, Role::Inbound, zgp2_limited, at(3));
    s.handle_frame(4, &enc(Message::Hello), false, at(3));
    drain(&mut s, 4);
    s.publish("big", &"w".repeat(1_200), None, at(4));
    let frames = drain(&mut s, 4);
    assert!(
        frames.iter().all(|f| f.len() <= 1_100),
        "{:?}",
        frames.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(s.stats().oversize_skipped, 5); // clients 1, 3 and 4
}

/// The bytes waiting for all connections together are bounded: beyond
/// `max_backlog_total` the largest backlogs are closed until the rest fits.
#[test]
fn backlogs_are_bounded_across_connections() {
    let mut s = Engine::new(
        "s",
        1,
        Settings {
            max_backlog_total: 10_000,
            ..Settings::default()
        },
    );
    for c in 1..=3 {
        s.handle_connected(c, Role::Inbound, Peer::default(), at(0));
        s.handle_frame(c, &enc(Message::Hello), false, at(0));
    }
    let value = "v".repeat(500);
    for i in 0..12 {
        s.publish(&format!("k{i}"), &value, None, at(1));
    }
    // Client 3 reads what it was sent: its backlog is empty.
    drain(&mut s, 3);
    actions(&mut s);
    s.handle_timeout(at(200));
    let closed = closes(&mut s);
    assert_eq!(
        closed.len(),
        1,
        "{closed:?}: 12 KB of 10 KB waiting, one of 6 KB goes"
    );
    assert!(closed.iter().all(|&c| c == 1 || c == 2));
    assert_eq!(s.stats().backlog_closed, 1);
    s.handle_timeout(at(400));
    assert!(closes(&mut s).is_empty(), "the rest fits");
}

/// An overlay or membership message longer than the peer accepts goes in
/// halves, each within its limit.
#[test]
fn messages_longer_than_the_peer_accepts_go_in_halves() {
    use crate::wire::membership::{self, MemberRecord, MemberState};
    let mut e = Engine::new("e", 1, Settings::default());
    let peer = Peer {
        zgp2: true,
        max_frame: Some(600),
        ..Peer::default()
    };
    e.handle_connected(5, Role::Inbound, peer, at(0));
    drain(&mut e, 5);
    let records: Vec<MemberRecord> = (2..40u64)
        .map(|id| MemberRecord {
            id,
            incarnation: 0,
            state: MemberState::Alive,
            by: id,
            started: 1,
            name: format!("member-{id}"),
            endpoint: "tcp://10.0.0.1:5670".into(),
        })
        .collect();
    e.send_zgp2(5, membership::Message::Members(records.clone()), at(0));
    let frames = drain(&mut e, 5);
    assert!(frames.len() > 1, "{} frames", frames.len());
    let mut got = Vec::new();
    for f in &frames {
        assert!(f.len() <= 600, "{} bytes", f.len());
        match zgp2::decode(f) {
            Ok(zgp2::Message::Membership(membership::Message::Members(r))) => got.extend(r),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, records, "every record once, in order");
}

/// A remote with several server keys (its server rotates its key) dials
/// with the first, then the next one after each failed dial, round; a
/// dial that gets through keeps its key for the redials after it.
#[test]
fn a_remote_with_several_server_keys_tries_the_next_after_a_failed_dial() {
    let mut e = server();
    let r = e.add_remote("tcp://10.0.0.2:7000", at(0));
    actions(&mut e);
    assert_eq!(e.remote_key(r), None, "plain until keys are set");
    e.set_remote_keys(r, vec![[1; 32], [2; 32]]);
    assert_eq!(e.remote_key(r), Some([1; 32]));
    e.handle_dial_failed(r, "HELLO addressed to a retired server key", at(1));
    assert_eq!(e.remote_key(r), Some([2; 32]));
    e.handle_dial_failed(r, "refused", at(2));
    assert_eq!(e.remote_key(r), Some([1; 32]), "round again");
    e.handle_dial_failed(r, "refused", at(3));
    e.handle_connected(5, Role::Outbound(r), Peer::default(), at(4));
    e.handle_closed(5, at(5));
    assert_eq!(e.remote_key(r), Some([2; 32]), "the key that worked stays");
    // New keys replace the list and start from its first.
    e.set_remote_keys(r, vec![[3; 32]]);
    assert_eq!(e.remote_key(r), Some([3; 32]));
    e.handle_dial_failed(r, "refused", at(6));
    assert_eq!(e.remote_key(r), Some([3; 32]));
}
