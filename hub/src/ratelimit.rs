//! Small rate limiters: a token bucket per connection for messages (and per TURN allocation
//! for relayed bytes), and a per-address failure counter for pairing codes and TURN credentials.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Classic token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(capacity: u32, per_second: u32, now: Instant) -> Self {
        TokenBucket {
            capacity: f64::from(capacity),
            per_second: f64::from(per_second),
            tokens: f64::from(capacity),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.try_take_n(1, now)
    }

    /// Takes `n` tokens if there are that many (e.g. bytes of a datagram).
    pub(crate) fn try_take_n(&mut self, n: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= f64::from(n) {
            self.tokens -= f64::from(n);
            true
        } else {
            false
        }
    }
}

/// Failed pairing attempts allowed per client address per window. A real user mistypes a code
/// once or twice; a guesser needs ~2^95 tries.
pub const PAIR_FAILURES_PER_WINDOW: u32 = 10;
/// Length of the failure-counting window.
pub(crate) const PAIR_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; beyond this, stale entries are pruned and, if none are stale,
/// unknown addresses are refused until some are (bounds memory under a distributed attack).
pub(crate) const MAX_TRACKED_ADDRESSES: usize = 4096;

/// Counts failures per address in fixed windows.
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    /// Whether `ip` has used up its failures for the current window.
    pub(crate) fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some((start, n)) if now.saturating_duration_since(*start) < PAIR_FAILURE_WINDOW => {
                *n >= PAIR_FAILURES_PER_WINDOW
            }
            Some(_) => {
                map.remove(&ip);
                false
            }
            None => {
                if map.len() >= MAX_TRACKED_ADDRESSES {
                    map.retain(|_, (start, _)| {
                        now.saturating_duration_since(*start) < PAIR_FAILURE_WINDOW
                    });
                }
                map.len() >= MAX_TRACKED_ADDRESSES
            }
        }
    }

    /// Whether `ip` itself has used up its failures for the current window. Unlike
    /// [`Self::is_blocked`], an address the table has no room for is not refused: for a
    /// check that runs only after the credentials failed, failing open costs nothing.
    pub(crate) fn has_used_up(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip).is_some_and(|(start, n)| {
            now.saturating_duration_since(*start) < PAIR_FAILURE_WINDOW
                && *n >= PAIR_FAILURES_PER_WINDOW
        })
    }

    /// Counts one failure for `ip`.
    pub(crate) fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&ip) {
            return;
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= PAIR_FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_over_time() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, 1, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn failures_block_then_window_resets() {
        let l = FailureLimiter::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        for _ in 0..PAIR_FAILURES_PER_WINDOW {
            assert!(!l.is_blocked(ip, t0));
            l.record_failure(ip, t0);
        }
        assert!(l.is_blocked(ip, t0));
        assert!(!l.is_blocked([10, 0, 0, 2].into(), t0));
        assert!(!l.is_blocked(ip, t0 + PAIR_FAILURE_WINDOW));
    }
}
