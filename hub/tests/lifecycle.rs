//! Graceful shutdown, TLS, and refusing plain HTTP off loopback.

mod common;

use std::sync::Arc;

use common::*;
use doorbell_hub::{Hub, HubError, Timings, TlsMode};
use doorbell_protocol::{DoorToHub, HubToDoor};

#[tokio::test]
async fn shutdown_closes_peers_with_going_away_and_serve_returns() {
    let mut hub = start_hub().await;
    let (door_id, secret) = hub.add_door("Front");
    let (token, _) = hub.pair_phone(&door_id).await;
    let mut door = connect_door(&hub, &door_id, &secret).await;
    let (mut phone, _) = connect_phone(&hub, &token).await;
    // Prove both are fully registered before stopping.
    door.send(&DoorToHub::Ring {
        call_id: doorbell_protocol::CallId::new("c1"),
    })
    .await;
    assert!(matches!(door.recv().await, HubToDoor::Ringing { .. }));

    // Both clients read concurrently, so each answers the hub's close while it drains.
    let door_closed = tokio::spawn(async move { door.expect_closed().await });
    let phone_closed = tokio::spawn(async move {
        loop {
            // Skip the ring; then the close arrives.
            match within("phone close", futures_util::StreamExt::next(&mut phone.ws)).await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    });
    hub.stop().await;
    for closed in [door_closed, phone_closed] {
        let frame = within("close frame", closed)
            .await
            .expect("task")
            .expect("close frame");
        assert_eq!(u16::from(frame.code), 1001, "{frame:?}");
    }
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(hub.addr).await.is_err());
}

#[tokio::test]
async fn self_signed_tls_serves_https() {
    let hub = start_hub_with(Timings::default(), TlsMode::SelfSigned).await;
    let fingerprint = hub.hub.tls_fingerprint().expect("fingerprint").to_owned();
    let cert_pem = std::fs::read(hub.dir.path().join("cert.pem")).expect("cert.pem next to the db");
    let cert: rustls::pki_types::CertificateDer =
        rustls::pki_types::pem::PemObject::from_pem_slice(&cert_pem).expect("parse cert");
    assert_eq!(
        doorbell_common::cert_fingerprint(cert.as_ref()),
        fingerprint
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("add root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = within("TLS handshake", connector.connect(name, tcp))
        .await
        .expect("TLS handshake");
    let (status, _, body) = http_on(tls, "GET", "/healthz", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok");
    assert!(hub.hub.base_url(hub.addr).starts_with("https://127.0.0.1:"));
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = Hub::open(config(&dir, TlsMode::Plain)).expect("open");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let err = within(
        "serve to refuse",
        hub.serve(listener, std::future::pending()),
    )
    .await
    .expect_err("plain HTTP on 0.0.0.0 must be refused");
    assert!(matches!(err, HubError::PlainHttpNotLoopback(_)), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}
