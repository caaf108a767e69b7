//! What a phone sends about a call: `answer`, `decline`, `sdp_answer`, `ice`, `hang_up`.

use doorbell_protocol::{
    CallId, DoorId, ErrorCode, HubToDoor, HubToPhone, PhoneToHub, RingEndReason,
};

use super::{phone_error, Phase};
use crate::router::{ConnId, Now, Out, Router, RouterEvent};

impl Router {
    /// The paired door of `conn` whose current call is `call_id`. `None` covers unknown calls,
    /// finished calls and calls of doors this phone is not paired with alike, so a phone
    /// cannot even learn whether another door's call exists.
    fn phone_call_door(&self, conn: ConnId, call_id: &CallId) -> Option<DoorId> {
        let peer = self.phones.get(&conn)?;
        peer.doors
            .keys()
            .find(|d| {
                self.doors
                    .get(*d)
                    .and_then(|s| s.call.as_ref())
                    .is_some_and(|c| &c.id == call_id)
            })
            .cloned()
    }

    /// A message from the phone on `conn`.
    pub(crate) fn phone_message(&mut self, now: Now, conn: ConnId, msg: PhoneToHub) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(phone_id) = self.phones.get(&conn).map(|p| p.phone_id.clone()) else {
            return out;
        };
        let msg = match self.phone_session_message(now, conn, msg) {
            Ok(out) => return out,
            Err(msg) => msg,
        };
        let call_id = match &msg {
            PhoneToHub::Hello { .. } => {
                out.push(Out::Phone(
                    conn,
                    HubToPhone::error(
                        ErrorCode::AlreadyAuthenticated,
                        "already authenticated",
                        None,
                    ),
                ));
                return out;
            }
            PhoneToHub::Answer { call_id }
            | PhoneToHub::QuickReply { call_id, .. }
            | PhoneToHub::Decline { call_id }
            | PhoneToHub::SdpAnswer { call_id, .. }
            | PhoneToHub::Ice { call_id, .. }
            | PhoneToHub::HangUp { call_id, .. } => call_id.clone(),
            // Answered by `phone_session_message` above.
            PhoneToHub::Preview { .. }
            | PhoneToHub::SessionAnswer { .. }
            | PhoneToHub::SessionIce { .. }
            | PhoneToHub::CloseSession { .. }
            | PhoneToHub::AnswerInSession { .. }
            | PhoneToHub::View { .. } => return out,
        };
        let Some(door_id) = self.phone_call_door(conn, &call_id) else {
            out.push(phone_error(
                conn,
                ErrorCode::UnknownCall,
                "no such call",
                &call_id,
            ));
            return out;
        };
        // Told to the door with `answered`, which then refuses an unlock the phone may not make.
        let may_unlock = self
            .phones
            .get(&conn)
            .and_then(|p| p.access.get(&door_id))
            .is_none_or(|a| a.may_unlock);
        let Some(slot) = self.doors.get_mut(&door_id) else {
            return out;
        };
        let Some(call) = slot.call.as_mut() else {
            return out;
        };
        let door_conn = slot.conn;
        match (msg, &mut call.phase) {
            (PhoneToHub::Answer { .. }, Phase::Ringing { ringing, .. }) => {
                if !ringing.remove(&conn) {
                    out.push(phone_error(
                        conn,
                        ErrorCode::InvalidState,
                        "this call is not ringing here (declined?)",
                        &call_id,
                    ));
                    return out;
                }
                for other in ringing.iter() {
                    out.push(Out::Phone(
                        *other,
                        HubToPhone::AnsweredElsewhere {
                            call_id: call_id.clone(),
                        },
                    ));
                }
                call.sessions.answered(conn, &mut out);
                if let Some(door_conn) = door_conn {
                    out.push(Out::Door(
                        door_conn,
                        HubToDoor::Answered {
                            call_id: call_id.clone(),
                            phone_id: phone_id.clone(),
                            // Minted only for an answer (an HMAC per ICE message would be waste).
                            ice_servers: self.ice.for_call(door_id.as_str(), now.wall),
                            may_unlock,
                        },
                    ));
                }
                out.push(Out::Event(RouterEvent::answered(
                    &door_id, &call_id, &phone_id,
                )));
                call.phase = Phase::Answered {
                    conn,
                    phone_id,
                    at: now.mono,
                };
            }
            (PhoneToHub::Answer { .. }, Phase::Answered { conn: answerer, .. }) => {
                let (code, text) = if *answerer == conn {
                    (ErrorCode::InvalidState, "you already answered this call")
                } else {
                    (ErrorCode::AlreadyAnswered, "another phone answered first")
                };
                out.push(phone_error(conn, code, text, &call_id));
            }
            (
                PhoneToHub::Decline { .. },
                Phase::Ringing {
                    ringing, waiting, ..
                },
            ) => {
                call.sessions.end_for_phone(
                    conn,
                    door_conn,
                    doorbell_protocol::SessionEndReason::Closed,
                    &mut out,
                );
                if !ringing.remove(&conn) {
                    out.push(phone_error(
                        conn,
                        ErrorCode::InvalidState,
                        "this call is not ringing here",
                        &call_id,
                    ));
                } else {
                    waiting.remove(&phone_id);
                    if waiting.is_empty() {
                        // Pages of phones that declined elsewhere (another tab) stop too.
                        for other in ringing.iter() {
                            out.push(Out::Phone(
                                *other,
                                HubToPhone::RingingCancelled {
                                    call_id: call_id.clone(),
                                    reason: RingEndReason::Declined,
                                },
                            ));
                        }
                        if let Some(door_conn) = door_conn {
                            out.push(Out::Door(
                                door_conn,
                                HubToDoor::RingEnded {
                                    call_id: call_id.clone(),
                                    reason: RingEndReason::Declined,
                                },
                            ));
                        }
                        out.push(Out::Event(RouterEvent::missed(
                            &door_id,
                            &call_id,
                            RingEndReason::Declined,
                        )));
                        slot.call = None;
                    }
                }
            }
            (PhoneToHub::Decline { .. }, Phase::Answered { conn: answerer, .. }) => {
                let (code, text) = if *answerer == conn {
                    (
                        ErrorCode::InvalidState,
                        "you answered this call; send hang_up",
                    )
                } else {
                    (
                        ErrorCode::AlreadyAnswered,
                        "another phone answered this call",
                    )
                };
                out.push(phone_error(conn, code, text, &call_id));
            }
            // A quick reply from a phone that is ringing for the call or answered it: the door
            // fetches the clip and plays it (whether the clip is this door's, the door's own
            // credentials decide when it fetches).
            (PhoneToHub::QuickReply { reply_id, .. }, phase) => {
                let allowed = match phase {
                    Phase::Ringing { ringing, .. } => ringing.contains(&conn),
                    Phase::Answered { conn: answerer, .. } => *answerer == conn,
                };
                match (allowed, door_conn) {
                    (true, Some(door_conn)) => out.push(Out::Door(
                        door_conn,
                        HubToDoor::QuickReply {
                            call_id: call_id.clone(),
                            reply_id,
                        },
                    )),
                    (true, None) => {}
                    (false, _) => out.push(phone_error(
                        conn,
                        ErrorCode::InvalidState,
                        "this phone is not ringing for or in this call",
                        &call_id,
                    )),
                }
            }
            (
                msg @ (PhoneToHub::SdpAnswer { .. } | PhoneToHub::Ice { .. }),
                Phase::Answered { conn: answerer, .. },
            ) if *answerer == conn => {
                let relayed = match msg {
                    PhoneToHub::SdpAnswer { sdp, .. } => HubToDoor::SdpAnswer {
                        call_id: call_id.clone(),
                        sdp,
                    },
                    PhoneToHub::Ice { candidate, .. } => HubToDoor::Ice {
                        call_id: call_id.clone(),
                        candidate,
                    },
                    _ => return out,
                };
                if let Some(door_conn) = door_conn {
                    out.push(Out::Door(door_conn, relayed));
                }
            }
            (
                PhoneToHub::HangUp { reason, .. },
                Phase::Answered {
                    conn: answerer, at, ..
                },
            ) if *answerer == conn => {
                if let Some(door_conn) = door_conn {
                    out.push(Out::Door(
                        door_conn,
                        HubToDoor::HangUp {
                            call_id: call_id.clone(),
                            reason,
                        },
                    ));
                }
                out.push(Out::Event(RouterEvent::ended(
                    &door_id,
                    &call_id,
                    &phone_id,
                    reason,
                    Some(now.mono.saturating_duration_since(*at)),
                )));
                slot.call = None;
            }
            // Another phone's answered call: not a call this connection may act on.
            (_, Phase::Answered { .. }) => out.push(phone_error(
                conn,
                ErrorCode::UnknownCall,
                "this call belongs to the phone that answered it",
                &call_id,
            )),
            (_, Phase::Ringing { .. }) => out.push(phone_error(
                conn,
                ErrorCode::InvalidState,
                "answer the call first",
                &call_id,
            )),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use doorbell_protocol::{IceCandidate, IceServer, PhoneId};

    use super::*;
    use crate::router::test_support::{
        call, error_code, now, ring, setup, setup_with, to, A, B, DOOR,
    };
    use crate::turn::TurnIssuer;

    #[test]
    fn ring_and_answered_carry_credentials_minted_per_side() {
        let issuer = TurnIssuer::new(
            "s3cret",
            Duration::from_secs(300),
            vec!["turn:192.0.2.1:3478?transport=udp".into()],
        );
        let stun = IceServer {
            urls: vec!["stun:192.0.2.1:3478".into()],
            username: None,
            credential: None,
        };
        let mut r = setup_with(Router::new(vec![stun.clone()]).with_turn(Some(issuer)));
        let user_of = |servers: &[IceServer]| {
            assert_eq!(servers[0], stun);
            assert_eq!(servers.len(), 2);
            servers[1].username.clone().expect("TURN username")
        };
        let out = ring(&mut r);
        let ring_user = out
            .iter()
            .find_map(|o| match o {
                Out::Phone(c, HubToPhone::Ring { ice_servers, .. }) if *c == A => {
                    Some(user_of(ice_servers))
                }
                _ => None,
            })
            .expect("ring to A");
        assert!(ring_user.ends_with(":p-a"), "{ring_user}");
        let out = r.phone_message(now(), A, PhoneToHub::Answer { call_id: call() });
        let door_user = out
            .iter()
            .find_map(|o| match o {
                Out::Door(_, HubToDoor::Answered { ice_servers, .. }) => Some(user_of(ice_servers)),
                _ => None,
            })
            .expect("answered to the door");
        assert!(door_user.ends_with(":d-front"), "{door_user}");
    }

    #[test]
    fn first_answer_wins() {
        let mut r = setup();
        ring(&mut r);
        let now = now();
        let out = r.phone_message(now, A, PhoneToHub::Answer { call_id: call() });
        assert!(out.contains(&Out::Door(
            DOOR,
            HubToDoor::Answered {
                call_id: call(),
                phone_id: PhoneId::new("p-a"),
                ice_servers: vec![],
                may_unlock: true,
            }
        )));
        assert!(out.contains(&Out::Phone(
            B,
            HubToPhone::AnsweredElsewhere { call_id: call() }
        )));
        let out = r.phone_message(now, B, PhoneToHub::Answer { call_id: call() });
        assert_eq!(error_code(&out), Some(ErrorCode::AlreadyAnswered));
        // B may not inject ICE into A's call.
        let out = r.phone_message(
            now,
            B,
            PhoneToHub::Ice {
                call_id: call(),
                candidate: IceCandidate {
                    candidate: "candidate:x".into(),
                    sdp_m_line_index: 0,
                },
            },
        );
        assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
    }

    #[test]
    fn a_quick_reply_reaches_the_door_only_from_a_ringing_or_answering_phone() {
        let mut r = setup();
        ring(&mut r);
        let reply = PhoneToHub::QuickReply {
            call_id: call(),
            reply_id: 3,
        };
        let out = r.phone_message(now(), A, reply.clone());
        assert_eq!(
            out,
            vec![Out::Door(
                DOOR,
                HubToDoor::QuickReply {
                    call_id: call(),
                    reply_id: 3
                }
            )]
        );
        r.phone_message(now(), B, PhoneToHub::Answer { call_id: call() });
        let out = r.phone_message(now(), A, reply.clone());
        assert_eq!(
            error_code(&out),
            Some(ErrorCode::InvalidState),
            "A no longer rings"
        );
        let out = r.phone_message(now(), B, reply);
        assert_eq!(to(&out, DOOR).len(), 1, "the answering phone may");
    }

    #[test]
    fn all_declined_ends_ring() {
        let mut r = setup();
        ring(&mut r);
        let now = now();
        let out = r.phone_message(now, A, PhoneToHub::Decline { call_id: call() });
        assert!(to(&out, DOOR).is_empty());
        let out = r.phone_message(now, B, PhoneToHub::Decline { call_id: call() });
        assert!(out.contains(&Out::Door(
            DOOR,
            HubToDoor::RingEnded {
                call_id: call(),
                reason: RingEndReason::Declined
            }
        )));
        // The call is over.
        let out = r.phone_message(now, A, PhoneToHub::Answer { call_id: call() });
        assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
    }
}
