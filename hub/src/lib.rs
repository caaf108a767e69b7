//! `doorbell-hub`: the signaling hub between doors (`doorbelld`) and phones (the web app).
//!
//! It authenticates doors and phones, fans a door's ring out to every paired phone, lets the
//! first phone that answers have the call, relays SDP and ICE between the door and that phone,
//! pairs new phones with one-time links, records a call history, and serves the phone app.
//! It never sees media. The contract is `docs/PROTOCOL.md`; the wire types are in
//! `doorbell-protocol`.
//!
//! Run it standalone (`doorbell-hub serve`), or embed it: `doorbelld --demo` and local-first
//! mode call [`Hub::open`] and [`Hub::serve`] in-process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), doorbell_hub::HubError> {
//! use doorbell_hub::{Hub, HubConfig, TlsMode};
//! let hub = Hub::open(HubConfig {
//!     db_path: "hub.sqlite3".into(),
//!     public_url: None,
//!     ice_servers: vec![],
//!     tls: TlsMode::Plain,
//!     turn: None,
//!     push: Default::default(),
//!     notify: Default::default(),
//! })?;
//! let (door_id, secret) = hub.store().add_door("Front door")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(doorbell_hub::HubError::LocalAddr)?;
//! let url = hub.base_url(listener.local_addr().map_err(doorbell_hub::HubError::LocalAddr)?);
//! let code = hub.store().create_pairing_code(&door_id)?;
//! println!("{}", doorbell_hub::pairing_url(&url, &code));
//! hub.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # let _ = secret; Ok(()) }
//! ```
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`config`] | [`HubConfig`], [`TlsMode`], protocol [`Timings`] |
//! | [`hub`] | [`Hub`]: open, serve, URLs; [`pairing_url`] |
//! | [`store`] | SQLite: doors, phones, pairings, pairing codes, events, settings |
//! | [`secrets`] | random ids/secrets from the OS, SHA-256 digests |
//! | [`router`] | pure routing rules: who is online, each door's call state, what to send whom |
//! | [`switchboard`] | owns the router and every peer's bounded outgoing queue; executes router output |
//! | [`recorder`] | background thread writing call events and last-seen marks |
//! | [`ws`] | one WebSocket connection: limits, `hello`, read/write loop, keepalive |
//! | [`http`] | routes: phone app files, `/api/pair`, `/api/events`, `/healthz`, `/ws`; security headers |
//! | [`assets`] | the phone app embedded from `web/` by `build.rs` |
//! | [`server`] | accept loop (TCP, TLS), connection limits, graceful drain |
//! | [`tls`] | rustls (ring) acceptor from PEM files or a persisted self-signed certificate |
//! | [`ratelimit`] | message token bucket, pairing-failure limiter |
//! | [`turn`] | embedded TURN/STUN server, coturn-compatible per-call credentials, peer policy |
//! | [`push`] | Web Push: VAPID key, subscriptions API and store, encrypted sends with retries |
//! | [`notify`] | rings outside the page: the queue from the switchboard, Web Push fan-out, ntfy |
//! | [`error`] | [`HubError`] |

pub mod assets;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod notify;
pub mod push;
pub mod ratelimit;
pub mod recorder;
pub mod router;
pub mod secrets;
pub mod server;
pub mod store;
pub mod switchboard;
pub mod tls;
pub mod turn;
pub mod ws;

pub use config::{HubConfig, Timings, TlsMode};
pub use error::HubError;
pub use hub::{pairing_url, Hub};
pub use store::{Store, StoreError};
