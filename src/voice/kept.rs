//! Voice messages the hub could not take (unreachable, or failing), kept on disk until it is
//! back: `state_dir/kept-voice/<press>.ogg`, mode 0600, the newest [`MAX_KEPT_VOICE`] only.

use std::path::{Path, PathBuf};

use doorbell_protocol::CallId;

use crate::snapshot_upload::SnapshotTarget;

/// Messages kept while the hub is unreachable: a day of a busy door's missed visitors, at most
/// ~2 MiB of 20 s messages (a minute is ~180 KiB).
pub const MAX_KEPT_VOICE: usize = 10;
/// Directory in the state directory.
pub const DIR_NAME: &str = "kept-voice";

#[derive(Debug, Clone)]
pub struct KeptVoice {
    dir: PathBuf,
}

/// The file name of a press: `m<at_ms>` for a missed ring, `c<call id>` for a call (the door's
/// own ids, `c-<hex>-<n>`; anything else is not kept).
fn stem(target: &SnapshotTarget) -> Option<String> {
    match target {
        SnapshotTarget::MissedRing(at) => Some(format!("m{at}")),
        SnapshotTarget::Call(call)
            if !call.as_str().is_empty()
                && call.as_str().len() <= 64
                && call
                    .as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(format!("c{}", call.as_str()))
        }
        SnapshotTarget::Call(_) => None,
    }
}

fn target_of(stem: &str) -> Option<SnapshotTarget> {
    match stem.split_at_checked(1)? {
        ("m", at) => at.parse().ok().map(SnapshotTarget::MissedRing),
        ("c", call) if !call.is_empty() => Some(SnapshotTarget::Call(CallId::new(call))),
        _ => None,
    }
}

impl KeptVoice {
    pub fn new(state_dir: &Path) -> Self {
        KeptVoice {
            dir: state_dir.join(DIR_NAME),
        }
    }

    /// Keeps `ogg` for `target`, dropping the oldest beyond [`MAX_KEPT_VOICE`].
    pub fn save(&self, target: &SnapshotTarget, ogg: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let Some(stem) = stem(target) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a call id the door makes",
            ));
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        doorbell_common::write_private_file(&self.dir.join(format!("{stem}.ogg")), ogg, 0o600)?;
        let pending = self.pending();
        for old in pending
            .iter()
            .take(pending.len().saturating_sub(MAX_KEPT_VOICE))
        {
            tracing::warn!(?old, "too many kept voice messages; dropping the oldest");
            self.remove(old);
        }
        Ok(())
    }

    /// The kept messages, oldest first (by file time).
    pub fn pending(&self) -> Vec<SnapshotTarget> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut kept: Vec<(std::time::SystemTime, SnapshotTarget)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().into_string().ok()?;
                let target = target_of(name.strip_suffix(".ogg")?)?;
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, target))
            })
            .collect();
        kept.sort_by_key(|(at, _)| *at);
        kept.into_iter().map(|(_, t)| t).collect()
    }

    pub fn read(&self, target: &SnapshotTarget) -> std::io::Result<Vec<u8>> {
        let stem = stem(target).ok_or(std::io::ErrorKind::InvalidInput)?;
        std::fs::read(self.dir.join(format!("{stem}.ogg")))
    }

    pub fn remove(&self, target: &SnapshotTarget) {
        if let Some(stem) = stem(target) {
            let _ = std::fs::remove_file(self.dir.join(format!("{stem}.ogg")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_messages_round_trip_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let kept = KeptVoice::new(dir.path());
        let call = SnapshotTarget::Call(CallId::new("c-1a2b-3"));
        kept.save(&call, b"OggS call").unwrap();
        assert_eq!(kept.pending(), vec![call.clone()]);
        assert_eq!(kept.read(&call).unwrap(), b"OggS call");
        for at in 0..MAX_KEPT_VOICE as u64 + 2 {
            kept.save(&SnapshotTarget::MissedRing(at), b"OggS").unwrap();
        }
        assert_eq!(kept.pending().len(), MAX_KEPT_VOICE);
        assert!(kept
            .save(&SnapshotTarget::Call(CallId::new("../etc")), b"x")
            .is_err());
        kept.remove(&SnapshotTarget::MissedRing(MAX_KEPT_VOICE as u64 + 1));
        assert_eq!(kept.pending().len(), MAX_KEPT_VOICE - 1);
    }
}
