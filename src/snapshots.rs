//! The door's side of the visitor's snapshot: what the daemon runs, each in a task of its own
//! so the call loop never waits (the ring has gone out before any of this starts).
//!
//! The shell's `SnapshotPort` (`daemon::ports`) runs these for the core's
//! `TakeSnapshot` and `UploadMissedSnapshots` actions.
//!
//! - a ring: [`upload_for_call`] takes the picture from the call's just-started session
//!   (`media::snapshot`) and uploads it ([`crate::snapshot_upload`]);
//! - a press the hub cannot hear: [`keep_missed`] opens the camera for one picture (no call
//!   runs, so it is free) and keeps it ([`crate::missed_snapshots`]);
//! - the hub is back: [`upload_missed`] uploads the kept ones after their `missed_ring`s.

use std::time::Duration;

use doorbell_protocol::CallId;

use crate::link::{self, LinkConfig};
use crate::media::{self, MediaPlan, SnapshotGrab};
use crate::missed_snapshots::MissedSnapshots;
use crate::snapshot_upload::{SnapshotTarget, SnapshotUploader};

/// How long the door waits for the first picture: a warm camera gives one within a frame or
/// two; a camera that gives none in 2 s has no snapshot to give.
pub const SNAPSHOT_GRAB_TIMEOUT: Duration = Duration::from_secs(2);

/// The snapshot uploader for the hub of `link`, or `None` (logged) when it cannot be made.
pub fn uploader(link: &LinkConfig) -> Option<SnapshotUploader> {
    let made = link::client_tls(link.ca_file.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|tls| {
            SnapshotUploader::new(&link.url, &link.door_id, &link.secret, tls)
                .map_err(|e| e.to_string())
        });
    match made {
        Ok(uploader) => Some(uploader),
        Err(e) => {
            tracing::warn!("no visitor snapshots: {e}");
            None
        }
    }
}

/// Takes the visitor's snapshot from `grab` (the session just started for `call_id`) and
/// uploads it.
pub fn upload_for_call(uploader: SnapshotUploader, call_id: &CallId, grab: SnapshotGrab) {
    let call_id = call_id.clone();
    tokio::spawn(async move {
        let taken = tokio::task::spawn_blocking(move || grab.take(SNAPSHOT_GRAB_TIMEOUT)).await;
        let jpeg = match taken {
            Ok(Ok(jpeg)) => jpeg,
            Ok(Err(e)) => return tracing::warn!(%call_id, "no snapshot: {e}"),
            Err(e) => return tracing::warn!(%call_id, "snapshot task failed: {e}"),
        };
        let bytes = jpeg.len();
        match uploader
            .upload(&SnapshotTarget::Call(call_id.clone()), jpeg)
            .await
        {
            Ok(()) => tracing::info!(%call_id, bytes, "snapshot uploaded"),
            Err(e) => tracing::warn!(%call_id, "snapshot not uploaded: {e}"),
        }
    });
}

/// A press at `at_ms` the hub will not hear now: keep a picture with the missed ring.
pub fn keep_missed(plan: &MediaPlan, store: MissedSnapshots, at_ms: u64) {
    let (source, width, height) = (plan.video_source.clone(), plan.width, plan.height);
    tokio::task::spawn_blocking(move || {
        let taken = media::snapshot::grab_once(&source, width, height, SNAPSHOT_GRAB_TIMEOUT);
        match taken.map(|jpeg| store.save(at_ms, &jpeg)) {
            Ok(Ok(())) => tracing::info!(at_ms, "kept the missed ring's snapshot"),
            Ok(Err(e)) => tracing::warn!(at_ms, "cannot keep the missed ring's snapshot: {e}"),
            Err(e) => tracing::warn!(at_ms, "no snapshot of the missed ring: {e}"),
        }
    });
}

/// Uploads the kept snapshots of missed rings, oldest first. Each is deleted once the hub has
/// it or refused it for good; one the hub could not take now stays for the next reconnection.
pub fn upload_missed(uploader: SnapshotUploader, store: MissedSnapshots) {
    tokio::spawn(async move {
        for at_ms in store.pending() {
            let jpeg = match store.read(at_ms) {
                Ok(jpeg) => jpeg,
                Err(e) => {
                    tracing::warn!(at_ms, "cannot read a missed-ring snapshot: {e}");
                    store.remove(at_ms);
                    continue;
                }
            };
            match uploader
                .upload(&SnapshotTarget::MissedRing(at_ms), jpeg)
                .await
            {
                Ok(()) => {
                    tracing::info!(at_ms, "missed-ring snapshot uploaded");
                    store.remove(at_ms);
                }
                Err(e) if e.is_transient() => {
                    return tracing::warn!(at_ms, "missed-ring snapshot not uploaded, kept: {e}");
                }
                Err(e) => {
                    tracing::warn!(at_ms, "missed-ring snapshot refused, dropped: {e}");
                    store.remove(at_ms);
                }
            }
        }
    });
}
