//! The hub's VAPID identity (RFC 8292): a P-256 key pair made at first start and kept beside
//! the database (mode 0600, never logged), and the `Authorization: vapid t=JWT, k=KEY` header
//! signed with it (ES256 via `ring`, the hub's crypto library).
//!
//! Browsers bind each subscription to the public key (`applicationServerKey`), so the file
//! must survive upgrades: losing it silently invalidates every phone's subscription.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

/// The key file, beside the database.
pub const VAPID_KEY_FILE: &str = "push-vapid-key.pem";
/// Lifetime of a signed JWT. RFC 8292 allows at most 24 h; 12 h leaves room for a push
/// service whose clock is ahead, and a token is reused for many pushes until near its end.
pub const JWT_LIFETIME_SECS: u64 = 12 * 3600;
/// A cached token is replaced when it has less than this left, so none expires in flight.
pub const JWT_RENEW_BEFORE_SECS: u64 = 3600;
/// Origins whose tokens are cached (push services are few: FCM, Mozilla, Apple, Microsoft);
/// past this the cache is cleared rather than grown.
const JWT_CACHE_MAX: usize = 32;

const PEM_LABEL: &str = "PRIVATE KEY";

#[derive(Debug, thiserror::Error)]
pub enum VapidError {
    #[error("VAPID key {path}: {source}\n  fix: make the hub's state directory writable, or restore the file from a backup (deleting it makes every phone subscribe again)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("VAPID key {path} is not a PKCS#8 P-256 key written by doorbell-hub\n  fix: restore it from a backup, or delete it to make a new one (every phone must then enable notifications again)")]
    Invalid { path: PathBuf },
    #[error("could not make a VAPID key: the system random number generator failed")]
    Random,
}

/// The key pair plus a cache of signed tokens per push-service origin.
pub struct VapidKey {
    key_pair: EcdsaKeyPair,
    /// Uncompressed public point, base64url: `GET /api/push/key` and the header's `k=`.
    public_b64: String,
    rng: SystemRandom,
    /// `[push] vapid_subject`: the `sub` claim of every token (none when `None`).
    subject: Option<String>,
    /// origin -> (token, its `exp` in Unix seconds).
    tokens: Mutex<HashMap<String, (String, u64)>>,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("VapidKey")
            .field("public", &self.public_b64)
            .finish_non_exhaustive()
    }
}

/// Where the key lives for a database at `db_path`.
pub fn key_path(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(VAPID_KEY_FILE)
}

fn pem_encode(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    out
}

fn pem_decode(text: &str) -> Option<Vec<u8>> {
    let body = text
        .trim()
        .strip_prefix(&format!("-----BEGIN {PEM_LABEL}-----"))?
        .strip_suffix(&format!("-----END {PEM_LABEL}-----"))?;
    let b64: String = body.split_whitespace().collect();
    STANDARD.decode(b64).ok()
}

impl VapidKey {
    /// Loads the key beside `db_path`, making (and saving, 0600) one on first start.
    pub fn load_or_create(db_path: &Path) -> Result<VapidKey, VapidError> {
        let path = key_path(db_path);
        let io = |source| VapidError::Io {
            path: path.clone(),
            source,
        };
        let rng = SystemRandom::new();
        let der = match std::fs::read_to_string(&path) {
            Ok(text) => {
                pem_decode(&text).ok_or_else(|| VapidError::Invalid { path: path.clone() })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| VapidError::Random)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                crate::secrets::write_private_file(
                    &path,
                    pem_encode(doc.as_ref()).as_bytes(),
                    0o600,
                )
                .map_err(io)?;
                tracing::info!(path = %path.display(), "generated the Web Push (VAPID) key pair");
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(io(e)),
        };
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|_| VapidError::Invalid { path: path.clone() })?;
        let public_b64 = URL_SAFE_NO_PAD.encode(key_pair.public_key().as_ref());
        Ok(VapidKey {
            key_pair,
            public_b64,
            rng,
            subject: None,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Sets the `sub` claim of the tokens this key signs.
    pub fn with_subject(mut self, subject: Option<String>) -> Self {
        self.subject = subject;
        self
    }

    /// The public key: an uncompressed P-256 point (65 bytes), base64url without padding.
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }

    /// `vapid t=<JWT>, k=<public key>` for a push to `origin` (`scheme://host[:port]`),
    /// at Unix time `now_secs`.
    pub fn authorization(&self, origin: &str, now_secs: u64) -> Option<String> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let cached = tokens
            .get(origin)
            .filter(|(_, exp)| *exp > now_secs + JWT_RENEW_BEFORE_SECS)
            .map(|(t, _)| t.clone());
        let token = match cached {
            Some(token) => token,
            None => {
                let exp = now_secs + JWT_LIFETIME_SECS;
                let token = self.sign(origin, exp)?;
                if tokens.len() >= JWT_CACHE_MAX {
                    tokens.clear();
                }
                tokens.insert(origin.to_owned(), (token.clone(), exp));
                token
            }
        };
        Some(format!("vapid t={token}, k={}", self.public_b64))
    }

    /// A compact JWS (ES256) with `aud`, `exp` and `sub`. `None` only if signing fails.
    fn sign(&self, origin: &str, exp: u64) -> Option<String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let mut claims = serde_json::json!({ "aud": origin, "exp": exp });
        if let Some(sub) = &self.subject {
            claims["sub"] = sub.as_str().into();
        }
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let signature = self
            .key_pair
            .sign(&self.rng, signing_input.as_bytes())
            .ok()?;
        Some(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_made_once_0600_and_signs_verifiable_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.sqlite3");
        let a = VapidKey::load_or_create(&db)
            .unwrap()
            .with_subject(Some("mailto:a@example.net".into()));
        let b = VapidKey::load_or_create(&db).unwrap();
        assert_eq!(a.public_key(), b.public_key(), "loaded, not made again");
        let mode = std::fs::metadata(key_path(&db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{a:?}").contains("PRIVATE"));

        let header = a.authorization("https://push.example.net", 1000).unwrap();
        let (t, k) = header
            .strip_prefix("vapid t=")
            .and_then(|r| r.split_once(", k="))
            .unwrap();
        assert_eq!(k, a.public_key());
        let (input, sig) = t.rsplit_once('.').unwrap();
        let public = URL_SAFE_NO_PAD.decode(k).unwrap();
        assert_eq!(public.len(), 65);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
            .expect("signature verifies");
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(input.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["exp"], 1000 + JWT_LIFETIME_SECS);
        assert_eq!(claims["sub"], "mailto:a@example.net");
        // Reused while fresh, renewed near the end.
        let again = a.authorization("https://push.example.net", 2000).unwrap();
        assert_eq!(again, header);
        let later = 1000 + JWT_LIFETIME_SECS - JWT_RENEW_BEFORE_SECS;
        assert_ne!(
            a.authorization("https://push.example.net", later).unwrap(),
            header
        );
    }

    #[test]
    fn a_damaged_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.sqlite3");
        std::fs::write(key_path(&db), "garbage").unwrap();
        let e = VapidKey::load_or_create(&db).unwrap_err();
        assert!(matches!(e, VapidError::Invalid { .. }), "{e}");
    }
}
