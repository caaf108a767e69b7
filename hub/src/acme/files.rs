//! The ACME account and certificate on disk, beside the database:
//!
//! ```text
//! <state dir>/acme/<CA host>/account.json      the account key and id (0600)
//! <state dir>/acme/<CA host>/certificate.pem   private key, then the chain, leaf first (0600)
//! ```
//!
//! One folder per CA, so trying Let's Encrypt's staging CA first and then production never
//! serves a staging certificate or reuses the wrong account. Key and chain share one file,
//! written by rename, so a crash cannot leave a key that does not match its certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::AcmeError;

/// Files of one CA's account and certificate.
#[derive(Debug, Clone)]
pub(crate) struct AcmePaths {
    pub(crate) dir: PathBuf,
    pub(crate) account: PathBuf,
    pub(crate) certificate: PathBuf,
}

impl AcmePaths {
    pub(crate) fn new(db_path: &Path, directory_url: &str) -> AcmePaths {
        let state = db_path.parent().unwrap_or(Path::new("."));
        let dir = state.join("acme").join(ca_folder(directory_url));
        AcmePaths {
            account: dir.join("account.json"),
            certificate: dir.join("certificate.pem"),
            dir,
        }
    }
}

/// "https://acme-v02.api.letsencrypt.org/directory" -> "acme-v02.api.letsencrypt.org";
/// "https://127.0.0.1:14000/dir" -> "127.0.0.1_14000". Only safe file name characters.
fn ca_folder(directory_url: &str) -> String {
    let rest = directory_url
        .strip_prefix("https://")
        .unwrap_or(directory_url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let name: String = authority
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.trim_matches('.') {
        "" => "ca".to_owned(),
        name => name.to_owned(),
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Validity {
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

/// A certificate ready to serve.
pub(crate) struct Usable {
    pub(crate) certified: Arc<CertifiedKey>,
    pub(crate) validity: Validity,
}

/// The stored certificate, if there is one for all of `domains`. `Ok(None)` when there is no
/// file or it is for other names (the domains changed).
pub(crate) fn load_certificate(
    paths: &AcmePaths,
    domains: &[String],
) -> Result<Option<Usable>, AcmeError> {
    let pem = match std::fs::read(&paths.certificate) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AcmeError::Read {
                path: paths.certificate.clone(),
                source,
            })
        }
    };
    match parse_issued(&pem, &pem, domains) {
        Ok(usable) => Ok(Some(usable)),
        Err(reason) if reason.starts_with(NOT_FOR_DOMAINS) => {
            tracing::info!(file = %paths.certificate.display(), "{reason}; obtaining one for the configured names");
            Ok(None)
        }
        Err(reason) => Err(AcmeError::StoredCert {
            path: paths.certificate.clone(),
            reason,
        }),
    }
}

const NOT_FOR_DOMAINS: &str = "the certificate is not for";

/// Checks a chain and key (PEM) and makes them servable: the key matches the leaf, the leaf
/// names every one of `domains`. Errors are reasons for a log line.
pub(crate) fn parse_issued(
    chain_pem: &[u8],
    key_pem: &[u8],
    domains: &[String],
) -> Result<Usable, String> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unreadable PEM certificate: {e}"))?;
    let leaf = chain.first().ok_or("no certificate in the PEM")?;
    let (validity, names) = leaf_facts(leaf)?;
    if let Some(missing) = domains
        .iter()
        .find(|d| !names.iter().any(|n| n.eq_ignore_ascii_case(d)))
    {
        return Err(format!(
            "{NOT_FOR_DOMAINS} {missing} (it names {})",
            names.join(", ")
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("unreadable PEM private key: {e}"))?;
    let certified = CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| format!("the key does not fit the certificate: {e}"))?;
    Ok(Usable {
        certified: Arc::new(certified),
        validity,
    })
}

/// Validity and DNS names of a DER certificate.
pub(crate) fn leaf_facts(der: &[u8]) -> Result<(Validity, Vec<String>), String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("unparsable certificate: {e}"))?;
    let time = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        u64::try_from(secs)
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            .map_err(|_| format!("certificate date before 1970: {secs}"))
    };
    let validity = Validity {
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
    };
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("unreadable subjectAltName: {e}")),
    };
    Ok((validity, names))
}

/// Stores a new key and chain (one file, key first, mode 0600).
pub(crate) fn save_certificate(
    paths: &AcmePaths,
    key_pem: &[u8],
    chain_pem: &[u8],
) -> Result<(), AcmeError> {
    let mut data = key_pem.to_vec();
    if !data.ends_with(b"\n") {
        data.push(b'\n');
    }
    data.extend_from_slice(chain_pem);
    write_private(paths, &paths.certificate, &data)
}

/// What `account.json` holds: the credentials and the contacts they were registered with (a
/// changed `--acme-contact` is sent to the CA).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredAccount {
    pub(crate) contact: Vec<String>,
    /// instant-acme's `AccountCredentials` (opaque, not `Clone`: kept as JSON so the stored
    /// copy can be rewritten after it was used to log in).
    pub(crate) credentials: serde_json::Value,
}

/// The stored account, `None` if there is none (or it is unreadable: a new one is made).
pub(crate) fn load_account(paths: &AcmePaths) -> Option<StoredAccount> {
    let text = match std::fs::read(&paths.account) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %paths.account.display(), error = %e, "cannot read the ACME account; registering a new one");
            return None;
        }
    };
    match serde_json::from_slice(&text) {
        Ok(account) => Some(account),
        Err(e) => {
            tracing::warn!(file = %paths.account.display(), error = %e, "unreadable ACME account; registering a new one");
            None
        }
    }
}

pub(crate) fn save_account(paths: &AcmePaths, account: &StoredAccount) -> Result<(), AcmeError> {
    let json = serde_json::to_vec_pretty(account).map_err(|e| AcmeError::Write {
        path: paths.account.clone(),
        source: std::io::Error::other(e),
    })?;
    write_private(paths, &paths.account, &json)
}

/// Creates the CA's folder (0700). Done at start too, so a state directory the hub cannot
/// write is reported before a certificate is issued that could not be kept.
pub(crate) fn create_dir(paths: &AcmePaths) -> Result<(), AcmeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.dir)
        .map_err(|source| AcmeError::Write {
            path: paths.dir.clone(),
            source,
        })
}

/// Writes a secret file (0600) in the CA's folder, creating the folder if needed.
fn write_private(paths: &AcmePaths, path: &Path, data: &[u8]) -> Result<(), AcmeError> {
    create_dir(paths)?;
    crate::secrets::write_private_file(path, data, 0o600).map_err(|source| AcmeError::Write {
        path: path.to_owned(),
        source,
    })
}

/// A time for log lines, "Dec  4 17:29:04 2026 +00:00".
pub(crate) fn utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match x509_parser::time::ASN1Time::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX)) {
        Ok(t) => t.to_string(),
        Err(_) => format!("{secs} s after 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let certified = rcgen::generate_simple_self_signed(names).expect("generate");
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    #[test]
    fn ca_folders_are_safe_names() {
        assert_eq!(
            ca_folder("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org"
        );
        assert_eq!(ca_folder("https://127.0.0.1:14000/dir"), "127.0.0.1_14000");
        assert_eq!(ca_folder("https://../../etc"), "ca");
        assert_eq!(ca_folder("https://[::1]:8/d"), "___1__8");
        assert_eq!(ca_folder("https://"), "ca");
    }

    #[test]
    fn stored_certificate_round_trip_with_private_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = AcmePaths::new(&dir.path().join("hub.sqlite3"), "https://ca.example/dir");
        let domains = vec!["hub.example.net".to_owned()];
        assert!(load_certificate(&paths, &domains).expect("load").is_none());

        let (chain, key) = certificate(&["hub.example.net", "other.example.net"]);
        save_certificate(&paths, key.as_bytes(), chain.as_bytes()).expect("save");
        let usable = load_certificate(&paths, &domains)
            .expect("load")
            .expect("stored");
        assert!(usable.validity.not_after > SystemTime::now());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode();
        assert_eq!(mode(&paths.certificate) & 0o777, 0o600);
        assert_eq!(mode(&paths.dir) & 0o777, 0o700);

        // Other names configured now: not an error, just not usable.
        let other = vec!["new.example.net".to_owned()];
        assert!(load_certificate(&paths, &other).expect("load").is_none());
    }

    #[test]
    fn a_key_that_does_not_fit_is_refused() {
        let (chain, _) = certificate(&["hub.example.net"]);
        let (_, other_key) = certificate(&["hub.example.net"]);
        let domains = vec!["hub.example.net".to_owned()];
        let err = parse_issued(chain.as_bytes(), other_key.as_bytes(), &domains)
            .err()
            .expect("mismatch");
        assert!(err.contains("does not fit"), "{err}");
        let err = parse_issued(b"garbage", b"garbage", &domains)
            .err()
            .expect("garbage");
        assert!(err.contains("no certificate"), "{err}");
    }
}
