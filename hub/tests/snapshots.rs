//! The visitor's snapshots and the history over HTTP: the door's upload (auth, limits, bad
//! input), capability URLs (wait for the upload, expire), phone access limited to paired
//! doors, the `snapshot` message, paging, deleting and retention.

mod common;

use std::time::Duration;

use common::*;
use doorbell_hub::{HistoryConfig, Timings, TlsMode};
use doorbell_protocol::{CallId, DoorId, DoorToHub, HubToDoor, HubToPhone};

/// A minimal JPEG-shaped body (SOI, an APP0 marker, EOI): the hub checks the magic bytes only.
fn jpeg(fill: u8, len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.resize(len - 2, fill);
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

fn door_auth(door: &DoorId, secret: &str) -> String {
    format!("Bearer {}:{secret}", door.as_str())
}

async fn upload(hub: &TestHub, auth: &str, query: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, _, body) = http_bytes(
        hub.addr,
        "POST",
        &format!("/api/snapshots?{query}"),
        &[("Authorization", auth), ("Content-Type", "image/jpeg")],
        body,
    )
    .await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

async fn get(hub: &TestHub, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http_bytes(hub.addr, "GET", path, &headers, &[]).await
}

fn snapshot_files(hub: &TestHub) -> usize {
    std::fs::read_dir(hub.dir.path().join("snapshots"))
        .expect("snapshots dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        })
        .count()
}

async fn ring(hub: &TestHub, door: &DoorId, secret: &str, call: &str) -> DoorClient {
    let mut client = connect_door(hub, door, secret).await;
    client
        .send(&DoorToHub::Ring {
            call_id: CallId::new(call),
        })
        .await;
    assert!(
        matches!(client.recv().await, HubToDoor::Ringing { .. }),
        "the hub did not confirm the ring"
    );
    client
}

fn in_an_hour() -> i64 {
    doorbell_hub::now_ms() + 3_600_000
}

#[tokio::test]
async fn uploads_need_the_doors_credentials_a_jpeg_and_a_sane_size() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let good = door_auth(&door, &secret);
    // (what, Authorization, query, body, status, error code)
    type Case<'a> = (&'a str, String, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no credentials",
            String::new(),
            "call_id=c1",
            jpeg(1, 100),
            401,
            "unauthorized",
        ),
        (
            "wrong secret",
            door_auth(&door, "nope"),
            "call_id=c1",
            jpeg(1, 100),
            401,
            "unauthorized",
        ),
        (
            "unknown door",
            door_auth(&DoorId::new("d-x"), &secret),
            "call_id=c1",
            jpeg(1, 100),
            401,
            "unauthorized",
        ),
        (
            "a PNG",
            good.clone(),
            "call_id=c1",
            b"\x89PNG\r\n\x1a\n0000".to_vec(),
            400,
            "not_jpeg",
        ),
        (
            "empty",
            good.clone(),
            "call_id=c1",
            Vec::new(),
            400,
            "not_jpeg",
        ),
        (
            "no target",
            good.clone(),
            "",
            jpeg(1, 100),
            400,
            "bad_target",
        ),
        (
            "both targets",
            good.clone(),
            "call_id=c1&missed_at_ms=5",
            jpeg(1, 100),
            400,
            "bad_target",
        ),
        (
            "a 1970 missed ring",
            good.clone(),
            "missed_at_ms=5",
            jpeg(1, 100),
            400,
            "invalid_timestamp",
        ),
        (
            "too large",
            good.clone(),
            "call_id=c1",
            jpeg(1, 256 * 1024 + 1),
            413,
            "too_large",
        ),
    ];
    for (what, auth, query, body, status, code) in cases {
        let auth = if auth.is_empty() {
            "Basic x".to_owned()
        } else {
            auth
        };
        let (got, json) = upload(&hub, &auth, query, &body).await;
        assert_eq!(got, status, "{what}: {json}");
        assert_eq!(json["code"], code, "{what}: {json}");
        assert!(json["error"].is_string(), "{what}: {json}");
    }
    assert_eq!(snapshot_files(&hub), 0, "a refused upload left a file");
    let (status, json) = upload(&hub, &good, "call_id=c1", &jpeg(1, 256 * 1024)).await;
    assert_eq!(status, 201, "{json}");
    assert!(json["snapshot_id"].is_i64(), "{json}");
    assert_eq!(snapshot_files(&hub), 1);
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = hub.dir.path().join("snapshots");
        let file = std::fs::read_dir(&dir)
            .expect("dir")
            .next()
            .expect("a file")
            .expect("entry");
        assert_eq!(
            file.metadata().expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let dir_mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
    // A retry replaces, it does not add.
    let (status, _) = upload(&hub, &good, "call_id=c1", &jpeg(2, 1000)).await;
    assert_eq!(status, 201);
    assert_eq!(snapshot_files(&hub), 1);
}

#[tokio::test]
async fn a_capability_minted_at_ring_time_serves_the_upload_and_expires() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let call = CallId::new("c-1");
    let url = hub.hub.snapshot_capability(&door, &call, in_an_hour());
    let expired = hub
        .hub
        .snapshot_capability(&door, &call, doorbell_hub::now_ms() - 1);
    // The GET starts before the upload and waits for it (bounded by snapshot_wait, 3 s).
    let waiting = {
        let addr = hub.addr;
        let url = url.clone();
        tokio::spawn(async move { http_bytes(addr, "GET", &url, &[], &[]).await })
    };
    let image = jpeg(7, 5000);
    let (status, json) = upload(&hub, &door_auth(&door, &secret), "call_id=c-1", &image).await;
    assert_eq!(status, 201, "{json}");
    let (status, head, body) = within("the waiting capability GET", waiting)
        .await
        .expect("task");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/jpeg"),
        "{head}"
    );
    assert_eq!(body, image);
    // No header needed, and it keeps working until it expires.
    assert_eq!(get(&hub, &url, None).await.0, 200);
    assert_eq!(
        get(&hub, &expired, None).await.0,
        410,
        "an expired capability still works"
    );
    // A forged one is not found.
    let forged = format!("{}x", &url[..url.len() - 1]);
    assert_eq!(get(&hub, &forged, None).await.0, 404);
}

#[tokio::test]
async fn a_capability_without_an_upload_gives_up_after_the_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(&dir, TlsMode::Plain);
    let timings = Timings {
        snapshot_wait: Duration::from_millis(50),
        ..Timings::default()
    };
    let hub = start_hub_with_config(dir, config, timings).await;
    let (door, _) = hub.add_door("Front");
    let url = hub
        .hub
        .snapshot_capability(&door, &CallId::new("never"), in_an_hour());
    let (status, _, body) = get(&hub, &url, None).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn phones_see_snapshots_of_their_doors_only_and_hear_when_one_arrives() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let (other_door, other_secret) = hub.add_door("Back");
    let (mine, _) = hub.pair_phone(&door).await;
    let (stranger, _) = hub.pair_phone(&other_door).await;
    let (mut phone, _) = connect_phone(&hub, &mine).await;
    let (mut other_phone, _) = connect_phone(&hub, &stranger).await;
    let _door_client = ring(&hub, &door, &secret, "c-9").await;
    assert!(matches!(
        phone.recv().await,
        HubToPhone::DoorStatus { online: true, .. }
    ));
    assert!(matches!(phone.recv().await, HubToPhone::Ring { .. }));

    let image = jpeg(3, 2000);
    let (status, json) = upload(&hub, &door_auth(&door, &secret), "call_id=c-9", &image).await;
    assert_eq!(status, 201, "{json}");
    let id = json["snapshot_id"].as_i64().expect("id");
    let HubToPhone::Snapshot { call_id, url } = phone.recv().await else {
        panic!("expected a snapshot message");
    };
    assert_eq!(call_id, CallId::new("c-9"));
    assert_eq!(
        get(&hub, &url, None).await.2,
        image,
        "the message's URL serves the upload"
    );

    let path = format!("/api/snapshots/{id}");
    let (status, _, body) = get(&hub, &path, Some(&mine)).await;
    assert_eq!((status, body), (200, image));
    assert_eq!(get(&hub, &path, Some(&stranger)).await.0, 404);
    assert_eq!(get(&hub, &path, None).await.0, 401);
    assert_eq!(get(&hub, &path, Some("nope")).await.0, 401);
    // The other door's phone heard nothing: the next thing it hears is its own door coming online.
    let _back = connect_door(&hub, &other_door, &other_secret).await;
    assert!(
        matches!(
            other_phone.recv().await,
            HubToPhone::DoorStatus { online: true, .. }
        ),
        "a phone of another door heard of the snapshot"
    );
}

async fn events(hub: &TestHub, token: &str, query: &str) -> serde_json::Value {
    let (status, _, body) = get(hub, &format!("/api/events{query}"), Some(token)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

async fn delete(hub: &TestHub, token: &str, path: &str) -> u16 {
    let auth = format!("Bearer {token}");
    http_bytes(hub.addr, "DELETE", path, &[("Authorization", &auth)], &[])
        .await
        .0
}

#[tokio::test]
async fn history_pages_carry_snapshots_and_deletes_remove_files_for_paired_phones_only() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let (other_door, _) = hub.add_door("Back");
    let (mine, _) = hub.pair_phone(&door).await;
    let (stranger, _) = hub.pair_phone(&other_door).await;
    for call in ["c-1", "c-2", "c-3"] {
        let mut client = ring(&hub, &door, &secret, call).await;
        let (status, _) = upload(
            &hub,
            &door_auth(&door, &secret),
            &format!("call_id={call}"),
            &jpeg(1, 500),
        )
        .await;
        assert_eq!(status, 201);
        client
            .send(&DoorToHub::CancelRing {
                call_id: CallId::new(call),
                reason: doorbell_protocol::RingEndReason::Timeout,
            })
            .await;
        drop(client);
    }
    // Unpaged: the old shape (events, newest first), now with ids and snapshots.
    let all = events(&hub, &mine, "").await;
    let list = all["events"].as_array().expect("events");
    assert!(list.len() >= 6, "{all}");
    assert!(all.get("next_before").is_none(), "{all}");
    // Paged: one ring (and its end) at a time, each ring with a capability URL that works.
    let mut before = String::new();
    let mut rings = Vec::new();
    for _ in 0..10 {
        let page = events(&hub, &mine, &format!("?limit=2{before}")).await;
        for e in page["events"].as_array().expect("events") {
            if e["kind"] == "ring" {
                let url = e["snapshot"].as_str().expect("a ring with a snapshot URL");
                assert_eq!(get(&hub, url, None).await.0, 200, "{e}");
                rings.push((e["call_id"].clone(), e["id"].as_i64().expect("id")));
            }
        }
        match page["next_before"].as_i64() {
            Some(id) => before = format!("&before={id}"),
            None => break,
        }
    }
    let calls: Vec<_> = rings
        .iter()
        .map(|(c, _)| c.as_str().unwrap_or(""))
        .collect();
    assert_eq!(calls, vec!["c-3", "c-2", "c-1"]);
    assert_eq!(
        events(&hub, &stranger, "?limit=10").await["events"],
        serde_json::json!([])
    );
    assert_eq!(get(&hub, "/api/events?limit=0", Some(&mine)).await.0, 400);

    // Delete one call: not the stranger's to delete; then gone with its file.
    let (_, ring_id) = rings[0];
    assert_eq!(
        delete(&hub, &stranger, &format!("/api/events/{ring_id}")).await,
        404
    );
    assert_eq!(
        delete(&hub, &mine, &format!("/api/events/{ring_id}")).await,
        204
    );
    let left = events(&hub, &mine, "").await;
    assert!(
        !left["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["call_id"] == "c-3"),
        "{left}"
    );
    // Delete the door's whole history.
    let by_door = format!("/api/events?door_id={}", door.as_str());
    assert_eq!(delete(&hub, &stranger, &by_door).await, 404);
    assert_eq!(delete(&hub, &mine, &by_door).await, 204);
    assert_eq!(
        events(&hub, &mine, "").await["events"],
        serde_json::json!([])
    );
    assert_eq!(snapshot_files(&hub), 0, "files left behind");
}

#[tokio::test]
async fn retention_by_bytes_deletes_files_as_well_as_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(&dir, TlsMode::Plain);
    config.history = HistoryConfig {
        max_bytes: 2500,
        ..HistoryConfig::default()
    };
    let hub = start_hub_with_config(dir, config, Timings::default()).await;
    let (door, secret) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door).await;
    for call in ["c-1", "c-2", "c-3", "c-4"] {
        let _client = ring(&hub, &door, &secret, call).await;
        let (status, _) = upload(
            &hub,
            &door_auth(&door, &secret),
            &format!("call_id={call}"),
            &jpeg(1, 1000),
        )
        .await;
        assert_eq!(status, 201);
    }
    assert_eq!(snapshot_files(&hub), 2, "pruned snapshots left their files");
    let page = events(&hub, &token, "?limit=50").await;
    let with_snapshot: Vec<_> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e.get("snapshot").is_some())
        .map(|e| e["call_id"].clone())
        .collect();
    assert_eq!(with_snapshot, vec!["c-4", "c-3"], "{page}");
}
