//! The call history as the router sees it: one [`RouterEvent`] per ring, answer, missed ring
//! and hang-up. The switchboard stamps them with the wall clock and hands them to the
//! recorder, which writes them to the store (`GET /api/events` reads them back).

use std::collections::BTreeSet;
use std::time::Duration;

use doorbell_protocol::{CallId, DoorId, HangUpReason, PhoneId, RingEndReason};

use crate::store::EventKind;

/// A call event for the history, before the wall-clock timestamp is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouterEvent {
    pub(crate) door_id: DoorId,
    /// `None` for a missed ring: the door could not reach the hub, so no call existed.
    pub(crate) call_id: Option<CallId>,
    pub(crate) kind: EventKind,
    pub(crate) phone_id: Option<PhoneId>,
    /// Wire spelling of the `RingEndReason` / `HangUpReason`.
    pub(crate) reason: Option<&'static str>,
    pub(crate) duration: Option<Duration>,
    /// For a ring: phones in quiet hours, which get no push (the event is still in their
    /// history, which is per door).
    pub(crate) quiet: BTreeSet<PhoneId>,
}

impl RouterEvent {
    fn of_call(door_id: &DoorId, call_id: &CallId, kind: EventKind) -> Self {
        RouterEvent {
            door_id: door_id.clone(),
            call_id: Some(call_id.clone()),
            kind,
            phone_id: None,
            reason: None,
            duration: None,
            quiet: BTreeSet::new(),
        }
    }

    /// The door rang.
    pub(crate) fn ring(door_id: &DoorId, call_id: &CallId) -> Self {
        Self::of_call(door_id, call_id, EventKind::Ring)
    }

    /// This ring leaves out the `quiet` phones.
    pub(crate) fn quiet(mut self, quiet: &BTreeSet<PhoneId>) -> Self {
        self.quiet = quiet.clone();
        self
    }

    /// Ringing ended without an answer.
    pub(crate) fn missed(door_id: &DoorId, call_id: &CallId, reason: RingEndReason) -> Self {
        RouterEvent {
            reason: Some(ring_reason_str(reason)),
            ..Self::of_call(door_id, call_id, EventKind::Missed)
        }
    }

    /// `phone_id` answered.
    pub(crate) fn answered(door_id: &DoorId, call_id: &CallId, phone_id: &PhoneId) -> Self {
        RouterEvent {
            phone_id: Some(phone_id.clone()),
            ..Self::of_call(door_id, call_id, EventKind::Answered)
        }
    }

    /// An answered call ended; `duration` is `None` when the router cannot know it.
    pub(crate) fn ended(
        door_id: &DoorId,
        call_id: &CallId,
        phone_id: &PhoneId,
        reason: HangUpReason,
        duration: Option<Duration>,
    ) -> Self {
        RouterEvent {
            phone_id: Some(phone_id.clone()),
            reason: Some(hang_up_reason_str(reason)),
            duration,
            ..Self::of_call(door_id, call_id, EventKind::Ended)
        }
    }

    /// The door unlocked at the request of `phone_id`, in the answered call `call_id`.
    pub(crate) fn unlocked(door_id: &DoorId, call_id: &CallId, phone_id: &PhoneId) -> Self {
        RouterEvent {
            phone_id: Some(phone_id.clone()),
            ..Self::of_call(door_id, call_id, EventKind::Unlocked)
        }
    }

    /// `phone_id` watched the door (live view), when the door accepted.
    pub(crate) fn viewed(door_id: &DoorId, phone_id: &PhoneId) -> Self {
        RouterEvent {
            phone_id: Some(phone_id.clone()),
            ..Self::missed_ring(door_id)
        }
        .kind(EventKind::View)
    }

    fn kind(mut self, kind: EventKind) -> Self {
        self.kind = kind;
        self
    }

    /// A press the door could not deliver while the hub was unreachable.
    pub(crate) fn missed_ring(door_id: &DoorId) -> Self {
        RouterEvent {
            door_id: door_id.clone(),
            call_id: None,
            kind: EventKind::MissedRing,
            phone_id: None,
            reason: None,
            duration: None,
            quiet: BTreeSet::new(),
        }
    }
}

fn ring_reason_str(r: RingEndReason) -> &'static str {
    match r {
        RingEndReason::Timeout => "timeout",
        RingEndReason::Declined => "declined",
        RingEndReason::Cancelled => "cancelled",
        RingEndReason::DoorOffline => "door_offline",
        RingEndReason::Quiet => "quiet",
    }
}

fn hang_up_reason_str(r: HangUpReason) -> &'static str {
    match r {
        HangUpReason::Normal => "normal",
        HangUpReason::Failed => "failed",
        HangUpReason::Timeout => "timeout",
        HangUpReason::PeerGone => "peer_gone",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The history stores reasons in their wire spelling; the two must not drift.
    #[test]
    fn reasons_are_spelled_as_on_the_wire() {
        let wire = |v: serde_json::Value| v.as_str().expect("a string").to_owned();
        for r in [
            RingEndReason::Timeout,
            RingEndReason::Declined,
            RingEndReason::Cancelled,
            RingEndReason::DoorOffline,
        ] {
            let json = serde_json::to_value(r).expect("serialize");
            assert_eq!(ring_reason_str(r), wire(json));
        }
        for r in [
            HangUpReason::Normal,
            HangUpReason::Failed,
            HangUpReason::Timeout,
            HangUpReason::PeerGone,
        ] {
            let json = serde_json::to_value(r).expect("serialize");
            assert_eq!(hang_up_reason_str(r), wire(json));
        }
    }

    #[test]
    fn a_missed_ring_has_no_call() {
        let e = RouterEvent::missed_ring(&DoorId::new("d"));
        assert_eq!(e.call_id, None);
        assert_eq!(e.kind, EventKind::MissedRing);
        let e = RouterEvent::ring(&DoorId::new("d"), &CallId::new("c"));
        assert_eq!(e.call_id, Some(CallId::new("c")));
    }
}
