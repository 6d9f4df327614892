//! The broadcast tree, transition by transition.

use super::*;

fn id(key: &str, clock: u64) -> WriteId {
    WriteId {
        key: key.to_string(),
        clock,
        origin: 1,
    }
}

fn drain(t: &mut Tree) -> Vec<(ConnId, Message)> {
    std::iter::from_fn(|| t.poll_action())
        .map(|TreeAction::Send { conn, msg }| (conn, msg))
        .collect()
}

fn tree(links: &[ConnId]) -> Tree {
    let mut t = Tree::new(TreeSettings::default());
    for &c in links {
        t.link_up(c);
    }
    t
}

#[test]
fn links_start_eager_and_a_duplicate_prunes_once() {
    let mut t = tree(&[1, 2]);
    assert_eq!(t.mode(1), Some(Mode::Eager));
    t.duplicate(1, 0);
    assert_eq!(t.mode(1), Some(Mode::Lazy));
    assert_eq!(drain(&mut t), vec![(1, Message::Prune)]);
    // Already lazy: no second PRUNE.
    t.duplicate(1, 0);
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.counts(), (1, 1));
    assert_eq!(t.stats.prunes_sent, 1);
}

#[test]
fn a_prune_makes_the_link_lazy_and_a_graft_eager_again() {
    let mut t = tree(&[1]);
    t.pruned(1);
    assert_eq!(t.mode(1), Some(Mode::Lazy));
    t.grafted(1);
    assert_eq!(t.mode(1), Some(Mode::Eager));
    assert_eq!(t.stats.repairs, 1);
    // Unknown links stay unknown.
    t.pruned(9);
    assert_eq!(t.mode(9), None);
}

#[test]
fn announcements_wait_for_the_interval_and_go_in_one_ihave_per_link() {
    let mut t = tree(&[1, 2]);
    t.announce(1, id("a", 1), true, 0);
    t.announce(1, id("b", 1), true, 10);
    t.announce(2, id("a", 1), true, 20);
    let due = TreeSettings::default().announce_interval_ms;
    assert_eq!(t.poll_timeout(), Some(due));
    t.handle_timeout(due - 1);
    assert!(drain(&mut t).is_empty());
    t.handle_timeout(due);
    assert_eq!(
        drain(&mut t),
        vec![
            (1, Message::IHave(vec![id("a", 1), id("b", 1)])),
            (2, Message::IHave(vec![id("a", 1)]))
        ]
    );
    assert_eq!(t.stats.announce_frames, 2);
    assert_eq!(t.stats.announced, 3);
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn a_full_batch_goes_at_once() {
    let mut t = Tree::new(TreeSettings {
        max_batch_bytes: 40,
        ..TreeSettings::default()
    });
    t.link_up(1);
    t.announce(1, id("key-1", 1), true, 0);
    assert!(drain(&mut t).is_empty());
    t.announce(1, id("key-2", 1), true, 0);
    assert_eq!(drain(&mut t).len(), 1);
}

#[test]
fn an_announced_write_not_received_is_grafted_from_each_announcer_in_turn() {
    let mut t = tree(&[1, 2]);
    t.pruned(1);
    t.pruned(2);
    t.announced(1, vec![id("k", 5), id("held", 1)], |w| w.key == "held", 0);
    t.announced(2, vec![id("k", 5)], |_| false, 5);
    assert_eq!(t.missing_len(), 1);
    let s = TreeSettings::default();
    assert_eq!(t.poll_timeout(), Some(s.graft_timeout_ms));
    t.handle_timeout(s.graft_timeout_ms);
    assert_eq!(drain(&mut t), vec![(1, Message::Graft(vec![id("k", 5)]))]);
    assert_eq!(t.mode(1), Some(Mode::Eager), "the graft repairs the tree");
    assert_eq!(t.stats.repairs, 1);
    // Still not received: the second announcer is asked.
    t.handle_timeout(s.graft_timeout_ms + s.graft_retry_ms);
    assert_eq!(drain(&mut t), vec![(2, Message::Graft(vec![id("k", 5)]))]);
    // Nobody left: given up (reconciliation brings it).
    t.handle_timeout(s.graft_timeout_ms + 2 * s.graft_retry_ms);
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.missing_len(), 0);
    assert_eq!(t.stats.grafted, 2);
}

#[test]
fn a_write_received_in_time_is_not_grafted_and_a_newer_one_counts() {
    let mut t = tree(&[1]);
    t.announced(1, vec![id("k", 5)], |_| false, 0);
    t.received("k", 4, 1, 10);
    assert_eq!(t.missing_len(), 1, "an older version is not it");
    t.received("k", 9, 1, 20);
    assert_eq!(t.missing_len(), 0);
    t.handle_timeout(10_000);
    assert!(drain(&mut t).is_empty());
}

#[test]
fn announcements_on_unknown_links_and_beyond_the_bound_are_dropped() {
    let mut t = Tree::new(TreeSettings {
        max_missing: 2,
        ..TreeSettings::default()
    });
    t.announced(7, vec![id("a", 1)], |_| false, 0);
    assert_eq!(t.missing_len(), 0);
    t.link_up(1);
    t.announced(1, vec![id("a", 1), id("b", 1), id("c", 1)], |_| false, 0);
    assert_eq!(t.missing_len(), 2);
    assert_eq!(t.stats.missing_dropped, 1);
}

#[test]
fn a_closed_link_is_forgotten_with_its_batch_and_announcements() {
    let mut t = tree(&[1, 2]);
    t.announce(1, id("a", 1), true, 0);
    t.announced(1, vec![id("k", 1)], |_| false, 0);
    t.link_down(1);
    t.handle_timeout(10_000);
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.mode(1), None);
    assert_eq!(t.missing_len(), 0);
}

#[test]
fn a_pulled_write_gives_a_round_trip() {
    let mut t = tree(&[1]);
    t.pruned(1);
    t.announced(1, vec![id("k", 1)], |_| false, 0);
    let due = t.poll_timeout().unwrap();
    t.handle_timeout(due);
    drain(&mut t);
    t.received("k", 1, 1, due + 5);
    assert_eq!(t.graft_timeout(), 40, "eight round trips of 5 ms");
}

#[test]
fn the_wait_before_a_pull_is_eight_round_trips_within_its_bounds() {
    let s = TreeSettings::default();
    let mut t = tree(&[1]);
    assert_eq!(
        t.graft_timeout(),
        s.graft_timeout_ms,
        "nothing measured yet"
    );
    t.observe_rtt(1);
    assert_eq!(t.graft_timeout(), s.graft_timeout_min_ms, "a LAN");
    for _ in 0..80 {
        t.observe_rtt(20);
    }
    assert_eq!(t.graft_timeout(), 160, "eight round trips");
    for _ in 0..80 {
        t.observe_rtt(500);
    }
    assert_eq!(
        t.graft_timeout(),
        s.graft_timeout_ms,
        "never above the setting"
    );
}

#[test]
fn a_link_that_brought_a_first_copy_within_the_wait_is_not_pruned() {
    let mut t = tree(&[1, 2]);
    let wait = t.graft_timeout();
    t.first_push(1, 100);
    // A duplicate soon after: the link still carries other writes first.
    t.duplicate(1, 100 + wait - 1);
    assert_eq!(t.mode(1), Some(Mode::Eager));
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.stats.prunes_held, 1);
    assert_eq!(t.stats.prunes_sent, 0);
    // A duplicate once the wait has passed with no first copy: pruned.
    t.duplicate(1, 100 + wait);
    assert_eq!(t.mode(1), Some(Mode::Lazy));
    assert_eq!(drain(&mut t), vec![(1, Message::Prune)]);
    // The other link brought nothing first: pruned at once.
    t.duplicate(2, 100);
    assert_eq!(t.mode(2), Some(Mode::Lazy));
    assert_eq!(t.stats.prunes_sent, 2);
}

#[test]
fn the_prune_holdoff_follows_the_wait_before_a_pull() {
    let mut t = tree(&[1]);
    for _ in 0..80 {
        t.observe_rtt(5);
    }
    assert_eq!(t.graft_timeout(), 40);
    t.first_push(1, 0);
    t.duplicate(1, 39);
    assert_eq!(t.mode(1), Some(Mode::Eager), "within eight round trips");
    t.duplicate(1, 40);
    assert_eq!(t.mode(1), Some(Mode::Lazy));
}

#[test]
fn first_copies_on_unknown_or_closed_links_are_forgotten() {
    let mut t = tree(&[]);
    t.first_push(1, 0);
    t.link_up(1);
    t.duplicate(1, 1);
    assert_eq!(
        t.mode(1),
        Some(Mode::Lazy),
        "the first copy came before the link"
    );
    t.link_up(2);
    t.first_push(2, 0);
    t.link_down(2);
    t.link_up(2);
    t.duplicate(2, 1);
    assert_eq!(t.mode(2), Some(Mode::Lazy), "a new link starts afresh");
}

#[test]
fn a_write_is_pulled_from_the_graft_until_it_arrives() {
    let mut t = tree(&[1]);
    t.pruned(1);
    t.announced(1, vec![id("k", 5)], |_| false, 0);
    assert!(!t.pulled("k", 5, 1), "announced, not asked for yet");
    let due = t.poll_timeout().unwrap();
    t.handle_timeout(due);
    assert_eq!(drain(&mut t), vec![(1, Message::Graft(vec![id("k", 5)]))]);
    assert!(t.pulled("k", 5, 1));
    assert!(t.pulled("k", 6, 1), "a newer version answers it too");
    assert!(!t.pulled("k", 4, 1), "an older one does not");
    assert!(!t.pulled("other", 5, 1));
    t.received("k", 5, 1, due + 10);
    assert!(!t.pulled("k", 5, 1), "received: no longer waited for");
}

#[test]
fn duplicates_in_a_row_prune_even_within_the_wait() {
    let mut t = tree(&[1]);
    t.first_push(1, 0);
    for n in 1..HELD_DUPLICATES_MAX {
        t.duplicate(1, 1);
        assert_eq!(t.mode(1), Some(Mode::Eager), "duplicate {n} held");
    }
    // A first copy between starts the count again.
    t.first_push(1, 2);
    for _ in 1..HELD_DUPLICATES_MAX {
        t.duplicate(1, 3);
    }
    assert_eq!(t.mode(1), Some(Mode::Eager));
    assert!(drain(&mut t).is_empty());
    t.duplicate(1, 3);
    assert_eq!(t.mode(1), Some(Mode::Lazy));
    assert_eq!(drain(&mut t), vec![(1, Message::Prune)]);
    assert_eq!(
        t.stats.prunes_held,
        u64::from(2 * (HELD_DUPLICATES_MAX - 1))
    );
}

#[test]
fn a_followed_announcement_waits_longer_and_is_taken_back_when_the_leader_announces() {
    let mut t = tree(&[1, 2]);
    t.observe_rtt(30);
    let lead = TreeSettings::default().announce_interval_ms;
    let follow = t.follow_wait();
    assert_eq!(follow, lead + 60);
    t.announce(1, id("a", 1), false, 0);
    t.announce(2, id("a", 1), false, 0);
    t.announce(2, id("b", 1), true, 0);
    t.handle_timeout(lead);
    assert_eq!(drain(&mut t), vec![(2, Message::IHave(vec![id("b", 1)]))]);
    // Link 1's other end announces `a` first: ours on link 1 is taken
    // back; link 2's goes when due.
    t.announced(1, vec![id("a", 1)], |_| true, 10);
    assert_eq!(t.poll_timeout(), Some(follow));
    t.handle_timeout(follow - 1);
    assert!(drain(&mut t).is_empty());
    t.handle_timeout(follow);
    assert_eq!(drain(&mut t), vec![(2, Message::IHave(vec![id("a", 1)]))]);
    assert_eq!((t.stats.announced, t.stats.unannounced), (2, 1));
}

#[test]
fn one_end_of_a_link_leads_each_write_and_both_lead_about_half() {
    let mut dialler_leads = 0;
    for clock in 0..1_000u64 {
        let w = WriteId {
            key: format!("k{}", clock % 7),
            clock,
            origin: 42,
        };
        assert_ne!(leads(&w, true), leads(&w, false), "exactly one end leads");
        dialler_leads += u32::from(leads(&w, true));
    }
    assert!((400..600).contains(&dialler_leads), "{dialler_leads}");
}

#[test]
fn a_write_is_not_announced_back_to_the_links_that_announced_it() {
    let mut t = tree(&[1, 2, 3]);
    for c in [1, 2, 3] {
        t.pruned(c);
    }
    t.announced(1, vec![id("k", 5)], |_| false, 0);
    t.announced(2, vec![id("k", 4)], |_| false, 0);
    t.received("k", 5, 1, 10);
    for c in [1, 2, 3] {
        t.announce(c, id("k", 5), true, 10);
    }
    t.handle_timeout(100);
    // Link 1 announced this very version; link 2 an older one.
    assert_eq!(
        drain(&mut t),
        vec![
            (2, Message::IHave(vec![id("k", 5)])),
            (3, Message::IHave(vec![id("k", 5)]))
        ]
    );
    assert_eq!(t.stats.unannounced, 1);
}

#[test]
fn while_pushes_keep_coming_an_announced_write_waits_up_to_the_patience() {
    let mut t = tree(&[1, 2]);
    t.pruned(2);
    let wait = t.graft_timeout();
    let patience = t.patience();
    assert_eq!(patience, 2 * TreeSettings::default().graft_timeout_ms);
    // Pushes flow on link 1 (other writes): the tree works.
    t.announced(2, vec![id("k", 5)], |_| false, 0);
    t.first_push(1, wait - 10);
    t.handle_timeout(wait);
    assert!(drain(&mut t).is_empty(), "not pulled while pushes come");
    let mut now = wait;
    while now < patience {
        t.first_push(1, now);
        now += 50;
        t.handle_timeout(now);
        if now < patience {
            assert!(drain(&mut t).is_empty(), "pulled at {now}");
        }
    }
    // Out of patience: pulled even though pushes still come.
    t.handle_timeout(patience);
    assert_eq!(drain(&mut t), vec![(2, Message::Graft(vec![id("k", 5)]))]);
}

#[test]
fn an_idle_tree_pulls_after_the_short_wait() {
    let mut t = tree(&[1, 2]);
    t.pruned(2);
    // The last push is long gone.
    t.first_push(1, 0);
    let start = t.patience();
    t.announced(2, vec![id("k", 5)], |_| false, start);
    t.handle_timeout(start + t.graft_timeout());
    assert_eq!(drain(&mut t), vec![(2, Message::Graft(vec![id("k", 5)]))]);
}

// ------------------------------------------------ guided by the root

#[test]
fn the_roots_word_sets_the_links_mode_at_this_end() {
    let mut t = tree(&[1, 2, 3]);
    t.guide(1, Some(true));
    t.guide(2, Some(false));
    t.guide(3, None);
    assert_eq!(t.mode(1), Some(Mode::Eager));
    assert_eq!(t.mode(2), Some(Mode::Lazy));
    assert_eq!(t.mode(3), Some(Mode::Eager), "no word: Plumtree's rules");
    // A link that leaves the root's tree tells its other end to stop
    // pushing (it may have grafted it before the root spoke).
    assert_eq!(drain(&mut t), vec![(2, Message::Prune)]);
    // The same word again changes nothing; a peer's GRAFT on a link off
    // the tree (its repair) stands until that peer prunes it.
    t.grafted(2);
    t.guide(2, Some(false));
    assert_eq!(t.mode(2), Some(Mode::Eager));
    assert!(drain(&mut t).is_empty());
    // A tree link the other end pruned (on an older word of the root)
    // keeps pushing.
    t.pruned(1);
    assert_eq!(t.mode(1), Some(Mode::Eager));
    // Unknown links are let be.
    t.guide(9, Some(true));
    assert_eq!(t.mode(9), None);
}

#[test]
fn a_duplicate_on_a_tree_link_prunes_the_links_off_the_tree_that_overtook_it() {
    let mut t = tree(&[1, 2, 3]);
    t.guide(1, Some(true));
    t.guide(2, Some(false));
    t.guide(3, Some(false));
    drain(&mut t);
    // Link 2 pushed a first copy (a repair), then the tree brings the
    // duplicate: link 2 is told to stop, the tree link stays.
    t.first_push(2, 100);
    t.duplicate(1, 110);
    assert_eq!(drain(&mut t), vec![(2, Message::Prune)]);
    assert_eq!(t.mode(1), Some(Mode::Eager));
    assert_eq!(t.stats.tree_duplicates, 1);
    // Long ago: not an overtaking link any more.
    t.first_push(3, 200);
    t.duplicate(1, 200 + t.graft_timeout());
    assert!(drain(&mut t).is_empty());
}

#[test]
fn a_duplicate_on_a_link_off_the_tree_prunes_it_once_per_wait() {
    let mut t = tree(&[1, 2]);
    t.guide(1, Some(true));
    t.guide(2, Some(false));
    drain(&mut t);
    t.duplicate(2, 1_000);
    t.duplicate(2, 1_001);
    assert_eq!(drain(&mut t), vec![(2, Message::Prune)]);
    t.duplicate(2, 1_000 + t.graft_timeout());
    assert_eq!(drain(&mut t), vec![(2, Message::Prune)]);
    // No held duplicates off the tree: the link is never needed for
    // pushes.
    assert_eq!(t.stats.prunes_held, 0);
}

#[test]
fn a_pull_on_a_link_off_the_tree_keeps_this_end_lazy_until_the_tree_delivers() {
    let mut t = tree(&[1, 2]);
    t.guide(1, Some(true));
    t.guide(2, Some(false));
    drain(&mut t);
    t.announced(2, vec![id("k", 5)], |_| false, 0);
    let at = t.graft_timeout();
    t.handle_timeout(at);
    assert_eq!(drain(&mut t), vec![(2, Message::Graft(vec![id("k", 5)]))]);
    assert_eq!(t.mode(2), Some(Mode::Lazy), "this end does not push on it");
    assert_eq!(t.stats.repairs, 1);
    // The tree brings a duplicate later: the repair is pruned.
    t.received("k", 5, 1, at + 10);
    t.duplicate(1, at + 20);
    assert_eq!(drain(&mut t), vec![(2, Message::Prune)]);
}
