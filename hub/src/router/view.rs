//! Live view: a phone with `may_view` watches a door without a ring.
//!
//! ```text
//!  phone ── view{door} ──► hub (may_view? door online? one per connection) ──► open_view ──► door
//!  phone ◄─ view_offer ─── hub ◄───────────────────────────── session_offer ─────────────── door
//!  then as a preview: session_answer / session_ice both ways, close_session either side
//!  a ring meanwhile: the viewer may `answer_in_session` in its view (see `call::session`)
//! ```
//!
//! A view belongs to the door, not to a call: it outlives an answer (other viewers keep
//! their video) and the door closes it (`time_limit`, `call_ended`, `limit`). The hub
//! records who viewed when the door accepts (its `session_offer`).

use doorbell_protocol::{
    DoorId, DoorToHub, ErrorCode, HubToDoor, HubToPhone, SessionEndReason, SessionId,
};

use super::{ConnId, Now, Out, Router, RouterEvent};

/// Views per door the hub relays at once. The door's own limit (`view.max_viewers`) is the
/// real one; this only bounds the hub's map against many tabs.
pub(crate) const MAX_VIEWS_PER_DOOR: usize = 8;

fn error(conn: ConnId, code: ErrorCode, message: &str) -> Out {
    Out::Phone(conn, HubToPhone::error(code, message, None))
}

impl Router {
    /// `view{door_id}` from the phone on `conn`.
    pub(super) fn phone_view(&mut self, now: Now, conn: ConnId, door_id: &DoorId) -> Vec<Out> {
        let Some(peer) = self.phones.get(&conn) else {
            return Vec::new();
        };
        if !peer.doors.contains_key(door_id) {
            return vec![error(
                conn,
                ErrorCode::UnknownCall,
                "not a door of this phone",
            )];
        }
        // Absent access: a hub without roles, where every phone may view.
        if peer.access.get(door_id).is_some_and(|a| !a.may_view) {
            return vec![error(
                conn,
                ErrorCode::Forbidden,
                "this phone may not view this door (an owner can allow it)",
            )];
        }
        let phone_id = peer.phone_id.clone();
        let door_ice = self.ice.for_call(door_id.as_str(), now.wall);
        let Some(slot) = self.doors.get_mut(door_id) else {
            return vec![error(conn, ErrorCode::InvalidState, "the door is offline")];
        };
        let Some(door_conn) = slot.conn else {
            return vec![error(conn, ErrorCode::InvalidState, "the door is offline")];
        };
        // One view per phone connection and door: its id says so.
        let session_id = super::scoped_session_id("v", conn, door_id.as_str());
        if slot.views.contains_key(&session_id) {
            return vec![error(
                conn,
                ErrorCode::InvalidState,
                "this phone already views this door",
            )];
        }
        if slot.views.len() >= MAX_VIEWS_PER_DOOR {
            return vec![error(
                conn,
                ErrorCode::InvalidState,
                "too many views of this door",
            )];
        }
        slot.views.insert(session_id.clone(), (conn, false));
        vec![Out::Door(
            door_conn,
            HubToDoor::OpenView {
                session_id,
                phone_id,
                ice_servers: door_ice,
            },
        )]
    }

    /// The door and phone connection of view `session_id` if `conn` (a phone) holds it.
    pub(super) fn phone_view_door(&self, conn: ConnId, session_id: &SessionId) -> Option<DoorId> {
        let peer = self.phones.get(&conn)?;
        peer.doors
            .keys()
            .find(|d| {
                self.doors
                    .get(*d)
                    .and_then(|s| s.views.get(session_id))
                    .is_some_and(|(c, _)| *c == conn)
            })
            .cloned()
    }

    /// Whether `session_id` is `conn`'s view of the door whose call is `call_id`.
    pub(super) fn is_view_of_call(
        &self,
        conn: ConnId,
        session_id: &SessionId,
        call_id: &doorbell_protocol::CallId,
    ) -> bool {
        self.phone_view_door(conn, session_id)
            .and_then(|door_id| self.doors.get(&door_id)?.call.as_ref())
            .is_some_and(|call| call.id == *call_id)
    }

    /// `session_offer`, `session_ice`, `close_session` from the door about a view: to its
    /// phone (`None` when `session_id` is not a view). The first offer is the door's
    /// acceptance: the history records who viewed.
    pub(super) fn door_view_message(
        &mut self,
        now: Now,
        door_id: &DoorId,
        msg: &DoorToHub,
    ) -> Option<Vec<Out>> {
        let session_id = match msg {
            DoorToHub::SessionOffer { session_id, .. }
            | DoorToHub::SessionIce { session_id, .. }
            | DoorToHub::CloseSession { session_id, .. } => session_id,
            _ => return None,
        };
        let &(phone, offered) = self.doors.get(door_id)?.views.get(session_id)?;
        let phone_id = self.phones.get(&phone).map(|p| p.phone_id.clone());
        let phone_ice = phone_id
            .as_ref()
            .map(|p| self.ice.for_call(p.as_str(), now.wall))
            .unwrap_or_default();
        let slot = self.doors.get_mut(door_id)?;
        let mut out = Vec::new();
        let relayed = match msg.clone() {
            DoorToHub::SessionOffer { session_id, sdp } => {
                slot.views.insert(session_id.clone(), (phone, true));
                if let (false, Some(phone_id)) = (offered, phone_id) {
                    out.push(Out::Event(RouterEvent::viewed(door_id, &phone_id)));
                }
                HubToPhone::ViewOffer {
                    door_id: door_id.clone(),
                    session_id,
                    sdp,
                    ice_servers: phone_ice,
                }
            }
            DoorToHub::SessionIce {
                session_id,
                candidate,
            } => HubToPhone::SessionIce {
                session_id,
                candidate,
            },
            DoorToHub::CloseSession { session_id, reason } => {
                slot.views.remove(&session_id);
                HubToPhone::SessionClosed { session_id, reason }
            }
            _ => return None,
        };
        out.push(Out::Phone(phone, relayed));
        Some(out)
    }

    /// The phone closed its view: tell the door. `false` when it is not a view.
    pub(super) fn phone_close_view(
        &mut self,
        conn: ConnId,
        session_id: &SessionId,
        out: &mut Vec<Out>,
    ) -> bool {
        let Some(door_id) = self.phone_view_door(conn, session_id) else {
            return false;
        };
        if let Some(slot) = self.doors.get_mut(&door_id) {
            slot.views.remove(session_id);
            if let Some(door_conn) = slot.conn {
                out.push(Out::Door(
                    door_conn,
                    HubToDoor::SessionClosed {
                        session_id: session_id.clone(),
                        reason: SessionEndReason::Closed,
                    },
                ));
            }
        }
        true
    }

    /// The phone connection `conn` went away: its views end at the door.
    pub(super) fn views_phone_gone(&mut self, conn: ConnId, out: &mut Vec<Out>) {
        for slot in self.doors.values_mut() {
            let ended: Vec<SessionId> = slot
                .views
                .iter()
                .filter(|(_, (c, _))| *c == conn)
                .map(|(id, _)| id.clone())
                .collect();
            for session_id in ended {
                slot.views.remove(&session_id);
                if let Some(door_conn) = slot.conn {
                    out.push(Out::Door(
                        door_conn,
                        HubToDoor::SessionClosed {
                            session_id,
                            reason: SessionEndReason::PeerGone,
                        },
                    ));
                }
            }
        }
    }

    /// The door's connection went away (or was replaced): its views end at the phones.
    pub(super) fn views_door_gone(&mut self, door_id: &DoorId, out: &mut Vec<Out>) {
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        for (session_id, (phone, _)) in std::mem::take(&mut slot.views) {
            out.push(Out::Phone(
                phone,
                HubToPhone::SessionClosed {
                    session_id,
                    reason: SessionEndReason::PeerGone,
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests;
