//! Preview sessions: the door's live video on each ringing phone, relayed by session id.
//!
//! ```text
//!  phone ── preview{call} ──► hub ── open_session{call, session, phone, ice} ──► door
//!  phone ◄─ session_offer ─── hub ◄──────────────────────── session_offer ────── door
//!  phone ── session_answer/session_ice ─► hub ─► door (and session_ice back the same way)
//!  phone ── answer_in_session ─► hub ─► answered_in_session ─► door   (first answer wins)
//!                                  └─► session_closed{answered_elsewhere} to every other phone
//! ```
//!
//! A session belongs to one phone connection and one call; it ends with the call (the
//! `ringing_cancelled` or `hang_up` the phones get says so), when either side closes it, or
//! when its phone's connection goes away. The media rules (no audio before Answer, one
//! encoder) are the door's to enforce; the hub only makes sure each session's messages reach
//! the one phone and the one door it belongs to.

use std::collections::BTreeMap;

use doorbell_protocol::{
    CallId, DoorId, ErrorCode, HubToDoor, HubToPhone, PhoneToHub, SessionEndReason, SessionId,
};

use super::{phone_error, Phase};
use crate::router::{ConnId, Now, Out, Router};

/// `s-{conn}-{call_id}`: one preview session per phone connection and call.
fn session_id_for(conn: ConnId, call_id: &CallId) -> SessionId {
    crate::router::scoped_session_id("s", conn, call_id.as_str())
}

/// Sessions per call. Each one costs the door a `webrtcbin` and upload bandwidth (the door
/// has its own, lower limit); this bounds the hub's map against a phone opening many tabs.
pub(crate) const MAX_SESSIONS_PER_CALL: usize = 8;

/// The preview sessions of one call: which phone connection each one belongs to.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: BTreeMap<SessionId, ConnId>,
}

impl Sessions {
    /// A phone answered the call: every other phone's session ends ("answered on another
    /// phone"). The answering phone's own session stays: it is the call when the phone
    /// answered in it, and the door closes it after a plain `answer`. The door closes its
    /// side of the others itself.
    pub(super) fn answered(&mut self, answerer: ConnId, out: &mut Vec<Out>) {
        let ended: Vec<(SessionId, ConnId)> = self
            .by_id
            .iter()
            .filter(|(_, conn)| **conn != answerer)
            .map(|(id, conn)| (id.clone(), *conn))
            .collect();
        for (session_id, conn) in ended {
            self.by_id.remove(&session_id);
            out.push(Out::Phone(
                conn,
                HubToPhone::SessionClosed {
                    session_id,
                    reason: SessionEndReason::AnsweredElsewhere,
                },
            ));
        }
    }

    /// The phone connection `conn` stopped watching (declined, went away): tell the door.
    pub(super) fn end_for_phone(
        &mut self,
        conn: ConnId,
        door_conn: Option<ConnId>,
        reason: SessionEndReason,
        out: &mut Vec<Out>,
    ) {
        let ended: Vec<SessionId> = self
            .by_id
            .iter()
            .filter(|(_, c)| **c == conn)
            .map(|(id, _)| id.clone())
            .collect();
        for session_id in ended {
            self.by_id.remove(&session_id);
            if let Some(door_conn) = door_conn {
                out.push(Out::Door(
                    door_conn,
                    HubToDoor::SessionClosed { session_id, reason },
                ));
            }
        }
    }
}

fn no_such_session(session_id: &SessionId) -> HubToDoor {
    HubToDoor::error(
        ErrorCode::UnknownCall,
        format!("no session {session_id}"),
        None,
    )
}

impl Router {
    /// The door's call that holds `session_id`, with the phone connection it belongs to.
    fn door_session(&self, door_id: &DoorId, session_id: &SessionId) -> Option<(CallId, ConnId)> {
        let call = self.doors.get(door_id)?.call.as_ref()?;
        let conn = call.sessions.by_id.get(session_id)?;
        Some((call.id.clone(), *conn))
    }

    /// `session_offer`, `session_ice`, `close_session` from the door: to the session's phone.
    pub(in crate::router) fn door_session_message(
        &mut self,
        conn: ConnId,
        door_id: &DoorId,
        msg: doorbell_protocol::DoorToHub,
        out: &mut Vec<Out>,
    ) {
        use doorbell_protocol::DoorToHub as D;
        let session_id = match &msg {
            D::SessionOffer { session_id, .. }
            | D::SessionIce { session_id, .. }
            | D::CloseSession { session_id, .. } => session_id.clone(),
            _ => return,
        };
        let Some((call_id, phone)) = self.door_session(door_id, &session_id) else {
            // Late candidates after a close are normal; the door logs the reply.
            out.push(Out::Door(conn, no_such_session(&session_id)));
            return;
        };
        let relayed = match msg {
            D::SessionOffer { sdp, .. } => HubToPhone::SessionOffer {
                call_id,
                session_id,
                sdp,
            },
            D::SessionIce { candidate, .. } => HubToPhone::SessionIce {
                session_id,
                candidate,
            },
            D::CloseSession { reason, .. } => {
                if let Some(call) = self.doors.get_mut(door_id).and_then(|s| s.call.as_mut()) {
                    call.sessions.by_id.remove(&session_id);
                }
                HubToPhone::SessionClosed { session_id, reason }
            }
            _ => return,
        };
        out.push(Out::Phone(phone, relayed));
    }

    /// A preview-session message from a phone: `Ok` with what to send, or the message back
    /// (`Err`) when it is not about sessions.
    pub(in crate::router) fn phone_session_message(
        &mut self,
        now: Now,
        conn: ConnId,
        msg: PhoneToHub,
    ) -> Result<Vec<Out>, PhoneToHub> {
        let mut out = Vec::new();
        match msg {
            PhoneToHub::Preview { call_id } => self.open_session(now, conn, &call_id, &mut out),
            PhoneToHub::View { door_id } => return Ok(self.phone_view(now, conn, &door_id)),
            PhoneToHub::SessionAnswer { session_id, sdp } => {
                self.phone_relay(conn, &session_id, &mut out, |session_id| {
                    HubToDoor::SessionAnswer { session_id, sdp }
                })
            }
            PhoneToHub::SessionIce {
                session_id,
                candidate,
            } => self.phone_relay(conn, &session_id, &mut out, |session_id| {
                HubToDoor::SessionIce {
                    session_id,
                    candidate,
                }
            }),
            PhoneToHub::CloseSession { session_id } => {
                if self.phone_close_view(conn, &session_id, &mut out) {
                    return Ok(out);
                }
                if let Some((door_id, _)) = self.phone_session(conn, &session_id) {
                    if let Some(slot) = self.doors.get_mut(&door_id) {
                        let door_conn = slot.conn;
                        if let Some(call) = slot.call.as_mut() {
                            call.sessions.by_id.remove(&session_id);
                            if let Some(door_conn) = door_conn {
                                out.push(Out::Door(
                                    door_conn,
                                    HubToDoor::SessionClosed {
                                        session_id,
                                        reason: SessionEndReason::Closed,
                                    },
                                ));
                            }
                        }
                    }
                }
                // Closing a session that already ended is not an error: both sides may close.
            }
            PhoneToHub::AnswerInSession {
                call_id,
                session_id,
            } => return Ok(self.answer_in_session(now, conn, call_id, session_id)),
            other => return Err(other),
        }
        Ok(out)
    }

    /// The door and call of a session that belongs to the phone connection `conn`.
    fn phone_session(&self, conn: ConnId, session_id: &SessionId) -> Option<(DoorId, CallId)> {
        let peer = self.phones.get(&conn)?;
        peer.doors.keys().find_map(|door_id| {
            let call = self.doors.get(door_id)?.call.as_ref()?;
            (call.sessions.by_id.get(session_id) == Some(&conn))
                .then(|| (door_id.clone(), call.id.clone()))
        })
    }

    fn phone_relay(
        &mut self,
        conn: ConnId,
        session_id: &SessionId,
        out: &mut Vec<Out>,
        make: impl FnOnce(SessionId) -> HubToDoor,
    ) {
        let door_conn = self
            .phone_session(conn, session_id)
            .map(|(door_id, _)| door_id)
            .or_else(|| self.phone_view_door(conn, session_id))
            .and_then(|door_id| self.doors.get(&door_id)?.conn);
        match door_conn {
            Some(door_conn) => out.push(Out::Door(door_conn, make(session_id.clone()))),
            None => out.push(Out::Phone(
                conn,
                HubToPhone::error(
                    ErrorCode::UnknownCall,
                    format!("no session {session_id}"),
                    None,
                ),
            )),
        }
    }

    /// `preview{call_id}` from a ringing phone: ask the door for a session.
    fn open_session(&mut self, now: Now, conn: ConnId, call_id: &CallId, out: &mut Vec<Out>) {
        let Some(phone_id) = self.phones.get(&conn).map(|p| p.phone_id.clone()) else {
            return;
        };
        let door_id = self.phones.get(&conn).and_then(|peer| {
            peer.doors.keys().find(|d| {
                self.doors
                    .get(*d)
                    .and_then(|s| s.call.as_ref())
                    .is_some_and(|c| &c.id == call_id)
            })
        });
        let Some(door_id) = door_id.cloned() else {
            out.push(phone_error(
                conn,
                ErrorCode::UnknownCall,
                "no such call",
                call_id,
            ));
            return;
        };
        let door_ice = self.ice.for_call(door_id.as_str(), now.wall);
        let Some(slot) = self.doors.get_mut(&door_id) else {
            return;
        };
        let (Some(door_conn), Some(call)) = (slot.conn, slot.call.as_mut()) else {
            return;
        };
        let refusal = match &call.phase {
            Phase::Ringing { ringing, .. } if !ringing.contains(&conn) => {
                Some("this call is not ringing here (declined?)")
            }
            Phase::Ringing { .. } => None,
            Phase::Answered { .. } => Some("the call was answered"),
        };
        // One session per phone connection and call: its id says so.
        let session_id = session_id_for(conn, call_id);
        let refusal = refusal
            .or_else(|| {
                call.sessions
                    .by_id
                    .contains_key(&session_id)
                    .then_some("this phone already has a preview of this call")
            })
            .or_else(|| {
                (call.sessions.by_id.len() >= MAX_SESSIONS_PER_CALL)
                    .then_some("too many previews of this call")
            });
        if let Some(why) = refusal {
            out.push(phone_error(conn, ErrorCode::InvalidState, why, call_id));
            return;
        }
        call.sessions.by_id.insert(session_id.clone(), conn);
        out.push(Out::Door(
            door_conn,
            HubToDoor::OpenSession {
                call_id: call_id.clone(),
                session_id,
                phone_id,
                ice_servers: door_ice,
            },
        ));
    }

    /// `answer_in_session`: an `answer` (same rules, same history) whose `answered` to the door
    /// names the session to upgrade.
    fn answer_in_session(
        &mut self,
        now: Now,
        conn: ConnId,
        call_id: CallId,
        session_id: SessionId,
    ) -> Vec<Out> {
        match self.phone_session(conn, &session_id) {
            // A view of the ringing door counts too: its viewer answers in it.
            _ if self.is_view_of_call(conn, &session_id, &call_id) => {}
            Some((_, session_call)) if session_call == call_id => {}
            _ => {
                return vec![phone_error(
                    conn,
                    ErrorCode::UnknownCall,
                    "no such session for this call",
                    &call_id,
                )]
            }
        }
        let mut out = self.phone_message(now, conn, PhoneToHub::Answer { call_id });
        for o in &mut out {
            if let Out::Door(_, message @ HubToDoor::Answered { .. }) = o {
                if let HubToDoor::Answered {
                    call_id,
                    phone_id,
                    may_unlock,
                    ..
                } = message.clone()
                {
                    *message = HubToDoor::AnsweredInSession {
                        call_id,
                        session_id: session_id.clone(),
                        phone_id,
                        may_unlock,
                    };
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
