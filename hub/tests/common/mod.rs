//! Test helpers: a hub on 127.0.0.1:0 in a temp dir, typed WebSocket clients, a tiny HTTP
//! client. Every wait is bounded by [`WAIT`] and fails with a message.

#![allow(dead_code)]

pub mod coturn;
pub mod push_service;

use std::fmt::Debug;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use doorbell_hub::{Hub, HubConfig, HubError, Timings, TlsMode};
use doorbell_protocol::{
    DoorId, DoorInfo, DoorToHub, ErrorCode, HubToDoor, HubToPhone, PhoneId, PhoneToHub,
    PROTOCOL_VERSION,
};
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(5);

pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// A running hub.
pub struct TestHub {
    pub hub: Hub,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), HubError>>>,
    /// Holds the database (and certificate) until the test ends.
    pub dir: TempDir,
}

pub fn config(dir: &TempDir, tls: TlsMode) -> HubConfig {
    HubConfig {
        db_path: dir.path().join("hub.sqlite3"),
        public_url: None,
        ice_servers: vec![],
        tls,
        turn: None,
        history: Default::default(),
        push: Default::default(),
        notify: Default::default(),
        limits: Default::default(),
    }
}

/// A plain-HTTP hub with default timings.
pub async fn start_hub() -> TestHub {
    start_hub_with(Timings::default(), TlsMode::Plain).await
}

pub async fn start_hub_with(timings: Timings, tls: TlsMode) -> TestHub {
    let dir = tempfile::tempdir().expect("tempdir");
    start_hub_in(dir, timings, tls).await
}

/// Starts a hub on an existing directory (to test persistence across restarts).
pub async fn start_hub_in(dir: TempDir, timings: Timings, tls: TlsMode) -> TestHub {
    let config = config(&dir, tls);
    start_hub_with_config(dir, config, timings).await
}

/// Starts a hub with a full [`HubConfig`] (e.g. with TURN) whose files live in `dir`.
pub async fn start_hub_with_config(dir: TempDir, config: HubConfig, timings: Timings) -> TestHub {
    let hub = Hub::open_with_timings(config, timings).expect("open hub");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel();
    let server = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.serve(listener, async {
                let _ = rx.await;
            })
            .await
        })
    };
    TestHub {
        hub,
        addr,
        shutdown: Some(tx),
        server: Some(server),
        dir,
    }
}

impl TestHub {
    pub fn add_door(&self, name: &str) -> (DoorId, String) {
        self.hub.store().add_door(name).expect("add door")
    }

    /// Pairs a new phone with `door` through `POST /api/pair`; returns (token, phone id).
    pub async fn pair_phone(&self, door: &DoorId) -> (String, PhoneId) {
        let code = self
            .hub
            .store()
            .create_pairing_code(door)
            .expect("pairing code");
        let body = serde_json::json!({ "code": code }).to_string();
        let (status, body) = http(self.addr, "POST", "/api/pair", &[], Some(&body)).await;
        assert_eq!(status, 200, "pairing failed: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("pair response JSON");
        let token = v["token"].as_str().expect("token").to_owned();
        let phone = v["phone_id"].as_str().expect("phone_id").to_owned();
        (token, PhoneId::new(phone))
    }

    /// Resolves the shutdown future and waits for `serve` to return.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            within("serve() to return after shutdown", server)
                .await
                .expect("serve task")
                .expect("serve result");
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// A typed WebSocket client: receives `In`, sends `Out`.
pub struct Client<In, Out> {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    _types: PhantomData<(In, Out)>,
}

pub type DoorClient = Client<HubToDoor, DoorToHub>;
pub type PhoneClient = Client<HubToPhone, PhoneToHub>;

impl<In: DeserializeOwned + Debug, Out: Serialize> Client<In, Out> {
    pub async fn connect(hub: &TestHub) -> Self {
        let (ws, _) = within(
            "WebSocket connect",
            // Without Nagle, as browsers send: a message right after one the hub
            // did not answer would otherwise wait for a delayed ACK (40 ms).
            tokio_tungstenite::connect_async_with_config(hub.ws_url(), None, true),
        )
        .await
        .expect("WebSocket connect");
        Client {
            ws,
            _types: PhantomData,
        }
    }

    pub async fn send(&mut self, msg: &Out) {
        let text = serde_json::to_string(msg).expect("serialize");
        self.send_raw(&text).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        within("send", self.ws.send(Message::text(text)))
            .await
            .expect("send");
    }

    /// The next message from the hub (pings skipped).
    pub async fn recv(&mut self) -> In {
        loop {
            let frame = within("a message from the hub", self.ws.next()).await;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("unexpected message {text}: {e}"))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// Reads until the hub closes the connection; returns its close frame, if it sent one.
    pub async fn expect_closed(&mut self) -> Option<CloseFrame> {
        within("the hub to close the connection", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(Message::Text(text))) => panic!("expected close, got {text}"),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
    }
}

fn error_code_of(text: &str) -> Option<ErrorCode> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    (v["type"] == "error").then(|| serde_json::from_value(v["code"].clone()).ok())?
}

impl DoorClient {
    pub async fn expect_error(&mut self, code: ErrorCode) {
        match self.recv().await {
            HubToDoor::Error(e) => assert_eq!(e.code, code, "{e:?}"),
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }
}

impl PhoneClient {
    pub async fn expect_error(&mut self, code: ErrorCode) {
        match self.recv().await {
            HubToPhone::Error(e) => assert_eq!(e.code, code, "{e:?}"),
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }
}

/// Connects, says hello as a door and checks the welcome.
pub async fn connect_door(hub: &TestHub, door_id: &DoorId, secret: &str) -> DoorClient {
    let mut door = DoorClient::connect(hub).await;
    door.send(&DoorToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        door_id: door_id.clone(),
        secret: secret.to_owned(),
        software: "test-door".into(),
    })
    .await;
    match door.recv().await {
        HubToDoor::Welcome { .. } => door,
        other => panic!("expected door welcome, got {other:?}"),
    }
}

/// Connects, says hello as a phone, and returns the client with the welcome's door list.
pub async fn connect_phone(hub: &TestHub, token: &str) -> (PhoneClient, Vec<DoorInfo>) {
    let mut phone = PhoneClient::connect(hub).await;
    phone
        .send(&PhoneToHub::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: token.to_owned(),
        })
        .await;
    match phone.recv().await {
        HubToPhone::Welcome { doors, .. } => (phone, doors),
        other => panic!("expected phone welcome, got {other:?}"),
    }
}

/// Raw-text first frame check for handshake failures: returns the error code then expects close.
pub async fn expect_refused<I: DeserializeOwned + Debug, O: Serialize>(
    client: &mut Client<I, O>,
    code: ErrorCode,
) -> Option<CloseFrame> {
    let frame = within("an error reply", client.ws.next()).await;
    match frame {
        Some(Ok(Message::Text(text))) => {
            assert_eq!(error_code_of(&text), Some(code), "reply was {text}")
        }
        other => panic!("expected error {code:?}, got {other:?}"),
    }
    client.expect_closed().await
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let stream = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (status, _, body) = http_on(stream, method, path, headers, body).await;
    (status, body)
}

/// `GET path` as the phone with `token`; must answer 200 with JSON.
pub async fn get_json(hub: &TestHub, path: &str, token: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let (status, body) = http(hub.addr, "GET", path, &[("Authorization", &auth)], None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// One HTTP/1.1 request with a binary body; returns (status, head, body bytes).
pub async fn http_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (413, 401) and close before reading the whole body.
    let _ = within("HTTP request", stream.write_all(&bytes)).await;
    let mut response = Vec::new();
    let _ = within("HTTP response", stream.read_to_end(&mut response)).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "malformed HTTP response: {:?}",
                String::from_utf8_lossy(&response)
            )
        });
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, head, response[split + 4..].to_vec())
}

/// Like [`http`] on an existing stream (plain or TLS); also returns the raw response head.
pub async fn http_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let body = body.unwrap_or("");
    // `Host: localhost` unless the caller names one (the Host allow-list tests do).
    let host = if headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        ""
    } else {
        "Host: localhost\r\n"
    };
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\n{host}Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    within("HTTP request", stream.write_all(request.as_bytes()))
        .await
        .expect("write request");
    let mut response = Vec::new();
    within("HTTP response", stream.read_to_end(&mut response))
        .await
        .expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("malformed HTTP response: {response}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, head.to_owned(), body.to_owned())
}
