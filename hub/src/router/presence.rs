//! Who is online: door and phone connections coming and going, pairings added while a phone is
//! connected, and the `welcome` / `door_status` messages that tell phones about it. What a
//! connection's arrival or loss does to a call is asked of [`super::call`].

use std::collections::BTreeMap;

use doorbell_protocol::{
    Access, DoorId, DoorInfo, HubToDoor, HubToPhone, PhoneId, PROTOCOL_VERSION,
};

use super::call::{Call, RecentCalls};
use super::{CloseReason, ConnId, Now, Out, Router};

/// A door the router has seen since start (kept while offline so call ids stay remembered).
#[derive(Debug, Default)]
pub(super) struct DoorSlot {
    pub(super) name: String,
    /// The door's current connection; `None` while offline.
    pub(super) conn: Option<ConnId>,
    pub(super) call: Option<Call>,
    pub(super) recent: RecentCalls,
    /// Live views of this door (see [`super::view`]): each one's phone connection, and
    /// whether the door accepted it (sent its offer).
    pub(super) views: BTreeMap<doorbell_protocol::SessionId, (ConnId, bool)>,
}

/// One phone connection.
#[derive(Debug)]
pub(super) struct PhonePeer {
    pub(super) phone_id: PhoneId,
    /// Paired doors and their names: the only doors this connection hears about.
    pub(super) doors: BTreeMap<DoorId, String>,
    /// The phone's role and permissions at each of `doors` (absent: a member who may do
    /// everything, as before roles existed).
    pub(super) access: BTreeMap<DoorId, Access>,
}

impl Router {
    /// Whether the door currently has a connection.
    pub(crate) fn door_online(&self, door_id: &DoorId) -> bool {
        self.doors.get(door_id).is_some_and(|d| d.conn.is_some())
    }

    /// Phone connections paired with `door_id`.
    pub(super) fn phone_conns_of<'a>(
        &'a self,
        door_id: &'a DoorId,
    ) -> impl Iterator<Item = ConnId> + 'a {
        self.phones
            .iter()
            .filter(move |(_, p)| p.doors.contains_key(door_id))
            .map(|(c, _)| *c)
    }

    /// Tells every phone connection of `door_id` whether the door is online.
    fn door_status(&self, door_id: &DoorId, online: bool, out: &mut Vec<Out>) {
        for phone in self.phone_conns_of(door_id) {
            out.push(Out::Phone(
                phone,
                HubToPhone::DoorStatus {
                    door_id: door_id.clone(),
                    online,
                },
            ));
        }
    }

    /// A door authenticated on `conn`.
    pub(crate) fn door_connected(
        &mut self,
        conn: ConnId,
        door_id: DoorId,
        name: String,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        out.push(Out::Door(
            conn,
            HubToDoor::Welcome {
                protocol_version: PROTOCOL_VERSION,
                door_name: name.clone(),
                ice_servers: self.ice.welcome(),
            },
        ));
        let slot = self.doors.entry(door_id.clone()).or_default();
        slot.name = name;
        let previous = slot.conn.replace(conn);
        self.door_conns.insert(conn, door_id.clone());
        match previous {
            Some(old) => {
                // The old connection is stale (the door restarted or its network changed):
                // whatever call it was in cannot continue on the new connection.
                self.door_conns.remove(&old);
                self.end_call_door_gone(&door_id, &mut out);
                self.views_door_gone(&door_id, &mut out);
                out.push(Out::Close(old, CloseReason::Replaced));
            }
            None => self.door_status(&door_id, true, &mut out),
        }
        out
    }

    /// A phone authenticated on `conn`; `doors` are its paired doors with their names,
    /// `access` its role and permissions at each.
    pub(crate) fn phone_connected(
        &mut self,
        now: Now,
        conn: ConnId,
        phone_id: PhoneId,
        doors: Vec<(DoorId, String)>,
        access: BTreeMap<DoorId, Access>,
    ) -> Vec<Out> {
        let doors: BTreeMap<DoorId, String> = doors.into_iter().collect();
        let infos = doors
            .iter()
            .map(|(id, name)| DoorInfo {
                door_id: id.clone(),
                name: name.clone(),
                online: self.door_online(id),
                access: access.get(id).copied(),
            })
            .collect();
        let mut out = vec![Out::Phone(
            conn,
            HubToPhone::Welcome {
                protocol_version: PROTOCOL_VERSION,
                phone_id: phone_id.clone(),
                doors: infos,
                ice_servers: self.ice.welcome(),
            },
        )];
        for door_id in doors.keys() {
            self.ring_late_joiner(now, conn, &phone_id, door_id, &mut out);
        }
        self.phones.insert(
            conn,
            PhonePeer {
                phone_id,
                doors,
                access,
            },
        );
        out
    }

    /// A phone was paired with another door while connected: let its connections hear about
    /// that door from now on.
    pub(crate) fn pairing_added(
        &mut self,
        now: Now,
        phone_id: &PhoneId,
        door_id: DoorId,
        name: String,
        access: Access,
    ) -> Vec<Out> {
        let online = self.door_online(&door_id);
        let conns: Vec<ConnId> = self
            .phones
            .iter()
            .filter(|(_, p)| &p.phone_id == phone_id && !p.doors.contains_key(&door_id))
            .map(|(c, _)| *c)
            .collect();
        let mut out = Vec::new();
        for conn in conns {
            if let Some(peer) = self.phones.get_mut(&conn) {
                peer.doors.insert(door_id.clone(), name.clone());
                peer.access.insert(door_id.clone(), access);
            }
            out.push(Out::Phone(
                conn,
                HubToPhone::DoorStatus {
                    door_id: door_id.clone(),
                    online,
                },
            ));
            self.ring_late_joiner(now, conn, phone_id, &door_id, &mut out);
        }
        out
    }

    /// A connection ended (for any reason). Unknown connections are ignored, so this is safe to
    /// call for connections that never authenticated or were already replaced.
    pub(crate) fn disconnected(&mut self, now: Now, conn: ConnId) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some(door_id) = self.door_conns.remove(&conn) {
            let still_current = self
                .doors
                .get(&door_id)
                .is_some_and(|d| d.conn == Some(conn));
            if still_current {
                if let Some(slot) = self.doors.get_mut(&door_id) {
                    slot.conn = None;
                }
                self.end_call_door_gone(&door_id, &mut out);
                self.views_door_gone(&door_id, &mut out);
                self.door_status(&door_id, false, &mut out);
            }
        } else if let Some(peer) = self.phones.remove(&conn) {
            self.views_phone_gone(conn, &mut out);
            for door_id in peer.doors.keys() {
                self.phone_gone(now, conn, door_id, &mut out);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::{HangUpReason, PhoneToHub, RingEndReason};

    use super::*;
    use crate::router::test_support::{call, door_id, now, ring, setup, to, A, B, DOOR};

    #[test]
    fn late_phone_rings_and_door_loss_cancels() {
        let mut r = setup();
        ring(&mut r);
        let out = r.phone_connected(
            now(),
            20,
            PhoneId::new("p-late"),
            vec![(door_id(), "Front".into())],
            Default::default(),
        );
        assert_eq!(to(&out, 20).len(), 2, "welcome then ring: {out:?}");
        let out = r.disconnected(now(), DOOR);
        for phone in [A, B, 20] {
            assert!(out.contains(&Out::Phone(
                phone,
                HubToPhone::RingingCancelled {
                    call_id: call(),
                    reason: RingEndReason::DoorOffline
                }
            )));
            assert!(out.contains(&Out::Phone(
                phone,
                HubToPhone::DoorStatus {
                    door_id: door_id(),
                    online: false
                }
            )));
        }
    }

    #[test]
    fn answering_phone_gone_hangs_up_door_and_replaced_door_closes_old() {
        let mut r = setup();
        ring(&mut r);
        let now = now();
        r.phone_message(now, A, PhoneToHub::Answer { call_id: call() });
        let out = r.disconnected(now, A);
        assert!(out.contains(&Out::Door(
            DOOR,
            HubToDoor::HangUp {
                call_id: call(),
                reason: HangUpReason::PeerGone
            }
        )));
        let out = r.door_connected(2, door_id(), "Front".into());
        assert!(out.contains(&Out::Close(DOOR, CloseReason::Replaced)));
        // The old connection's late disconnect does not take the door offline.
        let out = r.disconnected(now, DOOR);
        assert!(out.is_empty());
        assert!(r.door_online(&door_id()));
    }
}
