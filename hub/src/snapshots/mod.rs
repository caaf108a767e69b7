//! The visitor's snapshots: the JPEG files beside the database, the capability URLs that
//! serve them without a header (a notification's `image` is fetched that way), the wait a
//! capability GET may do for an upload still on its way, and the `[history]` retention limits.
//!
//! A capability is `base64url("<door_id>\n<key>\n<expires_ms>") "." base64url(HMAC-SHA256)`
//! under a key kept in a 0600 file beside the database. It is minted from the call id alone,
//! so the hub can put it in the ring push at once, before the door has uploaded anything.

mod capability;
mod limits;

use std::path::{Path, PathBuf};
use std::time::Duration;

use doorbell_protocol::{CallId, DoorId};
use tokio::sync::watch;

pub(crate) use capability::{Capabilities, CapabilityError};
pub use limits::HistoryConfig;

/// Largest accepted upload. A 640-px-wide JPEG at the door's quality is 30–80 KiB; 256 KiB
/// leaves room for a busy scene while one bad request cannot fill a disk.
pub(crate) const MAX_SNAPSHOT_BYTES: usize = 256 * 1024;
/// The directory beside the database that holds the files.
pub(crate) const SNAPSHOT_DIR: &str = "snapshots";
/// How long a capability URL works by default: long enough for a notification read after a
/// meeting and for a history screen left open, short enough that a URL leaked from a
/// notification log is soon useless.
pub(crate) const SNAPSHOT_URL_TTL: Duration = Duration::from_secs(3600);
/// How long a capability GET waits for a snapshot not uploaded yet. The ring push leaves at
/// the press and the door's upload follows within a few hundred milliseconds; 3 s covers a
/// slow link without holding a connection for long.
pub(crate) const SNAPSHOT_WAIT: Duration = Duration::from_secs(3);

/// Which press a snapshot belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotKey {
    /// The ring of this call.
    Call(CallId),
    /// A press while the hub was unreachable, at this Unix millisecond time (the
    /// `missed_ring`'s `at_ms`).
    MissedRing(i64),
}

impl SnapshotKey {
    /// The form stored in the database and signed in capabilities.
    pub(crate) fn encode(&self) -> String {
        match self {
            SnapshotKey::Call(call) => format!("c:{}", call.as_str()),
            SnapshotKey::MissedRing(at) => format!("m:{at}"),
        }
    }

    pub(crate) fn decode(s: &str) -> Option<SnapshotKey> {
        match s.split_once(':')? {
            ("c", call) if !call.is_empty() => Some(SnapshotKey::Call(CallId::new(call))),
            ("m", at) => at.parse().ok().map(SnapshotKey::MissedRing),
            _ => None,
        }
    }
}

/// What is stored about a press: its snapshot, or the visitor's voice message. Both live in
/// the same table and directory under the same `[history]` limits; a voice message's stored
/// key is its press's key with a `v` in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Snapshot,
    Voice,
}

impl MediaKind {
    /// The key stored in the database and signed in capabilities.
    pub(crate) fn stored_key(self, key: &SnapshotKey) -> String {
        match self {
            MediaKind::Snapshot => key.encode(),
            MediaKind::Voice => format!("v{}", key.encode()),
        }
    }

    /// The press a stored key of this kind names (`None` for the other kind's keys).
    pub(crate) fn decode(self, stored: &str) -> Option<SnapshotKey> {
        match self {
            MediaKind::Snapshot => SnapshotKey::decode(stored),
            MediaKind::Voice => SnapshotKey::decode(stored.strip_prefix('v')?),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            MediaKind::Snapshot => "jpg",
            MediaKind::Voice => "ogg",
        }
    }
}

/// Why the snapshot store could not start.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot create the snapshot directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read or write the snapshot URL key {path}: {source}")]
    Key {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Random(#[from] crate::secrets::RandomError),
}

/// The snapshot files, the capability key and the upload signal of one hub.
pub(crate) struct Snapshots {
    dir: PathBuf,
    pub(crate) capabilities: Capabilities,
    /// Bumped after every stored upload; capability GETs waiting for one watch it.
    uploaded: watch::Sender<u64>,
}

/// Deletes snapshot files of the hub whose database is `db_path`, after their rows were
/// deleted (`doorbell-hub doors remove`, in a process other than the serving hub).
pub fn remove_snapshot_files(db_path: &Path, files: &[String]) -> Result<(), SnapshotError> {
    if !files.is_empty() {
        Snapshots::open(db_path)?.remove(files);
    }
    Ok(())
}

impl Snapshots {
    /// Creates (0700) `snapshots/` beside `db_path` and loads or makes the URL key.
    pub(crate) fn open(db_path: &Path) -> Result<Snapshots, SnapshotError> {
        use std::os::unix::fs::DirBuilderExt;
        let parent = db_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = parent.join(SNAPSHOT_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| SnapshotError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        let capabilities = Capabilities::load_or_create(&parent.join("snapshot-url.key"))?;
        Ok(Snapshots {
            dir,
            capabilities,
            uploaded: watch::Sender::new(0),
        })
    }

    #[cfg(test)]
    /// The file name a snapshot of `key` at `door_id` is stored under: derived from both, so
    /// a retried upload replaces its file, and free of anything a door could choose.
    pub(crate) fn file_name(door_id: &DoorId, key: &SnapshotKey) -> String {
        Self::media_file_name(MediaKind::Snapshot, door_id, key)
    }

    /// [`Snapshots::file_name`] for either kind.
    pub(crate) fn media_file_name(kind: MediaKind, door_id: &DoorId, key: &SnapshotKey) -> String {
        let digest = crate::secrets::sha256_hex(
            format!("{}\n{}", door_id.as_str(), kind.stored_key(key)).as_bytes(),
        );
        format!("{}.{}", &digest[..32], kind.extension())
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes a JPEG or an Ogg file (0600, via a temporary file and a rename).
    pub(crate) fn write(&self, file: &str, jpeg: &[u8]) -> std::io::Result<()> {
        crate::secrets::write_private_file(&self.path(file), jpeg, 0o600)
    }

    /// Deletes files whose rows are gone; a missing file is not an error.
    pub(crate) fn remove(&self, files: &[String]) {
        for file in files {
            match std::fs::remove_file(self.path(file)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file, error = %e, "could not delete a snapshot file"),
            }
        }
    }

    /// Wakes capability GETs waiting for an upload.
    pub(crate) fn notify_uploaded(&self) {
        self.uploaded.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn watch_uploads(&self) -> watch::Receiver<u64> {
        self.uploaded.subscribe()
    }
}

/// `true` for bytes that start like a JPEG (SOI and a marker) and end with EOI.
pub(crate) fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_reject_junk() {
        for key in [
            SnapshotKey::Call(CallId::new("c-1:x")),
            SnapshotKey::MissedRing(42),
        ] {
            assert_eq!(SnapshotKey::decode(&key.encode()), Some(key));
        }
        for bad in ["", "c:", "x:1", "m:abc", "c"] {
            assert_eq!(SnapshotKey::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn jpeg_magic() {
        assert!(is_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0xFF, 0xD9]));
        assert!(!is_jpeg(b"\x89PNG\r\n\x1a\n"));
        assert!(!is_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!is_jpeg(&[]));
    }

    #[test]
    fn file_names_differ_by_door_and_key() {
        let d = DoorId::new("d-1");
        let a = Snapshots::file_name(&d, &SnapshotKey::MissedRing(1));
        let b = Snapshots::file_name(&d, &SnapshotKey::MissedRing(2));
        let c = Snapshots::file_name(&DoorId::new("d-2"), &SnapshotKey::MissedRing(1));
        assert!(a != b && a != c && a.ends_with(".jpg"));
    }
}
