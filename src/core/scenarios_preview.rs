//! Scenario tests of preview sessions and the instant answer, in virtual time.

use super::preview::{KEYFRAME_MIN_INTERVAL, MAX_PREVIEWS};
use super::scenarios::*;
use super::*;
use doorbell_protocol::{HangUpReason, PhoneId, SessionEndReason};

fn session(n: u32) -> SessionId {
    SessionId::new(format!("s-{n}"))
}

fn open_session(n: u32) -> HubToDoor {
    HubToDoor::OpenSession {
        call_id: id(1),
        session_id: session(n),
        phone_id: PhoneId::new(format!("p-{n}")),
        ice_servers: vec![turn(&format!("door-{n}"))],
    }
}

fn session_media(sim: &mut Sim, n: u32, event: SessionMediaEvent) -> Vec<Action> {
    sim.media(1, MediaEventKind::Session(session(n), event))
}

fn closed_at_hub(n: u32, reason: SessionEndReason) -> Action {
    Action::Send(DoorToHub::CloseSession {
        session_id: session(n),
        reason,
    })
}

fn is_talk(action: &Action) -> bool {
    matches!(action, Action::OpenTalk(_))
}

/// A ringing door whose phones 1..=n each watch a connected preview.
fn ringing_with_previews(n: u32) -> (Sim, Vec<Action>) {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    sim.media(1, MediaEventKind::OfferReady("v=0 offer".into()));
    let mut seen = Vec::new();
    for s in 1..=n {
        let actions = sim.hub(open_session(s));
        assert_eq!(
            actions,
            vec![Action::OpenPreview {
                call_id: id(1),
                session_id: session(s)
            }]
        );
        seen.extend(actions);
        let offer = format!("v=0 preview {s}");
        let actions = session_media(&mut sim, s, SessionMediaEvent::OfferReady(offer.clone()));
        assert_eq!(
            actions,
            vec![
                Action::StartPreviewIce {
                    session_id: session(s),
                    offer: offer.clone(),
                    servers: vec![turn(&format!("door-{s}"))],
                },
                Action::Send(DoorToHub::SessionOffer {
                    session_id: session(s),
                    sdp: offer,
                }),
            ],
            "the phone asked: its offer goes out at once"
        );
        seen.extend(actions);
        let actions = session_media(
            &mut sim,
            s,
            SessionMediaEvent::LocalCandidate {
                mline: 0,
                candidate: "candidate:1".into(),
            },
        );
        assert!(matches!(
            &actions[..],
            [Action::Send(DoorToHub::SessionIce { .. })]
        ));
        seen.extend(actions);
        seen.extend(sim.hub(HubToDoor::SessionAnswer {
            session_id: session(s),
            sdp: "v=0 answer".into(),
        }));
        seen.extend(session_media(&mut sim, s, SessionMediaEvent::Connected));
    }
    (sim, seen)
}

#[test]
fn three_phones_preview_one_answers_in_its_session_without_a_new_offer() {
    let (mut sim, seen) = ringing_with_previews(3);
    assert!(
        !seen.iter().any(is_talk),
        "no audio may flow before Answer: {seen:?}"
    );
    // One encoder for all: the first viewer gets a keyframe at once, the next two joined
    // inside the rate limit and share one when it ends.
    let keyframes = seen
        .iter()
        .filter(|a| matches!(a, Action::RequestKeyframe(_)))
        .count();
    assert_eq!(keyframes, 1, "{seen:?}");
    assert_eq!(
        sim.door.next_deadline(),
        Some(sim.t0 + KEYFRAME_MIN_INTERVAL)
    );
    sim.now = sim.t0 + KEYFRAME_MIN_INTERVAL;
    assert_eq!(
        sim.step(Event::Deadline),
        vec![Action::RequestKeyframe(id(1))]
    );
    assert_eq!(
        sim.door.next_deadline(),
        Some(sim.t0 + RING),
        "ring timeout again"
    );

    let actions = sim.at(4).hub(HubToDoor::AnsweredInSession {
        call_id: id(1),
        session_id: session(2),
        phone_id: PhoneId::new("p-2"),
        may_unlock: true,
    });
    assert_eq!(
        actions,
        vec![
            // The hub already told phones 1 and 3 ("answered elsewhere").
            Action::ClosePreview(session(1)),
            Action::ClosePreview(session(3)),
            Action::OpenTalk(session(2)),
            // Already connected: the call is up at once.
            Action::RequestKeyframe(id(1)),
            Action::SetLed(LedState::InCall),
        ],
        "no sdp_offer: the session is the call"
    );
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    // The door hangs up: the session goes with the call.
    let actions = sim.at(60).step(Event::LocalHangUp);
    assert_eq!(
        actions[..3],
        [
            Action::Send(DoorToHub::HangUp {
                call_id: id(1),
                reason: HangUpReason::Normal
            }),
            Action::ClosePreview(session(2)),
            Action::TearDownMedia(id(1)),
        ]
    );
    assert_eq!(ended(&actions), Some(Outcome::Completed));
}

#[test]
fn a_session_answered_before_it_connected_becomes_the_call_when_it_does() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    sim.hub(open_session(1));
    let actions = sim.at(1).hub(HubToDoor::AnsweredInSession {
        call_id: id(1),
        session_id: session(1),
        phone_id: PhoneId::new("p-1"),
        may_unlock: true,
    });
    assert_eq!(actions, vec![Action::OpenTalk(session(1))]);
    assert_eq!(sim.door.status().phase, CallPhase::Connecting);
    let actions = session_media(&mut sim, 1, SessionMediaEvent::Connected);
    assert!(
        actions.contains(&Action::SetLed(LedState::InCall)),
        "{actions:?}"
    );
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    // The phone closes its session: that is its hang-up.
    let actions = sim.at(9).hub(HubToDoor::SessionClosed {
        session_id: session(1),
        reason: SessionEndReason::Closed,
    });
    assert_eq!(actions[0], Action::ClosePreview(session(1)));
    assert_eq!(ended(&actions), Some(Outcome::Completed));
}

#[test]
fn previews_past_the_limit_are_refused_with_a_reason() {
    let (mut sim, _) = ringing_with_previews(MAX_PREVIEWS as u32);
    let extra = MAX_PREVIEWS as u32 + 1;
    assert_eq!(
        sim.hub(open_session(extra)),
        vec![closed_at_hub(extra, SessionEndReason::Limit)]
    );
}

#[test]
fn a_plain_answer_closes_every_preview_and_offers_as_before() {
    let (mut sim, _) = ringing_with_previews(2);
    let actions = sim.at(3).hub(HubToDoor::Answered {
        call_id: id(1),
        phone_id: PhoneId::new("p-2"),
        ice_servers: vec![],
        may_unlock: true,
    });
    assert_eq!(
        actions[..3],
        [
            Action::ClosePreview(session(1)),
            // The hub keeps only the answering phone's session: that one is closed there.
            Action::ClosePreview(session(2)),
            closed_at_hub(2, SessionEndReason::Closed),
        ]
    );
    assert!(actions.contains(&offer_sent("v=0 offer")), "{actions:?}");
    assert!(!actions.iter().any(is_talk));
}

#[test]
fn a_preview_that_fails_or_arrives_too_late_is_closed_at_the_hub() {
    let (mut sim, _) = ringing_with_previews(1);
    assert_eq!(
        sim.step(Event::PreviewFailed(session(1))),
        vec![
            Action::ClosePreview(session(1)),
            closed_at_hub(1, SessionEndReason::Failed)
        ]
    );
    // A failed session cannot be answered in: the door answers the old way.
    let actions = sim.hub(HubToDoor::AnsweredInSession {
        call_id: id(1),
        session_id: session(1),
        phone_id: PhoneId::new("p-1"),
        may_unlock: true,
    });
    assert!(actions.contains(&offer_sent("v=0 offer")), "{actions:?}");
    // Once answered, a new preview is refused.
    assert_eq!(
        sim.hub(open_session(2)),
        vec![closed_at_hub(2, SessionEndReason::CallEnded)]
    );
}

#[test]
fn the_ring_timeout_tears_every_preview_down() {
    let (mut sim, _) = ringing_with_previews(2);
    sim.now = sim.t0 + RING;
    let actions = sim.step(Event::Deadline);
    assert!(actions.contains(&Action::ClosePreview(session(1))));
    assert!(actions.contains(&Action::ClosePreview(session(2))));
    assert_eq!(ended(&actions), Some(Outcome::Missed));
    assert_eq!(sim.door.next_deadline(), None);
}

#[test]
fn only_the_session_answered_in_may_unlock() {
    let (mut sim, _) = ringing_with_previews(2);
    let unlock = r#"{"version":1,"type":"unlock","request_id":7}"#;
    sim.hub(HubToDoor::AnsweredInSession {
        call_id: id(1),
        session_id: session(2),
        phone_id: PhoneId::new("p-2"),
        may_unlock: true,
    });
    // A message phone 1 sent before it was closed, still in the queue: not the caller's.
    let actions = session_media(
        &mut sim,
        1,
        SessionMediaEvent::ControlMessage(unlock.into()),
    );
    assert!(actions.is_empty(), "{actions:?}");
    let actions = session_media(
        &mut sim,
        2,
        SessionMediaEvent::ControlMessage(unlock.into()),
    );
    assert_eq!(
        actions,
        vec![Action::PulseStrike {
            call_id: id(1),
            request_id: 7
        }]
    );
}

#[test]
fn a_phone_without_unlock_permission_answering_in_its_session_cannot_unlock() {
    use doorbell_protocol::control::{ControlErrorCode, DoorToPhone};
    let (mut sim, _) = ringing_with_previews(1);
    sim.hub(HubToDoor::AnsweredInSession {
        call_id: id(1),
        session_id: session(1),
        phone_id: PhoneId::new("p-1"),
        may_unlock: false,
    });
    let actions = session_media(
        &mut sim,
        1,
        SessionMediaEvent::ControlMessage(r#"{"version":1,"type":"unlock","request_id":9}"#.into()),
    );
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Reply {
                message: DoorToPhone::Error {
                    code: ControlErrorCode::NotAllowed,
                    request_id: Some(9),
                    ..
                },
                ..
            }]
        ),
        "{actions:?}"
    );
    assert_eq!(sim.door.status().unlocks, 0);
}
