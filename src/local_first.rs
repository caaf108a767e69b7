//! Local-first mode (`doorbelld --demo`, or `hub.listen` in the configuration): the hub runs
//! inside this process, the door registers itself with the identity it made on first start
//! ([`crate::identity`]); `doorbelld pair` makes one-time pairing links with codes the door
//! makes itself ([`crate::pairing`]; `--demo` prints one to its terminal).
//! One binary on one Pi is then a complete intercom for the home network, with no cloud.

use crate::config::Config;
use crate::control::{HubCommand, HubCommands};
use crate::identity::Identity;
use crate::link::HubAddress;
use doorbell_hub::{Hub, HubConfig, HubError, StoreError, TlsMode};
use doorbell_protocol::DoorId;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why the embedded hub did not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalFirstError {
    #[error("configuration key `{key}`: {problem}\n  fix: {fix}")]
    Turn {
        key: &'static str,
        problem: String,
        fix: String,
    },
    #[error(transparent)]
    TurnStart(#[from] doorbell_hub::TurnError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr} (--listen): {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot make a pairing link: {0}")]
    Pairing(String),
}

pub struct EmbeddedHub {
    /// How this door reaches its own embedded hub.
    pub hub: HubAddress,
    /// `doorbelld phones [remove <id>]`.
    pub pairing: HubCommands,
    /// The URL phones open (pairing links start with it).
    pub base_url: String,
    /// SHA-256 fingerprint of the hub's self-signed certificate (None on plain loopback HTTP).
    pub fingerprint: Option<String>,
    /// The hub's serve task; it ends after `shutdown` once connections drained.
    pub task: tokio::task::JoinHandle<()>,
    /// The embedded TURN server (`[turn] mode = "embedded"`, the default here); it stops
    /// when this is dropped.
    pub turn: Option<doorbell_hub::EmbeddedTurn>,
}

/// Start the hub on `listen` and register this door with it.
pub async fn start(
    config: &Config,
    identity: &Identity,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> Result<EmbeddedHub, LocalFirstError> {
    let state_dir = &config.state_dir;

    // Phone browsers only grant the microphone on secure origins: loopback is one, a LAN
    // address is not, so anything but loopback gets TLS.
    let tls = if listen.ip().is_loopback() {
        TlsMode::Plain
    } else {
        TlsMode::SelfSigned
    };
    let secure = !matches!(tls, TlsMode::Plain);
    let hub_db = state_dir.join("hub.sqlite3");
    // A hub on all interfaces is reached (and relays) on this machine's outbound address.
    let relay_fallback = listen
        .ip()
        .is_unspecified()
        .then(|| doorbell_hub::outbound_ip(listen.is_ipv6()))
        .flatten();
    let resolved = match config
        .turn
        .resolve(&config.turn_defaults(listen, relay_fallback))
    {
        Ok(resolved) => resolved,
        // TURN on by default must not stop a LAN-only appliance that has no route to learn
        // its address from (calls on one LAN need no relay); an explicit mode still must work.
        Err(e) if e.key == "turn.relay_address" && config.turn.mode.is_none() => {
            tracing::warn!("TURN is off: {e}");
            doorbell_hub::ResolvedTurn::Off
        }
        Err(e) => {
            return Err(LocalFirstError::Turn {
                key: e.key,
                problem: e.problem,
                fix: e.fix,
            })
        }
    };
    let turn = doorbell_hub::start_turn(&resolved).await?;
    if let Some(embedded) = &turn.embedded {
        tracing::info!(address = %embedded.local_addr(), "TURN/STUN for calls");
    }
    let hub = Hub::open(HubConfig {
        db_path: hub_db.clone(),
        public_url: None,
        ice_servers: turn.stun.clone(),
        tls,
        turn: turn.issuer.clone(),
        history: config.history,
        push: config.push.clone(),
        notify: config.notify.clone(),
        limits: doorbell_hub::LimitsConfig {
            allowed_hosts: config.hub.allowed_hosts.clone(),
            ..Default::default()
        },
    })?;
    hub.store().ensure_door(
        &DoorId::new(&identity.door_id),
        &config.door.name,
        &identity.secret,
    )?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| LocalFirstError::Listen {
            addr: listen,
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| LocalFirstError::Listen {
            addr: listen,
            source,
        })?;
    let base_url = hub.base_url(local);
    let pairing: HubCommands = {
        let store = hub.store().clone();
        // The running hub follows the store's household journal, so a removal here closes
        // the phone's connections within a fraction of a second.
        Arc::new(move |command| {
            let reply = match command {
                HubCommand::Phones => store.list_phones().map(|phones| {
                    serde_json::to_string(&phones).unwrap_or_else(|e| format!("error: {e}"))
                }),
                HubCommand::RemovePhone(id) => store.remove_phone(&id).map(|_| "ok".to_owned()),
            };
            reply.map_err(|e| e.to_string())
        })
    };

    let fingerprint = hub.tls_fingerprint().map(str::to_owned);
    let serving = hub.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = serving
            .serve(listener, async move { shutdown.cancelled().await })
            .await
        {
            tracing::error!("embedded hub stopped: {e}");
        }
    });

    // The door reaches its own hub over loopback, whatever address the phones use.
    let scheme = if secure { "wss" } else { "ws" };
    let hub = HubAddress {
        url: format!("{scheme}://127.0.0.1:{}/ws", local.port()),
        // The self-signed certificate names 127.0.0.1; trusting exactly it is enough.
        ca_file: secure.then(|| doorbell_hub::self_signed_paths(&hub_db).0),
    };
    Ok(EmbeddedHub {
        hub,
        pairing,
        base_url,
        fingerprint,
        task,
        turn: turn.embedded,
    })
}
