//! Quiet hours end to end: the `/api/quiet` API, a quiet phone left out of a ring (page and
//! push) while another rings, every phone quiet ending the ring at once, and a ring ending as
//! declined only when every phone rung, push-only ones included, has declined.

mod common;

use std::time::Duration;

use common::push_service::{push_hub, subscribe, MockPushService, TestSubscription};
use common::*;
use doorbell_hub::now_ms;
use doorbell_protocol::{
    CallId, DoorToHub, ErrorCode, HubToDoor, HubToPhone, PhoneToHub, RingEndReason,
};
use serde_json::{json, Value};

/// Long enough to see a push that should not come (the hub sends within milliseconds).
const NO_PUSH: Duration = Duration::from_millis(300);

async fn put_quiet(hub: &TestHub, token: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (status, text) = http(
        hub.addr,
        "PUT",
        "/api/quiet",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(body),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Do-not-disturb for the next hour.
fn dnd() -> String {
    json!({ "utc_offset_min": 60, "schedule": [], "dnd_until_ms": now_ms() + 3_600_000 })
        .to_string()
}

async fn ring(door: &mut DoorClient, call: &str) {
    door.send(&DoorToHub::Ring {
        call_id: CallId::new(call),
    })
    .await;
    assert!(
        matches!(door.recv().await, HubToDoor::Ringing { .. }),
        "ringing first"
    );
}

/// The page must not be ringing: an `answer` is refused as not ringing here, and it is the
/// first message the page gets (nothing was queued before it).
async fn expect_not_ringing(page: &mut PhoneClient, call: &str) {
    page.send(&PhoneToHub::Answer {
        call_id: CallId::new(call),
    })
    .await;
    page.expect_error(ErrorCode::InvalidState).await;
}

#[tokio::test]
async fn the_api_stores_settings_and_refuses_bad_ones_with_a_code_and_field() {
    let hub = start_hub().await;
    let (door, _) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door).await;
    let auth = format!("Bearer {token}");
    let (status, body) = http(
        hub.addr,
        "GET",
        "/api/quiet",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["quiet_now"], false);
    assert_eq!(body["schedule"], json!([]));

    let nights = json!({
        "utc_offset_min": -300,
        "schedule": [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "24:00"}],
        "dnd_until_ms": null
    });
    let (status, body) = put_quiet(&hub, &token, &nights.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["quiet_now"], true, "every day, all day");
    let (_, again) = http(
        hub.addr,
        "GET",
        "/api/quiet",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    let again: Value = serde_json::from_str(&again).expect("json");
    assert_eq!(again["schedule"], nights["schedule"]);
    assert_eq!(again["utc_offset_min"], -300);

    for (body, code, field) in [
        ("{", "bad_json", None),
        (
            r#"{"schedule": [{"days": [7], "start": "22:00", "end": "07:00"}]}"#,
            "bad_days",
            Some("schedule[0].days"),
        ),
        (
            r#"{"schedule": [{"days": [1], "start": "22h", "end": "07:00"}]}"#,
            "bad_time",
            Some("schedule[0]"),
        ),
        (
            r#"{"schedule": [{"days": [1], "start": "07:00", "end": "07:00"}]}"#,
            "empty_window",
            Some("schedule[0]"),
        ),
        (
            r#"{"utc_offset_min": 900}"#,
            "bad_offset",
            Some("utc_offset_min"),
        ),
        (
            &json!({"dnd_until_ms": now_ms() + 40 * 86_400_000i64}).to_string(),
            "too_far",
            Some("dnd_until_ms"),
        ),
    ] {
        let (status, reply) = put_quiet(&hub, &token, body).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["code"], code, "{body}: {reply}");
        assert_eq!(reply["field"].as_str(), field, "{body}: {reply}");
    }
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(9000));
    let (status, reply) = put_quiet(&hub, &token, &big).await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let (status, _) = put_quiet(&hub, "not-a-token", &dnd()).await;
    assert_eq!(status, 401);
    // The refusals changed nothing.
    let (_, kept) = http(
        hub.addr,
        "GET",
        "/api/quiet",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&kept).expect("json")["utc_offset_min"],
        -300
    );
}

#[tokio::test]
async fn a_quiet_phone_neither_rings_nor_is_pushed_while_another_rings() {
    let mut mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (door_id, secret) = hub.add_door("Front door");
    let (quiet_token, _) = hub.pair_phone(&door_id).await;
    let (awake_token, _) = hub.pair_phone(&door_id).await;
    let quiet_sub = TestSubscription::new(mock.url("/push/quiet"));
    let awake_sub = TestSubscription::new(mock.url("/push/awake"));
    subscribe(&hub, &quiet_token, &quiet_sub).await;
    subscribe(&hub, &awake_token, &awake_sub).await;
    let (status, body) = put_quiet(&hub, &quiet_token, &dnd()).await;
    assert_eq!(
        (status, body["quiet_now"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    // The door first, so the pages' first messages are about the ring.
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut quiet_page, _) = connect_phone(&hub, &quiet_token).await;
    let (mut awake_page, _) = connect_phone(&hub, &awake_token).await;

    ring(&mut door, "c1").await;
    assert!(
        matches!(awake_page.recv().await, HubToPhone::Ring { .. }),
        "the awake phone rings"
    );
    expect_not_ringing(&mut quiet_page, "c1").await;
    assert_eq!(mock.next().await.path, "/push/awake");
    let more = mock.drain_for(NO_PUSH).await;
    assert!(
        more.is_empty(),
        "no push for the quiet phone: {:?}",
        more.iter().map(|r| &r.path).collect::<Vec<_>>()
    );

    // The awake phone's decline is the last one that counts.
    awake_page
        .send(&PhoneToHub::Decline {
            call_id: CallId::new("c1"),
        })
        .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::RingEnded {
            call_id: CallId::new("c1"),
            reason: RingEndReason::Declined
        }
    );
    // Both phones find the ring in the door's history.
    let auth = format!("Bearer {quiet_token}");
    let (_, events) = http(
        hub.addr,
        "GET",
        "/api/events",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert!(events.contains("\"c1\""), "{events}");
}

#[tokio::test]
async fn with_every_phone_quiet_the_ring_ends_at_once_as_quiet() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front door");
    let (token, _) = hub.pair_phone(&door_id).await;
    let (status, _) = put_quiet(&hub, &token, &dnd()).await;
    assert_eq!(status, 200);
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut page, _) = connect_phone(&hub, &token).await;
    ring(&mut door, "c1").await;
    assert_eq!(
        door.recv().await,
        HubToDoor::RingEnded {
            call_id: CallId::new("c1"),
            reason: RingEndReason::Quiet
        }
    );
    page.send(&PhoneToHub::Answer {
        call_id: CallId::new("c1"),
    })
    .await;
    page.expect_error(ErrorCode::UnknownCall).await;
    // The switch off again: the next press rings.
    let off = json!({ "dnd_until_ms": null }).to_string();
    assert_eq!(put_quiet(&hub, &token, &off).await.0, 200);
    ring(&mut door, "c2").await;
    assert!(matches!(page.recv().await, HubToPhone::Ring { .. }));
}

#[tokio::test]
async fn one_page_declining_does_not_end_a_ring_that_a_pushed_phone_still_hears() {
    let mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (door_id, secret) = hub.add_door("Front door");
    let (page_token, _) = hub.pair_phone(&door_id).await;
    let (pushed_token, _) = hub.pair_phone(&door_id).await;
    subscribe(
        &hub,
        &pushed_token,
        &TestSubscription::new(mock.url("/push/b")),
    )
    .await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut page, _) = connect_phone(&hub, &page_token).await;
    ring(&mut door, "c1").await;
    assert!(matches!(page.recv().await, HubToPhone::Ring { .. }));
    page.send(&PhoneToHub::Decline {
        call_id: CallId::new("c1"),
    })
    .await;
    // Still ringing: an offer is refused as "not answered yet", not "no such call".
    door.send(&DoorToHub::SdpOffer {
        call_id: CallId::new("c1"),
        sdp: "v=0".into(),
    })
    .await;
    door.expect_error(ErrorCode::InvalidState).await;
    // The pushed phone's notification opens the app, which connects and declines.
    let (mut late, _) = connect_phone(&hub, &pushed_token).await;
    assert!(
        matches!(late.recv().await, HubToPhone::Ring { .. }),
        "a late page rings"
    );
    late.send(&PhoneToHub::Decline {
        call_id: CallId::new("c1"),
    })
    .await;
    assert_eq!(
        door.recv().await,
        HubToDoor::RingEnded {
            call_id: CallId::new("c1"),
            reason: RingEndReason::Declined
        }
    );
}
