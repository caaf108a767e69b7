//! The shell around [`Door`]: hands it events, carries out its actions on the ports, feeds
//! back the results that come at once, and publishes the status.

use super::ports::{
    ChimePort, HubPort, MediaPort, MissedRingStore, SnapshotPort, StrikePort, VoicePort,
};
use crate::control::{CallSummary, Status};
use crate::core::{Action, CallError, Door, Event, SnapshotOf, StrikeOutcome};
use crate::gpio::{PulseOutcome, RelayState, StatusLed};
use crate::media::SessionStats;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Everything the core's actions run on.
pub struct Ports {
    pub hub: Box<dyn HubPort>,
    pub media: Box<dyn MediaPort>,
    pub led: Box<dyn StatusLed>,
    pub strike: Box<dyn StrikePort>,
    pub chime: Box<dyn ChimePort>,
    pub missed: Box<dyn MissedRingStore>,
    pub snapshots: Box<dyn SnapshotPort>,
    pub voice: Box<dyn VoicePort>,
}

/// What the shell reports beside the core's status.
pub struct Hardware {
    /// `"rppal"` or `"simulated"`.
    pub gpio_backend: &'static str,
    /// How long an unlock energises the strike (`gpio.relay_pulse_ms`).
    pub relay_pulse: Duration,
    pub live_relay: Option<Arc<RelayState>>,
    /// Voice-message figures for `doorbelld status` (`None`: voice messages are not wired).
    pub voice: Option<Arc<crate::voice::VoiceCounters>>,
}

pub struct Shell {
    door: Door,
    ports: Ports,
    hardware: Hardware,
    /// The current (or just torn down) call's media statistics.
    current_call: Option<SessionStats>,
    last_call_stats: SessionStats,
    local_chimes: u64,
    status_tx: watch::Sender<Status>,
}

impl Shell {
    pub fn new(
        door: Door,
        ports: Ports,
        hardware: Hardware,
        status_tx: watch::Sender<Status>,
    ) -> Self {
        let mut shell = Shell {
            door,
            ports,
            hardware,
            current_call: None,
            last_call_stats: SessionStats::default(),
            local_chimes: 0,
            status_tx,
        };
        shell.run(Instant::now());
        shell
    }

    pub fn door(&self) -> &Door {
        &self.door
    }

    /// Handle `event` now, carry out every resulting action, publish the status.
    pub fn handle(&mut self, event: Event) {
        self.handle_at(Instant::now(), event);
    }

    pub fn handle_at(&mut self, now: Instant, event: Event) {
        self.feed(now, event);
        self.run(now);
    }

    fn feed(&mut self, now: Instant, event: Event) {
        match self.door.handle(now, event) {
            Ok(()) => {}
            Err(CallError::StaleCall(id)) => tracing::debug!(%id, "ignoring event for an old call"),
            Err(e) => tracing::info!("{e}"),
        }
    }

    fn run(&mut self, now: Instant) {
        while let Some(action) = self.door.poll_action() {
            self.execute(now, action);
        }
        self.publish();
    }

    fn execute(&mut self, now: Instant, action: Action) {
        match action {
            Action::Send(message) => self.ports.hub.send(message),
            Action::StartMedia {
                call_id,
                ice_servers,
            } => {
                // A new visitor rings: the microphone is the call's now.
                self.ports.voice.stop();
                if let Err(e) = self.ports.media.start(&call_id, ice_servers) {
                    tracing::error!(%call_id, "{e}");
                    self.feed(now, Event::MediaStartFailed(call_id));
                }
            }
            Action::StartIce {
                call_id,
                offer,
                servers,
            } => self.ports.media.start_ice(&call_id, &offer, &servers),
            Action::SetAnswer { call_id, sdp } => {
                if let Err(e) = self.ports.media.set_answer(&call_id, &sdp) {
                    tracing::warn!(%call_id, "{e}");
                    self.feed(now, Event::AnswerRejected(call_id));
                }
            }
            Action::AddRemoteCandidate { call_id, candidate } => {
                self.ports.media.add_remote_candidate(&call_id, &candidate)
            }
            Action::RequestKeyframe(call_id) => self.ports.media.request_keyframe(&call_id),
            Action::TearDownMedia(call_id) => {
                if let Some(stats) = self.ports.media.tear_down(&call_id) {
                    self.current_call = Some(stats);
                }
            }
            Action::Reply { call_id, message } => {
                let sent = serde_json::to_string(&message)
                    .map_err(|e| e.to_string())
                    .and_then(|text| self.ports.media.send_control(&call_id, &text));
                if let Err(e) = sent {
                    tracing::warn!(%call_id, "cannot reply on the data channel: {e}");
                }
            }
            Action::PulseStrike {
                call_id,
                request_id,
            } => {
                let asked = self.hardware.relay_pulse;
                let outcome = match self.ports.strike.pulse(asked) {
                    PulseOutcome::Started(pulse) => StrikeOutcome::Started(pulse),
                    PulseOutcome::AlreadyOpen => StrikeOutcome::AlreadyOpen(asked),
                };
                self.feed(
                    now,
                    Event::StrikePulsed {
                        call_id,
                        request_id,
                        outcome,
                    },
                );
            }
            Action::SetLed(state) => self.ports.led.show(state),
            Action::Chime => {
                if self.ports.chime.play() {
                    self.local_chimes += 1;
                }
            }
            Action::SaveMissedRings(rings) => self.ports.missed.save(&rings),
            Action::CallEnded { call_id, outcome } => {
                tracing::info!(%call_id, ?outcome, "call ended");
                self.last_call_stats = self.current_call.take().unwrap_or_default();
            }
            Action::TakeSnapshot(SnapshotOf::Call(call_id)) => {
                let grab = self.ports.media.snapshot(&call_id);
                self.ports.snapshots.for_call(&call_id, grab);
            }
            Action::TakeSnapshot(SnapshotOf::MissedRing(at_ms)) => {
                self.ports.snapshots.for_missed_ring(at_ms)
            }
            Action::UploadMissedSnapshots => {
                self.ports.snapshots.upload_missed();
                self.ports.voice.upload_kept();
            }
            Action::RecordVoiceMessage { of, secs } => self.ports.voice.record(&of, secs),
            Action::PlayQuickReply { call_id, reply_id } => {
                tracing::info!(%call_id, reply_id, "playing a quick reply");
                self.ports.voice.play_reply(reply_id)
            }
            Action::OpenPreview {
                call_id,
                session_id,
            } => {
                if let Err(e) = self.ports.media.open_preview(&call_id, &session_id) {
                    tracing::info!(%session_id, "no preview: {e}");
                    self.feed(now, Event::PreviewFailed(session_id));
                }
            }
            Action::StartPreviewIce {
                session_id,
                offer,
                servers,
            } => self
                .ports
                .media
                .start_preview_ice(&session_id, &offer, &servers),
            Action::SetPreviewAnswer { session_id, sdp } => {
                if let Err(e) = self.ports.media.set_preview_answer(&session_id, &sdp) {
                    tracing::warn!(%session_id, "{e}");
                    self.feed(now, Event::PreviewFailed(session_id));
                }
            }
            Action::AddPreviewCandidate {
                session_id,
                candidate,
            } => self
                .ports
                .media
                .add_preview_candidate(&session_id, &candidate),
            Action::OpenTalk(session_id) => self.ports.media.open_talk(&session_id),
            Action::ClosePreview(session_id) => self.ports.media.close_preview(&session_id),
            Action::DoorAudio { session_id, on } => self.ports.media.door_audio(&session_id, on),
            Action::AdoptMedia { from, call_id } => {
                // A new visitor rings: the microphone is the call's now.
                self.ports.voice.stop();
                self.ports.media.adopt(&from, &call_id);
            }
        }
    }

    /// Publish the status for `doorbelld status`.
    pub fn publish(&mut self) {
        let door = self.door.status();
        let live = self.ports.media.stats();
        if let Some((stats, _)) = &live {
            self.current_call = Some(*stats);
        }
        let status = Status {
            state: door.phase,
            call_id: door.call_id.map(|c| c.to_string()),
            hub_connected: door.hub_connected,
            door_name: door.door_name,
            phones_ringing: door.phones_ringing,
            calls_ended: door.calls_ended,
            current_call: self.current_call,
            last_call: door.last_call.map(|(call_id, outcome)| CallSummary {
                call_id: call_id.to_string(),
                outcome,
                stats: self.last_call_stats,
            }),
            gpio_backend: self.hardware.gpio_backend,
            unlocks: door.unlocks,
            motion_events: door.motion_events,
            missed_rings_pending: door.missed_rings_pending,
            viewers: door.viewers,
            led: door.led,
            missed_rings_reported: door.missed_rings_reported,
            local_chimes: self.local_chimes,
            live_counters: live.map(|(_, counters)| counters),
            live_relay: self.hardware.live_relay.clone(),
            live_voice: self.hardware.voice.clone(),
            ..Status::default()
        };
        self.status_tx.send_replace(status);
    }
}
