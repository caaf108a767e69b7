//! Pairing API, history, static files, persistence across restarts.

mod common;

use common::*;
use doorbell_hub::{now_ms, Timings, TlsMode};
use doorbell_protocol::{CallId, DoorToHub, HangUpReason, HubToDoor, HubToPhone, PhoneToHub};

/// `GET /api/events` as the phone with `token`; must succeed.
async fn history(hub: &TestHub, token: &str) -> serde_json::Value {
    get_json(hub, "/api/events", token).await
}

#[tokio::test]
async fn pairing_code_works_once_and_unknown_or_expired_codes_are_refused() {
    let hub = start_hub().await;
    let (door, _) = hub.add_door("Front");
    let (back, _) = hub.add_door("Back");
    let code = hub.hub.store().create_pairing_code(&door).expect("code");
    let body = serde_json::json!({ "code": code, "name": "Anna's phone" }).to_string();
    let (status, first) = http(hub.addr, "POST", "/api/pair", &[], Some(&body)).await;
    assert_eq!(status, 200, "{first}");
    let first: serde_json::Value = serde_json::from_str(&first).expect("json");
    let token = first["token"].as_str().expect("token");
    assert!(token.len() >= 32, "token has at least 128 bits");

    let (status, again) = http(hub.addr, "POST", "/api/pair", &[], Some(&body)).await;
    assert_eq!(status, 403, "{again}");
    assert!(again.contains("\"error\""), "{again}");

    let (status, _) = http(
        hub.addr,
        "POST",
        "/api/pair",
        &[],
        Some(r#"{"code":"nope"}"#),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(hub.addr, "POST", "/api/pair", &[], Some(r#"{"nocode":1}"#)).await;
    assert_eq!(status, 400);

    let now = now_ms();
    let expired = hub
        .hub
        .store()
        .create_pairing_code_at(&back, now - 20 * 60_000, now - 10 * 60_000)
        .expect("code");
    let body = serde_json::json!({ "code": expired }).to_string();
    let (status, text) = http(hub.addr, "POST", "/api/pair", &[], Some(&body)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("expired"), "{text}");

    // A second door added to the same phone keeps its token.
    let code = hub.hub.store().create_pairing_code(&back).expect("code");
    let body = serde_json::json!({ "code": code, "token": token }).to_string();
    let (status, second) = http(hub.addr, "POST", "/api/pair", &[], Some(&body)).await;
    assert_eq!(status, 200, "{second}");
    let second: serde_json::Value = serde_json::from_str(&second).expect("json");
    assert_eq!(second["token"], first["token"]);
    assert_eq!(second["phone_id"], first["phone_id"]);
    let (_phone, doors) = connect_phone(&hub, token).await;
    assert_eq!(doors.len(), 2);
}

#[tokio::test]
async fn pairing_while_connected_adds_the_door_live() {
    let hub = start_hub().await;
    let (front, _) = hub.add_door("Front");
    let (back, back_secret) = hub.add_door("Back");
    let (token, _) = hub.pair_phone(&front).await;
    let (mut phone, doors) = connect_phone(&hub, &token).await;
    assert_eq!(doors.len(), 1);
    let code = hub.hub.store().create_pairing_code(&back).expect("code");
    let body = serde_json::json!({ "code": code, "token": token }).to_string();
    let (status, _) = http(hub.addr, "POST", "/api/pair", &[], Some(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(
        phone.recv().await,
        HubToPhone::DoorStatus {
            door_id: back.clone(),
            online: false
        }
    );
    let mut back_door = connect_door(&hub, &back, &back_secret).await;
    assert!(matches!(
        phone.recv().await,
        HubToPhone::DoorStatus { online: true, .. }
    ));
    back_door
        .send(&DoorToHub::Ring {
            call_id: CallId::new("b1"),
        })
        .await;
    assert!(matches!(
        back_door.recv().await,
        HubToDoor::Ringing { phones: 1, .. }
    ));
    assert!(matches!(phone.recv().await, HubToPhone::Ring { .. }));
}

#[tokio::test]
async fn state_survives_a_restart_and_history_is_recorded() {
    let mut hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let (token, phone_id) = hub.pair_phone(&door).await;
    {
        let mut d = connect_door(&hub, &door, &secret).await;
        let (mut p, _) = connect_phone(&hub, &token).await;
        d.send(&DoorToHub::Ring {
            call_id: CallId::new("c1"),
        })
        .await;
        assert!(matches!(d.recv().await, HubToDoor::Ringing { .. }));
        assert!(matches!(p.recv().await, HubToPhone::Ring { .. }));
        p.send(&PhoneToHub::Answer {
            call_id: CallId::new("c1"),
        })
        .await;
        assert!(matches!(d.recv().await, HubToDoor::Answered { .. }));
        p.send(&PhoneToHub::HangUp {
            call_id: CallId::new("c1"),
            reason: HangUpReason::Normal,
        })
        .await;
        assert!(matches!(d.recv().await, HubToDoor::HangUp { .. }));
    }
    hub.stop().await;
    let dir = std::mem::replace(&mut hub.dir, tempfile::tempdir().expect("tempdir"));
    drop(hub);

    let hub = start_hub_in(dir, Timings::default(), TlsMode::Plain).await;
    let _d = connect_door(&hub, &door, &secret).await;
    let (_p, doors) = connect_phone(&hub, &token).await;
    assert_eq!(doors.len(), 1);
    assert!(doors[0].online);

    let v = history(&hub, &token).await;
    let body = v.to_string();
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["ended", "answered", "ring"], "newest first: {body}");
    assert_eq!(v["events"][1]["phone_id"], phone_id.as_str());
    let (status, _) = http(
        hub.addr,
        "GET",
        "/api/events",
        &[("Authorization", "Bearer nope")],
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn serves_app_and_health_with_security_headers() {
    let hub = start_hub().await;
    let stream = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let (status, head, body) = http_on(stream, "GET", "/healthz", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");

    // Whatever the web app consists of at build time is served with its type.
    for asset in doorbell_hub::testing::ASSETS {
        let path = format!("/{}", asset.name);
        let stream = tokio::net::TcpStream::connect(hub.addr)
            .await
            .expect("connect");
        let (status, head, _) = http_on(stream, "GET", &path, &[], None).await;
        assert_eq!(status, 200, "{path}");
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("content-type: {}", asset.content_type)),
            "{path}: {head}"
        );
        assert!(head.contains("cache-control: no-cache"), "{path}: {head}");
    }
    if doorbell_hub::testing::find_asset("/").is_some() {
        let (status, _) = http(hub.addr, "GET", "/", &[], None).await;
        assert_eq!(status, 200);
    }
    let (status, _) = http(hub.addr, "GET", "/nope.js", &[], None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn missed_ring_reaches_online_phones_and_the_history_and_a_bad_time_is_a_typed_error() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door).await;
    let mut d = connect_door(&hub, &door, &secret).await;
    let (mut p, _) = connect_phone(&hub, &token).await;

    // Unset clocks: 1970, a year ahead, u64::MAX. Each gets invalid_timestamp; the
    // connection stays open and nothing is recorded or shown.
    let year_ms = 365 * 24 * 3600 * 1000;
    for at_ms in [0, (now_ms() + year_ms) as u64, u64::MAX] {
        d.send(&DoorToHub::MissedRing { at_ms }).await;
        d.expect_error(doorbell_protocol::ErrorCode::InvalidTimestamp)
            .await;
    }

    let at_ms = (now_ms() - 90_000) as u64;
    d.send(&DoorToHub::MissedRing { at_ms }).await;
    assert_eq!(
        p.recv().await,
        HubToPhone::MissedRing {
            door_id: door.clone(),
            door_name: "Front".into(),
            at_ms,
        }
    );

    let v = history(&hub, &token).await;
    let body = v.to_string();
    let events = v["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["kind"], "missed_ring");
    assert_eq!(events[0]["at"], at_ms);
    assert_eq!(events[0]["door_id"], door.as_str());
    assert!(events[0].get("call_id").is_none(), "no call: {body}");
}
