//! Who is online and what each call is doing: the rules of `docs/PROTOCOL.md` ("Rules the hub
//! enforces"), with no I/O.
//!
//! The router is told about connections coming and going and about decoded messages, and
//! answers with a list of [`Out`]s: messages to queue for a connection, connections to close,
//! events to record. Time is an input ([`Now`]: the monotonic clock for call durations, the
//! wall clock for TURN credentials and `missed_ring` checks), so the unit tests drive it
//! directly. [`crate::switchboard`] owns the router and executes its outputs.
//!
//! | module | concern |
//! |---|---|
//! | [`presence`] | who is online: door and phone connections, pairings, `door_status` |
//! | [`call`] | the per-door call machine (diagram there): ring, answer, relay, hang up |
//! | [`ice`] | the one assembly of ICE servers for `welcome` and for each side of a call |
//! | [`history`] | [`RouterEvent`]s for the call history |
//! | [`household`] | phones joining, leaving, removed; permissions; guests' ends; revoked doors |
//! | [`missed`] | `missed_ring`: the clock check, the phones told, the history entry |
//! | [`snapshot`] | `snapshot`: telling the door's phones that a call's snapshot arrived |
//! | [`roster`] | what a ring is told beyond the connections: quiet phones, phones push reaches |
//!
//! Connections, not phone ids, are the unit of ringing: a phone may have the app open in more
//! than one tab (or a stale tab and a fresh one), and every tab rings. The first tab to answer
//! owns the call and the others get `answered_elsewhere` like any other phone.
//! A door has one connection: a newer `hello` for the same door replaces (and closes) the older
//! one, which ends the call that the old connection was in.

mod call;
mod history;
mod household;
mod ice;
mod missed;
mod presence;
mod roster;
mod snapshot;
#[cfg(test)]
mod test_support;
mod view;

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use doorbell_protocol::{
    DoorId, DoorToHub, ErrorCode, HubToDoor, HubToPhone, IceServer, SessionId,
};

use crate::turn::TurnIssuer;

pub(crate) use history::RouterEvent;
use ice::IceServers;
pub(crate) use missed::check_time as check_missed_ring_time;
use presence::{DoorSlot, PhonePeer};
pub(crate) use roster::Roster;

/// Identifies one WebSocket connection for the lifetime of the process.
pub(crate) type ConnId = u64;

/// `{kind}-{conn}-{scope}`: one session per phone connection and call (`s`) or door (`v`).
/// Doors choose call ids and door ids may be up to the protocol's id limit, so when the whole
/// would be longer than an id may be, the scope is replaced by the start of its SHA-256
/// (still one id per scope).
pub(crate) fn scoped_session_id(kind: &str, conn: ConnId, scope: &str) -> SessionId {
    let plain = format!("{kind}-{conn}-{scope}");
    if plain.len() <= doorbell_protocol::limits::MAX_ID_LEN {
        return SessionId::new(plain);
    }
    let digest = crate::secrets::sha256_hex(scope.as_bytes());
    SessionId::new(format!("{kind}-{conn}-h{}", &digest[..32]))
}

/// The time of one input: both clocks, read once by the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    /// For call durations.
    pub(crate) mono: Instant,
    /// For TURN credential expiry and for checking the times doors report.
    pub(crate) wall: SystemTime,
}

impl Now {
    /// Both clocks, now.
    pub(crate) fn read() -> Now {
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The wall clock in Unix milliseconds.
    pub(crate) fn wall_ms(&self) -> i64 {
        crate::store::unix_ms(self.wall)
    }
}

/// Why the router asks for a connection to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The same door connected again; the older connection is stale.
    Replaced,
    /// The phone was removed from (or its guest access to) a door it heard about.
    Removed,
    /// The door was removed or its secret replaced.
    Revoked,
}

impl CloseReason {
    /// The WebSocket close code and reason sent for it (docs/PROTOCOL.md "Close codes").
    pub(crate) fn frame(self) -> (u16, &'static str) {
        match self {
            CloseReason::Replaced => (1000, "replaced by a newer connection"),
            CloseReason::Removed => (CLOSE_REVOKED, "removed from the household"),
            CloseReason::Revoked => (CLOSE_REVOKED, "door removed or its secret replaced"),
        }
    }
}

/// Close code for a connection whose credentials stopped being valid (an application code,
/// RFC 6455 section 7.4.2): reconnecting with them is refused, so a client should not retry
/// blindly.
pub(crate) const CLOSE_REVOKED: u16 = 4001;

/// What the router wants done.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    Door(ConnId, HubToDoor),
    Phone(ConnId, HubToPhone),
    Close(ConnId, CloseReason),
    Event(RouterEvent),
    /// An event that happened earlier than now (a ring reported after an outage), at this
    /// Unix millisecond time.
    PastEvent(RouterEvent, i64),
}

/// The routing state. See the module docs.
#[derive(Debug)]
pub(crate) struct Router {
    ice: IceServers,
    /// Every door seen since start, online or not (see [`DoorSlot`]).
    doors: HashMap<DoorId, DoorSlot>,
    /// Which door each door connection belongs to.
    door_conns: HashMap<ConnId, DoorId>,
    phones: HashMap<ConnId, PhonePeer>,
}

impl Router {
    pub(crate) fn new(ice_servers: Vec<IceServer>) -> Self {
        Router {
            ice: IceServers::new(ice_servers, None),
            doors: HashMap::new(),
            door_conns: HashMap::new(),
            phones: HashMap::new(),
        }
    }

    /// Gives every `ring`, `ringing` and `answered` TURN credentials minted by `issuer`.
    pub(crate) fn with_turn(mut self, issuer: Option<TurnIssuer>) -> Self {
        self.ice = IceServers::new(self.ice.welcome(), issuer);
        self
    }

    /// `ring{call_id}` from the door on `conn`, with the door's phones judged at this instant
    /// (who is quiet, who push reaches).
    pub(crate) fn door_ring(
        &mut self,
        now: Now,
        conn: ConnId,
        call_id: doorbell_protocol::CallId,
        roster: Roster,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some(door_id) = self.door_conns.get(&conn).cloned() {
            self.ring(now, conn, &door_id, call_id, roster, &mut out);
        }
        out
    }

    /// A message from the door on `conn`.
    pub(crate) fn door_message(&mut self, now: Now, conn: ConnId, msg: DoorToHub) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(door_id) = self.door_conns.get(&conn).cloned() else {
            return out;
        };
        match msg {
            DoorToHub::Hello { .. } => out.push(Out::Door(
                conn,
                HubToDoor::error(
                    ErrorCode::AlreadyAuthenticated,
                    "already authenticated",
                    None,
                ),
            )),
            // Without a roster (unit tests, a caller that could not read the store) only the
            // open pages count and nobody is quiet.
            DoorToHub::Ring { call_id } => {
                self.ring(now, conn, &door_id, call_id, Roster::default(), &mut out)
            }
            DoorToHub::CancelRing { call_id, reason } => {
                self.end_ringing(conn, &door_id, &call_id, reason, &mut out)
            }
            DoorToHub::SdpOffer { call_id, sdp } => {
                self.door_relay(conn, &door_id, &call_id, &mut out, |call_id| {
                    HubToPhone::SdpOffer { call_id, sdp }
                })
            }
            DoorToHub::Ice { call_id, candidate } => {
                self.door_relay(conn, &door_id, &call_id, &mut out, |call_id| {
                    HubToPhone::Ice { call_id, candidate }
                })
            }
            DoorToHub::HangUp { call_id, reason } => {
                self.door_hang_up(now, conn, &door_id, &call_id, reason, &mut out)
            }
            DoorToHub::Unlocked { call_id } => {
                self.door_unlocked(conn, &door_id, &call_id, &mut out)
            }
            DoorToHub::MissedRing { at_ms } => {
                self.missed_ring(conn, &door_id, at_ms, now.wall_ms(), &mut out)
            }
            msg @ (DoorToHub::SessionOffer { .. }
            | DoorToHub::SessionIce { .. }
            | DoorToHub::CloseSession { .. }) => {
                match self.door_view_message(now, &door_id, &msg) {
                    Some(relayed) => out.extend(relayed),
                    None => self.door_session_message(conn, &door_id, msg, &mut out),
                }
            }
            // Pairing replies go to the waiting `POST /api/pair` (crate::pairing), not here.
            DoorToHub::PairAccepted { .. } | DoorToHub::PairRefused { .. } => {}
        }
        out
    }
}
