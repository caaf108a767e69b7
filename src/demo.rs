//! Local-first mode (`doorbelld --demo`): the hub runs inside this process, the door registers
//! itself with an identity it made on first start, and a one-time pairing link is printed.
//! One binary on one Pi is then a complete intercom for the home network, with no cloud.

use crate::config::Config;
use crate::link::LinkConfig;
use anyhow::Context;
use doorbell_hub::{Hub, HubConfig, TlsMode};
use doorbell_protocol::DoorId;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// The door's own credentials for the embedded hub, created once per device.
#[derive(Serialize, Deserialize)]
struct Identity {
    door_id: String,
    secret: String,
}

const IDENTITY_FILE: &str = "door-identity.json";

/// Read the identity, or make one: a random id and a 128-bit random secret, written with
/// mode 0600 so only the daemon's user can read it.
fn load_or_create_identity(state_dir: &Path) -> anyhow::Result<Identity> {
    let path = state_dir.join(IDENTITY_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; delete it to make a new door identity (phones must pair again)",
                path.display()
            )
        });
    }
    let identity = Identity {
        door_id: format!("d-{:08x}", rand::random::<u32>()),
        secret: format!("{:032x}", rand::random::<u128>()),
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(serde_json::to_string(&identity)?.as_bytes())?;
    Ok(identity)
}

pub struct EmbeddedHub {
    /// How this door reaches its own embedded hub.
    pub link: LinkConfig,
    /// The one-time pairing link to open on a phone.
    pub phone_url: String,
    /// SHA-256 fingerprint of the hub's self-signed certificate (None on plain loopback HTTP).
    pub fingerprint: Option<String>,
    /// The hub's serve task; it ends after `shutdown` once connections drained.
    pub task: tokio::task::JoinHandle<()>,
}

/// Start the hub on `listen` and register this door with it.
pub async fn start(
    config: &Config,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<EmbeddedHub> {
    let state_dir = &config.state_dir;
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state_dir {}", state_dir.display()))?;
    std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict state_dir {}", state_dir.display()))?;

    // Phone browsers only grant the microphone on secure origins: loopback is one, a LAN
    // address is not, so anything but loopback gets TLS.
    let tls = if listen.ip().is_loopback() {
        TlsMode::Plain
    } else {
        TlsMode::SelfSigned
    };
    let secure = !matches!(tls, TlsMode::Plain);
    let hub_db = state_dir.join("hub.sqlite3");
    let hub = Hub::open(HubConfig {
        db_path: hub_db.clone(),
        public_url: None,
        ice_servers: Vec::new(),
        tls,
    })?;
    let identity = load_or_create_identity(state_dir)?;
    hub.store().ensure_door(
        &DoorId::new(&identity.door_id),
        &config.door.name,
        &identity.secret,
    )?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--listen)"))?;
    let local = listener.local_addr()?;
    let base_url = hub.base_url(local);
    let code = hub
        .store()
        .create_pairing_code(&DoorId::new(&identity.door_id))?;
    let phone_url = doorbell_hub::pairing_url(&base_url, &code);

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
    let link = LinkConfig {
        url: format!("{scheme}://127.0.0.1:{}/ws", local.port()),
        door_id: identity.door_id,
        secret: identity.secret,
        software: crate::SOFTWARE.into(),
        // The self-signed certificate names 127.0.0.1; trusting exactly it is enough.
        ca_file: secure.then(|| doorbell_hub::tls::self_signed_paths(&hub_db).0),
    };
    Ok(EmbeddedHub {
        link,
        phone_url,
        fingerprint,
        task,
    })
}
