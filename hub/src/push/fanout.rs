//! One ring, pushed to every subscription of the door's phones: each subscription gets the
//! `ring` message, then (when the ring ends) the `ring_ended` message with the same `Topic`,
//! in that order, so a late `ring` can never overwrite the `ring_ended` at the push service.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use doorbell_protocol::DoorId;
use tokio::sync::{watch, Semaphore};

use super::send::{self, Message, Outcome, PushContext};
use super::RingInfo;
use crate::store::PushTarget;
use crate::store::Store;

/// `TTL` of a `ring`: a ring older than a minute is useless (the door stopped ringing after
/// 30 s), so the push service may drop it rather than deliver it late.
pub const RING_TTL_SECS: u32 = 60;
/// `TTL` of a `ring_ended`: long enough that a phone that was offline during the ring still
/// learns it missed a call when it comes back within the hour.
pub const RING_ENDED_TTL_SECS: u32 = 3600;
/// A `ring` is retried (429/5xx) at most this long, even if nobody reports the ring's end:
/// after its TTL it is stale anyway.
pub const RING_RETRY_WINDOW: Duration = Duration::from_secs(RING_TTL_SECS as u64);
/// A `ring_ended` is retried this long after the ring ended.
pub const RING_ENDED_RETRY_WINDOW: Duration = Duration::from_secs(60);
/// How long a subscription's task waits for the ring's end before giving up on sending
/// `ring_ended` (doors end a ring after `call.ring_timeout_secs`, 30 s by default).
pub const MAX_RING_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// RFC 8030 section 5.4: a topic is at most 32 characters of the base64url alphabet.
pub const TOPIC_CHARS: usize = 32;

/// Why a ring ended, in its wire spelling ("answered", "declined", "timeout", "cancelled",
/// "door_offline"). `None` while it still rings.
pub(crate) type EndSignal = watch::Receiver<Option<&'static str>>;

/// The `Topic` of a door's pushes: base64url of a SHA-256 of the door id, cut to 32
/// characters. Always valid whatever characters the id has, and it does not show the push
/// service which door it is.
pub fn topic(door_id: &DoorId) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("doorbell push topic\0{}", door_id.as_str()).as_bytes(),
    );
    let mut topic = URL_SAFE_NO_PAD.encode(digest.as_ref());
    topic.truncate(TOPIC_CHARS);
    topic
}

/// `{"type":"ring", ...}` (see `docs/PROTOCOL.md`).
pub fn ring_payload(ring: &RingInfo) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "type": "ring",
            "call_id": ring.call_id,
            "door_id": ring.door_id,
            "door_name": ring.door_name,
            "at_ms": ring.at_ms,
            "snapshot": ring.snapshot,
        })
        .to_string(),
    )
}

/// `{"type":"ring_ended", ...}`: the call id and reason, plus the door and the ring's time so
/// a phone that never got the `ring` can still say "Missed call from Front door, 14:02".
pub fn ring_ended_payload(ring: &RingInfo, reason: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "type": "ring_ended",
            "call_id": ring.call_id,
            "reason": reason,
            "door_id": ring.door_id,
            "door_name": ring.door_name,
            "at_ms": ring.at_ms,
        })
        .to_string(),
    )
}

/// Starts one task per subscription (see the module docs).
pub(crate) fn ring_all(
    ctx: &Arc<PushContext>,
    permits: &Arc<Semaphore>,
    store: &Store,
    ring: &Arc<RingInfo>,
    targets: Vec<PushTarget>,
    end: &EndSignal,
) {
    for target in targets {
        tokio::spawn(ring_one(
            ctx.clone(),
            permits.clone(),
            store.clone(),
            ring.clone(),
            target,
            end.clone(),
        ));
    }
}

async fn ring_one(
    ctx: Arc<PushContext>,
    permits: Arc<Semaphore>,
    store: Store,
    ring: Arc<RingInfo>,
    target: PushTarget,
    mut end: EndSignal,
) {
    let topic = topic(&ring.door_id);
    // A ring that ended before its push went out (a quick decline) is not rung at all.
    if end.borrow().is_none() {
        let message = Message {
            payload: ring_payload(&ring),
            ttl_secs: RING_TTL_SECS,
            topic: topic.clone(),
        };
        let mut ended = end.clone();
        let stop = async move {
            let _ = tokio::time::timeout(RING_RETRY_WINDOW, ended.wait_for(Option::is_some)).await;
        };
        let outcome = send::deliver(&ctx, &permits, &target, &message, stop).await;
        if !settle(&store, &target, "ring", outcome).await {
            return;
        }
    }
    let reason = match tokio::time::timeout(MAX_RING_LIFETIME, end.wait_for(Option::is_some)).await
    {
        Ok(Ok(reason)) => reason.unwrap_or("cancelled"),
        // The dispatcher forgot the ring (it outlived MAX_RING_LIFETIME) or is gone.
        _ => return,
    };
    let message = Message {
        payload: ring_ended_payload(&ring, reason),
        ttl_secs: RING_ENDED_TTL_SECS,
        topic,
    };
    let outcome = send::deliver(
        &ctx,
        &permits,
        &target,
        &message,
        tokio::time::sleep(RING_ENDED_RETRY_WINDOW),
    )
    .await;
    settle(&store, &target, "ring_ended", outcome).await;
}

/// `TTL` of a voice-message push: the message waits in the history for days, but a
/// notification about it is worth delivering for a day.
pub const VOICE_TTL_SECS: u32 = 24 * 3600;
/// A voice-message push is retried (429/5xx) this long.
pub const VOICE_RETRY_WINDOW: Duration = Duration::from_secs(60);

/// `{"type":"voice_message", ...}` (see `docs/PROTOCOL.md`): `voice` is the absolute
/// capability URL of the Ogg Opus file; `call_id` is absent for a press the hub never heard.
pub fn voice_payload(
    door_id: &DoorId,
    door_name: &str,
    call_id: Option<&str>,
    at_ms: i64,
    voice: &str,
) -> Bytes {
    let mut body = serde_json::json!({
        "type": "voice_message",
        "door_id": door_id,
        "door_name": door_name,
        "at_ms": at_ms,
        "voice": voice,
    });
    if let Some(call_id) = call_id {
        body["call_id"] = call_id.into();
    }
    Bytes::from(body.to_string())
}

/// Sends one voice-message notice to every subscription in `targets`, each in its own task.
/// Its `Topic` differs from the door's ring topic, so it never replaces a missed-call
/// notification.
pub(crate) fn voice_all(
    ctx: &Arc<PushContext>,
    permits: &Arc<Semaphore>,
    store: &Store,
    payload: Bytes,
    door_id: &DoorId,
    targets: Vec<PushTarget>,
) {
    let topic = topic(&DoorId::new(format!("{}\0voice", door_id.as_str())));
    for target in targets {
        let message = Message {
            payload: payload.clone(),
            ttl_secs: VOICE_TTL_SECS,
            topic: topic.clone(),
        };
        let (ctx, permits, store) = (ctx.clone(), permits.clone(), store.clone());
        tokio::spawn(async move {
            let outcome = send::deliver(
                &ctx,
                &permits,
                &target,
                &message,
                tokio::time::sleep(VOICE_RETRY_WINDOW),
            )
            .await;
            settle(&store, &target, "voice_message", outcome).await;
        });
    }
}

/// Acts on a final outcome; whether the subscription is still worth sending to.
async fn settle(store: &Store, target: &PushTarget, what: &str, outcome: Outcome) -> bool {
    let endpoint = send::short(&target.endpoint);
    match outcome {
        Outcome::Delivered => {
            tracing::debug!(%endpoint, phone = %target.phone_id, what, "push delivered");
            true
        }
        Outcome::Gone => {
            tracing::info!(%endpoint, phone = %target.phone_id, "push subscription gone (404/410); forgetting it");
            let gone = target.endpoint.clone();
            if let Err(e) = store.call(move |s| s.forget_push_endpoint(&gone)).await {
                tracing::warn!(error = %e, "could not delete a gone push subscription");
            }
            false
        }
        Outcome::Retry(_) => {
            tracing::warn!(%endpoint, phone = %target.phone_id, what, "push not delivered before the ring ended (push service busy or unreachable)");
            true
        }
        Outcome::Refused(reason) => {
            tracing::warn!(%endpoint, phone = %target.phone_id, what, %reason, "push refused");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorbell_protocol::CallId;

    #[test]
    fn topics_are_32_base64url_characters_per_door() {
        let a = topic(&DoorId::new("d-1a2b3c4d"));
        assert_eq!(a.len(), TOPIC_CHARS);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(a, topic(&DoorId::new("d-1a2b3c4d")));
        assert_ne!(a, topic(&DoorId::new("d-other")));
        assert_eq!(
            topic(&DoorId::new("ä door / with, odd; chars")).len(),
            TOPIC_CHARS
        );
    }

    #[test]
    fn payloads_are_small_json() {
        let ring = RingInfo {
            door_id: DoorId::new("d-1"),
            door_name: "x".repeat(crate::store::MAX_NAME_CHARS),
            call_id: CallId::new("c".repeat(128)),
            at_ms: 1_767_225_600_000,
            snapshot: None,
        };
        let p: serde_json::Value = serde_json::from_slice(&ring_payload(&ring)).unwrap();
        assert_eq!(p["type"], "ring");
        assert_eq!(p["snapshot"], serde_json::Value::Null);
        assert_eq!(p["at_ms"], 1_767_225_600_000i64);
        let e: serde_json::Value =
            serde_json::from_slice(&ring_ended_payload(&ring, "timeout")).unwrap();
        assert_eq!(
            (e["type"].as_str(), e["reason"].as_str()),
            (Some("ring_ended"), Some("timeout"))
        );
        // Push services take 4096 bytes of ciphertext (payload + 17 bytes of padding/tag
        // + 86 bytes of header).
        assert!(ring_payload(&ring).len() < 1024);
    }
}
