//! Limits per client (issue 12), each against the probe that found the hole: one address
//! holding many connections, a body that never arrives, hello-less WebSockets, a full pairing
//! limiter table, a foreign `Host` or `Origin`. Other clients come from other loopback
//! addresses (Linux routes all of 127/8 to `lo`).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use doorbell_hub::{LimitsConfig, Timings, TlsMode};
use doorbell_protocol::{DoorToHub, HubToDoor, PROTOCOL_VERSION};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

async fn hub_with(limits: LimitsConfig) -> TestHub {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = doorbell_hub::HubConfig {
        limits,
        ..common::config(&dir, TlsMode::Plain)
    };
    start_hub_with_config(dir, config, Timings::default()).await
}

/// A TCP connection to `to` from the loopback address `from`.
async fn tcp_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    within("TCP connect", socket.connect(to))
        .await
        .expect("connect")
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A WebSocket upgrade from `from`, with `origin` if given; the HTTP status on refusal.
async fn ws_from(from: Ipv4Addr, hub: &TestHub, origin: Option<&str>) -> Result<Ws, u16> {
    let stream = tcp_from(from, hub.addr).await;
    let mut request = hub.ws_url().into_client_request().expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).expect("origin"));
    }
    upgrade(stream, request).await
}

/// Sends `request` on `stream`: the WebSocket, or the HTTP status on refusal.
async fn upgrade(
    stream: TcpStream,
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Result<Ws, u16> {
    match within(
        "WebSocket upgrade",
        tokio_tungstenite::client_async(request, stream),
    )
    .await
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// Says hello as `door` on `ws` and expects the welcome.
async fn hello_door(ws: &mut Ws, door: &doorbell_protocol::DoorId, secret: &str) {
    let hello = DoorToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        door_id: door.clone(),
        secret: secret.to_owned(),
        software: "test".into(),
    };
    let text = serde_json::to_string(&hello).expect("json");
    within(
        "send hello",
        futures_util::SinkExt::send(ws, Message::text(text)),
    )
    .await
    .expect("send hello");
    loop {
        match within("the welcome", ws.next()).await {
            Some(Ok(Message::Text(text))) => {
                let msg: HubToDoor = serde_json::from_str(&text).expect("a door message");
                assert!(
                    matches!(msg, HubToDoor::Welcome { .. }),
                    "expected welcome, got {msg:?}"
                );
                return;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected the welcome, got {other:?}"),
        }
    }
}

/// Whether the hub closes `stream` (EOF or reset) within [`WAIT`] without sending anything.
async fn closed_by_hub(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(WAIT, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn loopback(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 0)) + n)
}

/// The probe: 1,300 idle sockets from one address made `/healthz` fail and locked doors out.
#[tokio::test]
async fn one_address_cannot_take_the_others_slots() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let greedy = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    for _ in 0..1300 {
        held.push(tcp_from(greedy, hub.addr).await);
    }
    let refused = held.last_mut().expect("one");
    assert!(
        closed_by_hub(refused).await,
        "the address's connection past its maximum was not closed"
    );
    let mut ws = ws_from(Ipv4Addr::new(127, 0, 0, 3), &hub, None)
        .await
        .expect("another address still gets a WebSocket");
    hello_door(&mut ws, &door, &secret).await;
    let (status, body) = http(hub.addr, "GET", "/healthz", &[], None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

/// A WebSocket keeps its address's place after the upgrade (the HTTP connection is over).
#[tokio::test]
async fn websockets_count_against_their_address() {
    let hub = hub_with(LimitsConfig {
        max_per_address: Some(2),
        ..LimitsConfig::default()
    })
    .await;
    let first = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    for name in ["Front", "Back"] {
        let (door, secret) = hub.add_door(name);
        let mut ws = ws_from(first, &hub, None).await.expect("within the limit");
        hello_door(&mut ws, &door, &secret).await;
        held.push(ws);
    }
    let (door, secret) = hub.add_door("Side");
    let mut third = tcp_from(first, hub.addr).await;
    assert!(
        closed_by_hub(&mut third).await,
        "a third connection from the same address"
    );
    let mut ws = ws_from(Ipv4Addr::new(127, 0, 0, 3), &hub, None)
        .await
        .expect("another address");
    hello_door(&mut ws, &door, &secret).await;
}

/// The probe: a `POST /api/pair` whose body never came stayed open indefinitely.
#[tokio::test]
async fn a_body_that_never_arrives_is_closed_within_the_timeout() {
    let hub = hub_with(LimitsConfig {
        request_timeout_ms: Some(300),
        ..LimitsConfig::default()
    })
    .await;
    let mut stream = within("connect", TcpStream::connect(hub.addr))
        .await
        .expect("connect");
    let head = "POST /api/pair HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"co";
    within("send the head", stream.write_all(head.as_bytes()))
        .await
        .expect("write");
    let started = tokio::time::Instant::now();
    let mut response = Vec::new();
    within(
        "the hub to close a request whose body stalled",
        stream.read_to_end(&mut response),
    )
    .await
    .ok();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 4"),
        "{response}"
    );
}

/// The probe: 1,024 upgrades that never sent `hello` took every slot; a real door got 503.
#[tokio::test]
async fn hello_less_websockets_cannot_starve_authenticated_ones() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let mut silent = Vec::new();
    let mut refused = 0;
    for i in 0..1100 {
        match ws_from(loopback(i / 16), &hub, None).await {
            Ok(ws) => silent.push(ws),
            Err(status) => {
                assert_eq!(status, 503);
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 0, "each address stayed within its share");
    let mut ws = ws_from(Ipv4Addr::new(127, 0, 0, 3), &hub, None)
        .await
        .expect("a door still gets a WebSocket");
    hello_door(&mut ws, &door, &secret).await;
    // The oldest waiters were told to go (1013, try again later).
    match within("the oldest waiter's close", silent[0].next()).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1013),
        other => panic!("expected a close, got {other:?}"),
    }
}

/// The probe: 4,200 wrong codes from distinct addresses filled the limiter's table; then a
/// valid code from a fresh address got 429. Distinct addresses come through a trusted proxy.
#[tokio::test]
async fn a_full_limiter_table_still_accepts_a_valid_code() {
    let hub = hub_with(LimitsConfig {
        trusted_proxies: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..LimitsConfig::default()
    })
    .await;
    let (door, _) = hub.add_door("Front");
    let wrong = r#"{"code":"not-a-code"}"#;
    for i in 0..4200u32 {
        let xff = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i).to_string();
        let (status, _) = http(
            hub.addr,
            "POST",
            "/api/pair",
            &[("X-Forwarded-For", &xff)],
            Some(wrong),
        )
        .await;
        assert_eq!(status, 403, "a first wrong code from {xff}");
    }
    let pair = |code: String, xff: &'static str| {
        let addr = hub.addr;
        async move {
            let body = serde_json::json!({ "code": code }).to_string();
            http(
                addr,
                "POST",
                "/api/pair",
                &[("X-Forwarded-For", xff)],
                Some(&body),
            )
            .await
        }
    };
    let code = hub.hub.store().create_pairing_code(&door).expect("code");
    let (status, body) = pair(code, "192.0.2.1").await;
    assert_eq!(status, 200, "a valid code from a fresh address: {body}");

    // An address that used up its failures (a shared NAT) still pairs with a valid code.
    for _ in 0..10 {
        pair("wrong".into(), "198.51.100.7").await;
    }
    let (status, _) = pair("wrong".into(), "198.51.100.7").await;
    assert_eq!(status, 429, "over the limit, a wrong code is answered 429");
    let code = hub.hub.store().create_pairing_code(&door).expect("code");
    let (status, body) = pair(code, "198.51.100.7").await;
    assert_eq!(
        status, 200,
        "a valid code is checked before the limit: {body}"
    );
}

/// The probe: any `Host` was served (DNS rebinding), and `/ws` welcomed a foreign `Origin`.
#[tokio::test]
async fn a_foreign_host_and_a_foreign_origin_are_refused() {
    let hub = start_hub().await;
    let (door, secret) = hub.add_door("Front");
    let status_for = |host: &'static str| {
        let addr = hub.addr;
        async move {
            http(addr, "GET", "/healthz", &[("Host", host)], None)
                .await
                .0
        }
    };
    assert!(status_for("evil.example").await == 421, "foreign Host");
    assert!(status_for("evil.example:80").await == 421, "foreign Host");
    for host in ["localhost", "127.0.0.1:1", "[::1]:8443"] {
        assert!(status_for(host).await == 200, "{host} is served");
    }
    // The machine's own names are served whatever the certificate says (here: none), so a
    // phone that opened the hub as `<host>.local` keeps working after an upgrade.
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("host name")
        .trim()
        .to_ascii_lowercase();
    if !machine.is_empty() && machine != "localhost" {
        let short = machine.split('.').next().unwrap_or(&machine).to_owned();
        for name in [machine.clone(), format!("{short}.local")] {
            let name: &'static str = Box::leak(name.into_boxed_str());
            assert!(
                status_for(name).await == 200,
                "the machine's name {name} is served"
            );
        }
    }

    let me = Ipv4Addr::LOCALHOST;
    let status = ws_from(me, &hub, Some("https://evil.example")).await.err();
    assert_eq!(status, Some(403), "a foreign Origin gets no WebSocket");
    let own = format!("http://{}", hub.addr);
    let mut ws = ws_from(me, &hub, Some(&own))
        .await
        .expect("the hub's own page");
    hello_door(&mut ws, &door, &secret).await;
    let mut ws = ws_from(me, &hub, None)
        .await
        .expect("no Origin: a door or a program");
    hello_door(&mut ws, &door, &secret).await;
}

/// The CSP forbids framing and talking to other hosts; no HSTS with a self-signed certificate.
#[tokio::test]
async fn csp_forbids_framing_and_foreign_connections() {
    let hub = start_hub().await;
    let stream = within("connect", TcpStream::connect(hub.addr))
        .await
        .expect("connect");
    let (status, head, _) = http_on(stream, "GET", "/", &[], None).await;
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert!(head.contains("connect-src 'self';"), "{head}");
    assert!(!head.contains("strict-transport-security"), "{head}");
}

/// A hub behind a trusted reverse proxy on 127.0.0.1, with two connections per address.
async fn behind_a_proxy_with_two_per_address() -> TestHub {
    hub_with(LimitsConfig {
        max_per_address: Some(2),
        trusted_proxies: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..LimitsConfig::default()
    })
    .await
}

/// A WebSocket upgrade through a reverse proxy on 127.0.0.1 for the client `forwarded_for`.
async fn ws_via_proxy(hub: &TestHub, forwarded_for: &str) -> Result<Ws, u16> {
    let stream = tcp_from(Ipv4Addr::LOCALHOST, hub.addr).await;
    let mut request = hub.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "x-forwarded-for",
        HeaderValue::from_str(forwarded_for).expect("header"),
    );
    upgrade(stream, request).await
}

/// Behind a trusted proxy every client arrives on the proxy's connections: each forwarded
/// client's WebSockets count against its own address, so one client cannot take them all.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_share() {
    let hub = behind_a_proxy_with_two_per_address().await;
    let mut held = Vec::new();
    for name in ["Front", "Back"] {
        let (door, secret) = hub.add_door(name);
        let mut ws = ws_via_proxy(&hub, "203.0.113.7")
            .await
            .expect("within the client's share");
        hello_door(&mut ws, &door, &secret).await;
        held.push(ws);
    }
    assert_eq!(
        ws_via_proxy(&hub, "203.0.113.7").await.err(),
        Some(503),
        "a third WebSocket for the same client behind the proxy"
    );
    let (door, secret) = hub.add_door("Side");
    let mut ws = ws_via_proxy(&hub, "203.0.113.8")
        .await
        .expect("another client behind the same proxy");
    hello_door(&mut ws, &door, &secret).await;
    // A closed WebSocket gives its client's place back: closed here and seen closed by the
    // hub; the hub frees the place as the socket's task ends, a moment after its close frame,
    // so the next upgrade may have to try again.
    let mut closing = held.pop().expect("one");
    within("close", closing.close(None)).await.expect("close");
    while let Some(Ok(_)) = within("the hub's close", closing.next()).await {}
    let (door, secret) = hub.add_door("Garage");
    let mut ws = within("the place given back", async {
        loop {
            match ws_via_proxy(&hub, "203.0.113.7").await {
                Ok(ws) => break ws,
                Err(503) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(status) => panic!("unexpected {status}"),
            }
        }
    })
    .await;
    hello_door(&mut ws, &door, &secret).await;
}

/// A trusted proxy that does not name its clients (no `X-Forwarded-For`) is not capped as if
/// it were one client: that would stop the whole hub at `max_per_address` WebSockets.
#[tokio::test]
async fn a_trusted_proxy_without_forwarded_for_is_not_one_client() {
    let hub = behind_a_proxy_with_two_per_address().await;
    let mut held = Vec::new();
    for name in ["Front", "Back", "Side"] {
        let (door, secret) = hub.add_door(name);
        let mut ws = ws_from(Ipv4Addr::LOCALHOST, &hub, None)
            .await
            .expect("a WebSocket through the proxy");
        hello_door(&mut ws, &door, &secret).await;
        held.push(ws);
    }
}
