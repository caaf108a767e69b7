//! Limits per client, so one client cannot take what the others need: connections per address
//! (IPv6 per /64, through trusted proxies), a small pool for WebSockets that have not said
//! `hello`, caps derived from the open-files limit, a request timeout, the `Host` and `Origin`
//! allow-lists, and one warning line per interval about what was refused.
//!
//! | file | job |
//! |---|---|
//! | `address` | [`AddrKey`] (IPv6 by /64), `X-Forwarded-For` through trusted proxies, slots per address |
//! | `body` | the request body read timeout |
//! | `pending` | the pool of WebSockets waiting for `hello` |
//! | `fd` | raising `RLIMIT_NOFILE`, the caps derived from it |
//! | `origin` | the `Host` and `Origin` allow-lists |
//! | `refusals` | counting refusals, the periodic summary line |
//!
//! [`Limits`] here ties them together, and gives each WebSocket that comes through a trusted
//! proxy a slot under its forwarded client's address.

mod address;
mod body;
mod fd;
mod origin;
mod pending;
mod refusals;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) use address::{client_ip, AddrKey, AddressSlot, PerAddress};
pub(crate) use body::IdleTimeoutBody;
pub(crate) use fd::Caps;
pub(crate) use origin::HostPolicy;
pub(crate) use pending::{Admitted, PendingPool, PendingTicket};
pub(crate) use refusals::{Refusal, RefusalLog, REFUSAL_SUMMARY_INTERVAL};

/// Time a client has to send its request headers, and between two pieces of a request body,
/// before the connection is closed (slowloris; a `POST` whose body never comes).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[limits]` table of `doorbell-hub serve --config`. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open TCP connections in all. Default: the open-files limit (raised to its hard limit
    /// at start) minus 256 kept for files and TURN.
    pub max_connections: Option<usize>,
    /// Open WebSockets (doors and phones). Default: 7/8 of `max_connections`, the rest kept
    /// for page loads and pairing.
    pub max_websockets: Option<usize>,
    /// TCP connections per client address (IPv6: per /64). Default 256.
    pub max_per_address: Option<usize>,
    /// WebSockets that have not sent `hello` yet. Default: a quarter of `max_websockets`, at
    /// most 256; when full, the oldest waiter is closed to make room.
    pub max_pending_websockets: Option<usize>,
    /// WebSockets waiting for `hello` per client address. Default 16.
    pub max_pending_per_address: Option<usize>,
    /// Request header and body read timeout in milliseconds. Default 10000.
    pub request_timeout_ms: Option<u64>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (their addresses, e.g.
    /// `["127.0.0.1"]`). Default: none; behind a proxy every client would otherwise count
    /// as the proxy's one address.
    pub trusted_proxies: Vec<IpAddr>,
    /// Host names the hub answers besides `localhost`, address literals, its certificate's
    /// names and its public URL's host (e.g. a proxy's name). `*.example.org` is allowed.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to open `/ws` besides the hub's own (e.g.
    /// `["https://app.example"]`).
    pub allowed_origins: Vec<String>,
}

/// The limits in force for one hub.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) caps: Caps,
    pub(crate) request_timeout: Duration,
    pub(crate) trusted_proxies: Vec<IpAddr>,
    /// TCP connections per address (not counted for trusted proxies).
    pub(crate) per_address: Arc<PerAddress>,
    pub(crate) pending: Arc<PendingPool>,
    /// One permit per authenticated WebSocket ([`Caps::websockets`]); hello-less ones are in
    /// `pending` instead, so they cannot take these.
    websockets: Arc<Semaphore>,
    pub(crate) hosts: HostPolicy,
    pub(crate) refusals: RefusalLog,
}

impl Limits {
    /// Raises the open-files limit and resolves `config`; `names` are the hub's own host
    /// names (certificate, public URL).
    pub(crate) fn new<'a>(config: &LimitsConfig, names: impl IntoIterator<Item = &'a str>) -> Self {
        let nofile = fd::raise_nofile();
        let caps = fd::caps(nofile, config);
        tracing::debug!(?caps, nofile, "connection limits");
        Limits {
            caps,
            request_timeout: config
                .request_timeout_ms
                .map_or(REQUEST_TIMEOUT, Duration::from_millis),
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .map(IpAddr::to_canonical)
                .collect(),
            per_address: PerAddress::new(caps.per_address),
            pending: PendingPool::new(caps.pending, caps.pending_per_address),
            websockets: Arc::new(Semaphore::new(caps.websockets)),
            hosts: HostPolicy::new(
                names
                    .into_iter()
                    .map(str::to_owned)
                    .chain(config.allowed_hosts.iter().cloned())
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
                config.allowed_origins.iter().map(String::as_str),
            ),
            refusals: RefusalLog::default(),
        }
    }

    /// A slot for a WebSocket that said `hello`, held while it stays open.
    pub(crate) fn take_websocket(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.websockets.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.refusals.record(Refusal::WebSockets);
        }
        permit
    }

    /// Admits an upgrade from `client` into the pool of WebSockets waiting for `hello`, or
    /// says why not (every WebSocket slot taken; its address has its share of waiters).
    pub(crate) fn admit_upgrade(&self, client: IpAddr) -> Result<PendingTicket, &'static str> {
        if self.websockets.available_permits() == 0 {
            self.refusals.record(Refusal::WebSockets);
            return Err("too many connections");
        }
        match self.pending.admit(AddrKey::of(client)) {
            Ok(Admitted {
                ticket,
                evicted_one,
            }) => {
                if evicted_one {
                    self.refusals.record(Refusal::PendingEvicted);
                }
                Ok(ticket)
            }
            Err(_) => {
                self.refusals.record(Refusal::PendingAddress);
                Err("too many connections without hello from this address")
            }
        }
    }

    /// A place under the per-address cap for a WebSocket that came through a trusted proxy,
    /// held for as long as the socket is open; `Ok(None)` if `peer` is not a trusted proxy
    /// (its own TCP connection already holds one). Every proxied client arrives on the proxy's
    /// connections, which are not counted per address (the proxy would be one address for
    /// everyone); without this, one client with a valid token could take every WebSocket.
    /// A request the proxy forwarded without naming its client (no usable `X-Forwarded-For`)
    /// is not counted either: all of them would share the proxy's one address and its cap.
    pub(crate) fn admit_proxied_websocket(
        &self,
        peer: IpAddr,
        client: IpAddr,
    ) -> Result<Option<AddressSlot>, &'static str> {
        if !self.is_trusted_proxy(peer) || client.to_canonical() == peer.to_canonical() {
            return Ok(None);
        }
        match self.per_address.try_take(AddrKey::of(client)) {
            Some(slot) => Ok(Some(slot)),
            None => {
                self.refusals.record(Refusal::Address);
                Err("too many connections from this address")
            }
        }
    }

    /// Whether `peer` is a trusted proxy (its connections count as its clients', not its own).
    pub(crate) fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.contains(&peer.to_canonical())
    }

    /// The client behind a request from `peer`.
    pub(crate) fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted_proxy(peer) {
            return peer.to_canonical();
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let joined = forwarded.join(",");
        client_ip(
            peer,
            (!forwarded.is_empty()).then_some(joined.as_str()),
            &self.trusted_proxies,
        )
    }
}
