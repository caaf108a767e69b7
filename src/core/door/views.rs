//! The door's side of live views (see [`crate::core::preview`]'s `view` module for the
//! sessions themselves): which pipeline a view joins, the `Viewing` light, and the press
//! during a view.
//!
//! ```text
//!   idle, open_view ──► StartMedia(<prefix>-view-n) + OpenPreview: the door's view pipeline
//!                       (its own webrtcbin stays unused; its offer is kept for a press)
//!   in a call, open_view ──► OpenPreview on the call's pipeline (the view ends with the call)
//!   press during a view ──► AdoptMedia(view pipeline → call): no new pipeline, the kept offer
//!                           is the call's; the views go on and may answer in their session
//!   last view closed, no call ──► TearDownMedia(view pipeline), light back to Idle
//! ```

use super::Door;
use crate::core::call::{self, LedState};
use crate::core::preview::ViewLimits;
use crate::core::{Action, MediaEvent, MediaEventKind};
use doorbell_protocol::{CallId, DoorToHub, IceServer, PhoneId, SessionEndReason, SessionId};
use std::time::Instant;

/// The pipeline the door started for views while idle.
#[derive(Debug)]
struct Host {
    id: CallId,
    /// Its webrtcbin's offer, kept for the call a press may make of it.
    offer: Option<String>,
    /// A press made it this call's media session.
    adopted: Option<CallId>,
}

#[derive(Debug)]
pub(super) struct Views {
    limits: ViewLimits,
    prefix: String,
    started: u64,
    host: Option<Host>,
}

impl Views {
    pub(super) fn new(limits: ViewLimits, prefix: &str) -> Self {
        Views {
            limits,
            prefix: prefix.to_owned(),
            started: 0,
            host: None,
        }
    }

    /// Whether `id` is the view pipeline (not yet a call's).
    pub(super) fn is_host(&self, id: &CallId) -> bool {
        self.host
            .as_ref()
            .is_some_and(|h| h.id == *id && h.adopted.is_none())
    }

    /// The call `call_id` is over: a view pipeline it adopted went with it.
    pub(super) fn call_over(&mut self, call_id: &CallId) {
        if self
            .host
            .as_ref()
            .is_some_and(|h| h.adopted.as_ref() == Some(call_id))
        {
            self.host = None;
        }
    }
}

impl Door {
    /// `open_view` from the hub (which checked `may_view`): join the call's pipeline, or the
    /// door's view pipeline (started now if needed), within the limits.
    pub(super) fn open_view(
        &mut self,
        now: Instant,
        session_id: SessionId,
        phone_id: PhoneId,
        servers: Vec<IceServer>,
    ) {
        let refuse = |reason| {
            Action::Send(DoorToHub::CloseSession {
                session_id: session_id.clone(),
                reason,
            })
        };
        if !self.previews.has_room() {
            tracing::info!(%session_id, %phone_id, "live view refused: the door streams to its most viewers");
            self.actions.push_back(refuse(SessionEndReason::Limit));
            return;
        }
        let host = match (self.machine.state().call_id(), &self.media) {
            (Some(_), Some(media)) => media.call_id.clone(),
            // A call whose media did not start: nothing to show.
            (Some(_), None) => {
                self.actions.push_back(refuse(SessionEndReason::Failed));
                return;
            }
            (None, _) => self.view_host(),
        };
        let limits = self.views.limits;
        let actions = self
            .previews
            .open_view(now, host, session_id, phone_id, servers, &limits);
        self.actions.extend(actions);
    }

    /// The door's view pipeline, started if there is none.
    fn view_host(&mut self) -> CallId {
        if let Some(host) = &self.views.host {
            return host.id.clone();
        }
        self.views.started += 1;
        let id = CallId::new(format!("{}-view-{}", self.views.prefix, self.views.started));
        tracing::info!(%id, "starting the camera for a live view");
        self.views.host = Some(super::views::Host {
            id: id.clone(),
            offer: None,
            adopted: None,
        });
        self.actions.push_back(Action::StartMedia {
            call_id: id.clone(),
            ice_servers: self.hub_ice_servers.clone(),
        });
        id
    }

    /// A media event: the view pipeline's own are handled here (`None`); once a press adopted
    /// it, its events are the call's (renamed).
    pub(super) fn host_event(&mut self, event: MediaEvent) -> Option<MediaEvent> {
        let Some(host) = self.views.host.as_mut().filter(|h| h.id == event.call_id) else {
            return Some(event);
        };
        if let Some(call_id) = host.adopted.clone() {
            return Some(MediaEvent {
                call_id,
                kind: event.kind,
            });
        }
        match event.kind {
            MediaEventKind::OfferReady(sdp) => host.offer = Some(sdp),
            MediaEventKind::Failed(why) => {
                tracing::warn!(id = %host.id, "the live view's media failed: {why}");
                self.host_failed();
            }
            // The views' own sessions: handled like previews (keyed by session).
            kind @ MediaEventKind::Session(..) => {
                return Some(MediaEvent {
                    call_id: event.call_id,
                    kind,
                })
            }
            _ => {}
        }
        None
    }

    /// The view pipeline did not start (camera or pipeline broken).
    pub(super) fn host_start_failed(&mut self, id: &CallId) {
        tracing::warn!(%id, "the live view's media did not start");
        self.fault = true;
        self.host_failed();
    }

    /// The view pipeline broke: every view ends (`failed`).
    pub(super) fn host_failed(&mut self) {
        let closed = self.previews.close_views(Some(SessionEndReason::Failed));
        self.actions.extend(closed);
        if let Some(host) = self.views.host.take() {
            self.actions.push_back(Action::TearDownMedia(host.id));
        }
    }

    /// A press while the view pipeline runs: it becomes `call_id`'s (true), with the offer
    /// its webrtcbin made already.
    pub(super) fn adopt_view_media(&mut self, call_id: &CallId) -> bool {
        let Some(host) = self.views.host.as_mut().filter(|h| h.adopted.is_none()) else {
            return false;
        };
        tracing::info!(%call_id, view = %host.id, "a press during a live view: the call takes the view's media");
        host.adopted = Some(call_id.clone());
        let from = host.id.clone();
        let offer = host.offer.take();
        if let (Some(offer), Some(media)) = (offer, self.media_for(call_id)) {
            media.offer_ready(offer);
        }
        self.actions.push_back(Action::AdoptMedia {
            from,
            call_id: call_id.clone(),
        });
        true
    }

    /// After every event: without views and without a call the view pipeline stops; the
    /// `Viewing` light follows the views while idle and the hub is reachable.
    pub(super) fn views_changed(&mut self) {
        if !matches!(self.machine.state(), call::State::Idle) {
            return;
        }
        let viewers = self.previews.viewers();
        if viewers == 0 {
            if let Some(host) = self.views.host.take() {
                tracing::info!(id = %host.id, "no more live views: the camera stops");
                self.actions.push_back(Action::TearDownMedia(host.id));
            }
        }
        if !self.status.hub_connected {
            return;
        }
        let led = match (viewers, self.fault) {
            (0, true) => LedState::Fault,
            (0, false) => LedState::Idle,
            _ => LedState::Viewing,
        };
        if self.status.led.is_some_and(|shown| shown != led) {
            self.set_led(led);
        }
    }

    pub(super) fn set_led(&mut self, led: LedState) {
        self.status.led = Some(led);
        self.actions.push_back(Action::SetLed(led));
    }
}
