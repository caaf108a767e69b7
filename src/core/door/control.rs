//! The door's side of a call's `control` data channel: every message is decided by
//! [`unlock::decide`] (kept pure there) and answered.

use super::{Answerer, Door};
use crate::core::unlock::{self, Decision};
use crate::core::Action;
use doorbell_protocol::CallId;

impl Door {
    /// A message on a call's `control` data channel: maybe an unlock. Every decision is
    /// logged, and every message gets a reply.
    pub(super) fn on_control_message(&mut self, call_id: CallId, text: &str) {
        if self.media_for(&call_id).is_none() {
            tracing::warn!(%call_id, "data-channel message for a call that is over; ignored");
            return;
        }
        // No `answered` seen for this call: nobody the hub vouched for, so no unlock.
        let may_unlock = self.answerer_of(&call_id).is_some_and(|a| a.may_unlock);
        match unlock::decide(self.machine.state(), &call_id, may_unlock, text) {
            Decision::Unlock { request_id } => {
                self.actions.push_back(Action::PulseStrike {
                    call_id,
                    request_id,
                });
            }
            Decision::Refuse(reply) => {
                tracing::warn!(%call_id, ?reply, "unlock request refused");
                self.reply(call_id, reply);
            }
        }
    }

    pub(super) fn answerer_of(&self, call_id: &CallId) -> Option<&Answerer> {
        self.answerer.as_ref().filter(|a| a.call_id == *call_id)
    }

    pub(super) fn reply(
        &mut self,
        call_id: CallId,
        message: doorbell_protocol::control::DoorToPhone,
    ) {
        if self.media_for(&call_id).is_some() {
            self.actions.push_back(Action::Reply { call_id, message });
        }
    }
}
