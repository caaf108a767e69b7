//! Scenario tests of the whole core in virtual time: every instant is `t0 + offset`, nothing
//! sleeps, no socket or pipeline exists. The harness is shared with `scenarios_edges.rs`.

use super::*;
use doorbell_protocol::control::{ControlErrorCode, DoorToPhone};
use doorbell_protocol::{HangUpReason, PhoneId, RingEndReason};
use std::time::Instant;

pub(super) const RING: Duration = Duration::from_secs(30);
pub(super) const CONNECT: Duration = Duration::from_secs(20);
pub(super) const MAX_CALL: Duration = Duration::from_secs(600);
/// Wall-clock time of the presses (Unix ms).
pub(super) const PRESSED_AT: u64 = 1_700_000_000_000;

pub(super) struct Sim {
    pub door: Door,
    pub t0: Instant,
    pub now: Instant,
}

impl Sim {
    /// A door whose hub accepted it, with its start-up actions drained.
    pub fn online() -> Sim {
        let mut sim = Sim::offline(Vec::new());
        sim.step(Event::HubUp {
            door_name: "Front door".into(),
            ice_servers: vec![stun()],
        });
        sim
    }

    /// A door that has not reached its hub yet, with `missed` rings saved by an earlier run.
    pub fn offline(missed: Vec<u64>) -> Sim {
        Sim::offline_with_voice(missed, 0)
    }

    /// [`Sim::offline`] offering voice messages of up to `voice_secs` (0: none).
    pub fn offline_with_voice(missed: Vec<u64>, voice_secs: u32) -> Sim {
        let door = Door::new(DoorSetup {
            timings: Timings {
                ring_timeout: RING,
                connect_timeout: CONNECT,
                max_call: MAX_CALL,
            },
            id_prefix: "c-test".into(),
            door_name: "Front door".into(),
            missed_rings: missed,
            voice_message_secs: voice_secs,
            view: ViewLimits::default(),
        });
        let t0 = Instant::now();
        let mut sim = Sim { door, t0, now: t0 };
        assert_eq!(sim.drain(), vec![Action::SetLed(LedState::HubUnreachable)]);
        sim
    }

    /// Move virtual time to `t0 + secs`.
    pub fn at(&mut self, secs: u64) -> &mut Self {
        self.now = self.t0 + Duration::from_secs(secs);
        self
    }

    /// Handle `event` (it must be accepted) and return every action it caused.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        self.door
            .handle(self.now, event)
            .expect("the core refused the event");
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.door.poll_action()).collect()
    }

    pub fn press(&mut self) -> Vec<Action> {
        self.step(Event::ButtonPressed {
            unix_ms: PRESSED_AT,
        })
    }

    pub fn hub(&mut self, message: HubToDoor) -> Vec<Action> {
        self.step(Event::Hub(message))
    }

    pub fn media(&mut self, call: u64, kind: MediaEventKind) -> Vec<Action> {
        self.step(Event::Media(MediaEvent {
            call_id: id(call),
            kind,
        }))
    }
}

pub(super) fn id(n: u64) -> CallId {
    CallId::new(format!("c-test-{n}"))
}

pub(super) fn stun() -> IceServer {
    IceServer {
        urls: vec!["stun:hub.example:3478".into()],
        username: None,
        credential: None,
    }
}

pub(super) fn turn(user: &str) -> IceServer {
    IceServer {
        urls: vec!["turn:hub.example:3478?transport=udp".into()],
        username: Some(user.into()),
        credential: Some("secret".into()),
    }
}

pub(super) fn ringing(call: u64, servers: Option<Vec<IceServer>>) -> HubToDoor {
    HubToDoor::Ringing {
        call_id: id(call),
        phones: 2,
        ice_servers: servers,
    }
}

pub(super) fn answered(call: u64, servers: Vec<IceServer>) -> HubToDoor {
    HubToDoor::Answered {
        call_id: id(call),
        phone_id: PhoneId::new("p-1"),
        ice_servers: servers,
        may_unlock: true,
    }
}

pub(super) fn candidate(n: u32) -> MediaEventKind {
    MediaEventKind::LocalCandidate {
        mline: 0,
        candidate: format!("candidate:{n} 1 udp 1 192.0.2.1 5000{n} typ host"),
    }
}

pub(super) fn sent_ice(n: u32) -> Action {
    Action::Send(DoorToHub::Ice {
        call_id: id(1),
        candidate: IceCandidate {
            candidate: format!("candidate:{n} 1 udp 1 192.0.2.1 5000{n} typ host"),
            sdp_m_line_index: 0,
        },
    })
}

pub(super) fn offer_sent(sdp: &str) -> Action {
    Action::Send(DoorToHub::SdpOffer {
        call_id: id(1),
        sdp: sdp.into(),
    })
}

pub(super) fn start_ice(servers: Vec<IceServer>) -> Action {
    Action::StartIce {
        call_id: id(1),
        offer: "v=0 offer".into(),
        servers,
    }
}

pub(super) fn ended(actions: &[Action]) -> Option<Outcome> {
    actions.iter().find_map(|a| match a {
        Action::CallEnded { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

/// Press, ringing with ICE servers, offer, answer, connected: a door in a call.
pub(super) fn in_call() -> Sim {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    sim.media(1, MediaEventKind::OfferReady("v=0 offer".into()));
    sim.at(2).hub(answered(1, vec![]));
    sim.at(3).media(1, MediaEventKind::Connected);
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    sim
}

#[test]
fn the_whole_call_from_press_to_idle_after_the_hub_is_lost() {
    let mut sim = Sim::online();
    // Press: ring, start the media session with the hub's STUN servers, LED ringing.
    assert_eq!(
        sim.press(),
        vec![
            Action::Send(DoorToHub::Ring { call_id: id(1) }),
            Action::StartMedia {
                call_id: id(1),
                ice_servers: vec![stun()],
            },
            // The visitor's picture from the session just started; the ring went first.
            Action::TakeSnapshot(SnapshotOf::Call(id(1))),
            Action::SetLed(LedState::Ringing),
        ]
    );
    assert_eq!(sim.door.next_deadline(), Some(sim.t0 + RING));
    // The hub rings two phones and sends this call's TURN credentials.
    assert!(sim.hub(ringing(1, Some(vec![turn("u1")]))).is_empty());
    assert_eq!(sim.door.status().phones_ringing, 2);
    // Offer ready (caps negotiated): ICE starts while the phones ring, nothing is sent.
    assert_eq!(
        sim.media(1, MediaEventKind::OfferReady("v=0 offer".into())),
        vec![start_ice(vec![turn("u1")])]
    );
    // Candidates gathered before anyone answered wait.
    assert!(sim.media(1, candidate(1)).is_empty());
    assert!(sim.media(1, candidate(2)).is_empty());
    // Answered: the offer, then the buffered candidates, in order.
    assert_eq!(
        sim.at(5).hub(answered(1, vec![turn("ignored")])),
        vec![offer_sent("v=0 offer"), sent_ice(1), sent_ice(2)]
    );
    assert_eq!(
        sim.door.next_deadline(),
        Some(sim.t0 + Duration::from_secs(5) + CONNECT)
    );
    // Later candidates go out at once.
    assert_eq!(sim.media(1, candidate(3)), vec![sent_ice(3)]);
    sim.hub(HubToDoor::SdpAnswer {
        call_id: id(1),
        sdp: "v=0 answer".into(),
    });
    // Connected: keyframe and LED.
    assert_eq!(
        sim.at(6).media(1, MediaEventKind::Connected),
        vec![
            Action::RequestKeyframe(id(1)),
            Action::SetLed(LedState::InCall)
        ]
    );
    assert_eq!(
        sim.door.next_deadline(),
        Some(sim.t0 + Duration::from_secs(6) + MAX_CALL)
    );
    // The hub goes away: the call goes on peer to peer.
    assert_eq!(sim.at(20).step(Event::HubLost), vec![]);
    assert_eq!(sim.door.status().phase, CallPhase::InCall);
    assert!(!sim.door.status().hub_connected);
    // The phone closes its peer connection: that is its hang-up; nothing is sent to a hub.
    let actions = sim.at(30).media(1, MediaEventKind::ControlClosed);
    assert_eq!(
        actions,
        vec![
            Action::TearDownMedia(id(1)),
            Action::CallEnded {
                call_id: id(1),
                outcome: Outcome::Completed
            },
            Action::SetLed(LedState::HubUnreachable),
        ]
    );
    let status = sim.door.status();
    assert_eq!(status.phase, CallPhase::Idle);
    assert_eq!(status.calls_ended, 1);
    assert_eq!(status.last_call, Some((id(1), Outcome::Completed)));
    assert_eq!(
        status.missed_rings_pending, 0,
        "an answered ring is not missed"
    );
    assert_eq!(sim.door.next_deadline(), None);
}

#[test]
fn a_second_press_while_ringing_is_busy_and_changes_nothing() {
    let mut sim = Sim::online();
    sim.press();
    let deadline = sim.door.next_deadline();
    sim.at(3);
    assert_eq!(
        sim.door.handle(
            sim.now,
            Event::ButtonPressed {
                unix_ms: PRESSED_AT + 3000
            }
        ),
        Err(CallError::Busy)
    );
    assert!(sim.drain().is_empty());
    assert_eq!(sim.door.status().call_id, Some(id(1)));
    assert_eq!(
        sim.door.next_deadline(),
        deadline,
        "the ring timeout is not restarted"
    );
}

#[test]
fn ring_timeout_cancels_the_ring_and_an_unconfirmed_ring_is_kept_as_missed() {
    let mut sim = Sim::online();
    sim.press();
    sim.at(29);
    assert!(sim.step(Event::Deadline).is_empty(), "not yet");
    let actions = sim.at(30).step(Event::Deadline);
    assert_eq!(
        actions[0],
        Action::Send(DoorToHub::CancelRing {
            call_id: id(1),
            reason: RingEndReason::Timeout
        })
    );
    assert!(actions.contains(&Action::TearDownMedia(id(1))));
    assert_eq!(ended(&actions), Some(Outcome::Missed));
    // The hub never said `ringing`: maybe nobody heard the ring at all.
    assert!(actions.contains(&Action::SaveMissedRings(vec![PRESSED_AT])));
    assert_eq!(sim.door.status().missed_rings_pending, 1);
}

#[test]
fn ring_timeout_after_ringing_is_not_a_missed_ring() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, None));
    let actions = sim.at(30).step(Event::Deadline);
    assert_eq!(ended(&actions), Some(Outcome::Missed));
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::SaveMissedRings(_))));
    assert_eq!(sim.door.status().missed_rings_pending, 0);
}

#[test]
fn everyone_declines() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, None));
    let actions = sim.at(4).hub(HubToDoor::RingEnded {
        call_id: id(1),
        reason: RingEndReason::Declined,
    });
    assert_eq!(ended(&actions), Some(Outcome::Declined));
    assert!(actions.contains(&Action::TearDownMedia(id(1))));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Send(_))),
        "the hub already knows"
    );
    assert_eq!(sim.door.status().phase, CallPhase::Idle);
    assert_eq!(sim.door.status().phones_ringing, 0);
}

#[test]
fn media_failure_while_connecting_hangs_up_as_failed() {
    let mut sim = Sim::online();
    sim.press();
    sim.hub(ringing(1, Some(vec![turn("u1")])));
    sim.media(1, MediaEventKind::OfferReady("v=0 offer".into()));
    sim.at(2).hub(answered(1, vec![]));
    let actions = sim
        .at(4)
        .media(1, MediaEventKind::Failed("ICE failed".into()));
    assert_eq!(
        actions,
        vec![
            Action::Send(DoorToHub::HangUp {
                call_id: id(1),
                reason: HangUpReason::Failed
            }),
            Action::TearDownMedia(id(1)),
            Action::CallEnded {
                call_id: id(1),
                outcome: Outcome::Failed
            },
            Action::SetLed(LedState::Idle),
        ]
    );
    // A late event of the dead session is stale and does nothing.
    assert!(sim.media(1, candidate(9)).is_empty());
}

#[test]
fn connect_timeout_hangs_up_as_failed() {
    let mut sim = Sim::online();
    sim.press();
    sim.at(2).hub(answered(1, vec![turn("u1")]));
    let actions = sim.at(22).step(Event::Deadline);
    assert_eq!(
        actions[0],
        Action::Send(DoorToHub::HangUp {
            call_id: id(1),
            reason: HangUpReason::Failed
        })
    );
    assert_eq!(ended(&actions), Some(Outcome::Failed));
}

#[test]
fn unlock_outside_a_call_is_refused_and_never_pulses() {
    const UNLOCK: &str = r#"{"version":1,"type":"unlock","request_id":7}"#;
    let mut sim = Sim::online();
    sim.press();
    sim.at(2).hub(answered(1, vec![turn("u1")]));
    // Connecting: the channel may already be open, but the call is not in progress.
    let actions = sim.media(1, MediaEventKind::ControlMessage(UNLOCK.into()));
    let [Action::Reply {
        message: DoorToPhone::Error {
            code, request_id, ..
        },
        ..
    }] = actions.as_slice()
    else {
        panic!("expected one refusal, got {actions:?}");
    };
    assert_eq!(*code, ControlErrorCode::NotInCall);
    assert_eq!(*request_id, Some(7));
    assert_eq!(sim.door.status().unlocks, 0);
    // After the call a late message is ignored (its channel is gone).
    sim.step(Event::LocalHangUp);
    assert!(sim
        .media(1, MediaEventKind::ControlMessage(UNLOCK.into()))
        .is_empty());
}

#[test]
fn unlock_in_the_call_pulses_the_strike_then_replies() {
    let mut sim = in_call();
    let actions = sim.media(
        1,
        MediaEventKind::ControlMessage(r#"{"version":1,"type":"unlock","request_id":7}"#.into()),
    );
    assert_eq!(
        actions,
        vec![Action::PulseStrike {
            call_id: id(1),
            request_id: 7
        }]
    );
    let pulse = Duration::from_millis(1500);
    let actions = sim.step(Event::StrikePulsed {
        call_id: id(1),
        request_id: 7,
        outcome: StrikeOutcome::Started(pulse),
    });
    assert_eq!(
        actions,
        vec![
            // The hub records who let the visitor in (the phone that answered this call).
            Action::Send(DoorToHub::Unlocked { call_id: id(1) }),
            Action::Reply {
                call_id: id(1),
                message: unlock::unlocked(7, pulse)
            }
        ]
    );
    assert_eq!(sim.door.status().unlocks, 1);
    // A second tap while the strike is open is answered but not counted.
    sim.step(Event::StrikePulsed {
        call_id: id(1),
        request_id: 8,
        outcome: StrikeOutcome::AlreadyOpen(pulse),
    });
    assert_eq!(sim.door.status().unlocks, 1);
}
