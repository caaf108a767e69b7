//! Refused connections are counted, not logged one by one: a flood would otherwise turn into
//! a flood of log lines (and of SD-card writes). One summary line per interval says how many
//! were refused and why.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the summary is written (only when something was refused).
pub(crate) const REFUSAL_SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Why a connection or request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The global TCP connection cap.
    Connections,
    /// The client's address holds its maximum of connections.
    Address,
    /// The global WebSocket cap.
    WebSockets,
    /// The client's address holds its share of WebSockets waiting for `hello`.
    PendingAddress,
    /// A WebSocket waiting for `hello` made room for a newer one.
    PendingEvicted,
    /// A `Host` the hub does not answer to.
    Host,
    /// A browser page from another origin opened `/ws`.
    Origin,
}

const KINDS: [(Refusal, &str); 7] = [
    (Refusal::Connections, "connection_cap"),
    (Refusal::Address, "per_address"),
    (Refusal::WebSockets, "websocket_cap"),
    (Refusal::PendingAddress, "hello_pending_per_address"),
    (Refusal::PendingEvicted, "hello_pending_evicted"),
    (Refusal::Host, "host"),
    (Refusal::Origin, "origin"),
];

/// Counts per [`Refusal`] since the last summary.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    counts: [AtomicU64; KINDS.len()],
}

impl RefusalLog {
    pub(crate) fn record(&self, why: Refusal) {
        if let Some(i) = KINDS.iter().position(|(k, _)| *k == why) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts since the last call ("per_address=3 host=1"), reset; `None` if nothing.
    pub(crate) fn take_summary(&self) -> Option<String> {
        let parts: Vec<String> = KINDS
            .iter()
            .zip(&self.counts)
            .filter_map(|((_, name), n)| match n.swap(0, Ordering::Relaxed) {
                0 => None,
                n => Some(format!("{name}={n}")),
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// Writes the summary line, if anything was refused.
    pub(crate) fn flush(&self) {
        if let Some(summary) = self.take_summary() {
            tracing::warn!(
                "refused in the last {}s or less: {summary}",
                REFUSAL_SUMMARY_INTERVAL.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_summary_counts_every_refusal_then_resets() {
        let log = RefusalLog::default();
        assert_eq!(log.take_summary(), None);
        for _ in 0..1000 {
            log.record(Refusal::Address);
        }
        log.record(Refusal::Host);
        assert_eq!(
            log.take_summary().as_deref(),
            Some("per_address=1000 host=1")
        );
        assert_eq!(log.take_summary(), None);
    }
}
