//! `[history]`: how much call history and how many snapshots the hub keeps.

use std::time::Duration;

/// The `[history]` table of `doorbell-hub serve --config` (and of `doorbelld`'s config for its
/// embedded hub). Whichever limit is reached first prunes the oldest events and snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Events and snapshots older than this many days are deleted.
    pub max_days: u32,
    /// At most this many events (rings, answers, hang-ups, missed rings) are kept.
    pub max_events: u32,
    /// The snapshot and voice-message files together stay under this many bytes.
    pub max_bytes: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            // A month answers "who came while we were away".
            max_days: 30,
            // Ten busy days at a shop door; a few MB of database.
            max_events: 10_000,
            // ~2000 snapshots of 50 KiB: a month at a busy house, small for any SD card.
            max_bytes: 100 * 1024 * 1024,
        }
    }
}

impl HistoryConfig {
    /// `max_days` as a duration in Unix milliseconds.
    pub(crate) fn max_age_ms(&self) -> i64 {
        i64::try_from(Duration::from_secs(u64::from(self.max_days) * 86_400).as_millis())
            .unwrap_or(i64::MAX)
    }
}
