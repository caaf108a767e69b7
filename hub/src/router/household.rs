//! Changes to a door's household while phones are connected: a phone joined, left or was
//! removed, an owner changed a phone's permissions, a guest's access ended, a door was removed
//! or its secret replaced. A phone that loses a door is cut off at once: its part in the
//! door's call ends, it stops hearing about the door, and its connection is closed (close
//! code 4001), so it can never be rung by that door again; a phone with other doors
//! reconnects and gets a `welcome` without it.

use doorbell_protocol::{Access, DoorId, HubToPhone, PhoneId};

use super::{CloseReason, ConnId, Now, Out, Router};

impl Router {
    /// Connections of `phone_id` that hear about `door_id`.
    fn conns_of_phone_at(&self, phone_id: &PhoneId, door_id: &DoorId) -> Vec<ConnId> {
        self.phones
            .iter()
            .filter(|(_, p)| &p.phone_id == phone_id && p.doors.contains_key(door_id))
            .map(|(c, _)| *c)
            .collect()
    }

    /// Takes `door_id` away from connection `conn` and closes it.
    fn cut_off(&mut self, now: Now, conn: ConnId, door_id: &DoorId, out: &mut Vec<Out>) {
        self.phone_gone(now, conn, door_id, out);
        if let Some(peer) = self.phones.get_mut(&conn) {
            peer.doors.remove(door_id);
            peer.access.remove(door_id);
        }
        out.push(Out::Close(conn, CloseReason::Removed));
    }

    /// `phone_id` no longer belongs to `door_id` (it left, an owner or the CLI removed it, or
    /// the door was removed). Its connections are cut off; the door's other phones are told.
    pub(crate) fn pairing_removed(
        &mut self,
        now: Now,
        phone_id: &PhoneId,
        door_id: &DoorId,
        name: &str,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        for conn in self.conns_of_phone_at(phone_id, door_id) {
            self.cut_off(now, conn, door_id, &mut out);
        }
        self.forget_rung_phone(door_id, phone_id);
        for conn in self.phone_conns_of(door_id).collect::<Vec<_>>() {
            out.push(Out::Phone(
                conn,
                HubToPhone::PhoneRemoved {
                    door_id: door_id.clone(),
                    phone_id: phone_id.clone(),
                    name: name.to_owned(),
                },
            ));
        }
        out
    }

    /// A new phone joined `door_id`: its other phones hear its name.
    pub(crate) fn phone_joined(
        &self,
        phone_id: &PhoneId,
        door_id: &DoorId,
        name: &str,
    ) -> Vec<Out> {
        self.phone_conns_of(door_id)
            .filter(|conn| {
                self.phones
                    .get(conn)
                    .is_some_and(|p| &p.phone_id != phone_id)
            })
            .map(|conn| {
                Out::Phone(
                    conn,
                    HubToPhone::PhoneJoined {
                        door_id: door_id.clone(),
                        phone_id: phone_id.clone(),
                        name: name.to_owned(),
                    },
                )
            })
            .collect()
    }

    /// An owner changed `phone_id`'s role or permissions at `door_id`: its connections use
    /// the new ones from the next `answered` on and are told.
    pub(crate) fn access_changed(
        &mut self,
        phone_id: &PhoneId,
        door_id: &DoorId,
        access: Access,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        for conn in self.conns_of_phone_at(phone_id, door_id) {
            if let Some(peer) = self.phones.get_mut(&conn) {
                peer.access.insert(door_id.clone(), access);
            }
            out.push(Out::Phone(
                conn,
                HubToPhone::AccessChanged {
                    door_id: door_id.clone(),
                    access,
                },
            ));
        }
        out
    }

    /// The door was removed or its secret replaced: its connection is closed now (its call
    /// ends, its phones see it offline) rather than at its next reconnect.
    pub(crate) fn door_revoked(&mut self, now: Now, door_id: &DoorId) -> Vec<Out> {
        let Some(conn) = self.doors.get(door_id).and_then(|d| d.conn) else {
            return Vec::new();
        };
        let mut out = self.disconnected(now, conn);
        out.push(Out::Close(conn, CloseReason::Revoked));
        out
    }

    /// Guests whose end has passed: cut off from that door like a removed phone.
    pub(crate) fn expire_guests(&mut self, now: Now) -> Vec<Out> {
        let now_ms = now.wall_ms();
        let ended: Vec<(ConnId, DoorId)> = self
            .phones
            .iter()
            .flat_map(|(conn, p)| {
                p.access
                    .iter()
                    .filter(|(_, a)| !crate::store::active(a, now_ms))
                    .map(|(door, _)| (*conn, door.clone()))
            })
            .collect();
        let mut out = Vec::new();
        for (conn, door_id) in ended {
            tracing::info!(conn, door = %door_id, "a guest's access ended");
            self.cut_off(now, conn, &door_id, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::{HubToDoor, PhoneToHub, Role};

    use super::*;
    use crate::router::test_support::{call, door_id, now, ring, setup, A, B, DOOR};

    #[test]
    fn a_removed_phone_is_cut_off_and_the_others_are_told() {
        let mut r = setup();
        ring(&mut r);
        r.phone_message(now(), A, PhoneToHub::Answer { call_id: call() });
        let out = r.pairing_removed(now(), &PhoneId::new("p-a"), &door_id(), "Anna");
        // Its call ends at the door, its connection closes, B hears who left.
        assert!(out
            .iter()
            .any(|o| matches!(o, Out::Door(DOOR, HubToDoor::HangUp { .. }))));
        assert!(out.contains(&Out::Close(A, CloseReason::Removed)));
        assert!(out.contains(&Out::Phone(
            B,
            HubToPhone::PhoneRemoved {
                door_id: door_id(),
                phone_id: PhoneId::new("p-a"),
                name: "Anna".into()
            }
        )));
        // The next ring reaches B only.
        r.door_message(
            now(),
            DOOR,
            doorbell_protocol::DoorToHub::HangUp {
                call_id: call(),
                reason: doorbell_protocol::HangUpReason::Normal,
            },
        );
        let out = r.door_message(
            now(),
            DOOR,
            doorbell_protocol::DoorToHub::Ring {
                call_id: doorbell_protocol::CallId::new("c2"),
            },
        );
        assert!(
            !out.iter().any(|o| matches!(o, Out::Phone(A, _))),
            "{out:?}"
        );
        assert!(out
            .iter()
            .any(|o| matches!(o, Out::Phone(B, HubToPhone::Ring { .. }))));
    }

    #[test]
    fn a_phone_without_unlock_permission_is_announced_to_the_door_as_such() {
        let mut r = setup();
        let no_unlock = Access {
            role: Role::Member,
            may_unlock: false,
            may_view: true,
            until_ms: None,
        };
        let out = r.access_changed(&PhoneId::new("p-a"), &door_id(), no_unlock);
        assert_eq!(
            out,
            vec![Out::Phone(
                A,
                HubToPhone::AccessChanged {
                    door_id: door_id(),
                    access: no_unlock
                }
            )]
        );
        ring(&mut r);
        let out = r.phone_message(now(), A, PhoneToHub::Answer { call_id: call() });
        assert!(out.iter().any(|o| matches!(
            o,
            Out::Door(
                DOOR,
                HubToDoor::Answered {
                    may_unlock: false,
                    ..
                }
            )
        )));
    }

    #[test]
    fn an_ended_guest_is_cut_off_and_a_revoked_door_closed() {
        let mut r = setup();
        let guest = Access {
            role: Role::Guest,
            may_unlock: true,
            may_view: false,
            until_ms: Some(1),
        };
        r.access_changed(&PhoneId::new("p-b"), &door_id(), guest);
        let out = r.expire_guests(now());
        assert_eq!(out, vec![Out::Close(B, CloseReason::Removed)]);
        assert!(r.expire_guests(now()).is_empty(), "only once");
        let out = r.door_revoked(now(), &door_id());
        assert!(out.contains(&Out::Close(DOOR, CloseReason::Revoked)));
        assert!(!r.door_online(&door_id()));
    }
}
