//! Scenarios of "nobody answered → prompt → record → upload": which ends of a ring offer the
//! visitor a voice message, for which press, and that it comes after the media is torn down.

use super::scenarios::*;
use super::*;
use doorbell_protocol::RingEndReason;

fn online_with_voice(secs: u32) -> Sim {
    let mut sim = Sim::offline_with_voice(Vec::new(), secs);
    sim.step(Event::HubUp {
        door_name: "Front door".into(),
        ice_servers: vec![stun()],
    });
    sim
}

fn voice(actions: &[Action]) -> Option<(SnapshotOf, u32)> {
    actions.iter().find_map(|a| match a {
        Action::RecordVoiceMessage { of, secs } => Some((of.clone(), *secs)),
        _ => None,
    })
}

#[test]
fn every_ring_nobody_answers_offers_a_voice_message_after_the_media_is_gone() {
    for reason in [
        RingEndReason::Timeout,
        RingEndReason::Declined,
        RingEndReason::Quiet,
    ] {
        let mut sim = online_with_voice(20);
        sim.press();
        sim.hub(ringing(1, None));
        let actions = sim.at(2).hub(HubToDoor::RingEnded {
            call_id: id(1),
            reason,
        });
        assert_eq!(
            voice(&actions),
            Some((SnapshotOf::Call(id(1)), 20)),
            "{reason:?}: {actions:?}"
        );
        let torn_down = actions
            .iter()
            .position(|a| *a == Action::TearDownMedia(id(1)))
            .expect("media torn down");
        let record = actions
            .iter()
            .position(|a| matches!(a, Action::RecordVoiceMessage { .. }))
            .expect("record");
        assert!(torn_down < record, "the microphone is free first");
    }
}

#[test]
fn the_doors_own_ring_timeout_offers_one_too() {
    let mut sim = online_with_voice(5);
    sim.press();
    sim.hub(ringing(1, None));
    let actions = sim.at(30).step(Event::Deadline);
    assert_eq!(voice(&actions), Some((SnapshotOf::Call(id(1)), 5)));
}

#[test]
fn an_answered_cancelled_or_failed_call_offers_none_nor_does_a_door_with_them_off() {
    let mut sim = online_with_voice(20);
    sim.press();
    let actions = sim.step(Event::LocalHangUp);
    assert_eq!(voice(&actions), None, "the visitor left: {actions:?}");
    let actions = sim.press();
    sim.hub(answered(2, vec![]));
    let actions2 = sim.step(Event::LocalHangUp);
    assert_eq!(voice(&actions), None);
    assert_eq!(voice(&actions2), None);

    let mut off = online_with_voice(0);
    off.press();
    let actions = off.at(30).step(Event::Deadline);
    assert_eq!(voice(&actions), None, "call.voice_message_secs = 0");
}

#[test]
fn a_press_the_hub_cannot_hear_offers_one_kept_for_that_press() {
    let mut sim = Sim::offline_with_voice(Vec::new(), 20);
    let actions = sim.press();
    assert!(actions.contains(&Action::Chime));
    assert_eq!(
        voice(&actions),
        Some((SnapshotOf::MissedRing(PRESSED_AT), 20))
    );
}

#[test]
fn a_quick_reply_is_played_only_in_its_own_call() {
    let mut sim = online_with_voice(20);
    sim.press();
    let actions = sim.hub(HubToDoor::QuickReply {
        call_id: id(1),
        reply_id: 4,
    });
    assert_eq!(
        actions,
        vec![Action::PlayQuickReply {
            call_id: id(1),
            reply_id: 4
        }]
    );
    assert_eq!(
        sim.door.handle(
            sim.now,
            Event::Hub(HubToDoor::QuickReply {
                call_id: id(9),
                reply_id: 4,
            })
        ),
        Err(CallError::StaleCall(id(9)))
    );
    assert!(sim.drain().is_empty());
}
