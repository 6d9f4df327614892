//! The ids of the nodes that made the stored writes, interned: an entry
//! holds a 4-byte number instead of the 8-byte id. An id no entry uses any
//! more is released (its number is reused), so the table holds the writers
//! of what is stored, not every node ever seen.

use std::collections::HashMap;

use super::index::Hasher;

#[derive(Debug, Default)]
pub(super) struct Origins {
    /// Number -> node id.
    ids: Vec<u64>,
    numbers: HashMap<u64, u32, Hasher>,
    /// Entries using each number (0 for a released number).
    refs: Vec<u32>,
    /// Released numbers, to reuse.
    free: Vec<u32>,
    /// The node id interned last, and its number.
    last: Option<(u64, u32)>,
}

impl Origins {
    /// The node id of number `n`.
    #[inline]
    pub(super) fn id(&self, n: u32) -> u64 {
        self.ids[n as usize]
    }

    /// Numbers given out, released ones included.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Node ids in use (each counted once).
    pub(super) fn count(&self) -> usize {
        self.numbers.len()
    }

    /// The number of node id `origin`, for one more entry that uses it.
    pub(super) fn intern(&mut self, origin: u64) -> u32 {
        let id = self.number(origin);
        self.refs[id as usize] += 1;
        id
    }

    fn number(&mut self, origin: u64) -> u32 {
        // Writes come in runs from one node: the last one is remembered.
        if let Some((o, id)) = self.last {
            if o == origin {
                return id;
            }
        }
        if let Some(&id) = self.numbers.get(&origin) {
            self.last = Some((origin, id));
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.ids[id as usize] = origin;
                id
            }
            None => {
                let id = u32::try_from(self.ids.len()).expect("fewer than 2^32 node ids");
                self.ids.push(origin);
                self.refs.push(0);
                id
            }
        };
        self.numbers.insert(origin, id);
        self.last = Some((origin, id));
        id
    }

    /// One entry less uses number `id`: the last one releases it.
    pub(super) fn release(&mut self, id: u32) {
        let refs = &mut self.refs[id as usize];
        *refs -= 1;
        if *refs > 0 {
            return;
        }
        let origin = self.ids[id as usize];
        self.numbers.remove(&origin);
        self.free.push(id);
        if self.last.is_some_and(|(_, last)| last == id) {
            self.last = None;
        }
    }
}
