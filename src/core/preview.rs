//! Preview sessions: the door's live video on each ringing phone, and the instant answer.
//!
//! ```text
//!   open_session ──► OpenPreview ──► offer ready ──► StartPreviewIce + session_offer
//!                                     candidates ──► session_ice (at once: the phone asked)
//!                                      connected ──► keyframe (at most one per KEYFRAME_MIN_INTERVAL,
//!                                                    a join inside it gets one when it ends)
//!   answered_in_session(s) ──► OpenTalk(s): s becomes the call (audio both ways, unlock);
//!                              every other session: ClosePreview (the hub told those phones)
//!   answered (plain) ──► every session closes (the call gets its own offer, as before)
//!   call over / session_closed ──► ClosePreview (the hub forgot them with the call)
//! ```
//!
//! Privacy: the only action that lets audio through a session is [`Action::OpenTalk`], and
//! it is emitted once per call, for the session the phone answered in. Until then the media
//! shell keeps each session's audio blocked both ways (no door audio leaves, no phone audio
//! is played). One encoder feeds every session, so a keyframe is the encoder's, for everyone:
//! hence the rate limit.

use super::{Action, SessionMediaEvent};
use doorbell_protocol::{
    CallId, DoorToHub, IceCandidate, IceServer, PhoneId, SessionEndReason, SessionId,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Preview and view sessions at once, unless `view.max_viewers` says otherwise. Each costs the door a `webrtcbin` (SRTP, ICE, its own RTP
/// payloader) and a copy of the video in its upload; four covers a household's phones and
/// keeps a Pi Zero 2 W's uplink and CPU in budget (the hub allows more per call).
pub const MAX_PREVIEWS: usize = 4;

/// At most one forced keyframe this often. A keyframe is several times a normal frame's
/// size; ten phones joining at once must not make ten of them. Half a second is below what a
/// person notices on a ringing screen.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// A ringing phone's preview, or a live view (which outlives an answer: see [`view`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ring,
    View {
        /// The longest view ends here (`time_limit`), unless it became the call.
        until: Instant,
        /// The door's audio goes to this viewer (`view.door_audio`), until someone answers.
        door_audio: bool,
    },
}

#[derive(Debug)]
struct Preview {
    kind: Kind,
    call_id: CallId,
    /// Who watches: a plain `answered` from this phone supersedes its preview.
    phone_id: PhoneId,
    /// STUN/TURN for this session, minted by the hub for the door.
    servers: Vec<IceServer>,
    connected: bool,
}

#[derive(Debug)]
pub(crate) struct Previews {
    /// Most sessions at once (previews and views together): `view.max_viewers`.
    limit: usize,
    sessions: BTreeMap<SessionId, Preview>,
    /// The session that became the call (after `answered_in_session`).
    talking: Option<SessionId>,
    last_keyframe: Option<Instant>,
    /// A viewer connected inside the rate limit: its keyframe is due at `next_deadline`.
    keyframe_pending: bool,
}

pub(crate) mod view;
pub use view::ViewLimits;

impl Previews {
    pub(crate) fn new(limit: usize) -> Self {
        Previews {
            limit,
            sessions: BTreeMap::new(),
            talking: None,
            last_keyframe: None,
            keyframe_pending: false,
        }
    }

    pub(crate) fn talking(&self) -> Option<&SessionId> {
        self.talking.as_ref()
    }

    pub(crate) fn is_connected(&self, session_id: &SessionId) -> bool {
        self.sessions.get(session_id).is_some_and(|p| p.connected)
    }

    /// The call a session belongs to, if it is open.
    pub(crate) fn call_of(&self, session_id: &SessionId) -> Option<&CallId> {
        self.sessions.get(session_id).map(|p| &p.call_id)
    }

    /// When the pending keyframe is due, or the first view reaches its longest length.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let keyframe = self
            .keyframe_pending
            .then(|| self.last_keyframe.map(|t| t + KEYFRAME_MIN_INTERVAL))
            .flatten();
        match (keyframe, self.view_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The hub asks for a session of `call_id` (which the caller checked is ringing).
    pub(crate) fn open(
        &mut self,
        call_id: CallId,
        session_id: SessionId,
        phone_id: PhoneId,
        servers: Vec<IceServer>,
    ) -> Vec<Action> {
        if self.sessions.contains_key(&session_id) {
            return Vec::new();
        }
        if !self.has_room() {
            tracing::info!(%session_id, "preview refused: {} phones already watch", self.limit);
            return vec![close_at_hub(session_id, SessionEndReason::Limit)];
        }
        tracing::info!(%call_id, %session_id, %phone_id, "preview session opens");
        self.sessions.insert(
            session_id.clone(),
            Preview {
                kind: Kind::Ring,
                call_id: call_id.clone(),
                phone_id,
                servers,
                connected: false,
            },
        );
        vec![Action::OpenPreview {
            call_id,
            session_id,
        }]
    }

    /// Something a session's media reported.
    pub(crate) fn on_media(
        &mut self,
        now: Instant,
        session_id: SessionId,
        event: SessionMediaEvent,
    ) -> Vec<Action> {
        let Some(preview) = self.sessions.get_mut(&session_id) else {
            return Vec::new();
        };
        match event {
            // The phone asked for this session: the offer and candidates go out at once.
            SessionMediaEvent::OfferReady(sdp) => vec![
                Action::StartPreviewIce {
                    session_id: session_id.clone(),
                    offer: sdp.clone(),
                    servers: preview.servers.clone(),
                },
                Action::Send(DoorToHub::SessionOffer { session_id, sdp }),
            ],
            SessionMediaEvent::LocalCandidate { mline, candidate } => {
                vec![Action::Send(DoorToHub::SessionIce {
                    session_id,
                    candidate: IceCandidate {
                        candidate,
                        sdp_m_line_index: mline,
                    },
                })]
            }
            SessionMediaEvent::Connected => {
                preview.connected = true;
                let call_id = preview.call_id.clone();
                tracing::info!(%session_id, "preview connected");
                self.keyframe(now, call_id)
            }
            SessionMediaEvent::Failed(why) => {
                tracing::warn!(%session_id, "preview failed: {why}");
                self.failed(session_id)
            }
            // The door handles these (they may unlock); see `Door::on_session_media`.
            SessionMediaEvent::ControlMessage(_) => Vec::new(),
        }
    }

    /// The session's media could not be built or broke: close it on both sides.
    pub(crate) fn failed(&mut self, session_id: SessionId) -> Vec<Action> {
        if self.sessions.remove(&session_id).is_none() {
            return Vec::new();
        }
        if self.talking.as_ref() == Some(&session_id) {
            self.talking = None;
        }
        vec![
            Action::ClosePreview(session_id.clone()),
            close_at_hub(session_id, SessionEndReason::Failed),
        ]
    }

    /// A new viewer wants a keyframe: now, or when the rate limit allows.
    fn keyframe(&mut self, now: Instant, call_id: CallId) -> Vec<Action> {
        match self.last_keyframe {
            Some(last) if now < last + KEYFRAME_MIN_INTERVAL => {
                self.keyframe_pending = true;
                Vec::new()
            }
            _ => {
                self.last_keyframe = Some(now);
                self.keyframe_pending = false;
                vec![Action::RequestKeyframe(call_id)]
            }
        }
    }

    /// `now` reached [`Previews::next_deadline`]: the deferred keyframe, the views that
    /// reached their longest length.
    pub(crate) fn on_deadline(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = self.expire_views(now);
        actions.extend(self.deferred_keyframe(now));
        actions
    }

    fn deferred_keyframe(&mut self, now: Instant) -> Vec<Action> {
        let due = self
            .keyframe_pending
            .then(|| self.last_keyframe.map(|t| t + KEYFRAME_MIN_INTERVAL))
            .flatten();
        match (due, self.sessions.values().next()) {
            (Some(due), Some(preview)) if now >= due => {
                let call_id = preview.call_id.clone();
                self.keyframe(now, call_id)
            }
            (Some(_), None) => {
                self.keyframe_pending = false;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The phone answered in `session_id`: it becomes the call, every other session closes.
    /// `None` when the door has no such session (the caller falls back to a fresh offer).
    pub(crate) fn answered_in(&mut self, session_id: &SessionId) -> Option<Vec<Action>> {
        self.sessions.get(session_id)?;
        let mut actions = self.close_all_but(Some(session_id), |_| None);
        tracing::info!(%session_id, "answered in the preview: opening its audio");
        self.talking = Some(session_id.clone());
        actions.extend(self.hold_view_audio());
        actions.push(Action::OpenTalk(session_id.clone()));
        Some(actions)
    }

    /// A plain `answered` by `phone_id`: every session closes. The hub keeps only the
    /// answering phone's (superseded by the call's own session), so that one is closed there.
    pub(crate) fn answered_plain(&mut self, phone_id: &PhoneId) -> Vec<Action> {
        let mut actions = self.close_all_but(None, |p| {
            (p.phone_id == *phone_id).then_some(SessionEndReason::Closed)
        });
        actions.extend(self.hold_view_audio());
        actions
    }

    /// The hub (or the phone through it) closed a session.
    pub(crate) fn closed_by_hub(&mut self, session_id: SessionId) -> Vec<Action> {
        if self.sessions.remove(&session_id).is_none() {
            return Vec::new();
        }
        if self.talking.as_ref() == Some(&session_id) {
            self.talking = None;
        }
        vec![Action::ClosePreview(session_id)]
    }

    /// The call is over: tear every session down (they are branches of its pipeline). The
    /// hub forgot the previews with the call; views are the door's, so the hub hears of them.
    pub(crate) fn call_over(&mut self) -> Vec<Action> {
        self.talking = None;
        self.keyframe_pending = false;
        let mut actions = Vec::new();
        for (session_id, preview) in std::mem::take(&mut self.sessions) {
            actions.push(Action::ClosePreview(session_id.clone()));
            if matches!(preview.kind, Kind::View { .. }) {
                actions.push(close_at_hub(session_id, SessionEndReason::CallEnded));
            }
        }
        actions
    }

    /// Close every session but `keep`. The hub has already told the other phones why
    /// (`answered_elsewhere`); `tell_hub` says which closings it must still hear about.
    fn close_all_but(
        &mut self,
        keep: Option<&SessionId>,
        tell_hub: impl Fn(&Preview) -> Option<SessionEndReason>,
    ) -> Vec<Action> {
        // Views stay open as views: only the phone that answered talks (talk arbitration).
        let ended: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(id, p)| Some(*id) != keep && p.kind == Kind::Ring)
            .map(|(id, _)| id.clone())
            .collect();
        let mut actions = Vec::new();
        for session_id in ended {
            if let Some(preview) = self.sessions.remove(&session_id) {
                actions.push(Action::ClosePreview(session_id.clone()));
                if let Some(reason) = tell_hub(&preview) {
                    actions.push(close_at_hub(session_id, reason));
                }
            }
        }
        actions
    }
}

fn close_at_hub(session_id: SessionId, reason: SessionEndReason) -> Action {
    Action::Send(DoorToHub::CloseSession { session_id, reason })
}
