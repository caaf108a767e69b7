//! Scenario tests of live views: limits, the longest view, the `Viewing` light, a press
//! during a view and talk arbitration, in virtual time.

use super::preview::view::DEFAULT_MAX_VIEW;
use super::scenarios::*;
use super::*;
use doorbell_protocol::{PhoneId, SessionEndReason};

fn view_id(n: u32) -> SessionId {
    SessionId::new(format!("v-{n}"))
}

fn host() -> CallId {
    CallId::new("c-test-view-1")
}

fn open_view(n: u32) -> HubToDoor {
    HubToDoor::OpenView {
        session_id: view_id(n),
        phone_id: PhoneId::new(format!("p-{n}")),
        ice_servers: vec![turn(&format!("door-{n}"))],
    }
}

fn closed_at_hub(n: u32, reason: SessionEndReason) -> Action {
    Action::Send(DoorToHub::CloseSession {
        session_id: view_id(n),
        reason,
    })
}

/// An online door with these view limits.
fn door_with(limits: ViewLimits) -> Sim {
    let door = Door::new(DoorSetup {
        timings: Timings {
            ring_timeout: RING,
            connect_timeout: CONNECT,
            max_call: MAX_CALL,
        },
        id_prefix: "c-test".into(),
        door_name: "Front door".into(),
        missed_rings: Vec::new(),
        voice_message_secs: 0,
        view: limits,
    });
    let t0 = std::time::Instant::now();
    let mut sim = Sim { door, t0, now: t0 };
    sim.drain();
    sim.step(Event::HubUp {
        door_name: "Front door".into(),
        ice_servers: vec![stun()],
    });
    sim
}

fn view_media(sim: &mut Sim, call: &CallId, n: u32, event: SessionMediaEvent) -> Vec<Action> {
    sim.step(Event::Media(MediaEvent {
        call_id: call.clone(),
        kind: MediaEventKind::Session(view_id(n), event),
    }))
}

/// Phones 1..=n view the idle door, each connected.
fn viewing(limits: ViewLimits, n: u32) -> Sim {
    let mut sim = door_with(limits);
    for v in 1..=n {
        sim.hub(open_view(v));
        let offer = format!("v=0 view {v}");
        let actions = view_media(
            &mut sim,
            &host(),
            v,
            SessionMediaEvent::OfferReady(offer.clone()),
        );
        assert!(
            actions.contains(&Action::Send(DoorToHub::SessionOffer {
                session_id: view_id(v),
                sdp: offer
            })),
            "{actions:?}"
        );
        view_media(&mut sim, &host(), v, SessionMediaEvent::Connected);
    }
    sim
}

#[test]
fn an_idle_door_starts_its_camera_for_a_view_and_shows_viewing_until_the_last_one_leaves() {
    let mut sim = door_with(ViewLimits::default());
    let actions = sim.hub(open_view(1));
    assert_eq!(
        actions,
        vec![
            Action::StartMedia {
                call_id: host(),
                ice_servers: vec![stun()]
            },
            Action::OpenPreview {
                call_id: host(),
                session_id: view_id(1)
            },
            Action::SetLed(LedState::Viewing),
        ],
        "video only by default: no DoorAudio, never OpenTalk"
    );
    let status = sim.door.status();
    assert_eq!((status.viewers, status.led), (1, Some(LedState::Viewing)));
    assert_eq!(status.phase, CallPhase::Idle);
    // A second viewer joins the same pipeline (one encoder for all).
    assert_eq!(
        sim.hub(open_view(2)),
        vec![Action::OpenPreview {
            call_id: host(),
            session_id: view_id(2)
        }]
    );
    assert_eq!(
        sim.at(5).hub(HubToDoor::SessionClosed {
            session_id: view_id(1),
            reason: SessionEndReason::Closed
        }),
        vec![Action::ClosePreview(view_id(1))]
    );
    assert_eq!(
        sim.at(6).hub(HubToDoor::SessionClosed {
            session_id: view_id(2),
            reason: SessionEndReason::PeerGone
        }),
        vec![
            Action::ClosePreview(view_id(2)),
            Action::TearDownMedia(host()),
            Action::SetLed(LedState::Idle),
        ]
    );
    assert_eq!(sim.door.status().viewers, 0);
}

#[test]
fn viewers_past_the_limit_are_refused_and_a_view_ends_at_its_longest_length() {
    let limits = ViewLimits {
        max_sessions: 2,
        ..ViewLimits::default()
    };
    let mut sim = viewing(limits, 2);
    assert_eq!(
        sim.hub(open_view(3)),
        vec![closed_at_hub(3, SessionEndReason::Limit)]
    );
    // The second viewer's keyframe (rate-limited) first, then the longest view.
    sim.at(1).step(Event::Deadline);
    assert_eq!(sim.door.next_deadline(), Some(sim.t0 + DEFAULT_MAX_VIEW));
    sim.now = sim.t0 + DEFAULT_MAX_VIEW;
    let actions = sim.step(Event::Deadline);
    assert_eq!(
        actions,
        vec![
            Action::ClosePreview(view_id(1)),
            closed_at_hub(1, SessionEndReason::TimeLimit),
            Action::ClosePreview(view_id(2)),
            closed_at_hub(2, SessionEndReason::TimeLimit),
            Action::TearDownMedia(host()),
            Action::SetLed(LedState::Idle),
        ]
    );
    assert_eq!(sim.door.next_deadline(), None);
}

#[test]
fn door_audio_goes_to_viewers_only_where_the_config_allows_it() {
    let limits = ViewLimits {
        door_audio: true,
        ..ViewLimits::default()
    };
    let mut sim = door_with(limits);
    let actions = sim.hub(open_view(1));
    assert!(
        actions.contains(&Action::DoorAudio {
            session_id: view_id(1),
            on: true
        }),
        "{actions:?}"
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::OpenTalk(_))));
}

#[test]
fn a_press_during_a_view_rings_as_usual_and_the_call_takes_the_views_pipeline() {
    let mut sim = viewing(ViewLimits::default(), 1);
    // The view pipeline's own webrtcbin made its offer: kept for a press.
    assert!(sim
        .media_of(&host(), MediaEventKind::OfferReady("v=0 door".into()))
        .is_empty());
    let actions = sim.at(10).press();
    assert!(
        actions.contains(&Action::AdoptMedia {
            from: host(),
            call_id: id(1)
        }),
        "{actions:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StartMedia { .. })),
        "no second camera pipeline: {actions:?}"
    );
    assert!(actions.contains(&Action::Send(DoorToHub::Ring { call_id: id(1) })));
    assert!(actions.contains(&Action::SetLed(LedState::Ringing)));
    // The kept offer is the call's: ICE starts with the ring's servers.
    let actions = sim.hub(ringing(1, Some(vec![turn("u1")])));
    assert_eq!(
        actions,
        vec![Action::StartIce {
            call_id: id(1),
            offer: "v=0 door".into(),
            servers: vec![turn("u1")]
        }]
    );
    // The pipeline's events now name the call.
    let actions = sim.media_of(&host(), candidate(1));
    assert!(actions.is_empty(), "buffered until answered: {actions:?}");
}

#[test]
fn a_viewer_answers_in_its_view_and_the_other_viewer_keeps_video_only() {
    let limits = ViewLimits {
        door_audio: true,
        ..ViewLimits::default()
    };
    let mut sim = viewing(limits, 2);
    sim.at(10).press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    let actions = sim.at(12).hub(HubToDoor::AnsweredInSession {
        call_id: id(1),
        session_id: view_id(1),
        phone_id: PhoneId::new("p-1"),
        may_unlock: true,
    });
    assert!(
        actions.contains(&Action::OpenTalk(view_id(1))),
        "{actions:?}"
    );
    assert!(
        actions.contains(&Action::DoorAudio {
            session_id: view_id(2),
            on: false
        }),
        "only the answering phone hears the visitor: {actions:?}"
    );
    assert!(
        !actions.iter().any(|a| matches!(a, Action::ClosePreview(_))
            || matches!(a, Action::OpenTalk(s) if *s == view_id(2))),
        "the other view stays open, without talk: {actions:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Send(DoorToHub::SdpOffer { .. }))),
        "no new offer: the view is the call"
    );
    // Already connected: the call is up at once.
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    // The longest view does not cut the call; the other view still ends at its own.
    sim.now = sim.t0 + DEFAULT_MAX_VIEW;
    let actions: Vec<Action> = sim
        .step(Event::Deadline)
        .into_iter()
        .filter(|a| !matches!(a, Action::RequestKeyframe(_)))
        .collect();
    assert_eq!(
        actions,
        vec![
            Action::ClosePreview(view_id(2)),
            closed_at_hub(2, SessionEndReason::TimeLimit),
        ]
    );
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    // The viewer hangs up: its view ends with the call, the hub hears of it.
    let actions = sim.hub(HubToDoor::HangUp {
        call_id: id(1),
        reason: doorbell_protocol::HangUpReason::Normal,
    });
    assert!(
        actions.contains(&closed_at_hub(1, SessionEndReason::CallEnded)),
        "{actions:?}"
    );
    assert!(
        actions.contains(&Action::TearDownMedia(id(1))),
        "{actions:?}"
    );
    assert!(
        actions.contains(&Action::SetLed(LedState::Idle)),
        "{actions:?}"
    );
    assert_eq!(sim.door.status().viewers, 0);
}

#[test]
fn a_view_during_a_call_joins_its_pipeline_and_ends_with_it() {
    let mut sim = door_with(ViewLimits::default());
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    assert_eq!(
        sim.hub(open_view(1)),
        vec![Action::OpenPreview {
            call_id: id(1),
            session_id: view_id(1)
        }],
        "the ringing LED stays"
    );
    let actions = sim.at(30).step(Event::Deadline);
    assert!(
        actions.contains(&closed_at_hub(1, SessionEndReason::CallEnded)),
        "{actions:?}"
    );
}

#[test]
fn views_end_without_a_word_when_the_hub_is_lost() {
    let mut sim = viewing(ViewLimits::default(), 1);
    let actions = sim.step(Event::HubLost);
    assert!(actions.contains(&Action::ClosePreview(view_id(1))));
    assert!(actions.contains(&Action::TearDownMedia(host())));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Send(_))),
        "{actions:?}"
    );
}

impl Sim {
    fn media_of(&mut self, call: &CallId, kind: MediaEventKind) -> Vec<Action> {
        self.step(Event::Media(MediaEvent {
            call_id: call.clone(),
            kind,
        }))
    }
}

#[test]
fn a_plain_answer_during_a_view_offers_the_kept_offer_and_leaves_the_views_open() {
    let mut sim = viewing(ViewLimits::default(), 1);
    sim.media_of(&host(), MediaEventKind::OfferReady("v=0 door".into()));
    sim.at(10).press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    let actions = sim.at(11).hub(answered(1, vec![turn("u1")]));
    assert!(
        actions.contains(&offer_sent("v=0 door")),
        "the view pipeline's own webrtcbin is the call's: {actions:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ClosePreview(_) | Action::OpenTalk(_))),
        "the view stays a view, without talk: {actions:?}"
    );
    // The call's media connects through the adopted pipeline (its events still carry the
    // view pipeline's id).
    let actions = sim.media_of(&host(), MediaEventKind::Connected);
    assert!(
        actions.contains(&Action::SetLed(LedState::InCall)),
        "{actions:?}"
    );
}

#[test]
fn a_view_pipeline_that_cannot_start_ends_its_views_and_shows_the_fault() {
    let mut sim = door_with(ViewLimits::default());
    sim.hub(open_view(1));
    let actions = sim.step(Event::MediaStartFailed(host()));
    assert_eq!(
        actions,
        vec![
            Action::ClosePreview(view_id(1)),
            closed_at_hub(1, SessionEndReason::Failed),
            Action::TearDownMedia(host()),
            Action::SetLed(LedState::Fault),
        ]
    );
    assert_eq!(sim.door.status().viewers, 0);
}
