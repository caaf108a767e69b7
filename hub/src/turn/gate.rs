//! The hooks the `turn` crate lacks, added by wrapping its sockets rather than forking it.
//!
//! `turn::server::Server` has no callback at CreatePermission / ChannelBind and no quota or
//! rate-limit hooks. It does take its listening socket as an `Arc<dyn Conn>`, and its relay
//! sockets from a [`RelayAddressGenerator`]. So:
//!
//! * [`GateConn`] wraps the listening socket. Every STUN *request* the server would read goes
//!   through [`GateConn::judge`] first (ChannelData, the hot path, passes after a one-byte
//!   test). For a request that carries credentials it checks the username and the
//!   MESSAGE-INTEGRITY itself (the same check the server repeats), counts failures per client
//!   address in the hub's [`FailureLimiter`] and answers `429` while an address is blocked;
//!   it answers a CreatePermission or ChannelBind naming any denied peer with `403 Forbidden`
//!   (so the request itself is refused, as coturn does, and no permission is installed), and an
//!   Allocate beyond the credential's quota with `486 Allocation Quota Reached`. Everything
//!   else is handed to the server unchanged.
//! * [`PolicedRelays`] wraps the port-range generator so that each relay socket also refuses
//!   to send to, and drops datagrams from, denied peers (a second line of defence should a
//!   permission ever be installed by a path the gate does not see), and drops what exceeds
//!   the allocation's bandwidth (`turn.max_relay_kbps`, each direction).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use stun::agent::TransactionId;
use stun::attributes::{
    AttrType, ATTR_MESSAGE_INTEGRITY, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS,
};
use stun::error_code::{ErrorCode, ErrorCodeAttribute, CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN};
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Setter, CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST,
    METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_SEND,
};
use stun::textattrs::TextAttribute;
use turn::relay::RelayAddressGenerator;
use turn::server::Server;
use webrtc_util::Conn;

use super::credentials::TurnVerifier;
use super::policy::PeerPolicy;
use crate::ratelimit::{FailureLimiter, TokenBucket};

/// Not in RFC 8656: "too many requests", sent while a client address is blocked after
/// repeated bad credentials. Any 4xx makes a TURN client give up the transaction.
pub(crate) const CODE_RATE_LIMITED: ErrorCode = ErrorCode(429);

/// STUN magic cookie (RFC 5389), the XOR key of XOR-PEER-ADDRESS.
const MAGIC_COOKIE: u32 = 0x2112_A442;

/// The decoded XOR-PEER-ADDRESS values of `m` (every one: a CreatePermission may carry
/// several, and the `turn` crate itself only reads the first).
pub(crate) fn peer_addresses(m: &Message) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for attr in m
        .attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
    {
        let v = &attr.value;
        if v.len() < 8 {
            continue;
        }
        // X-Port is the port XOR the cookie's most significant 16 bits.
        let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
        match v[1] {
            1 if v.len() >= 8 => {
                let x = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC_COOKIE;
                out.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(x)), port));
            }
            2 if v.len() >= 20 => {
                let mut key = [0u8; 16];
                key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                key[4..].copy_from_slice(&m.transaction_id.0);
                let mut b = [0u8; 16];
                for (i, byte) in b.iter_mut().enumerate() {
                    *byte = v[4 + i] ^ key[i];
                }
                out.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(b)), port));
            }
            // Unknown family: the server answers it; treat as denied to be safe.
            _ => out.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
        }
    }
    out
}

/// An error response to request `m`, integrity-protected with `key` when given.
fn error_response(
    m: &Message,
    code: ErrorCode,
    reason: &str,
    key: Option<&[u8]>,
) -> Option<Vec<u8>> {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(TransactionId(m.transaction_id.0)),
        Box::new(MessageType::new(m.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: reason.as_bytes().to_vec(),
        }),
    ];
    if let Some(key) = key {
        setters.push(Box::new(MessageIntegrity(key.to_vec())));
    }
    let mut r = Message::new();
    r.build(&setters).ok()?;
    Some(r.raw)
}

/// What the gate does with one datagram.
enum Verdict {
    /// Hand it to the TURN server.
    Pass,
    /// Answer it here and do not hand it on.
    Reply(Vec<u8>),
    /// Drop it silently.
    Drop,
}

/// `impl Conn for $ty`: the given methods (`recv_from` and `send_to`, where the checks are),
/// and every other method passed straight to `self.inner`.
macro_rules! conn_wrapper {
    ($ty:ty, { $($checked:tt)* }) => {
        #[async_trait]
        impl Conn for $ty {
            $($checked)*
            async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
                self.inner.connect(addr).await
            }
            async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
                self.inner.recv(buf).await
            }
            async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
                self.inner.send(buf).await
            }
            // Cached at construction: the `turn` server asks for it on every datagram (to build
            // the 5-tuple), and on a tokio socket each ask is a getsockname system call.
            fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
                Ok(self.local)
            }
            fn remote_addr(&self) -> Option<SocketAddr> {
                self.inner.remote_addr()
            }
            async fn close(&self) -> webrtc_util::Result<()> {
                self.inner.close().await
            }
            fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
                self
            }
        }
    };
}

/// The listening socket of the embedded server, with the checks described in the module docs.
pub(crate) struct GateConn {
    inner: Arc<dyn Conn + Send + Sync>,
    local: SocketAddr,
    verifier: TurnVerifier,
    policy: PeerPolicy,
    failures: FailureLimiter,
    quotas: AllocationQuotas,
    /// Set once the server exists (it is built from this socket), to count allocations.
    server: OnceLock<Weak<Server>>,
}

impl GateConn {
    pub(crate) fn new(
        inner: Arc<dyn Conn + Send + Sync>,
        verifier: TurnVerifier,
        policy: PeerPolicy,
        quotas: AllocationQuotas,
    ) -> webrtc_util::Result<Self> {
        Ok(GateConn {
            local: inner.local_addr()?,
            inner,
            verifier,
            policy,
            failures: FailureLimiter::default(),
            quotas,
            server: OnceLock::new(),
        })
    }

    /// Lets the gate ask the server how many allocations a username holds.
    pub(crate) fn attach(&self, server: &Arc<Server>) {
        let _ = self.server.set(Arc::downgrade(server));
    }

    async fn judge(&self, datagram: &[u8], src: SocketAddr) -> Verdict {
        let mut m = Message {
            raw: datagram.to_vec(),
            ..Default::default()
        };
        if m.decode().is_err() {
            return Verdict::Pass; // the server logs and ignores it
        }
        if m.typ.class == CLASS_INDICATION && m.typ.method == METHOD_SEND {
            // The server also requires a permission, which the gate never lets exist for a
            // denied peer; this keeps a Send to one from even being looked at.
            return if peer_addresses(&m)
                .into_iter()
                .all(|peer| self.policy.permits_peer(peer))
            {
                Verdict::Pass
            } else {
                Verdict::Drop
            };
        }
        if m.typ.class != CLASS_REQUEST || !m.contains(ATTR_USERNAME) {
            // Unauthenticated first requests (answered 401 + nonce) and Binding (plain STUN).
            return Verdict::Pass;
        }
        let now = Instant::now();
        // Credentials first: a request that proves the secret is never rate limited, so
        // forged failures (UDP sources are cheap to spoof) cannot lock real clients out. Only
        // an address that keeps guessing is slowed down, and a full table fails open.
        let Some(key) = self.authenticated_key(&m) else {
            if self.failures.has_used_up(src.ip(), now) {
                tracing::debug!(%src, "TURN request refused: too many bad credentials");
                return reply(error_response(
                    &m,
                    CODE_RATE_LIMITED,
                    "Too Many Requests",
                    None,
                ));
            }
            tracing::info!(%src, "TURN request with bad credentials");
            self.failures.record_failure(src.ip(), now);
            return Verdict::Pass; // the server refuses it with its own error response
        };
        let method = m.typ.method;
        if method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND {
            if let Some(peer) = peer_addresses(&m)
                .into_iter()
                .find(|peer| !self.policy.permits_peer(*peer))
            {
                tracing::info!(%src, %peer, "TURN permission refused by the peer policy");
                return reply(error_response(&m, CODE_FORBIDDEN, "Forbidden", Some(&key)));
            }
        } else if method == METHOD_ALLOCATE {
            let username = text_attr(&m, ATTR_USERNAME).unwrap_or_default();
            let (total, of_identity) = self.allocations_of(identity(&username)).await;
            let refusal = if total >= self.quotas.total as usize {
                Some("the server holds its most allocations (turn.max_allocations)")
            } else if of_identity >= self.quotas.per_identity as usize {
                Some("this door or phone holds its most allocations")
            } else {
                None
            };
            if let Some(why) = refusal {
                tracing::info!(%src, user = %username, "TURN allocation refused: {why}");
                return reply(error_response(
                    &m,
                    CODE_ALLOC_QUOTA_REACHED,
                    "Allocation Quota Reached",
                    Some(&key),
                ));
            }
            tracing::info!(%src, user = %username, "TURN allocation requested");
        }
        Verdict::Pass
    }

    /// The long-term key if the request's username is acceptable and its MESSAGE-INTEGRITY
    /// verifies with the password derived from it.
    fn authenticated_key(&self, m: &Message) -> Option<Vec<u8>> {
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            return None;
        }
        let username = text_attr(m, ATTR_USERNAME)?;
        let realm = text_attr(m, ATTR_REALM)?;
        let password = self
            .verifier
            .password_for(&username, SystemTime::now())
            .ok()?;
        let key = turn::auth::generate_auth_key(&username, &realm, &password);
        MessageIntegrity(key.clone()).check(&mut m.clone()).ok()?;
        Some(key)
    }

    /// Live allocations: of the whole server, and of the door or phone `id`.
    async fn allocations_of(&self, id: &str) -> (usize, usize) {
        let Some(server) = self.server.get().and_then(Weak::upgrade) else {
            return (0, 0);
        };
        match server.get_allocations_info(None).await {
            Ok(infos) => (
                infos.len(),
                infos
                    .values()
                    .filter(|i| identity(&i.username) == id)
                    .count(),
            ),
            Err(_) => (0, 0),
        }
    }
}

/// What the gate reads of one datagram, without a server: STUN decoding, every peer address
/// against the policy, the USERNAME's identity and credential check (`crate::fuzzing`).
pub(crate) fn fuzz_gate_datagram(data: &[u8]) {
    let mut m = Message {
        raw: data.to_vec(),
        ..Default::default()
    };
    if m.decode().is_err() {
        return;
    }
    let policy = PeerPolicy::default().with_own_addresses(
        SocketAddr::from(([127, 0, 0, 1], 3478)),
        IpAddr::from([198, 51, 100, 1]),
        (49152, 65535),
    );
    for peer in peer_addresses(&m) {
        let _ = policy.permits_peer(peer);
    }
    if let Some(username) = text_attr(&m, ATTR_USERNAME) {
        let _ = identity(&username);
        let _ = crate::fuzzing::verifier().password_for(&username, crate::fuzzing::now());
    }
}

/// The door or phone a username was minted for: `EXPIRY:ID` without the expiry, which changes
/// with every ring.
fn identity(username: &str) -> &str {
    username.split_once(':').map_or(username, |(_, id)| id)
}

/// How many allocations the gate lets exist.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllocationQuotas {
    /// Per door or phone ([`identity`]): `turn.max_allocations_per_credential`.
    pub(crate) per_identity: u32,
    /// The whole server: `turn.max_allocations`.
    pub(crate) total: u32,
}

fn reply(bytes: Option<Vec<u8>>) -> Verdict {
    bytes.map_or(Verdict::Drop, Verdict::Reply)
}

fn text_attr(m: &Message, t: AttrType) -> Option<String> {
    let mut a = TextAttribute::new(t, String::new());
    a.get_from(m).ok()?;
    Some(a.text)
}

conn_wrapper!(GateConn, {
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, src) = self.inner.recv_from(buf).await?;
            // STUN messages start with two zero bits; ChannelData (the relayed media) with 01.
            if n < 20 || buf[0] & 0xc0 != 0 {
                return Ok((n, src));
            }
            match self.judge(&buf[..n], src).await {
                Verdict::Pass => return Ok((n, src)),
                Verdict::Reply(bytes) => {
                    let _ = self.inner.send_to(&bytes, src).await;
                }
                Verdict::Drop => {}
            }
        }
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.inner.send_to(buf, target).await
    }
});

/// A relay socket (one allocation) that only talks to peers the policy permits, at most at
/// the allocation's bandwidth in each direction.
struct PolicedConn {
    inner: Arc<dyn Conn + Send + Sync>,
    local: SocketAddr,
    policy: PeerPolicy,
    /// Bytes client -> peer.
    outbound: Mutex<TokenBucket>,
    /// Bytes peer -> client.
    inbound: Mutex<TokenBucket>,
}

/// Takes `len` bytes from `bucket`; a poisoned lock still holds a usable bucket.
fn within_rate(bucket: &Mutex<TokenBucket>, len: usize) -> bool {
    let n = u32::try_from(len).unwrap_or(u32::MAX);
    bucket
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .try_take_n(n, Instant::now())
}

conn_wrapper!(PolicedConn, {
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, src) = self.inner.recv_from(buf).await?;
            if self.policy.permits_peer(src) && within_rate(&self.inbound, n) {
                return Ok((n, src));
            }
        }
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.policy.permits_peer(target) {
            return Err(webrtc_util::Error::Other(format!(
                "peer {target} denied by the TURN peer policy"
            )));
        }
        if !within_rate(&self.outbound, buf.len()) {
            // Dropped like a congested link would; not an error for the server to log.
            return Ok(buf.len());
        }
        self.inner.send_to(buf, target).await
    }
});

/// A relay address generator whose sockets are [`PolicedConn`]s.
pub(crate) struct PolicedRelays {
    pub(crate) inner: Box<dyn RelayAddressGenerator + Send + Sync>,
    pub(crate) policy: PeerPolicy,
    /// Relayed kbit/s per allocation and direction (`turn.max_relay_kbps`).
    pub(crate) max_relay_kbps: u32,
}

impl PolicedRelays {
    /// A bucket of `max_relay_kbps` in bytes, holding one second's worth.
    fn bucket(&self) -> Mutex<TokenBucket> {
        let bytes_per_second = self.max_relay_kbps.saturating_mul(1000) / 8;
        Mutex::new(TokenBucket::new(
            bytes_per_second,
            bytes_per_second,
            Instant::now(),
        ))
    }
}

#[async_trait]
impl RelayAddressGenerator for PolicedRelays {
    fn validate(&self) -> Result<(), turn::Error> {
        self.inner.validate()
    }
    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let (conn, addr) = self.inner.allocate_conn(use_ipv4, requested_port).await?;
        let policed: Arc<dyn Conn + Send + Sync> = Arc::new(PolicedConn {
            local: conn.local_addr()?,
            inner: conn,
            policy: self.policy.clone(),
            outbound: self.bucket(),
            inbound: self.bucket(),
        });
        Ok((policed, addr))
    }
}
