//! Scenario tests of the door's pins: only the certificate pinned at pairing gets a call, a
//! preview or an unlock; the hub can take unlock permission away, never grant it.

use super::pins::Pins;
use super::scenarios::*;
use super::*;
use doorbell_protocol::control::{ControlErrorCode, DoorToPhone};
use doorbell_protocol::{HangUpReason, PhoneId, SessionEndReason};

const PINNED: &str = "3B:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01";
const OTHER: &str = "00:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01";
const UNLOCK: &str = r#"{"version":1,"type":"unlock","request_id":5}"#;

fn answer_sdp(fp: &str) -> String {
    format!("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 {fp}\r\n")
}

/// A ringing door that pinned phone p-1 (with the door's own unlock grant `may_unlock`),
/// answered by p-1, its offer sent.
fn answered_by_p1(may_unlock: bool) -> Sim {
    let mut sim = Sim::online();
    sim.step(Event::PinsChanged(Pins::new([(
        PhoneId::new("p-1"),
        PINNED.into(),
        may_unlock,
    )])));
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    sim.media(1, MediaEventKind::OfferReady("v=0 offer".into()));
    sim.at(2).hub(answered(1, vec![]));
    sim
}

fn sdp_answer(fp: &str) -> HubToDoor {
    HubToDoor::SdpAnswer {
        call_id: id(1),
        sdp: answer_sdp(fp),
    }
}

#[test]
fn the_pinned_certificate_gets_its_call_and_unlocks() {
    let mut sim = answered_by_p1(true);
    assert_eq!(
        sim.hub(sdp_answer(PINNED)),
        vec![Action::SetAnswer {
            call_id: id(1),
            sdp: answer_sdp(PINNED)
        }]
    );
    sim.at(3).media(1, MediaEventKind::Connected);
    let actions = sim.media(1, MediaEventKind::ControlMessage(UNLOCK.into()));
    assert_eq!(
        actions,
        vec![Action::PulseStrike {
            call_id: id(1),
            request_id: 5
        }]
    );
}

#[test]
fn another_certificate_ends_the_call_without_media_or_unlock() {
    let mut sim = answered_by_p1(true);
    let actions = sim.hub(sdp_answer(OTHER));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SetAnswer { .. })),
        "{actions:?}"
    );
    assert!(
        actions.contains(&Action::Send(DoorToHub::HangUp {
            call_id: id(1),
            reason: HangUpReason::Failed
        })),
        "{actions:?}"
    );
    assert_eq!(ended(&actions), Some(Outcome::Failed));
    assert_eq!(sim.door.status().unlocks, 0);
}

#[test]
fn an_unpinned_phone_is_refused_even_with_the_hubs_permission() {
    let mut sim = Sim::online();
    sim.step(Event::PinsChanged(Pins::default()));
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    sim.media(1, MediaEventKind::OfferReady("v=0 offer".into()));
    sim.at(2).hub(answered(1, vec![]));
    let actions = sim.hub(sdp_answer(PINNED));
    assert_eq!(ended(&actions), Some(Outcome::Failed), "{actions:?}");
}

#[test]
fn the_doors_own_grant_is_needed_too() {
    // The hub says p-1 may unlock; the door granted it no unlock at pairing.
    let mut sim = answered_by_p1(false);
    sim.hub(sdp_answer(PINNED));
    sim.at(3).media(1, MediaEventKind::Connected);
    let actions = sim.media(1, MediaEventKind::ControlMessage(UNLOCK.into()));
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Reply {
                message: DoorToPhone::Error {
                    code: ControlErrorCode::NotAllowed,
                    ..
                },
                ..
            }]
        ),
        "{actions:?}"
    );
}

#[test]
fn a_preview_from_an_unpinned_certificate_is_closed() {
    let mut sim = Sim::online();
    sim.step(Event::PinsChanged(Pins::new([(
        PhoneId::new("p-1"),
        PINNED.into(),
        true,
    )])));
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    for (n, phone) in [(1, "p-1"), (2, "p-2")] {
        sim.hub(HubToDoor::OpenSession {
            call_id: id(1),
            session_id: SessionId::new(format!("s-{n}")),
            phone_id: PhoneId::new(phone),
            ice_servers: vec![],
        });
    }
    // The pinned phone's preview answer is applied.
    assert_eq!(
        sim.hub(HubToDoor::SessionAnswer {
            session_id: SessionId::new("s-1"),
            sdp: answer_sdp(PINNED),
        }),
        vec![Action::SetPreviewAnswer {
            session_id: SessionId::new("s-1"),
            sdp: answer_sdp(PINNED)
        }]
    );
    // p-2 was never pinned (even with p-1's certificate named, it is not p-2's pin).
    assert_eq!(
        sim.hub(HubToDoor::SessionAnswer {
            session_id: SessionId::new("s-2"),
            sdp: answer_sdp(PINNED),
        }),
        vec![
            Action::ClosePreview(SessionId::new("s-2")),
            Action::Send(DoorToHub::CloseSession {
                session_id: SessionId::new("s-2"),
                reason: SessionEndReason::Failed
            })
        ]
    );
}
