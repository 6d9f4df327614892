//! The membership in the engine (`membership.rs` is the state machine):
//! every ZGP/2 link whose session started carries member records; a link
//! lost without a leave or a choice of either end is reported as lost
//! (its peer is suspected); the records and digests go out as ZGP/2
//! frames; the changes of state wait for the application
//! ([`Engine::poll_member_event`]).

use super::membership::{LinkEnd, Member, MemberEvent, MembershipStats};
use super::*;
use crate::wire::membership::{self, MemberRecord};

impl Engine {
    /// The members this node knows of, itself first.
    pub fn members(&self) -> Vec<MemberRecord> {
        let mut list = vec![self.membership.me().clone()];
        let mut others: Vec<&Member> = self.membership.members().collect();
        others.sort_by(|a, b| (a.record.name(), a.record.id).cmp(&(b.record.name(), b.record.id)));
        list.extend(others.into_iter().map(|m| m.record.to_record()));
        list
    }

    /// What this node knows of member `id` (not itself), with when it
    /// last heard of it (monotonic ms).
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.membership.member(id)
    }

    pub fn membership_stats(&self) -> MembershipStats {
        self.membership.stats()
    }

    /// Members other than this node: (alive, suspect, failed or left).
    pub fn member_counts(&self) -> (usize, usize, usize) {
        self.membership.counts()
    }

    /// Keeps changes of members' states for
    /// [`poll_member_event`](Self::poll_member_event) (off by default:
    /// none are kept).
    pub fn set_member_events(&mut self, on: bool) {
        self.membership.set_events(on);
    }

    /// The next change of a member's state (`MEMBER id name state
    /// endpoint`), oldest first.
    pub fn poll_member_event(&mut self) -> Option<MemberEvent> {
        self.membership.poll_event()
    }

    /// This node leaves the network: every link is told now, so the
    /// others list it as left at once rather than failed later. It takes
    /// no further part in the membership.
    pub fn leave(&mut self, now: Now) {
        self.last_now = now;
        self.membership.leave(now.mono_ms);
        self.run_membership(now);
    }

    /// A ZGP/2 link whose session started carries membership.
    pub(super) fn membership_link_up(&mut self, conn: ConnId, now: Now) {
        self.membership.start(now.wall_ms);
        self.membership.link_up(conn, now.mono_ms);
        self.run_membership(now);
    }

    /// A link closed, and how.
    pub(super) fn membership_link_down(&mut self, conn: ConnId, end: LinkEnd, now: Now) {
        if let Some(peer) = self.membership.link_down(conn, end, now.mono_ms) {
            self.trace(format_args!(
                "link {conn} to member {peer:016x} lost ({end:?}): it is suspected"
            ));
        }
        self.run_membership(now);
    }

    /// The overlay could not dial member `id`.
    pub(super) fn member_unreachable(&mut self, id: u64, now: Now) {
        if self.membership.unreachable(id, now.mono_ms) {
            self.trace(format_args!(
                "member {id:016x} not reached by a dial: it is suspected"
            ));
        }
        self.run_membership(now);
    }

    pub(super) fn on_membership(&mut self, conn: ConnId, msg: membership::Message, now: Now) {
        // A digest may come before this end counts the link as started:
        // the answer carries this node's record, with its start.
        self.membership.start(now.wall_ms);
        self.membership.handle_message(conn, msg, now.mono_ms);
        self.run_membership(now);
    }

    pub(super) fn handle_membership_timeout(&mut self, now: Now) {
        if self
            .membership
            .poll_timeout()
            .is_some_and(|t| t <= now.mono_ms)
        {
            self.membership.handle_timeout(now.mono_ms);
            self.run_membership(now);
        }
    }

    /// Sends what the membership asked for.
    pub(super) fn run_membership(&mut self, now: Now) {
        while let Some((conn, msg)) = self.membership.poll_send() {
            self.send_membership(conn, msg, now);
        }
        for id in self.membership.take_gone() {
            self.bury_ephemerals_of(id, now);
        }
        if self.membership.take_declared_gone() {
            self.rewrite_own_ephemerals(now);
        }
    }

    fn send_membership(&mut self, conn: ConnId, msg: membership::Message, now: Now) {
        self.send_zgp2(conn, msg, now);
    }
}
