//! Executes the [`Router`]'s decisions: owns the router and each connection's outgoing queue.
//!
//! One mutex guards both, and every operation is "call the router, then `try_send` its
//! outputs" without awaiting, so messages are queued in exactly the order the router decided
//! them and no peer can slow down another: a peer whose queue is full is kicked (its
//! connection task notices and closes) instead of being waited for.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use doorbell_protocol::{Access, CallId, DoorId, DoorToHub, PhoneId, PhoneToHub};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::notify::Notifier;
use crate::recorder::Recorder;
use crate::router::{ConnId, Now, Out, Roster, Router, RouterEvent};
use crate::store::AccessChange;
use crate::store::{now_ms, CallEvent};

/// Messages waiting to be written to one peer (protocol: 64). A healthy peer drains this in
/// milliseconds; one that lets 64 pile up is not reading and is disconnected.
pub(crate) const OUTBOUND_QUEUE: usize = 64;

/// What a connection task writes to its socket.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A serialized `HubToDoor` / `HubToPhone`.
    Text(String),
    /// Send a close frame with this code and reason, then end the connection.
    Close(u16, &'static str),
}

/// The switchboard's end of one connection.
pub(crate) struct PeerHandle {
    pub(crate) tx: mpsc::Sender<Outbound>,
    /// Cancelled to make the connection task hang up (slow consumer).
    pub(crate) kick: CancellationToken,
}

struct State {
    router: Router,
    peers: HashMap<ConnId, PeerHandle>,
}

pub(crate) struct Switchboard {
    state: Mutex<State>,
    recorder: Recorder,
    /// Rings and their ends, for Web Push and ntfy (never blocks).
    notifier: Notifier,
    next_conn: AtomicU64,
}

impl Switchboard {
    pub(crate) fn new(router: Router, recorder: Recorder) -> Self {
        Switchboard {
            state: Mutex::new(State {
                router,
                peers: HashMap::new(),
            }),
            recorder,
            notifier: Notifier::disabled(),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Tells `notifier` about every call event (rings and how they end).
    pub(crate) fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    pub(crate) fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// A fresh id for a new connection.
    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The router never panics on input; if it had, its state is still the best we have.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn door_connected(
        &self,
        conn: ConnId,
        peer: PeerHandle,
        door_id: DoorId,
        name: String,
    ) {
        let mut state = self.lock();
        state.peers.insert(conn, peer);
        let out = state.router.door_connected(conn, door_id, name);
        self.apply(&mut state, out);
    }

    pub(crate) fn phone_connected(
        &self,
        conn: ConnId,
        peer: PeerHandle,
        phone_id: PhoneId,
        doors: Vec<(DoorId, String)>,
        access: BTreeMap<DoorId, Access>,
    ) {
        let mut state = self.lock();
        state.peers.insert(conn, peer);
        let out = state
            .router
            .phone_connected(Now::read(), conn, phone_id, doors, access);
        self.apply(&mut state, out);
    }

    pub(crate) fn door_message(&self, conn: ConnId, msg: DoorToHub) {
        let mut state = self.lock();
        let out = state.router.door_message(Now::read(), conn, msg);
        self.apply(&mut state, out);
    }

    /// `ring` from the door on `conn`, with its phones judged at this instant.
    pub(crate) fn door_ring(&self, conn: ConnId, call_id: CallId, roster: Roster) {
        let mut state = self.lock();
        let out = state.router.door_ring(Now::read(), conn, call_id, roster);
        self.apply(&mut state, out);
    }

    pub(crate) fn phone_message(&self, conn: ConnId, msg: PhoneToHub) {
        let mut state = self.lock();
        let out = state.router.phone_message(Now::read(), conn, msg);
        self.apply(&mut state, out);
    }

    pub(crate) fn disconnected(&self, conn: ConnId) {
        let mut state = self.lock();
        state.peers.remove(&conn);
        let out = state.router.disconnected(Now::read(), conn);
        self.apply(&mut state, out);
    }

    pub(crate) fn pairing_added(
        &self,
        phone_id: &PhoneId,
        door_id: DoorId,
        door_name: String,
        access: Access,
    ) {
        let mut state = self.lock();
        let out = state
            .router
            .pairing_added(Now::read(), phone_id, door_id, door_name, access);
        self.apply(&mut state, out);
    }

    /// A phone joined `door_id` (redeemed an invite): its other phones are told.
    pub(crate) fn phone_joined(&self, phone_id: &PhoneId, door_id: &DoorId, name: &str) {
        let mut state = self.lock();
        let out = state.router.phone_joined(phone_id, door_id, name);
        self.apply(&mut state, out);
    }

    /// A change from the household journal (`crate::household`); `access` is the phone's
    /// access now, for [`AccessChange::AccessChanged`].
    pub(crate) fn access_change(&self, change: &AccessChange, access: Option<Access>) {
        let mut state = self.lock();
        let now = Now::read();
        let out = match change {
            AccessChange::PhoneRemoved {
                door_id,
                phone_id,
                name,
            } => state.router.pairing_removed(now, phone_id, door_id, name),
            AccessChange::AccessChanged { door_id, phone_id } => match access {
                Some(access) => state.router.access_changed(phone_id, door_id, access),
                None => Vec::new(),
            },
            AccessChange::DoorRevoked { door_id } => state.router.door_revoked(now, door_id),
        };
        self.apply(&mut state, out);
    }

    /// Cuts off guests whose access has ended.
    pub(crate) fn expire_guests(&self) {
        let mut state = self.lock();
        let out = state.router.expire_guests(Now::read());
        self.apply(&mut state, out);
    }

    /// The snapshot of `call_id` at `door_id` arrived; tell the door's phones where it is.
    pub(crate) fn snapshot_ready(&self, door_id: &DoorId, call_id: CallId, url: String) {
        let mut state = self.lock();
        let out = state.router.snapshot_ready(door_id, call_id, url);
        self.apply(&mut state, out);
    }

    fn apply(&self, state: &mut State, out: Vec<Out>) {
        for o in out {
            match o {
                Out::Door(conn, msg) => deliver(state, conn, serde_json::to_string(&msg)),
                Out::Phone(conn, msg) => deliver(state, conn, serde_json::to_string(&msg)),
                Out::Close(conn, why) => {
                    if let Some(peer) = state.peers.get(&conn) {
                        let (code, reason) = why.frame();
                        tracing::info!(conn, code, "closing a connection: {reason}");
                        if peer.tx.try_send(Outbound::Close(code, reason)).is_err() {
                            peer.kick.cancel();
                        }
                    }
                }
                Out::Event(e) => {
                    self.notifier.call_event(&e);
                    self.recorder.event(to_call_event(e, now_ms()))
                }
                Out::PastEvent(e, at) => self.recorder.event(to_call_event(e, at)),
            }
        }
    }
}

fn deliver(state: &State, conn: ConnId, text: Result<String, serde_json::Error>) {
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            // Only possible through a bug in the protocol types.
            tracing::error!(error = %e, "could not serialize an outgoing message");
            return;
        }
    };
    let Some(peer) = state.peers.get(&conn) else {
        return;
    };
    match peer.tx.try_send(Outbound::Text(text)) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(conn, "peer is not reading its messages; disconnecting it");
            peer.kick.cancel();
        }
        // The connection task is already ending; its `disconnected` is on the way.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

fn to_call_event(e: RouterEvent, at: i64) -> CallEvent {
    CallEvent {
        at,
        door_id: e.door_id,
        call_id: e.call_id,
        kind: e.kind,
        phone_id: e.phone_id,
        reason: e.reason.map(str::to_owned),
        duration_ms: e
            .duration
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
    }
}
