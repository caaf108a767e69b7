//! Golden fixtures: every message of every direction, pinned byte for byte.
//!
//! The same files are decoded and re-encoded by the web app's tests (`web/protocol.test.mjs`),
//! so Rust and JavaScript agree on the wire format. To regenerate after an intended change:
//! `UPDATE_GOLDEN=1 cargo test -p doorbell-protocol --test golden`, then review the diff and
//! update `docs/PROTOCOL.md`.

use doorbell_protocol::*;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/protocol")
}

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(name: &str, value: T) {
    let path = fixture_dir().join(format!("{name}.json"));
    let encoded = serde_json::to_string_pretty(&value).expect("wire types always serialize") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(fixture_dir()).unwrap();
        std::fs::write(&path, &encoded).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing fixture {}: {e}", path.display()));
    assert_eq!(
        encoded,
        golden,
        "encoding of {name} differs from {}",
        path.display()
    );
    let decoded: T = serde_json::from_str(&golden)
        .unwrap_or_else(|e| panic!("fixture {name} does not decode: {e}"));
    assert_eq!(decoded, value, "decoding of {name} differs");
}

fn call() -> CallId {
    CallId::new("c-4f2a9d1e-1")
}

fn candidate() -> IceCandidate {
    IceCandidate {
        candidate: "candidate:1 1 UDP 2015363327 192.168.1.20 50123 typ host".into(),
        sdp_m_line_index: 0,
    }
}

fn ice_servers() -> Vec<IceServer> {
    vec![
        IceServer {
            urls: vec!["stun:stun.example.net:3478".into()],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec!["turn:turn.example.net:3478?transport=udp".into()],
            username: Some("1767225600:d-front".into()),
            credential: Some("q2Jt6m2Q0mO8dY1uL3Xn0s5lZ1g=".into()),
        },
    ]
}

/// What the hub puts in `ring` / `answered`: the static servers plus TURN with credentials
/// minted for one side of one call (secret "doorbell-example-secret"; the web tests recompute
/// the HMAC).
fn call_ice_servers(username: &str, credential: &str) -> Vec<IceServer> {
    vec![
        IceServer {
            urls: vec!["stun:turn.example.net:3478".into()],
            username: None,
            credential: None,
        },
        IceServer {
            urls: vec!["turn:turn.example.net:3478?transport=udp".into()],
            username: Some(username.into()),
            credential: Some(credential.into()),
        },
    ]
}

const SDP: &str = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";

#[test]
fn door_to_hub() {
    check(
        "door_to_hub.hello",
        DoorToHub::Hello {
            protocol_version: PROTOCOL_VERSION,
            door_id: DoorId::new("d-front"),
            secret: "s3cr3t-from-hub-add-door".into(),
            software: "doorbelld 0.1.0".into(),
        },
    );
    check("door_to_hub.ring", DoorToHub::Ring { call_id: call() });
    check(
        "door_to_hub.cancel_ring",
        DoorToHub::CancelRing {
            call_id: call(),
            reason: RingEndReason::Timeout,
        },
    );
    check(
        "door_to_hub.sdp_offer",
        DoorToHub::SdpOffer {
            call_id: call(),
            sdp: SDP.into(),
        },
    );
    check(
        "door_to_hub.ice",
        DoorToHub::Ice {
            call_id: call(),
            candidate: candidate(),
        },
    );
    check(
        "door_to_hub.hang_up",
        DoorToHub::HangUp {
            call_id: call(),
            reason: HangUpReason::Normal,
        },
    );
    check(
        "door_to_hub.missed_ring",
        DoorToHub::MissedRing {
            at_ms: 1_767_225_600_123,
        },
    );
    check(
        "door_to_hub.unlocked",
        DoorToHub::Unlocked { call_id: call() },
    );
}

#[test]
fn hub_to_door() {
    check(
        "hub_to_door.welcome",
        HubToDoor::Welcome {
            protocol_version: PROTOCOL_VERSION,
            door_name: "Front door".into(),
            ice_servers: ice_servers(),
        },
    );
    check(
        "hub_to_door.ringing",
        HubToDoor::Ringing {
            call_id: call(),
            phones: 2,
            ice_servers: Some(call_ice_servers(
                "1767225600:d-front",
                "kYAi10zHQnehf/DYQzBMoMb3kHw=",
            )),
        },
    );
    check(
        "hub_to_door.answered",
        HubToDoor::Answered {
            call_id: call(),
            phone_id: PhoneId::new("p-7c1b"),
            ice_servers: call_ice_servers("1767225600:d-front", "kYAi10zHQnehf/DYQzBMoMb3kHw="),
            may_unlock: false,
        },
    );
    check(
        "hub_to_door.quick_reply",
        HubToDoor::QuickReply {
            call_id: call(),
            reply_id: 7,
        },
    );
    check(
        "hub_to_door.ring_ended",
        HubToDoor::RingEnded {
            call_id: call(),
            // The newest reason (every phone in quiet hours); the others are plain words too.
            reason: RingEndReason::Quiet,
        },
    );
    check(
        "hub_to_door.sdp_answer",
        HubToDoor::SdpAnswer {
            call_id: call(),
            sdp: SDP.into(),
        },
    );
    check(
        "hub_to_door.ice",
        HubToDoor::Ice {
            call_id: call(),
            candidate: candidate(),
        },
    );
    check(
        "hub_to_door.hang_up",
        HubToDoor::HangUp {
            call_id: call(),
            reason: HangUpReason::PeerGone,
        },
    );
    check(
        "hub_to_door.error",
        HubToDoor::error(
            ErrorCode::Unauthorized,
            "unknown door or wrong secret",
            None,
        ),
    );
}

#[test]
fn phone_to_hub() {
    check(
        "phone_to_hub.hello",
        PhoneToHub::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: "pt-a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
        },
    );
    check(
        "phone_to_hub.answer",
        PhoneToHub::Answer { call_id: call() },
    );
    check(
        "phone_to_hub.decline",
        PhoneToHub::Decline { call_id: call() },
    );
    check(
        "phone_to_hub.quick_reply",
        PhoneToHub::QuickReply {
            call_id: call(),
            reply_id: 7,
        },
    );
    check(
        "phone_to_hub.sdp_answer",
        PhoneToHub::SdpAnswer {
            call_id: call(),
            sdp: SDP.into(),
        },
    );
    check(
        "phone_to_hub.ice",
        PhoneToHub::Ice {
            call_id: call(),
            candidate: candidate(),
        },
    );
    check(
        "phone_to_hub.hang_up",
        PhoneToHub::HangUp {
            call_id: call(),
            reason: HangUpReason::Normal,
        },
    );
}

#[test]
fn hub_to_phone() {
    check(
        "hub_to_phone.welcome",
        HubToPhone::Welcome {
            protocol_version: PROTOCOL_VERSION,
            phone_id: PhoneId::new("p-7c1b"),
            doors: vec![DoorInfo {
                door_id: DoorId::new("d-front"),
                name: "Front door".into(),
                online: true,
                access: Some(Access {
                    role: Role::Owner,
                    may_unlock: true,
                    may_view: true,
                    until_ms: None,
                }),
            }],
            ice_servers: ice_servers(),
        },
    );
    check(
        "hub_to_phone.ring",
        HubToPhone::Ring {
            call_id: call(),
            door_id: DoorId::new("d-front"),
            door_name: "Front door".into(),
            ice_servers: call_ice_servers("1767225600:p-7c1b", "sk/11w/xYJNKUPwlCUMAQ6eJdyg="),
        },
    );
    check(
        "hub_to_phone.ringing_cancelled",
        HubToPhone::RingingCancelled {
            call_id: call(),
            reason: RingEndReason::Timeout,
        },
    );
    check(
        "hub_to_phone.answered_elsewhere",
        HubToPhone::AnsweredElsewhere { call_id: call() },
    );
    check(
        "hub_to_phone.sdp_offer",
        HubToPhone::SdpOffer {
            call_id: call(),
            sdp: SDP.into(),
        },
    );
    check(
        "hub_to_phone.ice",
        HubToPhone::Ice {
            call_id: call(),
            candidate: candidate(),
        },
    );
    check(
        "hub_to_phone.hang_up",
        HubToPhone::HangUp {
            call_id: call(),
            reason: HangUpReason::Normal,
        },
    );
    check(
        "hub_to_phone.door_status",
        HubToPhone::DoorStatus {
            door_id: DoorId::new("d-front"),
            online: false,
        },
    );
    check(
        "hub_to_phone.missed_ring",
        HubToPhone::MissedRing {
            door_id: DoorId::new("d-front"),
            door_name: "Front door".into(),
            at_ms: 1_767_225_600_123,
        },
    );
    check(
        "hub_to_phone.snapshot",
        HubToPhone::Snapshot {
            call_id: call(),
            url: "/api/snapshots/cap/ZC1mcm9udApjLWFiYwoxNzY3MjI5MjAwMTIz.c2ln".into(),
        },
    );
    check(
        "hub_to_phone.phone_joined",
        HubToPhone::PhoneJoined {
            door_id: DoorId::new("d-front"),
            phone_id: PhoneId::new("p-9e02"),
            name: "Cleaner".into(),
        },
    );
    check(
        "hub_to_phone.phone_removed",
        HubToPhone::PhoneRemoved {
            door_id: DoorId::new("d-front"),
            phone_id: PhoneId::new("p-9e02"),
            name: "Cleaner".into(),
        },
    );
    check(
        "hub_to_phone.access_changed",
        HubToPhone::AccessChanged {
            door_id: DoorId::new("d-front"),
            access: Access {
                role: Role::Guest,
                may_unlock: false,
                may_view: false,
                until_ms: Some(1_767_312_000_000),
            },
        },
    );
    check(
        "hub_to_phone.error",
        HubToPhone::error(
            ErrorCode::BadMessage,
            "expected value at line 1 column 1",
            None,
        ),
    );
}

#[test]
fn unknown_type_is_an_error_not_a_panic() {
    assert!(serde_json::from_str::<PhoneToHub>(r#"{"type":"open_sesame"}"#).is_err());
    assert!(serde_json::from_str::<DoorToHub>(r#"{"type":"ring"}"#).is_err());
    assert!(serde_json::from_str::<DoorToHub>("not json").is_err());
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let msg: PhoneToHub =
        serde_json::from_str(r#"{"type":"answer","call_id":"c1","added_in_a_later_minor":true}"#)
            .unwrap();
    assert_eq!(
        msg,
        PhoneToHub::Answer {
            call_id: CallId::new("c1")
        }
    );
}

/// The `control` data channel between the answering phone and the door.
#[test]
fn data_channel() {
    use doorbell_protocol::control::*;
    check(
        "phone_to_door.unlock",
        PhoneToDoor::Unlock {
            version: CONTROL_VERSION,
            request_id: 1,
        },
    );
    check(
        "door_to_phone.unlocked",
        DoorToPhone::Unlocked {
            version: CONTROL_VERSION,
            request_id: 1,
            pulse_ms: 3000,
        },
    );
    check(
        "door_to_phone.error",
        DoorToPhone::Error {
            version: CONTROL_VERSION,
            request_id: Some(1),
            code: ControlErrorCode::NotInCall,
            message: "the door unlocks only during a call".into(),
        },
    );
}

/// Peers built before per-call ICE servers existed send `ring` / `answered` without them;
/// they still decode (as "no per-call servers: use welcome's").
#[test]
fn ring_and_answered_without_ice_servers_decode() {
    let ring: HubToPhone = serde_json::from_str(
        r#"{"type":"ring","call_id":"c-1","door_id":"d-front","door_name":"Front door"}"#,
    )
    .expect("decodes");
    assert!(matches!(ring, HubToPhone::Ring { ice_servers, .. } if ice_servers.is_empty()));
    let answered: HubToDoor =
        serde_json::from_str(r#"{"type":"answered","call_id":"c-1","phone_id":"p-1"}"#)
            .expect("decodes");
    assert!(matches!(&answered, HubToDoor::Answered { ice_servers, .. } if ice_servers.is_empty()));
    // An older hub knew no permissions: its answering phone may unlock, its doors carry no
    // access.
    assert!(matches!(
        answered,
        HubToDoor::Answered {
            may_unlock: true,
            ..
        }
    ));
    let door: DoorInfo =
        serde_json::from_str(r#"{"door_id":"d-1","name":"Front","online":true}"#).expect("decodes");
    assert_eq!(door.access, None);
    // An older hub's `ringing` has none: the door then waits for `answered`'s.
    let ringing: HubToDoor =
        serde_json::from_str(r#"{"type":"ringing","call_id":"c-1","phones":1}"#).expect("decodes");
    assert!(matches!(
        ringing,
        HubToDoor::Ringing {
            ice_servers: None,
            ..
        }
    ));
}

fn session() -> SessionId {
    SessionId::new("s-7")
}

/// Preview sessions: the door's live video on a ringing phone, upgraded in place at Answer.
#[test]
fn preview_sessions() {
    let sdp = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n".to_string();
    check(
        "phone_to_hub.preview",
        PhoneToHub::Preview { call_id: call() },
    );
    check(
        "hub_to_door.open_session",
        HubToDoor::OpenSession {
            call_id: call(),
            session_id: session(),
            phone_id: PhoneId::new("p-7c1b"),
            ice_servers: call_ice_servers("1767225600:d-front", "kYAi10zHQnehf/DYQzBMoMb3kHw="),
        },
    );
    check(
        "door_to_hub.session_offer",
        DoorToHub::SessionOffer {
            session_id: session(),
            sdp: sdp.clone(),
        },
    );
    check(
        "hub_to_phone.session_offer",
        HubToPhone::SessionOffer {
            call_id: call(),
            session_id: session(),
            sdp: sdp.clone(),
        },
    );
    check(
        "phone_to_hub.session_answer",
        PhoneToHub::SessionAnswer {
            session_id: session(),
            sdp: sdp.clone(),
        },
    );
    check(
        "hub_to_door.session_answer",
        HubToDoor::SessionAnswer {
            session_id: session(),
            sdp,
        },
    );
    check(
        "door_to_hub.session_ice",
        DoorToHub::SessionIce {
            session_id: session(),
            candidate: candidate(),
        },
    );
    check(
        "hub_to_phone.session_ice",
        HubToPhone::SessionIce {
            session_id: session(),
            candidate: candidate(),
        },
    );
    check(
        "phone_to_hub.session_ice",
        PhoneToHub::SessionIce {
            session_id: session(),
            candidate: candidate(),
        },
    );
    check(
        "hub_to_door.session_ice",
        HubToDoor::SessionIce {
            session_id: session(),
            candidate: candidate(),
        },
    );
    check(
        "phone_to_hub.answer_in_session",
        PhoneToHub::AnswerInSession {
            call_id: call(),
            session_id: session(),
        },
    );
    check(
        "hub_to_door.answered_in_session",
        HubToDoor::AnsweredInSession {
            call_id: call(),
            session_id: session(),
            phone_id: PhoneId::new("p-7c1b"),
            may_unlock: true,
        },
    );
    check(
        "hub_to_phone.session_closed",
        HubToPhone::SessionClosed {
            session_id: session(),
            reason: SessionEndReason::AnsweredElsewhere,
        },
    );
    check(
        "phone_to_hub.close_session",
        PhoneToHub::CloseSession {
            session_id: session(),
        },
    );
    check(
        "hub_to_door.session_closed",
        HubToDoor::SessionClosed {
            session_id: session(),
            reason: SessionEndReason::Closed,
        },
    );
    check(
        "door_to_hub.close_session",
        DoorToHub::CloseSession {
            session_id: session(),
            reason: SessionEndReason::Limit,
        },
    );
}

/// Pairing that the hub cannot subvert: the hub relays a phone's proof to the door, which
/// alone decides (docs/PROTOCOL.md "Pairing").
#[test]
fn door_pairing() {
    check(
        "hub_to_door.pair_request",
        HubToDoor::PairRequest(pairing::PairRequest {
            request_id: 7,
            code_id: "Jq0nZ2m8xQw".into(),
            phone_id: PhoneId::new("p-7c1b"),
            fingerprint: "3B:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01".into(),
            proof: "m3dxTcJ4kQ8yD0f9rB1e0mU5sFq2aZ7wX9cV6bN4hLk".into(),
        }),
    );
    check(
        "hub_to_door.invite_request",
        HubToDoor::InviteRequest(pairing::InviteRequest {
            request_id: 8,
            phone_id: PhoneId::new("p-7c1b"),
            code_id: "0f1e2d3c4b5a6978".into(),
            access: Access {
                role: Role::Guest,
                may_unlock: true,
                may_view: false,
                until_ms: Some(1_767_312_000_000),
            },
            auth: "5d41402abc4b2a76b9719d911017c592aa5fc3a6bbf2b6f1c2e0d3a4b5c6d7e8".into(),
        }),
    );
    check(
        "hub_to_door.grant_request",
        HubToDoor::GrantRequest(pairing::GrantRequest {
            request_id: 9,
            phone_id: PhoneId::new("p-7c1b"),
            target: PhoneId::new("p-0a2e"),
            access: Access {
                role: Role::Member,
                may_unlock: true,
                may_view: true,
                until_ms: None,
            },
            auth: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        }),
    );
    check(
        "hub_to_door.repin_request",
        HubToDoor::RepinRequest(pairing::RepinRequest {
            request_id: 10,
            phone_id: PhoneId::new("p-0a2e"),
            old_fingerprint: "3B:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01".into(),
            new_fingerprint: "C4:19:8E:02:7F:B3:56:DA:21:90:4C:E8:0B:A7:63:1F:5D:C2:38:94:E0:7B:16:AF:49:D3:82:05:6E:B1:FA:27".into(),
            proof: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".into(),
        }),
    );
    check(
        "hub_to_door.unpin",
        HubToDoor::Unpin {
            phone_id: PhoneId::new("p-0a2e"),
        },
    );
    check(
        "door_to_hub.pair_accepted",
        DoorToHub::PairAccepted {
            request_id: 7,
            access: Access {
                role: Role::Owner,
                may_unlock: true,
                may_view: true,
                until_ms: None,
            },
        },
    );
    check(
        "door_to_hub.pair_refused",
        DoorToHub::PairRefused {
            request_id: 7,
            reason: pairing::PairRefusal::BadProof,
        },
    );
}

/// Live view: a phone with `may_view` watches the door without a ring; the session then works
/// as a preview's (the shared `session_*` fixtures above).
#[test]
fn live_view() {
    let sdp = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n".to_string();
    let view = SessionId::new("v-3-1");
    check(
        "phone_to_hub.view",
        PhoneToHub::View {
            door_id: DoorId::new("d-front"),
        },
    );
    check(
        "hub_to_door.open_view",
        HubToDoor::OpenView {
            session_id: view.clone(),
            phone_id: PhoneId::new("p-7c1b"),
            ice_servers: call_ice_servers("1767225600:d-front", "kYAi10zHQnehf/DYQzBMoMb3kHw="),
        },
    );
    check(
        "hub_to_phone.view_offer",
        HubToPhone::ViewOffer {
            door_id: DoorId::new("d-front"),
            session_id: view.clone(),
            sdp,
            ice_servers: call_ice_servers("1767225600:p-7c1b", "sk/11w/xYJNKUPwlCUMAQ6eJdyg="),
        },
    );
    // The longest view ended it, and the typed refusal of a phone without `may_view`; as
    // values, not fixtures (one fixture per message type).
    let closed: DoorToHub = serde_json::from_str(
        r#"{"type":"close_session","session_id":"v-3-1","reason":"time_limit"}"#,
    )
    .unwrap();
    assert_eq!(
        closed,
        DoorToHub::CloseSession {
            session_id: view,
            reason: SessionEndReason::TimeLimit,
        }
    );
    let refused =
        serde_json::to_string(&HubToPhone::error(ErrorCode::Forbidden, "no", None)).unwrap();
    assert!(refused.contains(r#""code":"forbidden""#), "{refused}");
}
