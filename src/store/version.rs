//! Versions of writes and the hybrid logical clock that stamps them.

/// The version of a write: a hybrid logical clock reading plus the id of the
/// node that made the write. Totally ordered (clock, then origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// Hybrid logical clock: wall-clock ms in the upper 48 bits, a logical
    /// counter in the lower 16.
    pub clock: u64,
    /// Id of the node that made the write.
    pub origin: u64,
}

impl Version {
    /// Wall-clock milliseconds when the write was made.
    pub fn wall_ms(&self) -> u64 {
        Hlc::wall_ms(self.clock)
    }
}

/// A hybrid logical clock (Kulkarni et al.): readings never go backwards,
/// stay close to wall-clock time, and move past every clock seen from peers.
#[derive(Debug, Clone, Default)]
pub struct Hlc {
    last: u64,
}

const LOGICAL_BITS: u32 = 16;

impl Hlc {
    /// A reading for a local event at wall-clock time `wall_ms`.
    pub fn now(&mut self, wall_ms: u64) -> u64 {
        let physical = wall_ms << LOGICAL_BITS;
        self.last = if physical > self.last {
            physical
        } else {
            self.last + 1
        };
        self.last
    }

    /// Moves the clock past a reading seen from a peer. Readings more than
    /// `max_ahead_ms` ahead of our wall clock are not followed (a peer with
    /// a wild clock must not drag every version into the future).
    pub fn observe(&mut self, seen: u64, wall_ms: u64, max_ahead_ms: u64) {
        let limit = (wall_ms.saturating_add(max_ahead_ms)) << LOGICAL_BITS;
        if seen > self.last && seen <= limit {
            self.last = seen;
        }
    }

    /// Milliseconds since the epoch of a reading.
    pub fn wall_ms(reading: u64) -> u64 {
        reading >> LOGICAL_BITS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_is_monotonic_and_bounded_by_max_ahead() {
        let mut c = Hlc::default();
        let a = c.now(1000);
        let b = c.now(1000);
        let d = c.now(900);
        assert!(a < b && b < d);
        assert_eq!(Hlc::wall_ms(a), 1000);
        c.observe(5000 << 16, 1000, 10_000);
        assert!(c.now(1000) > 5000 << 16);
        let before = c.now(1000);
        c.observe(1_000_000 << 16, 1000, 10_000);
        assert!(c.now(1000) < 1_000_000 << 16 && c.now(1000) > before);
    }
}
