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
//! # What an embedder uses
//!
//! Everything public is at the crate root; the modules are private.
//! - [`Hub`] with [`HubConfig`], [`TlsMode`] and [`Timings`]: open, serve, the URLs to print.
//! - [`Store`]: add doors ([`Store::add_door`], [`Store::ensure_door`]), make pairing codes
//!   ([`Store::create_pairing_code`], valid [`PAIRING_CODE_TTL`]) and turn them into links with
//!   [`pairing_url`]; list doors and phones for a CLI.
//! - TURN: a [`TurnConfig`] (the `[turn]` table) resolves against [`TurnDefaults`] into a
//!   [`ResolvedTurn`]; [`start_turn`] starts it and returns the [`TurnIssuer`] to put in
//!   [`HubConfig::turn`] and the [`EmbeddedTurn`] server to keep alive.
//! - Web Push and ntfy: the `[push]` table ([`PushConfig`]) and the `[notify]` table
//!   ([`NotifyConfig`], [`NtfyConfig`]) go into [`HubConfig::push`] and [`HubConfig::notify`].
//! - [`outbound_ip`] and [`self_signed_paths`] for what a door that hosts the hub prints and trusts.
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
//!     history: Default::default(),
//!     push: Default::default(),
//!     notify: Default::default(),
//!     limits: Default::default(),
//! })?;
//! let (door_id, secret) = hub.store().add_door("Front door")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(doorbell_hub::HubError::LocalAddr)?;
//! let url = hub.base_url(listener.local_addr().map_err(doorbell_hub::HubError::LocalAddr)?);
//! let code = hub.store().create_pairing_code(&door_id)?;
//! println!("{}", doorbell_hub::pairing_url(&url, &code, "Front door"));
//! hub.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # let _ = secret; Ok(()) }
//! ```
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | `config` | [`HubConfig`], [`TlsMode`], protocol [`Timings`] |
//! | `hub` | [`Hub`]: open, serve, URLs |
//! | `link` | [`pairing_url`]: the link a phone opens to pair |
//! | `state` | the state every connection shares (a leaf: no module it serves is imported) |
//! | `store` | SQLite: doors, phones and pairings, events, settings; [`Store::call`](Store) for async callers |
//! | `secrets` | random ids/secrets from the OS, SHA-256 digests, private files |
//! | `router` | pure routing rules: presence, each door's call, ICE servers, history, missed rings |
//! | `switchboard` | owns the router and every peer's bounded outgoing queue; executes router output |
//! | `recorder` | background thread writing call events and last-seen marks |
//! | `server` | accept loop (TCP, TLS), connection limits, request timeout, graceful drain |
//! | `limits` | limits per client ([`LimitsConfig`], the `[limits]` table): per address (IPv6 /64), hello-less pool, caps from the open-files limit, `Host`/`Origin` |
//! | `http` | routes: phone app files, `/api/pair`, `/api/events`, `/healthz`, `/ws`; security headers |
//! | `ws` | one WebSocket connection: limits, `hello`, read/write loop, keepalive |
//! | `assets` | the phone app embedded from `web/` by `build.rs` |
//! | `tls` | rustls (ring) acceptor from PEM files or a persisted self-signed certificate |
//! | `snapshots` | the visitor's snapshots: files, capability URLs, `[history]` limits ([`HistoryConfig`]) |
//! | `acme` | a trusted certificate from an ACME CA (TLS-ALPN-01): obtained, stored, served, renewed live |
//! | `household` | follows the household journal: removed phones and revoked doors cut off, guests' ends |
//! | `ratelimit` | message token bucket, pairing-failure limiter |
//! | `turn` | embedded TURN/STUN server, coturn-compatible per-call credentials, peer policy |
//! | `push` | Web Push: VAPID key, the subscriptions API and table, encrypted sends with retries |
//! | `notify` | rings outside the page: the queue from the switchboard, Web Push fan-out, ntfy |
//! | `quiet` | quiet hours per phone: settings, validation, "quiet now?", each ring's roster |
//! | `voice` | the visitor's voice messages: the Ogg Opus check and the limits (stored like snapshots) |
//! | `error` | [`HubError`] |
//!
//! Imports run one way: `hub` → `server` → `http` → `ws`, each using `state`, `switchboard`
//! and `store`; `switchboard` → `router` → `turn`. `docs/ARCHITECTURE.md` follows a ring
//! through them.

mod acme;
mod assets;
mod config;
mod error;
mod household;
mod http;
mod hub;
mod limits;
mod link;
mod notify;
mod pairing;
mod push;
mod quiet;
mod ratelimit;
mod recorder;
mod router;
/// Random secrets, digests and private-file writes: `doorbell-common`, shared with the door.
mod secrets;
mod server;
mod snapshots;
mod state;
mod store;
mod switchboard;
mod tls;
mod turn;
mod voice;
mod ws;

pub use acme::{AcmeConfig, AcmeError, AcmeStatus};
pub use config::{HubConfig, Timings, TlsMode};
pub use error::HubError;
pub use hub::{outbound_ip, Hub};
pub use limits::{LimitsConfig, REQUEST_TIMEOUT};
pub use link::pairing_url;
pub use notify::{NotifyConfig, NotifyError, NtfyConfig};
pub use push::{NotifyConfigError, PushConfig};
pub use snapshots::{remove_snapshot_files, HistoryConfig, SnapshotError};
pub use store::{now_ms, DoorRecord, PhoneRecord, Store, StoreError, PAIRING_CODE_TTL};
pub use tls::{self_signed_paths, TlsError};
pub use turn::{
    start as start_turn, EmbeddedSettings, EmbeddedTurn, ExternalSettings, MintSettings,
    ResolvedTurn, Turn, TurnConfig, TurnConfigError, TurnDefaults, TurnError, TurnIssuer, TurnMode,
};

/// Internals that the integration tests in `hub/tests` and the TURN benchmark drive
/// directly. Not an API: it changes with the code.
/// Entry points of the fuzz targets (`fuzz/`) and their corpus replay. Not an API.
#[doc(hidden)]
pub mod fuzzing;

#[doc(hidden)]
pub mod testing {
    pub use crate::assets::{find as find_asset, ASSETS};
    pub use crate::ratelimit::PAIR_FAILURES_PER_WINDOW;
    pub use crate::turn::{
        denied_class, parse_port_range, password, Cidr, CredentialError, DeniedClass, PeerPolicy,
        TurnVerifier,
    };
}
