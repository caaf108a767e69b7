//! The per-door call machine. Per door, the call goes through these states:
//!
//! ```text
//!             ring                     answer (first wins)
//!   (none) ---------> Ringing{phones} ---------------------> Answered{phone}
//!     ^                 |  cancel_ring / every phone         |  hang_up (either side),
//!     |                 |  declined / door offline           |  door or phone gone
//!     +-----------------+------------------------------------+
//! ```
//!
//! [`door`] handles what the door sends, [`phone`] what a phone sends; this module holds the
//! states and what a connection's loss does to them.

mod door;
mod phone;
#[cfg(test)]
mod quiet_tests;
mod session;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Instant;

use doorbell_protocol::{
    CallId, DoorId, ErrorCode, HangUpReason, HubToDoor, HubToPhone, PhoneId, RingEndReason,
    SessionEndReason,
};

use super::{ConnId, Now, Out, Router, RouterEvent};

/// Call ids remembered per door to refuse reuse. A door makes a fresh random id per press;
/// 256 covers days of use while bounding memory per door.
pub(crate) const RECENT_CALL_IDS: usize = 256;

#[derive(Debug)]
pub(super) enum Phase {
    /// Ringing. A ring ends as declined when `waiting` is empty after a decline: every
    /// phone that was rung (open page or push) said no, not merely every open page.
    Ringing {
        /// Connections whose page is ringing (not yet declined).
        ringing: BTreeSet<ConnId>,
        /// Phones rung (an open page, or a push subscription) that have not declined.
        waiting: BTreeSet<PhoneId>,
        /// Phones in quiet hours at the ring: a page of theirs that connects does not ring.
        quiet: BTreeSet<PhoneId>,
    },
    /// `conn` answered; the door and that connection now exchange SDP and ICE.
    Answered {
        conn: ConnId,
        phone_id: PhoneId,
        at: Instant,
    },
}

#[derive(Debug)]
pub(crate) struct Call {
    pub(in crate::router) id: CallId,
    phase: Phase,
    /// The phones' preview sessions of this call (they end with it).
    sessions: session::Sessions,
}

/// Remembers the last [`RECENT_CALL_IDS`] call ids of one door.
#[derive(Debug, Default)]
pub(crate) struct RecentCalls {
    order: VecDeque<CallId>,
    set: HashSet<CallId>,
}

impl RecentCalls {
    fn contains(&self, id: &CallId) -> bool {
        self.set.contains(id)
    }

    fn insert(&mut self, id: CallId) {
        if self.order.len() >= RECENT_CALL_IDS {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.clone());
        self.order.push_back(id);
    }
}

fn door_error(conn: ConnId, code: ErrorCode, msg: &str, call: &CallId) -> Out {
    Out::Door(conn, HubToDoor::error(code, msg, Some(call.clone())))
}

fn phone_error(conn: ConnId, code: ErrorCode, msg: &str, call: &CallId) -> Out {
    Out::Phone(conn, HubToPhone::error(code, msg, Some(call.clone())))
}

impl Router {
    /// If `door_id` is ringing, `conn` (a phone that just connected, or was just paired)
    /// rings too.
    pub(super) fn ring_late_joiner(
        &mut self,
        now: Now,
        conn: ConnId,
        phone_id: &PhoneId,
        door_id: &DoorId,
        out: &mut Vec<Out>,
    ) {
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        if let Some(Call {
            id,
            phase:
                Phase::Ringing {
                    ringing,
                    waiting,
                    quiet,
                },
            ..
        }) = &mut slot.call
        {
            if quiet.contains(phone_id) {
                return;
            }
            ringing.insert(conn);
            // A phone paired during the ring (or with no push subscription) is waited for now.
            waiting.insert(phone_id.clone());
            out.push(Out::Phone(
                conn,
                HubToPhone::Ring {
                    call_id: id.clone(),
                    door_id: door_id.clone(),
                    door_name: slot.name.clone(),
                    ice_servers: self.ice.for_call(phone_id.as_str(), now.wall),
                },
            ));
        }
    }

    /// `phone_id` no longer belongs to `door_id`: a ring stops waiting for its decline (it
    /// could only have come from a connection, which is cut off too).
    pub(in crate::router) fn forget_rung_phone(&mut self, door_id: &DoorId, phone_id: &PhoneId) {
        if let Some(Call {
            phase: Phase::Ringing { waiting, .. },
            ..
        }) = self.doors.get_mut(door_id).and_then(|s| s.call.as_mut())
        {
            waiting.remove(phone_id);
        }
    }

    /// Ends the door's call because the door's connection went away (or was replaced).
    pub(super) fn end_call_door_gone(&mut self, door_id: &DoorId, out: &mut Vec<Out>) {
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        let Some(call) = slot.call.take() else { return };
        match call.phase {
            Phase::Ringing { ringing, .. } => {
                for phone in ringing {
                    out.push(Out::Phone(
                        phone,
                        HubToPhone::RingingCancelled {
                            call_id: call.id.clone(),
                            reason: RingEndReason::DoorOffline,
                        },
                    ));
                }
                out.push(Out::Event(RouterEvent::missed(
                    door_id,
                    &call.id,
                    RingEndReason::DoorOffline,
                )));
            }
            Phase::Answered { conn, phone_id, .. } => {
                out.push(Out::Phone(
                    conn,
                    HubToPhone::HangUp {
                        call_id: call.id.clone(),
                        reason: HangUpReason::PeerGone,
                    },
                ));
                // The router does not know when the door vanished exactly; no duration.
                out.push(Out::Event(RouterEvent::ended(
                    door_id,
                    &call.id,
                    &phone_id,
                    HangUpReason::PeerGone,
                    None,
                )));
            }
        }
    }

    /// The phone connection `conn`, paired with `door_id`, went away.
    pub(super) fn phone_gone(
        &mut self,
        now: Now,
        conn: ConnId,
        door_id: &DoorId,
        out: &mut Vec<Out>,
    ) {
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        let Some(call) = &mut slot.call else { return };
        call.sessions
            .end_for_phone(conn, slot.conn, SessionEndReason::PeerGone, out);
        match &mut call.phase {
            // A ringing phone that goes away just stops ringing; the door's ring
            // timeout still ends the call if nobody else answers.
            Phase::Ringing { ringing, .. } => {
                ringing.remove(&conn);
            }
            Phase::Answered {
                conn: answerer,
                phone_id,
                at,
            } if *answerer == conn => {
                let event = RouterEvent::ended(
                    door_id,
                    &call.id,
                    phone_id,
                    HangUpReason::PeerGone,
                    Some(now.mono.saturating_duration_since(*at)),
                );
                if let Some(door_conn) = slot.conn {
                    out.push(Out::Door(
                        door_conn,
                        HubToDoor::HangUp {
                            call_id: call.id.clone(),
                            reason: HangUpReason::PeerGone,
                        },
                    ));
                }
                out.push(Out::Event(event));
                slot.call = None;
            }
            Phase::Answered { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_calls_forget_the_oldest_past_the_limit() {
        let mut recent = RecentCalls::default();
        for i in 0..=RECENT_CALL_IDS {
            recent.insert(CallId::new(format!("c{i}")));
        }
        assert!(!recent.contains(&CallId::new("c0")));
        assert!(recent.contains(&CallId::new("c1")));
        assert!(recent.contains(&CallId::new(format!("c{RECENT_CALL_IDS}"))));
    }
}
