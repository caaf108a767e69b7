//! coturn-compatible ephemeral TURN credentials ("TURN REST API",
//! draft-uberti-behave-turn-rest-00): username `EXPIRY:ID` where EXPIRY is a Unix time in
//! seconds, password `base64(HMAC-SHA1(secret, username))`. coturn checks the same thing with
//! `use-auth-secret` and `static-auth-secret = <secret>`, so the hub can mint for either server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use doorbell_protocol::IceServer;

/// Longest id part accepted in a username. Ours are "d-1a2b3c4d"-like; the bound keeps a
/// hostile username from costing more than a fixed amount of HMAC work and log space.
pub(crate) const MAX_ID_LEN: usize = 64;

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("username is not EXPIRY:ID")]
    Malformed,
    #[error("credential expired")]
    Expired,
    #[error("credential expires too far in the future")]
    TooFarAhead,
    #[error("wrong password")]
    WrongPassword,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn password(secret: &[u8], username: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    BASE64.encode(ring::hmac::sign(&key, username.as_bytes()).as_ref())
}

/// Mints credentials for one side of one call.
#[derive(Clone)]
pub struct TurnIssuer {
    secret: Vec<u8>,
    ttl: Duration,
    /// URLs the credentials are good for (all `turn:`/`turns:` URLs of one server).
    turn_urls: Vec<String>,
}

impl std::fmt::Debug for TurnIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("TurnIssuer")
            .field("ttl", &self.ttl)
            .field("turn_urls", &self.turn_urls)
            .finish_non_exhaustive()
    }
}

impl TurnIssuer {
    pub fn new(secret: impl Into<Vec<u8>>, ttl: Duration, turn_urls: Vec<String>) -> Self {
        TurnIssuer {
            secret: secret.into(),
            ttl,
            turn_urls,
        }
    }

    /// The TURN URLs the credentials are for.
    pub fn urls(&self) -> &[String] {
        &self.turn_urls
    }

    /// Username and password for `id`, valid until `now + ttl`.
    pub fn mint_at(&self, id: &str, now: SystemTime) -> (String, String) {
        let expiry = unix_secs(now) + self.ttl.as_secs();
        let username = format!("{expiry}:{id}");
        let pass = password(&self.secret, &username);
        (username, pass)
    }

    /// The ICE server entry for `id`, minted now (wall clock).
    pub fn ice_server(&self, id: &str) -> IceServer {
        self.ice_server_at(id, SystemTime::now())
    }

    /// The ICE server entry for `id`, minted at `now` (the router passes its time in).
    pub fn ice_server_at(&self, id: &str, now: SystemTime) -> IceServer {
        let (username, credential) = self.mint_at(id, now);
        IceServer {
            urls: self.turn_urls.clone(),
            username: Some(username),
            credential: Some(credential),
        }
    }
}

/// Checks usernames presented to the embedded server.
#[derive(Clone)]
pub struct TurnVerifier {
    secret: Vec<u8>,
    max_ttl: Duration,
}

impl std::fmt::Debug for TurnVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnVerifier")
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

impl TurnVerifier {
    pub fn new(secret: impl Into<Vec<u8>>, max_ttl: Duration) -> Self {
        TurnVerifier {
            secret: secret.into(),
            max_ttl,
        }
    }

    /// The password `username` must have, if the username is acceptable at `now`: well formed
    /// (`EXPIRY:ID`, decimal expiry, 1..=[`MAX_ID_LEN`] printable ASCII id), not expired, and
    /// not expiring later than `now + max_ttl`.
    pub fn password_for(&self, username: &str, now: SystemTime) -> Result<String, CredentialError> {
        let (expiry, id) = username.split_once(':').ok_or(CredentialError::Malformed)?;
        if expiry.is_empty()
            || expiry.len() > 20
            || !expiry.bytes().all(|b| b.is_ascii_digit())
            || id.is_empty()
            || id.len() > MAX_ID_LEN
            || !id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(CredentialError::Malformed);
        }
        let expiry: u64 = expiry.parse().map_err(|_| CredentialError::Malformed)?;
        let now = unix_secs(now);
        if expiry <= now {
            return Err(CredentialError::Expired);
        }
        if expiry - now > self.max_ttl.as_secs() {
            return Err(CredentialError::TooFarAhead);
        }
        Ok(password(&self.secret, username))
    }

    /// Whether `pass` is right for `username` at `now` (constant-time comparison).
    pub fn check(
        &self,
        username: &str,
        pass: &str,
        now: SystemTime,
    ) -> Result<(), CredentialError> {
        let want = self.password_for(username, now)?;
        if crate::secrets::digests_equal(&want, pass) {
            Ok(())
        } else {
            Err(CredentialError::WrongPassword)
        }
    }
}
