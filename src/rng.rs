//! A small, fast, seeded random generator (xorshift64*): the overlay's
//! random choices and the simulator's. Not for secrets (keys come from the
//! operating system). A seed replays every choice, so a simulated run or a
//! failing test is repeated exactly.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`: the seed is mixed first (splitmix64), so
    /// seeds that differ in one bit start far apart.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index into a slice of `len` (> 0) elements.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Up to `n` distinct elements of `items`, in random order.
    pub fn sample<T: Clone>(&mut self, items: &[T], n: usize) -> Vec<T> {
        let mut picks: Vec<usize> = (0..items.len()).collect();
        let n = n.min(picks.len());
        for i in 0..n {
            let j = i + self.index(picks.len() - i);
            picks.swap(i, j);
        }
        picks[..n].iter().map(|&i| items[i].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_seeds_give_different_runs() {
        for seed in 0..64u64 {
            let (mut a, mut b) = (Rng::new(seed), Rng::new(seed ^ 1));
            assert_ne!(a.next_u64(), b.next_u64(), "seed {seed}");
        }
    }

    #[test]
    fn a_seed_replays_and_samples_are_distinct() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        let items: Vec<u32> = (0..10).collect();
        for n in [0, 3, 10, 20] {
            let mut s = a.sample(&items, n);
            assert_eq!(s.len(), n.min(10));
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), n.min(10));
        }
    }
}
