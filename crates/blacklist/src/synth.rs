//! Deterministic synthetic blacklists for tests and benchmarks (same seed, same list).

use crate::entry::{Entry, Key};

/// SplitMix64: small, fast, and good enough to spread test keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; 0 if `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// How synthetic serials are distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// 256 issuers, 20 uniformly random digits per serial: the worst case for memory (every
    /// segment is wide).
    Uniform,
    /// 8 issuers × 4 card types, serials `city(4) ‖ type(2) ‖ sequence(14)` with sequences
    /// below 10^8: cards issued in sequence, as real cities do (segments are narrow).
    Clustered,
}

const UNIFORM_ISSUERS: u64 = 256;
const CLUSTER_ISSUERS: u64 = 8;
const CARD_TYPES: [u128; 4] = [1, 2, 5, 10];
const SEQUENCES: u64 = 100_000_000;
const E10: u64 = 10_000_000_000;

fn issuer(i: u64) -> u64 {
    let bcd = |v: u64| ((v / 10) << 4 | (v % 10)) & 0xFF;
    // issuer code ‖ city code ‖ FFFFFFFF, as on T-Union cards.
    0x0100_0000_FFFF_FFFF | bcd(i / 100) << 40 | bcd(i % 100) << 32
}

fn cluster_base(issuer: u64, card_type: usize) -> u128 {
    let city = 1000 + u128::from(issuer) * 111;
    city * 10u128.pow(16) + CARD_TYPES[card_type] * 10u128.pow(14)
}

impl Shape {
    /// `n` distinct entries in canonical order.
    pub fn entries(self, n: usize, seed: u64) -> Vec<Entry> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::with_capacity(n);
        let (blocks, per_issuer) = match self {
            Shape::Uniform => (UNIFORM_ISSUERS, 1),
            Shape::Clustered => (
                CLUSTER_ISSUERS * CARD_TYPES.len() as u64,
                CARD_TYPES.len() as u64,
            ),
        };
        for b in 0..blocks {
            let want = n / blocks as usize + usize::from((b as usize) < n % blocks as usize);
            let iss = issuer(b / per_issuer);
            let mut codes: Vec<u128> = Vec::with_capacity(want);
            while codes.len() < want {
                for _ in codes.len()..want {
                    codes.push(match self {
                        Shape::Uniform => random_code(&mut rng),
                        Shape::Clustered => {
                            cluster_base(b / per_issuer, (b % per_issuer) as usize)
                                + u128::from(rng.below(SEQUENCES))
                        }
                    });
                }
                codes.sort_unstable();
                codes.dedup();
            }
            out.extend(
                codes
                    .into_iter()
                    .map(|code| Entry::from_key(Key { issuer: iss, code })),
            );
        }
        out
    }

    /// One entry drawn from the same distribution (listed or not).
    pub fn random(self, rng: &mut Rng) -> Entry {
        let key = match self {
            Shape::Uniform => Key {
                issuer: issuer(rng.below(UNIFORM_ISSUERS)),
                code: random_code(rng),
            },
            Shape::Clustered => {
                let i = rng.below(CLUSTER_ISSUERS);
                let t = rng.below(CARD_TYPES.len() as u64) as usize;
                Key {
                    issuer: issuer(i),
                    code: cluster_base(i, t) + u128::from(rng.below(SEQUENCES)),
                }
            }
        };
        Entry::from_key(key)
    }
}

/// A uniformly random 20-digit serial's code.
fn random_code(rng: &mut Rng) -> u128 {
    u128::from(rng.below(E10)) * u128::from(E10) + u128::from(rng.below(E10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sorted_distinct_bcd_and_deterministic() {
        for shape in [Shape::Uniform, Shape::Clustered] {
            let e = shape.entries(5_000, 7);
            assert_eq!(e.len(), 5_000);
            assert!(e.windows(2).all(|w| w[0] < w[1]));
            assert!(e.iter().all(Entry::serial_is_bcd));
            assert_eq!(e, shape.entries(5_000, 7));
        }
        let e = Shape::Clustered.entries(10, 1);
        assert_eq!(
            e[0].issuer,
            [0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(e[0].serial[..3], [0x10, 0x00, 0x01]);
    }
}
