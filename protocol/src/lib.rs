//! Wire types between the door (`doorbelld`), the hub (`doorbell-hub`) and the phone app.
//!
//! Every message is one JSON object in one WebSocket text frame, tagged by `"type"`.
//! There is one enum per direction, named by who sends it to whom, so a program can only
//! build the messages it is allowed to send:
//!
//! ```text
//!   door  --DoorToHub-->  hub  --HubToPhone-->  phone
//!   door  <--HubToDoor--  hub  <--PhoneToHub--  phone
//! ```
//!
//! The first message on every connection is a `hello` carrying [`PROTOCOL_VERSION`]; the hub
//! answers `welcome` or an `error` and closes. `docs/PROTOCOL.md` is the human reference and the
//! golden fixtures under `tests/fixtures/protocol/` pin the exact bytes of every message.
//!
//! This crate depends on serde only, so the hub, the daemon and any third-party Rust client can
//! share it.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod control;
mod errors;
pub use errors::ErrorCode;
pub mod limits;
pub mod pairing;

/// Version of this protocol. Bumped on any incompatible change; a peer that sends another
/// version gets `error { code: "unsupported_version" }` and is disconnected.
pub const PROTOCOL_VERSION: u32 = 1;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// On the wire: 1 to [`limits::MAX_ID_LEN`] characters of [`limits::is_id_char`];
        /// anything else does not decode (`invalid_id`).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(#[serde(deserialize_with = "limits::deserialize_id")] pub String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Identifies one door (one `doorbelld`). Chosen by the hub when the door is registered.
    DoorId
);
id_type!(
    /// Identifies one paired phone (one browser profile). Chosen by the hub at pairing.
    PhoneId
);
id_type!(
    /// Identifies one media session between the door and one phone: a live preview while
    /// ringing, which becomes the call when that phone answers in it. Chosen by the hub when
    /// the phone asks for one (`preview`), unique per hub run; the door keys its sessions by it.
    SessionId
);
id_type!(
    /// Identifies one call attempt, from button press to hang-up. Chosen by the door; the hub
    /// refuses an id it has already seen for that door.
    CallId
);

/// A STUN or TURN server, in the shape of WebRTC's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp` URLs.
    pub urls: Vec<String>,
    /// TURN username; absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password; absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// One trickled ICE candidate, as in WebRTC's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute line, without the `a=` prefix.
    pub candidate: String,
    /// Index of the media section the candidate belongs to.
    pub sdp_m_line_index: u32,
}

/// A door as a phone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorInfo {
    pub door_id: DoorId,
    /// Human name shown on the incoming-call screen ("Front door").
    pub name: String,
    /// Whether the door currently holds a connection to the hub.
    pub online: bool,
    /// This phone's role and permissions at this door (see [`Access`]). Absent from older
    /// hubs, which knew no roles: treat that as a member who may unlock and view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// A phone's role in a door's household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Invites, renames and removes phones and sets their permissions. The first phone
    /// paired with a door is its owner.
    Owner,
    /// Lives there: rings, answers, and (unless an owner turned it off) unlocks.
    Member,
    /// Like a member, until `until_ms`; after that the hub refuses it and never rings it.
    Guest,
}

/// What one phone may do at one door. The hub enforces all of it; the door also enforces
/// `may_unlock` (it learns it with `answered`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub role: Role,
    /// May open the door during a call.
    pub may_unlock: bool,
    /// May watch the camera without a ring (live view).
    pub may_view: bool,
    /// For a guest: the end of its access, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

/// Why ringing stopped before anyone answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingEndReason {
    /// Nobody answered before the door's ring timeout.
    Timeout,
    /// Every phone that was ringing declined.
    Declined,
    /// The door cancelled (visitor left, door shutting down).
    Cancelled,
    /// The door lost its connection to the hub while ringing.
    DoorOffline,
    /// Every phone of the door is in quiet hours or do-not-disturb: nobody was rung. Sent to
    /// the door right after `ringing`, so it can offer the visitor a voice message.
    Quiet,
}

/// Why a call that was answered ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangUpReason {
    /// A person pressed hang up (on the phone or at the door).
    Normal,
    /// The media connection could not be set up or was lost.
    Failed,
    /// The call reached its maximum length.
    Timeout,
    /// The other side's connection to the hub was lost.
    PeerGone,
}

/// Why a preview session ended (`close_session`, `session_closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    /// Another phone answered the call: this phone shows "Answered on another phone".
    AnsweredElsewhere,
    /// The call ended (ring timeout, every phone declined, the door cancelled, hang-up).
    CallEnded,
    /// The phone closed it (Decline, page closed).
    Closed,
    /// The door already streams to its most viewers at once.
    Limit,
    /// The media could not be set up or was lost.
    Failed,
    /// The door's or the phone's connection to the hub went away.
    PeerGone,
    /// A live view reached the door's longest view (`view.max_secs`).
    TimeLimit,
}

/// An error reply. Sent by the hub to doors and phones alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// Human-readable detail; not for matching.
    pub message: String,
    /// The call the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<CallId>,
}

/// Messages the door sends to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DoorToHub {
    /// First message: authenticate as a door.
    Hello {
        protocol_version: u32,
        door_id: DoorId,
        /// The per-device secret the hub issued when the door was registered.
        secret: String,
        /// Firmware version, for the hub's device list: at most
        /// [`limits::MAX_SOFTWARE_CHARS`] characters, no control characters (`invalid_text`).
        #[serde(deserialize_with = "limits::deserialize_software")]
        software: String,
    },
    /// The button was pressed: ring every phone paired with this door.
    Ring { call_id: CallId },
    /// Stop ringing without an answer (ring timeout or the door gave up).
    CancelRing {
        call_id: CallId,
        reason: RingEndReason,
    },
    /// The door's SDP offer for the answered call.
    SdpOffer { call_id: CallId, sdp: String },
    /// A trickled ICE candidate from the door.
    Ice {
        call_id: CallId,
        candidate: IceCandidate,
    },
    /// End an answered call.
    HangUp {
        call_id: CallId,
        reason: HangUpReason,
    },
    /// The button was pressed while the door could not reach the hub: the door chimed locally
    /// and reports it once the hub has accepted its `hello` again, one message per press.
    MissedRing {
        /// When the button was pressed, by the door's clock: Unix time in milliseconds.
        at_ms: u64,
    },
    /// The door released its strike at the request of the phone in this answered call (over
    /// the call's data channel, which the hub never sees), for the history. The hub knows
    /// which phone answered the call, so the door does not name it.
    Unlocked { call_id: CallId },
    /// The door's SDP offer for a preview session: video sendonly, audio negotiated but held
    /// inactive at the door until the phone answers in this session.
    SessionOffer { session_id: SessionId, sdp: String },
    /// A trickled ICE candidate for a preview session.
    SessionIce {
        session_id: SessionId,
        candidate: IceCandidate,
    },
    /// The door ended (or refused) a preview session.
    CloseSession {
        session_id: SessionId,
        reason: SessionEndReason,
    },
    /// The door's answers to a pairing, an invite or a grant (see [`pairing`]).
    PairAccepted { request_id: u64, access: Access },
    PairRefused {
        request_id: u64,
        reason: pairing::PairRefusal,
    },
}

/// Messages the hub sends to a door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubToDoor {
    /// Reply to a good `hello`.
    Welcome {
        protocol_version: u32,
        /// The door's name as registered in the hub.
        door_name: String,
        /// STUN/TURN servers the door should use for its calls.
        ice_servers: Vec<IceServer>,
    },
    /// The hub delivered the ring; `phones` is how many phones are ringing now (0 means nobody
    /// is online yet; phones that come online while it rings still ring).
    Ringing {
        call_id: CallId,
        phones: u32,
        /// STUN/TURN servers for this call's media, with TURN credentials minted for the door
        /// (the same kind `answered` carries). Sent with the ring so the door gathers its
        /// candidates, TURN allocation included, while the phones ring rather than after the
        /// answer. Absent (older hubs): the door waits for `answered`'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ice_servers: Option<Vec<IceServer>>,
    },
    /// A phone answered: the door should send its `sdp_offer` now.
    Answered {
        call_id: CallId,
        phone_id: PhoneId,
        /// STUN/TURN servers for this call's media, with TURN credentials minted for this
        /// door and this call (short-lived). Use them instead of `welcome`'s list when present.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
        /// Whether the answering phone may unlock (its household permission). The door
        /// refuses an unlock from a phone that may not. Absent (older hubs): it may.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        may_unlock: bool,
    },
    /// Ringing stopped without an answer, for the given reason.
    RingEnded {
        call_id: CallId,
        reason: RingEndReason,
    },
    /// The answering phone's SDP answer.
    SdpAnswer {
        call_id: CallId,
        sdp: String,
    },
    /// A trickled ICE candidate from the answering phone.
    Ice {
        call_id: CallId,
        candidate: IceCandidate,
    },
    /// The answering phone hung up or went away.
    HangUp {
        call_id: CallId,
        reason: HangUpReason,
    },
    /// A phone ringing for (or answering) this call sent a quick reply: fetch clip
    /// `reply_id` (`GET /api/replies/<reply_id>` with the door's credentials) and play it on
    /// the speaker.
    QuickReply {
        call_id: CallId,
        reply_id: u64,
    },
    Error(ErrorBody),
    /// A ringing phone asked to see the door: open a preview session for it (send
    /// `session_offer`). `ice_servers`: STUN/TURN with credentials minted for the door.
    OpenSession {
        call_id: CallId,
        session_id: SessionId,
        phone_id: PhoneId,
        ice_servers: Vec<IceServer>,
    },
    /// The phone's SDP answer for a preview session.
    SessionAnswer {
        session_id: SessionId,
        sdp: String,
    },
    /// A trickled ICE candidate from the phone of a preview session.
    SessionIce {
        session_id: SessionId,
        candidate: IceCandidate,
    },
    /// The phone closed its preview session, or it went away.
    SessionClosed {
        session_id: SessionId,
        reason: SessionEndReason,
    },
    /// A phone answered in its preview session (instead of `answered`): that session becomes
    /// the call (open its audio both ways, accept its unlocks); close every other session.
    /// No new offer, no new ICE/DTLS handshake.
    AnsweredInSession {
        call_id: CallId,
        session_id: SessionId,
        phone_id: PhoneId,
        /// As in `answered`: whether the answering phone may unlock. Absent: it may.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        may_unlock: bool,
    },
    /// Pairing, owners' invites and grants, re-pins, for the door alone to decide (see [`pairing`]).
    PairRequest(pairing::PairRequest),
    InviteRequest(pairing::InviteRequest),
    GrantRequest(pairing::GrantRequest),
    /// A phone renewed its certificate: re-pin it (see [`pairing::RepinRequest`]).
    RepinRequest(pairing::RepinRequest),
    /// A phone left this door's household (removed, or it left): forget its pin. Removing
    /// only takes away, so it needs no owner's authorisation.
    Unpin {
        phone_id: PhoneId,
    },
    /// A phone with `may_view` asked to watch the door without a ring (live view): open a
    /// view session for it (send `session_offer`, or `close_session` with a reason).
    OpenView {
        session_id: SessionId,
        phone_id: PhoneId,
        ice_servers: Vec<IceServer>,
    },
}

/// Messages a phone sends to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PhoneToHub {
    /// First message: authenticate as a phone with the token it received at pairing.
    Hello {
        protocol_version: u32,
        token: String,
    },
    /// The person pressed Answer. The first phone to answer wins the call.
    Answer { call_id: CallId },
    /// The person pressed Decline. Only this phone stops ringing, unless it was the last one.
    Decline { call_id: CallId },
    /// The phone's SDP answer to the door's offer.
    SdpAnswer { call_id: CallId, sdp: String },
    /// A trickled ICE candidate from the phone.
    Ice {
        call_id: CallId,
        candidate: IceCandidate,
    },
    /// End the call this phone answered.
    HangUp {
        call_id: CallId,
        reason: HangUpReason,
    },
    /// While this phone rings: ask for the door's live video (a preview session).
    Preview { call_id: CallId },
    /// The phone's SDP answer to a preview session's offer (audio `recvonly`/`inactive` is
    /// fine: the door holds audio until Answer anyway).
    SessionAnswer { session_id: SessionId, sdp: String },
    /// A trickled ICE candidate for a preview session.
    SessionIce {
        session_id: SessionId,
        candidate: IceCandidate,
    },
    /// Stop this preview session (the phone keeps ringing unless it also declines).
    CloseSession { session_id: SessionId },
    /// Answer in this preview session (instead of `answer`): the first answer wins as usual,
    /// and the session gains two-way audio and unlock without a new handshake.
    AnswerInSession {
        call_id: CallId,
        session_id: SessionId,
    },
    /// Have the door play quick reply `reply_id` (a clip stored with `POST /api/replies`) to
    /// the visitor: from a phone that is ringing for this call or answered it.
    QuickReply { call_id: CallId, reply_id: u64 },
    /// Watch this door now, without a ring (live view; needs `may_view`). The door answers
    /// with `view_offer`, or the session closes with a reason (`limit`, ...).
    View { door_id: DoorId },
}

/// Messages the hub sends to a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubToPhone {
    /// Reply to a good `hello`.
    Welcome {
        protocol_version: u32,
        phone_id: PhoneId,
        /// Every door this phone is paired with.
        doors: Vec<DoorInfo>,
        ice_servers: Vec<IceServer>,
    },
    /// A door is ringing. Also sent on connect when a paired door is ringing already.
    Ring {
        call_id: CallId,
        door_id: DoorId,
        door_name: String,
        /// STUN/TURN servers for this call's media, with TURN credentials minted for this
        /// phone and this call (short-lived). Use them instead of `welcome`'s list when present.
        #[serde(default)]
        ice_servers: Vec<IceServer>,
    },
    /// This phone should stop ringing: nobody answered, or everybody declined, or the door
    /// cancelled.
    RingingCancelled {
        call_id: CallId,
        reason: RingEndReason,
    },
    /// Another phone answered this call first.
    AnsweredElsewhere {
        call_id: CallId,
    },
    /// The door's SDP offer, sent to the phone that answered.
    SdpOffer {
        call_id: CallId,
        sdp: String,
    },
    /// A trickled ICE candidate from the door.
    Ice {
        call_id: CallId,
        candidate: IceCandidate,
    },
    /// The door hung up or went away.
    HangUp {
        call_id: CallId,
        reason: HangUpReason,
    },
    /// A paired door came online or went offline.
    DoorStatus {
        door_id: DoorId,
        online: bool,
    },
    /// Someone rang while the door could not reach the hub; the door reported it when it came
    /// back. Nobody could have answered: the phone shows it as a missed ring, not a call.
    MissedRing {
        door_id: DoorId,
        door_name: String,
        /// When the button was pressed (the door's clock): Unix time in milliseconds.
        at_ms: u64,
    },
    /// The visitor's snapshot for a call reached the hub. `url` is a capability URL (no
    /// header needed, expires; see docs/PROTOCOL.md "Snapshots"), relative to the hub.
    Snapshot {
        call_id: CallId,
        url: String,
    },
    /// A phone joined one of this phone's doors (it redeemed an invite).
    PhoneJoined {
        door_id: DoorId,
        phone_id: PhoneId,
        /// The name the new phone gave itself.
        name: String,
    },
    /// A phone left one of this phone's doors or was removed from it. Sent to the door's
    /// other phones; the removed phone's own connection is closed instead (close code 4001).
    PhoneRemoved {
        door_id: DoorId,
        phone_id: PhoneId,
        name: String,
    },
    /// An owner changed this phone's role or permissions at a door.
    AccessChanged {
        door_id: DoorId,
        access: Access,
    },
    Error(ErrorBody),
    /// The door's offer for this phone's preview session of `call_id`.
    SessionOffer {
        call_id: CallId,
        session_id: SessionId,
        sdp: String,
    },
    /// A trickled ICE candidate from the door for a preview session.
    SessionIce {
        session_id: SessionId,
        candidate: IceCandidate,
    },
    /// A preview session ended; `answered_elsewhere` means another phone took the call.
    SessionClosed {
        session_id: SessionId,
        reason: SessionEndReason,
    },
    /// The door's offer for this phone's live view (after `view`). The session then works as
    /// a preview's (`session_answer`, `session_ice`, `close_session`, `answer_in_session`).
    ViewOffer {
        door_id: DoorId,
        session_id: SessionId,
        sdp: String,
        /// STUN/TURN for this phone's side of the view.
        ice_servers: Vec<IceServer>,
    },
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// Largest WebSocket message any side accepts. An SDP offer for one H.264 video and one Opus
/// audio stream plus a data channel is about 3-6 KiB; 64 KiB leaves room for many codecs and
/// candidates while bounding what a misbehaving peer can make us buffer.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
