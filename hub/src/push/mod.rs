//! Web Push from the hub (RFC 8030 delivery, RFC 8291 `aes128gcm` encryption, RFC 8292 VAPID):
//! phones ring while their page is closed.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the `[push]` table |
//! | [`vapid`] | the hub's VAPID key pair (made at first start, 0600) and signed tokens |
//! | [`subscription`] | checking what phones send to the API; typed, per-field errors |
//! | [`endpoint`] | which endpoints the hub will send to (public `https://` hosts only) |
//! | [`client`] | outgoing HTTP over rustls; a resolver that refuses non-public addresses |
//! | [`send`] | one message to one subscription, with retries and backoff |
//! | [`fanout`] | a ring to every subscription of a door, then its `ring_ended` |
//!
//! The HTTP API (`GET /api/push/key`, `POST`/`DELETE /api/push/subscription`) is in
//! `crate::http::push`. The payloads and the API are specified in `docs/PROTOCOL.md` ("Web Push").

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod endpoint;
pub(crate) mod fanout;
pub(crate) mod send;
pub(crate) mod subscription;
pub(crate) mod vapid;

pub use config::{NotifyConfigError, PushConfig};

use doorbell_protocol::{CallId, DoorId};

/// A ring as notifications describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingInfo {
    pub door_id: DoorId,
    pub door_name: String,
    pub call_id: CallId,
    /// When the hub saw the ring (Unix ms).
    pub at_ms: i64,
    /// Capability URL of the visitor's snapshot (absolute; minted at ring time, served once
    /// the door's upload arrives).
    pub snapshot: Option<String>,
}
