//! TLS for the hub's listener: rustls with the `ring` provider, from PEM files or from a
//! self-signed certificate generated once and kept next to the database.
//!
//! Browsers only give a page camera and microphone access in a secure context, so the phone
//! app must be served over HTTPS (or from `localhost`). A self-signed certificate makes that
//! work on a LAN after the user accepts it once; its SHA-256 fingerprint is printed so they can
//! check they accepted the right one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsMode;

/// File names of the generated certificate and key, in the database's directory.
pub(crate) const SELF_SIGNED_CERT_FILE: &str = "cert.pem";
pub(crate) const SELF_SIGNED_KEY_FILE: &str = "key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {source}; check --tls-cert")]
    ReadCert {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} contains no certificate; --tls-cert wants a PEM certificate chain")]
    NoCert { path: PathBuf },
    #[error(
        "cannot read TLS private key {path}: {source}; check --tls-key (PEM, PKCS#8/PKCS#1/SEC1)"
    )]
    ReadKey {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the TLS certificate and key do not work together: {0}")]
    Config(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Acme(#[from] crate::acme::AcmeError),
}

/// A ready TLS acceptor and what to tell the user about it.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate, "AA:BB:…"; `None` under ACME, whose certificate
    /// changes at every renewal (and is trusted, so nobody needs to compare fingerprints).
    pub fingerprint: Option<String>,
    /// Under ACME: the renewal task [`crate::Hub::serve`] runs.
    pub acme: Option<Arc<crate::acme::AcmeService>>,
    /// The certificate's DNS names: the hub answers these `Host`s.
    pub names: Vec<String>,
    /// Browsers trust the certificate without asking (ACME, or a chain to a public root):
    /// only then is HSTS sent, since it forbids clicking through a warning.
    pub trusted: bool,
}

/// The only application protocol the hub speaks: WebSocket upgrades need HTTP/1.1.
pub(crate) const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Installs rustls' `ring` provider as the process default (for any rustls user that relies on
/// it). Harmless if a provider is already installed.
pub(crate) fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the acceptor for `mode`; `None` for plain HTTP. `db_path` locates the self-signed
/// files; `extra_names` (the public URL's host, this machine's name and LAN addresses) are
/// added to a newly generated self-signed certificate's names.
pub(crate) fn setup(
    mode: &TlsMode,
    db_path: &Path,
    extra_names: &[String],
) -> Result<Option<TlsSetup>, TlsError> {
    install_default_provider();
    let (cert, key) = match mode {
        TlsMode::Plain => return Ok(None),
        TlsMode::Files { cert, key } => (cert.clone(), key.clone()),
        TlsMode::SelfSigned => ensure_self_signed(db_path, extra_names)?,
        TlsMode::Acme(acme) => return Ok(Some(acme_setup(acme, db_path)?)),
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::ReadCert {
            path: cert.clone(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCert { path: cert });
    };
    let fingerprint = fingerprint(leaf);
    let names = crate::acme::leaf_facts(leaf)
        .map(|(_, names)| names)
        .unwrap_or_default();
    let trusted = matches!(mode, TlsMode::Files { .. }) && publicly_trusted(&chain, &names);
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|source| TlsError::ReadKey {
        path: key.clone(),
        source,
    })?;
    let mut config = server_config_builder()?.with_single_cert(chain, key)?;
    // The hub does not speak HTTP/2.
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Some(TlsSetup {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        fingerprint: Some(fingerprint),
        acme: None,
        names,
        trusted,
    }))
}

/// Under ACME certificates come from the ACME resolver, and `acme-tls/1` is offered beside
/// HTTP/1.1 for the CA's validation handshakes (server preference order: an ordinary client
/// that offers HTTP/1.1 gets it).
fn acme_setup(config: &crate::acme::AcmeConfig, db_path: &Path) -> Result<TlsSetup, TlsError> {
    let service = Arc::new(crate::acme::AcmeService::open(config, db_path)?);
    let mut server = server_config_builder()?.with_cert_resolver(service.resolver());
    server.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec(), crate::acme::ACME_TLS_ALPN.to_vec()];
    Ok(TlsSetup {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        fingerprint: None,
        acme: Some(service),
        names: config.domains.clone(),
        trusted: true,
    })
}

/// rustls with the `ring` provider, safe protocol versions, no client certificates; the caller
/// adds the server certificate.
pub(crate) fn server_config_builder(
) -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>, TlsError>
{
    Ok(rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth())
}

/// Whether `chain` (leaf first) verifies against the public roots for its first DNS name, now.
fn publicly_trusted(chain: &[CertificateDer<'static>], names: &[String]) -> bool {
    use rustls::client::danger::ServerCertVerifier;
    let (Some(leaf), Some(name)) = (chain.first(), names.first()) else {
        return false;
    };
    let Ok(server_name) =
        rustls::pki_types::ServerName::try_from(name.trim_start_matches("*.").to_owned())
    else {
        return false;
    };
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build() else {
        return false;
    };
    verifier
        .verify_server_cert(
            leaf,
            &chain[1..],
            &server_name,
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .is_ok()
}

/// SHA-256 of a DER certificate as colon-separated uppercase hex (shared with the door).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    doorbell_common::cert_fingerprint(cert.as_ref())
}

/// Paths of the self-signed certificate and key for a database at `db_path`.
pub fn self_signed_paths(db_path: &Path) -> (PathBuf, PathBuf) {
    let dir = db_path.parent().unwrap_or(Path::new("."));
    (
        dir.join(SELF_SIGNED_CERT_FILE),
        dir.join(SELF_SIGNED_KEY_FILE),
    )
}

/// Returns the self-signed certificate and key paths, generating them on first use.
fn ensure_self_signed(
    db_path: &Path,
    extra_names: &[String],
) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = self_signed_paths(db_path);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let mut names = vec![
        "localhost".to_owned(),
        "doorbell.local".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for name in extra_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    // rcgen's default algorithm is ECDSA P-256 with SHA-256.
    let certified = rcgen::generate_simple_self_signed(names)?;
    write_file(
        &key_path,
        certified.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&cert_path, certified.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

/// Writes `data` to `path` via a temporary file (created with `mode`) and a rename, so a crash
/// never leaves a half-written key and the key is never readable by others, not even briefly.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    crate::secrets::write_private_file(path, data, mode).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_generated_once_with_private_key_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("hub.sqlite3");
        let extra = ["door.example".to_owned(), "192.168.1.20".to_owned()];
        let first = setup(&TlsMode::SelfSigned, &db, &extra).expect("setup");
        let second = setup(&TlsMode::SelfSigned, &db, &[]).expect("setup");
        let (first, second) = (first.expect("tls"), second.expect("tls"));
        assert_eq!(
            first.fingerprint, second.fingerprint,
            "persisted, not regenerated"
        );
        assert_eq!(first.fingerprint.as_deref().map(str::len), Some(32 * 3 - 1));
        for name in ["localhost", "doorbell.local", "door.example"] {
            assert!(
                first.names.iter().any(|n| n == name),
                "{name} in {:?}",
                first.names
            );
        }
        assert!(!first.trusted, "a self-signed certificate gets no HSTS");
        let (cert, _) = self_signed_paths(&db);
        let pem = std::fs::read(cert).expect("cert");
        let der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .expect("a certificate")
            .expect("PEM");
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).expect("parse");
        let san = parsed
            .subject_alternative_name()
            .expect("SAN")
            .expect("SAN present");
        assert!(
            san.value.general_names.iter().any(|n| matches!(
                n,
                x509_parser::extensions::GeneralName::IPAddress(ip) if *ip == [192, 168, 1, 20]
            )),
            "the LAN address is in the certificate: {:?}",
            san.value.general_names
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let (_, key) = self_signed_paths(&db);
            let mode = std::fs::metadata(key).expect("key").permissions().mode();
            assert_eq!(mode & 0o077, 0, "key must not be readable by others");
        }
    }

    #[test]
    fn missing_files_are_a_clear_error() {
        let err = setup(
            &TlsMode::Files {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            },
            Path::new("hub.sqlite3"),
            &[],
        )
        .err()
        .expect("error");
        assert!(err.to_string().contains("--tls-cert"), "{err}");
    }
}
