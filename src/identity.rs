//! The door's own identity, made on first start: there is no default secret to leak.
//!
//! Kept in the state directory (mode 0700), each file mode 0600:
//!
//! | file | what |
//! |---|---|
//! | `identity.json` | door id and a 128-bit random secret: the door's credentials for the hub embedded in this process (local-first mode) |
//! | `dtls.pem` | the door's DTLS certificate and private key (ECDSA P-256), used for every call |
//!
//! The DTLS key is made here, once, rather than by GStreamer: its built-in default is an RSA
//! key generated on the first call of every process, which a Pi Zero pays for while the
//! visitor waits. An ECDSA P-256 key is also what browsers use themselves, and its handshake
//! messages are smaller.
//!
//! `doorbelld factory-reset` removes everything in the state directory (identity, the embedded
//! hub's phones, pairings and history, its TLS certificate) and makes a new identity.

use crate::media::DtlsCertificate;
use doorbell_common::secrets;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const IDENTITY_FILE: &str = "identity.json";
pub const DTLS_FILE: &str = "dtls.pem";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot create the state directory {path}: {source}\n  fix: create it writable for the daemon's user, or set state_dir")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({why})\n  fix: run `doorbelld factory-reset --yes` to make a new identity (phones must pair again)")]
    Damaged { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Random(#[from] secrets::RandomError),
    #[error("cannot make the DTLS certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot encode the identity: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("doorbelld is running (its control socket {0} answers)\n  fix: stop it first (`systemctl stop doorbelld`)")]
    Running(PathBuf),
}

/// What the door is: made once, kept until a factory reset.
#[derive(Clone)]
pub struct Identity {
    pub door_id: String,
    /// Only ever sent in `hello` to the embedded hub, which stores its hash.
    pub secret: String,
    /// What every call's DTLS handshake uses. Kept in its own file ([`DTLS_FILE`]), so an
    /// identity from before there was one gains one on upgrade.
    pub dtls: DtlsCertificate,
}

/// `identity.json`.
#[derive(Serialize, Deserialize)]
struct Stored {
    door_id: String,
    secret: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("door_id", &self.door_id)
            .finish_non_exhaustive()
    }
}

/// The stored identity, or a new one if this is the first start.
pub fn load_or_create(state_dir: &Path) -> Result<Identity, IdentityError> {
    ensure_private_dir(state_dir)?;
    let path = state_dir.join(IDENTITY_FILE);
    let identity = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<Stored>(&text).map_err(|e| IdentityError::Damaged {
            path: path.clone(),
            why: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let identity = Stored {
                door_id: format!("d-{}", secrets::random_hex(secrets::ID_BYTES)?),
                secret: secrets::random_hex(secrets::DOOR_SECRET_BYTES)?,
            };
            let json = serde_json::to_string_pretty(&identity)?;
            write_private(&path, json.as_bytes())?;
            tracing::info!(door_id = %identity.door_id, "made a new door identity");
            identity
        }
        Err(source) => return Err(IdentityError::Read { path, source }),
    };
    if identity.door_id.is_empty() || identity.secret.len() < 2 * secrets::DOOR_SECRET_BYTES {
        return Err(IdentityError::Damaged {
            path,
            why: "door id or secret missing or too short".into(),
        });
    }
    let dtls = load_or_create_dtls(&state_dir.join(DTLS_FILE), &identity.door_id)?;
    Ok(Identity {
        door_id: identity.door_id,
        secret: identity.secret,
        dtls,
    })
}

/// The door's DTLS certificate and key, made on first use.
fn load_or_create_dtls(path: &Path, door_id: &str) -> Result<DtlsCertificate, IdentityError> {
    match std::fs::read_to_string(path) {
        // Checked here: GStreamer would only fail the handshake, much later.
        Ok(pem) => DtlsCertificate::from_pem(&pem).map_err(|why| IdentityError::Damaged {
            path: path.to_owned(),
            why,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("doorbell {door_id}"));
            // The peer pins the certificate by the fingerprint in the SDP, so validity dates
            // carry no trust; keep them wide so a Pi without an RTC (clock in 1970) still works.
            params.not_before = rcgen::date_time_ymd(1970, 1, 1);
            params.not_after = rcgen::date_time_ymd(9999, 12, 31);
            let cert = params.self_signed(&key)?;
            let pem = format!("{}{}", cert.pem(), key.serialize_pem());
            write_private(path, pem.as_bytes())?;
            let dtls = DtlsCertificate::from_pem(&pem).map_err(|why| IdentityError::Damaged {
                path: path.to_owned(),
                why,
            })?;
            tracing::info!(
                sha256 = dtls.sha256(),
                "made a new DTLS certificate (ECDSA P-256) for calls"
            );
            Ok(dtls)
        }
        Err(source) => Err(IdentityError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Wipe the state directory's contents and make a new identity. Refuses while a daemon
/// answers on `control_socket`.
pub async fn factory_reset(
    state_dir: &Path,
    control_socket: &Path,
) -> Result<Identity, IdentityError> {
    if tokio::net::UnixStream::connect(control_socket)
        .await
        .is_ok()
    {
        return Err(IdentityError::Running(control_socket.to_owned()));
    }
    match std::fs::read_dir(state_dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(|source| IdentityError::Write { path, source })?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(IdentityError::Read {
                path: state_dir.to_owned(),
                source,
            })
        }
    }
    load_or_create(state_dir)
}

fn ensure_private_dir(dir: &Path) -> Result<(), IdentityError> {
    let err = |source| IdentityError::StateDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), IdentityError> {
    doorbell_common::write_private_file(path, data, 0o600).map_err(|source| IdentityError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn first_start_makes_a_private_identity_and_later_starts_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = load_or_create(&state).unwrap();
        assert!(first.door_id.starts_with("d-"));
        assert_eq!(first.secret.len(), 32, "128-bit secret as hex");
        let mode = std::fs::metadata(state.join(IDENTITY_FILE)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        let again = load_or_create(&state).unwrap();
        assert_eq!(again.door_id, first.door_id);
        assert_eq!(again.secret, first.secret);
        // Two devices never share a secret.
        let other = load_or_create(&dir.path().join("other")).unwrap();
        assert_ne!(other.secret, first.secret);
        // The secret never shows up in Debug output (logs).
        assert!(!format!("{first:?}").contains(&first.secret));
    }

    #[test]
    fn first_start_makes_a_private_ecdsa_p256_dtls_certificate_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let path = dir.path().join(DTLS_FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let pem = std::fs::read_to_string(&path).unwrap();
        // The key's algorithm is what call setup depends on.
        let key_at = pem.find("-----BEGIN PRIVATE KEY-----").unwrap();
        let key = rcgen::KeyPair::from_pem(&pem[key_at..]).unwrap();
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(load_or_create(dir.path()).unwrap().dtls, first.dtls);
        // An identity from before DTLS keys were stored gains one; a damaged one is named.
        std::fs::remove_file(&path).unwrap();
        let upgraded = load_or_create(dir.path()).unwrap();
        assert_ne!(upgraded.dtls.sha256(), first.dtls.sha256());
        assert_eq!(upgraded.door_id, first.door_id);
        std::fs::write(&path, "garbage").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("dtls.pem") && err.contains("factory-reset"),
            "{err}"
        );
        // Never in Debug output.
        assert!(!format!("{first:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn damaged_identity_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IDENTITY_FILE), "{not json").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("factory-reset"), "{err}");
    }

    #[tokio::test]
    async fn factory_reset_wipes_state_and_makes_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let before = load_or_create(dir.path()).unwrap();
        std::fs::write(dir.path().join("hub.sqlite3"), b"pairings").unwrap();
        let after = factory_reset(dir.path(), &dir.path().join("control.sock"))
            .await
            .unwrap();
        assert_ne!(after.door_id, before.door_id);
        assert_ne!(after.secret, before.secret);
        assert_ne!(
            after.dtls, before.dtls,
            "a reset also replaces the DTLS key"
        );
        assert!(!dir.path().join("hub.sqlite3").exists());
    }

    #[tokio::test]
    async fn factory_reset_refuses_while_the_daemon_runs() {
        let dir = tempfile::tempdir().unwrap();
        let before = load_or_create(dir.path()).unwrap();
        let socket = dir.path().join("control.sock");
        let _listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let err = factory_reset(dir.path(), &socket).await.unwrap_err();
        assert!(matches!(err, IdentityError::Running(_)), "{err}");
        assert_eq!(load_or_create(dir.path()).unwrap().door_id, before.door_id);
    }
}
