//! The household (docs/PROTOCOL.md "Household"): roles, the owners' API, removing phones and
//! doors from the app and from the command line against a running hub, guests' ends.

mod common;

use std::time::Duration;

use common::*;
use doorbell_protocol::{
    CallId, DoorId, DoorToHub, ErrorCode, HubToDoor, HubToPhone, PhoneId, PhoneToHub, Role,
};

/// How fast a removed phone must lose its connection.
const CUT_OFF: Duration = Duration::from_secs(1);

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn api(
    hub: &TestHub,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, String) {
    let auth = bearer(token);
    http(hub.addr, method, path, &[("Authorization", &auth)], body).await
}

/// Reads until the hub closes the connection, within [`CUT_OFF`]; returns the close code.
async fn closed_within_a_second(phone: &mut PhoneClient) -> u16 {
    let frame = tokio::time::timeout(CUT_OFF, async {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match phone.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the removed phone's WebSocket was still open after {CUT_OFF:?}"));
    frame.map(|f| u16::from(f.code)).unwrap_or(0)
}

/// A door with an owner (`anna`) and a member (`ben`), all connected.
struct Household {
    hub: TestHub,
    door_id: DoorId,
    door: DoorClient,
    anna: (String, PhoneId, PhoneClient),
    ben: (String, PhoneId, PhoneClient),
}

async fn household() -> Household {
    let hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front door");
    let door = connect_door(&hub, &door_id, &secret).await;
    let (anna_token, anna_id) = hub.pair_phone(&door_id).await;
    let (mut anna, doors) = connect_phone(&hub, &anna_token).await;
    assert_eq!(doors[0].access.expect("access").role, Role::Owner);
    let (ben_token, ben_id) = hub.pair_phone(&door_id).await;
    // The owner hears who joined.
    match anna.recv().await {
        HubToPhone::PhoneJoined { phone_id, name, .. } => {
            assert_eq!(phone_id, ben_id);
            assert_eq!(name, "Phone");
        }
        other => panic!("expected phone_joined, got {other:?}"),
    }
    let (ben, doors) = connect_phone(&hub, &ben_token).await;
    assert_eq!(doors[0].access.expect("access").role, Role::Member);
    Household {
        hub,
        door_id,
        door,
        anna: (anna_token, anna_id, anna),
        ben: (ben_token, ben_id, ben),
    }
}

/// Rings and returns how many phones the hub says are ringing.
async fn ring(door: &mut DoorClient, n: u32) -> u32 {
    door.send(&DoorToHub::Ring {
        call_id: CallId::new(format!("c-house-{n}")),
    })
    .await;
    match door.recv().await {
        HubToDoor::Ringing { phones, .. } => phones,
        other => panic!("expected ringing, got {other:?}"),
    }
}

/// The door is told to forget Ben's certificate (docs/PROTOCOL.md "Pairing").
async fn assert_unpinned(h: &mut Household) {
    match h.door.recv().await {
        HubToDoor::Unpin { phone_id } => assert_eq!(phone_id, h.ben.1),
        other => panic!("expected unpin, got {other:?}"),
    }
}

/// After removal: the token is refused everywhere, and a ring reaches only the phones that
/// remain (`ringing` of them, the owner among them).
async fn assert_gone(h: &mut Household, token: &str, ringing: u32) {
    for path in [
        "/api/events".to_owned(),
        format!("/api/doors/{}/phones", h.door_id),
    ] {
        let (status, body) = api(&h.hub, "GET", &path, token, None).await;
        assert_eq!(status, 401, "GET {path}: {body}");
    }
    let mut again = PhoneClient::connect(&h.hub).await;
    again
        .send(&PhoneToHub::Hello {
            protocol_version: doorbell_protocol::PROTOCOL_VERSION,
            token: token.to_owned(),
        })
        .await;
    expect_refused(&mut again, ErrorCode::Unauthorized).await;
    assert_eq!(ring(&mut h.door, 9).await, ringing);
    // The owner rings (after whatever household news it was sent first).
    loop {
        if let HubToPhone::Ring { .. } = h.anna.2.recv().await {
            break;
        }
    }
}

#[tokio::test]
async fn an_owner_removes_a_connected_phone_which_is_cut_off_at_once() {
    let mut h = household().await;
    let path = format!("/api/doors/{}/phones/{}", h.door_id, h.ben.1);
    // A member may not remove others.
    let anna_path = format!("/api/doors/{}/phones/{}", h.door_id, h.anna.1);
    let (status, _) = api(&h.hub, "DELETE", &anna_path, &h.ben.0, None).await;
    assert_eq!(status, 403);
    let (status, body) = api(&h.hub, "DELETE", &path, &h.anna.0, None).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(closed_within_a_second(&mut h.ben.2).await, 4001);
    match h.anna.2.recv().await {
        HubToPhone::PhoneRemoved { phone_id, .. } => assert_eq!(phone_id, h.ben.1),
        other => panic!("expected phone_removed, got {other:?}"),
    }
    assert_unpinned(&mut h).await;
    let token = h.ben.0.clone();
    assert_gone(&mut h, &token, 1).await;
}

#[tokio::test]
async fn phones_remove_on_the_command_line_cuts_off_a_phone_of_a_running_hub() {
    let mut h = household().await;
    let ben = h.ben.1.to_string();
    hub_cli(&h.hub, &["phones", "remove", &ben]).await;
    assert_eq!(closed_within_a_second(&mut h.ben.2).await, 4001);
    assert!(matches!(
        h.anna.2.recv().await,
        HubToPhone::PhoneRemoved { .. }
    ));
    assert_unpinned(&mut h).await;
    let token = h.ben.0.clone();
    assert_gone(&mut h, &token, 1).await;
}

#[tokio::test]
async fn owners_list_rename_and_restrict_and_the_door_learns_it() {
    let mut h = household().await;
    let list = format!("/api/doors/{}/phones", h.door_id);
    let (status, _) = api(&h.hub, "GET", &list, &h.ben.0, None).await;
    assert_eq!(status, 403, "members do not manage the household");
    let ben = format!("{list}/{}", h.ben.1);
    let (status, body) = api(
        &h.hub,
        "PATCH",
        &ben,
        &h.anna.0,
        Some(r#"{"name":"Ben's phone","may_unlock":false}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    match h.ben.2.recv().await {
        HubToPhone::AccessChanged { access, .. } => assert!(!access.may_unlock),
        other => panic!("expected access_changed, got {other:?}"),
    }
    let (status, body) = api(&h.hub, "GET", &list, &h.anna.0, None).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let phones = v["phones"].as_array().expect("phones");
    assert_eq!(phones[0]["role"], "owner");
    assert_eq!(phones[1]["name"], "Ben's phone");
    assert_eq!(phones[1]["may_unlock"], false);
    // The door is told with the answer that this phone may not unlock.
    assert_eq!(ring(&mut h.door, 1).await, 2);
    let call_id = match h.ben.2.recv().await {
        HubToPhone::Ring { call_id, .. } => call_id,
        other => panic!("expected ring, got {other:?}"),
    };
    h.ben.2.send(&PhoneToHub::Answer { call_id }).await;
    match h.door.recv().await {
        HubToDoor::Answered { may_unlock, .. } => assert!(!may_unlock),
        other => panic!("expected answered, got {other:?}"),
    }
    // The last owner can neither leave nor be demoted while others remain.
    let anna = format!("{list}/{}", h.anna.1);
    let (status, _) = api(&h.hub, "DELETE", &anna, &h.anna.0, None).await;
    assert_eq!(status, 409);
    let (status, _) = api(
        &h.hub,
        "PATCH",
        &anna,
        &h.anna.0,
        Some(r#"{"role":"member"}"#),
    )
    .await;
    assert_eq!(status, 409);
    // A member may leave.
    let (status, _) = api(&h.hub, "DELETE", &ben, &h.ben.0, None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn a_guest_past_its_end_is_refused_and_not_rung() {
    let mut h = household().await;
    let until = doorbell_hub::now_ms() + 1500;
    let path = format!("/api/doors/{}/invites", h.door_id);
    let body = format!(r#"{{"role":"guest","may_view":false,"until_ms":{until}}}"#);
    let (status, _) = api(&h.hub, "POST", &path, &h.ben.0, Some(&body)).await;
    assert_eq!(status, 403, "members make no invites");
    let (status, _) = api(
        &h.hub,
        "POST",
        &path,
        &h.anna.0,
        Some(r#"{"role":"guest"}"#),
    )
    .await;
    assert_eq!(status, 400, "a guest needs an end");
    let (status, invite) = api(&h.hub, "POST", &path, &h.anna.0, Some(&body)).await;
    assert_eq!(status, 200, "{invite}");
    let v: serde_json::Value = serde_json::from_str(&invite).expect("json");
    let code = v["code"].as_str().expect("code");
    assert!(v["url"]
        .as_str()
        .expect("url")
        .ends_with(&format!("#pair={code}&door=Front%20door")));
    let (status, paired) = http(
        h.hub.addr,
        "POST",
        "/api/pair",
        &[],
        Some(&format!(r#"{{"code":"{code}","name":"Cleaner"}}"#)),
    )
    .await;
    assert_eq!(status, 200, "{paired}");
    let v: serde_json::Value = serde_json::from_str(&paired).expect("json");
    let token = v["token"].as_str().expect("token").to_owned();
    let (mut guest, doors) = connect_phone(&h.hub, &token).await;
    let access = doors[0].access.expect("access");
    assert_eq!(access.role, Role::Guest);
    assert!(!access.may_view);
    // The end passes: the guest is cut off without anyone doing anything.
    let cut = tokio::time::timeout(Duration::from_secs(3), async {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match guest.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the guest was still connected 1.5 s after its end");
    assert_eq!(cut, Some(4001));
    assert_gone(&mut h, &token, 2).await;
}

/// Runs `doorbell-hub --db <the test hub's database> args...` in its own process, as an
/// administrator would beside the running hub; returns its stdout.
async fn hub_cli(hub: &TestHub, args: &[&str]) -> String {
    let db = hub.dir.path().join("hub.sqlite3");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_doorbell-hub"))
            .arg("--db")
            .arg(db)
            .args(&args)
            .output()
            .expect("run doorbell-hub")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn a_rotated_door_secret_closes_the_door_and_the_old_one_is_refused() {
    let mut h = household().await;
    let door_id = h.door_id.clone();
    let line = hub_cli(
        &h.hub,
        &["doors", "rotate-secret", door_id.as_str(), "--json"],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(v["door_id"], door_id.as_str());
    let secret = v["secret"].as_str().expect("secret").to_owned();
    let frame = h.door.expect_closed().await;
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(4001));
    assert!(matches!(
        h.anna.2.recv().await,
        HubToPhone::DoorStatus { online: false, .. }
    ));
    connect_door(&h.hub, &door_id, &secret).await;
    hub_cli(&h.hub, &["doors", "remove", "Front door"]).await;
    assert_eq!(closed_within_a_second(&mut h.anna.2).await, 4001);
    let (status, _) = api(&h.hub, "GET", "/api/events", &h.anna.0, None).await;
    assert_eq!(status, 401, "a phone of no door is gone");
}

/// Ben asks to re-pin (it renewed its certificate) in the background; returns the answer.
fn repin(h: &Household) -> tokio::task::JoinHandle<(u16, String)> {
    let (addr, auth) = (h.hub.addr, bearer(&h.ben.0));
    let path = format!("/api/doors/{}/phones/me/repin", h.door_id);
    tokio::spawn(async move {
        let body = r#"{"old_fingerprint":"AA:01","new_fingerprint":"BB:02","proof":"00ff"}"#;
        http(addr, "POST", &path, &[("Authorization", &auth)], Some(body)).await
    })
}

/// The door's next `repin_request`: it names the caller (the hub cannot pick another phone).
async fn repin_request(h: &mut Household) -> u64 {
    loop {
        if let HubToDoor::RepinRequest(r) = h.door.recv().await {
            assert_eq!(
                r.phone_id, h.ben.1,
                "the hub relays the caller's own re-pin"
            );
            assert_eq!(
                (
                    r.old_fingerprint.as_str(),
                    r.new_fingerprint.as_str(),
                    r.proof.as_str()
                ),
                ("AA:01", "BB:02", "00ff")
            );
            return r.request_id;
        }
    }
}

#[tokio::test]
async fn a_phones_repin_goes_to_its_door_and_the_doors_answer_comes_back() {
    use doorbell_protocol::pairing::PairRefusal;
    let mut h = household().await;
    let asking = repin(&h);
    let request_id = repin_request(&mut h).await;
    h.door
        .send(&DoorToHub::PairRefused {
            request_id,
            reason: PairRefusal::NotPinned,
        })
        .await;
    let (status, body) = asking.await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not_pinned"), "{body}");

    let asking = repin(&h);
    let request_id = repin_request(&mut h).await;
    let access = doorbell_protocol::Access {
        role: Role::Member,
        may_unlock: true,
        may_view: true,
        until_ms: None,
    };
    h.door
        .send(&DoorToHub::PairAccepted { request_id, access })
        .await;
    let (status, body) = asking.await.unwrap();
    assert_eq!(status, 204, "{body}");

    // A door that is offline cannot re-pin: a typed 503 the phone retries after.
    drop(h.door);
    loop {
        if let HubToPhone::DoorStatus { online: false, .. } = h.ben.2.recv().await {
            break;
        }
    }
    let path = format!("/api/doors/{}/phones/me/repin", h.door_id);
    let body = r#"{"old_fingerprint":"AA:01","new_fingerprint":"BB:02","proof":"00ff"}"#;
    let (status, body) = api(&h.hub, "POST", &path, &h.ben.0, Some(body)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("door_offline"), "{body}");
}
