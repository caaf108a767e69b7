//! Ids and text from the network are bounded and safe (docs/PROTOCOL.md "Limits"): a frame that
//! breaks a rule gets `invalid_id` / `invalid_text` and nothing of it is stored or relayed.

mod common;

use common::*;
use doorbell_protocol::{
    limits::MAX_ID_LEN, CallId, DoorToHub, ErrorCode, HubToDoor, HubToPhone, RingEndReason,
    PROTOCOL_VERSION,
};

#[tokio::test]
async fn a_65_character_call_id_is_refused_and_never_reaches_phones_or_history() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut phone, _) = connect_phone(&hub, &token).await;

    let long = "c".repeat(MAX_ID_LEN + 1);
    door.send_raw(&format!(r#"{{"type":"ring","call_id":"{long}"}}"#))
        .await;
    door.expect_error(ErrorCode::InvalidId).await;
    for unsafe_id in ["c 1", "c\u{1b}[2J", "", "../../x"] {
        let frame = serde_json::json!({"type": "ring", "call_id": unsafe_id}).to_string();
        door.send_raw(&frame).await;
        door.expect_error(ErrorCode::InvalidId).await;
    }

    // The longest id allowed still rings, and is the phone's first ring: none of the refused
    // ones got through.
    let longest = CallId::new("c".repeat(MAX_ID_LEN));
    door.send(&DoorToHub::Ring {
        call_id: longest.clone(),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));
    match phone.recv().await {
        HubToPhone::Ring { call_id, .. } => assert_eq!(call_id, longest),
        other => panic!("expected the allowed ring, got {other:?}"),
    }
    door.send(&DoorToHub::CancelRing {
        call_id: longest.clone(),
        reason: RingEndReason::Timeout,
    })
    .await;

    // The history lists flush the recorder first, so every ring so far is in it.
    let v = get_json(&hub, "/api/events", &token).await;
    let rings: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "ring")
        .filter_map(|e| e["call_id"].as_str())
        .collect();
    assert_eq!(rings, [longest.as_str()], "only the allowed ring is stored");
}

#[tokio::test]
async fn a_control_character_in_software_is_refused_and_not_stored() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let mut door = DoorClient::connect(&hub).await;
    door.send(&DoorToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        door_id: door_id.clone(),
        secret: secret.clone(),
        software: "doorbelld \u{1b}]0;pwned\u{7}".into(),
    })
    .await;
    door.expect_error(ErrorCode::InvalidText).await;
    door.expect_closed().await;

    let mut door = DoorClient::connect(&hub).await;
    door.send(&DoorToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        door_id: door_id.clone(),
        secret: secret.clone(),
        software: "x".repeat(30_000),
    })
    .await;
    door.expect_error(ErrorCode::InvalidText).await;
    door.expect_closed().await;

    let doors = hub.hub.store().list_doors().expect("list doors");
    assert_eq!(doors.len(), 1);
    assert_eq!(
        doors[0].software, None,
        "nothing of the refused hellos stored"
    );
    assert_eq!(doors[0].last_seen, None, "a refused hello is not a visit");

    // A well-formed hello from the same door is still welcomed.
    let _door = connect_door(&hub, &door_id, &secret).await;
}
