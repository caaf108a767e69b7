//! Voice messages end to end over HTTP: the door's upload with its limits (too big, too long,
//! not Ogg Opus, wrong credentials: a typed error and nothing kept), the history's link, the
//! phone's access, and the push that tells the door's phones.

mod common;

use common::push_service::{push_hub, subscribe, MockPushService, TestSubscription};
use common::*;
use doorbell_protocol::{CallId, DoorId, DoorToHub, HubToDoor, RingEndReason};
use serde_json::Value;

/// One second of Opus in Ogg, made by GStreamer (`opusenc ! oggmux`).
const TONE: &[u8] = include_bytes!("../../tests/fixtures/voice/tone-1s.ogg");

fn door_auth(door: &DoorId, secret: &str) -> String {
    format!("Bearer {}:{secret}", door.as_str())
}

async fn upload(hub: &TestHub, auth: &str, query: &str, body: &[u8]) -> (u16, Value) {
    let (status, _, body) = http_bytes(
        hub.addr,
        "POST",
        &format!("/api/voice?{query}"),
        &[("Authorization", auth), ("Content-Type", "audio/ogg")],
        body,
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn stored_files(hub: &TestHub) -> usize {
    std::fs::read_dir(hub.dir.path().join("snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The same stream with its last page claiming `ms` milliseconds.
fn claiming(ms: u64) -> Vec<u8> {
    let mut bytes = TONE.to_vec();
    let last = bytes
        .windows(4)
        .rposition(|w| w == b"OggS")
        .expect("an Ogg page");
    let granule = 312 + ms * 48;
    bytes[last + 6..last + 14].copy_from_slice(&granule.to_le_bytes());
    bytes
}

/// A door rings, nobody answers: the call the message belongs to.
async fn missed_call(hub: &TestHub, door_id: &DoorId, secret: &str, call: &str) {
    let mut door = connect_door(hub, door_id, secret).await;
    door.send(&DoorToHub::Ring {
        call_id: CallId::new(call),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));
    door.send(&DoorToHub::CancelRing {
        call_id: CallId::new(call),
        reason: RingEndReason::Timeout,
    })
    .await;
}

#[tokio::test]
async fn a_voice_message_is_stored_listed_served_and_pushed() {
    let mut mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (door_id, secret) = hub.add_door("Front door");
    let (token, _) = hub.pair_phone(&door_id).await;
    let sub = TestSubscription::new(mock.url("/push/phone"));
    subscribe(&hub, &token, &sub).await;
    missed_call(&hub, &door_id, &secret, "c1").await;
    let (status, body) = upload(&hub, &door_auth(&door_id, &secret), "call_id=c1", TONE).await;
    assert_eq!(status, 201, "{body}");
    let ms = body["duration_ms"].as_u64().expect("duration_ms");
    assert!((900..=1100).contains(&ms), "about a second: {ms}");
    let voice_id = body["voice_id"].as_i64().expect("voice_id");

    // The ring's own pushes (a quick cancel may leave only its `ring_ended`) come first.
    let mut payload = Value::Null;
    for _ in 0..3 {
        let push = mock.next().await;
        payload = serde_json::from_slice(&sub.decrypt(&push.body)).expect("json");
        if payload["type"] == "voice_message" {
            break;
        }
    }
    assert_eq!(payload["type"], "voice_message");
    assert_eq!(payload["door_name"], "Front door");
    assert_eq!(payload["call_id"], "c1");
    let url = payload["voice"].as_str().expect("voice URL");
    let path = url
        .split_once(&hub.addr.to_string())
        .expect("absolute URL on the hub")
        .1;
    let (status, head, bytes) = http_bytes(hub.addr, "GET", path, &[], &[]).await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: audio/ogg"),
        "{head}"
    );
    assert_eq!(bytes, TONE);
    // A snapshot link for the same press does not open the voice message and vice versa.
    let snapshot_path = path.replace("/api/voice/cap/", "/api/snapshots/cap/");
    assert_eq!(
        http_bytes(hub.addr, "GET", &snapshot_path, &[], &[])
            .await
            .0,
        404
    );

    let auth = format!("Bearer {token}");
    let (_, _, events) = http_bytes(
        hub.addr,
        "GET",
        "/api/events",
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    let events: Value = serde_json::from_slice(&events).expect("json");
    let ring = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "ring")
        .expect("the ring");
    assert_eq!(ring["voice_id"], voice_id);
    assert!(ring["voice"]
        .as_str()
        .expect("voice link")
        .starts_with("/api/voice/cap/"));
    let (status, _, bytes) = http_bytes(
        hub.addr,
        "GET",
        &format!("/api/voice/{voice_id}"),
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!((status, bytes.len()), (200, TONE.len()));
    // The phone's snapshot endpoint does not serve it.
    let (status, _, _) = http_bytes(
        hub.addr,
        "GET",
        &format!("/api/snapshots/{voice_id}"),
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(status, 404);

    // Deleting the ring deletes its voice message.
    let ring_id = ring["id"].as_i64().expect("id");
    let (status, _, _) = http_bytes(
        hub.addr,
        "DELETE",
        &format!("/api/events/{ring_id}"),
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(stored_files(&hub), 0, "the file is gone");
}

#[tokio::test]
async fn bad_uploads_get_a_typed_error_and_nothing_is_kept() {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front door");
    let auth = door_auth(&door_id, &secret);
    missed_call(&hub, &door_id, &secret, "c1").await;
    let too_big = vec![0u8; 513 * 1024];
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0xFF, 0xD9];
    for (auth, query, body, status, code) in [
        (auth.as_str(), "call_id=c1", &too_big[..], 413, "too_large"),
        (
            auth.as_str(),
            "call_id=c1",
            &claiming(70_000)[..],
            400,
            "too_long",
        ),
        (auth.as_str(), "call_id=c1", &jpeg[..], 400, "not_ogg_opus"),
        (
            auth.as_str(),
            "call_id=c1",
            &TONE[..TONE.len() - 10],
            400,
            "not_ogg_opus",
        ),
        (
            auth.as_str(),
            "call_id=c1&missed_at_ms=1",
            TONE,
            400,
            "bad_target",
        ),
        ("Bearer d-x:nope", "call_id=c1", TONE, 401, "unauthorized"),
    ] {
        let (got, body) = upload(&hub, auth, query, body).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    assert_eq!(stored_files(&hub), 0, "nothing kept");
    let (status, body) = upload(&hub, &auth, "call_id=c1", &claiming(60_000)).await;
    assert_eq!(status, 201, "a minute is within the limit: {body}");
}
