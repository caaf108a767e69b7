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

    /// The wait before the next attempt: uniform in `[0, ceiling]`. Counts the attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let millis = self.next_ceiling().as_millis() as u64;
        Duration::from_millis(rng.random_range(0..=millis))
    }

    /// The ceiling for this attempt, counting the attempt: what a backoff without jitter
    /// would wait (for comparisons; the link uses [`Backoff::next_delay`]).
    pub fn next_ceiling(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling
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

    /// When each of `doors` doors, all cut off at t = 0 by a hub that is down for `gap`, is
    /// back: it retries after each delay until a retry lands after `gap` (a refused connect is
    /// instant, as on loopback). Virtual time: nothing sleeps.
    fn simulate_return(
        doors: usize,
        gap: Duration,
        mut delay: impl FnMut(&mut Backoff) -> Duration,
    ) -> Vec<Duration> {
        let mut back: Vec<Duration> = (0..doors)
            .map(|_| {
                let mut b = Backoff::default();
                b.connection_ended(b.stable_after);
                let mut t = Duration::ZERO;
                loop {
                    t += delay(&mut b);
                    if t >= gap {
                        return t;
                    }
                }
            })
            .collect();
        back.sort();
        back
    }

    fn peak_in_window(sorted: &[Duration], window: Duration) -> usize {
        let mut lo = 0;
        (0..sorted.len())
            .map(|hi| {
                while sorted[hi] - sorted[lo] >= window {
                    lo += 1;
                }
                hi - lo + 1
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn two_hundred_doors_after_a_hub_restart_spread_out_instead_of_stampeding() {
        let gap = Duration::from_secs(2);
        let window = Duration::from_millis(100);
        let mut rng = rand::rngs::StdRng::seed_from_u64(200);
        let jittered = simulate_return(200, gap, |b| b.next_delay(&mut rng));
        let fixed = simulate_return(200, gap, Backoff::next_ceiling);
        // Without jitter every door knocks at the same instant.
        assert_eq!(peak_in_window(&fixed, window), 200);
        // With full jitter no 100 ms window sees more than a small share of them, and the
        // returns cover seconds, not one instant.
        let peak = peak_in_window(&jittered, window);
        assert!(peak <= 40, "{peak} doors within one 100 ms window");
        assert!(
            jittered[199] - jittered[0] > Duration::from_secs(2),
            "{jittered:?}"
        );
        // Capped: nobody waits longer than the cap after the hub is back.
        assert!(
            jittered[199] <= gap + Backoff::default().cap,
            "{:?}",
            jittered[199]
        );
    }
}
