//! The door's use of its pins ([`crate::core::pins`]): every phone's SDP answer, for a call or
//! a preview, is checked before the door applies it. Without pins set (scenario tests of other
//! concerns) nothing is checked; the daemon always sets them at start.

use super::Door;
use crate::core::call::{CallError, Input};
use crate::core::pins::{self, PinCheck, Pins};
use crate::core::Action;
use doorbell_protocol::{CallId, PhoneId, SessionId};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Default)]
pub(super) struct PinGate {
    /// `None`: not enforced (set by [`crate::core::Event::PinsChanged`]).
    pins: Option<Pins>,
    /// The phone of each preview session (from `open_session`).
    session_phones: HashMap<SessionId, PhoneId>,
    /// Preview sessions whose answer passed, with the door's own unlock grant.
    verified: HashMap<SessionId, bool>,
}

impl PinGate {
    pub(super) fn set(&mut self, pins: Pins) {
        tracing::info!(phones = pins.len(), "pinned phones loaded");
        if pins.is_empty() {
            tracing::warn!("no phone is pinned: calls are refused until a phone pairs with a link from `doorbelld pair` (phones paired before pinning must pair again)");
        }
        self.pins = Some(pins);
    }

    pub(super) fn session_opened(&mut self, session_id: &SessionId, phone_id: &PhoneId) {
        self.session_phones
            .insert(session_id.clone(), phone_id.clone());
    }

    /// The door's unlock grant for the phone that answered in `session_id`: `None` when pins
    /// are enforced and that session's answer never passed.
    pub(super) fn session_grant(&self, session_id: &SessionId) -> Option<bool> {
        match &self.pins {
            None => Some(true),
            Some(_) => self.verified.get(session_id).copied(),
        }
    }

    /// Forgets the sessions for which `open` is false (they ended).
    pub(super) fn forget_ended(&mut self, open: impl Fn(&SessionId) -> bool) {
        self.session_phones.retain(|s, _| open(s));
        self.verified.retain(|s, _| open(s));
    }

    fn check(&self, phone_id: &PhoneId, sdp: &str) -> Option<PinCheck> {
        self.pins
            .as_ref()
            .map(|pins| pins::check(pins, phone_id, sdp))
    }
}

impl Door {
    /// The answering phone's SDP answer for the call: applied only if its certificate is the
    /// one pinned for that phone; otherwise the call ends (no media, no unlock).
    pub(super) fn pinned_answer(
        &mut self,
        now: Instant,
        call_id: CallId,
        sdp: String,
    ) -> Result<(), CallError> {
        let Some(answerer) = self.answerer.as_mut().filter(|a| a.call_id == call_id) else {
            if self.pins.pins.is_none() {
                self.actions.push_back(Action::SetAnswer { call_id, sdp });
                return Ok(());
            }
            tracing::warn!(%call_id, "an SDP answer for a call nobody answered; refused");
            return Ok(());
        };
        match self.pins.check(&answerer.phone_id, &sdp) {
            None => {}
            Some(PinCheck::Pinned { may_unlock }) => {
                // The hub can only take the permission away, never grant it.
                answerer.may_unlock &= may_unlock;
            }
            Some(refusal) => {
                tracing::warn!(%call_id, phone = %answerer.phone_id, ?refusal, "refusing the call: this phone's certificate is not the one the door pinned at pairing (pair it again with a link from `doorbelld pair`)");
                answerer.may_unlock = false;
                return self.input(now, Input::MediaFailed(call_id));
            }
        }
        self.actions.push_back(Action::SetAnswer { call_id, sdp });
        Ok(())
    }

    /// A preview's SDP answer: applied only for a pinned certificate, else the session closes.
    pub(super) fn pinned_session_answer(&mut self, session_id: SessionId, sdp: String) {
        let check = match self.pins.session_phones.get(&session_id) {
            Some(phone_id) => self.pins.check(phone_id, &sdp),
            None => self.pins.pins.as_ref().map(|_| PinCheck::Unpinned),
        };
        match check {
            None => {}
            Some(PinCheck::Pinned { may_unlock }) => {
                self.pins.verified.insert(session_id.clone(), may_unlock);
            }
            Some(refusal) => {
                let phone = self.pins.session_phones.get(&session_id).cloned();
                tracing::warn!(%session_id, ?phone, ?refusal, "refusing a preview: this phone's certificate is not the one the door pinned at pairing");
                let closed = self.previews.failed(session_id);
                self.actions.extend(closed);
                return;
            }
        }
        self.actions
            .push_back(Action::SetPreviewAnswer { session_id, sdp });
    }
}
