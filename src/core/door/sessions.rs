//! The door's side of preview sessions: hub messages and media events about them, turned
//! into [`Previews`](crate::core::preview) decisions and the call machine's inputs.

use super::{Answerer, Door};
use crate::core::call::{self, CallError, Input};
use crate::core::{Action, SessionMediaEvent};
use doorbell_protocol::{CallId, DoorToHub, HubToDoor, SessionEndReason, SessionId};
use std::time::Instant;

impl Door {
    /// `open_session`, `session_answer`, `session_ice`, `session_closed`,
    /// `answered_in_session`, `open_view` from the hub.
    pub(super) fn on_session_message(
        &mut self,
        now: Instant,
        message: HubToDoor,
    ) -> Result<(), CallError> {
        match message {
            HubToDoor::OpenSession {
                call_id,
                session_id,
                phone_id,
                ice_servers,
            } => {
                let ringing = matches!(self.machine.state(), call::State::Ringing { call_id: c, .. } if *c == call_id);
                let actions = if ringing && self.media_for(&call_id).is_some() {
                    self.pins.session_opened(&session_id, &phone_id);
                    self.previews
                        .open(call_id, session_id, phone_id, ice_servers)
                } else {
                    // Answered or over meanwhile: nothing to preview.
                    vec![Action::Send(DoorToHub::CloseSession {
                        session_id,
                        reason: SessionEndReason::CallEnded,
                    })]
                };
                self.actions.extend(actions);
            }
            HubToDoor::SessionAnswer { session_id, sdp } => {
                if self.previews.call_of(&session_id).is_some() {
                    self.pinned_session_answer(session_id, sdp);
                }
            }
            HubToDoor::SessionIce {
                session_id,
                candidate,
            } => {
                if self.previews.call_of(&session_id).is_some() {
                    self.actions.push_back(Action::AddPreviewCandidate {
                        session_id,
                        candidate,
                    });
                }
            }
            HubToDoor::SessionClosed { session_id, reason } => {
                tracing::info!(%session_id, ?reason, "preview closed by the phone");
                let talking = self.previews.talking() == Some(&session_id);
                // The call's id (a view's session names the pipeline it joined, maybe the
                // door's view pipeline a press adopted).
                let call_id = self.machine.state().call_id().cloned();
                let actions = self.previews.closed_by_hub(session_id);
                self.actions.extend(actions);
                // The session was the call: that is a hang-up.
                if let (true, Some(call_id)) = (talking, call_id) {
                    return self.input(now, Input::RemoteHangUp(call_id));
                }
            }
            HubToDoor::AnsweredInSession {
                call_id,
                session_id,
                phone_id,
                may_unlock,
            } => {
                tracing::info!(%call_id, %session_id, %phone_id, may_unlock, "answered in a preview");
                // The session's answer passed the pin check (else it was closed): the door's
                // own grant applies too; the hub can only take permission away.
                let grant = self.pins.session_grant(&session_id);
                self.answerer = Some(Answerer {
                    call_id: call_id.clone(),
                    phone_id: phone_id.clone(),
                    may_unlock: may_unlock && grant == Some(true),
                });
                if grant.is_none() {
                    tracing::warn!(%call_id, %session_id, "answered in a session whose certificate the door did not verify: offering anew");
                    self.actions.extend(self.previews.answered_plain(&phone_id));
                } else if self.previews.call_of(&session_id).is_some() {
                    // Every open session is of the current call's pipeline (views included).
                    self.answered_in = Some(session_id);
                } else {
                    // The door closed that session meanwhile (it failed): answer the old way.
                    tracing::warn!(%call_id, "answered in a session the door no longer has: offering anew");
                    self.actions.extend(self.previews.answered_plain(&phone_id));
                }
                return self.input(now, Input::Answered(call_id));
            }
            HubToDoor::OpenView {
                session_id,
                phone_id,
                ice_servers,
            } => {
                // A view's answer is checked against the pins like a preview's.
                self.pins.session_opened(&session_id, &phone_id);
                self.open_view(now, session_id, phone_id, ice_servers)
            }
            other => tracing::debug!(?other, "not a session message"),
        }
        Ok(())
    }

    /// A preview session's media event.
    pub(super) fn on_session_media(
        &mut self,
        now: Instant,
        call_id: CallId,
        session_id: SessionId,
        event: SessionMediaEvent,
    ) -> Result<(), CallError> {
        if let SessionMediaEvent::ControlMessage(text) = &event {
            // Only the session the phone answered in may unlock; a preview's message (even one
            // queued before another phone answered) is not the answering phone's.
            if self.previews.talking() == Some(&session_id) {
                self.on_control_message(call_id, text);
            } else {
                tracing::warn!(%session_id, "data-channel message from a preview that is not the call; ignored");
            }
            return Ok(());
        }
        let connected = event == SessionMediaEvent::Connected;
        let actions = self.previews.on_media(now, session_id.clone(), event);
        self.actions.extend(actions);
        // The answered session connected only after the answer: now the call is up.
        if connected && self.previews.talking() == Some(&session_id) {
            return self.input(now, Input::MediaConnected(call_id));
        }
        Ok(())
    }

    /// The machine says "send the offer": after `answered_in_session` the session already
    /// is the call, so open its audio instead (and close the other sessions). `true` when
    /// that happened.
    pub(super) fn upgrade_session(&mut self, call_id: &CallId) -> bool {
        let Some(session_id) = self.answered_in.take() else {
            return false;
        };
        let Some(actions) = self.previews.answered_in(&session_id) else {
            return false;
        };
        self.actions.extend(actions);
        if self.previews.is_connected(&session_id) {
            self.pending_connected = Some(call_id.clone());
        }
        true
    }
}
