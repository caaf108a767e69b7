//! The missed-rings file: presses the hub never heard (see [`crate::core::ledger`]), saved in
//! the state directory so a power cut during an outage does not lose them.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// File name in the state directory.
pub const FILE_NAME: &str = "missed_rings.json";

#[derive(Debug)]
pub struct MissedRingFile {
    path: PathBuf,
}

impl MissedRingFile {
    pub fn new(state_dir: &Path) -> Self {
        MissedRingFile {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// The rings saved by an earlier run (Unix ms, oldest first; empty if there is none). A
    /// file we cannot read or parse is logged and replaced: losing old missed rings is better
    /// than not starting.
    pub fn load(&self) -> Vec<u64> {
        let path = &self.path;
        let rings = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<u64>>(&bytes) {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!(
                        "{}: not a list of missed rings ({e}); starting empty",
                        path.display()
                    );
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}; starting empty", path.display());
                Vec::new()
            }
        };
        if !rings.is_empty() {
            tracing::info!(
                count = rings.len(),
                "missed rings from before the restart will be reported"
            );
        }
        rings
    }

    /// Replace the saved rings (failures are logged: the rings stay in memory).
    pub fn save(&self, rings: &[u64]) {
        let path = &self.path;
        let written = serde_json::to_vec(rings)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                doorbell_common::write_private_file(path, &bytes, 0o600)
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
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = MissedRingFile::new(dir.path());
        assert!(file.load().is_empty());
        file.save(&[1003, 1004]);
        assert_eq!(MissedRingFile::new(dir.path()).load(), vec![1003, 1004]);
        file.save(&[]);
        assert!(
            MissedRingFile::new(dir.path()).load().is_empty(),
            "taken rings are gone from disk"
        );
    }

    #[test]
    fn a_corrupt_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(MissedRingFile::new(dir.path()).load().is_empty());
    }
}
