use doorbell_protocol::{Access, PhoneId, PhoneToHub, Role};

use super::*;
use crate::router::test_support::{
    call, closed_at_door, closed_at_phone, door_id, error_code, now, ring, setup, to, A, B, DOOR,
};

/// The session the door was asked to open for `out`'s `open_view`.
fn opened(out: &[Out]) -> SessionId {
    out.iter()
        .find_map(|o| match o {
            Out::Door(DOOR, HubToDoor::OpenView { session_id, .. }) => Some(session_id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no open_view to the door in {out:?}"))
}

fn view(r: &mut Router, conn: ConnId) -> SessionId {
    let out = r.phone_message(now(), conn, PhoneToHub::View { door_id: door_id() });
    opened(&out)
}

fn offer(r: &mut Router, session_id: &SessionId) -> Vec<Out> {
    r.door_message(
        now(),
        DOOR,
        DoorToHub::SessionOffer {
            session_id: session_id.clone(),
            sdp: "v=0".into(),
        },
    )
}

#[test]
fn a_view_is_relayed_to_its_phone_and_recorded_with_who_viewed_once() {
    let mut r = setup();
    let a = view(&mut r, A);
    let out = offer(&mut r, &a);
    assert!(
        out.iter().any(|o| matches!(o, Out::Phone(A, HubToPhone::ViewOffer { session_id, door_id: d, .. }) if *session_id == a && *d == door_id())),
        "{out:?}"
    );
    let viewed: Vec<&RouterEvent> = out
        .iter()
        .filter_map(|o| match o {
            Out::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(viewed.len(), 1, "{out:?}");
    assert_eq!(viewed[0].kind, crate::store::EventKind::View);
    assert_eq!(viewed[0].phone_id, Some(PhoneId::new("p-a")));
    // A second offer (a renegotiation) is not a second view.
    let out = offer(&mut r, &a);
    assert!(!out.iter().any(|o| matches!(o, Out::Event(_))), "{out:?}");
    // The phone's answer reaches the door; B cannot inject into A's view.
    let out = r.phone_message(
        now(),
        A,
        PhoneToHub::SessionAnswer {
            session_id: a.clone(),
            sdp: "v=0".into(),
        },
    );
    assert_eq!(to(&out, DOOR).len(), 1, "{out:?}");
    let out = r.phone_message(
        now(),
        B,
        PhoneToHub::SessionAnswer {
            session_id: a.clone(),
            sdp: "v=0".into(),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::UnknownCall));
    // A second view from the same connection is refused.
    let out = r.phone_message(now(), A, PhoneToHub::View { door_id: door_id() });
    assert_eq!(error_code(&out), Some(ErrorCode::InvalidState));
}

#[test]
fn a_phone_without_may_view_gets_forbidden_and_the_door_hears_nothing() {
    let mut r = setup();
    r.phone_connected(
        now(),
        30,
        PhoneId::new("p-guest"),
        vec![(door_id(), "Front".into())],
        [(
            door_id(),
            Access {
                role: Role::Member,
                may_unlock: true,
                may_view: false,
                until_ms: None,
            },
        )]
        .into(),
    );
    let out = r.phone_message(now(), 30, PhoneToHub::View { door_id: door_id() });
    assert_eq!(error_code(&out), Some(ErrorCode::Forbidden));
    assert!(to(&out, DOOR).is_empty(), "{out:?}");
}

#[test]
fn a_viewer_answers_a_ring_in_its_view_and_other_views_stay_open() {
    let mut r = setup();
    let a = view(&mut r, A);
    let b = view(&mut r, B);
    offer(&mut r, &a);
    offer(&mut r, &b);
    ring(&mut r);
    let out = r.phone_message(
        now(),
        A,
        PhoneToHub::AnswerInSession {
            call_id: call(),
            session_id: a.clone(),
        },
    );
    assert!(
        out.iter().any(|o| matches!(o, Out::Door(DOOR, HubToDoor::AnsweredInSession { session_id, .. }) if *session_id == a)),
        "{out:?}"
    );
    assert!(
        !out.iter()
            .any(|o| matches!(o, Out::Phone(B, HubToPhone::SessionClosed { .. }))),
        "B's view stays open (video only): {out:?}"
    );
    // B's view still relays.
    let out = r.door_message(
        now(),
        DOOR,
        DoorToHub::CloseSession {
            session_id: b.clone(),
            reason: SessionEndReason::TimeLimit,
        },
    );
    assert_eq!(
        out,
        vec![closed_at_phone(B, b, SessionEndReason::TimeLimit)]
    );
}

#[test]
fn views_end_when_either_side_goes_away() {
    let mut r = setup();
    let a = view(&mut r, A);
    let out = r.disconnected(now(), A);
    assert!(
        out.contains(&closed_at_door(a, SessionEndReason::PeerGone)),
        "{out:?}"
    );
    let b = view(&mut r, B);
    let out = r.disconnected(now(), DOOR);
    assert!(
        out.contains(&closed_at_phone(B, b, SessionEndReason::PeerGone)),
        "{out:?}"
    );
    let out = r.phone_message(now(), B, PhoneToHub::View { door_id: door_id() });
    assert_eq!(
        error_code(&out),
        Some(ErrorCode::InvalidState),
        "door offline"
    );
}
