//! From kernel edge events to one ring per press.
//!
//! The kernel already debounces (the line must be stable for `gpio.button_debounce_ms` before
//! an edge is reported) and stamps each edge with CLOCK_MONOTONIC. What is left is policy:
//!
//! - only the configured edge rings (press or release);
//! - after a ring, the line must go back to its resting level before it can ring again, so a
//!   held button rings once however long it is held;
//! - two rings are at least `gpio.button_min_interval_ms` apart (by kernel timestamp, not by
//!   when the event was read), so bounces that got past the kernel and a hammering visitor
//!   ring once.
//!
//! The filter is pure: it sees [`Edge`]s with explicit timestamps and says yes or no, so it is
//! tested with edge sequences and no clock at all.

use std::time::{Duration, Instant};

/// One edge as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Kernel timestamp (CLOCK_MONOTONIC, time since boot).
    pub at: Duration,
    /// The line went to its active level (pressed / motion); false: back to rest.
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct EdgeFilter {
    /// Ring on the active edge (press) or on the return to rest (release).
    ring_on_active: bool,
    min_interval: Duration,
    last_ring: Option<Duration>,
    /// Cleared by a ring, set again by the opposite edge.
    armed: bool,
}

impl EdgeFilter {
    pub fn new(ring_on_active: bool, min_interval: Duration) -> Self {
        Self {
            ring_on_active,
            min_interval,
            last_ring: None,
            armed: true,
        }
    }

    /// Whether this edge is a new ring.
    pub fn accept(&mut self, edge: Edge) -> bool {
        if edge.active != self.ring_on_active {
            self.armed = true;
            return false;
        }
        let spaced = self
            .last_ring
            .is_none_or(|last| edge.at.saturating_sub(last) >= self.min_interval);
        if !(self.armed && spaced) {
            return false;
        }
        self.armed = false;
        self.last_ring = Some(edge.at);
        true
    }
}

/// The `Instant` of a kernel CLOCK_MONOTONIC timestamp (what `std::time::Instant` uses on
/// Linux), so a press carries when the button moved, not when a thread got round to it.
pub fn instant_from_kernel(at: Duration) -> Instant {
    let now = Instant::now();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return now;
    }
    let mono = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    now.checked_sub(mono.saturating_sub(at)).unwrap_or(now)
}
