//! Scenario tests for the edge cases the end-to-end runs found (see `git log -- src/daemon.rs`).

use super::scenarios::*;
use super::*;
use doorbell_protocol::{ErrorBody, ErrorCode, HangUpReason, RingEndReason};

#[test]
fn offer_ready_before_the_call_ice_servers_waits_for_them() {
    let mut sim = Sim::online();
    sim.press();
    // The offer (with negotiated caps) is ready before the hub's `ringing`.
    assert!(sim
        .media(1, MediaEventKind::OfferReady("v=0 offer".into()))
        .is_empty());
    // `ringing` brings this call's TURN credentials: ICE starts with them, nothing is sent.
    assert_eq!(
        sim.hub(ringing(1, Some(vec![turn("u1")]))),
        vec![start_ice(vec![turn("u1")])]
    );
    assert_eq!(
        sim.at(2).hub(answered(1, vec![])),
        vec![offer_sent("v=0 offer")]
    );
}

#[test]
fn answered_before_the_offer_is_ready_sends_it_when_it_is() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    // A fast phone: answered while the encoder still waits for caps. Nothing to send yet.
    assert!(sim.at(1).hub(answered(1, vec![])).is_empty());
    assert_eq!(sim.door.status().phase, CallPhase::Connecting);
    // Candidates cannot exist before the offer is set, but the gate still holds any.
    assert_eq!(
        sim.media(1, MediaEventKind::OfferReady("v=0 offer".into())),
        vec![start_ice(vec![turn("u1")]), offer_sent("v=0 offer")]
    );
    assert_eq!(sim.media(1, candidate(1)), vec![sent_ice(1)]);
}

#[test]
fn ice_servers_from_answered_for_an_older_hub() {
    let mut sim = Sim::online();
    sim.press();
    // An older hub's `ringing` has no ice_servers: ICE must not start without them.
    assert!(sim.hub(ringing(1, None)).is_empty());
    assert!(sim
        .media(1, MediaEventKind::OfferReady("v=0 offer".into()))
        .is_empty());
    assert!(sim.media(1, candidate(1)).is_empty());
    // Its `answered` carries them: ICE starts and the offer (with what was buffered) goes
    // out at once.
    assert_eq!(
        sim.at(2).hub(answered(1, vec![turn("u2")])),
        vec![
            start_ice(vec![turn("u2")]),
            offer_sent("v=0 offer"),
            sent_ice(1)
        ]
    );
}

#[test]
fn the_first_ice_servers_win() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("from-ringing")])));
    // A duplicate `ringing` (or the `answered` copy) does not restart or change ICE.
    assert!(sim.hub(ringing(1, Some(vec![turn("again")]))).is_empty());
    sim.hub(answered(1, vec![turn("from-answered")]));
    assert_eq!(
        sim.media(1, MediaEventKind::OfferReady("v=0 offer".into())),
        vec![
            start_ice(vec![turn("from-ringing")]),
            offer_sent("v=0 offer")
        ]
    );
}

#[test]
fn ice_servers_for_an_old_call_are_ignored() {
    let mut sim = Sim::online();
    sim.press();
    sim.step(Event::LocalHangUp);
    sim.press();
    assert!(sim.hub(ringing(1, Some(vec![turn("old")]))).is_empty());
    assert_eq!(
        sim.door.status().phones_ringing,
        0,
        "not this call's phones"
    );
    assert!(sim
        .media(2, MediaEventKind::OfferReady("v=0 offer".into()))
        .is_empty());
}

#[test]
fn hub_lost_mid_call_keeps_it_and_its_restart_does_not_end_it() {
    let mut sim = in_call();
    assert!(sim.at(10).step(Event::HubLost).is_empty());
    // The hub comes back (a restart): it knows nothing of the call, the call goes on.
    assert_eq!(
        sim.at(12).step(Event::HubUp {
            door_name: "Front door".into(),
            ice_servers: vec![stun()]
        }),
        // Only the snapshots an earlier reconnection may have left behind.
        vec![Action::UploadMissedSnapshots]
    );
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    // The phone leaves: only the closed data channel says so, and it ends the call.
    let actions = sim.at(20).media(1, MediaEventKind::ControlClosed);
    assert_eq!(ended(&actions), Some(Outcome::Completed));
    assert_eq!(sim.door.status().phase, CallPhase::Idle);
}

#[test]
fn data_channel_closed_with_the_hub_present_waits_for_its_hang_up() {
    let mut sim = in_call();
    // The hub's `hang_up` races this event; with a hub that followed the call, it decides.
    assert!(sim.media(1, MediaEventKind::ControlClosed).is_empty());
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    let actions = sim.hub(HubToDoor::HangUp {
        call_id: id(1),
        reason: HangUpReason::Normal,
    });
    assert_eq!(ended(&actions), Some(Outcome::Completed));
}

#[test]
fn hub_lost_while_ringing_ends_the_call_and_keeps_an_unconfirmed_ring() {
    let mut sim = Sim::online();
    sim.press();
    let actions = sim.at(1).step(Event::HubLost);
    assert_eq!(ended(&actions), Some(Outcome::HubLost));
    assert!(actions.contains(&Action::TearDownMedia(id(1))));
    assert!(actions.contains(&Action::SaveMissedRings(vec![PRESSED_AT])));
    assert_eq!(
        actions.last(),
        Some(&Action::SetLed(LedState::HubUnreachable))
    );
    // Back online: the ring is reported as missed, and the file emptied first.
    let actions = sim.at(5).step(Event::HubUp {
        door_name: "Front door".into(),
        ice_servers: vec![],
    });
    assert_eq!(
        actions,
        vec![
            Action::SaveMissedRings(vec![]),
            Action::Send(DoorToHub::MissedRing { at_ms: PRESSED_AT }),
            Action::UploadMissedSnapshots,
            Action::SetLed(LedState::Idle),
        ]
    );
    assert_eq!(sim.door.status().missed_rings_reported, 1);
}

#[test]
fn hub_lost_while_connecting_fails_the_call_without_a_hang_up() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, None));
    sim.hub(answered(1, vec![turn("u1")]));
    let actions = sim.step(Event::HubLost);
    assert_eq!(ended(&actions), Some(Outcome::Failed));
    assert!(!actions.iter().any(|a| matches!(a, Action::Send(_))));
}

#[test]
fn press_while_the_hub_is_unreachable_chimes_and_is_reported_later() {
    let mut sim = Sim::offline(vec![1, 2]);
    assert_eq!(
        sim.door.status().missed_rings_pending,
        2,
        "saved by an earlier run"
    );
    assert_eq!(
        sim.press(),
        vec![
            Action::SaveMissedRings(vec![1, 2, PRESSED_AT]),
            Action::Chime,
            // A picture kept with the missed ring, uploaded once the hub is back.
            Action::TakeSnapshot(SnapshotOf::MissedRing(PRESSED_AT)),
        ]
    );
    assert_eq!(sim.door.status().phase, CallPhase::Idle);
    let actions = sim.step(Event::HubUp {
        door_name: "Porch".into(),
        ice_servers: vec![],
    });
    let reported: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(DoorToHub::MissedRing { at_ms }) => Some(*at_ms),
            _ => None,
        })
        .collect();
    assert_eq!(reported, vec![1, 2, PRESSED_AT], "oldest first");
    let upload = actions
        .iter()
        .position(|a| *a == Action::UploadMissedSnapshots)
        .expect("the kept snapshots are uploaded");
    assert!(
        actions[..upload]
            .iter()
            .filter(|a| matches!(a, Action::Send(DoorToHub::MissedRing { .. })))
            .count()
            == 3,
        "after every missed_ring is on its way: {actions:?}"
    );
    let status = sim.door.status();
    assert_eq!(
        (status.missed_rings_pending, status.missed_rings_reported),
        (0, 3)
    );
    assert_eq!(status.door_name, "Porch");
}

#[test]
fn a_session_that_cannot_start_cancels_the_ring_and_shows_a_fault() {
    let mut sim = Sim::online();
    let actions = sim.press();
    assert!(matches!(actions[1], Action::StartMedia { .. }));
    let actions = sim.step(Event::MediaStartFailed(id(1)));
    assert_eq!(
        actions,
        vec![
            Action::Send(DoorToHub::CancelRing {
                call_id: id(1),
                reason: RingEndReason::Cancelled
            }),
            Action::TearDownMedia(id(1)),
            Action::CallEnded {
                call_id: id(1),
                outcome: Outcome::Failed
            },
            Action::SetLed(LedState::Fault),
        ]
    );
    // The next session that starts clears the fault.
    sim.press();
    let actions = sim.step(Event::LocalHangUp);
    assert_eq!(actions.last(), Some(&Action::SetLed(LedState::Idle)));
}

#[test]
fn an_answer_that_is_not_sdp_fails_the_call() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(answered(1, vec![turn("u1")]));
    let actions = sim.hub(HubToDoor::SdpAnswer {
        call_id: id(1),
        sdp: "garbage".into(),
    });
    assert_eq!(
        actions,
        vec![Action::SetAnswer {
            call_id: id(1),
            sdp: "garbage".into()
        }]
    );
    let actions = sim.step(Event::AnswerRejected(id(1)));
    assert_eq!(
        actions[0],
        Action::Send(DoorToHub::HangUp {
            call_id: id(1),
            reason: HangUpReason::Failed
        })
    );
}

#[test]
fn a_refused_ring_ends_the_call() {
    let mut sim = Sim::online();
    sim.press();
    let actions = sim.hub(HubToDoor::Error(ErrorBody {
        code: ErrorCode::Busy,
        message: "another call".into(),
        call_id: Some(id(1)),
    }));
    assert_eq!(ended(&actions), Some(Outcome::Failed));
    // The same error about a call that is not ringing changes nothing.
    sim.press();
    sim.hub(answered(2, vec![]));
    assert!(sim
        .hub(HubToDoor::Error(ErrorBody {
            code: ErrorCode::Busy,
            message: "late".into(),
            call_id: Some(id(2)),
        }))
        .is_empty());
}

#[test]
fn illegal_and_stale_events_are_typed_errors_without_actions() {
    let mut sim = Sim::online();
    let now = sim.now;
    assert_eq!(
        sim.door.handle(now, Event::Hub(answered(9, vec![]))),
        Err(CallError::StaleCall(id(9)))
    );
    assert_eq!(
        sim.door.handle(now, Event::LocalHangUp),
        Err(CallError::InvalidTransition {
            input: "hang up",
            state: "idle"
        })
    );
    sim.press();
    assert_eq!(
        sim.door.handle(
            now,
            Event::Media(MediaEvent {
                call_id: id(1),
                kind: MediaEventKind::Connected
            })
        ),
        Err(CallError::InvalidTransition {
            input: "media connected",
            state: "ringing"
        })
    );
    assert!(sim.drain().is_empty(), "errors emit no actions");
    // Remote candidates reach only the current call's session.
    assert!(sim
        .hub(HubToDoor::Ice {
            call_id: id(9),
            candidate: IceCandidate {
                candidate: "candidate:x".into(),
                sdp_m_line_index: 0
            }
        })
        .is_empty());
}

#[test]
fn a_phone_the_hub_says_may_not_unlock_is_refused_and_the_strike_stays_shut() {
    use doorbell_protocol::control::{ControlErrorCode, DoorToPhone};
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    sim.media(1, MediaEventKind::OfferReady("v=0 offer".into()));
    let HubToDoor::Answered {
        call_id,
        phone_id,
        ice_servers,
        ..
    } = answered(1, vec![])
    else {
        unreachable!("answered() builds an answered")
    };
    sim.at(2).hub(HubToDoor::Answered {
        call_id,
        phone_id,
        ice_servers,
        may_unlock: false,
    });
    sim.at(3).media(1, MediaEventKind::Connected);
    let actions = sim.media(
        1,
        MediaEventKind::ControlMessage(r#"{"version":1,"type":"unlock","request_id":4}"#.into()),
    );
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Reply {
                message: DoorToPhone::Error {
                    code: ControlErrorCode::NotAllowed,
                    request_id: Some(4),
                    ..
                },
                ..
            }]
        ),
        "{actions:?}"
    );
    assert_eq!(sim.door.status().unlocks, 0);
}
