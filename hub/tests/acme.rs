//! ACME end to end against Debian's `pebble`: the hub fails while the CA is down and retries,
//! obtains a certificate through a real TLS-ALPN-01 validation of its own listener, serves a
//! chain that a client trusting only pebble's root verifies for the name, renews a short-lived
//! certificate without a restart, serves its stored certificate at once after a restart, and
//! keeps serving it while renewal fails.

mod common;
#[path = "support/pebble.rs"]
mod pebble;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use doorbell_hub::{AcmeConfig, AcmeStatus, HubConfig, Timings, TlsMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use common::{start_hub_with_config, TestHub};
use pebble::{DnsResponder, PebblePorts, TestCa};

/// The hub's name; the test DNS responder sends it to 127.0.0.1.
const DOMAIN: &str = "hub.doorbell.test";
/// Pebble's certificate lifetime in seconds (its notAfter is notBefore + this - 1): short, so
/// renewal (two thirds in, about 4.7 s) happens within the test.
const VALIDITY_SECS: u64 = 8;
/// One issuance on a busy 2-core machine, pebble's start included.
const ISSUE_WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obtains_renews_and_restarts_with_a_certificate_from_pebble() {
    // Under qemu-user (scripts/test-aarch64.sh) the hub's TLS and ring's crypto run about ten
    // times slower while pebble runs natively, and this test's certificate lives 7 s: it would
    // time the emulator, not the code. The ACME code is the same Rust on both targets; its unit
    // tests (schedule, backoff, storage, challenge certificate) still run under qemu.
    if std::env::var_os("DOORBELL_TEST_RUNNER").is_some() {
        eprintln!(
            "skipped under DOORBELL_TEST_RUNNER: a 7 s certificate cannot be timed under emulation"
        );
        return;
    }
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::create(dir.path());
    let dns = DnsResponder::start().await;
    let ports = PebblePorts::pick();
    let directory = ports.directory();
    let hub_dir = tempfile::tempdir().expect("hub dir");
    let config = HubConfig {
        tls: TlsMode::Acme(AcmeConfig {
            contact: vec!["mailto:admin@doorbell.test".into()],
            directory: directory.clone(),
            ca_file: Some(ca.root_pem.clone()),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            ..AcmeConfig::new(vec![DOMAIN.into()])
        }),
        ..common::config(&hub_dir, TlsMode::Plain)
    };

    // The CA is not running yet: the attempt fails, is reported, and nothing is served.
    let mut hub = start_hub_with_config(hub_dir, config.clone(), Timings::default()).await;
    let mut status = hub.hub.acme_status().expect("ACME status");
    let failed = wait_status(&mut status, "a failed first attempt", |s| s.failures >= 1).await;
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains(&directory),
        "the error names the CA: {failed:?}"
    );
    // (Any root will do: the hub aborts the handshake before the client verifies anything.)
    let test_root = CertificateDer::from_pem_file(&ca.root_pem).expect("test root");
    let refused = served_chain(&hub, (&test_root, UnixTime::now()), &[b"http/1.1"]).await;
    assert_no_certificate(refused, "before the first certificate");

    // Pebble comes up; a retry obtains a certificate through real TLS-ALPN-01 validation.
    let pebble = ports
        .start(dir.path(), &ca, &dns, hub.addr.port(), VALIDITY_SECS)
        .await;
    let root = pebble.root(&ca).await;
    let first_status = wait_status(&mut status, "the first certificate", |s| s.obtained >= 1).await;
    assert_success(&first_status, &pebble);
    let first = served_chain(&hub, (&root, UnixTime::now()), &[b"http/1.1"])
        .await
        .expect("the served chain verifies against pebble's root for the domain");
    assert_eq!(
        healthz(&hub, &root).await,
        200,
        "HTTP over the ACME certificate"
    );
    // Outside a validation, `acme-tls/1` gets nothing (no challenge certificate lingers).
    let challenge = served_chain(&hub, (&root, UnixTime::now()), &[b"acme-tls/1"]).await;
    assert_no_certificate(challenge, "acme-tls/1 outside a validation");

    let acme_dir = hub.dir.path().join("acme").join(
        directory
            .trim_start_matches("https://")
            .trim_end_matches("/dir")
            .replace(':', "_"),
    );
    for file in ["certificate.pem", "account.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(acme_dir.join(file))
            .unwrap_or_else(|e| panic!("{file} in {}: {e}", acme_dir.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} must be private");
    }

    // Two thirds into its life the certificate is renewed, by the same running hub.
    let second_status =
        wait_status(&mut status, "the renewed certificate", |s| s.obtained >= 2).await;
    assert_success(&second_status, &pebble);
    let second = served_chain(&hub, (&root, UnixTime::now()), &[b"http/1.1"])
        .await
        .expect("the renewed chain verifies");
    assert_ne!(first[0], second[0], "renewal serves a new certificate");
    assert!(second_status.valid_until > first_status.valid_until);

    // Restart without a CA: the stored certificate is served at once...
    pebble.stop().await;
    hub.stop().await;
    let TestHub { dir: hub_dir, .. } = hub;
    // Verified at a time it is valid: it lives 7 s, and a slow machine may take a while here.
    let valid_until = second_status.valid_until.expect("expiry");
    let while_valid = UnixTime::since_unix_epoch(
        (valid_until - Duration::from_secs(2))
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970"),
    );
    let mut hub = start_hub_with_config(hub_dir, config, Timings::default()).await;
    let stored = served_chain(&hub, (&root, while_valid), &[b"http/1.1"])
        .await
        .expect("the stored chain is served at start");
    assert_eq!(stored[0], second[0], "the latest certificate was stored");
    // ...and kept while its renewal fails.
    let mut status = hub.hub.acme_status().expect("ACME status");
    let failed = wait_status(&mut status, "the failed renewal", |s| s.failures >= 1).await;
    assert_eq!(failed.obtained, 0);
    let kept = served_chain(&hub, (&root, while_valid), &[b"http/1.1"])
        .await
        .expect("the old chain is still served and valid for the domain");
    assert_eq!(kept[0], second[0]);
    hub.stop().await;
    eprintln!("ACME end-to-end test took {:?}", started.elapsed());
}

/// Waits (bounded) until the hub's ACME status satisfies `done`.
async fn wait_status(
    status: &mut watch::Receiver<AcmeStatus>,
    what: &str,
    done: impl FnMut(&AcmeStatus) -> bool,
) -> AcmeStatus {
    let wait = ISSUE_WAIT + Duration::from_secs(VALIDITY_SECS);
    let outcome = match tokio::time::timeout(wait, status.wait_for(done)).await {
        Ok(Ok(status)) => Ok(status.clone()),
        Ok(Err(_)) => Err("the ACME task ended"),
        Err(_) => Err("timed out"),
    };
    outcome.unwrap_or_else(|why| {
        panic!(
            "{why} after {wait:?} waiting for {what}; status: {:?}",
            *status.borrow()
        )
    })
}

/// A success carries no error; otherwise show pebble's side of the story.
fn assert_success(status: &AcmeStatus, pebble: &pebble::Pebble) {
    assert!(
        status.last_error.is_none() && status.valid_until.is_some(),
        "{status:?}\npebble:\n{}",
        pebble.log_text()
    );
}

/// The hub refused the handshake (it had no certificate to offer), as opposed to offering one
/// the client rejected.
fn assert_no_certificate(outcome: Result<Vec<CertificateDer<'static>>, String>, when: &str) {
    match outcome {
        Err(e) if e.contains("received fatal alert") => {}
        other => panic!("{when}: expected the hub to refuse the handshake, got {other:?}"),
    }
}

/// A TLS handshake with the hub for [`DOMAIN`] offering `alpn`; the chain it served, verified
/// against the root at the given time.
async fn served_chain(
    hub: &TestHub,
    verify: (&CertificateDer<'static>, UnixTime),
    alpn: &[&[u8]],
) -> Result<Vec<CertificateDer<'static>>, String> {
    let stream = connect(hub, verify, alpn).await?;
    let chain = stream
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificates")?;
    Ok(chain.iter().map(|c| c.clone().into_owned()).collect())
}

async fn connect(
    hub: &TestHub,
    (root, at): (&CertificateDer<'static>, UnixTime),
    alpn: &[&[u8]],
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).expect("root");
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("verifier");
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(VerifyAt { webpki, at }))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(hub.addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(DOMAIN).expect("name");
    common::within(
        "a TLS handshake with the hub",
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|e| e.to_string())
}

/// `GET /healthz` over a verified connection; the status code.
async fn healthz(hub: &TestHub, root: &CertificateDer<'static>) -> u16 {
    let mut tls = connect(hub, (root, UnixTime::now()), &[b"http/1.1"])
        .await
        .expect("verified connection");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    let _ = common::within("the /healthz response", tls.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"))
}

/// Verifies the chain and name with webpki as a browser would, at a chosen time (a certificate
/// that lives 7 s may have expired by the time a slow machine checks it).
#[derive(Debug)]
struct VerifyAt {
    webpki: Arc<WebPkiServerVerifier>,
    at: UnixTime,
}

impl ServerCertVerifier for VerifyAt {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, self.at)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
