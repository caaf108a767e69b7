//! Web Push and ntfy end to end: a real hub, real WebSockets for the door and phones, and a
//! mock RFC 8030 push service on 127.0.0.1 that checks VAPID and decrypts what it receives.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::push_service::{
    eventually, push_hub, subscribe, subscription_call, vapid_key, verify_vapid, MockPushService,
    Received, TestSubscription,
};
use common::*;
use doorbell_hub::now_ms;
use doorbell_hub::{Timings, TlsMode};
use doorbell_protocol::{
    CallId, DoorToHub, HangUpReason, HubToDoor, HubToPhone, PhoneToHub, RingEndReason,
};
use serde_json::{json, Value};

/// Long enough to see a request that should not come (the hub sends within milliseconds).
const QUIET: Duration = Duration::from_millis(300);

/// Checks the headers every push carries and returns the decrypted JSON payload.
fn open(push: &Received, sub: &TestSubscription, key: &str, origin: &str) -> Value {
    assert_eq!(push.method, "POST");
    assert_eq!(push.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(push.header("urgency"), Some("high"));
    let topic = push.header("topic").expect("Topic");
    assert!(
        topic.len() <= 32
            && topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "Topic {topic:?} is not <= 32 base64url characters"
    );
    verify_vapid(&push.headers, key, origin);
    let payload = sub.decrypt(&push.body);
    assert!(payload.len() < 4096, "payload {} bytes", payload.len());
    serde_json::from_slice(&payload).expect("payload is JSON")
}

fn ttl(push: &Received) -> u64 {
    push.header("ttl")
        .and_then(|t| t.parse().ok())
        .expect("TTL")
}

async fn ring(door: &mut DoorClient, call: &str) {
    door.send(&DoorToHub::Ring {
        call_id: CallId::new(call),
    })
    .await;
    match door.recv().await {
        HubToDoor::Ringing { .. } => {}
        other => panic!("expected ringing, got {other:?}"),
    }
}

#[test]
fn our_decryption_matches_the_rfc_8291_example() {
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s).expect("base64url");
    let sub = TestSubscription::from_keys(
        String::new(),
        &b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"),
        &b64("BTBZMqHH6r4Tts7J_aSIgg"),
    );
    let body = b64("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN");
    assert_eq!(
        sub.decrypt(&body),
        b"When I grow up, I want to be a watermelon"
    );
}

#[tokio::test]
async fn ring_and_each_way_it_ends_are_pushed_encrypted_and_signed() {
    let mut mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (door_id, secret) = hub.add_door("Front door");
    let (token, _) = hub.pair_phone(&door_id).await;
    let sub = TestSubscription::new(mock.url("/push/phone-a"));
    subscribe(&hub, &token, &sub).await;
    let key = vapid_key(&hub).await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&key).expect("key").len(), 65);
    let origin = mock.origin();
    let mut door = connect_door(&hub, &door_id, &secret).await;

    // 1. No page open anywhere: the push is how this phone rings. The door gives up.
    let before = now_ms();
    ring(&mut door, "c1").await;
    let push = mock.next().await;
    assert_eq!(push.path, "/push/phone-a");
    assert!(ttl(&push) <= 60, "a ring's TTL is at most 60 s");
    let topic = push.header("topic").expect("topic").to_owned();
    let payload = open(&push, &sub, &key, &origin);
    assert_eq!(payload["type"], "ring");
    assert_eq!(payload["call_id"], "c1");
    assert_eq!(payload["door_id"], door_id.as_str());
    assert_eq!(payload["door_name"], "Front door");
    // The snapshot's capability URL, minted at ring time (the door uploads right after).
    let snapshot = payload["snapshot"].as_str().expect("a snapshot URL");
    let prefix = format!("http://{}/api/snapshots/cap/", hub.addr);
    assert!(snapshot.starts_with(&prefix), "{snapshot}");
    let at = payload["at_ms"].as_i64().expect("at_ms");
    assert!((before..=now_ms()).contains(&at), "at_ms {at}");
    door.send(&DoorToHub::CancelRing {
        call_id: CallId::new("c1"),
        reason: RingEndReason::Timeout,
    })
    .await;
    let ended = mock.next().await;
    assert_eq!(
        ended.header("topic"),
        Some(topic.as_str()),
        "same Topic replaces the ring"
    );
    let payload = open(&ended, &sub, &key, &origin);
    assert_eq!(payload["type"], "ring_ended");
    assert_eq!(payload["call_id"], "c1");
    assert_eq!(payload["reason"], "timeout");

    // 2. Answered on an open page: the push still went out, and is ended as "answered".
    let (mut page, _) = connect_phone(&hub, &token).await;
    ring(&mut door, "c2").await;
    assert!(matches!(page.recv().await, HubToPhone::Ring { .. }));
    assert_eq!(
        open(&mock.next().await, &sub, &key, &origin)["call_id"],
        "c2"
    );
    page.send(&PhoneToHub::Answer {
        call_id: CallId::new("c2"),
    })
    .await;
    let payload = open(&mock.next().await, &sub, &key, &origin);
    assert_eq!(
        (payload["type"].as_str(), payload["reason"].as_str()),
        (Some("ring_ended"), Some("answered"))
    );
    assert!(matches!(door.recv().await, HubToDoor::Answered { .. }));
    page.send(&PhoneToHub::HangUp {
        call_id: CallId::new("c2"),
        reason: HangUpReason::Normal,
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::HangUp { .. }));

    // 3. Declined by every phone.
    ring(&mut door, "c3").await;
    assert!(matches!(page.recv().await, HubToPhone::Ring { .. }));
    assert_eq!(
        open(&mock.next().await, &sub, &key, &origin)["call_id"],
        "c3"
    );
    page.send(&PhoneToHub::Decline {
        call_id: CallId::new("c3"),
    })
    .await;
    assert_eq!(
        open(&mock.next().await, &sub, &key, &origin)["reason"],
        "declined"
    );
    assert!(matches!(door.recv().await, HubToDoor::RingEnded { .. }));

    // 4. The door went offline while ringing.
    ring(&mut door, "c4").await;
    assert_eq!(
        open(&mock.next().await, &sub, &key, &origin)["call_id"],
        "c4"
    );
    drop(door);
    let payload = open(&mock.next().await, &sub, &key, &origin);
    assert_eq!(
        (payload["call_id"].as_str(), payload["reason"].as_str()),
        (Some("c4"), Some("door_offline"))
    );
    assert!(
        mock.drain_for(QUIET).await.is_empty(),
        "one push per ring and one per end"
    );
}

#[tokio::test]
async fn a_gone_subscription_is_deleted_and_a_busy_service_is_retried() {
    let mut mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (door_id, secret) = hub.add_door("Front door");
    let (token, phone_id) = hub.pair_phone(&door_id).await;
    let gone = TestSubscription::new(mock.url("/push/gone"));
    let busy = TestSubscription::new(mock.url("/push/busy"));
    subscribe(&hub, &token, &gone).await;
    subscribe(&hub, &token, &busy).await;
    mock.reply_next("/push/gone", 410, &[]);
    mock.reply_next("/push/busy", 429, &[("Retry-After", "1")]);
    mock.reply_next("/push/busy", 503, &[]);
    let key = vapid_key(&hub).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    ring(&mut door, "c1").await;

    let mut busy_tries = Vec::new();
    let mut gone_tries = 0;
    while busy_tries.len() < 3 {
        let push = mock.next().await;
        match push.path.as_str() {
            "/push/gone" => gone_tries += 1,
            "/push/busy" => {
                assert_eq!(open(&push, &busy, &key, &mock.origin())["type"], "ring");
                busy_tries.push(push.at);
            }
            other => panic!("unexpected push to {other}"),
        }
    }
    assert_eq!(gone_tries, 1, "410 is not retried");
    assert!(
        busy_tries[1] - busy_tries[0] >= Duration::from_secs(1),
        "Retry-After: 1 was honoured ({:?})",
        busy_tries[1] - busy_tries[0]
    );
    let store = hub.hub.store().clone();
    eventually("the gone subscription to be deleted", || {
        store.push_endpoints(&phone_id).expect("store") == [busy.endpoint.clone()]
    })
    .await;

    door.send(&DoorToHub::CancelRing {
        call_id: CallId::new("c1"),
        reason: RingEndReason::Cancelled,
    })
    .await;
    let ended = mock.next().await;
    assert_eq!(ended.path, "/push/busy");
    assert_eq!(
        open(&ended, &busy, &key, &mock.origin())["reason"],
        "cancelled"
    );
    assert!(mock.drain_for(QUIET).await.is_empty());
}

#[tokio::test]
async fn a_subscription_never_reaches_another_doors_ring() {
    let mut mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (front, front_secret) = hub.add_door("Front");
    let (back, back_secret) = hub.add_door("Back");
    let (front_token, _) = hub.pair_phone(&front).await;
    let (back_token, _) = hub.pair_phone(&back).await;
    let front_sub = TestSubscription::new(mock.url("/push/front"));
    let back_sub = TestSubscription::new(mock.url("/push/back"));
    subscribe(&hub, &front_token, &front_sub).await;
    subscribe(&hub, &back_token, &back_sub).await;
    let key = vapid_key(&hub).await;

    for (door_id, secret, sub, path, name) in [
        (&back, &back_secret, &back_sub, "/push/back", "Back"),
        (&front, &front_secret, &front_sub, "/push/front", "Front"),
    ] {
        let mut door = connect_door(&hub, door_id, secret).await;
        ring(&mut door, "c1").await;
        let push = mock.next().await;
        assert_eq!(push.path, path);
        assert_eq!(open(&push, sub, &key, &mock.origin())["door_name"], name);
        door.send(&DoorToHub::CancelRing {
            call_id: CallId::new("c1"),
            reason: RingEndReason::Timeout,
        })
        .await;
        assert_eq!(mock.next().await.path, path);
        let stray = mock.drain_for(QUIET).await;
        assert!(
            stray.is_empty(),
            "{name}'s ring reached {:?}",
            stray[0].path
        );
    }
}

#[tokio::test]
async fn subscription_api_keeps_one_row_per_endpoint_and_four_per_phone() {
    let mock = MockPushService::start().await;
    let mut hub = push_hub(&mock, false).await;
    let (door_id, _) = hub.add_door("Front");
    let (token, phone_id) = hub.pair_phone(&door_id).await;
    let key = vapid_key(&hub).await;
    let point = URL_SAFE_NO_PAD.decode(&key).expect("base64url");
    assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");

    let subs: Vec<TestSubscription> = (0..5)
        .map(|i| TestSubscription::new(mock.url(&format!("/push/{i}"))))
        .collect();
    for sub in &subs[..4] {
        subscribe(&hub, &token, sub).await;
    }
    // The same endpoint again (new keys) replaces it, and makes it the newest.
    let renewed = TestSubscription::new(subs[0].endpoint.clone());
    subscribe(&hub, &token, &renewed).await;
    subscribe(&hub, &token, &subs[4]).await;
    let endpoints = |hub: &TestHub| hub.hub.store().push_endpoints(&phone_id).expect("store");
    let expected: Vec<String> = [2, 3, 0, 4]
        .iter()
        .map(|i| subs[*i].endpoint.clone())
        .collect();
    assert_eq!(endpoints(&hub), expected, "the oldest (1) went");

    let body = json!({ "endpoint": subs[2].endpoint }).to_string();
    assert_eq!(
        subscription_call(&hub, "DELETE", &token, &body).await.0,
        204
    );
    assert_eq!(
        subscription_call(&hub, "DELETE", &token, &body).await.0,
        204,
        "repeatable"
    );
    assert_eq!(endpoints(&hub).len(), 3);

    for (headers, what) in [
        (vec![], "no token"),
        (vec![("Authorization", "Bearer nope")], "unknown token"),
        (vec![("Authorization", "Basic abc")], "not a bearer token"),
    ] {
        for method in ["POST", "DELETE"] {
            let (status, text) = http(
                hub.addr,
                method,
                "/api/push/subscription",
                &headers,
                Some(&subs[1].json().to_string()),
            )
            .await;
            assert_eq!(status, 401, "{method} with {what}: {text}");
            let v: Value = serde_json::from_str(&text).expect("JSON error");
            assert_eq!(v["code"], "unauthorized");
        }
    }

    // The key survives a restart (browsers bind subscriptions to it).
    hub.stop().await;
    let dir = std::mem::replace(&mut hub.dir, tempfile::tempdir().expect("tempdir"));
    let again = start_hub_in(dir, Timings::default(), TlsMode::Plain).await;
    assert_eq!(vapid_key(&again).await, key);
}

#[tokio::test]
async fn every_bad_subscription_gets_a_400_naming_the_field() {
    let mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (door_id, _) = hub.add_door("Front");
    let (token, phone_id) = hub.pair_phone(&door_id).await;
    let good = TestSubscription::new(mock.url("/push/x")).json();
    let with = |pointer: &str, value: Value| {
        let mut body = good.clone();
        *body.pointer_mut(pointer).expect("field") = value;
        body.to_string()
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().expect("object").remove(field);
        body.to_string()
    };
    let key_without = |field: &str| {
        let mut body = good.clone();
        body["keys"].as_object_mut().expect("keys").remove(field);
        body.to_string()
    };
    let b64 = |n: usize| Value::from(URL_SAFE_NO_PAD.encode(vec![4u8; n]));
    let cases: Vec<(String, &str, &str)> = vec![
        ("{\"endpoint\":".into(), "body", "not_json"),
        ("not json at all".into(), "body", "not_json"),
        ("[1,2]".into(), "body", "wrong_type"),
        (without("endpoint"), "endpoint", "missing_field"),
        (without("keys"), "keys", "missing_field"),
        (key_without("p256dh"), "keys.p256dh", "missing_field"),
        (key_without("auth"), "keys.auth", "missing_field"),
        (with("/endpoint", 5.into()), "endpoint", "wrong_type"),
        (with("/keys", "k".into()), "keys", "wrong_type"),
        (with("/keys/p256dh", b64(33)), "keys.p256dh", "wrong_length"),
        (with("/keys/p256dh", b64(64)), "keys.p256dh", "wrong_length"),
        (with("/keys/p256dh", b64(65)), "keys.p256dh", "invalid_key"),
        (
            with("/keys/p256dh", "+/not*url".into()),
            "keys.p256dh",
            "not_base64url",
        ),
        (
            with("/keys/p256dh", "A".repeat(300).into()),
            "keys.p256dh",
            "too_long",
        ),
        (with("/keys/auth", b64(15)), "keys.auth", "wrong_length"),
        (with("/keys/auth", b64(17)), "keys.auth", "wrong_length"),
        (
            with("/keys/auth", "A".repeat(300).into()),
            "keys.auth",
            "too_long",
        ),
        (
            with("/expirationTime", 1000.into()),
            "expirationTime",
            "expired",
        ),
        (
            with(
                "/endpoint",
                format!("https://push.example.net/{}", "a".repeat(3000)).into(),
            ),
            "endpoint",
            "too_long",
        ),
        (
            with("/endpoint", "http://push.example.net/x".into()),
            "endpoint",
            "not_https",
        ),
        (
            with("/endpoint", "http://127.0.0.2:9/x".into()),
            "endpoint",
            "not_https",
        ),
        (
            with("/endpoint", "push.example.net/x".into()),
            "endpoint",
            "invalid_url",
        ),
        (
            with("/endpoint", "https://u:p@push.example.net/x".into()),
            "endpoint",
            "invalid_url",
        ),
        (
            with("/endpoint", "https://127.0.0.2/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://[::1]/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://10.0.0.8/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://192.168.1.1/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://172.20.0.1/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://169.254.169.254/latest".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://[fe80::1]/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://[fd12::1]/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://[::ffff:192.168.0.1]/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://localhost/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://printer.local/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://router/x".into()),
            "endpoint",
            "forbidden_host",
        ),
        (
            with("/endpoint", "https://2130706433/x".into()),
            "endpoint",
            "forbidden_host",
        ),
    ];
    for (body, field, code) in &cases {
        let (status, text) = subscription_call(&hub, "POST", &token, body).await;
        assert_eq!(status, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON error: {text}"));
        assert_eq!(
            (v["field"].as_str(), v["code"].as_str()),
            (Some(*field), Some(*code)),
            "{body}: {text}"
        );
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(field)),
            "{text}"
        );
    }
    for (body, field) in [
        ("nope", "body"),
        ("{}", "endpoint"),
        ("{\"endpoint\":1}", "endpoint"),
    ] {
        let (status, text) = subscription_call(&hub, "DELETE", &token, body).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(&format!("\"field\":\"{field}\"")), "{text}");
    }
    let huge = "x".repeat(64 * 1024);
    let (status, text) = subscription_call(&hub, "POST", &token, &huge).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    assert!(hub
        .hub
        .store()
        .push_endpoints(&phone_id)
        .expect("store")
        .is_empty());
}

#[tokio::test]
async fn ntfy_gets_one_post_per_ring_with_links_into_the_app() {
    let mut mock = MockPushService::start().await;
    let hub = push_hub(&mock, true).await;
    let (door_id, secret) = hub.add_door("Front door");
    let _ = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    ring(&mut door, "c1").await;
    let post = mock.next().await;
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/doorbell")
    );
    assert_eq!(post.header("title"), Some("Front door is ringing"));
    assert_eq!(post.header("priority"), Some("5"));
    assert_eq!(post.header("authorization"), Some("Bearer tk_test"));
    let app = format!("http://{}", hub.addr);
    let answer = format!("{app}/#answer=c1");
    assert_eq!(post.header("click"), Some(answer.as_str()));
    assert_eq!(
        post.header("actions"),
        Some(
            format!(
                "view, Answer, {answer}, clear=true; view, Decline, {app}/#decline=c1, clear=true"
            )
            .as_str()
        )
    );
    let attach = post.header("attach").expect("the snapshot is attached");
    assert!(attach.contains("/api/snapshots/cap/"), "{attach}");
    assert!(String::from_utf8_lossy(&post.body).contains("Front door"));
    door.send(&DoorToHub::CancelRing {
        call_id: CallId::new("c1"),
        reason: RingEndReason::Timeout,
    })
    .await;
    assert!(mock.drain_for(QUIET).await.is_empty(), "one POST per ring");
}
