//! The overlay joined to the engine: overlay messages on connections, the
//! tree deciding what is pushed and what announced, grafts answered from
//! the store.

use super::test_support::{actions, at, drain, enc};
use super::tree::TreeSettings;
use super::*;
use crate::wire::overlay::{self, PeerEntry, WriteId};

const ZGP2: Peer = Peer {
    zgp2: true,
    timeout_ms: Some(1000),
    max_frame: None,
    addr: None,
};

fn ov(m: overlay::Message) -> Vec<u8> {
    let mut v = Vec::new();
    m.encode(&mut v);
    v
}

fn decoded(frames: &[Vec<u8>]) -> Vec<zgp2::Message<'_>> {
    frames.iter().filter_map(|f| zgp2::decode(f).ok()).collect()
}

fn overlay_msgs(frames: &[Vec<u8>]) -> Vec<overlay::Message> {
    decoded(frames)
        .into_iter()
        .filter_map(|m| match m {
            zgp2::Message::Overlay(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// Runs the engine's timers that fall due up to `ms`.
fn advance(e: &mut Engine, ms: u64) {
    for _ in 0..10_000 {
        match e.poll_timeout() {
            Some(t) if t <= ms => e.handle_timeout(at(t)),
            _ => return,
        }
    }
    panic!("timers did not settle");
}

/// An engine with ZGP/2 clients on connections `conns` that said HELLO.
fn hub(conns: &[ConnId]) -> Engine {
    hub_with_id(1, conns)
}

/// A node of id `id` with inbound ZGP/2 links `conns`, their HELLOs in.
fn hub_with_id(id: u64, conns: &[ConnId]) -> Engine {
    let mut e = Engine::new("hub", id, Settings::default());
    e.set_endpoint("tcp://10.0.0.1:5670");
    for &c in conns {
        let peer = Peer {
            addr: Some("10.9.9.9".parse().unwrap()),
            ..ZGP2
        };
        e.handle_connected(c, Role::Inbound, peer, at(0));
        e.handle_frame(c, &enc(Message::Hello), false, at(0));
        drain(&mut e, c);
    }
    e
}

fn entry(id: u64, endpoint: &str) -> PeerEntry {
    PeerEntry {
        id,
        endpoint: endpoint.into(),
        key: None,
    }
}

#[test]
fn a_join_from_a_wildcard_bound_node_is_kept_at_the_address_it_came_from() {
    let mut e = hub(&[7]);
    e.handle_frame(
        7,
        &ov(overlay::Message::Join(entry(2, "tcp://*:6000"))),
        false,
        at(1),
    );
    assert_eq!(
        e.active_peers(),
        vec![(7, 2, "tcp://10.9.9.9:6000".to_string())]
    );
    assert_eq!(
        overlay_msgs(&drain(&mut e, 7)),
        vec![
            overlay::Message::NeighborReply {
                accepted: true,
                peer: entry(1, "tcp://10.0.0.1:5670")
            },
            overlay::Message::Anchor(1)
        ]
    );
}

#[test]
fn overlay_messages_before_hello_are_refused_like_any_other() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.handle_connected(3, Role::Inbound, ZGP2, at(0));
    e.handle_frame(
        3,
        &ov(overlay::Message::Join(entry(2, "tcp://h:1"))),
        false,
        at(1),
    );
    assert_eq!(e.active_peers(), vec![]);
    let out = drain(&mut e, 3);
    assert!(matches!(gossip::decode(&out[0]), Ok(Message::Invalid)));
}

#[test]
fn an_overlay_dial_that_meets_a_plain_peer_is_closed_and_another_peer_asked() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.join("tcp://10.0.0.2:5670", None, at(0));
    let Some(Action::Dial { remote, endpoint }) = actions(&mut e).pop() else {
        panic!("no dial");
    };
    assert_eq!(endpoint, "tcp://10.0.0.2:5670");
    e.handle_connected(4, Role::Outbound(remote), Peer::default(), at(1));
    let acts = actions(&mut e);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Close { conn: 4, .. })),
        "{acts:?}"
    );
    // Never redialled as a remote: the contact is tried again only at the
    // views' next period, as a new dial.
    e.handle_closed(4, at(2));
    e.handle_timeout(at(3_000));
    assert!(!actions(&mut e)
        .iter()
        .any(|a| matches!(a, Action::Dial { remote: r, .. } if *r == remote)));
}

#[test]
fn a_write_goes_whole_to_eager_links_and_announced_to_lazy_ones() {
    let mut e = hub(&[1, 2]);
    e.handle_frame(2, &ov(overlay::Message::Prune), false, at(1));
    assert_eq!(e.link_is_eager(1), Some(true));
    assert_eq!(e.link_is_eager(2), Some(false));
    e.publish("k", "v", None, at(2));
    let to_eager = drain(&mut e, 1);
    assert!(matches!(decoded(&to_eager)[..], [zgp2::Message::Tuple(t)] if t.key == "k"));
    assert!(zgp2::is_pushed(&to_eager[0]), "a forward is marked pushed");
    assert!(drain(&mut e, 2).is_empty(), "announced later, in a batch");
    advance(&mut e, 2 + TreeSettings::default().announce_interval_ms);
    let version = e.store().get("k").unwrap().version;
    assert_eq!(
        overlay_msgs(&drain(&mut e, 2)),
        vec![overlay::Message::IHave(vec![WriteId {
            key: "k".into(),
            clock: version.clock,
            origin: version.origin
        }])]
    );
}

#[test]
fn a_pushed_duplicate_prunes_its_link_and_a_reconciled_one_does_not() {
    let mut e = hub(&[1, 2]);
    let mut frame = Vec::new();
    zgp2::encode_tuple(
        &zgp2::Tuple {
            key: "k",
            value: "v",
            clock: (at(0).wall_ms) << 16,
            origin: 9,
            expires: 0,
            deleted: false,
            ephemeral: false,
        },
        &mut frame,
    );
    e.handle_frame(1, &frame, false, at(1));
    drain(&mut e, 1);
    drain(&mut e, 2);
    // The same write again, not pushed (a reconciliation): nothing.
    e.handle_frame(2, &frame, false, at(2));
    assert!(drain(&mut e, 2).is_empty());
    assert_eq!(e.link_is_eager(2), Some(true));
    // Pushed: the link is redundant.
    zgp2::mark_pushed(&mut frame);
    e.handle_frame(2, &frame, false, at(3));
    assert_eq!(
        overlay_msgs(&drain(&mut e, 2)),
        vec![overlay::Message::Prune]
    );
    assert_eq!(e.link_is_eager(2), Some(false));
}

#[test]
fn an_announced_write_is_grafted_and_a_graft_is_answered_from_the_store() {
    let mut e = hub(&[1, 2]);
    // Announced on 2 and never received: pulled from 2.
    let id = WriteId {
        key: "far".into(),
        clock: (at(0).wall_ms) << 16,
        origin: 9,
    };
    e.handle_frame(2, &ov(overlay::Message::Prune), false, at(1));
    e.handle_frame(
        2,
        &ov(overlay::Message::IHave(vec![id.clone()])),
        false,
        at(1),
    );
    advance(&mut e, 1 + TreeSettings::default().graft_timeout_ms - 1);
    assert!(
        overlay_msgs(&drain(&mut e, 2)).is_empty(),
        "not before its time"
    );
    advance(&mut e, 1 + TreeSettings::default().graft_timeout_ms);
    assert_eq!(
        overlay_msgs(&drain(&mut e, 2)),
        vec![overlay::Message::Graft(vec![id])]
    );
    assert_eq!(e.link_is_eager(2), Some(true), "grafting repairs the tree");
    // A peer grafts a write we hold: sent (not as a push), link eager.
    e.publish("near", "v", None, at(2));
    drain(&mut e, 1);
    let v = e.store().get("near").unwrap().version;
    e.handle_frame(1, &ov(overlay::Message::Prune), false, at(3));
    let want = WriteId {
        key: "near".into(),
        clock: v.clock,
        origin: v.origin,
    };
    e.handle_frame(1, &ov(overlay::Message::Graft(vec![want])), false, at(4));
    let out = drain(&mut e, 1);
    assert!(matches!(decoded(&out)[..], [zgp2::Message::Tuple(t)] if t.key == "near"));
    assert!(!zgp2::is_pushed(&out[0]));
    assert_eq!(e.link_is_eager(1), Some(true));
}

/// The ZGP/2 frame of a write of `key` by node 9, pushed or not.
fn tuple_frame(key: &str, pushed: bool) -> Vec<u8> {
    let mut f = Vec::new();
    zgp2::encode_tuple(
        &zgp2::Tuple {
            key,
            value: "v",
            clock: (at(0).wall_ms) << 16,
            origin: 9,
            expires: 0,
            deleted: false,
            ephemeral: false,
        },
        &mut f,
    );
    if pushed {
        zgp2::mark_pushed(&mut f);
    }
    f
}

#[test]
fn a_write_that_came_by_reconciliation_is_sent_on_unmarked() {
    // Forwarded as a push, it would make a node that holds it already
    // prune the link the tree brings it on.
    let mut e = hub(&[1, 2]);
    let reconciled = tuple_frame("k", false);
    e.handle_frame(1, &reconciled, false, at(1));
    assert_eq!(drain(&mut e, 2), vec![reconciled]);
    // Pushed in, pushed on.
    let pushed = tuple_frame("k2", true);
    e.handle_frame(1, &pushed, false, at(2));
    assert_eq!(drain(&mut e, 2), vec![pushed]);
}

#[test]
fn a_pulled_write_is_pushed_on() {
    // Below a pull the tree missed the write too: pushed on, a duplicate
    // of it thins the eager links like any other push.
    let mut e = hub(&[1, 2]);
    e.handle_frame(2, &ov(overlay::Message::Prune), false, at(1));
    let id = WriteId {
        key: "far".into(),
        clock: (at(0).wall_ms) << 16,
        origin: 9,
    };
    e.handle_frame(2, &ov(overlay::Message::IHave(vec![id])), false, at(1));
    advance(&mut e, 1 + TreeSettings::default().graft_timeout_ms);
    assert!(matches!(
        overlay_msgs(&drain(&mut e, 2))[..],
        [overlay::Message::Graft(_)]
    ));
    // The answer comes unmarked; it goes on to 1 as a push.
    e.handle_frame(2, &tuple_frame("far", false), false, at(500));
    assert_eq!(drain(&mut e, 1), vec![tuple_frame("far", true)]);
}

#[test]
fn a_link_that_just_brought_a_first_copy_is_not_pruned_by_a_duplicate() {
    let mut e = hub(&[1, 2]);
    // Link 1 brings "a" first; "b" comes first on 2, then on 1 too.
    e.handle_frame(1, &tuple_frame("a", true), false, at(1));
    e.handle_frame(2, &tuple_frame("b", true), false, at(2));
    drain(&mut e, 1);
    drain(&mut e, 2);
    e.handle_frame(1, &tuple_frame("b", true), false, at(3));
    assert!(overlay_msgs(&drain(&mut e, 1)).is_empty());
    assert_eq!(
        e.link_is_eager(1),
        Some(true),
        "it carries other writes first"
    );
    // Later, with no first copy in between: pruned.
    let later = 3 + TreeSettings::default().graft_timeout_ms;
    e.handle_frame(1, &tuple_frame("b", true), false, at(later));
    assert_eq!(
        overlay_msgs(&drain(&mut e, 1)),
        vec![overlay::Message::Prune]
    );
    assert_eq!(e.link_is_eager(1), Some(false));
}

#[test]
fn plain_links_are_not_in_the_tree_and_get_every_write() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.handle_connected(5, Role::Inbound, Peer::default(), at(0));
    e.handle_frame(5, &enc(Message::Hello), false, at(0));
    drain(&mut e, 5);
    assert_eq!(e.link_is_eager(5), None);
    e.publish("k", "v", None, at(1));
    assert!(matches!(
        gossip::decode(&drain(&mut e, 5)[0]),
        Ok(Message::Publish { key: "k", .. })
    ));
}

mod forged {
    //! Overlay messages with arbitrary contents on arbitrary connections,
    //! at arbitrary times: the engine never panics, the views never pass
    //! their bounds, and what it sends is well-formed.
    use super::*;
    use proptest::prelude::*;

    fn entry_strategy() -> impl Strategy<Value = PeerEntry> {
        (
            0u64..40,
            prop_oneof![
                Just(String::new()),
                Just("tcp://*:9".to_string()),
                (1u8..30).prop_map(|h| format!("tcp://10.0.0.{h}:5670")),
            ],
            proptest::option::of(any::<u8>().prop_map(|b| [b; 32])),
        )
            .prop_map(|(id, endpoint, key)| PeerEntry { id, endpoint, key })
    }

    fn message_strategy() -> impl Strategy<Value = overlay::Message> {
        let id = (0u8..8, 0u64..1 << 50, 0u64..4).prop_map(|(k, clock, origin)| WriteId {
            key: format!("k{k}"),
            clock,
            origin,
        });
        prop_oneof![
            entry_strategy().prop_map(overlay::Message::Join),
            (any::<u8>(), entry_strategy())
                .prop_map(|(ttl, peer)| overlay::Message::ForwardJoin { ttl, peer }),
            (any::<bool>(), entry_strategy())
                .prop_map(|(high, peer)| overlay::Message::Neighbor { high, peer }),
            (any::<bool>(), entry_strategy())
                .prop_map(|(accepted, peer)| overlay::Message::NeighborReply { accepted, peer }),
            any::<bool>().prop_map(|alive| overlay::Message::Disconnect { alive }),
            (
                any::<u8>(),
                proptest::collection::vec(entry_strategy(), 0..64)
            )
                .prop_map(|(ttl, peers)| overlay::Message::Shuffle { ttl, peers }),
            proptest::collection::vec(entry_strategy(), 0..64)
                .prop_map(overlay::Message::ShuffleReply),
            proptest::collection::vec(id.clone(), 0..50).prop_map(overlay::Message::IHave),
            proptest::collection::vec(id, 0..50).prop_map(overlay::Message::Graft),
            Just(overlay::Message::Prune),
            (1..u64::MAX).prop_map(overlay::Message::Anchor),
            (1u64..6, any::<u64>(), any::<u8>(), any::<bool>()).prop_map(
                |(root, seq, level, parent)| overlay::Message::Root(overlay::RootAdvert {
                    root,
                    seq,
                    level,
                    parent
                })
            ),
            (1u64..6, any::<u64>())
                .prop_map(|(root, seq)| overlay::Message::RootRequest { root, seq }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn forged_overlay_traffic_keeps_every_bound(
            steps in proptest::collection::vec((0u64..12, message_strategy(), 0u64..3_000), 1..120)
        ) {
            let conns: Vec<ConnId> = (1..12).collect();
            // Id 3: forged roots (1 to 5) both below and above it.
            let mut e = hub_with_id(3, &conns);
            let limits = Settings::default().views;
            let mut now = 10;
            for (conn, msg, dt) in steps {
                now += dt;
                e.handle_frame(conn, &ov(msg), false, at(now));
                advance(&mut e, now);
                let st = e.overlay_stats();
                prop_assert!(st.active <= limits.active_max);
                prop_assert!(st.passive <= limits.passive_max);
                // The root is the smallest id heard or this node's own,
                // and its level never names a way it cannot have.
                let (root, level, detached) = e.tree_root();
                prop_assert!(root <= e.id());
                prop_assert!(root == e.id() || level > 0 || detached);
                for c in 0..12 {
                    for f in drain(&mut e, c) {
                        prop_assert!(gossip::decode(&f).is_ok() || zgp2::decode(&f).is_ok());
                    }
                }
                for a in actions(&mut e) {
                    if let Action::Dial { endpoint, .. } = a {
                        prop_assert!(overlay::endpoint_is_dialable(&endpoint), "{endpoint}");
                    }
                }
            }
        }
    }
}

/// `overlay/advertise`: the driver hands the engine the advertised
/// endpoint in place of the bound one; the JOIN it sends, and the
/// membership's own record (MEMBERS), carry it.
#[test]
fn the_advertised_endpoint_is_what_joins_and_the_member_table_tell() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.set_endpoint("tcp://*:5670"); // bound to a wildcard
    e.set_endpoint("tcp://203.0.113.7:7000"); // then advertised
    assert_eq!(e.endpoint(), "tcp://203.0.113.7:7000");
    e.join("tcp://10.0.0.2:5670", None, at(0));
    let Some(Action::Dial { remote, .. }) = actions(&mut e).pop() else {
        panic!("no dial");
    };
    e.handle_connected(4, Role::Outbound(remote), ZGP2, at(1));
    let sent = overlay_msgs(&drain(&mut e, 4));
    assert!(
        sent.contains(&overlay::Message::Join(entry(1, "tcp://203.0.113.7:7000"))),
        "{sent:?}"
    );
    let me = e.members().into_iter().next().expect("own record");
    assert_eq!((me.id, me.endpoint.as_str()), (1, "tcp://203.0.113.7:7000"));
}

/// A DNS seed's answer, as the driver hands it over: each address is
/// joined through with the seed's key; the same answer again joins none.
#[test]
fn a_dns_seed_answer_dials_each_address_as_a_join() {
    let mut e = Engine::new("e", 1, Settings::default());
    e.set_endpoint("tcp://10.0.0.1:5670");
    let key = Some([9u8; 32]);
    let answer: Vec<String> = (2..=4).map(|i| format!("tcp://10.0.0.{i}:5670")).collect();
    e.seed_resolved("dns:seeds.test:5670", &answer, key, at(0));
    let mut dialled: Vec<String> = actions(&mut e)
        .into_iter()
        .filter_map(|a| match a {
            Action::Dial { endpoint, .. } => Some(endpoint),
            _ => None,
        })
        .collect();
    dialled.sort();
    assert_eq!(dialled, answer);
    assert_eq!(e.overlay_stats().views.seed_joins, 3);
    e.seed_resolved("dns:seeds.test:5670", &answer, key, at(100));
    assert!(!actions(&mut e)
        .iter()
        .any(|a| matches!(a, Action::Dial { .. })));
}

fn member_frame(m: crate::wire::membership::Message) -> Vec<u8> {
    let mut v = Vec::new();
    m.encode(&mut v);
    v
}

/// Node 2 on inbound link 7, its digest in: the hub knows who is there.
fn hub_with_member_on_7() -> Engine {
    use crate::wire::membership::{MemberRecord, MemberState, Message as M};
    let mut e = hub(&[7]);
    let me = MemberRecord {
        id: 2,
        incarnation: 1,
        state: MemberState::Alive,
        by: 2,
        started: 1,
        name: "two".into(),
        endpoint: "tcp://10.0.0.2:5670".into(),
    };
    let digest = M::Digest {
        reply: false,
        me,
        bits: 0,
        hashes: vec![0],
    };
    e.handle_frame(7, &member_frame(digest), false, at(1));
    drain(&mut e, 7);
    assert_eq!(
        e.member(2).map(|m| m.record.state),
        Some(MemberState::Alive)
    );
    e
}

/// A link closed by its peer after a DISCONNECT (a second link to the same
/// node, an eviction) is the peer's choice: the peer is not suspected. The
/// same close without it is a failure of the peer's end.
#[test]
fn a_close_after_a_disconnect_suspects_nobody_and_one_without_it_does() {
    use crate::wire::membership::MemberState;
    let mut e = hub_with_member_on_7();
    let bye = ov(overlay::Message::Disconnect { alive: true });
    e.handle_frame(7, &bye, false, at(2));
    e.handle_closed(7, at(3));
    assert_eq!(
        e.member(2).map(|m| m.record.state),
        Some(MemberState::Alive)
    );
    assert_eq!(e.membership_stats().suspicions, 0);

    let mut e = hub_with_member_on_7();
    e.handle_closed(7, at(3));
    assert_eq!(
        e.member(2).map(|m| m.record.state),
        Some(MemberState::Suspect)
    );
}

/// Node 2 is a known member, alive, with no link to the hub; node 3 is
/// active on link 8; a beacon of 2 (with key `key`) makes the hub ask 2 to
/// be a neighbour. Returns the hub and the dial's remote.
fn hub_dialling_member_2(key: [u8; 32]) -> (Engine, RemoteId) {
    let mut e = hub_with_member_on_7();
    e.handle_frame(
        7,
        &ov(overlay::Message::Disconnect { alive: true }),
        false,
        at(2),
    );
    e.handle_closed(7, at(3));
    e.handle_connected(8, Role::Inbound, ZGP2, at(3));
    e.handle_frame(8, &enc(Message::Hello), false, at(3));
    e.handle_frame(
        8,
        &ov(overlay::Message::Join(entry(3, "tcp://10.0.0.3:5670"))),
        false,
        at(3),
    );
    drain(&mut e, 8);
    e.add_candidate(2, "tcp://10.0.0.2:5670", Some(key), at(4));
    let remote = actions(&mut e)
        .into_iter()
        .find_map(|a| match a {
            Action::Dial { remote, endpoint } if endpoint == "tcp://10.0.0.2:5670" => Some(remote),
            _ => None,
        })
        .expect("a neighbour dial of 2");
    assert_eq!(e.remote_key(remote), Some(key));
    (e, remote)
}

/// A neighbour dial refused in its CURVE handshake (2 retired the key it
/// was dialled with) says 2 is there: no suspicion. A dial that finds no
/// one there does accuse it.
#[test]
fn a_handshake_refusal_on_an_overlay_dial_raises_no_suspicion() {
    use crate::wire::membership::MemberState;
    let (mut e, remote) = hub_dialling_member_2([0xA2; 32]);
    e.handle_dial_failed(remote, "HELLO addressed to a retired server key", at(5));
    advance(&mut e, 50);
    assert_eq!(e.membership_stats().unreachable, 0);
    assert_eq!(e.membership_stats().suspicions, 0);
    assert_eq!(
        e.member(2).map(|m| m.record.state),
        Some(MemberState::Alive)
    );
    // Its beacon with the new key: dialled with that key.
    e.add_candidate(2, "tcp://10.0.0.2:5670", Some([0xB2; 32]), at(60));
    let remote = actions(&mut e)
        .into_iter()
        .find_map(|a| match a {
            Action::Dial { remote, endpoint } if endpoint == "tcp://10.0.0.2:5670" => Some(remote),
            _ => None,
        })
        .expect("2 dialled again");
    assert_eq!(e.remote_key(remote), Some([0xB2; 32]));

    let (mut e, remote) = hub_dialling_member_2([0xA2; 32]);
    e.handle_dial_unanswered(remote, "connection refused", at(5));
    assert_eq!(e.membership_stats().unreachable, 1);
    assert_eq!(
        e.member(2).map(|m| m.record.state),
        Some(MemberState::Suspect)
    );
}
