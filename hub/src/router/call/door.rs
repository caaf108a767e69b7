//! What the door sends about its call: `ring`, `cancel_ring`, `sdp_offer`, `ice`, `hang_up`.

use std::collections::{BTreeMap, BTreeSet};

use doorbell_protocol::{
    CallId, DoorId, ErrorCode, HangUpReason, HubToDoor, HubToPhone, IceServer, PhoneId,
    RingEndReason,
};

use super::{door_error, Call, Phase};
use crate::router::{ConnId, Now, Out, Roster, Router, RouterEvent};

impl Router {
    /// `ring{call_id}`: ring every phone connection paired with the door, except those of
    /// phones the roster says are quiet; wait for every phone rung (open page or push). When
    /// the door has phones and every one is quiet, the ring ends at once (`quiet`), so the
    /// door can offer the visitor a voice message.
    pub(in crate::router) fn ring(
        &mut self,
        now: Now,
        conn: ConnId,
        door_id: &DoorId,
        call_id: CallId,
        roster: Roster,
        out: &mut Vec<Out>,
    ) {
        let ringing: BTreeSet<ConnId> = self
            .phone_conns_of(door_id)
            .filter(|c| {
                self.phones
                    .get(c)
                    .is_some_and(|p| !roster.quiet.contains(&p.phone_id))
            })
            .collect();
        let online: BTreeSet<PhoneId> = ringing
            .iter()
            .filter_map(|c| self.phones.get(c).map(|p| p.phone_id.clone()))
            .collect();
        let phone_count = online.len();
        let mut waiting = online;
        waiting.extend(roster.pushed.iter().cloned());
        let all_quiet = waiting.is_empty() && !roster.quiet.is_empty();
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        if slot.call.is_some() {
            out.push(door_error(
                conn,
                ErrorCode::Busy,
                "a call is already in progress",
                &call_id,
            ));
            return;
        }
        // A reused id refers to a call that is over: ringing it again is not allowed in that
        // call's state, hence `invalid_state` (not `unknown_call`, which means "never heard of
        // it / not yours").
        if slot.recent.contains(&call_id) {
            out.push(door_error(
                conn,
                ErrorCode::InvalidState,
                "this call id was already used; pick a fresh one",
                &call_id,
            ));
            return;
        }
        // Credentials are minted only for a ring that goes ahead.
        let ice: BTreeMap<ConnId, Vec<IceServer>> = ringing
            .iter()
            .filter_map(|c| {
                self.phones
                    .get(c)
                    .map(|p| (*c, self.ice.for_call(p.phone_id.as_str(), now.wall)))
            })
            .collect();
        let door_ice = self.ice.for_call(door_id.as_str(), now.wall);
        slot.recent.insert(call_id.clone());
        for phone in &ringing {
            out.push(Out::Phone(
                *phone,
                HubToPhone::Ring {
                    call_id: call_id.clone(),
                    door_id: door_id.clone(),
                    door_name: slot.name.clone(),
                    ice_servers: ice.get(phone).cloned().unwrap_or_default(),
                },
            ));
        }
        out.push(Out::Door(
            conn,
            HubToDoor::Ringing {
                call_id: call_id.clone(),
                phones: u32::try_from(phone_count).unwrap_or(u32::MAX),
                ice_servers: Some(door_ice),
            },
        ));
        out.push(Out::Event(
            RouterEvent::ring(door_id, &call_id).quiet(&roster.quiet),
        ));
        if all_quiet {
            out.push(Out::Door(
                conn,
                HubToDoor::RingEnded {
                    call_id: call_id.clone(),
                    reason: RingEndReason::Quiet,
                },
            ));
            out.push(Out::Event(RouterEvent::missed(
                door_id,
                &call_id,
                RingEndReason::Quiet,
            )));
            return;
        }
        slot.call = Some(Call {
            id: call_id,
            phase: Phase::Ringing {
                ringing,
                waiting,
                quiet: roster.quiet,
            },
            sessions: Default::default(),
        });
    }

    /// `cancel_ring` (or `hang_up` while still ringing) from the door.
    pub(in crate::router) fn end_ringing(
        &mut self,
        conn: ConnId,
        door_id: &DoorId,
        call_id: &CallId,
        reason: RingEndReason,
        out: &mut Vec<Out>,
    ) {
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        match &slot.call {
            Some(call) if &call.id == call_id => match &call.phase {
                Phase::Ringing { ringing, .. } => {
                    for phone in ringing {
                        out.push(Out::Phone(
                            *phone,
                            HubToPhone::RingingCancelled {
                                call_id: call_id.clone(),
                                reason,
                            },
                        ));
                    }
                    out.push(Out::Event(RouterEvent::missed(door_id, call_id, reason)));
                    slot.call = None;
                }
                Phase::Answered { .. } => out.push(door_error(
                    conn,
                    ErrorCode::InvalidState,
                    "the call was answered; send hang_up to end it",
                    call_id,
                )),
            },
            _ => out.push(no_such_call(conn, call_id)),
        }
    }

    /// Relays an SDP offer or ICE candidate from the door to the answering phone.
    pub(in crate::router) fn door_relay(
        &mut self,
        conn: ConnId,
        door_id: &DoorId,
        call_id: &CallId,
        out: &mut Vec<Out>,
        make: impl FnOnce(CallId) -> HubToPhone,
    ) {
        let call = self.doors.get(door_id).and_then(|s| s.call.as_ref());
        match call {
            Some(call) if &call.id == call_id => match &call.phase {
                Phase::Answered { conn: phone, .. } => {
                    out.push(Out::Phone(*phone, make(call_id.clone())))
                }
                Phase::Ringing { .. } => out.push(door_error(
                    conn,
                    ErrorCode::InvalidState,
                    "the call has not been answered yet",
                    call_id,
                )),
            },
            _ => out.push(no_such_call(conn, call_id)),
        }
    }

    /// `hang_up` from the door.
    pub(in crate::router) fn door_hang_up(
        &mut self,
        now: Now,
        conn: ConnId,
        door_id: &DoorId,
        call_id: &CallId,
        reason: HangUpReason,
        out: &mut Vec<Out>,
    ) {
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        match &slot.call {
            Some(call) if &call.id == call_id => match &call.phase {
                Phase::Answered {
                    conn: phone,
                    phone_id,
                    at,
                } => {
                    out.push(Out::Phone(
                        *phone,
                        HubToPhone::HangUp {
                            call_id: call_id.clone(),
                            reason,
                        },
                    ));
                    out.push(Out::Event(RouterEvent::ended(
                        door_id,
                        call_id,
                        phone_id,
                        reason,
                        Some(now.mono.saturating_duration_since(*at)),
                    )));
                    slot.call = None;
                }
                // Lenient: a door that hangs up while still ringing means "stop ringing".
                Phase::Ringing { .. } => {
                    self.end_ringing(conn, door_id, call_id, RingEndReason::Cancelled, out)
                }
            },
            _ => out.push(no_such_call(conn, call_id)),
        }
    }
}

impl Router {
    /// `unlocked{call_id}`: the door let the visitor in at the request of the phone that
    /// answered this call; recorded in the history with that phone.
    pub(in crate::router) fn door_unlocked(
        &mut self,
        conn: ConnId,
        door_id: &DoorId,
        call_id: &CallId,
        out: &mut Vec<Out>,
    ) {
        let answered_by = self.doors.get(door_id).and_then(|slot| match &slot.call {
            Some(call) if &call.id == call_id => match &call.phase {
                Phase::Answered { phone_id, .. } => Some(phone_id.clone()),
                Phase::Ringing { .. } => None,
            },
            _ => None,
        });
        match answered_by {
            Some(phone_id) => out.push(Out::Event(RouterEvent::unlocked(
                door_id, call_id, &phone_id,
            ))),
            None => out.push(no_such_call(conn, call_id)),
        }
    }
}

fn no_such_call(conn: ConnId, call_id: &CallId) -> Out {
    door_error(
        conn,
        ErrorCode::UnknownCall,
        "no such call in progress",
        call_id,
    )
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::{DoorToHub, PhoneToHub};

    use super::*;
    use crate::router::test_support::{call, error_code, now, ring, setup, to, A, B, DOOR, OTHER};

    #[test]
    fn an_unlock_is_recorded_with_the_answering_phone_and_only_in_an_answered_call() {
        let mut r = setup();
        ring(&mut r);
        let unlocked = DoorToHub::Unlocked { call_id: call() };
        let out = r.door_message(now(), DOOR, unlocked.clone());
        assert_eq!(
            error_code(&out),
            Some(ErrorCode::UnknownCall),
            "still ringing"
        );
        r.phone_message(now(), B, PhoneToHub::Answer { call_id: call() });
        let out = r.door_message(now(), DOOR, unlocked);
        assert_eq!(
            out,
            vec![Out::Event(RouterEvent::unlocked(
                &crate::router::test_support::door_id(),
                &call(),
                &doorbell_protocol::PhoneId::new("p-b")
            ))]
        );
        let out = r.door_message(
            now(),
            DOOR,
            DoorToHub::Unlocked {
                call_id: CallId::new("other"),
            },
        );
        assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
    }

    #[test]
    fn ring_fans_out_to_paired_phones_only() {
        let mut r = setup();
        let out = ring(&mut r);
        assert_eq!(to(&out, A).len(), 1);
        assert_eq!(to(&out, B).len(), 1);
        assert!(to(&out, OTHER).is_empty());
        assert!(out.contains(&Out::Door(
            DOOR,
            HubToDoor::Ringing {
                call_id: call(),
                phones: 2,
                ice_servers: Some(Vec::new()),
            }
        )));
    }

    #[test]
    fn sdp_before_answer_is_invalid_state_and_unpaired_is_unknown_call() {
        let mut r = setup();
        ring(&mut r);
        let now = now();
        let out = r.door_message(
            now,
            DOOR,
            DoorToHub::SdpOffer {
                call_id: call(),
                sdp: "v=0".into(),
            },
        );
        assert_eq!(error_code(&out), Some(ErrorCode::InvalidState));
        let out = r.phone_message(now, OTHER, PhoneToHub::Answer { call_id: call() });
        assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
    }

    #[test]
    fn busy_and_reused_call_id() {
        let mut r = setup();
        ring(&mut r);
        let out = r.door_message(
            now(),
            DOOR,
            DoorToHub::Ring {
                call_id: CallId::new("c2"),
            },
        );
        assert_eq!(error_code(&out), Some(ErrorCode::Busy));
        r.door_message(
            now(),
            DOOR,
            DoorToHub::CancelRing {
                call_id: call(),
                reason: RingEndReason::Timeout,
            },
        );
        let out = ring(&mut r);
        assert_eq!(error_code(&out), Some(ErrorCode::InvalidState));
    }
}
