//! Small rate limiters: a token bucket per connection for messages (and per TURN allocation
//! for relayed bytes), and a per-address failure counter for pairing codes and TURN credentials.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::limits::AddrKey;

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
/// Addresses tracked at once (bounds memory under a distributed attack). When the table is
/// full, stale entries go first, then the entry whose window started longest ago: an attacker
/// with many addresses can at worst make the table forget one of its own, never lock anyone
/// else out.
pub(crate) const MAX_TRACKED_ADDRESSES: usize = 4096;

/// Counts failures per address (IPv6 per /64, see [`AddrKey`]) in fixed windows. Callers
/// check the credential first and consult the limiter only when it failed, so a valid code
/// or credential is never refused because of anyone's failures.
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    windows: Mutex<HashMap<AddrKey, (Instant, u32)>>,
}

impl FailureLimiter {
    /// Whether `ip` (its /64 for IPv6) has used up its failures for the current window.
    pub(crate) fn has_used_up(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&AddrKey::of(ip)).is_some_and(|(start, n)| {
            now.saturating_duration_since(*start) < PAIR_FAILURE_WINDOW
                && *n >= PAIR_FAILURES_PER_WINDOW
        })
    }

    /// Counts one failure for `ip`, making room in a full table.
    pub(crate) fn record_failure(&self, ip: IpAddr, now: Instant) {
        let key = AddrKey::of(ip);
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&key) {
            map.retain(|_, (start, _)| now.saturating_duration_since(*start) < PAIR_FAILURE_WINDOW);
            if map.len() >= MAX_TRACKED_ADDRESSES {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(key).or_insert((now, 0));
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
            assert!(!l.has_used_up(ip, t0));
            l.record_failure(ip, t0);
        }
        assert!(l.has_used_up(ip, t0));
        assert!(!l.has_used_up([10, 0, 0, 2].into(), t0));
        assert!(!l.has_used_up(ip, t0 + PAIR_FAILURE_WINDOW));
    }

    #[test]
    fn ipv6_neighbours_in_one_64_share_a_count() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        for i in 0..PAIR_FAILURES_PER_WINDOW {
            let ip: IpAddr = format!("2001:db8:0:1::{:x}", i + 1).parse().expect("v6");
            l.record_failure(ip, t0);
        }
        assert!(l.has_used_up("2001:db8:0:1::ffff".parse().expect("v6"), t0));
        assert!(!l.has_used_up("2001:db8:0:2::1".parse().expect("v6"), t0));
    }

    #[test]
    fn a_full_table_forgets_the_oldest_instead_of_refusing_newcomers() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        let blocked: IpAddr = [10, 9, 9, 9].into();
        for _ in 0..PAIR_FAILURES_PER_WINDOW {
            l.record_failure(blocked, t0 + Duration::from_secs(1));
        }
        for i in 0..MAX_TRACKED_ADDRESSES as u32 {
            l.record_failure(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), t0);
        }
        let fresh: IpAddr = [192, 0, 2, 1].into();
        assert!(!l.has_used_up(fresh, t0), "a new address is not refused");
        l.record_failure(fresh, t0 + Duration::from_secs(2));
        assert!(
            l.has_used_up(blocked, t0 + Duration::from_secs(2)),
            "the newest entries stay"
        );
        let len = l.windows.lock().map(|m| m.len()).unwrap_or(0);
        assert!(len <= MAX_TRACKED_ADDRESSES, "bounded: {len}");
    }
}
