//! The shell's ports: the small interfaces the core's actions are carried out on, with the
//! real adapters (hub link, GStreamer session, door strike, chime, the missed-rings file).
//! Each has a fake in `fakes.rs` for the shell's tests.

use crate::chime;
use crate::core::{MediaEvent, MediaEventKind};
use crate::gpio::{DoorStrike, PulseOutcome};
use crate::link::LinkHandle;
use crate::media::preview::PreviewSetup;
use crate::media::{
    Counters, IceSettings, MediaPlan, PreviewBranch, Session, SessionStats, SnapshotGrab,
};
use crate::missed::MissedRingFile;
use crate::missed_snapshots::MissedSnapshots;
use crate::snapshot_upload::SnapshotUploader;
use doorbell_protocol::{CallId, DoorToHub, IceCandidate, IceServer, SessionId};
use std::collections::HashMap;
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
    /// A preview session of `call_id`'s pipeline (see [`crate::core::preview`]). A media
    /// port without previews refuses, and the phone keeps its plain ringing screen.
    fn open_preview(&mut self, _call_id: &CallId, _session_id: &SessionId) -> Result<(), String> {
        Err("this door's media has no preview sessions".into())
    }
    fn start_preview_ice(&mut self, _session_id: &SessionId, _offer: &str, _servers: &[IceServer]) {
    }
    fn set_preview_answer(&mut self, _session_id: &SessionId, _sdp: &str) -> Result<(), String> {
        Err("no such preview session".into())
    }
    fn add_preview_candidate(&mut self, _session_id: &SessionId, _candidate: &IceCandidate) {}
    /// Let the session's audio through both ways: the phone answered in it.
    fn open_talk(&mut self, _session_id: &SessionId) {}
    fn close_preview(&mut self, _session_id: &SessionId) {}
    /// Let the door's audio out to a live view, or hold it (see [`crate::core::Action::DoorAudio`]).
    fn door_audio(&mut self, _session_id: &SessionId, _on: bool) {}
    /// The session started as `from` (for live views) is `call_id`'s from now on.
    fn adopt(&mut self, _from: &CallId, _call_id: &CallId) {}
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
    /// The phones' previews of `session` (branches of its pipeline); dropped before it.
    pub previews: HashMap<SessionId, PreviewBranch>,
    /// The preview the phone answered in: the call's data channel replies go there.
    pub talking: Option<SessionId>,
    /// The call that adopted `session` (started for live views as another id): actions
    /// name the call, the session keeps its first id.
    pub adopted_by: Option<CallId>,
}

impl GstMedia {
    fn session(&self, call_id: &CallId) -> Option<&Session> {
        let adopted = self.adopted_by.as_ref() == Some(call_id);
        self.session
            .as_ref()
            .filter(|s| adopted || s.call_id() == call_id)
    }

    /// Count the session's video encoders again (for `doorbelld status`: one, however many
    /// phones watch).
    fn count_encoders(&self) {
        if let Some(session) = &self.session {
            let encoders = crate::media::video_encoders(session.pipeline()) as u64;
            session
                .counters()
                .video_encoders
                .store(encoders, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl MediaPort for GstMedia {
    fn start(&mut self, call_id: &CallId, ice_servers: Vec<IceServer>) -> Result<(), String> {
        // A previous session still here would be a bug in the core; the guard cleans it.
        self.talking = None;
        self.previews.clear();
        self.session = None;
        self.adopted_by = None;
        let ice = IceSettings {
            servers: ice_servers,
            local_addresses: self.local_addresses.clone(),
        };
        let session = Session::start(call_id.clone(), &self.plan, &ice, self.events.clone())
            .map_err(|e| e.to_string())?;
        self.session = Some(session);
        self.count_encoders();
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
        let set = match self.session(call_id) {
            Some(session) => session.set_answer(sdp).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        // A phone without H.264 starts the VP8 encoder.
        self.count_encoders();
        set
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
        let talking = self.talking.as_ref().and_then(|s| self.previews.get(s));
        if let (Some(branch), Some(_)) = (talking, self.session(call_id)) {
            return branch.send_control(text).map_err(|e| e.to_string());
        }
        match self.session(call_id) {
            Some(session) => session.send_control(text).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn open_preview(&mut self, call_id: &CallId, session_id: &SessionId) -> Result<(), String> {
        let session = self
            .session(call_id)
            .ok_or("the call has no media session")?;
        let ice = IceSettings {
            servers: Vec::new(),
            local_addresses: self.local_addresses.clone(),
        };
        let setup = PreviewSetup {
            ice: &ice,
            dtls: self.plan.dtls.as_ref(),
            audio_sink: &self.plan.audio_sink,
            counters: session.counters(),
            events: self.events.clone(),
            vp8: self.plan.vp8_plan(),
        };
        let branch = PreviewBranch::open(session.pipeline(), call_id, session_id, setup)
            .map_err(|e| e.to_string())?;
        self.previews.insert(session_id.clone(), branch);
        self.count_encoders();
        Ok(())
    }

    fn start_preview_ice(&mut self, session_id: &SessionId, offer: &str, servers: &[IceServer]) {
        if let Some(branch) = self.previews.get(session_id) {
            if let Err(e) = branch.start_ice(offer, servers) {
                tracing::warn!(%session_id, "cannot start the preview's ICE: {e}");
            }
        }
    }

    fn set_preview_answer(&mut self, session_id: &SessionId, sdp: &str) -> Result<(), String> {
        let set = match self.previews.get(session_id) {
            Some(branch) => branch.set_answer(sdp).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        self.count_encoders();
        set
    }

    fn add_preview_candidate(&mut self, session_id: &SessionId, candidate: &IceCandidate) {
        if let Some(branch) = self.previews.get(session_id) {
            branch.add_remote_candidate(candidate.sdp_m_line_index, &candidate.candidate);
        }
    }

    fn open_talk(&mut self, session_id: &SessionId) {
        if let Some(branch) = self.previews.get(session_id) {
            branch.open_talk();
            self.talking = Some(session_id.clone());
        }
    }

    fn close_preview(&mut self, session_id: &SessionId) {
        self.previews.remove(session_id);
        self.count_encoders();
    }

    fn door_audio(&mut self, session_id: &SessionId, on: bool) {
        if let Some(branch) = self.previews.get(session_id) {
            branch.door_audio(on);
        }
    }

    fn adopt(&mut self, from: &CallId, call_id: &CallId) {
        if self.session.as_ref().is_some_and(|s| s.call_id() == from) {
            self.adopted_by = Some(call_id.clone());
        } else {
            tracing::warn!(%from, %call_id, "no live-view session to adopt");
        }
    }

    fn tear_down(&mut self, call_id: &CallId) -> Option<SessionStats> {
        // Previews are branches of the session's pipeline: they go first. Dropping the
        // session is the guard: the pipeline goes to NULL here.
        self.talking = None;
        self.previews.clear();
        let adopted = self.adopted_by.take().as_ref() == Some(call_id);
        let session = self.session.take()?;
        let stats = (adopted || session.call_id() == call_id).then(|| session.stats());
        drop(session);
        crate::release_freed_memory();
        stats
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
