//! ACME (RFC 8555) for `doorbell-hub serve --acme-domain`: a certificate that phones trust,
//! obtained, stored beside the database, served, and renewed in the background without a
//! restart.
//!
//! Service workers and Web Push exist only on secure origins whose certificate the phone trusts;
//! the self-signed certificate a user clicks through does not count. A public CA (Let's Encrypt
//! by default) issues one when it can reach the hub under its public name.
//!
//! The challenge is TLS-ALPN-01 (RFC 8737): the CA connects to port 443 of the name and asks
//! for the `acme-tls/1` protocol; our rustls acceptor answers that handshake, and only that one,
//! with a throw-away certificate that proves control of the name. It needs nothing but the
//! HTTPS port the hub serves anyway (HTTP-01 would need port 80 as well, a second listener and a
//! second port forward; DNS-01 needs an API key for the DNS provider).
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | this one | [`AcmeConfig`], [`AcmeError`], the renewal task and its schedule |
//! | [`resolver`] | rustls `ResolvesServerCert`: the current certificate (swapped atomically) and pending challenge certificates |
//! | [`files`] | the account and the certificate on disk (mode 0600), validity and names of a certificate |
//! | [`client`] | the HTTPS client the ACME protocol runs over (timeouts, size limit, CA roots) |
//! | [`issue`] | one issuance: account, order, challenges, finalize, download |

mod client;
mod files;
mod issue;
mod resolver;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

pub(crate) use files::leaf_facts;
pub(crate) use resolver::is_challenge_connection;
pub(crate) use resolver::ACME_TLS_ALPN;

use files::{AcmePaths, Validity};
use resolver::CertResolver;

/// Let's Encrypt's production directory, the default `--acme-directory`.
pub(crate) const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Renew at the latest this long before expiry: Let's Encrypt's advice for its 90-day
/// certificates (renew when 30 days are left), which leaves weeks to notice a failing renewal.
pub(crate) const RENEW_BEFORE_EXPIRY_MAX: Duration = Duration::from_secs(30 * 24 * 3600);
/// First retry after a failed attempt. Let's Encrypt allows 5 failed validations per name per
/// hour; doubling from 5 minutes stays below that while a misconfiguration is being fixed.
pub(crate) const RETRY_MIN: Duration = Duration::from_secs(5 * 60);
/// Longest wait between retries, so a fixed problem is picked up within the hour.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(3600);
/// One issuance (account, order, validation, download) that takes longer is abandoned and
/// retried: a CA that stalls must not stall renewal forever.
pub(crate) const ISSUE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The renewal task re-reads the wall clock at least this often: a long monotonic sleep can
/// oversleep across a suspend or a clock change.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// How the hub gets its certificate from an ACME CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// DNS names the certificate is for (the first is the one phones use). Each must resolve to
    /// an address whose TCP port 443 reaches the hub's listener.
    pub domains: Vec<String>,
    /// Contact URLs given to the CA (`mailto:`), for notices about the account.
    pub contact: Vec<String>,
    /// The CA's ACME directory URL.
    pub directory: String,
    /// PEM file of root certificates to trust for the connection to the directory, instead of
    /// the built-in Mozilla roots (a test CA such as pebble, or a private CA).
    pub ca_file: Option<PathBuf>,
    /// First retry after a failure; doubles up to `retry_max` (by default 5 minutes and an
    /// hour; tests shorten them).
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl AcmeConfig {
    /// Let's Encrypt production (`https://acme-v02.api.letsencrypt.org/directory`), no
    /// contact, default retry timings.
    pub fn new(domains: Vec<String>) -> AcmeConfig {
        AcmeConfig {
            domains,
            contact: Vec::new(),
            directory: LETS_ENCRYPT_PRODUCTION.to_owned(),
            ca_file: None,
            retry_min: RETRY_MIN,
            retry_max: RETRY_MAX,
        }
    }

    /// Checks names and contacts before anything is sent to a CA.
    pub fn validate(&self) -> Result<(), AcmeError> {
        if self.domains.is_empty() {
            return Err(AcmeError::NoDomain);
        }
        for domain in &self.domains {
            if !is_dns_name(domain) {
                return Err(AcmeError::BadDomain(domain.clone()));
            }
        }
        for contact in &self.contact {
            if !contact.starts_with("mailto:") || !contact.contains('@') {
                return Err(AcmeError::BadContact(contact.clone()));
            }
        }
        if !self.directory.starts_with("https://") {
            return Err(AcmeError::BadDirectory(self.directory.clone()));
        }
        Ok(())
    }
}

/// A DNS name a public CA can issue for: dot-separated labels of letters, digits and hyphens,
/// not an IP address, no wildcard (TLS-ALPN-01 cannot prove a wildcard).
fn is_dns_name(name: &str) -> bool {
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    labels_ok
        && name.len() <= 253
        && name.contains('.')
        && name.parse::<std::net::IpAddr>().is_err()
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("--acme-domain is required for ACME")]
    NoDomain,
    #[error(
        "--acme-domain {0:?} is not a DNS name a CA can issue for (no IP addresses, no wildcards)"
    )]
    BadDomain(String),
    #[error("--acme-contact {0:?} must be a mailto: URL, e.g. mailto:you@example.net")]
    BadContact(String),
    #[error("--acme-directory {0:?} must be an https:// URL")]
    BadDirectory(String),
    #[error("cannot read --acme-ca-file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable certificate: {reason}")]
    StoredCert { path: PathBuf, reason: String },
    #[error("the ACME server at {directory} failed: {source}")]
    Protocol {
        directory: String,
        source: instant_acme::Error,
    },
    #[error("the CA could not validate {domain}: {detail}. Check that {domain} resolves to this hub's public address and that TCP port 443 there reaches the hub's --listen port")]
    Validation { domain: String, detail: String },
    #[error("the CA offers no tls-alpn-01 challenge for {0}; this hub cannot prove it controls the name")]
    NoTlsAlpn(String),
    #[error("the order for {domains} ended {status}: {detail}")]
    Order {
        domains: String,
        status: String,
        detail: String,
    },
    #[error("the certificate from the CA is unusable: {0}")]
    Issued(String),
    #[error("cannot make a key or a challenge certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot use the challenge certificate's key: {0}")]
    ChallengeKey(rustls::Error),
    #[error("the ACME exchange took longer than {0:?}")]
    Timeout(Duration),
}

/// What the ACME task has done so far: for status displays, embedders and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcmeStatus {
    /// Certificates obtained since the hub started (a stored one served at start is not counted).
    pub obtained: u32,
    /// Expiry of the certificate being served; `None` while there is none.
    pub valid_until: Option<SystemTime>,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Why the last attempt failed (cleared by a success).
    pub last_error: Option<String>,
}

/// The hub's ACME state: the resolver the TLS acceptor asks, and what the renewal task needs.
pub(crate) struct AcmeService {
    config: AcmeConfig,
    paths: AcmePaths,
    resolver: Arc<CertResolver>,
    client: client::HttpsClient,
    /// The stored certificate's validity found at start (`None`: obtain one at once).
    initial: Option<Validity>,
    status: tokio::sync::watch::Sender<AcmeStatus>,
}

impl std::fmt::Debug for AcmeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeService")
            .field("domains", &self.config.domains)
            .field("directory", &self.config.directory)
            .finish_non_exhaustive()
    }
}

impl AcmeService {
    /// Prepares ACME for a hub whose database is `db_path`: reads the stored certificate (served
    /// at once if it is still valid for the names), and the CA roots. Sends nothing yet.
    pub(crate) fn open(config: &AcmeConfig, db_path: &Path) -> Result<AcmeService, AcmeError> {
        config.validate()?;
        let paths = AcmePaths::new(db_path, &config.directory);
        files::create_dir(&paths)?;
        let resolver = Arc::new(CertResolver::default());
        let initial = match files::load_certificate(&paths, &config.domains) {
            Ok(Some(stored)) if stored.validity.not_after > SystemTime::now() => {
                let validity = stored.validity;
                tracing::info!(
                    domains = ?config.domains,
                    valid_until = %files::utc(validity.not_after),
                    "serving the stored ACME certificate"
                );
                resolver.set_current(stored.certified);
                Some(validity)
            }
            Ok(Some(_)) => {
                tracing::warn!(file = %paths.certificate.display(), "the stored ACME certificate has expired; obtaining a new one");
                None
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the stored ACME certificate; obtaining a new one");
                None
            }
        };
        let client = client::HttpsClient::new(config.ca_file.as_deref())?;
        let (status, _) = tokio::sync::watch::channel(AcmeStatus {
            valid_until: initial.map(|v| v.not_after),
            ..AcmeStatus::default()
        });
        Ok(AcmeService {
            config: config.clone(),
            paths,
            resolver,
            client,
            initial,
            status,
        })
    }

    /// Follows [`AcmeStatus`]: every success and failure of the renewal task.
    pub(crate) fn status(&self) -> tokio::sync::watch::Receiver<AcmeStatus> {
        self.status.subscribe()
    }

    /// What the TLS acceptor asks for a certificate.
    pub(crate) fn resolver(&self) -> Arc<dyn rustls::server::ResolvesServerCert> {
        self.resolver.clone()
    }

    /// Keeps the certificate valid until `stop`: obtains one if there is none, renews it when
    /// [`renew_at`] says so, retries failures with backoff. The hub serves the previous
    /// certificate (or refuses handshakes, if it never had one) meanwhile.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut current = self.initial;
        let mut failures: u32 = 0;
        let mut next = match current {
            Some(validity) => self.scheduled(validity),
            None => SystemTime::now(),
        };
        loop {
            let wait = next
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            if !wait.is_zero() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait.min(MAX_SLEEP)) => continue,
                }
            }
            let attempt = tokio::select! {
                _ = stop.cancelled() => return,
                attempt = tokio::time::timeout(ISSUE_TIMEOUT, self.obtain()) => attempt,
            };
            match attempt.unwrap_or(Err(AcmeError::Timeout(ISSUE_TIMEOUT))) {
                Ok(validity) => {
                    tracing::info!(domains = ?self.config.domains, "obtained a new ACME certificate");
                    current = Some(validity);
                    failures = 0;
                    next = self.scheduled(validity);
                    self.status.send_modify(|s| {
                        s.obtained += 1;
                        s.valid_until = Some(validity.not_after);
                        s.failures = 0;
                        s.last_error = None;
                    });
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = retry_delay(failures, self.config.retry_min, self.config.retry_max);
                    next = SystemTime::now() + delay;
                    tracing::warn!(
                        error = %e,
                        attempt = failures,
                        retry_in = ?delay,
                        serving = if current.is_some() { "the previous certificate" } else { "nothing yet: TLS handshakes fail until a certificate is obtained" },
                        "ACME certificate request failed"
                    );
                    self.status.send_modify(|s| {
                        s.failures = failures;
                        s.last_error = Some(e.to_string());
                    });
                }
            }
        }
    }

    /// When to renew the certificate in use, announced in the log.
    fn scheduled(&self, validity: Validity) -> SystemTime {
        let due = renew_at(validity);
        tracing::info!(
            domains = ?self.config.domains,
            valid_until = %files::utc(validity.not_after),
            renew_at = %files::utc(due),
            "ACME certificate in use"
        );
        due
    }

    /// One issuance; on success the new certificate is stored and served.
    async fn obtain(&self) -> Result<Validity, AcmeError> {
        let issued = issue::obtain(&self.config, &self.paths, &self.client, &self.resolver).await?;
        let stored = files::parse_issued(&issued.chain_pem, &issued.key_pem, &self.config.domains)
            .map_err(AcmeError::Issued)?;
        files::save_certificate(&self.paths, &issued.key_pem, &issued.chain_pem)?;
        let validity = stored.validity;
        self.resolver.set_current(stored.certified);
        Ok(validity)
    }
}

/// When to renew a certificate: a third of its lifetime before expiry (two thirds in), but no
/// later than [`RENEW_BEFORE_EXPIRY_MAX`] before it.
pub(crate) fn renew_at(validity: Validity) -> SystemTime {
    let lifetime = validity
        .not_after
        .duration_since(validity.not_before)
        .unwrap_or(Duration::ZERO);
    validity.not_after - (lifetime / 3).min(RENEW_BEFORE_EXPIRY_MAX)
}

/// Wait before retry number `failures` (1 = after the first failure): `min`, doubling, at most `max`.
pub(crate) fn retry_delay(failures: u32, min: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    min.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn validity(lifetime: Duration) -> Validity {
        let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        Validity {
            not_before,
            not_after: not_before + lifetime,
        }
    }

    #[test]
    fn renews_thirty_days_before_a_ninety_day_certificate_expires() {
        let v = validity(90 * DAY);
        assert_eq!(renew_at(v), v.not_after - 30 * DAY);
        // A year-long certificate still renews 30 days ahead, not 4 months ahead.
        let v = validity(365 * DAY);
        assert_eq!(renew_at(v), v.not_after - 30 * DAY);
    }

    #[test]
    fn short_lived_certificates_renew_two_thirds_in() {
        let v = validity(6 * DAY);
        assert_eq!(renew_at(v), v.not_before + 4 * DAY);
        let v = validity(Duration::from_secs(9));
        assert_eq!(renew_at(v), v.not_before + Duration::from_secs(6));
        // Nonsense dates (after before before) renew at once rather than panic.
        let broken = Validity {
            not_before: v.not_after,
            not_after: v.not_before,
        };
        assert_eq!(renew_at(broken), broken.not_after);
    }

    #[test]
    fn retries_double_up_to_the_cap() {
        let delays: Vec<u64> = (1..=6)
            .map(|n| retry_delay(n, RETRY_MIN, RETRY_MAX).as_secs() / 60)
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, RETRY_MIN, RETRY_MAX), RETRY_MAX);
    }

    #[test]
    fn configuration_mistakes_name_the_flag() {
        let ok = AcmeConfig {
            contact: vec!["mailto:me@example.net".into()],
            ..AcmeConfig::new(vec!["hub.example.net".into()])
        };
        ok.validate().expect("valid");
        let cases = [
            (AcmeConfig::new(vec![]), "--acme-domain"),
            (AcmeConfig::new(vec!["192.168.1.2".into()]), "--acme-domain"),
            (
                AcmeConfig::new(vec!["*.example.net".into()]),
                "--acme-domain",
            ),
            (AcmeConfig::new(vec!["localhost".into()]), "--acme-domain"),
            (
                AcmeConfig {
                    contact: vec!["me@example.net".into()],
                    ..ok.clone()
                },
                "--acme-contact",
            ),
            (
                AcmeConfig {
                    directory: "http://ca.example/dir".into(),
                    ..ok.clone()
                },
                "--acme-directory",
            ),
        ];
        for (config, flag) in cases {
            let err = config.validate().expect_err("invalid");
            assert!(err.to_string().contains(flag), "{err}");
        }
    }
}
