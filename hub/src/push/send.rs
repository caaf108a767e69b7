//! One Web Push message to one subscription: encrypt (RFC 8291 `aes128gcm`), sign (VAPID),
//! send, and read the push service's verdict; and [`deliver`], which retries what may be
//! retried (429, 5xx, no answer) with backoff, honouring `Retry-After`, until told to stop.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use web_push_native::p256::PublicKey;
use web_push_native::Auth;

use super::client::{self, PushClient};
use super::config::PushConfig;
use super::endpoint;
use super::vapid::VapidKey;
use crate::store::PushTarget;

/// First wait before a retry; doubled per attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between retries of our own choosing (a `Retry-After` may ask for longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Largest payload sent: push services must take 4096 bytes of body (RFC 8291 section 4), and
/// the `aes128gcm` header (86 bytes), padding delimiter (1) and tag (16) come on top.
pub const MAX_PAYLOAD_BYTES: usize = 4096 - 86 - 1 - 16;

/// One message for one subscription.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The JSON payload (encrypted per subscription).
    pub payload: Bytes,
    /// Seconds the push service may hold it for an unreachable phone.
    pub ttl_secs: u32,
    /// Replaces an undelivered message with the same topic (RFC 8030 section 5.4).
    pub topic: String,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The push service took it (2xx).
    Delivered,
    /// 404/410: the subscription is gone; forget it.
    Gone,
    /// 429, 5xx, or no answer: try again later (after at least this long, if the service said).
    Retry(Option<Duration>),
    /// Refused for good (bad request, VAPID refused, payload too large...): do not retry.
    Refused(String),
}

/// Everything a send needs that does not change between rings.
pub(crate) struct PushContext {
    pub client: PushClient,
    pub vapid: VapidKey,
    pub config: PushConfig,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The encrypted, signed request for `message` to `target`.
fn request(
    ctx: &PushContext,
    target: &PushTarget,
    message: &Message,
) -> Result<Request<Full<Bytes>>, String> {
    if message.payload.len() > MAX_PAYLOAD_BYTES {
        // Only a door choosing absurd call ids could get here; the push service would refuse it.
        return Err(format!(
            "payload of {} bytes is too large",
            message.payload.len()
        ));
    }
    // Checked again at send time: the allow-list may have changed since the phone subscribed.
    let endpoint = endpoint::check(&target.endpoint, &ctx.config).map_err(|e| e.to_string())?;
    let p256dh = URL_SAFE_NO_PAD
        .decode(&target.p256dh)
        .ok()
        .and_then(|k| PublicKey::from_sec1_bytes(&k).ok())
        .ok_or("stored p256dh is not a P-256 key")?;
    let auth = URL_SAFE_NO_PAD
        .decode(&target.auth)
        .ok()
        .filter(|a| a.len() == 16)
        .ok_or("stored auth secret is not 16 bytes")?;
    let body = web_push_native::encrypt(message.payload.to_vec(), &p256dh, Auth::from_slice(&auth))
        .map_err(|e| format!("encryption failed: {e}"))?;
    let authorization = ctx
        .vapid
        .authorization(&endpoint.origin, unix_secs())
        .ok_or("signing the VAPID token failed")?;
    Request::builder()
        .method(Method::POST)
        .uri(endpoint.uri)
        .header("TTL", message.ttl_secs)
        .header("Urgency", "high")
        .header("Topic", &message.topic)
        .header(header::CONTENT_ENCODING, "aes128gcm")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::AUTHORIZATION, authorization)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("building the request failed: {e}"))
}

/// One attempt.
pub(crate) async fn push_once(
    ctx: &PushContext,
    target: &PushTarget,
    message: &Message,
) -> Outcome {
    let request = match request(ctx, target, message) {
        Ok(request) => request,
        Err(e) => return Outcome::Refused(e),
    };
    match client::send(&ctx.client, request).await {
        Ok(response) => classify(
            response.status,
            client::retry_after(&response.headers, SystemTime::now()),
            &response.body,
        ),
        Err(e) => {
            tracing::debug!(error = %e, "push request failed");
            Outcome::Retry(None)
        }
    }
}

fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Delivered,
        404 | 410 => Outcome::Gone,
        429 | 500..=599 => Outcome::Retry(retry_after),
        _ => Outcome::Refused(format!(
            "{status}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
}

/// The wait before retry number `attempt` (0-based): exponential, capped, and at least what
/// the push service asked for.
pub(crate) fn backoff(attempt: u32, asked: Option<Duration>) -> Duration {
    let ours = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    asked.map_or(ours, |asked| asked.max(ours))
}

/// Sends `message` until it is delivered, gone or refused, retrying with [`backoff`] until
/// `stop` resolves (then the last outcome is returned). `permits` bounds concurrent requests
/// across the hub.
pub(crate) async fn deliver(
    ctx: &PushContext,
    permits: &tokio::sync::Semaphore,
    target: &PushTarget,
    message: &Message,
    stop: impl Future<Output = ()>,
) -> Outcome {
    tokio::pin!(stop);
    let mut attempt = 0;
    loop {
        let outcome = {
            let Ok(_permit) = permits.acquire().await else {
                return Outcome::Refused("the hub is shutting down".into());
            };
            push_once(ctx, target, message).await
        };
        let Outcome::Retry(asked) = outcome else {
            return outcome;
        };
        let wait = backoff(attempt, asked);
        attempt += 1;
        tracing::debug!(endpoint = %short(&target.endpoint), ?wait, attempt, "push will be retried");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return outcome,
        }
    }
}

/// An endpoint for logs: its origin and the first characters of its path (the rest is a
/// capability; it is not secret from the operator, but logs travel).
pub(crate) fn short(endpoint: &str) -> String {
    endpoint.chars().take(48).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_to_do() {
        let c = |s: u16| classify(StatusCode::from_u16(s).unwrap(), None, "x");
        assert_eq!(c(201), Outcome::Delivered);
        assert_eq!(c(410), Outcome::Gone);
        assert_eq!(c(404), Outcome::Gone);
        assert_eq!(c(429), Outcome::Retry(None));
        assert_eq!(c(503), Outcome::Retry(None));
        assert!(matches!(c(403), Outcome::Refused(_)));
        assert!(matches!(c(413), Outcome::Refused(_)));
    }

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        assert_eq!(backoff(0, None), FIRST_BACKOFF);
        assert_eq!(backoff(1, None), FIRST_BACKOFF * 2);
        assert_eq!(backoff(30, None), MAX_BACKOFF);
        assert_eq!(
            backoff(0, Some(Duration::from_secs(9))),
            Duration::from_secs(9)
        );
        assert_eq!(backoff(2, Some(Duration::ZERO)), FIRST_BACKOFF * 4);
    }
}
