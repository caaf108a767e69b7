//! The call rules of docs/PROTOCOL.md over real WebSockets.

mod common;

use std::time::Duration;

use common::*;
use doorbell_hub::{Timings, TlsMode};
use doorbell_protocol::{
    CallId, DoorToHub, ErrorCode, HangUpReason, HubToDoor, HubToPhone, IceCandidate, PhoneToHub,
    RingEndReason, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
};

fn call(id: &str) -> CallId {
    CallId::new(id)
}

fn candidate(c: &str) -> IceCandidate {
    IceCandidate {
        candidate: c.into(),
        sdp_m_line_index: 0,
    }
}

#[tokio::test]
async fn door_and_phone_get_welcome_with_door_online() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front door");
    let (token, _) = hub.pair_phone(&door_id).await;
    let (_phone0, doors) = connect_phone(&hub, &token).await;
    assert_eq!(doors.len(), 1);
    assert!(!doors[0].online);
    let _door = connect_door(&hub, &door_id, &secret).await;
    let (_phone, doors) = connect_phone(&hub, &token).await;
    assert_eq!(doors[0].door_id, door_id);
    assert_eq!(doors[0].name, "Front door");
    assert!(doors[0].online);
}

#[tokio::test]
async fn ring_fans_out_first_answer_wins_and_media_flows_to_answerer_only() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front door");
    let (token_a, phone_a_id) = hub.pair_phone(&door_id).await;
    let (token_b, _) = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut a, _) = connect_phone(&hub, &token_a).await;
    let (mut b, _) = connect_phone(&hub, &token_b).await;

    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::Ringing {
            call_id: call("c1"),
            phones: 2,
            ice_servers: Some(Vec::new()),
        }
    );
    for phone in [&mut a, &mut b] {
        assert_eq!(
            phone.recv().await,
            HubToPhone::Ring {
                call_id: call("c1"),
                door_id: door_id.clone(),
                door_name: "Front door".into(),
                ice_servers: vec![],
            }
        );
    }

    a.send(&PhoneToHub::Answer {
        call_id: call("c1"),
    })
    .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::Answered {
            call_id: call("c1"),
            phone_id: phone_a_id,
            ice_servers: vec![],
            may_unlock: true,
        }
    );
    assert_eq!(
        b.recv().await,
        HubToPhone::AnsweredElsewhere {
            call_id: call("c1")
        }
    );
    b.send(&PhoneToHub::Answer {
        call_id: call("c1"),
    })
    .await;
    b.expect_error(ErrorCode::AlreadyAnswered).await;

    door.send(&DoorToHub::SdpOffer {
        call_id: call("c1"),
        sdp: "v=0 offer".into(),
    })
    .await;
    assert_eq!(
        a.recv().await,
        HubToPhone::SdpOffer {
            call_id: call("c1"),
            sdp: "v=0 offer".into()
        }
    );
    a.send(&PhoneToHub::SdpAnswer {
        call_id: call("c1"),
        sdp: "v=0 answer".into(),
    })
    .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::SdpAnswer {
            call_id: call("c1"),
            sdp: "v=0 answer".into()
        }
    );
    door.send(&DoorToHub::Ice {
        call_id: call("c1"),
        candidate: candidate("candidate:door"),
    })
    .await;
    assert_eq!(
        a.recv().await,
        HubToPhone::Ice {
            call_id: call("c1"),
            candidate: candidate("candidate:door")
        }
    );
    a.send(&PhoneToHub::Ice {
        call_id: call("c1"),
        candidate: candidate("candidate:phone"),
    })
    .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::Ice {
            call_id: call("c1"),
            candidate: candidate("candidate:phone")
        }
    );
    // B is not part of the call: its SDP/ICE are refused and never reach the door.
    b.send(&PhoneToHub::Ice {
        call_id: call("c1"),
        candidate: candidate("candidate:intruder"),
    })
    .await;
    b.expect_error(ErrorCode::UnknownCall).await;

    a.send(&PhoneToHub::HangUp {
        call_id: call("c1"),
        reason: HangUpReason::Normal,
    })
    .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::HangUp {
            call_id: call("c1"),
            reason: HangUpReason::Normal
        }
    );

    // A new call; this time the door hangs up and the phone hears it.
    door.send(&DoorToHub::Ring {
        call_id: call("c2"),
    })
    .await;
    assert!(matches!(
        door.recv().await,
        HubToDoor::Ringing { phones: 2, .. }
    ));
    assert!(matches!(a.recv().await, HubToPhone::Ring { .. }));
    assert!(matches!(b.recv().await, HubToPhone::Ring { .. }));
    b.send(&PhoneToHub::Answer {
        call_id: call("c2"),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Answered { .. }));
    assert!(matches!(
        a.recv().await,
        HubToPhone::AnsweredElsewhere { .. }
    ));
    door.send(&DoorToHub::HangUp {
        call_id: call("c2"),
        reason: HangUpReason::Timeout,
    })
    .await;
    assert_eq!(
        b.recv().await,
        HubToPhone::HangUp {
            call_id: call("c2"),
            reason: HangUpReason::Timeout
        }
    );
}

#[tokio::test]
async fn phone_cannot_see_or_touch_another_doors_call() {
    let hub = start_hub().await;
    let (front, front_secret) = hub.add_door("Front");
    let (back, back_secret) = hub.add_door("Back");
    let (token_front, _) = hub.pair_phone(&front).await;
    let (token_back, _) = hub.pair_phone(&back).await;
    let mut front_door = connect_door(&hub, &front, &front_secret).await;
    let mut back_door = connect_door(&hub, &back, &back_secret).await;
    let (mut only_front, _) = connect_phone(&hub, &token_front).await;
    let (mut only_back, _) = connect_phone(&hub, &token_back).await;

    back_door
        .send(&DoorToHub::Ring {
            call_id: call("b1"),
        })
        .await;
    assert!(matches!(
        back_door.recv().await,
        HubToDoor::Ringing { phones: 1, .. }
    ));
    assert!(matches!(only_back.recv().await, HubToPhone::Ring { .. }));

    for msg in [
        PhoneToHub::Answer {
            call_id: call("b1"),
        },
        PhoneToHub::Decline {
            call_id: call("b1"),
        },
        PhoneToHub::SdpAnswer {
            call_id: call("b1"),
            sdp: "v=0".into(),
        },
        PhoneToHub::Ice {
            call_id: call("b1"),
            candidate: candidate("candidate:x"),
        },
        PhoneToHub::HangUp {
            call_id: call("b1"),
            reason: HangUpReason::Normal,
        },
    ] {
        only_front.send(&msg).await;
        only_front.expect_error(ErrorCode::UnknownCall).await;
    }

    // The front door's own ring is the first (and only) ring the front phone ever gets.
    front_door
        .send(&DoorToHub::Ring {
            call_id: call("f1"),
        })
        .await;
    assert!(matches!(
        front_door.recv().await,
        HubToDoor::Ringing { phones: 1, .. }
    ));
    match only_front.recv().await {
        HubToPhone::Ring {
            call_id, door_id, ..
        } => {
            assert_eq!(call_id, call("f1"));
            assert_eq!(door_id, front);
        }
        other => panic!("expected the front door's ring, got {other:?}"),
    }
    // And the back door never heard of the front phone's attempts.
    only_back
        .send(&PhoneToHub::Answer {
            call_id: call("b1"),
        })
        .await;
    assert!(matches!(back_door.recv().await, HubToDoor::Answered { .. }));
}

#[tokio::test]
async fn bad_credentials_and_versions_get_typed_error_then_close() {
    let hub = start_hub().await;
    let (door_id, _) = hub.add_door("Front");

    let mut door = DoorClient::connect(&hub).await;
    door.send(&DoorToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        door_id: door_id.clone(),
        secret: "wrong".into(),
        software: "t".into(),
    })
    .await;
    expect_refused(&mut door, ErrorCode::Unauthorized).await;

    let mut phone = PhoneClient::connect(&hub).await;
    phone
        .send(&PhoneToHub::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: "not-a-token".into(),
        })
        .await;
    expect_refused(&mut phone, ErrorCode::Unauthorized).await;

    let mut phone = PhoneClient::connect(&hub).await;
    phone
        .send(&PhoneToHub::Hello {
            protocol_version: 2,
            token: "whatever".into(),
        })
        .await;
    expect_refused(&mut phone, ErrorCode::UnsupportedVersion).await;

    let mut phone = PhoneClient::connect(&hub).await;
    phone.send(&PhoneToHub::Answer { call_id: call("x") }).await;
    expect_refused(&mut phone, ErrorCode::HelloRequired).await;
}

#[tokio::test]
async fn malformed_messages_get_bad_message_and_connection_stays_usable() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut phone, _) = connect_phone(&hub, &token).await;

    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));
    assert!(matches!(phone.recv().await, HubToPhone::Ring { .. }));

    for bad in [
        "{not json",
        "[1,2]",
        r#"{"type":"teleport"}"#,
        r#"{"type":"answer"}"#,
    ] {
        phone.send_raw(bad).await;
        phone.expect_error(ErrorCode::BadMessage).await;
    }
    phone
        .ws
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1u8, 2, 3,
        ]))
        .await
        .expect("send binary");
    phone.expect_error(ErrorCode::BadMessage).await;
    phone
        .send(&PhoneToHub::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: token.clone(),
        })
        .await;
    phone.expect_error(ErrorCode::AlreadyAuthenticated).await;
    door.send_raw(r#"{"type":"ring"}"#).await;
    door.expect_error(ErrorCode::BadMessage).await;

    // Same connection still works.
    phone
        .send(&PhoneToHub::Answer {
            call_id: call("c1"),
        })
        .await;
    assert!(matches!(door.recv().await, HubToDoor::Answered { .. }));
    // And a new client still connects.
    let (_again, doors) = connect_phone(&hub, &token).await;
    assert!(doors[0].online);
}

use futures_util::SinkExt;

#[tokio::test]
async fn oversized_frame_closes_that_connection_only() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let huge = format!(
        r#"{{"type":"sdp_offer","call_id":"c","sdp":"{}"}}"#,
        "a".repeat(100 * 1024)
    );
    assert!(huge.len() > MAX_MESSAGE_BYTES);
    // The hub may close while we are still writing; either way the connection must end.
    let _ = door
        .ws
        .send(tokio_tungstenite::tungstenite::Message::text(huge))
        .await;
    // Normally a 1009 close frame; a reset (if the hub closed mid-write) is also a close.
    if let Some(frame) = door.expect_closed().await {
        assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
    }
    // The hub is fine and the door can come back.
    let mut door = connect_door(&hub, &door_id, &secret).await;
    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));
}

#[tokio::test]
async fn no_hello_in_time_is_closed() {
    let hub = start_hub_with(
        Timings {
            handshake: Duration::from_millis(200),
            ..Timings::default()
        },
        TlsMode::Plain,
    )
    .await;
    let mut silent = PhoneClient::connect(&hub).await;
    expect_refused(&mut silent, ErrorCode::HelloRequired).await;
}

#[tokio::test]
async fn everyone_declines_ends_the_ring() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let (ta, _) = hub.pair_phone(&door_id).await;
    let (tb, _) = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut a, _) = connect_phone(&hub, &ta).await;
    let (mut b, _) = connect_phone(&hub, &tb).await;
    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    assert!(matches!(
        door.recv().await,
        HubToDoor::Ringing { phones: 2, .. }
    ));
    assert!(matches!(a.recv().await, HubToPhone::Ring { .. }));
    assert!(matches!(b.recv().await, HubToPhone::Ring { .. }));
    a.send(&PhoneToHub::Decline {
        call_id: call("c1"),
    })
    .await;
    b.send(&PhoneToHub::Decline {
        call_id: call("c1"),
    })
    .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::RingEnded {
            call_id: call("c1"),
            reason: RingEndReason::Declined
        }
    );
    // The door is free again; the old id may not be reused.
    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    door.expect_error(ErrorCode::InvalidState).await;
    door.send(&DoorToHub::Ring {
        call_id: call("c2"),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));
    door.send(&DoorToHub::Ring {
        call_id: call("c3"),
    })
    .await;
    door.expect_error(ErrorCode::Busy).await;
}

#[tokio::test]
async fn cancel_ring_and_door_loss_stop_phones_ringing_and_late_phones_ring() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;

    // Nobody online yet: ringing 0, then a phone connects and rings right after welcome.
    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    assert!(matches!(
        door.recv().await,
        HubToDoor::Ringing { phones: 0, .. }
    ));
    let (mut phone, _) = connect_phone(&hub, &token).await;
    assert!(matches!(phone.recv().await, HubToPhone::Ring { .. }));

    door.send(&DoorToHub::CancelRing {
        call_id: call("c1"),
        reason: RingEndReason::Timeout,
    })
    .await;
    assert_eq!(
        phone.recv().await,
        HubToPhone::RingingCancelled {
            call_id: call("c1"),
            reason: RingEndReason::Timeout
        }
    );

    door.send(&DoorToHub::Ring {
        call_id: call("c2"),
    })
    .await;
    assert!(matches!(
        door.recv().await,
        HubToDoor::Ringing { phones: 1, .. }
    ));
    assert!(matches!(phone.recv().await, HubToPhone::Ring { .. }));
    drop(door);
    assert_eq!(
        phone.recv().await,
        HubToPhone::RingingCancelled {
            call_id: call("c2"),
            reason: RingEndReason::DoorOffline
        }
    );
    assert_eq!(
        phone.recv().await,
        HubToPhone::DoorStatus {
            door_id: door_id.clone(),
            online: false
        }
    );
    let _door = connect_door(&hub, &door_id, &secret).await;
    assert_eq!(
        phone.recv().await,
        HubToPhone::DoorStatus {
            door_id,
            online: true
        }
    );
}

#[tokio::test]
async fn answering_phone_loss_hangs_up_door_and_door_reconnect_replaces_old() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut phone, _) = connect_phone(&hub, &token).await;
    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));
    assert!(matches!(phone.recv().await, HubToPhone::Ring { .. }));
    phone
        .send(&PhoneToHub::Answer {
            call_id: call("c1"),
        })
        .await;
    assert!(matches!(door.recv().await, HubToDoor::Answered { .. }));
    drop(phone);
    assert_eq!(
        door.recv().await,
        HubToDoor::HangUp {
            call_id: call("c1"),
            reason: HangUpReason::PeerGone
        }
    );

    // The same door connects again: the old connection is closed, the new one works.
    let mut newer = connect_door(&hub, &door_id, &secret).await;
    door.expect_closed().await;
    newer
        .send(&DoorToHub::Ring {
            call_id: call("c2"),
        })
        .await;
    assert!(matches!(newer.recv().await, HubToDoor::Ringing { .. }));
}

#[tokio::test]
async fn sdp_before_answer_is_invalid_state() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let mut door = connect_door(&hub, &door_id, &secret).await;
    door.send(&DoorToHub::SdpOffer {
        call_id: call("nope"),
        sdp: "v=0".into(),
    })
    .await;
    door.expect_error(ErrorCode::UnknownCall).await;
    door.send(&DoorToHub::Ring {
        call_id: call("c1"),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));
    door.send(&DoorToHub::SdpOffer {
        call_id: call("c1"),
        sdp: "v=0".into(),
    })
    .await;
    door.expect_error(ErrorCode::InvalidState).await;
}
