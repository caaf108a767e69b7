//! State-machine tests with virtual time: every instant is `t0 + offset`, nothing sleeps.

use super::*;

const RING: Duration = Duration::from_secs(30);
const CONNECT: Duration = Duration::from_secs(20);
const MAX_CALL: Duration = Duration::from_secs(600);

fn machine() -> (CallMachine, Instant) {
    let mut m = CallMachine::new(
        Timings {
            ring_timeout: RING,
            connect_timeout: CONNECT,
            max_call: MAX_CALL,
        },
        "c-test",
    );
    let t0 = Instant::now();
    m.handle(t0, Input::HubUp).unwrap();
    drain(&mut m);
    (m, t0)
}

fn drain(m: &mut CallMachine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn id(n: u64) -> CallId {
    CallId::new(format!("c-test-{n}"))
}

fn ended(actions: &[Action]) -> Option<Outcome> {
    actions.iter().find_map(|a| match a {
        Action::CallEnded { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

/// Press, answer and connect: returns the machine in call.
fn in_call() -> (CallMachine, Instant) {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    m.handle(t0 + Duration::from_secs(2), Input::Answered(id(1)))
        .unwrap();
    m.handle(t0 + Duration::from_secs(3), Input::MediaConnected(id(1)))
        .unwrap();
    drain(&mut m);
    (m, t0)
}

#[test]
fn press_rings_and_warms_media() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    assert_eq!(
        drain(&mut m),
        vec![
            Action::SendRing(id(1)),
            Action::PrepareMedia(id(1)),
            Action::SetLed(LedState::Ringing)
        ]
    );
    assert_eq!(m.state().name(), "ringing");
    assert_eq!(m.next_deadline(), Some(t0 + RING));
}

#[test]
fn full_call_then_remote_hang_up_returns_to_idle() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    drain(&mut m);
    m.handle(t0 + Duration::from_secs(5), Input::Answered(id(1)))
        .unwrap();
    assert_eq!(drain(&mut m), vec![Action::StartOffer(id(1))]);
    assert_eq!(
        m.next_deadline(),
        Some(t0 + Duration::from_secs(5) + CONNECT)
    );
    let t_media = t0 + Duration::from_secs(6);
    m.handle(t_media, Input::MediaConnected(id(1))).unwrap();
    assert_eq!(
        drain(&mut m),
        vec![
            Action::RequestKeyframe(id(1)),
            Action::SetLed(LedState::InCall)
        ]
    );
    assert_eq!(m.next_deadline(), Some(t_media + MAX_CALL));
    m.handle(t0 + Duration::from_secs(60), Input::RemoteHangUp(id(1)))
        .unwrap();
    let actions = drain(&mut m);
    assert!(actions.contains(&Action::TearDownMedia(id(1))));
    assert!(!actions.iter().any(|a| matches!(a, Action::SendHangUp(..))));
    assert_eq!(ended(&actions), Some(Outcome::Completed));
    assert_eq!(m.state(), &State::Idle);
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn ring_timeout_cancels_ring_and_counts_missed() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    drain(&mut m);
    // Just before the deadline nothing happens.
    m.handle_timeout(t0 + RING - Duration::from_millis(1));
    assert!(drain(&mut m).is_empty());
    m.handle_timeout(t0 + RING);
    let actions = drain(&mut m);
    assert_eq!(
        actions[0],
        Action::SendCancelRing(id(1), RingEndReason::Timeout)
    );
    assert!(actions.contains(&Action::TearDownMedia(id(1))));
    assert_eq!(ended(&actions), Some(Outcome::Missed));
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn everyone_declines() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    drain(&mut m);
    m.handle(t0, Input::RingEnded(id(1), RingEndReason::Declined))
        .unwrap();
    let actions = drain(&mut m);
    assert_eq!(ended(&actions), Some(Outcome::Declined));
    assert!(actions.contains(&Action::TearDownMedia(id(1))));
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn connect_timeout_hangs_up_as_failed() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    m.handle(t0, Input::Answered(id(1))).unwrap();
    drain(&mut m);
    m.handle_timeout(t0 + CONNECT);
    let actions = drain(&mut m);
    assert_eq!(actions[0], Action::SendHangUp(id(1), HangUpReason::Failed));
    assert_eq!(ended(&actions), Some(Outcome::Failed));
}

#[test]
fn max_call_length_ends_the_call() {
    let (mut m, t0) = in_call();
    m.handle_timeout(t0 + Duration::from_secs(3) + MAX_CALL);
    let actions = drain(&mut m);
    assert_eq!(actions[0], Action::SendHangUp(id(1), HangUpReason::Timeout));
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn local_hang_up_tells_the_phone() {
    let (mut m, t0) = in_call();
    m.handle(t0 + Duration::from_secs(10), Input::LocalHangUp)
        .unwrap();
    let actions = drain(&mut m);
    assert_eq!(actions[0], Action::SendHangUp(id(1), HangUpReason::Normal));
    assert!(actions.contains(&Action::TearDownMedia(id(1))));
}

#[test]
fn media_failure_in_call_hangs_up_and_tears_down() {
    let (mut m, t0) = in_call();
    m.handle(t0 + Duration::from_secs(10), Input::MediaFailed(id(1)))
        .unwrap();
    let actions = drain(&mut m);
    assert_eq!(actions[0], Action::SendHangUp(id(1), HangUpReason::Failed));
    assert_eq!(ended(&actions), Some(Outcome::Failed));
}

#[test]
fn media_failure_while_ringing_cancels_the_ring() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    drain(&mut m);
    m.handle(t0, Input::MediaFailed(id(1))).unwrap();
    let actions = drain(&mut m);
    assert_eq!(
        actions[0],
        Action::SendCancelRing(id(1), RingEndReason::Cancelled)
    );
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn second_press_during_a_call_is_busy_and_changes_nothing() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    drain(&mut m);
    assert_eq!(m.handle(t0, Input::ButtonPressed), Err(CallError::Busy));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.state().call_id(), Some(&id(1)));
}

#[test]
fn each_call_gets_a_fresh_id() {
    let (mut m, t0) = machine();
    for n in 1..=3 {
        m.handle(t0, Input::ButtonPressed).unwrap();
        assert_eq!(m.state().call_id(), Some(&id(n)));
        m.handle(t0, Input::LocalHangUp).unwrap();
        drain(&mut m);
    }
}

#[test]
fn stale_and_invalid_events_are_typed_errors() {
    let (mut m, t0) = machine();
    assert_eq!(
        m.handle(t0, Input::Answered(id(9))),
        Err(CallError::StaleCall(id(9)))
    );
    m.handle(t0, Input::ButtonPressed).unwrap();
    drain(&mut m);
    assert_eq!(
        m.handle(t0, Input::MediaConnected(id(1))),
        Err(CallError::InvalidTransition {
            input: "media connected",
            state: "ringing"
        })
    );
    assert_eq!(
        m.handle(t0, Input::RemoteHangUp(id(2))),
        Err(CallError::StaleCall(id(2)))
    );
    assert!(drain(&mut m).is_empty(), "errors must not emit actions");
    assert_eq!(m.state().name(), "ringing");
}

#[test]
fn press_with_hub_down_chimes_locally_without_ringing() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::HubDown).unwrap();
    assert_eq!(
        drain(&mut m),
        vec![Action::SetLed(LedState::HubUnreachable)]
    );
    m.handle(t0, Input::ButtonPressed).unwrap();
    assert_eq!(drain(&mut m), vec![Action::ChimeLocally]);
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn hub_lost_while_ringing_ends_call_but_not_an_established_one() {
    let (mut m, t0) = machine();
    m.handle(t0, Input::ButtonPressed).unwrap();
    drain(&mut m);
    m.handle(t0, Input::HubDown).unwrap();
    let actions = drain(&mut m);
    assert_eq!(ended(&actions), Some(Outcome::HubLost));
    assert_eq!(m.state(), &State::Idle);

    let (mut m, t0) = in_call();
    m.handle(t0 + Duration::from_secs(5), Input::HubDown)
        .unwrap();
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.state().name(), "in_call");
    // Hanging up without a hub does not try to send anything.
    m.handle(t0 + Duration::from_secs(6), Input::LocalHangUp)
        .unwrap();
    let actions = drain(&mut m);
    assert!(!actions.iter().any(|a| matches!(a, Action::SendHangUp(..))));
    assert_eq!(m.state(), &State::Idle);
}
