//! The shell's ports: the small interfaces the core's actions are carried out on, with the
//! real adapters (hub link, GStreamer session, door strike, chime, the missed-rings file).
//! Each has a fake in `fakes.rs` for the shell's tests.

use crate::chime;
use crate::core::{MediaEvent, MediaEventKind};
use crate::gpio::{DoorStrike, PulseOutcome};
use crate::link::LinkHandle;
use crate::media::{Counters, IceSettings, MediaPlan, Session, SessionStats, SnapshotGrab};
use crate::missed::MissedRingFile;
use crate::missed_snapshots::MissedSnapshots;
use crate::snapshot_upload::SnapshotUploader;
use doorbell_protocol::{CallId, DoorToHub, IceCandidate, IceServer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages to the hub (dropped while the link is down).
pub trait HubPort: Send {
    fn send(&mut self, message: DoorToHub);
}

/// The one media session of the current call.
pub trait MediaPort: Send {
    /// Build and start a session for `call_id` (dropping any previous one).
    fn start(&mut self, call_id: &CallId, ice_servers: Vec<IceServer>) -> Result<(), String>;
    /// Start ICE with this offer and servers; a failure arrives later as a media event.
    fn start_ice(&mut self, call_id: &CallId, offer: &str, servers: &[IceServer]);
    fn set_answer(&mut self, call_id: &CallId, sdp: &str) -> Result<(), String>;
    fn add_remote_candidate(&mut self, call_id: &CallId, candidate: &IceCandidate);
    fn request_keyframe(&mut self, call_id: &CallId);
    fn send_control(&mut self, call_id: &CallId, text: &str) -> Result<(), String>;
    /// Drop the session; its final statistics if it was `call_id`'s.
    fn tear_down(&mut self, call_id: &CallId) -> Option<SessionStats>;
    /// The running session's statistics and live counters.
    fn stats(&self) -> Option<(SessionStats, Arc<Counters>)>;
    /// The snapshot branch of `call_id`'s session, to take the visitor's picture from.
    fn snapshot(&self, _call_id: &CallId) -> Option<SnapshotGrab> {
        None
    }
}

/// The visitor's snapshots ([`crate::snapshots`]): each runs in a task of its own.
pub trait SnapshotPort: Send {
    /// The ring of `call_id`: upload the picture from `grab`, its session's snapshot branch
    /// (`None`: the session did not start).
    fn for_call(&mut self, call_id: &CallId, grab: Option<SnapshotGrab>);
    /// A press the hub did not hear, at `at_ms`: keep a picture with the missed ring.
    fn for_missed_ring(&mut self, at_ms: u64);
    /// The hub is back: upload the kept pictures.
    fn upload_missed(&mut self);
}

/// The real snapshots: uploaded to the hub of the link, missed ones kept in the state
/// directory.
pub struct DoorSnapshots {
    /// `None` when the hub URL cannot take uploads (logged at start): pictures are not taken.
    pub uploader: Option<SnapshotUploader>,
    pub store: MissedSnapshots,
    pub plan: MediaPlan,
}

impl SnapshotPort for DoorSnapshots {
    fn for_call(&mut self, call_id: &CallId, grab: Option<SnapshotGrab>) {
        match (&self.uploader, grab) {
            (Some(uploader), Some(grab)) => {
                crate::snapshots::upload_for_call(uploader.clone(), call_id, grab)
            }
            (Some(_), None) => tracing::warn!(%call_id, "no snapshot: no media session"),
            (None, _) => {}
        }
    }

    fn for_missed_ring(&mut self, at_ms: u64) {
        if self.uploader.is_some() {
            crate::snapshots::keep_missed(&self.plan, self.store.clone(), at_ms);
        }
    }

    fn upload_missed(&mut self) {
        if let Some(uploader) = &self.uploader {
            crate::snapshots::upload_missed(uploader.clone(), self.store.clone());
        }
    }
}

/// The visitor's voice messages ([`crate::voice`]): each runs in a task of its own.
pub trait VoicePort: Send {
    /// Nobody answered `of`: play the prompt, record up to `secs`, upload or keep it.
    fn record(&mut self, of: &crate::core::SnapshotOf, secs: u32);
    /// A call needs the microphone: end a recording in progress (what it has is kept).
    fn stop(&mut self);
    /// The hub is back: upload the kept messages.
    fn upload_kept(&mut self);
    /// A phone of the current call sent quick reply `reply_id`: fetch and play it.
    fn play_reply(&mut self, reply_id: u64);
}

impl VoicePort for crate::voice::DoorVoice {
    fn record(&mut self, of: &crate::core::SnapshotOf, secs: u32) {
        crate::voice::DoorVoice::record(self, of, secs)
    }

    fn stop(&mut self) {
        self.stop_recording()
    }

    fn upload_kept(&mut self) {
        crate::voice::DoorVoice::upload_kept(self)
    }

    fn play_reply(&mut self, reply_id: u64) {
        crate::voice::DoorVoice::play_reply(self, reply_id)
    }
}

/// The door-strike relay.
pub trait StrikePort: Send {
    fn pulse(&mut self, length: Duration) -> PulseOutcome;
}

/// The door's own chime; `true` if it started playing.
pub trait ChimePort: Send {
    fn play(&mut self) -> bool;
}

/// Where missed rings survive a restart.
pub trait MissedRingStore: Send {
    fn save(&mut self, rings: &[u64]);
}

impl HubPort for LinkHandle {
    fn send(&mut self, message: DoorToHub) {
        LinkHandle::send(self, message);
    }
}

impl StrikePort for DoorStrike {
    fn pulse(&mut self, length: Duration) -> PulseOutcome {
        DoorStrike::pulse(self, length)
    }
}

impl MissedRingStore for MissedRingFile {
    fn save(&mut self, rings: &[u64]) {
        MissedRingFile::save(self, rings);
    }
}

/// GStreamer sessions, one at a time.
pub struct GstMedia {
    pub plan: MediaPlan,
    pub local_addresses: Vec<String>,
    /// Where the sessions' threads report; also how a failed `start_ice` is reported.
    pub events: mpsc::Sender<MediaEvent>,
    pub session: Option<Session>,
}

impl GstMedia {
    fn session(&self, call_id: &CallId) -> Option<&Session> {
        self.session.as_ref().filter(|s| s.call_id() == call_id)
    }
}

impl MediaPort for GstMedia {
    fn start(&mut self, call_id: &CallId, ice_servers: Vec<IceServer>) -> Result<(), String> {
        // A previous session still here would be a bug in the core; the guard cleans it.
        self.session = None;
        let ice = IceSettings {
            servers: ice_servers,
            local_addresses: self.local_addresses.clone(),
        };
        let session = Session::start(call_id.clone(), &self.plan, &ice, self.events.clone())
            .map_err(|e| e.to_string())?;
        self.session = Some(session);
        Ok(())
    }

    fn start_ice(&mut self, call_id: &CallId, offer: &str, servers: &[IceServer]) {
        let Some(session) = self.session(call_id) else {
            return;
        };
        if let Err(e) = session.start_ice(offer, servers) {
            // Reported like any media failure, through the owner's own queue.
            let _ = self.events.try_send(MediaEvent {
                call_id: call_id.clone(),
                kind: MediaEventKind::Failed(format!("cannot start ICE: {e}")),
            });
        }
    }

    fn set_answer(&mut self, call_id: &CallId, sdp: &str) -> Result<(), String> {
        match self.session(call_id) {
            Some(session) => session.set_answer(sdp).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn add_remote_candidate(&mut self, call_id: &CallId, candidate: &IceCandidate) {
        if let Some(session) = self.session(call_id) {
            session.add_remote_candidate(candidate.sdp_m_line_index, &candidate.candidate);
        }
    }

    fn request_keyframe(&mut self, call_id: &CallId) {
        if let Some(session) = self.session(call_id) {
            session.request_keyframe();
        }
    }

    fn send_control(&mut self, call_id: &CallId, text: &str) -> Result<(), String> {
        match self.session(call_id) {
            Some(session) => session.send_control(text).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn tear_down(&mut self, call_id: &CallId) -> Option<SessionStats> {
        // Dropping the session is the guard: the pipeline goes to NULL here.
        let session = self.session.take()?;
        (session.call_id() == call_id).then(|| session.stats())
    }

    fn stats(&self) -> Option<(SessionStats, Arc<Counters>)> {
        self.session.as_ref().map(|s| (s.stats(), s.counters()))
    }

    fn snapshot(&self, call_id: &CallId) -> Option<SnapshotGrab> {
        match self.session(call_id)?.snapshot() {
            Ok(grab) => Some(grab),
            Err(e) => {
                tracing::warn!(%call_id, "no snapshot: {e}");
                None
            }
        }
    }
}

/// The chime on the door's speaker; a second press while it plays does not overlap it.
pub struct SpeakerChime {
    pub sink: String,
    pub playing: Option<tokio::task::JoinHandle<Result<Duration, chime::ChimeError>>>,
}

impl ChimePort for SpeakerChime {
    fn play(&mut self) -> bool {
        if self
            .playing
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return false;
        }
        match chime::play(&self.sink) {
            Ok(task) => {
                self.playing = Some(task);
                true
            }
            Err(e) => {
                tracing::warn!("the door's chime did not play: {e}");
                false
            }
        }
    }
}
