//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, nightly) and of the corpus replay
//! in `hub/tests/fuzz_corpora.rs` (stable, every `cargo test`): each takes arbitrary bytes and
//! runs them through a decoder of outside input exactly as the hub does. A decoder may refuse
//! anything; it must never panic, hang or allocate without bound. Not an API.

use std::time::{Duration, SystemTime};

use doorbell_protocol::control::{DoorToPhone, PhoneToDoor};
use doorbell_protocol::{DoorToHub, HubToDoor, HubToPhone, PhoneToHub};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Every WebSocket and data-channel message type, in both directions: whatever decodes must
/// encode again and decode to the same value (what the hub relays is what it checked).
pub fn wire_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<DoorToHub>(text);
    round_trip::<HubToDoor>(text);
    round_trip::<PhoneToHub>(text);
    round_trip::<HubToPhone>(text);
    round_trip::<PhoneToDoor>(text);
    round_trip::<DoorToPhone>(text);
    if let Err(e) = serde_json::from_str::<DoorToHub>(text) {
        // The typed error the hub would answer with.
        let _ = doorbell_protocol::ErrorCode::for_decode_error(&e.to_string());
    }
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) {
    if let Ok(value) = serde_json::from_str::<T>(text) {
        let again = serde_json::to_string(&value).expect("a decoded message encodes");
        let back: T = serde_json::from_str(&again).expect("an encoded message decodes");
        assert_eq!(value, back, "round trip changed the message");
    }
}

/// One datagram to the embedded TURN server's gate: STUN decoding, every XOR-PEER-ADDRESS,
/// the peer policy and the credential check of its USERNAME.
pub fn turn_datagram(data: &[u8]) {
    crate::turn::fuzz_gate_datagram(data);
}

/// The HTTP API's hand-checked bodies: a push subscription and unsubscription, quiet hours,
/// a pairing request.
pub fn http_bodies(data: &[u8]) {
    let config = crate::PushConfig::default();
    let _ = crate::push::subscription::parse_subscription(data, &config, 1_800_000_000_000);
    let _ = crate::push::subscription::parse_unsubscribe(data);
    if let Ok(settings) = serde_json::from_slice::<crate::quiet::QuietSettings>(data) {
        let _ = settings.validate(1_800_000_000_000);
    }
    crate::http::fuzz_pair_body(data);
}

/// Uploaded media: a voice message (Ogg Opus or WebM Opus, whose lengths the hub parses) and
/// a snapshot (JPEG check).
pub fn media_uploads(data: &[u8]) {
    let _ = crate::voice::ogg_opus_ms(data);
    let _ = crate::voice::webm::webm_opus_ms(data);
    let _ = crate::snapshots::is_jpeg(data);
}

/// A TURN verifier like the embedded server's, for [`turn_datagram`].
pub(crate) fn verifier() -> crate::turn::TurnVerifier {
    crate::turn::TurnVerifier::new(b"fuzz-secret".to_vec(), Duration::from_secs(3600))
}

/// A fixed clock for the fuzz targets, so a run is reproducible.
pub(crate) fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}
