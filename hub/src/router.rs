//! Who is online and what each call is doing: the rules of `docs/PROTOCOL.md` ("Rules the hub
//! enforces"), with no I/O.
//!
//! The router is told about connections coming and going and about decoded messages, and
//! answers with a list of [`Out`]s: messages to queue for a connection, connections to close,
//! events to record. Time is an input (`now`), so the unit tests below drive it directly.
//! [`crate::switchboard`] owns the router and executes its outputs.
//!
//! Per door, the call goes through these states:
//!
//! ```text
//!             ring                     answer (first wins)
//!   (none) ---------> Ringing{phones} ---------------------> Answered{phone}
//!     ^                 |  cancel_ring / every phone         |  hang_up (either side),
//!     |                 |  declined / door offline           |  door or phone gone
//!     +-----------------+------------------------------------+
//! ```
//!
//! Connections, not phone ids, are the unit of ringing: a phone may have the app open in more
//! than one tab (or a stale tab and a fresh one), and every tab rings. The first tab to answer
//! owns the call and the others get `answered_elsewhere` like any other phone.
//! A door has one connection: a newer `hello` for the same door replaces (and closes) the older
//! one, which ends the call that the old connection was in.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use doorbell_protocol::{
    CallId, DoorId, DoorInfo, DoorToHub, ErrorCode, HangUpReason, HubToDoor, HubToPhone, IceServer,
    PhoneId, PhoneToHub, RingEndReason, PROTOCOL_VERSION,
};

use crate::store::EventKind;
use crate::turn::TurnIssuer;

/// Identifies one WebSocket connection for the lifetime of the process.
pub type ConnId = u64;

/// Call ids remembered per door to refuse reuse. A door makes a fresh random id per press;
/// 256 covers days of use while bounding memory per door.
pub const RECENT_CALL_IDS: usize = 256;

/// How far in the future (by the hub's clock) a `missed_ring` may be: doors and hubs run NTP,
/// but a Pi without a real-time clock can be a little ahead after a reboot.
pub const MISSED_RING_MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// The oldest `missed_ring` accepted. A door keeps its queue across restarts, so a press from
/// a week-long outage is still news; anything older is more likely an unset clock (1970, or a
/// fake-hwclock date from the image build) than a real press.
pub const MISSED_RING_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the router asks for a connection to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The same door connected again; the older connection is stale.
    Replaced,
}

/// A call event for the history, before the wall-clock timestamp is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterEvent {
    pub door_id: DoorId,
    pub call_id: CallId,
    pub kind: EventKind,
    pub phone_id: Option<PhoneId>,
    /// Wire spelling of the `RingEndReason` / `HangUpReason`.
    pub reason: Option<&'static str>,
    pub duration: Option<Duration>,
}

/// What the router wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Door(ConnId, HubToDoor),
    Phone(ConnId, HubToPhone),
    Close(ConnId, CloseReason),
    Event(RouterEvent),
    /// An event that happened earlier than now (a ring reported after an outage), at this
    /// Unix millisecond time.
    PastEvent(RouterEvent, i64),
}

#[derive(Debug)]
enum Phase {
    /// Connections whose phone is ringing (not yet declined).
    Ringing { ringing: BTreeSet<ConnId> },
    /// `conn` answered; the door and that connection now exchange SDP and ICE.
    Answered {
        conn: ConnId,
        phone_id: PhoneId,
        at: Instant,
    },
}

#[derive(Debug)]
struct Call {
    id: CallId,
    phase: Phase,
}

/// Remembers the last [`RECENT_CALL_IDS`] call ids of one door.
#[derive(Debug, Default)]
struct RecentCalls {
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

/// A door the router has seen since start (kept while offline so call ids stay remembered).
#[derive(Debug, Default)]
struct DoorSlot {
    name: String,
    conn: Option<ConnId>,
    call: Option<Call>,
    recent: RecentCalls,
}

/// One phone connection.
#[derive(Debug)]
struct PhonePeer {
    phone_id: PhoneId,
    /// Paired doors and their names: the only doors this connection hears about.
    doors: BTreeMap<DoorId, String>,
}

/// The routing state. See the module docs.
#[derive(Debug)]
pub struct Router {
    /// Handed to doors and phones in `welcome`.
    ice_servers: Vec<IceServer>,
    /// Mints per-call TURN credentials for `ring` (each phone) and `answered` (the door).
    /// This is the router's one read of the wall clock (credential expiry is Unix time);
    /// routing decisions never depend on it.
    turn: Option<TurnIssuer>,
    doors: HashMap<DoorId, DoorSlot>,
    door_conns: HashMap<ConnId, DoorId>,
    phones: HashMap<ConnId, PhonePeer>,
}

fn door_error(conn: ConnId, code: ErrorCode, msg: &str, call: &CallId) -> Out {
    Out::Door(conn, HubToDoor::error(code, msg, Some(call.clone())))
}

fn phone_error(conn: ConnId, code: ErrorCode, msg: &str, call: &CallId) -> Out {
    Out::Phone(conn, HubToPhone::error(code, msg, Some(call.clone())))
}

fn ring_reason_str(r: RingEndReason) -> &'static str {
    match r {
        RingEndReason::Timeout => "timeout",
        RingEndReason::Declined => "declined",
        RingEndReason::Cancelled => "cancelled",
        RingEndReason::DoorOffline => "door_offline",
    }
}

fn hang_up_reason_str(r: HangUpReason) -> &'static str {
    match r {
        HangUpReason::Normal => "normal",
        HangUpReason::Failed => "failed",
        HangUpReason::Timeout => "timeout",
        HangUpReason::PeerGone => "peer_gone",
    }
}

impl Router {
    pub fn new(ice_servers: Vec<IceServer>) -> Self {
        Router {
            ice_servers,
            turn: None,
            doors: HashMap::new(),
            door_conns: HashMap::new(),
            phones: HashMap::new(),
        }
    }

    /// Gives every `ring` and `answered` TURN credentials minted by `issuer`.
    pub fn with_turn(mut self, issuer: Option<TurnIssuer>) -> Self {
        self.turn = issuer;
        self
    }

    /// The ICE servers for one side (`id`: a phone or door id) of one call: the static ones
    /// plus TURN with fresh credentials.
    fn call_ice(&self, id: &str) -> Vec<IceServer> {
        let mut servers = self.ice_servers.clone();
        if let Some(turn) = &self.turn {
            let server = turn.ice_server(id);
            // Never hand out credentials without a URL to use them on (browsers refuse it).
            if !server.urls.is_empty() {
                servers.push(server);
            }
        }
        servers
    }

    /// Whether the door currently has a connection.
    pub fn door_online(&self, door_id: &DoorId) -> bool {
        self.doors.get(door_id).is_some_and(|d| d.conn.is_some())
    }

    /// Phone connections paired with `door_id`.
    fn phone_conns_of<'a>(&'a self, door_id: &'a DoorId) -> impl Iterator<Item = ConnId> + 'a {
        self.phones
            .iter()
            .filter(move |(_, p)| p.doors.contains_key(door_id))
            .map(|(c, _)| *c)
    }

    /// A door authenticated on `conn`.
    pub fn door_connected(&mut self, conn: ConnId, door_id: DoorId, name: String) -> Vec<Out> {
        let mut out = Vec::new();
        out.push(Out::Door(
            conn,
            HubToDoor::Welcome {
                protocol_version: PROTOCOL_VERSION,
                door_name: name.clone(),
                ice_servers: self.ice_servers.clone(),
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
                out.push(Out::Close(old, CloseReason::Replaced));
            }
            None => {
                let status: Vec<ConnId> = self.phone_conns_of(&door_id).collect();
                for phone in status {
                    out.push(Out::Phone(
                        phone,
                        HubToPhone::DoorStatus {
                            door_id: door_id.clone(),
                            online: true,
                        },
                    ));
                }
            }
        }
        out
    }

    /// A phone authenticated on `conn`; `doors` are its paired doors with their names.
    pub fn phone_connected(
        &mut self,
        conn: ConnId,
        phone_id: PhoneId,
        doors: Vec<(DoorId, String)>,
    ) -> Vec<Out> {
        let doors: BTreeMap<DoorId, String> = doors.into_iter().collect();
        let infos = doors
            .iter()
            .map(|(id, name)| DoorInfo {
                door_id: id.clone(),
                name: name.clone(),
                online: self.door_online(id),
            })
            .collect();
        let mut out = vec![Out::Phone(
            conn,
            HubToPhone::Welcome {
                protocol_version: PROTOCOL_VERSION,
                phone_id: phone_id.clone(),
                doors: infos,
                ice_servers: self.ice_servers.clone(),
            },
        )];
        for door_id in doors.keys() {
            self.ring_late_joiner(conn, &phone_id, door_id, &mut out);
        }
        self.phones.insert(conn, PhonePeer { phone_id, doors });
        out
    }

    /// A phone was paired with another door while connected: let its connections hear about
    /// that door from now on.
    pub fn pairing_added(&mut self, phone_id: &PhoneId, door_id: DoorId, name: String) -> Vec<Out> {
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
            }
            out.push(Out::Phone(
                conn,
                HubToPhone::DoorStatus {
                    door_id: door_id.clone(),
                    online,
                },
            ));
            self.ring_late_joiner(conn, phone_id, &door_id, &mut out);
        }
        out
    }

    /// If `door_id` is ringing, `conn` rings too.
    fn ring_late_joiner(
        &mut self,
        conn: ConnId,
        phone_id: &PhoneId,
        door_id: &DoorId,
        out: &mut Vec<Out>,
    ) {
        let ringing = self
            .doors
            .get(door_id)
            .and_then(|s| s.call.as_ref())
            .is_some_and(|c| matches!(c.phase, Phase::Ringing { .. }));
        if !ringing {
            return;
        }
        let ice_servers = self.call_ice(phone_id.as_str());
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        if let Some(Call {
            id,
            phase: Phase::Ringing { ringing },
        }) = &mut slot.call
        {
            ringing.insert(conn);
            out.push(Out::Phone(
                conn,
                HubToPhone::Ring {
                    call_id: id.clone(),
                    door_id: door_id.clone(),
                    door_name: slot.name.clone(),
                    ice_servers,
                },
            ));
        }
    }

    /// A connection ended (for any reason). Unknown connections are ignored, so this is safe to
    /// call for connections that never authenticated or were already replaced.
    pub fn disconnected(&mut self, now: Instant, conn: ConnId) -> Vec<Out> {
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
                let phones: Vec<ConnId> = self.phone_conns_of(&door_id).collect();
                for phone in phones {
                    out.push(Out::Phone(
                        phone,
                        HubToPhone::DoorStatus {
                            door_id: door_id.clone(),
                            online: false,
                        },
                    ));
                }
            }
        } else if let Some(peer) = self.phones.remove(&conn) {
            for door_id in peer.doors.keys() {
                let Some(slot) = self.doors.get_mut(door_id) else {
                    continue;
                };
                let Some(call) = &mut slot.call else { continue };
                match &mut call.phase {
                    // A ringing phone that goes away just stops ringing; the door's ring
                    // timeout still ends the call if nobody else answers.
                    Phase::Ringing { ringing } => {
                        ringing.remove(&conn);
                    }
                    Phase::Answered {
                        conn: answerer,
                        phone_id,
                        at,
                    } if *answerer == conn => {
                        let event = RouterEvent {
                            door_id: door_id.clone(),
                            call_id: call.id.clone(),
                            kind: EventKind::Ended,
                            phone_id: Some(phone_id.clone()),
                            reason: Some(hang_up_reason_str(HangUpReason::PeerGone)),
                            duration: Some(now.saturating_duration_since(*at)),
                        };
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
        out
    }

    /// Ends the door's call because the door's connection went away (or was replaced).
    fn end_call_door_gone(&mut self, door_id: &DoorId, out: &mut Vec<Out>) {
        let Some(slot) = self.doors.get_mut(door_id) else {
            return;
        };
        let Some(call) = slot.call.take() else { return };
        match call.phase {
            Phase::Ringing { ringing } => {
                for phone in ringing {
                    out.push(Out::Phone(
                        phone,
                        HubToPhone::RingingCancelled {
                            call_id: call.id.clone(),
                            reason: RingEndReason::DoorOffline,
                        },
                    ));
                }
                out.push(Out::Event(RouterEvent {
                    door_id: door_id.clone(),
                    call_id: call.id,
                    kind: EventKind::Missed,
                    phone_id: None,
                    reason: Some(ring_reason_str(RingEndReason::DoorOffline)),
                    duration: None,
                }));
            }
            Phase::Answered { conn, phone_id, .. } => {
                out.push(Out::Phone(
                    conn,
                    HubToPhone::HangUp {
                        call_id: call.id.clone(),
                        reason: HangUpReason::PeerGone,
                    },
                ));
                out.push(Out::Event(RouterEvent {
                    door_id: door_id.clone(),
                    call_id: call.id,
                    kind: EventKind::Ended,
                    phone_id: Some(phone_id),
                    reason: Some(hang_up_reason_str(HangUpReason::PeerGone)),
                    // The router does not know when the door vanished exactly; no duration.
                    duration: None,
                }));
            }
        }
    }

    /// A message from the door on `conn`.
    /// `wall_ms` is the hub's clock (Unix ms), for checking timestamps the door sends.
    pub fn door_message(
        &mut self,
        now: Instant,
        wall_ms: i64,
        conn: ConnId,
        msg: DoorToHub,
    ) -> Vec<Out> {
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
            DoorToHub::Ring { call_id } => self.ring(conn, &door_id, call_id, &mut out),
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
            DoorToHub::MissedRing { at_ms } => {
                self.missed_ring(conn, &door_id, at_ms, wall_ms, &mut out)
            }
        }
        out
    }

    /// A press the door could not deliver while the hub was unreachable: recorded in the
    /// history at its own time and shown on every online phone of the door.
    fn missed_ring(
        &mut self,
        conn: ConnId,
        door_id: &DoorId,
        at_ms: u64,
        wall_ms: i64,
        out: &mut Vec<Out>,
    ) {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let latest = wall_ms.saturating_add(millis(MISSED_RING_MAX_SKEW));
        let earliest = wall_ms.saturating_sub(millis(MISSED_RING_MAX_AGE));
        let at = match i64::try_from(at_ms) {
            Ok(at) if (earliest..=latest).contains(&at) => at,
            _ => {
                let problem = if i64::try_from(at_ms).is_ok_and(|at| at < earliest) {
                    "more than 30 days ago"
                } else {
                    "in the future"
                };
                out.push(Out::Door(
                    conn,
                    HubToDoor::error(
                        ErrorCode::InvalidTimestamp,
                        format!(
                            "missed_ring.at_ms {at_ms} is {problem} by the hub's clock ({wall_ms}); is the door's clock set?"
                        ),
                        None,
                    ),
                ));
                return;
            }
        };
        let Some(slot) = self.doors.get(door_id) else {
            return;
        };
        let door_name = slot.name.clone();
        for phone in self.phone_conns_of(door_id) {
            out.push(Out::Phone(
                phone,
                HubToPhone::MissedRing {
                    door_id: door_id.clone(),
                    door_name: door_name.clone(),
                    at_ms,
                },
            ));
        }
        out.push(Out::PastEvent(
            RouterEvent {
                door_id: door_id.clone(),
                // No call existed: nobody could have answered.
                call_id: CallId::new(""),
                kind: EventKind::MissedRing,
                phone_id: None,
                reason: None,
                duration: None,
            },
            at,
        ));
    }

    fn ring(&mut self, conn: ConnId, door_id: &DoorId, call_id: CallId, out: &mut Vec<Out>) {
        let ringing: BTreeSet<ConnId> = self.phone_conns_of(door_id).collect();
        let phone_count = ringing
            .iter()
            .filter_map(|c| self.phones.get(c).map(|p| &p.phone_id))
            .collect::<HashSet<_>>()
            .len();
        let ice: BTreeMap<ConnId, Vec<IceServer>> = ringing
            .iter()
            .filter_map(|c| {
                self.phones
                    .get(c)
                    .map(|p| (*c, self.call_ice(p.phone_id.as_str())))
            })
            .collect();
        let door_ice = self.call_ice(door_id.as_str());
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
        out.push(Out::Event(RouterEvent {
            door_id: door_id.clone(),
            call_id: call_id.clone(),
            kind: EventKind::Ring,
            phone_id: None,
            reason: None,
            duration: None,
        }));
        slot.call = Some(Call {
            id: call_id,
            phase: Phase::Ringing { ringing },
        });
    }

    /// `cancel_ring` (or `hang_up` while still ringing) from the door.
    fn end_ringing(
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
                Phase::Ringing { ringing } => {
                    for phone in ringing {
                        out.push(Out::Phone(
                            *phone,
                            HubToPhone::RingingCancelled {
                                call_id: call_id.clone(),
                                reason,
                            },
                        ));
                    }
                    out.push(Out::Event(RouterEvent {
                        door_id: door_id.clone(),
                        call_id: call_id.clone(),
                        kind: EventKind::Missed,
                        phone_id: None,
                        reason: Some(ring_reason_str(reason)),
                        duration: None,
                    }));
                    slot.call = None;
                }
                Phase::Answered { .. } => out.push(door_error(
                    conn,
                    ErrorCode::InvalidState,
                    "the call was answered; send hang_up to end it",
                    call_id,
                )),
            },
            _ => out.push(door_error(
                conn,
                ErrorCode::UnknownCall,
                "no such call in progress",
                call_id,
            )),
        }
    }

    /// Relays an SDP offer or ICE candidate from the door to the answering phone.
    fn door_relay(
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
            _ => out.push(door_error(
                conn,
                ErrorCode::UnknownCall,
                "no such call in progress",
                call_id,
            )),
        }
    }

    fn door_hang_up(
        &mut self,
        now: Instant,
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
                    out.push(Out::Event(RouterEvent {
                        door_id: door_id.clone(),
                        call_id: call_id.clone(),
                        kind: EventKind::Ended,
                        phone_id: Some(phone_id.clone()),
                        reason: Some(hang_up_reason_str(reason)),
                        duration: Some(now.saturating_duration_since(*at)),
                    }));
                    slot.call = None;
                }
                // Lenient: a door that hangs up while still ringing means "stop ringing".
                Phase::Ringing { .. } => {
                    self.end_ringing(conn, door_id, call_id, RingEndReason::Cancelled, out)
                }
            },
            _ => out.push(door_error(
                conn,
                ErrorCode::UnknownCall,
                "no such call in progress",
                call_id,
            )),
        }
    }

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
    pub fn phone_message(&mut self, now: Instant, conn: ConnId, msg: PhoneToHub) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(phone_id) = self.phones.get(&conn).map(|p| p.phone_id.clone()) else {
            return out;
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
            | PhoneToHub::Decline { call_id }
            | PhoneToHub::SdpAnswer { call_id, .. }
            | PhoneToHub::Ice { call_id, .. }
            | PhoneToHub::HangUp { call_id, .. } => call_id.clone(),
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
        let Some(slot) = self.doors.get_mut(&door_id) else {
            return out;
        };
        let Some(call) = slot.call.as_mut() else {
            return out;
        };
        let door_conn = slot.conn;
        // Minted only for an answer (an HMAC per ICE message would be waste).
        let door_ice = match (&msg, &self.turn) {
            (PhoneToHub::Answer { .. }, Some(turn)) => {
                let mut servers = self.ice_servers.clone();
                servers.push(turn.ice_server(door_id.as_str()));
                servers
            }
            _ => self.ice_servers.clone(),
        };
        match (msg, &mut call.phase) {
            (PhoneToHub::Answer { .. }, Phase::Ringing { ringing }) => {
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
                if let Some(door_conn) = door_conn {
                    out.push(Out::Door(
                        door_conn,
                        HubToDoor::Answered {
                            call_id: call_id.clone(),
                            phone_id: phone_id.clone(),
                            ice_servers: door_ice,
                        },
                    ));
                }
                out.push(Out::Event(RouterEvent {
                    door_id: door_id.clone(),
                    call_id: call_id.clone(),
                    kind: EventKind::Answered,
                    phone_id: Some(phone_id.clone()),
                    reason: None,
                    duration: None,
                }));
                call.phase = Phase::Answered {
                    conn,
                    phone_id,
                    at: now,
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
            (PhoneToHub::Decline { .. }, Phase::Ringing { ringing }) => {
                if !ringing.remove(&conn) {
                    out.push(phone_error(
                        conn,
                        ErrorCode::InvalidState,
                        "this call is not ringing here",
                        &call_id,
                    ));
                } else if ringing.is_empty() {
                    if let Some(door_conn) = door_conn {
                        out.push(Out::Door(
                            door_conn,
                            HubToDoor::RingEnded {
                                call_id: call_id.clone(),
                                reason: RingEndReason::Declined,
                            },
                        ));
                    }
                    out.push(Out::Event(RouterEvent {
                        door_id: door_id.clone(),
                        call_id: call_id.clone(),
                        kind: EventKind::Missed,
                        phone_id: None,
                        reason: Some(ring_reason_str(RingEndReason::Declined)),
                        duration: None,
                    }));
                    slot.call = None;
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
                out.push(Out::Event(RouterEvent {
                    door_id: door_id.clone(),
                    call_id: call_id.clone(),
                    kind: EventKind::Ended,
                    phone_id: Some(phone_id),
                    reason: Some(hang_up_reason_str(reason)),
                    duration: Some(now.saturating_duration_since(*at)),
                }));
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
    use super::*;
    use doorbell_protocol::IceCandidate;

    const DOOR: ConnId = 1;
    const A: ConnId = 10;
    const B: ConnId = 11;
    const OTHER: ConnId = 12;
    /// The hub's wall clock in these tests (2026-01-01).
    const NOW_MS: i64 = 1_767_225_600_000;

    fn door_id() -> DoorId {
        DoorId::new("d-front")
    }

    fn call() -> CallId {
        CallId::new("c1")
    }

    /// Router with the front door online and phones A and B paired with it, plus OTHER paired
    /// only with the back door.
    fn setup() -> Router {
        setup_with(Router::new(vec![]))
    }

    /// [`setup`] on a given (e.g. TURN-enabled) router.
    fn setup_with(mut r: Router) -> Router {
        r.door_connected(DOOR, door_id(), "Front".into());
        r.phone_connected(A, PhoneId::new("p-a"), vec![(door_id(), "Front".into())]);
        r.phone_connected(B, PhoneId::new("p-b"), vec![(door_id(), "Front".into())]);
        r.phone_connected(
            OTHER,
            PhoneId::new("p-o"),
            vec![(DoorId::new("d-back"), "Back".into())],
        );
        r
    }

    fn error_code(out: &[Out]) -> Option<ErrorCode> {
        out.iter().find_map(|o| match o {
            Out::Door(_, HubToDoor::Error(e)) | Out::Phone(_, HubToPhone::Error(e)) => Some(e.code),
            _ => None,
        })
    }

    fn to(out: &[Out], conn: ConnId) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Out::Door(c, m) if *c == conn => Some(format!("{m:?}")),
                Out::Phone(c, m) if *c == conn => Some(format!("{m:?}")),
                _ => None,
            })
            .collect()
    }

    fn ring(r: &mut Router) -> Vec<Out> {
        r.door_message(
            Instant::now(),
            NOW_MS,
            DOOR,
            DoorToHub::Ring { call_id: call() },
        )
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
        let out = r.phone_message(Instant::now(), A, PhoneToHub::Answer { call_id: call() });
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
        let now = Instant::now();
        let out = r.phone_message(now, A, PhoneToHub::Answer { call_id: call() });
        assert!(out.contains(&Out::Door(
            DOOR,
            HubToDoor::Answered {
                call_id: call(),
                phone_id: PhoneId::new("p-a"),
                ice_servers: vec![],
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
    fn sdp_before_answer_is_invalid_state_and_unpaired_is_unknown_call() {
        let mut r = setup();
        ring(&mut r);
        let now = Instant::now();
        let out = r.door_message(
            now,
            NOW_MS,
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
            Instant::now(),
            NOW_MS,
            DOOR,
            DoorToHub::Ring {
                call_id: CallId::new("c2"),
            },
        );
        assert_eq!(error_code(&out), Some(ErrorCode::Busy));
        r.door_message(
            Instant::now(),
            NOW_MS,
            DOOR,
            DoorToHub::CancelRing {
                call_id: call(),
                reason: RingEndReason::Timeout,
            },
        );
        let out = ring(&mut r);
        assert_eq!(error_code(&out), Some(ErrorCode::InvalidState));
    }

    #[test]
    fn all_declined_ends_ring() {
        let mut r = setup();
        ring(&mut r);
        let now = Instant::now();
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

    #[test]
    fn late_phone_rings_and_door_loss_cancels() {
        let mut r = setup();
        ring(&mut r);
        let out = r.phone_connected(
            20,
            PhoneId::new("p-late"),
            vec![(door_id(), "Front".into())],
        );
        assert_eq!(to(&out, 20).len(), 2, "welcome then ring: {out:?}");
        let out = r.disconnected(Instant::now(), DOOR);
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
        let now = Instant::now();
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

    #[test]
    fn missed_ring_is_recorded_at_its_time_and_told_to_paired_phones() {
        let mut r = setup();
        let at = NOW_MS - 90_000;
        let out = r.door_message(
            Instant::now(),
            NOW_MS,
            DOOR,
            DoorToHub::MissedRing { at_ms: at as u64 },
        );
        let told = |conn| {
            to(&out, conn)
                .iter()
                .any(|m| m.starts_with("MissedRing") && m.contains("Front"))
        };
        assert!(told(A) && told(B), "{out:?}");
        assert!(!told(OTHER), "a phone of another door heard about it");
        assert!(out.iter().any(|o| matches!(
            o,
            Out::PastEvent(RouterEvent { kind: EventKind::MissedRing, .. }, t) if *t == at
        )));
        assert_eq!(error_code(&out), None);
    }

    #[test]
    fn missed_ring_with_a_bad_clock_is_a_typed_error_and_records_nothing() {
        let day = 24 * 3600 * 1000;
        for at_ms in [
            0,
            (NOW_MS + 10 * 60 * 1000) as u64,
            (NOW_MS - 31 * day) as u64,
            u64::MAX,
            i64::MAX as u64,
        ] {
            let mut r = setup();
            let out = r.door_message(
                Instant::now(),
                NOW_MS,
                DOOR,
                DoorToHub::MissedRing { at_ms },
            );
            assert_eq!(
                error_code(&out),
                Some(ErrorCode::InvalidTimestamp),
                "{at_ms}"
            );
            assert_eq!(out.len(), 1, "{out:?}");
        }
        // A little skew ahead is fine.
        let mut r = setup();
        let out = r.door_message(
            Instant::now(),
            NOW_MS,
            DOOR,
            DoorToHub::MissedRing {
                at_ms: (NOW_MS + 60_000) as u64,
            },
        );
        assert_eq!(error_code(&out), None);
    }
}
