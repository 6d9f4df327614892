//! The membership's table of members, by id: a hash table that finds each
//! member by the id its record holds, so the id is not stored twice (a
//! map from id to member kept a second copy, 8 bytes an entry and 13 with
//! the table's slack: the simulator of 10,000 nodes holds 10^8 entries).
//! Hashed with fixed keys, as the rest of the membership: the order of a
//! run never depends on a hash seed.

use std::hash::{BuildHasher, BuildHasherDefault};

use hashbrown::HashTable;

use super::membership::Member;

/// SipHash with fixed keys: the same order in every run.
type FixedHash = BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

#[derive(Debug, Default)]
pub(super) struct MemberTable {
    table: HashTable<Member>,
}

fn hash(id: u64) -> u64 {
    FixedHash::default().hash_one(id)
}

fn hash_of(m: &Member) -> u64 {
    hash(m.record.id)
}

impl MemberTable {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn get(&self, id: &u64) -> Option<&Member> {
        self.table.find(hash(*id), |m| m.record.id == *id)
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Member> {
        self.table.find_mut(hash(*id), |m| m.record.id == *id)
    }

    /// Adds `m`, or replaces the member of its id.
    pub fn insert(&mut self, m: Member) {
        let id = m.record.id;
        match self.table.find_mut(hash(id), |x| x.record.id == id) {
            Some(slot) => *slot = m,
            None => {
                self.table.insert_unique(hash(id), m, hash_of);
            }
        }
    }

    pub fn remove(&mut self, id: &u64) -> Option<Member> {
        self.table
            .find_entry(hash(*id), |m| m.record.id == *id)
            .ok()
            .map(|e| e.remove().0)
    }

    pub fn values(&self) -> impl Iterator<Item = &Member> {
        self.table.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::membership::Stored;
    use crate::wire::membership::{MemberRecord, MemberState};

    fn member(id: u64, name: &str) -> Member {
        Member::new(
            Stored::of(&MemberRecord {
                id,
                incarnation: 1,
                state: MemberState::Alive,
                by: id,
                started: 1,
                name: name.into(),
                endpoint: String::new(),
            }),
            0,
        )
    }

    #[test]
    fn members_are_found_replaced_and_removed_by_their_id() {
        let mut t = MemberTable::default();
        for id in 0..1_000 {
            t.insert(member(id, "a"));
        }
        assert_eq!(t.len(), 1_000);
        t.insert(member(7, "b"));
        assert_eq!(t.len(), 1_000, "replaced, not added");
        assert_eq!(t.get(&7).unwrap().record.name(), "b");
        t.get_mut(&8).unwrap().record.state = MemberState::Left;
        assert_eq!(t.get(&8).unwrap().record.state, MemberState::Left);
        assert_eq!(t.remove(&7).unwrap().record.id, 7);
        assert!(t.remove(&7).is_none());
        assert!(t.get(&7).is_none() && t.get(&5_000).is_none());
        assert_eq!(t.values().count(), 999);
    }
}
