//! A reproducible random generator without a dependency.

/// xorshift64*: a small, fast generator whose sequence a seed fixes (batch sizes, pauses,
/// test data that a failing run can repeat). The state is the seed: it must not be 0, since
/// a zero state stays zero (callers pass `seed | 1`).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits (the high ones are the best).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0; slightly uneven for an `n` that is not a power of two,
    /// which does not matter for a test).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}
