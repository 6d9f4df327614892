//! The root's election and each node's way to it, transition by
//! transition (`tree_root.rs`).

use super::*;
use crate::wire::overlay::Message;

const ME: u64 = 50;
const INTERVAL: u64 = 1_000;
const TIMEOUT: u64 = 3_000;
const WALL: u64 = 1_700_000_000_000;

fn node() -> TreeRoot {
    let mut r = TreeRoot::new(ME, INTERVAL, TIMEOUT);
    r.set_candidate(true, 0);
    r
}

fn adv(root: u64, seq: u64, level: u8, parent: bool) -> RootAdvert {
    RootAdvert {
        root,
        seq,
        level,
        parent,
    }
}

/// The adverts sent (requests are left out).
fn drain(r: &mut TreeRoot) -> Vec<(ConnId, RootAdvert)> {
    drain_all(r)
        .into_iter()
        .filter_map(|(c, m)| match m {
            Message::Root(a) => Some((c, a)),
            _ => None,
        })
        .collect()
}

fn drain_all(r: &mut TreeRoot) -> Vec<(ConnId, Message)> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

/// A node with links 1, 2 and 3, its own root, adverts drained.
fn linked() -> TreeRoot {
    let mut r = node();
    for c in 1..=3 {
        r.link_up(c, 0, WALL);
    }
    drain(&mut r);
    r
}

#[test]
fn a_node_alone_is_its_own_root_and_tells_each_new_link() {
    let mut r = node();
    assert_eq!(r.root(), (ME, 0, false));
    r.link_up(7, 0, WALL);
    assert_eq!(drain(&mut r), [(7, adv(ME, WALL, 0, false))]);
    // Told once: nothing new to say.
    r.link_up(8, 0, WALL + 5);
    assert_eq!(drain(&mut r), [(8, adv(ME, WALL, 0, false))]);
    assert_eq!(r.is_tree_link(7), None, "the link has told nothing");
}

#[test]
fn the_root_counts_its_number_up_every_interval() {
    let mut r = linked();
    assert_eq!(r.poll_timeout(), Some(INTERVAL));
    r.handle_timeout(INTERVAL);
    let sent = drain(&mut r);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|(_, a)| *a == adv(ME, WALL + 1, 0, false)));
    assert_eq!(r.poll_timeout(), Some(2 * INTERVAL));
}

#[test]
fn a_smaller_root_is_taken_through_its_nearest_link() {
    let mut r = linked();
    r.heard(1, adv(10, 100, 3, false), 5);
    assert_eq!(r.root(), (10, 4, false));
    assert_eq!(r.parent(), Some(1));
    let sent = drain(&mut r);
    assert_eq!(
        sent,
        [
            (1, adv(10, 100, 4, true)),
            (2, adv(10, 100, 4, false)),
            (3, adv(10, 100, 4, false)),
        ]
    );
    // A nearer link at the same number is a better way (level 1 < 4).
    r.heard(2, adv(10, 100, 1, false), 6);
    assert_eq!((r.root(), r.parent()), ((10, 2, false), Some(2)));
    assert_eq!(r.stats.parent_changes, 2);
    // A bigger root is not followed; the root no longer counts its own.
    r.heard(3, adv(40, 900, 0, false), 7);
    assert_eq!(r.root().0, 10);
    assert!(
        r.poll_timeout().unwrap() >= TIMEOUT,
        "no numbers of its own"
    );
}

#[test]
fn the_parent_is_kept_on_a_tie_and_a_newer_number_elsewhere_does_not_move_it() {
    let mut r = linked();
    r.heard(2, adv(10, 100, 2, false), 0);
    r.heard(1, adv(10, 100, 2, false), 1);
    assert_eq!(r.parent(), Some(2), "the first of equals stays");
    drain(&mut r);
    r.heard(1, adv(10, 101, 2, false), 2);
    assert_eq!(r.parent(), Some(2));
    assert!(drain(&mut r).is_empty(), "nothing changed");
    // The parent brings the number: it is passed on.
    r.heard(2, adv(10, 101, 2, false), 3);
    assert_eq!(drain(&mut r)[0], (1, adv(10, 101, 3, false)));
}

#[test]
fn which_links_are_the_trees() {
    let mut r = linked();
    r.link_up(4, 0, WALL);
    r.heard(1, adv(10, 100, 0, false), 0);
    r.heard(2, adv(10, 100, 2, true), 0);
    r.heard(3, adv(10, 100, 2, false), 0);
    r.heard(4, adv(30, 100, 0, false), 0);
    assert_eq!(r.is_tree_link(1), Some(true), "the parent");
    assert_eq!(r.is_tree_link(2), Some(true), "a child");
    assert_eq!(r.is_tree_link(3), Some(false), "neither");
    assert_eq!(r.is_tree_link(4), None, "another root: Plumtree decides");
    assert_eq!(r.is_tree_link(9), None, "not a link");
    // A detached neighbour gives no word of its link.
    r.heard(3, adv(10, 100, ROOT_UNREACHABLE, false), 1);
    assert_eq!(r.is_tree_link(3), None);
    // Detached, this node gives no word but of its children's links: the
    // links it had keep their mode and its writes still go out.
    r.link_down(1, 2);
    assert!(r.root().2, "detached");
    assert_eq!(r.is_tree_link(2), Some(true), "a child");
    assert_eq!(r.is_tree_link(3), None);
    r.heard(3, adv(10, 100, 2, false), 3);
    assert!(r.root().2, "level 2 is not nearer than this node was (1)");
    assert_eq!(r.is_tree_link(3), None);
}

#[test]
fn a_lost_parent_is_replaced_by_a_feasible_way_at_once() {
    let mut r = linked();
    r.heard(1, adv(10, 100, 1, false), 0);
    r.heard(2, adv(10, 100, 1, false), 0);
    assert_eq!(r.parent(), Some(1));
    r.link_down(1, 5);
    assert_eq!((r.parent(), r.root()), (Some(2), (10, 2, false)));
    assert_eq!(r.stats.detachments, 0);
}

#[test]
fn a_way_that_may_pass_through_the_node_itself_is_refused_until_a_newer_number() {
    let mut r = linked();
    r.heard(1, adv(10, 100, 1, false), 0);
    // Link 2 is a child: its level (3) came through this node.
    r.heard(2, adv(10, 100, 3, true), 0);
    drain(&mut r);
    r.link_down(1, 5);
    assert_eq!(r.root(), (10, 2, true), "detached, not a loop");
    assert_eq!(r.parent(), None);
    assert_eq!(r.stats.detachments, 1);
    // It tells its links it lost its way, so its children look elsewhere.
    let sent = drain(&mut r);
    assert!(sent
        .iter()
        .all(|(_, a)| a.level == ROOT_UNREACHABLE && !a.parent));
    // The same number through a link at most as far as this node was
    // (level 2): feasible.
    r.heard(3, adv(10, 100, 2, false), 6);
    assert_eq!(r.parent(), Some(3), "level 2 <= 2: feasible");
    assert_eq!(r.root(), (10, 3, false));
    r.link_down(3, 7);
    assert!(r.root().2);
    // The root's next number through the old child: taken.
    r.heard(2, adv(10, 101, 3, false), 8);
    assert_eq!((r.parent(), r.root()), (Some(2), (10, 4, false)));
}

#[test]
fn a_parent_whose_number_lags_is_kept_until_it_says_its_way_is_cut() {
    let mut r = linked();
    r.heard(1, adv(10, 100, 1, false), 0);
    r.heard(2, adv(10, 100, 2, false), 0);
    // Link 2 brings 101 (and later 102); the parent has not yet.
    r.heard(2, adv(10, 101, 2, false), 100);
    r.heard(2, adv(10, 102, 2, false), 6_000);
    r.handle_timeout(6_000);
    assert_eq!(r.parent(), Some(1), "nearer, and not cut");
    // The parent's way is cut: it detaches, and link 2 is taken.
    r.heard(1, adv(10, 100, ROOT_UNREACHABLE, false), 6_001);
    assert_eq!((r.parent(), r.root()), (Some(2), (10, 3, false)));
}

#[test]
fn a_silent_root_is_given_up_and_its_old_numbers_refused() {
    let mut r = linked();
    r.heard(1, adv(10, 100, 0, false), 0);
    r.heard(2, adv(10, 100, 1, false), 0);
    assert_eq!(r.poll_timeout(), Some(TIMEOUT), "no newer number came");
    drain(&mut r);
    r.handle_timeout(TIMEOUT);
    assert_eq!(r.root(), (ME, 0, false), "its own root");
    assert_eq!(r.stats.expiries, 1);
    assert!(drain(&mut r).iter().all(|(_, a)| a.root == ME));
    // A link still naming the old root at its old number: refused.
    r.heard(2, adv(10, 100, 1, false), TIMEOUT + 1);
    assert_eq!(r.root().0, ME);
    assert_eq!(r.stats.adverts_refused, 1);
    // Another root smaller than this node: taken.
    r.heard(3, adv(20, 5, 0, false), TIMEOUT + 2);
    assert_eq!(r.root(), (20, 1, false));
    // The old root back with a newer number: smaller, taken again.
    r.heard(1, adv(10, 104, 0, false), TIMEOUT + 3);
    assert_eq!((r.root(), r.parent()), ((10, 1, false), Some(1)));
}

#[test]
fn a_node_smaller_than_every_root_it_hears_stays_the_root() {
    let mut r = linked();
    r.heard(1, adv(70, 5, 0, false), 0);
    assert_eq!(r.root(), (ME, 0, false));
    assert_eq!(r.is_tree_link(1), None, "it names another root");
    // Unreachable or self-naming adverts are never ways.
    r.heard(2, adv(10, 5, ROOT_UNREACHABLE, false), 0);
    r.heard(3, adv(ME, 5, 1, false), 0);
    assert_eq!(r.root(), (ME, 0, false));
}

#[test]
fn turned_off_the_root_sends_nothing_and_names_no_link() {
    let mut r = TreeRoot::new(ME, 0, TIMEOUT);
    r.set_candidate(true, 0);
    r.link_up(1, 0, WALL);
    r.heard(1, adv(10, 100, 0, true), 0);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.is_tree_link(1), None);
    assert_eq!(r.poll_timeout(), None);
    // Turned on: it stands as its own root and tells its links, then
    // takes the smaller root heard before.
    r.set_settings(INTERVAL, TIMEOUT, 10);
    r.heard(1, adv(10, 100, 0, false), 11);
    assert_eq!(r.parent(), Some(1));
    assert_eq!(drain(&mut r).last(), Some(&(1, adv(10, 100, 1, true))));
}

#[test]
fn a_detached_node_asks_for_a_number_and_the_request_climbs_to_the_root() {
    // Detached: link 1 was its parent; link 2 a child; link 3 further.
    let mut r = linked();
    r.heard(1, adv(10, 100, 1, false), 0);
    r.heard(2, adv(10, 100, 3, true), 0);
    r.heard(3, adv(10, 100, 4, false), 0);
    drain_all(&mut r);
    r.link_down(1, 5);
    let asked: Vec<_> = drain_all(&mut r)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::RootRequest { .. }))
        .collect();
    assert_eq!(
        asked,
        [(3, Message::RootRequest { root: 10, seq: 100 })],
        "asked once, not its child"
    );
    assert_eq!(r.stats.requests_sent, 1);

    // A node on the way passes a request to its parent once per number,
    // and not one for an older number than its own.
    let mut mid = linked();
    mid.heard(1, adv(10, 100, 1, false), 0);
    drain_all(&mut mid);
    mid.request(2, 10, 100, 1);
    mid.request(3, 10, 100, 2);
    mid.request(3, 10, 99, 3);
    mid.request(3, 77, 100, 4);
    assert_eq!(
        drain_all(&mut mid),
        [(1, Message::RootRequest { root: 10, seq: 100 })]
    );
}

#[test]
fn the_root_answers_a_request_with_a_new_number_at_most_once_per_gap() {
    let mut r = linked();
    let first = WALL;
    r.request(1, ME, first, 10);
    let sent = drain(&mut r);
    assert_eq!(sent.len(), 3, "every link told the new number");
    assert!(sent.iter().all(|(_, a)| a.seq == first + 1));
    assert_eq!(r.stats.requests_answered, 1);
    // A request for an older number: the new one is on its way.
    r.request(2, ME, first, 11);
    assert!(drain(&mut r).is_empty());
    // Asked again at once: answered after the gap, not before.
    r.request(2, ME, first + 1, 12);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), Some(10 + INTERVAL / 5));
    r.handle_timeout(10 + INTERVAL / 5);
    assert!(drain(&mut r).iter().all(|(_, a)| a.seq == first + 2));
    // Requests from no link, or for another root, are let be.
    r.request(9, ME, first + 2, 500);
    r.request(1, 3, first + 2, 500);
    assert!(drain_all(&mut r).is_empty());
}

#[test]
fn a_node_that_does_not_listen_never_roots_the_tree() {
    let mut r = TreeRoot::new(ME, INTERVAL, TIMEOUT);
    r.link_up(1, 0, WALL);
    r.link_up(2, 0, WALL);
    assert_eq!(r.root(), (NO_ROOT, 0, false));
    assert!(drain(&mut r).iter().all(|(_, a)| a.root == NO_ROOT));
    assert_eq!(r.poll_timeout(), None, "no numbers of its own");
    // Another such node names no root either: no word of the link.
    r.heard(2, adv(NO_ROOT, 5, 0, false), 1);
    assert_eq!(r.root().0, NO_ROOT);
    assert_eq!(r.is_tree_link(2), None);
    // A listening node's root, even a larger id than this one's: taken.
    r.heard(1, adv(ME + 100, 9, 0, false), 2);
    assert_eq!((r.root(), r.parent()), ((ME + 100, 1, false), Some(1)));
    assert_eq!(drain(&mut r)[0], (1, adv(ME + 100, 9, 1, true)));
    // Once it listens it stands for root, and its smaller id wins.
    r.set_candidate(true, 3);
    assert_eq!(r.root(), (ME, 0, false));
}
