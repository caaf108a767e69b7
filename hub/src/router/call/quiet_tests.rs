//! Rings with a roster: quiet phones are left out, push-only phones are waited for, and a ring
//! ends as declined only when every phone rung has declined.

use std::collections::BTreeSet;

use doorbell_protocol::{
    CallId, DoorToHub, HubToDoor, HubToPhone, PhoneId, PhoneToHub, RingEndReason,
};

use crate::router::test_support::{call, door_id, now, setup, to, A, B, DOOR};
use crate::router::{Out, Roster, Router};

fn phones(ids: &[&str]) -> BTreeSet<PhoneId> {
    ids.iter().map(|id| PhoneId::new(*id)).collect()
}

fn ring_with(r: &mut Router, quiet: &[&str], pushed: &[&str]) -> Vec<Out> {
    let roster = Roster {
        quiet: phones(quiet),
        pushed: phones(pushed),
    };
    r.door_ring(now(), DOOR, call(), roster)
}

fn ring_ended(out: &[Out]) -> Option<RingEndReason> {
    out.iter().find_map(|o| match o {
        Out::Door(DOOR, HubToDoor::RingEnded { reason, .. }) => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_quiet_phone_does_not_ring_while_another_does_and_gets_no_push() {
    let mut r = setup();
    let out = ring_with(&mut r, &["p-a"], &[]);
    assert!(to(&out, A).is_empty(), "quiet A must not ring: {out:?}");
    assert_eq!(to(&out, B).len(), 1, "B rings");
    let ring_event = out
        .iter()
        .find_map(|o| match o {
            Out::Event(e) if e.kind == crate::store::EventKind::Ring => Some(e.clone()),
            _ => None,
        })
        .expect("the ring is recorded for the history");
    assert_eq!(ring_event.quiet, phones(&["p-a"]), "no push for A");
    // A's second tab, opened during the ring, does not ring either.
    let out = r.phone_connected(
        now(),
        30,
        PhoneId::new("p-a"),
        vec![(door_id(), "Front".into())],
        Default::default(),
    );
    assert_eq!(to(&out, 30).len(), 1, "welcome only: {out:?}");
    // B's decline is the last one that counts: the ring ends as declined.
    let out = r.phone_message(now(), B, PhoneToHub::Decline { call_id: call() });
    assert_eq!(ring_ended(&out), Some(RingEndReason::Declined));
}

#[test]
fn every_phone_quiet_ends_the_ring_at_once_for_a_voice_message() {
    let mut r = setup();
    let out = ring_with(&mut r, &["p-a", "p-b"], &[]);
    assert!(to(&out, A).is_empty() && to(&out, B).is_empty(), "{out:?}");
    assert!(out
        .iter()
        .any(|o| matches!(o, Out::Door(DOOR, HubToDoor::Ringing { phones: 0, .. }))));
    assert_eq!(ring_ended(&out), Some(RingEndReason::Quiet));
    let missed = out.iter().any(|o| {
        matches!(o, Out::Event(e) if e.kind == crate::store::EventKind::Missed && e.reason == Some("quiet"))
    });
    assert!(missed, "the history says why: {out:?}");
    // No call is left behind: the next press rings normally.
    let out = r.door_message(
        now(),
        DOOR,
        DoorToHub::Ring {
            call_id: CallId::new("c2"),
        },
    );
    assert_eq!(to(&out, A).len(), 1);
}

#[test]
fn a_decline_from_one_page_does_not_end_a_ring_a_pushed_phone_still_hears() {
    let mut r = setup();
    // p-c has no page open; push reaches it.
    ring_with(&mut r, &[], &["p-c"]);
    r.phone_message(now(), A, PhoneToHub::Decline { call_id: call() });
    let out = r.phone_message(now(), B, PhoneToHub::Decline { call_id: call() });
    assert_eq!(ring_ended(&out), None, "p-c has not declined: {out:?}");
    // p-c's notification opens the app, which connects and declines.
    let out = r.phone_connected(
        now(),
        40,
        PhoneId::new("p-c"),
        vec![(door_id(), "Front".into())],
        Default::default(),
    );
    assert_eq!(to(&out, 40).len(), 2, "welcome and ring");
    let out = r.phone_message(now(), 40, PhoneToHub::Decline { call_id: call() });
    assert_eq!(ring_ended(&out), Some(RingEndReason::Declined));
}

#[test]
fn a_phone_declining_in_one_tab_stops_its_other_tabs_when_the_ring_ends() {
    let mut r = setup();
    r.phone_connected(
        now(),
        50,
        PhoneId::new("p-a"),
        vec![(door_id(), "Front".into())],
        Default::default(),
    );
    ring_with(&mut r, &[], &[]);
    r.phone_message(now(), B, PhoneToHub::Decline { call_id: call() });
    let out = r.phone_message(now(), A, PhoneToHub::Decline { call_id: call() });
    assert_eq!(ring_ended(&out), Some(RingEndReason::Declined));
    assert!(out.contains(&Out::Phone(
        50,
        HubToPhone::RingingCancelled {
            call_id: call(),
            reason: RingEndReason::Declined
        }
    )));
}
