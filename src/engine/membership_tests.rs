//! Transition tests of the membership state machine: a few machines joined
//! by in-memory links, messages delivered at once, time passed by hand.

use super::*;

/// Machines by index; a link is a pair of connection ids, one per end.
struct Net {
    nodes: Vec<Membership>,
    /// (node, conn) -> (node, conn) at the other end.
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    next_conn: ConnId,
    now: u64,
    /// Nodes that receive nothing (crashed).
    dead: Vec<bool>,
}

fn settings() -> MembershipSettings {
    MembershipSettings {
        batch_ms: 0,
        ..MembershipSettings::default()
    }
}

impl Net {
    fn new(n: usize) -> Net {
        let nodes = (0..n)
            .map(|i| {
                let mut m = Membership::new(100 + i as u64, &format!("n{i}"), settings());
                m.start(1_000 + i as u64);
                m.set_events(true);
                m
            })
            .collect();
        Net {
            nodes,
            links: BTreeMap::new(),
            next_conn: 1,
            now: 10_000,
            dead: vec![false; n],
        }
    }

    fn id(&self, i: usize) -> u64 {
        self.nodes[i].me().id
    }

    fn link(&mut self, a: usize, b: usize) -> (ConnId, ConnId) {
        let (ca, cb) = (self.next_conn, self.next_conn + 1);
        self.next_conn += 2;
        self.links.insert((a, ca), (b, cb));
        self.links.insert((b, cb), (a, ca));
        self.nodes[a].link_up(ca, self.now);
        self.nodes[b].link_up(cb, self.now);
        self.run();
        (ca, cb)
    }

    fn conn_to(&self, a: usize, b: usize) -> ConnId {
        self.links
            .iter()
            .find(|(&(x, _), &(y, _))| x == a && y == b)
            .map(|(&(_, c), _)| c)
            .expect("linked")
    }

    /// The link between `a` and `b` closes; `lost` at each end as given
    /// (lost: that end timed the other out).
    fn cut(&mut self, a: usize, b: usize, lost_a: bool, lost_b: bool) {
        let end = |lost| {
            if lost {
                LinkEnd::Silent
            } else {
                LinkEnd::Chosen
            }
        };
        self.cut_as(a, b, end(lost_a), end(lost_b));
    }

    fn cut_as(&mut self, a: usize, b: usize, end_a: LinkEnd, end_b: LinkEnd) {
        let ca = self.conn_to(a, b);
        let (_, cb) = self.links.remove(&(a, ca)).unwrap();
        self.links.remove(&(b, cb));
        if !self.dead[a] {
            self.nodes[a].link_down(ca, end_a, self.now);
        }
        if !self.dead[b] {
            self.nodes[b].link_down(cb, end_b, self.now);
        }
        self.run();
    }

    /// Node `i` crashes: every link it had is reset at the other end.
    fn crash(&mut self, i: usize) {
        self.dead[i] = true;
        let peers: Vec<usize> = self
            .links
            .iter()
            .filter(|(&(x, _), _)| x == i)
            .map(|(_, &(y, _))| y)
            .collect();
        for p in peers {
            self.cut_as(i, p, LinkEnd::Chosen, LinkEnd::Reset);
        }
    }

    /// Delivers every message until none is left (flushing batches).
    fn run(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                if self.dead[i] {
                    while self.nodes[i].poll_send().is_some() {}
                    continue;
                }
                if self.nodes[i].flush_at.is_some() {
                    self.nodes[i].flush();
                }
                while let Some((conn, msg)) = self.nodes[i].poll_send() {
                    moved = true;
                    if let Some(&(j, cj)) = self.links.get(&(i, conn)) {
                        if !self.dead[j] {
                            self.nodes[j].handle_message(cj, msg, self.now);
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("messages kept coming");
    }

    /// Advances time in ticks, delivering as it goes.
    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + TICK_MS).min(end);
            for i in 0..self.nodes.len() {
                if !self.dead[i] {
                    self.nodes[i].handle_timeout(self.now);
                }
            }
            self.run();
        }
    }

    /// Node `at` dialled `of` and found no one there.
    fn unreachable(&mut self, at: usize, of: usize) {
        let (id, now) = (self.id(of), self.now);
        self.nodes[at].unreachable(id, now);
        self.run();
    }

    fn state(&self, at: usize, of: usize) -> Option<MemberState> {
        self.nodes[at].member(self.id(of)).map(|m| m.record.state)
    }

    fn events(&mut self, i: usize) -> Vec<(u64, MemberState)> {
        std::iter::from_fn(|| self.nodes[i].poll_event())
            .map(|e| (e.id, e.state))
            .collect()
    }

    /// Node 4 linked to each of 0 to 3 (all four observe it), and 0 to 3
    /// in a line.
    fn hub_and_line() -> Net {
        let mut net = Net::new(5);
        for i in 0..4 {
            net.link(i, 4);
        }
        for i in 1..4 {
            net.link(i - 1, i);
        }
        net
    }

    fn line(n: usize) -> Net {
        let mut net = Net::new(n);
        for i in 1..n {
            net.link(i - 1, i);
        }
        net
    }
}

#[test]
fn linked_nodes_learn_each_other_and_every_member_beyond() {
    let mut net = Net::line(4);
    for a in 0..4 {
        for b in 0..4 {
            if a != b {
                assert_eq!(net.state(a, b), Some(MemberState::Alive), "{a} of {b}");
            }
        }
        assert_eq!(net.nodes[a].counts(), (3, 0, 0));
    }
    let ids: Vec<u64> = net.events(0).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 3, "one join event per other member: {ids:?}");
    let m = net.nodes[3].member(net.id(0)).unwrap();
    assert_eq!(m.record.name(), "n0");
    assert_eq!(m.record.started, 1_000);
}

#[test]
fn a_link_lost_makes_its_peer_suspect_everywhere_and_the_suspect_refutes() {
    let mut net = Net::line(3);
    let before = net.nodes[1].me().incarnation;
    // 0 loses its link to 1, but 1 is alive (and still linked to 2).
    net.cut(0, 1, true, false);
    // 0 suspects 1; through nobody yet (0 is alone now) ...
    assert_eq!(net.state(0, 1), Some(MemberState::Suspect));
    // ... until a link comes back: the digest brings the suspicion to 1,
    // which refutes at a higher incarnation.
    net.link(0, 2);
    assert_eq!(net.nodes[1].me().incarnation, before + 1);
    assert_eq!(net.nodes[1].stats().refutations, 1);
    for at in [0, 2] {
        assert_eq!(net.state(at, 1), Some(MemberState::Alive), "at {at}");
    }
    net.advance(3 * settings().suspect_max_ms);
    assert_eq!(
        net.state(0, 1),
        Some(MemberState::Alive),
        "no failure later"
    );
    assert_eq!(net.nodes[0].stats().failures, 0);
}

/// Found by the chaos harness: a node that dials a neighbour request
/// counts the link as started when the answer comes, and the peer's
/// digest, sent when its end started, comes before. The node still knows
/// who is at the other end, and accuses it when the link is lost (it did
/// not: a crashed node was accused by fewer observers, failed later, and
/// one whose every link was dialled by its neighbours never).
#[test]
fn a_link_whose_peer_spoke_before_it_started_here_still_accuses_it() {
    let mut net = Net::new(2);
    let (ca, cb) = (net.next_conn, net.next_conn + 1);
    net.next_conn += 2;
    net.links.insert((0, ca), (1, cb));
    net.links.insert((1, cb), (0, ca));
    // 1's end starts first: its digest reaches 0 before 0's end starts.
    net.nodes[1].link_up(cb, net.now);
    net.run();
    assert_eq!(net.nodes[0].early.get(&ca), Some(&net.id(1)));
    net.nodes[0].link_up(ca, net.now);
    net.run();
    assert!(net.nodes[0].early.is_empty());
    net.crash(1);
    assert_eq!(net.state(0, 1), Some(MemberState::Suspect));
    // A connection that closes before it carried membership leaves nothing.
    let me = net.nodes[1].me().clone();
    let digest = Message::Digest {
        reply: false,
        me,
        bits: 0,
        hashes: vec![0],
    };
    net.nodes[0].handle_message(77, digest, net.now);
    assert_eq!(net.nodes[0].early.len(), 1);
    net.nodes[0].link_down(77, LinkEnd::Reset, net.now);
    assert!(net.nodes[0].early.is_empty());
}

#[test]
fn a_crashed_member_is_declared_failed_after_the_confirmed_wait() {
    let mut net = Net::hub_and_line();
    net.events(0);
    net.crash(4);
    for i in 0..4 {
        assert_eq!(net.state(i, 4), Some(MemberState::Suspect), "at {i}");
    }
    let s = settings();
    net.advance(s.suspect_min_ms - TICK_MS);
    assert_eq!(net.state(0, 4), Some(MemberState::Suspect));
    net.advance(TICK_MS);
    for i in 0..4 {
        assert_eq!(net.state(i, 4), Some(MemberState::Failed), "at {i}");
    }
    assert_eq!(
        net.events(0),
        vec![
            (net.id(4), MemberState::Suspect),
            (net.id(4), MemberState::Failed)
        ]
    );
    assert_eq!(net.nodes[0].counts(), (3, 0, 1));
}

#[test]
fn one_accuser_waits_the_longest_and_confirmations_shorten_it() {
    let s = settings();
    let mk = |accusers: usize| Suspicion {
        since: 0,
        accusers: (0..accusers as u64).collect(),
        observer: true,
        reset_seen: true,
        fallback: 0,
        deadline: 0,
    };
    assert_eq!(deadline(&s, &mk(1)), s.suspect_max_ms);
    let two = deadline(&s, &mk(2));
    let three = deadline(&s, &mk(3));
    assert!(s.suspect_min_ms < three && three < two && two < s.suspect_max_ms);
    assert_eq!(deadline(&s, &mk(4)), s.suspect_min_ms);
    assert_eq!(deadline(&s, &mk(8)), s.suspect_min_ms);
    let waiting = Suspicion {
        observer: false,
        fallback: 5,
        ..mk(4)
    };
    assert_eq!(deadline(&s, &waiting), s.suspect_min_ms + 5);
    // An accuser that only saw silence waits at least twice the minimum.
    let silent = Suspicion {
        reset_seen: false,
        ..mk(4)
    };
    assert_eq!(deadline(&s, &silent), 2 * s.suspect_min_ms);

    // In a network: a member that only one observer lost, and that cannot
    // refute (it is cut off), is failed after the longest wait.
    let mut net = Net::line(3);
    net.dead[2] = true; // 2 hears nothing more, says nothing more
    net.cut(1, 2, true, false);
    net.advance(s.suspect_max_ms - TICK_MS);
    assert_eq!(net.state(0, 2), Some(MemberState::Suspect));
    net.advance(TICK_MS);
    assert_eq!(net.state(0, 2), Some(MemberState::Failed));
    assert_eq!(net.nodes[1].stats().failures, 1, "the accuser declared it");
}

#[test]
fn a_member_that_leaves_is_left_everywhere_and_never_suspected() {
    let mut net = Net::line(3);
    net.events(0);
    net.nodes[2].leave(net.now);
    net.run();
    assert_eq!(net.state(0, 2), Some(MemberState::Left));
    assert_eq!(net.state(1, 2), Some(MemberState::Left));
    assert_eq!(net.events(0), vec![(net.id(2), MemberState::Left)]);
    // Its links then close (reset from its side): no suspicion.
    net.cut(2, 1, false, true);
    net.advance(3 * settings().suspect_max_ms);
    assert_eq!(net.state(0, 2), Some(MemberState::Left));
    assert_eq!(net.nodes[1].stats().suspicions, 0);
    // A left member is listed for `gone-keep`, then forgotten, and its
    // id is refused at that incarnation.
    net.advance(settings().gone_keep_ms);
    assert_eq!(net.state(0, 2), None);
    assert_eq!(net.nodes[0].counts(), (1, 0, 0));
    let old = MemberRecord {
        state: MemberState::Alive,
        ..net.nodes[2].me().clone()
    };
    net.nodes[0].handle_message(1, Message::Members(vec![old]), net.now);
    assert_eq!(
        net.state(0, 2),
        None,
        "an old record does not bring it back"
    );
    assert_eq!(net.nodes[0].stats().records_refused, 1);
}

#[test]
fn a_node_that_was_stalled_accuses_nobody_for_what_it_missed() {
    let mut net = Net::line(2);
    net.advance(TICK_MS);
    // Node 0 is paused for 2 s: no tick runs; then the link to 1 is found
    // closed (1 timed it out) before its first tick.
    for _ in 0..8 {
        net.now += TICK_MS;
        net.nodes[1].handle_timeout(net.now);
    }
    net.cut(0, 1, true, true);
    assert_eq!(net.state(0, 1), Some(MemberState::Alive));
    assert_eq!(net.nodes[0].stats().suspicions_withheld, 1);
    assert_eq!(net.nodes[0].stats().stalls, 1);
    // Node 1 was not stalled: it suspects 0.
    assert_eq!(net.state(1, 0), Some(MemberState::Suspect));
}

#[test]
fn a_restart_under_the_same_name_takes_the_place_of_the_former_self() {
    let mut net = Net::line(3);
    let old = net.nodes[2].me().clone();
    net.crash(2);
    net.advance(settings().suspect_max_ms + TICK_MS);
    assert_eq!(net.state(0, 2), Some(MemberState::Failed));
    net.events(0);
    // The process starts again: a new id, the same name, later.
    let mut again = Membership::new(999, "n2", settings());
    again.start(old.started + 60_000);
    again.set_events(true);
    net.nodes[2] = again;
    net.dead[2] = false;
    net.link(1, 2);
    assert_eq!(
        net.nodes[0].member(999).map(|m| m.record.state),
        Some(MemberState::Alive)
    );
    assert!(net.nodes[0].member(old.id).is_none(), "no ghost");
    assert_eq!(net.nodes[0].stats().replaced, 1);
    assert_eq!(net.events(0), vec![(999, MemberState::Alive)]);
    // Records of the former self are refused from now on.
    let stale = MemberRecord {
        state: MemberState::Suspect,
        by: 101,
        ..old.clone()
    };
    net.nodes[0].handle_message(1, Message::Members(vec![stale]), net.now);
    assert!(net.nodes[0].member(old.id).is_none());
    // An alive member of the same name elsewhere is a different node.
    let other = MemberRecord {
        id: 555,
        incarnation: 0,
        state: MemberState::Alive,
        by: 555,
        started: old.started + 120_000,
        name: "n2".into(),
        endpoint: "tcp://10.0.0.9:1".into(),
    };
    net.nodes[0].handle_message(1, Message::Members(vec![other]), net.now);
    assert!(net.nodes[0].member(999).is_some() && net.nodes[0].member(555).is_some());
}

#[test]
fn digests_bring_what_a_node_missed_and_only_that() {
    let mut net = Net::new(4);
    // Two pairs that formed apart.
    net.link(0, 1);
    net.link(2, 3);
    assert_eq!(net.state(0, 2), None);
    let sent = net.nodes[1].stats().records_out;
    net.link(1, 2);
    for a in 0..4 {
        assert_eq!(net.nodes[a].counts(), (3, 0, 0), "at {a}");
    }
    // 1 sent 0 what 2 brought, and 2 its own table's other half.
    assert!(net.nodes[1].stats().records_out >= sent + 3);
    // Once alike, a periodic comparison sends no record.
    let out: u64 = net.nodes.iter().map(|n| n.stats().records_out).sum();
    net.advance(settings().sync_interval_ms + TICK_MS);
    let digests: u64 = net.nodes.iter().map(|n| n.stats().digests_sent).sum();
    assert!(digests > 0);
    let after: u64 = net.nodes.iter().map(|n| n.stats().records_out).sum();
    assert_eq!(after, out, "alike tables exchange no records");
}

#[test]
fn a_digest_folds_to_the_size_the_sender_chose() {
    let mut m = Membership::new(1, "a", settings());
    for id in 2..300u64 {
        m.handle_message(
            0,
            Message::Members(vec![MemberRecord {
                id,
                incarnation: 0,
                state: MemberState::Alive,
                by: id,
                started: 1,
                name: format!("m{id}"),
                endpoint: String::new(),
            }]),
            0,
        );
    }
    assert_eq!(m.digest_bits(), 6, "about eight records a bucket");
    let full = m.folded(MAX_DIGEST_BITS);
    for bits in 0..=MAX_DIGEST_BITS {
        let f = m.folded(bits);
        assert_eq!(f.len(), 1 << bits);
        assert_eq!(
            f.iter().fold(0, |a, h| a ^ h),
            full.iter().fold(0, |a, h| a ^ h),
            "folding keeps the whole"
        );
    }
}

#[test]
fn records_beyond_the_table_bound_are_dropped_and_counted() {
    let mut m = Membership::new(
        1,
        "a",
        MembershipSettings {
            max_members: 10,
            ..settings()
        },
    );
    let records: Vec<MemberRecord> = (2..50u64)
        .map(|id| MemberRecord {
            id,
            incarnation: 0,
            state: MemberState::Alive,
            by: id,
            started: 1,
            name: String::new(),
            endpoint: String::new(),
        })
        .collect();
    m.handle_message(0, Message::Members(records), 0);
    assert_eq!(m.members().count(), 10);
    assert_eq!(m.stats().records_dropped, 38);
}

#[test]
fn stale_and_repeated_records_change_nothing_and_go_no_further() {
    let mut net = Net::line(3);
    let rec = net.nodes[2].me().clone();
    let out: u64 = net.nodes[0].stats().records_out;
    for _ in 0..5 {
        net.nodes[0].handle_message(1, Message::Members(vec![rec.clone()]), net.now);
    }
    net.run();
    assert_eq!(net.nodes[0].stats().records_out, out, "nothing spread");
    assert!(net.nodes[0].stats().records_stale >= 5);
    // A suspicion at an old incarnation is stale too.
    net.nodes[2].me.incarnation = 4;
    let fresh = net.nodes[2].me().clone();
    net.nodes[0].handle_message(1, Message::Members(vec![fresh]), net.now);
    let old = MemberRecord {
        incarnation: 3,
        state: MemberState::Suspect,
        by: 777,
        ..rec
    };
    net.nodes[0].handle_message(1, Message::Members(vec![old]), net.now);
    assert_eq!(net.state(0, 2), Some(MemberState::Alive));
}

#[test]
fn nobody_declares_a_failure_whose_accusers_died_until_the_fallback() {
    let mut net = Net::line(4);
    // 2 accuses 3, then 2 dies before declaring; 0 and 1 only heard.
    net.dead[3] = true;
    net.cut(2, 3, true, false);
    assert_eq!(net.state(0, 3), Some(MemberState::Suspect));
    net.crash(2);
    let s = settings();
    net.advance(s.suspect_max_ms + TICK_MS);
    assert_eq!(net.state(0, 3), Some(MemberState::Suspect), "not yet");
    net.advance(2 * s.suspect_max_ms + TICK_MS);
    assert_eq!(net.state(0, 3), Some(MemberState::Failed));
    assert_eq!(net.state(1, 3), Some(MemberState::Failed));
}

#[test]
fn a_node_that_lost_its_only_link_still_declares_the_failure() {
    // A hub and one client; the client is killed: the hub has no link
    // left, and its suspicion must still run out (its clock stopped with
    // its last link, and the killed writer's ephemeral tuples stayed).
    let mut net = Net::line(2);
    net.crash(1);
    assert_eq!(net.state(0, 1), Some(MemberState::Suspect));
    net.advance(settings().suspect_max_ms + TICK_MS);
    assert_eq!(net.state(0, 1), Some(MemberState::Failed));
    // Then it keeps ticking only while it has something to forget.
    assert!(net.nodes[0].poll_timeout().is_some());
    net.advance(settings().gone_keep_ms + TICK_MS);
    assert_eq!(net.state(0, 1), None);
    assert_eq!(net.nodes[0].poll_timeout(), None);
}

mod forged {
    use super::*;
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = MemberRecord> {
        (1u64..40, 0u64..6, 1u8..=4, 1u64..40, 0u64..5, "[a-c]{0,2}").prop_map(
            |(id, incarnation, state, by, started, name)| {
                let state = match state {
                    1 => MemberState::Alive,
                    2 => MemberState::Suspect,
                    3 => MemberState::Failed,
                    _ => MemberState::Left,
                };
                let by = if matches!(state, MemberState::Alive | MemberState::Left) {
                    id
                } else {
                    by
                };
                MemberRecord {
                    id,
                    incarnation,
                    state,
                    by,
                    started,
                    name,
                    endpoint: String::new(),
                }
            },
        )
    }

    #[derive(Debug, Clone)]
    enum Input {
        Records(ConnId, Vec<MemberRecord>),
        Digest(ConnId, MemberRecord, u8, bool),
        Up(ConnId),
        Down(ConnId, bool),
        Time(u64),
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            (0u64..6, proptest::collection::vec(record(), 0..20))
                .prop_map(|(c, r)| Input::Records(c, r)),
            (0u64..6, record(), 0u8..=8, any::<bool>())
                .prop_map(|(c, r, b, reply)| Input::Digest(c, r, b, reply)),
            (0u64..6).prop_map(Input::Up),
            (0u64..6, any::<bool>()).prop_map(|(c, l)| Input::Down(c, l)),
            (0u64..20_000).prop_map(Input::Time),
        ]
    }

    proptest! {
        /// Whatever authenticated peers send (stale, forged, contradictory
        /// records; digests of any size; links that come and go), the
        /// machine never panics, its table stays within its bound, its
        /// counts match the table, and it never says itself anything but
        /// alive.
        #[test]
        fn forged_and_stale_records_keep_the_table_bounded_and_consistent(
            inputs in proptest::collection::vec(input(), 1..80)
        ) {
            let mut m = Membership::new(
                7,
                "me",
                MembershipSettings { max_members: 10, ..settings() },
            );
            m.start(1);
            let mut now = 0;
            for i in inputs {
                match i {
                    Input::Records(c, r) => m.handle_message(c, Message::Members(r), now),
                    Input::Digest(c, me, bits, reply) => {
                        let hashes = vec![3; 1 << bits];
                        m.handle_message(c, Message::Digest { reply, me, bits, hashes }, now)
                    }
                    Input::Up(c) => m.link_up(c, now),
                    Input::Down(c, lost) => {
                        let end = if lost { LinkEnd::Silent } else { LinkEnd::Chosen };
                        m.link_down(c, end, now);
                    }
                    Input::Time(dt) => {
                        now += dt;
                        m.handle_timeout(now);
                    }
                }
                while m.poll_send().is_some() {}
                prop_assert!(m.members().count() <= 10);
                prop_assert!(m.early.len() <= 1024);
                let (alive, suspect, gone) = m.counts();
                let table = m.members().count();
                prop_assert_eq!(alive + suspect + gone, table);
                prop_assert_eq!(
                    suspect,
                    m.members().filter(|x| x.record.state == MemberState::Suspect).count()
                );
                prop_assert_eq!(m.me().state, MemberState::Alive);
            }
        }
    }
}

#[test]
fn a_stored_record_gives_back_the_record_it_was_made_of() {
    let r = MemberRecord {
        id: 9,
        incarnation: 3,
        state: MemberState::Suspect,
        by: 4,
        started: 5,
        name: "nœud-1".into(),
        endpoint: "tcp://[::1]:5670".into(),
    };
    let s = Stored::of(&r);
    assert_eq!((s.name(), s.endpoint()), ("nœud-1", "tcp://[::1]:5670"));
    assert_eq!(s.to_record(), r);
    // A name longer than any the wire carries is cut at a character.
    let long = MemberRecord {
        name: "é".repeat(40_000),
        ..r
    };
    let s = Stored::of(&long);
    assert!(s.name().len() <= usize::from(u16::MAX) && s.name().starts_with('é'));
    assert_eq!(s.endpoint(), "tcp://[::1]:5670");
}

#[test]
fn an_accuser_that_only_saw_silence_waits_twice_the_minimum() {
    // A node paused for two seconds is timed out by all its peers at once,
    // as a crashed one is reset by all: silence alone must leave it the
    // time to come back and deny.
    let mut net = Net::hub_and_line();
    net.dead[4] = true;
    for p in 0..4 {
        net.cut(4, p, false, true);
    }
    let s = settings();
    net.advance(2 * s.suspect_min_ms - TICK_MS);
    assert_eq!(net.state(0, 4), Some(MemberState::Suspect));
    net.advance(TICK_MS);
    assert_eq!(net.state(0, 4), Some(MemberState::Failed));
}

#[test]
fn a_member_whose_observers_died_with_it_is_failed_by_a_dial_that_finds_no_one() {
    // 3 hangs off 2 alone; 2 and 3 die together (a host, a rack): 1 loses
    // its link to 2 and accuses 2, but nobody is left to accuse 3.
    let mut net = Net::line(4);
    net.dead[3] = true;
    net.crash(2);
    let s = settings();
    net.advance(3 * s.suspect_max_ms);
    assert_eq!(net.state(0, 2), Some(MemberState::Failed));
    assert_eq!(net.state(0, 3), Some(MemberState::Alive), "no evidence");
    // 0 dials 3 (its passive view held it) and finds no one.
    net.unreachable(0, 3);
    assert_eq!(net.state(1, 3), Some(MemberState::Suspect));
    assert_eq!(net.nodes[0].stats().unreachable, 1);
    // As strong as a timed-out link: twice the minimum at least.
    net.advance(2 * s.suspect_min_ms - TICK_MS);
    assert_eq!(net.state(0, 3), Some(MemberState::Suspect));
    net.advance(s.suspect_max_ms + TICK_MS);
    assert_eq!(net.state(0, 3), Some(MemberState::Failed));
    assert_eq!(net.state(1, 3), Some(MemberState::Failed));
}

#[test]
fn a_dial_that_finds_no_one_accuses_only_an_alive_member_no_link_joins_to() {
    let mut net = Net::line(3);
    // 1 is linked to 2: its own link says 2 is there.
    net.unreachable(1, 2);
    assert_eq!(net.state(0, 2), Some(MemberState::Alive));
    assert_eq!(net.nodes[1].stats().unreachable, 0);
    // Unknown ids are nothing to accuse.
    let now = net.now;
    net.nodes[0].unreachable(999, now);
    assert_eq!(net.nodes[0].stats().unreachable, 0);
    // 0 has no link to 2, and 2 is alive (the dial failed for another
    // reason): 2 hears the suspicion and refutes it.
    net.unreachable(0, 2);
    assert_eq!(net.nodes[0].stats().unreachable, 1);
    assert_eq!(net.nodes[2].stats().refutations, 1);
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                assert_eq!(net.state(i, j), Some(MemberState::Alive), "{i} of {j}");
            }
        }
    }
    // Already suspect: not accused again.
    net.dead[2] = true;
    net.cut(1, 2, true, false);
    assert_eq!(net.state(0, 2), Some(MemberState::Suspect));
    net.unreachable(0, 2);
    assert_eq!(net.nodes[0].stats().unreachable, 1);
}
