//! [`Door`]: the call machine, the negotiation gate, the ring ledger, the unlock decision and
//! the status, behind one `handle(now, Event)`.

use super::call::{self, CallError, CallMachine, Input, LedState, Timings};
use super::ledger::Ledger;
use super::negotiation::Negotiation;
use super::preview::{Previews, ViewLimits};
use super::unlock;
use super::{Action, DoorStatus, Event, MediaEvent, MediaEventKind, SnapshotOf, StrikeOutcome};
use doorbell_protocol::{
    CallId, DoorToHub, ErrorCode, HubToDoor, IceCandidate, IceServer, PhoneId, SessionId,
};
use std::collections::VecDeque;
use std::time::Instant;

/// What a door starts with.
#[derive(Debug, Clone)]
pub struct DoorSetup {
    pub timings: Timings,
    /// Call ids are `<prefix>-<n>`; a random prefix per start keeps them unique across restarts.
    pub id_prefix: String,
    pub door_name: String,
    /// Missed rings saved by an earlier run (Unix ms, oldest first).
    pub missed_rings: Vec<u64>,
    /// `call.voice_message_secs`: how long a visitor nobody answers may speak (0: off).
    pub voice_message_secs: u32,
    /// The `[view]` limits (live view; `max_sessions` also bounds ring previews).
    pub view: ViewLimits,
}

#[derive(Debug)]
pub struct Door {
    machine: CallMachine,
    /// The current call's gate; present exactly while the shell holds its media session.
    media: Option<Negotiation>,
    ledger: Ledger,
    /// The hub's STUN servers from `welcome`, for the next media session.
    hub_ice_servers: Vec<IceServer>,
    /// The last media session failed to start (camera or pipeline broken): the LED shows
    /// `Fault` instead of `Idle` until a session starts again.
    fault: bool,
    /// Wall-clock time of the press being handled (a ring's or a missed ring's time).
    press_unix_ms: u64,
    /// Longest voice message (0: none are offered).
    voice_message_secs: u32,
    status: DoorStatus,
    /// Who answered the current call, and whether the hub says it may unlock: named in the
    /// log of every unlock, and the permission [`unlock::decide`] checks.
    answerer: Option<Answerer>,
    actions: VecDeque<Action>,
    /// The phones' preview sessions of the current call.
    previews: Previews,
    /// `answered_in_session` named this session: the machine's `StartOffer` upgrades it.
    answered_in: Option<SessionId>,
    /// The upgraded session was already connected: the machine hears `MediaConnected` once
    /// it has finished the `Answered` transition.
    pending_connected: Option<CallId>,
    /// The pinned phones and what passed the check this call.
    pins: pinning::PinGate,
    /// Live views: their limits, and the media session the door started for them while
    /// idle (see `views.rs`).
    views: views::Views,
}

/// The phone that answered a call, from the hub's `answered`.
#[derive(Debug, Clone)]
struct Answerer {
    call_id: CallId,
    phone_id: PhoneId,
    may_unlock: bool,
}
mod control;
mod pinning;
mod sessions;
mod views;

impl Door {
    pub fn new(setup: DoorSetup) -> Self {
        let mut door = Door {
            views: views::Views::new(setup.view, &setup.id_prefix),
            machine: CallMachine::new(setup.timings, setup.id_prefix),
            media: None,
            ledger: Ledger::new(setup.missed_rings),
            hub_ice_servers: Vec::new(),
            fault: false,
            press_unix_ms: 0,
            voice_message_secs: setup.voice_message_secs,
            status: DoorStatus {
                door_name: setup.door_name,
                ..DoorStatus::default()
            },
            answerer: None,
            actions: VecDeque::new(),
            previews: Previews::new(setup.view.max_sessions),
            answered_in: None,
            pending_connected: None,
            pins: Default::default(),
        };
        door.run_machine();
        door
    }

    /// The next action for the shell, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to send [`Event::Deadline`] (ring, connect or call-length timeout).
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.machine.next_deadline(), self.previews.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn state(&self) -> &call::State {
        self.machine.state()
    }

    pub fn status(&self) -> DoorStatus {
        let state = self.machine.state();
        DoorStatus {
            phase: state.into(),
            call_id: state.call_id().cloned(),
            missed_rings_pending: self.ledger.missed_len(),
            viewers: self.previews.viewers(),
            ..self.status.clone()
        }
    }

    /// Handle one event. An event that makes no sense now (a stale call, a press while busy,
    /// an illegal transition) is a typed error and changes nothing.
    pub fn handle(&mut self, now: Instant, event: Event) -> Result<(), CallError> {
        let result = self.handle_event(now, event);
        // Whatever happened, the `Viewing` light and the view pipeline follow the views.
        self.views_changed();
        result
    }

    fn handle_event(&mut self, now: Instant, event: Event) -> Result<(), CallError> {
        match event {
            Event::ButtonPressed { unix_ms } => {
                self.press_unix_ms = unix_ms;
                self.input(now, Input::ButtonPressed)
            }
            Event::LocalHangUp => self.input(now, Input::LocalHangUp),
            Event::Deadline => {
                let keyframe = self.previews.on_deadline(now);
                self.actions.extend(keyframe);
                self.machine.handle_timeout(now);
                self.run_machine();
                Ok(())
            }
            Event::HubUp {
                door_name,
                ice_servers,
            } => {
                self.status.door_name = door_name;
                self.status.hub_connected = true;
                self.hub_ice_servers = ice_servers;
                self.report_missed_rings();
                self.input(now, Input::HubUp)
            }
            Event::HubLost => {
                if let Some(media) = self.media.as_mut() {
                    media.hub_lost = true;
                }
                // Nobody can relay a view's signalling or close it later: views end here.
                let closed = self.previews.close_views(None);
                self.actions.extend(closed);
                self.status.hub_connected = false;
                self.input(now, Input::HubDown)
            }
            Event::Hub(message) => self.on_hub_message(now, message),
            Event::Media(event) => match self.host_event(event) {
                Some(event) => self.on_media_event(now, event),
                None => Ok(()),
            },
            Event::MediaStartFailed(call_id) if self.views.is_host(&call_id) => {
                self.host_start_failed(&call_id);
                Ok(())
            }
            Event::MediaStartFailed(call_id) => {
                self.media = None;
                self.fault = true;
                // The caller logged why; the machine ends the call (it is the current one).
                if let Err(e) = self.machine.handle(now, Input::MediaFailed(call_id)) {
                    tracing::debug!("{e}");
                }
                self.run_machine();
                Ok(())
            }
            Event::AnswerRejected(call_id) => self.input(now, Input::MediaFailed(call_id)),
            Event::PreviewFailed(session_id) => {
                let actions = self.previews.failed(session_id);
                self.actions.extend(actions);
                Ok(())
            }
            Event::StrikePulsed {
                call_id,
                request_id,
                outcome,
            } => {
                let pulse = match outcome {
                    StrikeOutcome::Started(pulse) => {
                        self.status.unlocks += 1;
                        let phone = self
                            .answerer_of(&call_id)
                            .map_or_else(|| "?".to_owned(), |a| a.phone_id.to_string());
                        tracing::info!(
                            %call_id,
                            request_id,
                            %phone,
                            pulse_ms = pulse.as_millis() as u64,
                            unlocks = self.status.unlocks,
                            "door unlocked by phone {phone}"
                        );
                        // For the hub's history: which call (so which phone) let someone in.
                        self.send(DoorToHub::Unlocked {
                            call_id: call_id.clone(),
                        });
                        pulse
                    }
                    StrikeOutcome::AlreadyOpen(asked) => {
                        tracing::info!(%call_id, request_id, "unlock while the strike is already energised; not extended");
                        asked
                    }
                };
                self.reply(call_id, unlock::unlocked(request_id, pulse));
                Ok(())
            }
            Event::Motion => {
                self.status.motion_events += 1;
                Ok(())
            }
            Event::PinsChanged(pins) => {
                self.pins.set(pins);
                Ok(())
            }
        }
    }

    fn input(&mut self, now: Instant, input: Input) -> Result<(), CallError> {
        let result = self.machine.handle(now, input);
        self.run_machine();
        // An upgraded preview that was connected already: the call is up at once.
        if let Some(call_id) = self.pending_connected.take() {
            if let Err(e) = self.machine.handle(now, Input::MediaConnected(call_id)) {
                tracing::debug!("{e}");
            }
            self.run_machine();
        }
        result
    }

    /// The hub accepted us again: report every press it missed, oldest first, then upload
    /// their snapshots (and any an earlier reconnection could not).
    fn report_missed_rings(&mut self) {
        let rings = self.ledger.take_missed();
        if rings.is_empty() {
            self.actions.push_back(Action::UploadMissedSnapshots);
            return;
        }
        tracing::info!(
            count = rings.len(),
            "reporting rings missed while the hub was unreachable"
        );
        self.actions.push_back(Action::SaveMissedRings(Vec::new()));
        for at_ms in rings {
            self.send(DoorToHub::MissedRing { at_ms });
            self.status.missed_rings_reported += 1;
        }
        self.actions.push_back(Action::UploadMissedSnapshots);
    }

    fn on_hub_message(&mut self, now: Instant, message: HubToDoor) -> Result<(), CallError> {
        match message {
            HubToDoor::Welcome { .. } => tracing::warn!("unexpected second welcome from the hub"),
            HubToDoor::Ringing {
                call_id,
                phones,
                ice_servers,
            } => {
                if let (Some(media), Some(servers)) = (self.media_for(&call_id), ice_servers) {
                    media.ice_servers(servers);
                    self.start_ice();
                }
                if self.is_current(&call_id) {
                    self.ledger.confirm(&call_id);
                    tracing::info!(%call_id, phones, "phones ringing");
                    self.status.phones_ringing = phones;
                }
            }
            HubToDoor::Answered {
                call_id,
                phone_id,
                ice_servers,
                may_unlock,
            } => {
                tracing::info!(%call_id, %phone_id, may_unlock, "answered");
                self.answerer = Some(Answerer {
                    call_id: call_id.clone(),
                    phone_id: phone_id.clone(),
                    may_unlock,
                });
                if let Some(media) = self.media_for(&call_id) {
                    media.ice_servers(ice_servers);
                }
                if self.is_current(&call_id) {
                    let closed = self.previews.answered_plain(&phone_id);
                    self.actions.extend(closed);
                }
                return self.input(now, Input::Answered(call_id));
            }
            HubToDoor::RingEnded { call_id, reason } => {
                return self.input(now, Input::RingEnded(call_id, reason))
            }
            HubToDoor::SdpAnswer { call_id, sdp } => {
                if self.media_for(&call_id).is_some() {
                    return self.pinned_answer(now, call_id, sdp);
                }
            }
            HubToDoor::Ice { call_id, candidate } => {
                if self.media_for(&call_id).is_some() {
                    self.actions
                        .push_back(Action::AddRemoteCandidate { call_id, candidate });
                }
            }
            HubToDoor::HangUp { call_id, reason } => {
                tracing::info!(%call_id, ?reason, "phone hung up");
                return self.input(now, Input::RemoteHangUp(call_id));
            }
            message @ (HubToDoor::OpenSession { .. }
            | HubToDoor::SessionAnswer { .. }
            | HubToDoor::SessionIce { .. }
            | HubToDoor::SessionClosed { .. }
            | HubToDoor::AnsweredInSession { .. }
            | HubToDoor::OpenView { .. }) => return self.on_session_message(now, message),
            HubToDoor::PairRequest(_)
            | HubToDoor::InviteRequest(_)
            | HubToDoor::GrantRequest(_)
            | HubToDoor::RepinRequest(_)
            | HubToDoor::Unpin { .. } => {
                tracing::warn!("a pairing message reached the call core; the daemon answers it")
            }
            HubToDoor::QuickReply { call_id, reply_id } => {
                // Only to the visitor of the call it was sent in, while it lasts.
                if !self.is_current(&call_id) {
                    return Err(CallError::StaleCall(call_id));
                }
                tracing::info!(%call_id, reply_id, "a phone sent a quick reply");
                self.actions
                    .push_back(Action::PlayQuickReply { call_id, reply_id });
            }
            HubToDoor::Error(body) => {
                tracing::warn!(code = ?body.code, call_id = ?body.call_id, "hub error: {}", body.message);
                // A refused ring leaves nothing to wait for.
                let refused_ring = matches!(
                    body.code,
                    ErrorCode::Busy | ErrorCode::UnknownCall | ErrorCode::InvalidState
                );
                if let (true, Some(call_id)) = (refused_ring, body.call_id) {
                    if matches!(self.machine.state(), call::State::Ringing { call_id: c, .. } if *c == call_id)
                    {
                        return self.input(now, Input::RingRefused(call_id));
                    }
                }
            }
        }
        Ok(())
    }

    fn on_media_event(&mut self, now: Instant, event: MediaEvent) -> Result<(), CallError> {
        let MediaEvent { call_id, kind } = event;
        match kind {
            MediaEventKind::OfferReady(sdp) => {
                let Some(media) = self.media_for(&call_id) else {
                    return Ok(());
                };
                tracing::debug!(%call_id, "offer ready");
                media.offer_ready(sdp);
                self.start_ice();
                self.release_offer();
            }
            MediaEventKind::LocalCandidate { mline, candidate } => {
                let Some(media) = self.media_for(&call_id) else {
                    return Ok(());
                };
                let candidate = IceCandidate {
                    candidate,
                    sdp_m_line_index: mline,
                };
                if let Some(candidate) = media.local_candidate(candidate) {
                    self.send(DoorToHub::Ice { call_id, candidate });
                }
            }
            MediaEventKind::Connected => {
                tracing::info!(%call_id, "media connected");
                return self.input(now, Input::MediaConnected(call_id));
            }
            MediaEventKind::ControlMessage(text) => self.on_control_message(call_id, &text),
            MediaEventKind::ControlClosed => {
                // With a hub that followed the call, its `hang_up` ends the call (and races
                // this event). Without one, nothing else would tell us the phone left.
                if self.media_for(&call_id).is_some_and(|m| m.hub_lost) {
                    tracing::info!(%call_id, "the phone closed the call while the hub did not know it: ending it");
                    return self.input(now, Input::RemoteHangUp(call_id));
                }
            }
            MediaEventKind::Session(session_id, event) => {
                return self.on_session_media(now, call_id, session_id, event)
            }
            MediaEventKind::Failed(why) => {
                if self.is_current(&call_id) {
                    tracing::warn!(%call_id, "media failed: {why}");
                    return self.input(now, Input::MediaFailed(call_id));
                }
            }
        }
        Ok(())
    }

    /// Start ICE once both the offer and this call's ICE servers exist.
    fn start_ice(&mut self) {
        let Some(media) = self.media.as_mut() else {
            return;
        };
        if let Some((offer, servers)) = media.start_ice() {
            let call_id = media.call_id.clone();
            self.actions.push_back(Action::StartIce {
                call_id,
                offer,
                servers,
            });
        }
    }

    /// Send the offer and the candidates gathered so far, once a phone answered and ICE started.
    fn release_offer(&mut self) {
        self.start_ice();
        let Some(media) = self.media.as_mut() else {
            return;
        };
        let Some(release) = media.release() else {
            return;
        };
        let call_id = media.call_id.clone();
        self.send(DoorToHub::SdpOffer {
            call_id: call_id.clone(),
            sdp: release.offer,
        });
        for candidate in release.candidates {
            self.send(DoorToHub::Ice {
                call_id: call_id.clone(),
                candidate,
            });
        }
    }

    /// Turn the machine's actions into the door's, in order.
    fn run_machine(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            self.on_machine_action(action);
        }
    }

    fn on_machine_action(&mut self, action: call::Action) {
        match action {
            call::Action::SendRing(call_id) => {
                self.ledger.ring_sent(call_id.clone(), self.press_unix_ms);
                self.send(DoorToHub::Ring { call_id });
            }
            call::Action::SendCancelRing(call_id, reason) => {
                self.send(DoorToHub::CancelRing { call_id, reason })
            }
            call::Action::SendHangUp(call_id, reason) => {
                self.send(DoorToHub::HangUp { call_id, reason })
            }
            call::Action::PrepareMedia(call_id) => {
                // A session that failed to start reports `MediaStartFailed` and sets it again.
                self.fault = false;
                self.media = Some(Negotiation::new(call_id.clone()));
                // A press during a live view: the view's pipeline becomes the call's.
                if !self.adopt_view_media(&call_id) {
                    self.actions.push_back(Action::StartMedia {
                        call_id: call_id.clone(),
                        ice_servers: self.hub_ice_servers.clone(),
                    });
                }
                self.actions
                    .push_back(Action::TakeSnapshot(SnapshotOf::Call(call_id)));
            }
            call::Action::StartOffer(call_id) => {
                if self.upgrade_session(&call_id) {
                    return;
                }
                if let Some(media) = self.media_for(&call_id) {
                    media.answered();
                }
                self.release_offer();
            }
            call::Action::RequestKeyframe(call_id) => {
                if self.media_for(&call_id).is_some() {
                    self.actions.push_back(Action::RequestKeyframe(call_id));
                }
            }
            call::Action::TearDownMedia(call_id) => {
                let closed = self.previews.call_over();
                self.actions.extend(closed);
                // Views may outlive the call: forget only the sessions that ended.
                let previews = &self.previews;
                self.pins.forget_ended(|s| previews.call_of(s).is_some());
                self.views.call_over(&call_id);
                self.media = None;
                self.actions.push_back(Action::TearDownMedia(call_id));
            }
            call::Action::SetLed(state) => {
                let state = match state {
                    LedState::Idle if self.fault => LedState::Fault,
                    LedState::Idle if self.previews.viewers() > 0 => LedState::Viewing,
                    other => other,
                };
                self.set_led(state);
            }
            call::Action::ChimeLocally => {
                let at_ms = self.press_unix_ms;
                self.keep_missed_ring(at_ms);
                tracing::warn!(
                    at_ms,
                    pending = self.ledger.missed_len(),
                    "button pressed but the hub is unreachable: chiming at the door only; \
                     the ring is reported once the hub is back"
                );
                self.actions.push_back(Action::Chime);
                self.actions
                    .push_back(Action::TakeSnapshot(SnapshotOf::MissedRing(at_ms)));
                // No phone can hear this press: the visitor may leave a message, kept on the
                // door until the hub is back.
                self.offer_voice_message(SnapshotOf::MissedRing(at_ms));
            }
            call::Action::OfferVoiceMessage(call_id) => {
                self.offer_voice_message(SnapshotOf::Call(call_id))
            }
            call::Action::CallEnded { call_id, outcome } => {
                if let Some(at_ms) = self.ledger.call_ended(&call_id, outcome) {
                    tracing::warn!(%call_id, at_ms, "the hub never confirmed this ring; keeping it as a missed ring");
                    self.keep_missed_ring(at_ms);
                }
                self.status.calls_ended += 1;
                self.status.last_call = Some((call_id.clone(), outcome));
                self.status.phones_ringing = 0;
                self.actions
                    .push_back(Action::CallEnded { call_id, outcome });
            }
        }
    }

    fn offer_voice_message(&mut self, of: SnapshotOf) {
        if self.voice_message_secs > 0 {
            self.actions.push_back(Action::RecordVoiceMessage {
                of,
                secs: self.voice_message_secs,
            });
        }
    }

    fn keep_missed_ring(&mut self, at_ms: u64) {
        self.ledger.push_missed(at_ms);
        self.actions
            .push_back(Action::SaveMissedRings(self.ledger.missed()));
    }

    fn send(&mut self, message: DoorToHub) {
        self.actions.push_back(Action::Send(message));
    }

    fn is_current(&self, call_id: &CallId) -> bool {
        self.machine.state().call_id() == Some(call_id)
    }

    fn media_for(&mut self, call_id: &CallId) -> Option<&mut Negotiation> {
        self.media.as_mut().filter(|m| m.call_id == *call_id)
    }
}
