//! Pairing that the door decides: `POST /api/pair` with a code the door made is relayed to
//! that door as `pair_request`; the door checks the phone's proof (a MAC under the code's
//! secret, which the hub never sees), pins the phone's certificate and answers
//! `pair_accepted` or `pair_refused`, which comes back here to the waiting request. Only an
//! accepted request admits the phone (docs/PROTOCOL.md "Pairing").

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use doorbell_protocol::pairing::{
    GrantRequest, InviteRequest, PairRefusal, PairRequest, RepinRequest,
};
use doorbell_protocol::{Access, DoorId, DoorToHub, HubToDoor, PhoneId};
use tokio::sync::{mpsc, oneshot};

use crate::router::ConnId;
use crate::switchboard::Outbound;

/// How long a phone's pairing request waits for the door's answer. The door answers from
/// memory in milliseconds; a door that takes longer is treated as offline.
pub(crate) const DOOR_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Pairing requests waiting for doors at once, over all doors: pairing is rare, and each
/// waiting request holds an HTTP connection.
pub(crate) const MAX_PENDING: usize = 64;

/// What the door said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DoorAnswer {
    Accepted(Access),
    Refused(PairRefusal),
}

/// Why no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RelayError {
    #[error("the door is offline; pairing needs the door online")]
    DoorOffline,
    #[error("the door did not answer the pairing request in time")]
    Timeout,
    #[error("too many pairing requests at once; try again in a moment")]
    Busy,
}

/// One pairing request, as relayed.
pub(crate) struct Request {
    pub(crate) door_id: DoorId,
    pub(crate) code_id: String,
    pub(crate) phone_id: PhoneId,
    pub(crate) fingerprint: String,
    pub(crate) proof: String,
}

/// An owner's invite, as relayed.
pub(crate) struct Invite {
    pub(crate) door_id: DoorId,
    pub(crate) phone_id: PhoneId,
    pub(crate) code_id: String,
    pub(crate) access: Access,
    pub(crate) auth: String,
}

type Pending = HashMap<u64, (DoorId, oneshot::Sender<DoorAnswer>)>;

/// The doors' outgoing queues (for `pair_request`) and the requests waiting for an answer.
#[derive(Default)]
pub(crate) struct DoorPairing {
    doors: Mutex<HashMap<DoorId, (ConnId, mpsc::Sender<Outbound>)>>,
    pending: Mutex<Pending>,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DoorPairing {
    /// A door authenticated on `conn` (a newer connection of the same door replaces it).
    pub(crate) fn door_connected(&self, conn: ConnId, door_id: DoorId, tx: mpsc::Sender<Outbound>) {
        lock(&self.doors).insert(door_id, (conn, tx));
    }

    /// Connection `conn` ended: forget it if it still is its door's connection.
    pub(crate) fn disconnected(&self, conn: ConnId) {
        lock(&self.doors).retain(|_, (c, _)| *c != conn);
    }

    /// Sends `message` to `door_id` if it is connected; no answer is awaited.
    pub(crate) fn tell(&self, door_id: &DoorId, message: &HubToDoor) {
        let tx = lock(&self.doors).get(door_id).map(|(_, tx)| tx.clone());
        match (tx, serde_json::to_string(message)) {
            (Some(tx), Ok(text)) => {
                if tx.try_send(Outbound::Text(text)).is_err() {
                    tracing::warn!(door = %door_id, "the door's queue is full; it keeps the pin");
                }
            }
            _ => tracing::info!(door = %door_id, "door offline: it keeps the removed phone's pin"),
        }
    }

    /// Relays `request` to its door and waits for the answer.
    pub(crate) async fn ask(&self, request: Request) -> Result<DoorAnswer, RelayError> {
        let door_id = request.door_id.clone();
        self.relay(&door_id, move |request_id| {
            HubToDoor::PairRequest(PairRequest {
                request_id,
                code_id: request.code_id,
                phone_id: request.phone_id,
                fingerprint: request.fingerprint,
                proof: request.proof,
            })
        })
        .await
    }

    /// Relays an owner's `invite` to its door and waits for the answer.
    pub(crate) async fn invite(&self, invite: Invite) -> Result<DoorAnswer, RelayError> {
        let door_id = invite.door_id.clone();
        self.relay(&door_id, move |request_id| {
            HubToDoor::InviteRequest(InviteRequest {
                request_id,
                phone_id: invite.phone_id,
                code_id: invite.code_id,
                access: invite.access,
                auth: invite.auth,
            })
        })
        .await
    }

    /// Relays an owner's grant of `access` to `target` to its door and waits for the answer.
    pub(crate) async fn grant(
        &self,
        door_id: &DoorId,
        owner: PhoneId,
        target: PhoneId,
        access: Access,
        auth: String,
    ) -> Result<DoorAnswer, RelayError> {
        self.relay(door_id, move |request_id| {
            HubToDoor::GrantRequest(GrantRequest {
                request_id,
                phone_id: owner,
                target,
                access,
                auth,
            })
        })
        .await
    }

    /// Relays a phone's re-pin (it renewed its certificate) to its door and waits for the
    /// answer. The hub cannot make the phone's proof: it only routes.
    pub(crate) async fn repin(
        &self,
        door_id: &DoorId,
        phone_id: PhoneId,
        old_fingerprint: String,
        new_fingerprint: String,
        proof: String,
    ) -> Result<DoorAnswer, RelayError> {
        self.relay(door_id, move |request_id| {
            HubToDoor::RepinRequest(RepinRequest {
                request_id,
                phone_id,
                old_fingerprint,
                new_fingerprint,
                proof,
            })
        })
        .await
    }

    /// Sends the message `build` makes with a fresh request id to `door_id`; waits for the
    /// door's `pair_accepted`/`pair_refused` with that id.
    async fn relay(
        &self,
        door_id: &DoorId,
        build: impl FnOnce(u64) -> HubToDoor,
    ) -> Result<DoorAnswer, RelayError> {
        let tx = lock(&self.doors)
            .get(door_id)
            .map(|(_, tx)| tx.clone())
            .ok_or(RelayError::DoorOffline)?;
        let request_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (answer_tx, answer_rx) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                return Err(RelayError::Busy);
            }
            pending.insert(request_id, (door_id.clone(), answer_tx));
        }
        let _forget = Forget {
            pending: &self.pending,
            request_id,
        };
        let message = build(request_id);
        let text = serde_json::to_string(&message).map_err(|_| RelayError::DoorOffline)?;
        tx.try_send(Outbound::Text(text))
            .map_err(|_| RelayError::DoorOffline)?;
        match tokio::time::timeout(DOOR_ANSWER_TIMEOUT, answer_rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RelayError::DoorOffline),
            Err(_) => Err(RelayError::Timeout),
        }
    }

    /// `pair_accepted` / `pair_refused` from `door_id`: completes the waiting request, if it
    /// was sent to that door (a door cannot answer for another).
    pub(crate) fn answer(&self, door_id: &DoorId, message: DoorToHub) {
        let (request_id, answer) = match message {
            DoorToHub::PairAccepted { request_id, access } => {
                (request_id, DoorAnswer::Accepted(access))
            }
            DoorToHub::PairRefused { request_id, reason } => {
                (request_id, DoorAnswer::Refused(reason))
            }
            _ => return,
        };
        let mut pending = lock(&self.pending);
        match pending.get(&request_id) {
            Some((door, _)) if door == door_id => {
                if let Some((_, tx)) = pending.remove(&request_id) {
                    let _ = tx.send(answer);
                }
            }
            _ => {
                tracing::warn!(door = %door_id, request_id, "pairing answer for no request of this door; ignored")
            }
        }
    }
}

/// Removes a request from the waiting list however `ask` ends (answer, timeout, dropped).
struct Forget<'a> {
    pending: &'a Mutex<Pending>,
    request_id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.request_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorbell_protocol::Role;

    fn request(door: &str) -> Request {
        Request {
            door_id: DoorId::new(door),
            code_id: "c".into(),
            phone_id: PhoneId::new("p-1"),
            fingerprint: "AA".into(),
            proof: "x".into(),
        }
    }

    #[tokio::test]
    async fn an_offline_door_is_a_typed_error() {
        let pairing = DoorPairing::default();
        assert_eq!(
            pairing.ask(request("d-1")).await,
            Err(RelayError::DoorOffline)
        );
    }

    #[tokio::test]
    async fn only_the_asked_door_can_answer() {
        let pairing = std::sync::Arc::new(DoorPairing::default());
        let (tx, mut rx) = mpsc::channel(4);
        pairing.door_connected(1, DoorId::new("d-1"), tx);
        let asking = tokio::spawn({
            let pairing = pairing.clone();
            async move { pairing.ask(request("d-1")).await }
        });
        let Some(Outbound::Text(text)) = rx.recv().await else {
            panic!("no pair_request sent to the door");
        };
        let HubToDoor::PairRequest(PairRequest { request_id, .. }) =
            serde_json::from_str(&text).unwrap()
        else {
            panic!("not a pair_request: {text}");
        };
        let access = Access {
            role: Role::Owner,
            may_unlock: true,
            may_view: true,
            until_ms: None,
        };
        // Another door cannot answer for d-1.
        pairing.answer(
            &DoorId::new("d-2"),
            DoorToHub::PairAccepted { request_id, access },
        );
        pairing.answer(
            &DoorId::new("d-1"),
            DoorToHub::PairRefused {
                request_id,
                reason: PairRefusal::BadProof,
            },
        );
        assert_eq!(
            asking.await.unwrap(),
            Ok(DoorAnswer::Refused(PairRefusal::BadProof))
        );
        assert!(lock(&pairing.pending).is_empty());
    }
}
