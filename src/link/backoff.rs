//! Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog):
//! the n-th retry waits a uniformly random time in `[0, min(cap, base * 2^n)]`. The randomness
//! spreads a crowd of doors reconnecting after a hub restart over the whole window instead
//! of synchronising them. A connection that stayed up for [`Backoff::stable_after`] resets it.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// A connection that lasted this long counts as healthy: the next retry starts small.
    pub stable_after: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            attempt: 0,
        }
    }
}

impl Backoff {
    pub fn connection_ended(&mut self, lasted: Duration) {
        if lasted >= self.stable_after {
            self.attempt = 0;
        }
    }

    /// The upper bound of the next wait (before jitter).
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rng.random_range(0..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grows_exponentially_to_the_cap() {
        let mut b = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ceilings: Vec<u64> = (0..8)
            .map(|_| {
                let c = b.ceiling().as_millis() as u64;
                let d = b.next_delay(&mut rng);
                assert!(d.as_millis() as u64 <= c);
                c
            })
            .collect();
        assert_eq!(
            ceilings,
            vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
    }

    #[test]
    fn a_stable_connection_resets_and_a_short_one_does_not() {
        let mut b = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..5 {
            b.next_delay(&mut rng);
        }
        b.connection_ended(Duration::from_secs(2));
        assert_eq!(b.ceiling(), Duration::from_secs(16));
        b.connection_ended(Duration::from_secs(31));
        assert_eq!(b.ceiling(), Duration::from_millis(500));
    }

    #[test]
    fn jitter_spreads_delays_over_the_window() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let delays: Vec<u64> = (0..1000)
            .map(|_| {
                let mut b = Backoff {
                    attempt: 6,
                    ..Backoff::default()
                };
                b.next_delay(&mut rng).as_millis() as u64
            })
            .collect();
        let below_half = delays.iter().filter(|&&d| d < 15_000).count();
        // Uniform over [0, 30 s]: about half below the midpoint, never synchronised.
        assert!((400..600).contains(&below_half), "{below_half}");
    }
}
