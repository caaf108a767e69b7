//! Capability URLs: a signed, expiring name of one snapshot, usable without any header.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use doorbell_protocol::DoorId;
use ring::hmac;

use super::{MediaKind, SnapshotError, SnapshotKey};

/// The path prefix capability URLs are served under.
pub(crate) const CAPABILITY_PATH: &str = "/api/snapshots/cap/";
/// The path prefix of voice-message capability URLs.
pub(crate) const VOICE_CAPABILITY_PATH: &str = "/api/voice/cap/";
/// Bytes of the HMAC key: 256 bits, as HMAC-SHA256 wants.
const KEY_BYTES: usize = 32;
/// Longest token accepted before decoding (door ids, call ids and the time fit in far less).
pub(crate) const MAX_TOKEN_CHARS: usize = 512;

/// Why a capability was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CapabilityError {
    #[error("this snapshot link is not valid")]
    Invalid,
    #[error("this snapshot link has expired; open the history for a fresh one")]
    Expired,
}

/// Mints and checks capability tokens with the hub's key. Cloned into the notification
/// dispatcher, which mints one for each ring's push.
#[derive(Clone)]
pub(crate) struct Capabilities {
    key: hmac::Key,
}

impl Capabilities {
    /// Reads the key at `path`, or makes one (0600) if there is none.
    pub(crate) fn load_or_create(path: &Path) -> Result<Capabilities, SnapshotError> {
        let key_err = |source| SnapshotError::Key {
            path: path.display().to_string(),
            source,
        };
        let secret = match std::fs::read_to_string(path) {
            Ok(text) => hex::decode(text.trim())
                .ok()
                .filter(|k| k.len() == KEY_BYTES)
                .ok_or_else(|| {
                    key_err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not 64 hex digits; delete the file to make a new key (old snapshot links stop working)",
                    ))
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = crate::secrets::random_hex(KEY_BYTES)?;
                crate::secrets::write_private_file(path, text.as_bytes(), 0o600).map_err(key_err)?;
                hex::decode(text).map_err(|e| {
                    key_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                })?
            }
            Err(e) => return Err(key_err(e)),
        };
        Ok(Self::from_secret(&secret))
    }

    pub(crate) fn from_secret(secret: &[u8]) -> Capabilities {
        Capabilities {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The path (from the hub's root) of a capability for `key` at `door_id`, valid until
    /// `expires_ms` (Unix milliseconds).
    pub(crate) fn url(&self, door_id: &DoorId, key: &SnapshotKey, expires_ms: i64) -> String {
        self.media_url(MediaKind::Snapshot, door_id, key, expires_ms)
    }

    /// [`Capabilities::url`] for the snapshot or the voice message of a press. The signed
    /// payload names the kind, so a snapshot's link (which ntfy and push services see) never
    /// opens the voice message.
    pub(crate) fn media_url(
        &self,
        kind: MediaKind,
        door_id: &DoorId,
        key: &SnapshotKey,
        expires_ms: i64,
    ) -> String {
        let payload = format!(
            "{}\n{}\n{expires_ms}",
            door_id.as_str(),
            kind.stored_key(key)
        );
        let tag = hmac::sign(&self.key, payload.as_bytes());
        let path = match kind {
            MediaKind::Snapshot => CAPABILITY_PATH,
            MediaKind::Voice => VOICE_CAPABILITY_PATH,
        };
        format!(
            "{path}{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    #[cfg(test)]
    /// The snapshot `token` names, if its signature is good and it has not expired at `now_ms`.
    pub(crate) fn check(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<(DoorId, SnapshotKey), CapabilityError> {
        self.check_media(MediaKind::Snapshot, token, now_ms)
    }

    /// [`Capabilities::check`] for a token of `kind`; a token of the other kind is invalid.
    pub(crate) fn check_media(
        &self,
        kind: MediaKind,
        token: &str,
        now_ms: i64,
    ) -> Result<(DoorId, SnapshotKey), CapabilityError> {
        use CapabilityError::Invalid;
        if token.len() > MAX_TOKEN_CHARS {
            return Err(Invalid);
        }
        let (payload, tag) = token.split_once('.').ok_or(Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Invalid)?;
        // Constant-time comparison inside ring.
        hmac::verify(&self.key, &payload, &tag).map_err(|_| Invalid)?;
        let payload = String::from_utf8(payload).map_err(|_| Invalid)?;
        let mut parts = payload.splitn(3, '\n');
        let (Some(door), Some(key), Some(expires)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Invalid);
        };
        let key = kind.decode(key).ok_or(Invalid)?;
        let expires: i64 = expires.parse().map_err(|_| Invalid)?;
        if now_ms > expires {
            return Err(CapabilityError::Expired);
        }
        Ok((DoorId::new(door), key))
    }
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::CallId;

    use super::*;

    fn token(url: &str) -> &str {
        url.strip_prefix(CAPABILITY_PATH).expect("prefix")
    }

    #[test]
    fn a_capability_works_until_it_expires() {
        let caps = Capabilities::from_secret(&[7; KEY_BYTES]);
        let door = DoorId::new("d-1");
        let key = SnapshotKey::Call(CallId::new("c-1"));
        let url = caps.url(&door, &key, 1_000);
        assert_eq!(caps.check(token(&url), 1_000), Ok((door, key)));
        assert_eq!(
            caps.check(token(&url), 1_001),
            Err(CapabilityError::Expired)
        );
    }

    #[test]
    fn a_forged_or_foreign_capability_is_invalid() {
        let caps = Capabilities::from_secret(&[7; KEY_BYTES]);
        let other = Capabilities::from_secret(&[8; KEY_BYTES]);
        let url = other.url(&DoorId::new("d-1"), &SnapshotKey::MissedRing(5), 9_000);
        assert_eq!(caps.check(token(&url), 0), Err(CapabilityError::Invalid));
        // Same signature, another door in the payload.
        let good = caps.url(&DoorId::new("d-1"), &SnapshotKey::MissedRing(5), 9_000);
        let (_, tag) = token(&good).split_once('.').expect("dot");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("d-2\nm:5\n9000"));
        assert_eq!(caps.check(&forged, 0), Err(CapabilityError::Invalid));
        for junk in ["", ".", "abc", "a.b", &"x".repeat(MAX_TOKEN_CHARS + 1)] {
            assert_eq!(caps.check(junk, 0), Err(CapabilityError::Invalid), "{junk}");
        }
    }

    #[test]
    fn the_key_is_kept_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let a = Capabilities::load_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Capabilities::load_or_create(&path).expect("load");
        let url = a.url(&DoorId::new("d"), &SnapshotKey::MissedRing(1), 10);
        assert!(b.check(token(&url), 0).is_ok());
    }
}
