//! Rings the hub never heard: presses while the hub was unreachable.
//!
//! The door chimes locally (so the visitor knows the press registered) and keeps the press's
//! wall-clock time here. When the hub accepts the door's `hello` again, the daemon reports
//! each one as `missed_ring { at_ms }` and clears the queue. The queue is bounded (the newest
//! [`MAX_MISSED_RINGS`] are kept) and saved in the state directory, so a power cut during an
//! outage does not lose them either.
//!
//! Delivery is at most once: a ring is removed when it is handed to the link after `welcome`.
//! If the link drops in the few milliseconds before the frame leaves, that ring is lost.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Presses kept while the hub is unreachable. A visitor pressing again and again, or a long
/// outage, should not grow memory or the file without bound; the last 20 say enough ("someone
/// rang at 14:02, and kept ringing until 14:05"). The oldest is dropped first, with a log line.
pub const MAX_MISSED_RINGS: usize = 20;

/// File name in the state directory.
pub const FILE_NAME: &str = "missed_rings.json";

#[derive(Debug)]
pub struct MissedRings {
    /// Unix milliseconds of each press, oldest first.
    queue: VecDeque<u64>,
    /// Where the queue is saved; `None` keeps it in memory only.
    path: Option<PathBuf>,
}

impl MissedRings {
    /// An empty queue that is not saved anywhere.
    pub fn in_memory() -> Self {
        MissedRings {
            queue: VecDeque::new(),
            path: None,
        }
    }

    /// The queue saved in `state_dir` by an earlier run (empty if there is none). A file we
    /// cannot read or parse is logged and replaced: losing old missed rings is better than
    /// not starting.
    pub fn load(state_dir: &Path) -> Self {
        let path = state_dir.join(FILE_NAME);
        let queue = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<u64>>(&bytes) {
                Ok(list) => {
                    let skip = list.len().saturating_sub(MAX_MISSED_RINGS);
                    list.into_iter().skip(skip).collect()
                }
                Err(e) => {
                    tracing::warn!(
                        "{}: not a list of missed rings ({e}); starting empty",
                        path.display()
                    );
                    VecDeque::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => VecDeque::new(),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; starting empty", path.display());
                VecDeque::new()
            }
        };
        if !queue.is_empty() {
            tracing::info!(
                count = queue.len(),
                "missed rings from before the restart will be reported"
            );
        }
        MissedRings {
            queue,
            path: Some(path),
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Remember a press at `at_ms` (Unix ms).
    pub fn push(&mut self, at_ms: u64) {
        if self.queue.len() >= MAX_MISSED_RINGS {
            if let Some(oldest) = self.queue.pop_front() {
                tracing::warn!(
                    dropped_at_ms = oldest,
                    "more than {MAX_MISSED_RINGS} missed rings; forgetting the oldest"
                );
            }
        }
        self.queue.push_back(at_ms);
        self.save();
    }

    /// Everything queued, oldest first; the queue is empty afterwards.
    pub fn take_all(&mut self) -> Vec<u64> {
        let all: Vec<u64> = self.queue.drain(..).collect();
        if !all.is_empty() {
            self.save();
        }
        all
    }

    fn save(&self) {
        let Some(path) = &self.path else { return };
        let list: Vec<u64> = self.queue.iter().copied().collect();
        let written = serde_json::to_vec(&list)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                doorbell_hub::secrets::write_private_file(path, &bytes, 0o600)
            });
        if let Err(e) = written {
            tracing::warn!("cannot save missed rings to {}: {e}", path.display());
        }
    }
}

/// The wall clock in Unix milliseconds (0 if it is before 1970, which the hub refuses).
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut rings = MissedRings::load(dir.path());
        assert!(rings.is_empty());
        for at in 0..(MAX_MISSED_RINGS as u64 + 3) {
            rings.push(1000 + at);
        }
        assert_eq!(rings.len(), MAX_MISSED_RINGS);

        let mut reloaded = MissedRings::load(dir.path());
        let all = reloaded.take_all();
        assert_eq!(all.len(), MAX_MISSED_RINGS);
        assert_eq!(all[0], 1003, "the oldest three were dropped");
        assert_eq!(*all.last().unwrap(), 1000 + MAX_MISSED_RINGS as u64 + 2);
        assert!(
            MissedRings::load(dir.path()).is_empty(),
            "taken rings are gone from disk"
        );
    }

    #[test]
    fn a_corrupt_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(MissedRings::load(dir.path()).is_empty());
    }
}
