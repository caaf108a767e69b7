//! The door's core: every decision about a call, sans I/O.
//!
//! ```text
//!                  press, hub up                  answered                   media connected
//!   ┌──────┐ ─────────────────────► ┌─────────┐ ───────────► ┌────────────┐ ──────────────► ┌────────┐
//!   │ Idle │  ring + StartMedia     │ Ringing │  StartOffer  │ Connecting │  keyframe       │ InCall │
//!   └──────┘                        └─────────┘              └────────────┘                 └────────┘
//!    ▲  ▲ │ press, hub down:             │                        │                             │
//!    │  │ └ chime + missed ring          │ ring timeout,          │ connect timeout,            │ hang-up (either side),
//!    │  │   (stays Idle)                 │ all declined,          │ media failed,               │ max length, media failed,
//!    │  │                                │ hub lost*, refused,    │ hub lost, hang-up           │ data channel closed
//!    │  └────────────────────────────────┘ media failed, hang-up  │                             │ after the hub was lost
//!    └────────────────────────────────────────────────────────────┴─────────────────────────────┘
//!   * a ring the hub never confirmed (`ringing`) that ends unheard is kept as a missed ring
//!
//!   negotiation gate (one per call, Ringing..InCall):
//!     offer ready ──┐
//!                   ├─► StartIce ──┐
//!     ICE servers ──┘ (`ringing`,  ├─► send offer + candidates buffered so far; later ones at once
//!     from an older hub `answered`)│
//!     answered ────────────────────┘
//! ```
//!
//! The shell ([`crate::daemon`]) turns what it hears (button, hub link, GStreamer, control
//! socket, GPIO) into an [`Event`] for [`Door::handle`], runs the [`Action`]s it drains with
//! [`Door::poll_action`] on its ports, and calls `handle(now, Event::Deadline)` when
//! [`Door::next_deadline`] passes. Results of actions that can fail at once (the media session
//! did not start, the phone's answer is not SDP, the strike pulsed) come back as events.
//! Nothing here sleeps, reads a clock or touches a socket, a pad or a pin: every edge case is a
//! scenario test in virtual time (`scenarios.rs`, `scenarios_edges.rs`).
//!
//! - [`call`]: the call states and their timers (Idle, Ringing, Connecting, InCall).
//! - `negotiation`: the gate in front of the offer (per-call ICE servers, candidate buffer,
//!   the hub-lost rule).
//! - [`preview`]: the phones' preview sessions while ringing, the keyframe rate limit, the
//!   instant answer (which session may talk); live views and their limits (`preview::view`).
//! - [`ledger`]: the ring in progress and the presses the hub never heard (missed rings).
//! - [`unlock`]: who may open the door.
//! - [`pins`]: which phone certificates the door accepts (pinned at pairing), checked on
//!   every SDP answer.
//! - [`status`]: what `doorbelld status` reports, as enums.

pub mod call;
mod door;
pub mod ledger;
mod negotiation;
pub mod pins;
pub mod preview;
pub mod status;
pub mod unlock;

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod scenarios_edges;
#[cfg(test)]
mod scenarios_pins;
#[cfg(test)]
mod scenarios_preview;
#[cfg(test)]
mod scenarios_view;
#[cfg(test)]
mod scenarios_voice;

pub use call::{CallError, LedState, Outcome, State, Timings};
pub use door::{Door, DoorSetup};
pub use preview::ViewLimits;
pub use status::{CallPhase, DoorStatus, Relay};

use doorbell_protocol::control::DoorToPhone;
use doorbell_protocol::{CallId, DoorToHub, HubToDoor, IceCandidate, IceServer, SessionId};
use std::time::Duration;

/// Something that happened, as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The call button was pressed (debounced), at this wall-clock time (Unix ms): the time a
    /// missed ring reports.
    ButtonPressed { unix_ms: u64 },
    /// Someone at the door (or `doorbelld hangup`, or shutdown) ends the call.
    LocalHangUp,
    /// `now` reached [`Door::next_deadline`].
    Deadline,
    /// The hub accepted our `hello`.
    HubUp {
        door_name: String,
        /// The hub's STUN servers from `welcome` (a call's own come with `ringing`).
        ice_servers: Vec<IceServer>,
    },
    /// The hub link dropped or the hub refused this door.
    HubLost,
    /// A message from the hub.
    Hub(HubToDoor),
    /// Something the media session reported.
    Media(MediaEvent),
    /// [`Action::StartMedia`] failed (camera or pipeline broken).
    MediaStartFailed(CallId),
    /// [`Action::SetAnswer`] failed: the phone's answer is not valid SDP.
    AnswerRejected(CallId),
    /// [`Action::OpenPreview`] failed, or a preview's SDP or candidate was refused.
    PreviewFailed(SessionId),
    /// [`Action::PulseStrike`] ran.
    StrikePulsed {
        call_id: CallId,
        request_id: u32,
        outcome: StrikeOutcome,
    },
    /// The PIR sensor saw movement.
    Motion,
    /// The phones the door pinned at pairing (at start and after each pairing): from now on
    /// only their certificates get media and unlock.
    PinsChanged(pins::Pins),
}

/// What pulsing the door strike did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrikeOutcome {
    /// The strike is energised for this long.
    Started(Duration),
    /// A pulse was already running and is not extended; the phone is told the asked length.
    AlreadyOpen(Duration),
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this to the hub (dropped by the link when it is down).
    Send(DoorToHub),
    /// Build and start the call's media session (answering is then fast); report a failure
    /// as [`Event::MediaStartFailed`]. `ice_servers` are the hub's from `welcome`.
    StartMedia {
        call_id: CallId,
        ice_servers: Vec<IceServer>,
    },
    /// Make `offer` the local description with these ICE servers: ICE starts gathering. A
    /// failure comes back later as a [`MediaEventKind::Failed`].
    StartIce {
        call_id: CallId,
        offer: String,
        servers: Vec<IceServer>,
    },
    /// Apply the phone's answer; report a failure as [`Event::AnswerRejected`].
    SetAnswer {
        call_id: CallId,
        sdp: String,
    },
    AddRemoteCandidate {
        call_id: CallId,
        candidate: IceCandidate,
    },
    /// Force a keyframe so the phone shows a picture at once.
    RequestKeyframe(CallId),
    /// Drop the media session (its guard sets the pipeline to NULL).
    TearDownMedia(CallId),
    /// Send this on the call's `control` data channel.
    Reply {
        call_id: CallId,
        message: DoorToPhone,
    },
    /// The answering phone may open the door: pulse the strike, report
    /// [`Event::StrikePulsed`].
    PulseStrike {
        call_id: CallId,
        request_id: u32,
    },
    SetLed(LedState),
    /// Play the door's own chime (the hub is unreachable).
    Chime,
    /// Persist the missed rings (Unix ms, oldest first): they must survive a power cut.
    SaveMissedRings(Vec<u64>),
    /// A call attempt is over (for the log and the call's media statistics).
    CallEnded {
        call_id: CallId,
        outcome: Outcome,
    },
    /// Take the visitor's snapshot of this press and get it to the hub: for a ring, from its
    /// just-started media session, uploaded at once; for a missed ring, kept on disk with it.
    /// Runs beside the call: the ring has gone out already and never waits for it.
    TakeSnapshot(SnapshotOf),
    /// The hub is back and has the `missed_ring`s: upload the snapshots kept with them (and
    /// the voice messages kept while it was away).
    UploadMissedSnapshots,
    /// Give this phone a preview session of the call: a `webrtcbin` fed by the call's one
    /// encoder, video sendonly, audio negotiated but blocked both ways; create its offer and
    /// report it as [`SessionMediaEvent::OfferReady`]. A failure: [`Event::PreviewFailed`].
    OpenPreview {
        call_id: CallId,
        session_id: SessionId,
    },
    /// Make `offer` the session's local description with these ICE servers.
    StartPreviewIce {
        session_id: SessionId,
        offer: String,
        servers: Vec<IceServer>,
    },
    /// Apply the phone's answer to a preview session.
    SetPreviewAnswer {
        session_id: SessionId,
        sdp: String,
    },
    AddPreviewCandidate {
        session_id: SessionId,
        candidate: IceCandidate,
    },
    /// The phone answered in this session: let audio through both ways (the only action
    /// that does), and route its data channel's unlocks to the call.
    OpenTalk(SessionId),
    /// Tear the preview session down (its branch leaves the pipeline).
    ClosePreview(SessionId),
    /// Let the door's audio out to this live view (`view.door_audio`), or hold it again
    /// (someone answered: only the answering phone hears the visitor). The phone's audio is
    /// never played at the door in a view.
    DoorAudio {
        session_id: SessionId,
        on: bool,
    },
    /// A press during a live view: the view's pipeline (started as `from` for the views)
    /// becomes `call_id`'s media session, without a restart (its views keep their sessions).
    AdoptMedia {
        from: CallId,
        call_id: CallId,
    },
    /// Nobody can come to the door: play the prompt, record the visitor for up to `secs`,
    /// and upload it for this press (kept on the door while the hub is unreachable). Runs
    /// beside the call loop; a new press's media session stops it.
    RecordVoiceMessage {
        of: SnapshotOf,
        secs: u32,
    },
    /// A phone of this call sent quick reply `reply_id`: fetch it from the hub and play it on
    /// the speaker (beside the call's own audio).
    PlayQuickReply {
        call_id: CallId,
        reply_id: u64,
    },
}

/// Which press a snapshot belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotOf {
    /// The ring of this call.
    Call(CallId),
    /// A press the hub could not hear, at this Unix millisecond time (its `missed_ring`).
    MissedRing(u64),
}

/// An event from a media session's threads. Each carries its call, so a late event from a
/// torn-down session is recognised as stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEvent {
    pub call_id: CallId,
    pub kind: MediaEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEventKind {
    /// The local offer is created (with negotiated caps); ICE starts once it is set.
    OfferReady(String),
    LocalCandidate {
        mline: u32,
        candidate: String,
    },
    /// ICE + DTLS are up: media flows.
    Connected,
    /// Pipeline error, EOS or ICE/DTLS failure, with a reason for the log.
    Failed(String),
    /// A text message from the phone on the `control` data channel (not yet parsed: see
    /// [`unlock`]). Binary messages are answered by the door too.
    ControlMessage(String),
    /// The data channel's SCTP association ended: the phone closed its peer connection (or
    /// the association broke). Normally the hub's `hang_up` says the same thing first.
    ControlClosed,
    /// Something a preview session of this call reported.
    Session(SessionId, SessionMediaEvent),
}

/// What a preview session's media reports (see [`preview`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionMediaEvent {
    /// The session's offer is created; ICE starts once it is set.
    OfferReady(String),
    LocalCandidate {
        mline: u32,
        candidate: String,
    },
    /// ICE + DTLS are up: the phone sees the door.
    Connected,
    Failed(String),
    /// A text message on the session's `control` data channel: an unlock counts only from
    /// the session the phone answered in.
    ControlMessage(String),
}
