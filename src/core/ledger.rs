//! The ring ledger: the ring in progress, and the presses the hub never heard.
//!
//! A press while the hub is unreachable chimes at the door and is kept here with its
//! wall-clock time; when the hub accepts the door again, every kept press is reported as a
//! `missed_ring`, oldest first. A ring the hub never confirmed (`ringing`) that ends unanswered
//! because the link died or nobody could hear it is kept too: a silently dead link (not yet
//! noticed by the keepalive) swallows the `ring` itself. The queue is bounded and persisted by
//! the shell (`crate::missed`), so a power cut during an outage does not lose it either.
//!
//! Delivery is at most once: a ring is removed when it is handed to the link after `welcome`.

use super::Outcome;
use doorbell_protocol::CallId;
use std::collections::VecDeque;

/// Presses kept while the hub is unreachable. A visitor pressing again and again, or a long
/// outage, should not grow memory or the file without bound; the last 20 say enough ("someone
/// rang at 14:02, and kept ringing until 14:05"). The oldest is dropped first, with a log line.
pub const MAX_MISSED_RINGS: usize = 20;

#[derive(Debug)]
struct Ring {
    call_id: CallId,
    /// When it was pressed (Unix ms).
    at_ms: u64,
    /// The hub said `ringing` for it.
    confirmed: bool,
}

#[derive(Debug, Default)]
pub struct Ledger {
    ring: Option<Ring>,
    /// Unix milliseconds of each missed press, oldest first.
    missed: VecDeque<u64>,
}

impl Ledger {
    /// A ledger with the missed rings saved by an earlier run (the newest
    /// [`MAX_MISSED_RINGS`] are kept).
    pub fn new(saved: Vec<u64>) -> Self {
        let skip = saved.len().saturating_sub(MAX_MISSED_RINGS);
        Ledger {
            ring: None,
            missed: saved.into_iter().skip(skip).collect(),
        }
    }

    pub fn missed_len(&self) -> usize {
        self.missed.len()
    }

    pub fn missed(&self) -> Vec<u64> {
        self.missed.iter().copied().collect()
    }

    /// A `ring` for `call_id`, pressed at `at_ms`, went to the hub.
    pub(crate) fn ring_sent(&mut self, call_id: CallId, at_ms: u64) {
        self.ring = Some(Ring {
            call_id,
            at_ms,
            confirmed: false,
        });
    }

    /// The hub said `ringing` for the current call.
    pub(crate) fn confirm(&mut self, call_id: &CallId) {
        if let Some(ring) = self.ring.as_mut() {
            ring.confirmed |= ring.call_id == *call_id;
        }
    }

    /// The call ended: the press time to keep as a missed ring, if the hub never confirmed
    /// the ring and nobody could have heard it.
    pub(crate) fn call_ended(&mut self, call_id: &CallId, outcome: Outcome) -> Option<u64> {
        let ring = self.ring.take()?;
        let unheard = matches!(outcome, Outcome::HubLost | Outcome::Missed);
        (ring.call_id == *call_id && unheard && !ring.confirmed).then_some(ring.at_ms)
    }

    /// Remember a missed press at `at_ms` (Unix ms).
    pub(crate) fn push_missed(&mut self, at_ms: u64) {
        if self.missed.len() >= MAX_MISSED_RINGS {
            if let Some(oldest) = self.missed.pop_front() {
                tracing::warn!(
                    dropped_at_ms = oldest,
                    "more than {MAX_MISSED_RINGS} missed rings; forgetting the oldest"
                );
            }
        }
        self.missed.push_back(at_ms);
    }

    /// Every missed press, oldest first; none are left afterwards.
    pub(crate) fn take_missed(&mut self) -> Vec<u64> {
        self.missed.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest() {
        let mut ledger = Ledger::new((0..25).collect());
        assert_eq!(ledger.missed_len(), MAX_MISSED_RINGS);
        assert_eq!(ledger.missed()[0], 5, "the oldest saved ones were dropped");
        for at in 0..(MAX_MISSED_RINGS as u64 + 3) {
            ledger.push_missed(1000 + at);
        }
        let all = ledger.take_missed();
        assert_eq!(all.len(), MAX_MISSED_RINGS);
        assert_eq!(all[0], 1003, "the oldest three were dropped");
        assert_eq!(*all.last().unwrap(), 1000 + MAX_MISSED_RINGS as u64 + 2);
        assert_eq!(ledger.missed_len(), 0);
    }
}
