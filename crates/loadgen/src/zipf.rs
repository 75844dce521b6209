//! Zipfian key choice, as YCSB draws it (Gray et al., "Quickly generating
//! billion-record synthetic databases", SIGMOD 1994): item `i` (0-based) is
//! drawn with probability proportional to `1 / (i + 1)^theta`. Items 0 and 1
//! are drawn with their exact probabilities; the rest follow the power law
//! approximately (Gray's closed form, as in YCSB), which is what makes it O(1).

use rand_xoshiro::rand_core::Rng;

/// YCSB's default skew: the hottest 1% of 10,000 keys take about a third of the draws.
pub const DEFAULT_THETA: f64 = 0.99;

/// A Zipfian distribution over `0..n`, drawn in O(1) after an O(n) setup.
#[derive(Clone, Debug)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

/// Why a Zipfian distribution cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ZipfError {
    /// There must be at least one item.
    #[error("a zipfian distribution needs at least one key")]
    Empty,
    /// Gray's method needs `0 < theta < 1`.
    #[error("zipfian theta must be in (0, 1), got {0}")]
    Theta(f64),
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipfian {
    /// The distribution over `0..n` with skew `theta` (0 < theta < 1).
    pub fn new(n: u64, theta: f64) -> Result<Zipfian, ZipfError> {
        if n == 0 {
            return Err(ZipfError::Empty);
        }
        if !(theta > 0.0 && theta < 1.0) {
            return Err(ZipfError::Theta(theta));
        }
        let zeta_n = zeta(n, theta);
        let zeta_2 = zeta(2.min(n), theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = if n == 1 { 0.0 } else { (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n) };
        Ok(Zipfian { n, theta, alpha, zeta_n, eta })
    }

    /// How many items the distribution draws from.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Always false: an empty distribution cannot be built.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The probability of item `i` (for tests and docs).
    pub fn probability(&self, i: u64) -> f64 {
        1.0 / ((i + 1) as f64).powf(self.theta) / self.zeta_n
    }

    /// Draws one item in `0..n`; item 0 is the most frequent.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        // 53 random bits: a uniform float in [0, 1).
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let item = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        item.min(self.n - 1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::SeedableRng;

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(Zipfian::new(0, 0.99).unwrap_err(), ZipfError::Empty);
        assert_eq!(Zipfian::new(10, 1.0).unwrap_err(), ZipfError::Theta(1.0));
        assert_eq!(Zipfian::new(10, 0.0).unwrap_err(), ZipfError::Theta(0.0));
    }

    #[test]
    fn frequencies_follow_the_power_law() {
        let n = 1000;
        let z = Zipfian::new(n, DEFAULT_THETA).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let draws = 400_000;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[z.sample(&mut rng) as usize] += 1;
        }
        // Items 0 and 1 are exact: within 3% of their probability.
        for i in [0u64, 1] {
            let expected = z.probability(i) * draws as f64;
            let got = counts[i as usize] as f64;
            assert!((got - expected).abs() / expected < 0.03, "item {i}: {got} draws, expected {expected}");
        }
        // The approximation keeps the mass of the hottest 10% within 5% of exact.
        let exact: f64 = (0..100).map(|i| z.probability(i)).sum::<f64>() * draws as f64;
        let got = counts[..100].iter().sum::<u64>() as f64;
        assert!((got - exact).abs() / exact < 0.05, "hottest 10%: {got} draws, exact {exact}");
        // Monotone in bulk: the first decile is drawn far more than the last.
        let first: u64 = counts[..100].iter().sum();
        let last: u64 = counts[900..].iter().sum();
        assert!(first > 10 * last, "first decile {first}, last {last}");
        // And every draw is in range (the counts vector would have panicked otherwise).
        assert_eq!(counts.iter().sum::<u64>(), draws);
    }

    #[test]
    fn single_key_is_always_drawn() {
        let z = Zipfian::new(1, 0.5).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        assert!((0..1000).all(|_| z.sample(&mut rng) == 0));
    }

    proptest::proptest! {
        #[test]
        fn draws_stay_in_range(n in 1u64..5000, theta in 0.01f64..0.999, seed: u64) {
            let z = Zipfian::new(n, theta).unwrap();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            for _ in 0..200 {
                proptest::prop_assert!(z.sample(&mut rng) < n);
            }
        }
    }
}
