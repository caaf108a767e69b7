//! State shared by every connection of one hub. A leaf: [`crate::hub`], [`crate::server`],
//! [`crate::http`] and [`crate::ws`] all use it, and it uses none of them, so the connection
//! modules depend on one another in one direction only (hub → server → http → ws).

use std::net::IpAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{HubConfig, Timings};
use crate::limits::Limits;
use crate::ratelimit::FailureLimiter;
use crate::snapshots::Snapshots;
use crate::store::Store;
use crate::switchboard::Switchboard;
use crate::tls::TlsSetup;

/// The client a request is from, and what its connection holds under the limits. Put into
/// every request's extensions by the server.
#[derive(Clone)]
pub(crate) struct Client {
    /// The peer's address, or the one a trusted proxy forwarded (`[limits] trusted_proxies`).
    pub(crate) ip: IpAddr,
    /// The connection's places under the global and per-address caps. The upgrade ends the
    /// HTTP connection's task; a WebSocket keeps a clone, so its places stay taken.
    pub(crate) slots: Arc<dyn std::any::Any + Send + Sync>,
}

/// Everything one hub's connections share, for as long as the hub exists.
pub(crate) struct HubState {
    pub(crate) config: HubConfig,
    pub(crate) timings: Timings,
    pub(crate) store: Store,
    pub(crate) switchboard: Switchboard,
    /// `None` for plain HTTP.
    pub(crate) tls: Option<TlsSetup>,
    /// Per-client limits, caps, the `Host`/`Origin` allow-lists, the refusal summary.
    pub(crate) limits: Limits,
    /// Wrong pairing codes per client address.
    pub(crate) pair_failures: FailureLimiter,
    /// The visitor's snapshots: files, capability URLs, the upload signal.
    pub(crate) snapshots: Snapshots,
    /// Web Push and ntfy: the VAPID key, the queue from the switchboard, the senders.
    pub(crate) notify: crate::notify::Notify,
    /// Wakes the household journal's follower (`crate::household`) after this process
    /// changed a household, so the change does not wait for its next poll.
    pub(crate) household_wake: tokio::sync::Notify,
    /// Pairing requests relayed to doors, waiting for their answer.
    pub(crate) door_pairing: crate::pairing::DoorPairing,
}

impl HubState {
    // One argument per part a hub is made of; `Hub::open` is the only caller.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: HubConfig,
        timings: Timings,
        store: Store,
        switchboard: Switchboard,
        tls: Option<TlsSetup>,
        snapshots: Snapshots,
        notify: crate::notify::Notify,
        limits: Limits,
    ) -> Self {
        HubState {
            config,
            timings,
            store,
            switchboard,
            tls,
            limits,
            pair_failures: FailureLimiter::default(),
            snapshots,
            notify,
            household_wake: tokio::sync::Notify::new(),
            door_pairing: Default::default(),
        }
    }
}

/// Shared by all handlers of one `serve` call.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) hub: Arc<HubState>,
    /// Cancelled when the hub starts draining.
    pub(crate) shutdown: CancellationToken,
    /// Tracks WebSocket connections so the drain can wait for them.
    pub(crate) tracker: TaskTracker,
}
