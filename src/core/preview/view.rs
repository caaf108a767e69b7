//! Live views: a phone with `may_view` watches the door without a ring.
//!
//! A view is a session like a ring preview (the same tee, the same encoder, the same
//! `session_*` messages) with three differences: it has a longest length (`view.max_secs`,
//! then `time_limit`), the door's audio may go to it (`view.door_audio`, default off; the
//! phone's audio is never played at the door in a view), and an answer does not close it.
//! Talk arbitration: the phone that answers in its view talks (`OpenTalk`, as for a preview);
//! every other view keeps video only, and loses the door's audio while the call lasts.

use super::{close_at_hub, Kind, Preview, Previews};
use crate::core::Action;
use doorbell_protocol::{CallId, IceServer, PhoneId, SessionEndReason, SessionId};
use std::time::{Duration, Instant};

/// Longest view unless `view.max_secs` says otherwise: long enough to see who is at the
/// door and what they do, short enough that a forgotten phone does not keep the camera and
/// the uplink busy (and the `Viewing` light on) for hours.
pub const DEFAULT_MAX_VIEW: Duration = Duration::from_secs(120);

/// The `[view]` configuration, as the core uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewLimits {
    /// Most sessions at once, previews and views together (`view.max_viewers`).
    pub max_sessions: usize,
    /// Longest view (`view.max_secs`).
    pub max_view: Duration,
    /// Whether a viewer hears the door (`view.door_audio`).
    pub door_audio: bool,
}

impl Default for ViewLimits {
    fn default() -> Self {
        ViewLimits {
            max_sessions: super::MAX_PREVIEWS,
            max_view: DEFAULT_MAX_VIEW,
            door_audio: false,
        }
    }
}

impl Previews {
    /// Whether one more session fits under the limit.
    pub(crate) fn has_room(&self) -> bool {
        self.sessions.len() < self.limit
    }

    /// Views open now (the `Viewing` light is on while there is one and no call).
    pub(crate) fn viewers(&self) -> usize {
        self.sessions
            .values()
            .filter(|p| matches!(p.kind, Kind::View { .. }))
            .count()
    }

    /// A view of the pipeline `host` (the call's, or the one the door started for views).
    /// The caller checked [`Previews::has_room`].
    pub(crate) fn open_view(
        &mut self,
        now: Instant,
        host: CallId,
        session_id: SessionId,
        phone_id: PhoneId,
        servers: Vec<IceServer>,
        limits: &ViewLimits,
    ) -> Vec<Action> {
        if self.sessions.contains_key(&session_id) {
            return Vec::new();
        }
        tracing::info!(%session_id, %phone_id, "live view opens");
        let door_audio = limits.door_audio;
        self.sessions.insert(
            session_id.clone(),
            Preview {
                kind: Kind::View {
                    until: now + limits.max_view,
                    door_audio,
                },
                call_id: host.clone(),
                phone_id,
                servers,
                connected: false,
            },
        );
        let mut actions = vec![Action::OpenPreview {
            call_id: host,
            session_id: session_id.clone(),
        }];
        if door_audio {
            actions.push(Action::DoorAudio {
                session_id,
                on: true,
            });
        }
        actions
    }

    /// When the first view (not the call) reaches its longest length.
    pub(super) fn view_deadline(&self) -> Option<Instant> {
        self.sessions
            .iter()
            .filter(|(id, _)| self.talking.as_ref() != Some(*id))
            .filter_map(|(_, p)| match p.kind {
                Kind::View { until, .. } => Some(until),
                Kind::Ring => None,
            })
            .min()
    }

    /// Close the views that reached their longest length (`time_limit`).
    pub(super) fn expire_views(&mut self, now: Instant) -> Vec<Action> {
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(id, p)| {
                self.talking.as_ref() != Some(*id)
                    && matches!(p.kind, Kind::View { until, .. } if now >= until)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut actions = Vec::new();
        for session_id in expired {
            tracing::info!(%session_id, "live view reached its longest length");
            self.sessions.remove(&session_id);
            actions.push(Action::ClosePreview(session_id.clone()));
            actions.push(close_at_hub(session_id, SessionEndReason::TimeLimit));
        }
        actions
    }

    /// Close every view; the hub hears `reason` unless it is gone (`None`).
    pub(crate) fn close_views(&mut self, reason: Option<SessionEndReason>) -> Vec<Action> {
        let views: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, p)| matches!(p.kind, Kind::View { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        let mut actions = Vec::new();
        for session_id in views {
            self.sessions.remove(&session_id);
            if self.talking.as_ref() == Some(&session_id) {
                self.talking = None;
            }
            actions.push(Action::ClosePreview(session_id.clone()));
            if let Some(reason) = reason {
                actions.push(close_at_hub(session_id, reason));
            }
        }
        actions
    }

    /// Someone answered: the views that heard the door stop hearing it (only the answering
    /// phone talks with the visitor).
    pub(super) fn hold_view_audio(&mut self) -> Vec<Action> {
        let talking = self.talking.clone();
        let mut actions = Vec::new();
        for (session_id, preview) in &mut self.sessions {
            if let Kind::View { door_audio, .. } = &mut preview.kind {
                if *door_audio && talking.as_ref() != Some(session_id) {
                    *door_audio = false;
                    actions.push(Action::DoorAudio {
                        session_id: session_id.clone(),
                        on: false,
                    });
                }
            }
        }
        actions
    }
}
