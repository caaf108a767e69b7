//! The call state machine: pure, no I/O, time is an input.
//!
//! ```text
//!            press (hub up)                 answered                 media connected
//!   Idle ───────────────────► Ringing ───────────────► Connecting ───────────────────► InCall
//!    ▲                          │  timeout / declined /     │  connect timeout /          │  hang-up (either side) /
//!    │                          │  hub lost                 │  media failed / hang-up     │  max length / media failed
//!    └──────────────────────────┴───────────────────────────┴─────────────────────────────┘
//! ```
//!
//! [`crate::core::Door`] feeds [`Input`]s with [`CallMachine::handle`], fires deadlines with
//! [`CallMachine::handle_timeout`] when [`CallMachine::next_deadline`] passes, and executes the
//! [`Action`]s it drains with [`CallMachine::poll_action`]. Nothing here sleeps or touches a
//! socket, a pad or a pin, so every transition is unit-tested with virtual time.

use doorbell_protocol::{CallId, HangUpReason, RingEndReason};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long each phase may last.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub ring_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_call: Duration,
}

/// What the status LED should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedState {
    Idle,
    Ringing,
    InCall,
    HubUnreachable,
    /// Something an installer must fix (the camera or pipeline cannot start). The machine
    /// never emits it; the daemon shows it instead of `Idle` while such a fault persists.
    Fault,
    /// Someone watches the camera without a call (live view). The machine never emits it
    /// either: the door shows it instead of `Idle` while a view is open.
    Viewing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Idle,
    Ringing {
        call_id: CallId,
        deadline: Instant,
    },
    Connecting {
        call_id: CallId,
        deadline: Instant,
    },
    InCall {
        call_id: CallId,
        since: Instant,
        deadline: Instant,
    },
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Ringing { .. } => "ringing",
            State::Connecting { .. } => "connecting",
            State::InCall { .. } => "in_call",
        }
    }

    pub fn call_id(&self) -> Option<&CallId> {
        match self {
            State::Idle => None,
            State::Ringing { call_id, .. }
            | State::Connecting { call_id, .. }
            | State::InCall { call_id, .. } => Some(call_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The call button was pressed (already debounced by the button backend).
    ButtonPressed,
    /// The hub accepted our `hello`.
    HubUp,
    /// The connection to the hub was lost.
    HubDown,
    /// A phone answered.
    Answered(CallId),
    /// The hub ended the ring without an answer (everyone declined).
    RingEnded(CallId, RingEndReason),
    /// The hub refused the ring (e.g. `busy`), so there is nothing to wait for.
    RingRefused(CallId),
    /// ICE/DTLS connected: media flows.
    MediaConnected(CallId),
    /// The media session failed (pipeline error, ICE failed).
    MediaFailed(CallId),
    /// The phone hung up.
    RemoteHangUp(CallId),
    /// Someone at the door (or `doorbelld hangup`) ended the call.
    LocalHangUp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Tell the hub to ring the phones.
    SendRing(CallId),
    SendCancelRing(CallId, RingEndReason),
    SendHangUp(CallId, HangUpReason),
    /// Build and start the media session so answering is fast.
    PrepareMedia(CallId),
    /// A phone answered: send the offer (now, or as soon as it is ready).
    StartOffer(CallId),
    /// Media is up: force a keyframe so the phone shows a picture at once.
    RequestKeyframe(CallId),
    /// Drop the media session (the guard sets the pipeline to NULL).
    TearDownMedia(CallId),
    SetLed(LedState),
    /// The hub is unreachable: chime at the door so the visitor knows the press registered.
    ChimeLocally,
    /// A call attempt is over; `answered` says whether anyone picked up.
    CallEnded {
        call_id: CallId,
        outcome: Outcome,
    },
    /// Nobody will answer this ring (it timed out, every phone declined, or every phone is
    /// in quiet hours): the visitor may leave a voice message. Comes after the media is torn
    /// down, so the microphone and speaker are free.
    OfferVoiceMessage(CallId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Missed,
    Declined,
    Completed,
    Failed,
    /// The hub went away while phones were ringing.
    HubLost,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// An event about a call that is no longer current (late ICE, a stale hang-up). Harmless.
    #[error("event for call {0} which is not the current call")]
    StaleCall(CallId),
    /// An event that makes no sense in the current state (e.g. `answered` while idle).
    #[error("{input} is not valid while {state}")]
    InvalidTransition {
        input: &'static str,
        state: &'static str,
    },
    /// A press while a call is in progress. The visitor pressing twice is normal.
    #[error("button pressed while a call is in progress")]
    Busy,
}

#[derive(Debug)]
pub struct CallMachine {
    timings: Timings,
    state: State,
    hub_up: bool,
    actions: VecDeque<Action>,
    /// Call ids are `<prefix>-<n>`: the prefix is random per daemon start so ids never repeat
    /// across restarts, the counter makes them unique within one run.
    id_prefix: String,
    next_id: u64,
}

impl CallMachine {
    pub fn new(timings: Timings, id_prefix: impl Into<String>) -> Self {
        let mut machine = Self {
            timings,
            state: State::Idle,
            hub_up: false,
            actions: VecDeque::new(),
            id_prefix: id_prefix.into(),
            next_id: 1,
        };
        machine
            .actions
            .push_back(Action::SetLed(LedState::HubUnreachable));
        machine
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Idle => None,
            State::Ringing { deadline, .. }
            | State::Connecting { deadline, .. }
            | State::InCall { deadline, .. } => Some(*deadline),
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), CallError> {
        match input {
            Input::ButtonPressed => self.on_press(now),
            Input::HubUp => {
                self.hub_up = true;
                if matches!(self.state, State::Idle) {
                    self.actions.push_back(Action::SetLed(LedState::Idle));
                }
                Ok(())
            }
            Input::HubDown => {
                self.hub_up = false;
                match self.state.clone() {
                    // Phones can no longer answer: the hub already told them the door went away.
                    State::Ringing { call_id, .. } => self.end(call_id, None, Outcome::HubLost),
                    // Without signaling, ICE cannot finish.
                    State::Connecting { call_id, .. } => self.end(call_id, None, Outcome::Failed),
                    // Media is peer to peer: an established call survives a hub outage.
                    State::InCall { .. } => {}
                    State::Idle => self
                        .actions
                        .push_back(Action::SetLed(LedState::HubUnreachable)),
                }
                Ok(())
            }
            Input::Answered(id) => {
                let State::Ringing { call_id, .. } = &self.state else {
                    return Err(self.unexpected("answered", &id));
                };
                if *call_id != id {
                    return Err(CallError::StaleCall(id));
                }
                self.state = State::Connecting {
                    call_id: id.clone(),
                    deadline: now + self.timings.connect_timeout,
                };
                self.actions.push_back(Action::StartOffer(id));
                Ok(())
            }
            Input::RingEnded(id, reason) => {
                self.expect_current(&id, "ring_ended", |s| matches!(s, State::Ringing { .. }))?;
                let outcome = match reason {
                    RingEndReason::Declined => Outcome::Declined,
                    _ => Outcome::Missed,
                };
                self.end(id.clone(), None, outcome);
                // Nobody is coming; a ring the door itself cancelled or lost is not that.
                if matches!(
                    reason,
                    RingEndReason::Timeout | RingEndReason::Declined | RingEndReason::Quiet
                ) {
                    self.actions.push_back(Action::OfferVoiceMessage(id));
                }
                Ok(())
            }
            Input::RingRefused(id) => {
                self.expect_current(&id, "ring refused", |s| matches!(s, State::Ringing { .. }))?;
                self.end(id, None, Outcome::Failed);
                Ok(())
            }
            Input::MediaConnected(id) => {
                let State::Connecting { call_id, .. } = &self.state else {
                    // ICE may report connected again after a restart while in call: harmless.
                    return match &self.state {
                        State::InCall { call_id, .. } if *call_id == id => Ok(()),
                        _ => Err(self.unexpected("media connected", &id)),
                    };
                };
                if *call_id != id {
                    return Err(CallError::StaleCall(id));
                }
                self.state = State::InCall {
                    call_id: id.clone(),
                    since: now,
                    deadline: now + self.timings.max_call,
                };
                self.actions.push_back(Action::RequestKeyframe(id));
                self.actions.push_back(Action::SetLed(LedState::InCall));
                Ok(())
            }
            Input::MediaFailed(id) => {
                self.expect_current(&id, "media failed", |s| !matches!(s, State::Idle))?;
                let notify = match self.state {
                    State::Ringing { .. } => None,
                    _ => Some(HangUpReason::Failed),
                };
                if notify.is_none() {
                    // Failing while ringing: stop the phones ringing for a call that cannot work.
                    self.actions
                        .push_back(Action::SendCancelRing(id.clone(), RingEndReason::Cancelled));
                }
                self.end(id, notify, Outcome::Failed);
                Ok(())
            }
            Input::RemoteHangUp(id) => {
                self.expect_current(&id, "hang_up", |s| {
                    matches!(s, State::Connecting { .. } | State::InCall { .. })
                })?;
                self.end(id, None, Outcome::Completed);
                Ok(())
            }
            Input::LocalHangUp => match self.state.clone() {
                State::Idle => Err(CallError::InvalidTransition {
                    input: "hang up",
                    state: "idle",
                }),
                State::Ringing { call_id, .. } => {
                    self.actions.push_back(Action::SendCancelRing(
                        call_id.clone(),
                        RingEndReason::Cancelled,
                    ));
                    self.end(call_id, None, Outcome::Missed);
                    Ok(())
                }
                State::Connecting { call_id, .. } | State::InCall { call_id, .. } => {
                    self.end(call_id, Some(HangUpReason::Normal), Outcome::Completed);
                    Ok(())
                }
            },
        }
    }

    /// Fire whatever deadline has passed. Call when `now >= next_deadline()`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state.clone() {
            State::Ringing { call_id, deadline } if now >= deadline => {
                self.actions.push_back(Action::SendCancelRing(
                    call_id.clone(),
                    RingEndReason::Timeout,
                ));
                self.end(call_id.clone(), None, Outcome::Missed);
                self.actions.push_back(Action::OfferVoiceMessage(call_id));
            }
            State::Connecting { call_id, deadline } if now >= deadline => {
                self.end(call_id, Some(HangUpReason::Failed), Outcome::Failed);
            }
            State::InCall {
                call_id, deadline, ..
            } if now >= deadline => {
                self.end(call_id, Some(HangUpReason::Timeout), Outcome::Completed);
            }
            _ => {}
        }
    }

    fn on_press(&mut self, now: Instant) -> Result<(), CallError> {
        if !matches!(self.state, State::Idle) {
            return Err(CallError::Busy);
        }
        if !self.hub_up {
            self.actions.push_back(Action::ChimeLocally);
            return Ok(());
        }
        let call_id = CallId::new(format!("{}-{}", self.id_prefix, self.next_id));
        self.next_id += 1;
        self.state = State::Ringing {
            call_id: call_id.clone(),
            deadline: now + self.timings.ring_timeout,
        };
        self.actions.push_back(Action::SendRing(call_id.clone()));
        self.actions.push_back(Action::PrepareMedia(call_id));
        self.actions.push_back(Action::SetLed(LedState::Ringing));
        Ok(())
    }

    fn end(&mut self, call_id: CallId, hang_up: Option<HangUpReason>, outcome: Outcome) {
        if let Some(reason) = hang_up {
            if self.hub_up {
                self.actions
                    .push_back(Action::SendHangUp(call_id.clone(), reason));
            }
        }
        self.actions
            .push_back(Action::TearDownMedia(call_id.clone()));
        self.actions
            .push_back(Action::CallEnded { call_id, outcome });
        self.actions.push_back(Action::SetLed(if self.hub_up {
            LedState::Idle
        } else {
            LedState::HubUnreachable
        }));
        self.state = State::Idle;
    }

    fn expect_current(
        &self,
        id: &CallId,
        input: &'static str,
        allowed: impl Fn(&State) -> bool,
    ) -> Result<(), CallError> {
        match self.state.call_id() {
            Some(current) if current == id => {
                if allowed(&self.state) {
                    Ok(())
                } else {
                    Err(CallError::InvalidTransition {
                        input,
                        state: self.state.name(),
                    })
                }
            }
            _ => Err(CallError::StaleCall(id.clone())),
        }
    }

    fn unexpected(&self, input: &'static str, id: &CallId) -> CallError {
        match self.state.call_id() {
            Some(current) if current == id => CallError::InvalidTransition {
                input,
                state: self.state.name(),
            },
            _ => CallError::StaleCall(id.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
