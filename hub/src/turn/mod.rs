//! TURN/STUN for calls across NAT: the embedded server, coturn-compatible credentials, and the
//! peer policy.
//!
//! | module | job |
//! |---|---|
//! | `config` | the `[turn]` table ([`TurnConfig`]), validation and defaults |
//! | `credentials` | TURN REST API credentials: mint ([`TurnIssuer`]) and verify ([`TurnVerifier`]) |
//! | `policy` | which peers may be relayed to ([`PeerPolicy`]) |
//! | `gate` | the wrappers that add peer policy, quotas and rate limiting to the `turn` crate |
//!
//! [`start`] turns a resolved `[turn]` table into a [`Turn`]: in `embedded` mode it binds the
//! UDP listener and starts the server; in both `embedded` and `external` modes it yields the
//! [`TurnIssuer`] the hub uses to give each side of each call its own short-lived credentials
//! (`ring` to phones, `answered` to the door), plus the `stun:` URL for `welcome`.

mod config;
mod credentials;
mod gate;
mod policy;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use doorbell_protocol::IceServer;
use turn::auth::{generate_auth_key, AuthHandler};
use turn::relay::relay_range::RelayAddressGeneratorRanges;
use turn::server::config::{ConnConfig, ServerConfig};
use turn::server::Server;
use webrtc_util::vnet::net::Net;

pub use config::{
    parse_port_range, EmbeddedSettings, ExternalSettings, MintSettings, ResolvedTurn, TurnConfig,
    TurnConfigError, TurnDefaults, TurnMode,
};
pub use credentials::{password, CredentialError, TurnIssuer, TurnVerifier};
pub(crate) use gate::fuzz_gate_datagram;
pub use policy::{denied_class, Cidr, DeniedClass, PeerPolicy};

/// Bytes of randomness in a generated shared secret: 256 bits, hex encoded (coturn reads the
/// secret as a string, so hex keeps it one token on one line).
pub(crate) const SECRET_BYTES: usize = 32;

/// Starting TURN failed.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(transparent)]
    Config(#[from] TurnConfigError),
    #[error("TURN secret file {path}: {source}\n  fix: {fix}")]
    Secret {
        path: String,
        source: std::io::Error,
        fix: &'static str,
    },
    #[error("cannot listen for TURN on {addr} (turn.listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the embedded TURN server did not start: {0}")]
    Server(#[from] turn::Error),
    #[error("the embedded TURN server's socket: {0}")]
    Socket(#[from] webrtc_util::Error),
    #[error(transparent)]
    Random(#[from] crate::secrets::RandomError),
}

/// Reads the shared secret, or (when `create`) makes one, 0600, when the file is missing.
pub(crate) fn load_secret(path: &Path, create: bool) -> Result<Vec<u8>, TurnError> {
    let err = |source, fix| TurnError::Secret {
        path: path.display().to_string(),
        source,
        fix,
    };
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => Err(err(
            std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
            "put the shared secret (coturn's static-auth-secret) in it, or delete it to have the embedded server make one",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let secret = crate::secrets::random_hex(SECRET_BYTES)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| err(e, "check turn.secret_file's directory"))?;
            }
            crate::secrets::write_private_file(path, format!("{secret}\n").as_bytes(), 0o600)
                .map_err(|e| err(e, "make turn.secret_file's directory writable by the hub"))?;
            tracing::info!(path = %path.display(), "generated the TURN shared secret");
            Ok(secret.into_bytes())
        }
        Err(e) => Err(err(
            e,
            "create it with the same value as coturn's static-auth-secret (e.g. `openssl rand -hex 32`), mode 0600",
        )),
    }
}

/// The `turn` crate's hook for the long-term key of a username: ours parses `EXPIRY:ID`
/// (the crate's stock `LongTermAuthHandler` expects a bare integer).
struct RestAuthHandler {
    verifier: TurnVerifier,
}

impl AuthHandler for RestAuthHandler {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        _src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        let password = self
            .verifier
            .password_for(username, SystemTime::now())
            .map_err(|e| turn::Error::Other(e.to_string()))?;
        Ok(generate_auth_key(username, realm, &password))
    }
}

/// A running embedded TURN server. Closed on [`EmbeddedTurn::close`] (or, best effort, on drop).
pub struct EmbeddedTurn {
    server: Arc<Server>,
    local: SocketAddr,
}

impl std::fmt::Debug for EmbeddedTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTurn")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl EmbeddedTurn {
    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops the server and frees its ports.
    pub async fn close(self) {
        let _ = self.server.close().await;
    }
}

impl Drop for EmbeddedTurn {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let server = self.server.clone();
            rt.spawn(async move {
                let _ = server.close().await;
            });
        }
    }
}

/// Starts the embedded server with `secret`.
pub(crate) async fn start_embedded(
    s: &EmbeddedSettings,
    secret: Vec<u8>,
) -> Result<EmbeddedTurn, TurnError> {
    let socket = tokio::net::UdpSocket::bind(s.listen)
        .await
        .map_err(|source| TurnError::Bind {
            addr: s.listen,
            source,
        })?;
    let local = socket.local_addr().map_err(|source| TurnError::Bind {
        addr: s.listen,
        source,
    })?;
    let verifier = TurnVerifier::new(secret, Duration::from_secs(s.max_ttl_secs));
    let policy = PeerPolicy::new(s.allow_peers.clone()).with_own_addresses(
        local,
        s.relay_address,
        s.relay_ports,
    );
    let gate = Arc::new(gate::GateConn::new(
        Arc::new(socket),
        verifier.clone(),
        policy.clone(),
        gate::AllocationQuotas {
            per_identity: s.max_allocations_per_credential,
            total: s.max_allocations,
        },
    )?);
    let relays = gate::PolicedRelays {
        inner: Box::new(RelayAddressGeneratorRanges {
            relay_address: s.relay_address,
            min_port: s.relay_ports.0,
            max_port: s.relay_ports.1,
            max_retries: 0,
            address: local.ip().to_string(),
            net: Arc::new(Net::new(None)),
        }),
        policy,
        max_relay_kbps: s.max_relay_kbps,
    };
    let server = Server::new(ServerConfig {
        conn_configs: vec![ConnConfig {
            conn: gate.clone(),
            relay_addr_generator: Box::new(relays),
        }],
        realm: s.mint.realm.clone(),
        auth_handler: Arc::new(RestAuthHandler { verifier }),
        channel_bind_timeout: Duration::from_secs(0),
        alloc_close_notify: None,
    })
    .await?;
    let server = Arc::new(server);
    gate.attach(&server);
    tracing::info!(address = %local, relay = %s.relay_address, ports = ?s.relay_ports, "embedded TURN server listening");
    Ok(EmbeddedTurn { server, local })
}

/// TURN as the hub uses it: who mints credentials, and the server if it is in-process.
#[derive(Debug, Default)]
pub struct Turn {
    /// Mints per-call credentials; `None` when TURN is off.
    pub issuer: Option<TurnIssuer>,
    /// `stun:` URLs for `welcome` (the embedded server answers STUN Binding too).
    pub stun: Vec<IceServer>,
    /// The embedded server, if `mode = "embedded"`.
    pub embedded: Option<EmbeddedTurn>,
}

fn issuer(mint: &MintSettings, secret: Vec<u8>, urls: Vec<String>) -> TurnIssuer {
    TurnIssuer::new(secret, Duration::from_secs(mint.credential_ttl_secs), urls)
}

/// Starts TURN as configured.
pub async fn start(resolved: &ResolvedTurn) -> Result<Turn, TurnError> {
    match resolved {
        ResolvedTurn::Off => Ok(Turn::default()),
        ResolvedTurn::External(e) => {
            let secret = load_secret(&e.mint.secret_file, false)?;
            let (turn_urls, stun_urls): (Vec<String>, Vec<String>) = e
                .mint
                .urls
                .iter()
                .cloned()
                .partition(|u| u.starts_with("turn"));
            Ok(Turn {
                issuer: Some(issuer(&e.mint, secret, turn_urls)),
                stun: stun_servers(stun_urls),
                embedded: None,
            })
        }
        ResolvedTurn::Embedded(s) => {
            let secret = load_secret(&s.mint.secret_file, true)?;
            let embedded = start_embedded(s, secret.clone()).await?;
            let advertised = SocketAddr::new(s.relay_address, embedded.local_addr().port());
            let (turn_urls, stun_urls) = if s.mint.urls.is_empty() {
                (
                    vec![format!("turn:{advertised}?transport=udp")],
                    vec![format!("stun:{advertised}")],
                )
            } else {
                s.mint
                    .urls
                    .iter()
                    .cloned()
                    .partition(|u| u.starts_with("turn"))
            };
            Ok(Turn {
                issuer: Some(issuer(&s.mint, secret, turn_urls)),
                stun: stun_servers(stun_urls),
                embedded: Some(embedded),
            })
        }
    }
}

fn stun_servers(urls: Vec<String>) -> Vec<IceServer> {
    if urls.is_empty() {
        return Vec::new();
    }
    vec![IceServer {
        urls,
        username: None,
        credential: None,
    }]
}
