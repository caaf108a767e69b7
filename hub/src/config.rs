//! What the hub is told at start: where its database lives, how it is reached, TLS, and the
//! protocol timings (overridable so tests do not wait 10 s for a handshake timeout).

use std::path::PathBuf;
use std::time::Duration;

use doorbell_protocol::IceServer;

/// Everything [`crate::Hub::open`] needs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The SQLite database (created if missing). A self-signed certificate, or the ACME
    /// account and certificate (`acme/`), are kept beside it.
    pub db_path: PathBuf,
    /// Base URL printed in pairing links, e.g. `https://doorbell.local:8443`. None = derive from the bound address.
    pub public_url: Option<String>,
    /// STUN/TURN servers handed to both sides in welcome (may be empty for LAN).
    pub ice_servers: Vec<IceServer>,
    /// How connections are secured.
    pub tls: TlsMode,
    /// Mints per-call TURN credentials for `ring` and `answered` (see [`crate::start_turn`]);
    /// `None`: no TURN.
    pub turn: Option<crate::turn::TurnIssuer>,
    /// Retention of events and snapshots (the `[history]` table).
    pub history: crate::snapshots::HistoryConfig,
    /// The `[push]` table: Web Push contact and (tests only) insecure endpoints.
    pub push: crate::push::PushConfig,
    /// The `[notify]` table: ntfy.
    pub notify: crate::notify::NotifyConfig,
    /// The `[limits]` table: connections per client, caps, timeouts, proxies, hosts, origins.
    pub limits: crate::limits::LimitsConfig,
}

/// How the hub's listener is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// plain HTTP; serve() refuses unless the listener is on a loopback address
    Plain,
    /// use this PEM cert chain + key
    Files { cert: PathBuf, key: PathBuf },
    /// generate (once, persisted next to the db) a self-signed cert; its SHA-256 fingerprint is logged/printed
    SelfSigned,
    /// obtain and renew a certificate from an ACME CA (Let's Encrypt), kept next to the db
    Acme(crate::acme::AcmeConfig),
}

/// Protocol timings. [`Timings::default`] is what `docs/PROTOCOL.md` promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Time from upgrade to `hello` (protocol: 10 s). Bounds how long an idle or malicious
    /// client can hold a connection slot without authenticating.
    pub handshake: Duration,
    /// Interval between WebSocket pings (protocol: 20 s): keeps NAT mappings and proxies
    /// from dropping a quiet connection, and proves the peer is alive.
    pub ping_interval: Duration,
    /// A peer that sent no frame (not even a pong) for this long is dropped (protocol: 60 s,
    /// i.e. three missed pings).
    pub idle: Duration,
    /// After shutdown is requested, how long `serve` waits for connections to close before it
    /// returns anyway. Short: systemd's stop timeout must not be reached.
    pub drain: Duration,
    /// How long a snapshot's capability URL works (default 1 h; tests shorten it).
    pub snapshot_url_ttl: Duration,
    /// How long a capability GET waits for a snapshot not uploaded yet (default 3 s).
    pub snapshot_wait: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            handshake: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle: Duration::from_secs(60),
            drain: Duration::from_secs(5),
            snapshot_url_ttl: crate::snapshots::SNAPSHOT_URL_TTL,
            snapshot_wait: crate::snapshots::SNAPSHOT_WAIT,
        }
    }
}
