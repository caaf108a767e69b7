//! A mock RFC 8030 push service (also used as a mock ntfy server) on 127.0.0.1:0 that records
//! every request and answers with scripted statuses; and a browser-side subscription whose
//! keys the test holds, with its own RFC 8291 decryption and VAPID (RFC 8292) verification,
//! written from the RFCs rather than through the hub's crate.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::Aes128Gcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use hkdf::Hkdf;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use doorbell_hub::{NotifyConfig, NtfyConfig, PushConfig};
use doorbell_hub::{Timings, TlsMode};

use super::{http, TestHub, WAIT};

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// When its last byte arrived.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Replies = Arc<Mutex<HashMap<String, VecDeque<(u16, Vec<(String, String)>)>>>>;

/// The running service; stops when dropped.
pub struct MockPushService {
    pub addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Received>,
    replies: Replies,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockPushService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockPushService {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock push service");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let replies: Replies = Arc::default();
        let script = replies.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, script) = (tx.clone(), script.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (tx, script) = (tx.clone(), script.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let path = parts.uri.path().to_owned();
                            let _ = tx.send(Received {
                                method: parts.method.to_string(),
                                path: path.clone(),
                                headers: parts.headers,
                                body: body.to_vec(),
                                at: Instant::now(),
                            });
                            let (status, headers) = script
                                .lock()
                                .unwrap()
                                .get_mut(&path)
                                .and_then(VecDeque::pop_front)
                                .unwrap_or((201, Vec::new()));
                            let mut response = Response::builder().status(status);
                            for (name, value) in headers {
                                response = response.header(name, value);
                            }
                            Ok::<_, hyper::Error>(response.body(Full::new(Bytes::new())).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        MockPushService {
            addr,
            rx,
            replies,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The origin a VAPID `aud` must name.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next request to `path` gets `status` and `headers` (then 201 again).
    pub fn reply_next(&self, path: &str, status: u16, headers: &[(&str, &str)]) {
        self.replies
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default()
            .push_back((
                status,
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            ));
    }

    /// The next request received (bounded wait).
    pub async fn next(&mut self) -> Received {
        super::within("a request at the mock push service", self.rx.recv())
            .await
            .expect("mock push service stopped")
    }

    /// Requests received within `quiet` (none expected: returns them for the message).
    pub async fn drain_for(&mut self, quiet: Duration) -> Vec<Received> {
        let mut got = Vec::new();
        while let Ok(Some(r)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            got.push(r);
        }
        got
    }
}

/// A browser's push subscription, keys held by the test.
pub struct TestSubscription {
    pub endpoint: String,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random");
    bytes
}

impl TestSubscription {
    pub fn new(endpoint: String) -> Self {
        let secret = loop {
            if let Ok(key) = p256::SecretKey::from_slice(&random::<32>()) {
                break key;
            }
        };
        TestSubscription {
            endpoint,
            secret,
            auth: random(),
        }
    }

    /// From fixed keys (the RFC 8291 example).
    pub fn from_keys(endpoint: String, private: &[u8], auth: &[u8]) -> Self {
        TestSubscription {
            endpoint,
            secret: p256::SecretKey::from_slice(private).expect("P-256 private key"),
            auth: auth.try_into().expect("16-byte auth"),
        }
    }

    pub fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    pub fn auth(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }

    /// What `PushSubscription.toJSON()` gives.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {"p256dh": self.p256dh(), "auth": self.auth()},
        })
    }

    /// Decrypts an `aes128gcm` push message body (RFC 8291 section 3.4, RFC 8188 section 2).
    pub fn decrypt(&self, body: &[u8]) -> Vec<u8> {
        assert!(body.len() > 21, "body shorter than the aes128gcm header");
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
        let idlen = body[20] as usize;
        assert_eq!(
            idlen, 65,
            "keyid must be the sender's uncompressed P-256 key"
        );
        let keyid = &body[21..21 + idlen];
        let ciphertext = &body[21 + idlen..];
        assert!(
            ciphertext.len() <= rs,
            "one record expected (rs {rs}, {} bytes)",
            ciphertext.len()
        );
        let as_public = p256::PublicKey::from_sec1_bytes(keyid).expect("keyid is a P-256 point");
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), as_public.as_affine());
        let ua_public = self.secret.public_key().to_encoded_point(false);
        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(ua_public.as_bytes());
        key_info.extend_from_slice(keyid);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&key_info, &mut ikm)
            .unwrap();
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .unwrap();
        let plain = Aes128Gcm::new(&cek.into())
            .decrypt(&nonce.into(), ciphertext)
            .expect("AES-GCM tag verifies");
        // The last (only) record ends with the delimiter 0x02 and optional zero padding.
        let end = plain
            .iter()
            .rposition(|b| *b != 0)
            .expect("a padding delimiter");
        assert_eq!(plain[end], 2, "last-record delimiter");
        plain[..end].to_vec()
    }
}

/// The claims of a verified `Authorization: vapid t=..., k=...` header.
pub fn verify_vapid(
    headers: &HeaderMap,
    vapid_public_key: &str,
    origin: &str,
) -> serde_json::Value {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .expect("Authorization header");
    let (t, k) = value
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .unwrap_or_else(|| panic!("not a vapid authorization: {value}"));
    assert_eq!(k, vapid_public_key, "k= is the key from /api/push/key");
    let (signing_input, signature) = t.rsplit_once('.').expect("JWS has a signature");
    let (header, claims) = signing_input
        .split_once('.')
        .expect("JWS has header and claims");
    let decode = |part: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    assert_eq!(decode(header)["alg"], "ES256");
    let public = URL_SAFE_NO_PAD.decode(k).expect("key base64url");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public)
        .verify(
            signing_input.as_bytes(),
            &URL_SAFE_NO_PAD
                .decode(signature)
                .expect("signature base64url"),
        )
        .expect("ES256 signature verifies with the hub's VAPID key");
    let claims = decode(claims);
    assert_eq!(claims["aud"], origin, "aud is the endpoint's origin");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "exp {exp} within 24 h of {now}"
    );
    let sub = claims["sub"].as_str().expect("sub");
    assert!(
        sub.starts_with("mailto:") || sub.starts_with("https://"),
        "{sub}"
    );
    claims
}

/// Waits (bounded) until `check` holds, re-evaluating on each tick of a short interval.
/// A poll, not an event: what it waits for is a row the hub deletes in its own task after a
/// push service's reply, and the hub has no hook a test could wait on for that.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        if check() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The VAPID `sub` the test hubs use.
pub const SUBJECT: &str = "mailto:ops@example.net";

/// A plain-HTTP hub whose pushes may go to `mock` on 127.0.0.1 (and, with `ntfy`, which
/// publishes to `mock`'s `/doorbell` topic with the token `tk_test`).
pub async fn push_hub(mock: &MockPushService, ntfy: bool) -> TestHub {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = super::config(&dir, TlsMode::Plain);
    config.push = PushConfig {
        vapid_subject: Some(SUBJECT.into()),
        allow_insecure_endpoints: vec!["127.0.0.1".into()],
    };
    if ntfy {
        config.notify = NotifyConfig {
            ntfy: Some(NtfyConfig {
                topic_url: mock.url("/doorbell"),
                access_token: Some("tk_test".into()),
            }),
        };
    }
    super::start_hub_with_config(dir, config, Timings::default()).await
}

/// `GET /api/push/key`.
pub async fn vapid_key(hub: &TestHub) -> String {
    let (status, body) = http(hub.addr, "GET", "/api/push/key", &[], None).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["vapid_public_key"]
        .as_str()
        .expect("vapid_public_key")
        .to_owned()
}

/// `method /api/push/subscription` with the phone's token; (status, body).
pub async fn subscription_call(
    hub: &TestHub,
    method: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let auth = format!("Bearer {token}");
    http(
        hub.addr,
        method,
        "/api/push/subscription",
        &[("Authorization", &auth)],
        Some(body),
    )
    .await
}

/// Subscribes `sub` for the phone with `token`; must get 201.
pub async fn subscribe(hub: &TestHub, token: &str, sub: &TestSubscription) {
    let (status, body) = subscription_call(hub, "POST", token, &sub.json().to_string()).await;
    assert_eq!(status, 201, "{body}");
}
