//! Quick replies over HTTP: a phone's clip (Ogg or WebM Opus) is stored for its door's
//! household, listed, fetched by the door with its own credentials; bad clips (too big, too
//! long, not Opus, over the household's quota) get a typed error and nothing is kept.

mod common;

use common::*;
use doorbell_protocol::DoorId;
use serde_json::Value;

const OGG: &[u8] = include_bytes!("../../tests/fixtures/voice/tone-1s.ogg");
const WEBM: &[u8] = include_bytes!("../../tests/fixtures/voice/tone-1s.webm");

async fn post(hub: &TestHub, token: &str, door: &DoorId, label: &str, body: &[u8]) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (status, _, body) = http_bytes(
        hub.addr,
        "POST",
        &format!("/api/replies?door_id={}&label={label}", door.as_str()),
        &[("Authorization", &auth), ("Content-Type", "audio/webm")],
        body,
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn files(hub: &TestHub) -> usize {
    std::fs::read_dir(hub.dir.path().join("snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_households_clips_are_stored_listed_and_fetched_by_its_door_only() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let (other, other_secret) = hub.add_door("Back");
    let (token, _) = hub.pair_phone(&door).await;
    let (flatmate, _) = hub.pair_phone(&door).await;
    let (status, body) = post(&hub, &token, &door, "Coming", WEBM).await;
    assert_eq!(status, 201, "{body}");
    let webm_id = body["reply_id"].as_i64().expect("id");
    assert!(
        (950..=1100).contains(&body["duration_ms"].as_u64().expect("ms")),
        "{body}"
    );
    let (status, body) = post(&hub, &token, &door, "Leave%20it%20at%20the%20door", OGG).await;
    assert_eq!(status, 201, "{body}");

    // The flatmate's phone sees both.
    let auth = format!("Bearer {flatmate}");
    let (status, _, listed) = http_bytes(
        hub.addr,
        "GET",
        &format!("/api/replies?door_id={}", door.as_str()),
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_slice(&listed).expect("json");
    let labels: Vec<&str> = listed["replies"]
        .as_array()
        .expect("replies")
        .iter()
        .map(|r| r["label"].as_str().expect("label"))
        .collect();
    assert_eq!(labels, ["Coming", "Leave it at the door"]);
    assert_eq!(listed["replies"][0]["content_type"], "audio/webm");

    // The door fetches it with its own credentials; another door cannot.
    let door_auth = format!("Bearer {}:{secret}", door.as_str());
    let (status, head, bytes) = http_bytes(
        hub.addr,
        "GET",
        &format!("/api/replies/{webm_id}"),
        &[("Authorization", &door_auth)],
        &[],
    )
    .await;
    assert_eq!((status, bytes.as_slice()), (200, WEBM));
    assert!(head.to_ascii_lowercase().contains("audio/webm"), "{head}");
    let other_auth = format!("Bearer {}:{other_secret}", other.as_str());
    let (status, _, _) = http_bytes(
        hub.addr,
        "GET",
        &format!("/api/replies/{webm_id}"),
        &[("Authorization", &other_auth)],
        &[],
    )
    .await;
    assert_eq!(status, 404);
    // A phone of another door can neither list nor upload for this one.
    let (stranger, _) = hub.pair_phone(&other).await;
    let (status, body) = post(&hub, &stranger, &door, "Hi", WEBM).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_door")));

    let (status, _, _) = http_bytes(
        hub.addr,
        "DELETE",
        &format!("/api/replies/{webm_id}"),
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(files(&hub), 1, "the deleted clip's file is gone");
}

#[tokio::test]
async fn bad_clips_get_a_typed_error_and_nothing_is_kept() {
    let hub = start_hub().await;
    let (door, _) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door).await;
    let mut long = OGG.to_vec();
    let last = long.windows(4).rposition(|w| w == b"OggS").expect("page");
    long[last + 6..last + 14].copy_from_slice(&(312u64 + 40 * 48_000).to_le_bytes());
    let big = vec![0u8; 300 * 1024];
    for (label, body, status, code) in [
        ("Big", &big[..], 413, "too_large"),
        ("Long", &long[..], 400, "too_long"),
        (
            "Jpeg",
            &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0xFF, 0xD9][..],
            400,
            "not_opus",
        ),
        ("Cut", &WEBM[..WEBM.len() / 2], 400, "not_opus"),
        ("", WEBM, 400, "bad_label"),
    ] {
        let (got, body) = post(&hub, &token, &door, label, body).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{label}: {body}"
        );
    }
    let (status, _) = post(&hub, "nope", &door, "X", WEBM).await;
    assert_eq!(status, 401);
    assert_eq!(files(&hub), 0, "nothing kept");

    // The household's quota: 16 clips.
    for i in 0..16 {
        let (status, body) = post(&hub, &token, &door, &format!("R{i}"), WEBM).await;
        assert_eq!(status, 201, "{i}: {body}");
    }
    let (status, body) = post(&hub, &token, &door, "One%20more", WEBM).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("over_quota")),
        "{body}"
    );
    assert_eq!(files(&hub), 16, "the refused clip was not written");
}
