//! The views, transition by transition (fixed seeds).

use super::*;

fn peer(id: u64) -> PeerEntry {
    PeerEntry {
        id,
        endpoint: format!("tcp://10.0.0.{id}:5670"),
        key: None,
    }
}

fn views(id: u64) -> Views {
    Views::new(peer(id), ViewSettings::default(), id)
}

fn drain(v: &mut Views) -> Vec<ViewAction> {
    std::iter::from_fn(|| v.poll_action()).collect()
}

fn sent(actions: &[ViewAction]) -> Vec<(ConnId, Message)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ViewAction::Send { conn, msg } => Some((*conn, msg.clone())),
            _ => None,
        })
        .collect()
}

fn closed(actions: &[ViewAction]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            ViewAction::Close { conn, .. } => Some(*conn),
            _ => None,
        })
        .collect()
}

fn dials(actions: &[ViewAction]) -> Vec<(String, Intent)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ViewAction::Dial { endpoint, intent } => Some((endpoint.clone(), intent.clone())),
            _ => None,
        })
        .collect()
}

/// Makes `peers` active on `v`, one inbound connection each (conn = id).
/// Keeps `p` as a passive peer, as a shuffle would (no request follows).
fn know(v: &mut Views, p: u64) {
    v.add_passive(peer(p), &[]);
}

fn with_active(v: &mut Views, peers: &[u64]) {
    for &p in peers {
        v.handle_message(
            p,
            Message::Neighbor {
                high: true,
                peer: peer(p),
            },
            0,
        );
    }
    drain(v);
    assert_eq!(v.active_len(), peers.len());
}

#[test]
fn a_join_dials_the_contact_sends_join_and_takes_the_accepting_contact() {
    let mut v = views(1);
    v.join("tcp://10.0.0.2:5670", None, 0);
    assert_eq!(
        dials(&drain(&mut v)),
        vec![(
            "tcp://10.0.0.2:5670".to_string(),
            Intent::Join { key: None }
        )]
    );
    v.link_up(7, "tcp://10.0.0.2:5670", 10);
    assert_eq!(sent(&drain(&mut v)), vec![(7, Message::Join(peer(1)))]);
    assert!(v.owns(7) && !v.is_active(7));
    v.handle_message(
        7,
        Message::NeighborReply {
            accepted: true,
            peer: peer(2),
        },
        20,
    );
    assert!(v.is_active(7));
    assert_eq!(v.active().map(|(_, p)| p.id).collect::<Vec<_>>(), vec![2]);
}

#[test]
fn a_contact_takes_the_joiner_answers_and_forwards_the_join_to_its_other_peers() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    v.handle_message(9, Message::Join(peer(4)), 0);
    let out = drain(&mut v);
    let s = sent(&out);
    assert!(s.contains(&(
        9,
        Message::NeighborReply {
            accepted: true,
            peer: peer(1)
        }
    )));
    // The newcomer also gets a sample of whom the contact knows.
    assert!(
        s.contains(&(9, Message::ShuffleReply(vec![peer(2), peer(3)])))
            || s.contains(&(9, Message::ShuffleReply(vec![peer(3), peer(2)])))
    );
    for other in [2, 3] {
        assert!(s.contains(&(
            other,
            Message::ForwardJoin {
                ttl: 6,
                peer: peer(4)
            }
        )));
    }
    // And its anchor, after the reply.
    let reply = s
        .iter()
        .position(|m| matches!(m, (9, Message::NeighborReply { .. })));
    let anchor = s.iter().position(|m| m == &(9, Message::Anchor(1)));
    assert!(reply < anchor, "{s:?}");
    assert_eq!(s.len(), 5);
    assert!(v.is_active(9));
    assert_eq!(v.stats.joins, 1);
}

#[test]
fn a_forward_join_walks_on_is_kept_passive_at_the_passive_hop_and_ends_in_a_high_dial() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    // ttl 5: passed on to the other active peer, not kept.
    v.handle_message(
        2,
        Message::ForwardJoin {
            ttl: 5,
            peer: peer(9),
        },
        0,
    );
    assert_eq!(
        sent(&drain(&mut v)),
        vec![(
            3,
            Message::ForwardJoin {
                ttl: 4,
                peer: peer(9)
            }
        )]
    );
    assert!(v.passive().is_empty());
    // ttl 3 (the passive walk length): kept passive and passed on.
    v.handle_message(
        3,
        Message::ForwardJoin {
            ttl: 3,
            peer: peer(9),
        },
        0,
    );
    assert_eq!(sent(&drain(&mut v)).len(), 1);
    assert_eq!(v.passive(), &[peer(9)]);
    // ttl 0: the walk ends here, the new node is dialled with high priority.
    v.handle_message(
        2,
        Message::ForwardJoin {
            ttl: 0,
            peer: peer(9),
        },
        0,
    );
    assert_eq!(
        dials(&drain(&mut v)),
        vec![(
            peer(9).endpoint,
            Intent::Neighbor {
                peer: peer(9),
                high: true
            }
        )]
    );
    v.link_up(20, &peer(9).endpoint, 1);
    assert_eq!(
        sent(&drain(&mut v)),
        vec![(
            20,
            Message::Neighbor {
                high: true,
                peer: peer(1)
            }
        )]
    );
}

#[test]
fn a_forward_join_on_a_link_that_is_not_active_is_ignored() {
    let mut v = views(1);
    v.handle_message(
        5,
        Message::ForwardJoin {
            ttl: 0,
            peer: peer(9),
        },
        0,
    );
    assert!(drain(&mut v).is_empty());
    assert_eq!(v.stats.ignored, 1);
}

#[test]
fn a_full_view_refuses_low_requests_and_makes_room_for_high_ones() {
    let mut v = views(1);
    let full: Vec<u64> = (2..2 + ViewSettings::default().active_max as u64).collect();
    with_active(&mut v, &full);
    v.handle_message(
        50,
        Message::Neighbor {
            high: false,
            peer: peer(50),
        },
        0,
    );
    let out = drain(&mut v);
    assert!(sent(&out).contains(&(
        50,
        Message::NeighborReply {
            accepted: false,
            peer: peer(1)
        }
    )));
    assert_eq!(closed(&out), vec![50]);
    assert!(!v.is_active(50));
    // Refused but alive: known as a passive peer.
    assert!(v.passive().contains(&peer(50)));

    v.handle_message(
        51,
        Message::Neighbor {
            high: true,
            peer: peer(51),
        },
        0,
    );
    let out = drain(&mut v);
    assert!(v.is_active(51));
    assert_eq!(v.active_len(), ViewSettings::default().active_max);
    let victim = closed(&out);
    assert_eq!(victim.len(), 1);
    assert!(sent(&out).contains(&(victim[0], Message::Disconnect { alive: true })));
    assert!(v.passive().contains(&peer(victim[0])));
    assert_eq!(v.stats.evictions, 1);
}

#[test]
fn a_failed_active_link_is_replaced_from_the_passive_view() {
    let mut v = views(1);
    with_active(&mut v, &[2]);
    know(&mut v, 7);
    assert_eq!(v.passive(), &[peer(7)]);
    drain(&mut v);
    assert!(v.link_down(2, 100));
    // Alone now: the replacement is asked with high priority.
    assert_eq!(
        dials(&drain(&mut v)),
        vec![(
            peer(7).endpoint,
            Intent::Neighbor {
                peer: peer(7),
                high: true
            }
        )]
    );
    // That dial fails: the peer is forgotten; refused or unanswered, it
    // is reported to the membership as unreachable.
    v.dial_failed(&peer(7).endpoint, true, 200);
    assert!(v.passive().is_empty());
    let unreachable = |acts: &[ViewAction]| -> Vec<u64> {
        acts.iter()
            .filter_map(|a| match a {
                ViewAction::Unreachable { id } => Some(*id),
                _ => None,
            })
            .collect()
    };
    assert_eq!(unreachable(&drain(&mut v)), vec![7]);
    // A failure of this end (no route from here, a refused handshake)
    // says nothing of the peer.
    let mut v = views(1);
    with_active(&mut v, &[2]);
    know(&mut v, 7);
    drain(&mut v);
    assert!(v.link_down(2, 100));
    drain(&mut v);
    v.dial_failed(&peer(7).endpoint, false, 200);
    assert!(v.passive().is_empty());
    assert!(unreachable(&drain(&mut v)).is_empty());
}

#[test]
fn a_node_with_room_asks_at_once_when_discovery_brings_a_candidate() {
    let mut v = views(1);
    with_active(&mut v, &[2]);
    v.candidate(peer(9), 0);
    assert_eq!(
        dials(&drain(&mut v)),
        vec![(
            peer(9).endpoint,
            Intent::Neighbor {
                peer: peer(9),
                high: true
            }
        )]
    );
    // One request at a time: the next candidate waits.
    v.candidate(peer(10), 0);
    assert!(dials(&drain(&mut v)).is_empty());
}

#[test]
fn an_alone_node_joins_through_the_first_candidate_it_hears_of() {
    let mut v = views(1);
    v.candidate(peer(3), 0);
    assert_eq!(
        dials(&drain(&mut v)),
        vec![(peer(3).endpoint, Intent::Join { key: None })]
    );
    // Others heard meanwhile are kept for later.
    v.candidate(peer(4), 0);
    assert!(drain(&mut v).is_empty());
    assert_eq!(v.passive(), &[peer(4)]);
    // Its own id, and endpoints nobody can dial, are not kept.
    v.candidate(peer(1), 0);
    v.candidate(
        PeerEntry {
            id: 5,
            endpoint: "tcp://*:1".into(),
            key: None,
        },
        0,
    );
    assert_eq!(v.passive(), &[peer(4)]);
}

#[test]
fn a_refused_request_closes_the_link_and_the_next_period_asks_another_passive_peer() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3, 4]);
    know(&mut v, 7);
    know(&mut v, 8);
    v.handle_timeout(v.poll_timeout().unwrap());
    let out = drain(&mut v);
    let d = dials(&out);
    assert_eq!(d.len(), 1, "one promotion at a time: {out:?}");
    let (endpoint, intent) = d[0].clone();
    assert!(matches!(intent, Intent::Neighbor { high: false, .. }));
    v.link_up(30, &endpoint, 1);
    drain(&mut v);
    let asked = if endpoint == peer(7).endpoint { 7 } else { 8 };
    v.handle_message(
        30,
        Message::NeighborReply {
            accepted: false,
            peer: peer(asked),
        },
        2,
    );
    let out = drain(&mut v);
    assert_eq!(closed(&out), vec![30]);
    // Not at once: a full node is not asked again and again.
    assert!(dials(&out).is_empty());
    // Refused but alive: still a passive peer.
    assert!(v.passive().contains(&peer(asked)));
    v.handle_timeout(v.poll_timeout().unwrap());
    assert_eq!(dials(&drain(&mut v)).len(), 1);
}

#[test]
fn a_failed_peer_is_remembered_and_tried_again_each_period_until_forgotten() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    // Peer 2's link fails: not passive, but remembered.
    assert!(v.link_down(2, 0));
    drain(&mut v);
    assert!(!v.passive().contains(&peer(2)));
    // Each period, with nothing else to ask, it is tried again...
    let keep = ViewSettings::default().failed_keep_ms;
    let period = ViewSettings::default().shuffle_interval_ms;
    let mut tries = 0;
    let mut t = 0;
    while t < keep + 3 * period {
        t = v.poll_timeout().unwrap().max(t);
        v.handle_timeout(t);
        for (endpoint, _) in dials(&drain(&mut v)) {
            assert_eq!(endpoint, peer(2).endpoint);
            tries += 1;
            v.dial_failed(&endpoint, true, t);
            drain(&mut v);
        }
        t += 1;
    }
    // ...until it has been failing for `failed_keep_ms`.
    let expected = keep / period;
    assert!(
        tries >= expected - 1 && tries <= expected + 1,
        "{tries} tries"
    );
}

#[test]
fn a_failed_peer_that_answers_again_becomes_active() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    v.link_down(2, 0);
    drain(&mut v);
    v.handle_timeout(v.poll_timeout().unwrap());
    let d = dials(&drain(&mut v));
    assert_eq!(d[0].0, peer(2).endpoint);
    v.link_up(40, &peer(2).endpoint, 1);
    drain(&mut v);
    v.handle_message(
        40,
        Message::NeighborReply {
            accepted: true,
            peer: peer(2),
        },
        2,
    );
    assert!(v.is_active(40));
}

#[test]
fn shuffles_exchange_samples_and_the_answer_replaces_what_was_sent() {
    let mut a = views(1);
    with_active(&mut a, &[2]);
    a.handle_timeout(a.poll_timeout().unwrap());
    let out = sent(&drain(&mut a));
    let (to, Message::Shuffle { ttl, peers }) = out[0].clone() else {
        panic!("{out:?}");
    };
    assert_eq!((to, ttl), (2, ViewSettings::default().passive_walk));
    assert_eq!(peers[0], peer(1), "the sender offers itself first");
    // At a node with one active link the walk ends: it answers on the link
    // it came by, with a sample of its passive view, and keeps the offer.
    let mut b = views(2);
    with_active(&mut b, &[1]);
    for p in 10..14 {
        know(&mut b, p);
    }
    drain(&mut b);
    b.handle_message(1, Message::Shuffle { ttl, peers }, 0);
    let out = sent(&drain(&mut b));
    let (back, Message::ShuffleReply(reply)) = out[0].clone() else {
        panic!("{out:?}");
    };
    assert_eq!(back, 1);
    assert!(!reply.is_empty());
    assert_eq!(b.stats.shuffles, 1);
    // Node 1 is active at b, so not kept as passive there.
    assert!(!b.passive().contains(&peer(1)));
    a.handle_message(2, Message::ShuffleReply(reply.clone()), 1);
    for p in reply {
        assert!(a.passive().contains(&p));
    }
}

#[test]
fn a_shuffle_with_hops_left_walks_on() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    v.handle_message(
        2,
        Message::Shuffle {
            ttl: 2,
            peers: vec![peer(9)],
        },
        0,
    );
    assert_eq!(
        sent(&drain(&mut v)),
        vec![(
            3,
            Message::Shuffle {
                ttl: 1,
                peers: vec![peer(9)]
            }
        )]
    );
    assert!(v.passive().is_empty());
}

#[test]
fn the_passive_view_never_exceeds_its_bound() {
    let mut v = views(1);
    with_active(&mut v, &[2]);
    for round in 0..20u64 {
        let peers: Vec<PeerEntry> = (0..64).map(|i| peer(100 + round * 64 + i)).collect();
        v.handle_message(2, Message::Shuffle { ttl: 0, peers }, 0);
        drain(&mut v);
        assert!(v.passive().len() <= ViewSettings::default().passive_max);
    }
    assert_eq!(v.passive().len(), ViewSettings::default().passive_max);
}

#[test]
fn a_disconnect_moves_a_live_peer_to_the_passive_view() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    v.handle_message(2, Message::Disconnect { alive: true }, 0);
    let out = drain(&mut v);
    assert_eq!(closed(&out)[0], 2);
    assert!(!v.is_active(2));
    assert!(v.passive().contains(&peer(2)));
    v.handle_message(3, Message::Disconnect { alive: false }, 0);
    assert!(!v.passive().contains(&peer(3)));
    assert_eq!(v.stats.disconnects, 2);
}

#[test]
fn two_links_to_one_peer_keep_the_one_the_smaller_id_dialled_on_both_sides() {
    // Nodes 1 and 2 dial each other at once: conn 10 (1 dialled it) at
    // node 1 is conn 20 at node 2; conn 11 (2 dialled it) at node 1 is 21
    // at node 2.
    let mut one = views(1);
    let mut two = views(2);
    know(&mut one, 5);
    know(&mut two, 5);
    drain(&mut one);
    drain(&mut two);
    // Node 1's request on conn 10, node 2's on conn 21.
    one.dialling.insert(
        peer(2).endpoint,
        Request {
            intent: Intent::Neighbor {
                peer: peer(2),
                high: true,
            },
            since: 0,
        },
    );
    one.link_up(10, &peer(2).endpoint, 0);
    two.dialling.insert(
        peer(1).endpoint,
        Request {
            intent: Intent::Neighbor {
                peer: peer(1),
                high: true,
            },
            since: 0,
        },
    );
    two.link_up(21, &peer(1).endpoint, 0);
    drain(&mut one);
    drain(&mut two);
    // Each accepts the other's request (inbound), then gets its answer.
    one.handle_message(
        11,
        Message::Neighbor {
            high: true,
            peer: peer(2),
        },
        0,
    );
    two.handle_message(
        20,
        Message::Neighbor {
            high: true,
            peer: peer(1),
        },
        0,
    );
    one.handle_message(
        10,
        Message::NeighborReply {
            accepted: true,
            peer: peer(2),
        },
        0,
    );
    two.handle_message(
        21,
        Message::NeighborReply {
            accepted: true,
            peer: peer(1),
        },
        0,
    );
    // The loser is told before it is closed (DISCONNECT, alive): the
    // other end may not have seen both links yet, and must not take the
    // close for a failure.
    let bye = Message::Disconnect { alive: true };
    let told = |acts: &[ViewAction], conn: ConnId| {
        sent(acts)
            .into_iter()
            .filter(|(c, m)| *c == conn && *m == bye)
            .count()
    };
    let acts = drain(&mut one);
    assert_eq!(told(&acts, 11), 1);
    assert_eq!(closed(&acts), vec![11]);
    let acts = drain(&mut two);
    assert_eq!(told(&acts, 21), 1);
    assert_eq!(closed(&acts), vec![21]);
    assert!(one.is_active(10) && two.is_active(20));
    assert_eq!(one.active_len(), 1);
    assert_eq!(two.active_len(), 1);
}

#[test]
fn a_peer_that_saw_one_of_two_links_when_the_other_end_dropped_it_keeps_the_other() {
    // Node 2 knows node 1 on conn 21 only (the NEIGHBOR on conn 20 is
    // still on its way) when node 1 says DISCONNECT on it and closes it.
    let mut two = views(2);
    two.handle_message(
        21,
        Message::Neighbor {
            high: true,
            peer: peer(1),
        },
        0,
    );
    drain(&mut two);
    two.handle_message(21, Message::Disconnect { alive: true }, 0);
    assert_eq!(closed(&drain(&mut two)), vec![21]);
    assert!(!two.is_active(21));
    // Then the request on the link node 1 kept.
    two.handle_message(
        20,
        Message::Neighbor {
            high: true,
            peer: peer(1),
        },
        0,
    );
    drain(&mut two);
    assert!(two.is_active(20));
    assert_eq!(two.active_len(), 1);
}

#[test]
fn requests_that_take_too_long_fail_and_an_alone_node_retries_its_contacts() {
    let mut v = views(1);
    v.join("tcp://10.0.0.2:5670", None, 0);
    drain(&mut v);
    v.link_up(7, "tcp://10.0.0.2:5670", 0);
    drain(&mut v);
    let t = ViewSettings::default().request_timeout_ms;
    assert_eq!(v.poll_timeout(), Some(t));
    v.handle_timeout(t);
    assert_eq!(closed(&drain(&mut v)), vec![7]);
    // Alone with a contact: dialled again at the next period.
    v.handle_timeout(v.poll_timeout().unwrap());
    assert_eq!(
        dials(&drain(&mut v)),
        vec![("tcp://10.0.0.2:5670".into(), Intent::Join { key: None })]
    );
}

#[test]
fn a_connection_joins_once_and_names_one_peer() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    v.handle_message(9, Message::Join(peer(4)), 0);
    assert_eq!(sent(&drain(&mut v)).len(), 5);
    // A second JOIN on it (a flood of them) sends no forward joins.
    for p in 5..50 {
        v.handle_message(9, Message::Join(peer(p)), 0);
        v.handle_message(
            9,
            Message::Neighbor {
                high: true,
                peer: peer(p),
            },
            0,
        );
    }
    assert!(drain(&mut v).is_empty());
    assert_eq!(v.active_len(), 3);
    assert_eq!(v.stats.ignored, 90);
}

#[test]
fn a_reply_nobody_asked_for_and_a_join_from_itself_are_ignored() {
    let mut v = views(1);
    v.handle_message(
        3,
        Message::NeighborReply {
            accepted: true,
            peer: peer(3),
        },
        0,
    );
    assert_eq!(v.active_len(), 0);
    v.handle_message(4, Message::Join(peer(1)), 0);
    assert_eq!(closed(&drain(&mut v)), vec![4]);
    assert_eq!(v.active_len(), 0);
    assert_eq!(v.stats.ignored, 2);
}

#[test]
fn anchors_flow_toward_the_smallest_and_on_to_the_other_active_peers() {
    let mut v = views(50);
    assert_eq!(v.anchor(), 50);
    v.handle_message(
        7,
        Message::Neighbor {
            high: true,
            peer: peer(7),
        },
        0,
    );
    // A new active link: our anchor after the reply.
    assert_eq!(sent(&drain(&mut v)).last(), Some(&(7, Message::Anchor(50))));
    for p in [2, 3] {
        let high = true;
        let peer = peer(p);
        v.handle_message(p, Message::Neighbor { high, peer }, 0);
    }
    drain(&mut v);
    v.handle_message(7, Message::Anchor(4), 0);
    assert_eq!(v.anchor(), 4);
    let mut s = sent(&drain(&mut v));
    s.sort_by_key(|m| m.0);
    assert_eq!(s, [(2, Message::Anchor(4)), (3, Message::Anchor(4))]);
    // A larger one, or one from a link that is not active: nothing.
    v.handle_message(2, Message::Anchor(9), 0);
    v.handle_message(99, Message::Anchor(1), 0);
    assert!(drain(&mut v).is_empty());
    assert_eq!((v.anchor(), v.stats.ignored), (4, 1));
    // Alone again: its own anchor.
    for conn in [2, 3, 7] {
        v.link_down(conn, 0);
    }
    assert_eq!(v.anchor(), 50);
}

#[test]
fn a_smaller_anchor_heard_of_is_joined_after_a_wait_once_per_period() {
    let mut v = views(50);
    with_active(&mut v, &[2, 3]);
    // Our part's anchor is ours: a neighbour says so (60 is larger).
    v.handle_message(2, Message::Anchor(60), 0);
    v.heard_anchor(peer(9), 4, 0);
    assert!(dials(&drain(&mut v)).is_empty());
    let due = v.poll_timeout().unwrap();
    assert!((MERGE_WAIT_MS..3 * MERGE_WAIT_MS).contains(&due), "{due}");
    v.handle_timeout(due - 1);
    assert!(dials(&drain(&mut v)).is_empty());
    v.handle_timeout(due);
    assert_eq!(
        dials(&drain(&mut v)),
        [(peer(9).endpoint, Intent::Join { key: None })]
    );
    assert_eq!(v.stats.merges, 1);
    // The next one waits for the next period.
    let period = ViewSettings::default().shuffle_interval_ms;
    v.heard_anchor(peer(8), 1, due + 1);
    v.handle_timeout(due + 3 * MERGE_WAIT_MS);
    assert!(dials(&drain(&mut v)).is_empty());
    v.handle_timeout(due + period - 1);
    let to_8 = |a: &[ViewAction]| dials(a).into_iter().any(|(e, _)| e == peer(8).endpoint);
    assert!(!to_8(&drain(&mut v)));
    v.handle_timeout(due + period);
    assert!(to_8(&drain(&mut v)));
    assert_eq!(v.stats.merges, 2);
}

#[test]
fn no_merge_when_the_smaller_anchor_arrives_through_the_own_links_or_is_no_smaller() {
    let mut v = views(50);
    with_active(&mut v, &[2, 3]);
    v.handle_message(2, Message::Anchor(60), 0);
    // Ours or larger, a neighbour's, our own: never.
    v.heard_anchor(peer(9), 50, 0);
    v.heard_anchor(peer(9), 70, 0);
    v.heard_anchor(peer(2), 4, 0);
    v.heard_anchor(peer(50), 4, 0);
    v.handle_timeout(3 * MERGE_WAIT_MS);
    assert!(dials(&drain(&mut v)).is_empty());
    // News of our own part, faster than the wait.
    v.heard_anchor(peer(9), 4, 0);
    v.handle_message(2, Message::Anchor(4), 500);
    v.handle_timeout(3 * MERGE_WAIT_MS);
    assert!(dials(&drain(&mut v)).is_empty());
    assert_eq!(v.stats.merges, 0);
}

#[test]
fn an_alone_node_joins_through_a_node_it_hears_an_anchor_of() {
    let mut v = views(50);
    v.heard_anchor(peer(9), 4, 0);
    assert_eq!(
        dials(&drain(&mut v)),
        [(peer(9).endpoint, Intent::Join { key: None })]
    );
    assert_eq!(v.stats.merges, 0);
}

#[test]
fn a_node_whose_part_has_not_told_its_anchor_yet_makes_no_merge() {
    let mut v = views(50);
    with_active(&mut v, &[2, 3]);
    // Just linked: the smaller anchor heard of may be our new part's.
    v.heard_anchor(peer(9), 4, 0);
    v.handle_timeout(3 * MERGE_WAIT_MS);
    assert!(dials(&drain(&mut v)).is_empty());
    // Told (a larger one): now a smaller one is another part.
    v.handle_message(3, Message::Anchor(70), 10);
    v.heard_anchor(peer(9), 4, 20);
    v.handle_timeout(4 * MERGE_WAIT_MS);
    assert_eq!(
        dials(&drain(&mut v)),
        [(peer(9).endpoint, Intent::Join { key: None })]
    );
    // Alone again: untold again.
    for conn in [2, 3] {
        v.link_down(conn, 5_000);
    }
    drain(&mut v);
    with_active(&mut v, &[5]);
    v.heard_anchor(peer(8), 1, 20_000);
    v.handle_timeout(20_000 + 3 * MERGE_WAIT_MS);
    assert!(!dials(&drain(&mut v))
        .iter()
        .any(|(e, _)| *e == peer(8).endpoint));
}

#[test]
fn a_node_that_lost_every_link_asks_several_passive_peers_at_once() {
    let mut v = views(1);
    with_active(&mut v, &[2, 3]);
    for p in 10..20 {
        v.candidate(peer(p), 0);
    }
    // Room for three more, one request at a time while it has links.
    let first = dials(&drain(&mut v));
    assert_eq!(first.len(), 1, "{first:?}");
    // The request hangs; then both links are lost at once (the node was
    // paused, say): it asks as many peers as it has room for, at once.
    v.link_down(2, 100);
    v.link_down(3, 100);
    let more = dials(&drain(&mut v));
    assert_eq!(more.len(), 4, "{more:?}");
    assert!(more
        .iter()
        .all(|(_, i)| matches!(i, Intent::Neighbor { high: true, .. })));
}

fn addrs(hosts: std::ops::RangeInclusive<u32>) -> Vec<String> {
    hosts
        .map(|i| format!("tcp://10.1.{}.{}:5670", i / 256, i % 256))
        .collect()
}

#[test]
fn a_dns_seed_is_joined_through_each_address_and_a_new_one_after_re_resolution() {
    let mut v = views(1);
    let seed = "dns:seeds.test:5670";
    v.seed_resolved(seed, &addrs(2..=4), None, 0);
    let first: Vec<String> = dials(&drain(&mut v)).into_iter().map(|d| d.0).collect();
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, addrs(2..=4));
    assert_eq!(v.stats.seed_joins, 3);
    // The same answer again: nothing new to join.
    v.seed_resolved(seed, &addrs(2..=4), None, 100);
    assert!(dials(&drain(&mut v)).is_empty());
    // A record added: only it is joined, with the seed's key.
    let key = Some([7u8; 32]);
    v.seed_resolved(seed, &addrs(2..=5), key, 200);
    assert_eq!(
        dials(&drain(&mut v)),
        vec![(addrs(5..=5)[0].clone(), Intent::Join { key })]
    );
    assert_eq!(v.seed_endpoints(seed).len(), 4);
}

#[test]
fn a_dns_answer_with_hundreds_of_records_is_bounded() {
    let mut v = views(1);
    let s = ViewSettings::default();
    let answer = addrs(1..=600);
    v.seed_resolved("dns:many.test:1", &answer, None, 0);
    let d = dials(&drain(&mut v));
    assert_eq!(d.len(), s.active_max, "joins per answer");
    let kept = v.seed_endpoints("dns:many.test:1").to_vec();
    assert_eq!(kept.len(), s.active_max + s.passive_max);
    assert_eq!(v.stats.seed_dropped, (600 - kept.len()) as u64);
    // The next answer keeps what was kept, and joins none of the rest it
    // already holds.
    v.seed_resolved("dns:many.test:1", &answer, None, 10);
    let mut again = v.seed_endpoints("dns:many.test:1").to_vec();
    let mut kept = kept;
    again.sort();
    kept.sort();
    assert_eq!(again, kept);
    assert!(dials(&drain(&mut v)).is_empty());
}

#[test]
fn a_dns_answer_skips_the_own_endpoint_and_undialable_ones_and_an_empty_one_keeps_the_last() {
    let mut v = views(1);
    let answer = vec![
        "tcp://10.0.0.1:5670".to_string(), // ourselves (peer(1)'s endpoint)
        "tcp://0.0.0.0:5670".to_string(),
        "tcp://10.0.0.9:5670".to_string(),
    ];
    v.seed_resolved("dns:s:5670", &answer, None, 0);
    assert_eq!(
        dials(&drain(&mut v)),
        vec![("tcp://10.0.0.9:5670".into(), Intent::Join { key: None })]
    );
    assert_eq!(v.stats.seed_dropped, 2);
    v.seed_resolved("dns:s:5670", &[], None, 10);
    assert_eq!(v.seed_endpoints("dns:s:5670"), ["tcp://10.0.0.9:5670"]);
}

#[test]
fn an_alone_node_dials_its_seed_addresses_again() {
    let mut v = views(1);
    v.seed_resolved("dns:s:5670", &addrs(2..=3), None, 0);
    drain(&mut v);
    let t = ViewSettings::default().request_timeout_ms;
    v.handle_timeout(t); // both dials time out
    drain(&mut v);
    v.handle_timeout(v.poll_timeout().unwrap());
    let mut again: Vec<String> = dials(&drain(&mut v)).into_iter().map(|d| d.0).collect();
    again.sort();
    assert_eq!(again, addrs(2..=3));
}

#[test]
fn a_cut_off_node_whose_passive_view_names_its_own_endpoint_asks_the_others_and_stops() {
    // A forged entry under another id but this node's own endpoint: it is
    // never dialled, and it does not keep the node asking for ever (the
    // node once recursed on it until its stack overflowed).
    let mut v = views(1);
    v.add_passive(
        PeerEntry {
            id: 9,
            endpoint: peer(1).endpoint,
            key: None,
        },
        &[],
    );
    know(&mut v, 7);
    drain(&mut v);
    v.fill(0);
    let asked: Vec<String> = dials(&drain(&mut v)).into_iter().map(|(e, _)| e).collect();
    assert_eq!(asked, vec![peer(7).endpoint]);
}

fn keyed(id: u64, key: u8) -> PeerEntry {
    PeerEntry {
        key: Some([key; 32]),
        ..peer(id)
    }
}

fn passive_key(v: &Views, id: u64) -> Option<[u8; 32]> {
    v.passive().iter().find(|p| p.id == id).and_then(|p| p.key)
}

/// A node's own word of its new key (its beacon here) replaces the key
/// held for it, and a shuffle sample taken before its rotation, still
/// carrying the old key, does not bring the old key back.
#[test]
fn a_peer_entry_with_a_new_key_for_a_known_id_replaces_the_key() {
    let mut v = views(1);
    with_active(&mut v, &[3, 4, 5, 6, 7]); // full: candidates stay passive
    v.add_passive(keyed(2, 0xA0), &[]);
    v.candidate(keyed(2, 0xB0), 10);
    assert_eq!(passive_key(&v, 2), Some([0xB0; 32]));
    assert_eq!(v.stats.rekeys, 1);
    v.handle_message(
        3,
        Message::Shuffle {
            ttl: 0,
            peers: vec![keyed(2, 0xA0), keyed(8, 0xA8)],
        },
        20,
    );
    assert_eq!(
        passive_key(&v, 2),
        Some([0xB0; 32]),
        "hearsay of the old key"
    );
    assert_eq!(passive_key(&v, 8), Some([0xA8; 32]));
    // A key it has not moved away from is heard as before (latest wins).
    v.handle_message(
        4,
        Message::Shuffle {
            ttl: 0,
            peers: vec![keyed(2, 0xC0)],
        },
        30,
    );
    assert_eq!(passive_key(&v, 2), Some([0xC0; 32]));
}

/// A node that switches its primary key tells its active peers at once
/// (an unrequested NEIGHBOR-REPLY carrying its entry); a peer takes the
/// key into its active entry, and dials it when the link is lost.
#[test]
fn a_rotated_key_is_re_announced_to_active_peers_and_taken_into_their_entries() {
    let mut x = views(2);
    with_active(&mut x, &[3, 4]);
    x.announce_key(Some([0xB2; 32]));
    let told = sent(&drain(&mut x));
    assert_eq!(told.len(), 2, "{told:?}");
    for (conn, msg) in &told {
        assert!([3, 4].contains(conn));
        assert_eq!(
            *msg,
            Message::NeighborReply {
                accepted: true,
                peer: keyed(2, 0xB2)
            }
        );
    }
    x.announce_key(Some([0xB2; 32]));
    assert!(
        drain(&mut x).is_empty(),
        "the same key is not announced again"
    );

    // Peer 3 has 2 active on link 2 with its old key.
    let mut v = views(3);
    v.handle_message(
        2,
        Message::Neighbor {
            high: true,
            peer: keyed(2, 0xA2),
        },
        0,
    );
    drain(&mut v);
    v.handle_message(2, told[0].1.clone(), 10);
    assert!(drain(&mut v).is_empty(), "no answer to a re-announcement");
    assert_eq!(v.stats.rekeys, 1);
    assert_eq!(v.stats.ignored, 0);
    let active: Vec<PeerEntry> = v.active().map(|(_, p)| p.clone()).collect();
    assert_eq!(active, vec![keyed(2, 0xB2)]);
    // The link fails: 2 is remembered and tried again with its new key.
    assert!(v.link_down(2, 20));
    v.handle_timeout(20 + ViewSettings::default().shuffle_interval_ms);
    let tried = dials(&drain(&mut v));
    assert!(
        tried
            .iter()
            .any(|(_, i)| matches!(i, Intent::Neighbor { peer, .. } if *peer == keyed(2, 0xB2))),
        "{tried:?}"
    );
    // An unrequested reply on a link that is not that node's is ignored.
    let mut w = views(4);
    w.handle_message(5, told[0].1.clone(), 0);
    assert_eq!(w.stats.ignored, 1);
    assert_eq!(w.active_len(), 0);
}

/// A neighbour dial with a key the peer has retired fails in its
/// handshake: the peer is alive, so no one is accused, and it is not
/// lost: its next beacon (or entry) with the new key brings it back, and
/// it is dialled with that key.
#[test]
fn a_stale_key_dial_accuses_no_one_and_the_new_key_brings_the_peer_back() {
    let mut v = views(1);
    with_active(&mut v, &[3]);
    v.add_passive(keyed(2, 0xA2), &[]);
    v.handle_timeout(ViewSettings::default().shuffle_interval_ms);
    let asked = dials(&drain(&mut v));
    let stale = asked
        .iter()
        .find(|(e, _)| e == "tcp://10.0.0.2:5670")
        .expect("a neighbour dial of 2");
    assert!(matches!(&stale.1, Intent::Neighbor { peer, .. } if peer.key == Some([0xA2; 32])));
    // The handshake is refused: not "nobody there".
    v.dial_failed("tcp://10.0.0.2:5670", false, 11_000);
    let after = drain(&mut v);
    assert!(
        !after
            .iter()
            .any(|a| matches!(a, ViewAction::Unreachable { .. })),
        "{after:?}"
    );
    v.candidate(keyed(2, 0xB2), 12_000);
    let again = dials(&drain(&mut v));
    assert!(
        again.iter().any(|(e, i)| e == "tcp://10.0.0.2:5670"
            && matches!(i, Intent::Neighbor { peer, .. } if peer.key == Some([0xB2; 32]))),
        "{again:?}"
    );
}
