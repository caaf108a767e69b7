//! Scenario tests of preview sessions (session.rs).

use doorbell_protocol::{DoorToHub, IceCandidate, PhoneId};

use super::*;
use crate::router::test_support::{
    call, closed_at_door, closed_at_phone, error_code, now, ring, setup, to, A, B, DOOR,
};

/// The session the door was asked to open for `out`'s `open_session`.
fn opened(out: &[Out]) -> SessionId {
    out.iter()
        .find_map(|o| match o {
            Out::Door(DOOR, HubToDoor::OpenSession { session_id, .. }) => Some(session_id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no open_session to the door in {out:?}"))
}

fn preview(r: &mut Router, conn: ConnId) -> SessionId {
    opened(&r.phone_message(now(), conn, PhoneToHub::Preview { call_id: call() }))
}

fn candidate() -> IceCandidate {
    IceCandidate {
        candidate: "candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into(),
        sdp_m_line_index: 0,
    }
}

#[test]
fn a_ringing_phone_gets_a_session_relayed_both_ways_and_only_its_own() {
    let mut r = setup();
    ring(&mut r);
    let out = r.phone_message(now(), A, PhoneToHub::Preview { call_id: call() });
    assert!(
        matches!(&out[..], [Out::Door(DOOR, HubToDoor::OpenSession { phone_id, .. })] if *phone_id == PhoneId::new("p-a")),
        "{out:?}"
    );
    let a = opened(&out);
    let out = r.door_message(
        now(),
        DOOR,
        DoorToHub::SessionOffer {
            session_id: a.clone(),
            sdp: "v=0".into(),
        },
    );
    assert_eq!(
        out,
        vec![Out::Phone(
            A,
            HubToPhone::SessionOffer {
                call_id: call(),
                session_id: a.clone(),
                sdp: "v=0".into()
            }
        )]
    );
    let out = r.phone_message(
        now(),
        A,
        PhoneToHub::SessionIce {
            session_id: a.clone(),
            candidate: candidate(),
        },
    );
    assert_eq!(
        out,
        vec![Out::Door(
            DOOR,
            HubToDoor::SessionIce {
                session_id: a.clone(),
                candidate: candidate()
            }
        )]
    );
    // B may not answer or inject into A's session.
    let out = r.phone_message(
        now(),
        B,
        PhoneToHub::SessionAnswer {
            session_id: a.clone(),
            sdp: "v=0".into(),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
    assert!(to(&out, DOOR).is_empty());
    let out = r.phone_message(
        now(),
        B,
        PhoneToHub::AnswerInSession {
            call_id: call(),
            session_id: a,
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
    assert!(
        to(&out, DOOR).is_empty(),
        "B's bad answer must not answer the call"
    );
}

#[test]
fn answering_in_a_session_upgrades_it_and_ends_the_other_phones_sessions() {
    let mut r = setup();
    ring(&mut r);
    let a = preview(&mut r, A);
    let b = preview(&mut r, B);
    let out = r.phone_message(
        now(),
        B,
        PhoneToHub::AnswerInSession {
            call_id: call(),
            session_id: b.clone(),
        },
    );
    assert!(out.contains(&Out::Door(
        DOOR,
        HubToDoor::AnsweredInSession {
            call_id: call(),
            session_id: b.clone(),
            phone_id: PhoneId::new("p-b"),
            may_unlock: true,
        }
    )));
    assert!(
        !to(&out, DOOR).iter().any(|m| m.starts_with("Answered {")),
        "no plain answered (that would make the door offer again): {out:?}"
    );
    assert!(out.contains(&Out::Phone(
        A,
        HubToPhone::SessionClosed {
            session_id: a.clone(),
            reason: SessionEndReason::AnsweredElsewhere,
        }
    )));
    assert!(out.contains(&Out::Phone(
        A,
        HubToPhone::AnsweredElsewhere { call_id: call() }
    )));
    assert!(
        out.iter()
            .any(|o| matches!(o, Out::Event(e) if format!("{e:?}").contains("p-b"))),
        "the answer is recorded for history: {out:?}"
    );
    // B's session still relays (the call's ICE restarts, if any, go through it).
    let out = r.door_message(
        now(),
        DOOR,
        DoorToHub::SessionIce {
            session_id: b,
            candidate: candidate(),
        },
    );
    assert_eq!(to(&out, B).len(), 1, "{out:?}");
    // A's is gone.
    let out = r.door_message(
        now(),
        DOOR,
        DoorToHub::SessionIce {
            session_id: a,
            candidate: candidate(),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
}

#[test]
fn a_second_preview_or_one_after_declining_is_refused() {
    let mut r = setup();
    ring(&mut r);
    preview(&mut r, A);
    let out = r.phone_message(now(), A, PhoneToHub::Preview { call_id: call() });
    assert_eq!(error_code(&out), Some(ErrorCode::InvalidState));
    let b = preview(&mut r, B);
    let out = r.phone_message(now(), B, PhoneToHub::Decline { call_id: call() });
    assert!(
        out.contains(&closed_at_door(b, SessionEndReason::Closed)),
        "declining closes the phone's session at the door: {out:?}"
    );
    let out = r.phone_message(now(), B, PhoneToHub::Preview { call_id: call() });
    assert_eq!(error_code(&out), Some(ErrorCode::InvalidState));
}

#[test]
fn a_phone_that_goes_away_closes_its_session_at_the_door() {
    let mut r = setup();
    ring(&mut r);
    let a = preview(&mut r, A);
    let out = r.disconnected(now(), A);
    assert!(
        out.contains(&closed_at_door(a, SessionEndReason::PeerGone)),
        "{out:?}"
    );
}

#[test]
fn close_session_from_either_side_reaches_the_other() {
    let mut r = setup();
    ring(&mut r);
    let a = preview(&mut r, A);
    let out = r.phone_message(
        now(),
        A,
        PhoneToHub::CloseSession {
            session_id: a.clone(),
        },
    );
    assert_eq!(out, vec![closed_at_door(a, SessionEndReason::Closed)]);
    let b = preview(&mut r, B);
    let out = r.door_message(
        now(),
        DOOR,
        DoorToHub::CloseSession {
            session_id: b.clone(),
            reason: SessionEndReason::Limit,
        },
    );
    assert_eq!(out, vec![closed_at_phone(B, b, SessionEndReason::Limit)]);
}

#[test]
fn session_ids_stay_within_the_protocols_id_limit_for_the_longest_call_ids() {
    let longest = CallId::new("c".repeat(doorbell_protocol::limits::MAX_ID_LEN));
    let id = session_id_for(u64::MAX, &longest);
    assert!(
        doorbell_protocol::limits::check_id(id.as_str()).is_ok(),
        "{id}"
    );
    assert_ne!(id, session_id_for(u64::MAX, &CallId::new("d".repeat(64))));
    assert_eq!(session_id_for(7, &CallId::new("c-1")).as_str(), "s-7-c-1");
}
