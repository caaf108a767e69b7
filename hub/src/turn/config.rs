//! The `[turn]` configuration table, shared by `doorbell-hub serve --config` and `doorbelld`
//! (whose embedded hub reads the same table from its own layered config).
//!
//! ```toml
//! [turn]
//! mode = "embedded"                # "embedded" | "external" | "off"
//! listen = "0.0.0.0:3478"          # embedded: UDP address (port 0 = pick a free one)
//! relay_address = "203.0.113.7"    # IP written into relayed candidates (the public IP)
//! relay_ports = "49152-65535"      # embedded: relay port range
//! urls = ["turn:turn.example.net:3478?transport=udp"]  # external: required
//! secret_file = "/var/lib/doorbell-hub/turn-secret"    # coturn's static-auth-secret
//! realm = "doorbell"
//! credential_ttl_secs = 900        # lifetime of the per-call credentials the hub mints
//! max_ttl_secs = 3600              # embedded: refuse usernames expiring later than this
//! allow_peers = []                 # embedded, LAB ONLY: CIDRs exempt from the peer policy
//! max_allocations_per_credential = 24  # embedded: per door or phone, across its calls
//! max_allocations = 2048           # embedded: for the whole server
//! max_relay_kbps = 12000           # embedded: relayed bandwidth per allocation, each way
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::policy::Cidr;

/// Where the TURN server comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnMode {
    /// The hub runs a TURN/STUN server in-process (webrtc-rs `turn`).
    Embedded,
    /// An external TURN server (coturn with `use-auth-secret`) shares the secret.
    External,
    /// No TURN: only the STUN servers given elsewhere (LAN use).
    Off,
}

/// Default UDP listen address of a standalone embedded TURN server (IANA STUN/TURN port).
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:3478";
/// Default relay port range: the IANA dynamic range, as coturn uses.
pub(crate) const DEFAULT_RELAY_PORTS: &str = "49152-65535";
/// Default realm (coturn's `realm`): any fixed string both sides agree on.
pub(crate) const DEFAULT_REALM: &str = "doorbell";
/// Minted credentials live 15 minutes. Short, so a leaked credential is soon useless; but a
/// TURN client re-authenticates every Refresh, CreatePermission (every 5 min) and ChannelBind
/// with the same username, and both coturn and the embedded server refuse an expired one, so
/// the lifetime must cover ringing (`call.ring_timeout_secs`, 30 s), connecting (20 s) and the
/// longest call (`call.max_call_secs`, 600 s) or a relayed call drops mid-way.
pub(crate) const DEFAULT_CREDENTIAL_TTL_SECS: u64 = 900;
/// The embedded server refuses usernames whose expiry is further ahead than this: a minted
/// credential is never longer-lived than `credential_ttl_secs`, so anything far in the future
/// was not minted by us for a call (or the secret leaked).
pub(crate) const DEFAULT_MAX_TTL_SECS: u64 = 3600;
/// Live allocations of one door or phone (the ID of its credentials, whichever call minted
/// them: a new username is minted every ring, so a quota per username bounded nothing). A
/// browser makes one allocation per local interface and address family it gathers on (up to 8
/// on a dual-stack phone with Wi-Fi and mobile data) per session; a door holds one per session
/// and interface, and has up to `view.max_viewers` (8) previews plus the call: 24 covers both.
pub(crate) const DEFAULT_MAX_ALLOCATIONS_PER_CREDENTIAL: u32 = 24;
/// Live allocations of the whole server: each is a UDP socket and a relay port. 2048 is about
/// 100 calls relayed at both ends at once, far more than a household hub sees, and keeps a
/// flood of valid credentials from using up the relay range or the file descriptors.
pub(crate) const DEFAULT_MAX_ALLOCATIONS: u32 = 2048;
/// Relayed kbit/s per allocation and direction: the door's highest video bitrate
/// (`media.video_bitrate_kbps` <= 10000) plus Opus and packet overhead fits; anything beyond is
/// not a doorbell call. With the allocation quota this bounds what one credential can relay.
pub(crate) const DEFAULT_MAX_RELAY_KBPS: u32 = 12_000;

/// The `[turn]` table. Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// "embedded" | "external" | "off". Absent: the caller's default (`off` for a standalone
    /// `doorbell-hub serve`, `embedded` for the hub inside `doorbelld`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<TurnMode>,
    /// Embedded: UDP socket address to listen on. Port 0 picks a free port (the bound one is
    /// advertised). Absent: the caller's default (`0.0.0.0:3478` standalone; the hub's listen
    /// IP with port 0 inside `doorbelld`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// IP written into relayed candidates and advertised URLs (the public IP). Absent: the
    /// listen IP when it is a specific address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_address: Option<IpAddr>,
    /// Embedded: relay port range "LOW-HIGH" (inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_ports: Option<String>,
    /// `turn:`/`stun:` URLs handed to clients. Required for external; for embedded, absent
    /// means `turn:<relay_address>:<port>?transport=udp` and `stun:<relay_address>:<port>`.
    pub urls: Vec<String>,
    /// File holding the shared secret (coturn's `static-auth-secret`). Embedded: generated
    /// once (0600) when missing. External: must exist. Absent: `turn-secret` beside the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// Realm of the long-term credentials (coturn's `realm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Lifetime of the credentials minted for each call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_ttl_secs: Option<u64>,
    /// Embedded: usernames expiring later than now + this are refused (as are expired ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ttl_secs: Option<u64>,
    /// Embedded, lab use only: peer CIDRs exempt from the private-address peer policy
    /// (e.g. "127.0.0.1/32" to relay to a test peer on loopback).
    pub allow_peers: Vec<String>,
    /// Embedded: live allocations one door or phone may hold (the ID part of its usernames,
    /// across every call's credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_allocations_per_credential: Option<u32>,
    /// Embedded: live allocations of the whole server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_allocations: Option<u32>,
    /// Embedded: relayed kbit/s per allocation and direction; datagrams beyond it are dropped
    /// (a one-second burst is allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_relay_kbps: Option<u32>,
}

/// What the caller (standalone hub or `doorbelld`) assumes for keys the file leaves out.
#[derive(Debug, Clone)]
pub struct TurnDefaults {
    pub mode: TurnMode,
    pub listen: SocketAddr,
    /// Used for `relay_address` when it is absent and the listen IP is unspecified
    /// (`doorbelld` passes the address phones reach its hub on).
    pub relay_address: Option<IpAddr>,
    /// `secret_file` when absent.
    pub secret_file: PathBuf,
}

impl TurnDefaults {
    /// Defaults of a standalone hub whose database is `db_path`.
    pub fn standalone(db_path: &Path) -> TurnDefaults {
        TurnDefaults {
            mode: TurnMode::Off,
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| unreachable!()),
            relay_address: None,
            secret_file: secret_beside(db_path),
        }
    }
}

/// `turn-secret` in the directory of `db_path`.
pub(crate) fn secret_beside(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join("turn-secret")
}

/// A `[turn]` mistake: the key, what is wrong, and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`: {problem}\n  fix: {fix}")]
pub struct TurnConfigError {
    pub key: &'static str,
    pub problem: String,
    pub fix: String,
}

fn invalid(key: &'static str, problem: impl Into<String>, fix: &str) -> TurnConfigError {
    TurnConfigError {
        key,
        problem: problem.into(),
        fix: fix.to_owned(),
    }
}

/// A validated `[turn]` table with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedTurn {
    Off,
    Embedded(EmbeddedSettings),
    External(ExternalSettings),
}

/// Settings shared by both TURN modes: how credentials are minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintSettings {
    pub secret_file: PathBuf,
    pub realm: String,
    pub credential_ttl_secs: u64,
    /// URLs given to clients; for embedded with port 0 they are filled in after binding.
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSettings {
    pub mint: MintSettings,
    pub listen: SocketAddr,
    pub relay_address: IpAddr,
    pub relay_ports: (u16, u16),
    pub max_ttl_secs: u64,
    pub allow_peers: Vec<Cidr>,
    pub max_allocations_per_credential: u32,
    pub max_allocations: u32,
    pub max_relay_kbps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSettings {
    pub mint: MintSettings,
}

/// Parses "LOW-HIGH".
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = s.split_once('-')?;
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo > 0 && lo <= hi).then_some((lo, hi))
}

impl TurnConfig {
    /// Validates the table and fills in defaults. Errors name the key and the fix.
    pub fn resolve(&self, defaults: &TurnDefaults) -> Result<ResolvedTurn, TurnConfigError> {
        let mode = self.mode.unwrap_or(defaults.mode);
        if mode == TurnMode::Off {
            return Ok(ResolvedTurn::Off);
        }
        let realm = self
            .realm
            .clone()
            .unwrap_or_else(|| DEFAULT_REALM.to_owned());
        if realm.is_empty() || realm.len() > 127 || !realm.is_ascii() {
            return Err(invalid(
                "turn.realm",
                format!("{realm:?} must be 1-127 ASCII characters"),
                "set turn.realm = \"doorbell\" (the same as coturn's `realm`)",
            ));
        }
        let credential_ttl_secs = self
            .credential_ttl_secs
            .unwrap_or(DEFAULT_CREDENTIAL_TTL_SECS);
        let max_ttl_secs = self.max_ttl_secs.unwrap_or(DEFAULT_MAX_TTL_SECS);
        if credential_ttl_secs < 30 || credential_ttl_secs > max_ttl_secs {
            return Err(invalid(
                "turn.credential_ttl_secs",
                format!(
                    "{credential_ttl_secs} must be at least 30 and at most turn.max_ttl_secs ({max_ttl_secs})"
                ),
                "cover ringing plus the longest call (default 900); raise turn.max_ttl_secs only if you must",
            ));
        }
        for url in &self.urls {
            if !(url.starts_with("turn:") || url.starts_with("turns:") || url.starts_with("stun:"))
            {
                return Err(invalid(
                    "turn.urls",
                    format!("{url:?} is not a turn:, turns: or stun: URL"),
                    "write URLs like \"turn:turn.example.net:3478?transport=udp\"",
                ));
            }
        }
        let mint = MintSettings {
            secret_file: self
                .secret_file
                .clone()
                .unwrap_or_else(|| defaults.secret_file.clone()),
            realm,
            credential_ttl_secs,
            urls: self.urls.clone(),
        };
        if mode == TurnMode::Embedded
            && !self.urls.is_empty()
            && !self.urls.iter().any(|u| u.starts_with("turn"))
        {
            // Credentials with no TURN URL to use them on: every phone would get an ICE server
            // with empty `urls`, which browsers refuse outright.
            return Err(invalid(
                "turn.urls",
                "lists no turn: URL for the embedded server",
                "add \"turn:<relay_address>:<port>?transport=udp\", or leave turn.urls out for the default",
            ));
        }
        if mode == TurnMode::External {
            if !self.urls.iter().any(|u| u.starts_with("turn")) {
                return Err(invalid(
                    "turn.urls",
                    "mode = \"external\" needs the TURN server's URLs",
                    "set turn.urls = [\"turn:turn.example.net:3478?transport=udp\"] (your coturn's address)",
                ));
            }
            if self.secret_file.is_none() {
                return Err(invalid(
                    "turn.secret_file",
                    "mode = \"external\" needs the file holding coturn's static-auth-secret",
                    "set turn.secret_file = \"/etc/doorbell/turn-secret\" with the same value as `static-auth-secret` in turnserver.conf",
                ));
            }
            return Ok(ResolvedTurn::External(ExternalSettings { mint }));
        }
        let listen = self.listen.unwrap_or(defaults.listen);
        let relay_address = match self.relay_address {
            Some(ip) => ip,
            None if !listen.ip().is_unspecified() => listen.ip(),
            None => defaults.relay_address.ok_or_else(|| {
                invalid(
                    "turn.relay_address",
                    format!(
                        "turn.listen is {listen}, so the address clients relay through is unknown"
                    ),
                    "set turn.relay_address = \"<the public IP of this machine>\"",
                )
            })?,
        };
        if relay_address.is_unspecified() {
            return Err(invalid(
                "turn.relay_address",
                format!("{relay_address} cannot be reached"),
                "set turn.relay_address to the IP clients reach this machine on",
            ));
        }
        let ports = self.relay_ports.as_deref().unwrap_or(DEFAULT_RELAY_PORTS);
        let relay_ports = parse_port_range(ports).ok_or_else(|| {
            invalid(
                "turn.relay_ports",
                format!("{ports:?} is not a port range"),
                "write it like \"49152-65535\" (low-high, inclusive, low > 0)",
            )
        })?;
        let allow_peers = self
            .allow_peers
            .iter()
            .map(|s| {
                s.parse::<Cidr>().map_err(|_| {
                    invalid(
                        "turn.allow_peers",
                        format!("{s:?} is not an address or CIDR"),
                        "write entries like \"127.0.0.1/32\" or \"10.1.2.0/24\" (lab use only)",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max_allocations_per_credential = self
            .max_allocations_per_credential
            .unwrap_or(DEFAULT_MAX_ALLOCATIONS_PER_CREDENTIAL);
        if max_allocations_per_credential == 0 {
            return Err(invalid(
                "turn.max_allocations_per_credential",
                "0 would refuse every allocation",
                "use the default 24, or mode = \"off\" to disable TURN",
            ));
        }
        let relay_range = u32::from(relay_ports.1 - relay_ports.0) + 1;
        // Unset: as many as the relay range holds, up to the default.
        let max_allocations = self
            .max_allocations
            .unwrap_or(DEFAULT_MAX_ALLOCATIONS.min(relay_range));
        if max_allocations == 0 || max_allocations > relay_range {
            return Err(invalid(
                "turn.max_allocations",
                format!("{max_allocations} is outside 1-{relay_range} (the size of turn.relay_ports)"),
                "use the default 2048 (or fewer on a small device); each allocation holds a relay port",
            ));
        }
        let max_relay_kbps = self.max_relay_kbps.unwrap_or(DEFAULT_MAX_RELAY_KBPS);
        if !(64..=1_000_000).contains(&max_relay_kbps) {
            return Err(invalid(
                "turn.max_relay_kbps",
                format!("{max_relay_kbps} is outside 64-1000000"),
                "use the default 12000 (a 10 Mbit/s video call with headroom)",
            ));
        }
        Ok(ResolvedTurn::Embedded(EmbeddedSettings {
            mint,
            listen,
            relay_address,
            relay_ports,
            max_ttl_secs,
            allow_peers,
            max_allocations_per_credential,
            max_allocations,
            max_relay_kbps,
        }))
    }
}
