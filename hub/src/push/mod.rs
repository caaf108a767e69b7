//! Web Push from the hub (RFC 8030 delivery, RFC 8291 `aes128gcm` encryption, RFC 8292 VAPID):
//! phones ring while their page is closed.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the `[push]` table |
//! | [`vapid`] | the hub's VAPID key pair (made at first start, 0600) and signed tokens |
//! | [`subscription`] | checking what phones send to the API; typed, per-field errors |
//! | [`endpoint`] | which endpoints the hub will send to (public `https://` hosts only) |
//! | [`store`] | subscriptions in SQLite (one per endpoint, a few per phone) |
//! | [`api`] | `GET /api/push/key`, `POST`/`DELETE /api/push/subscription` |
//! | [`client`] | outgoing HTTP over rustls; a resolver that refuses non-public addresses |
//! | [`send`] | one message to one subscription, with retries and backoff |
//! | [`fanout`] | a ring to every subscription of a door, then its `ring_ended` |
//!
//! The payloads and the API are specified in `docs/PROTOCOL.md` ("Web Push").

pub mod api;
pub mod client;
pub mod config;
pub mod endpoint;
pub mod fanout;
pub mod send;
pub mod store;
pub mod subscription;
pub mod vapid;

pub use config::{NotifyConfigError, PushConfig};
pub use store::{PushTarget, MAX_SUBSCRIPTIONS_PER_PHONE};
pub use vapid::VapidKey;
