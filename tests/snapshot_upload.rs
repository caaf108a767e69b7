//! The door's snapshot upload against a real hub on 127.0.0.1:0: accepted with the door's
//! credentials, refused (not worth retrying) with a wrong secret or a body that is no JPEG.

use std::sync::Arc;

use doorbell_hub::{Hub, HubConfig, TlsMode};
use doorbell_protocol::CallId;
use doorbelld::snapshot_upload::{SnapshotTarget, SnapshotUploader, UploadError};

fn client_tls() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    )
}

#[tokio::test]
async fn uploads_are_accepted_with_the_doors_credentials_and_refused_without() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = Hub::open(HubConfig {
        db_path: dir.path().join("hub.sqlite3"),
        public_url: None,
        ice_servers: vec![],
        tls: TlsMode::Plain,
        turn: None,
        history: Default::default(),
        push: Default::default(),
        notify: Default::default(),
        limits: Default::default(),
    })
    .expect("hub");
    let (door, secret) = hub.store().add_door("Front").expect("door");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let hub = hub.clone();
        async move {
            hub.serve(listener, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    let url = format!("ws://{addr}/ws");
    let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
    let target = SnapshotTarget::Call(CallId::new("c-1"));

    let good = SnapshotUploader::new(&url, door.as_str(), &secret, client_tls()).expect("url");
    good.upload(&target, jpeg.clone()).await.expect("accepted");

    let wrong = SnapshotUploader::new(&url, door.as_str(), "nope", client_tls()).expect("url");
    let err = wrong
        .upload(&target, jpeg)
        .await
        .expect_err("a wrong secret");
    assert!(
        matches!(err, UploadError::Refused { status: 401, .. }),
        "{err}"
    );
    assert!(!err.is_transient());

    let err = good
        .upload(&target, b"not a jpeg".to_vec())
        .await
        .expect_err("not a JPEG");
    assert!(
        matches!(err, UploadError::Refused { status: 400, .. }),
        "{err}"
    );

    let _ = stop.send(());
    server.await.expect("task").expect("serve");
}
