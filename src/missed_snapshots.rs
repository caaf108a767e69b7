//! Snapshots of presses the hub never heard, kept on disk beside the missed rings until the
//! hub is back: one JPEG per press, named by the press's time (the `missed_ring`'s `at_ms`),
//! in `state_dir/missed-snapshots/`, mode 0600. Bounded like the missed rings: the newest
//! [`MAX_MISSED_SNAPSHOTS`] are kept.

use std::path::{Path, PathBuf};

/// Snapshots kept while the hub is unreachable: one per missed ring kept
/// (`missed::MAX_MISSED_RINGS`), so at most ~1.6 MB of 80 KiB pictures.
pub const MAX_MISSED_SNAPSHOTS: usize = 20;
/// Directory in the state directory.
pub const DIR_NAME: &str = "missed-snapshots";

#[derive(Debug, Clone)]
pub struct MissedSnapshots {
    dir: PathBuf,
}

impl MissedSnapshots {
    pub fn new(state_dir: &Path) -> Self {
        MissedSnapshots {
            dir: state_dir.join(DIR_NAME),
        }
    }

    fn path(&self, at_ms: u64) -> PathBuf {
        self.dir.join(format!("{at_ms}.jpg"))
    }

    /// Keeps `jpeg` as the snapshot of the press at `at_ms`, dropping the oldest beyond
    /// [`MAX_MISSED_SNAPSHOTS`].
    pub fn save(&self, at_ms: u64, jpeg: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        doorbell_common::write_private_file(&self.path(at_ms), jpeg, 0o600)?;
        let pending = self.pending();
        for old in pending
            .iter()
            .take(pending.len().saturating_sub(MAX_MISSED_SNAPSHOTS))
        {
            tracing::warn!(
                at_ms = old,
                "too many missed-ring snapshots; dropping the oldest"
            );
            self.remove(*old);
        }
        Ok(())
    }

    /// The presses with a kept snapshot, oldest first.
    pub fn pending(&self) -> Vec<u64> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut times: Vec<u64> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_suffix(".jpg")?.parse().ok()
            })
            .collect();
        times.sort_unstable();
        times
    }

    pub fn read(&self, at_ms: u64) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(at_ms))
    }

    /// Forgets the snapshot of `at_ms` (uploaded, or refused for good).
    pub fn remove(&self, at_ms: u64) {
        match std::fs::remove_file(self.path(at_ms)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(at_ms, "cannot delete a missed-ring snapshot: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_kept_private_bounded_and_oldest_first() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MissedSnapshots::new(dir.path());
        assert!(store.pending().is_empty());
        for at in (1..=MAX_MISSED_SNAPSHOTS as u64 + 2).rev() {
            store.save(at, &[at as u8]).expect("save");
        }
        let pending = store.pending();
        assert_eq!(pending.len(), MAX_MISSED_SNAPSHOTS);
        assert_eq!(pending[0], 3, "the two oldest were dropped");
        assert_eq!(store.read(3).expect("read"), vec![3]);
        let mode = std::fs::metadata(store.path(3))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        store.remove(3);
        store.remove(3);
        assert_eq!(store.pending()[0], 4);
    }
}
