//! The door's connection to the hub: connect, authenticate, pump messages, reconnect.
//!
//! One task owns the WebSocket. The daemon talks to it through two bounded channels: outbound
//! [`DoorToHub`] messages in, [`LinkEvent`]s out. When the connection drops, the task reports
//! [`LinkEvent::Down`] and retries with full-jitter exponential backoff (so a hub restart does
//! not see every door of a neighbourhood reconnect in the same instant).
//!
//! Keepalive: the hub pings every 20 s, but a silently dropped route (a cut cable, a NAT that
//! forgot the mapping) never closes the socket. So the door pings too, every
//! [`LinkConfig::keepalive`] (`hub.keepalive_secs`), and drops the link when nothing at all
//! (a message, a ping or a pong) has arrived for [`DEAD_AFTER_KEEPALIVES`] of those.

mod backoff;
mod error;

pub use backoff::Backoff;
pub use error::LinkError;

use doorbell_protocol::{DoorToHub, HubToDoor, IceServer, MAX_MESSAGE_BYTES, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// How long the hub gets to answer `hello` before we try again.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the TCP/TLS/WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keepalive intervals without any frame from the hub after which the link is presumed dead:
/// three, so one lost pong is not enough (with the default 20 s: 60 s, as the hub does).
pub const DEAD_AFTER_KEEPALIVES: u32 = 3;
/// The default `hub.keepalive_secs`, matching the hub's own ping interval.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(20);
/// Outbound messages waiting for the socket. Signaling is a trickle (ring, SDP, a few dozen
/// candidates per call), so 64 is plenty and a stuck socket cannot hoard memory.
pub const OUTBOUND_QUEUE: usize = 64;
/// Our read buffer: signaling frames are small; tungstenite's 128 KiB default is for bulk data.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Where a hub is.
#[derive(Debug, Clone)]
pub struct HubAddress {
    /// `wss://host/ws` (or `ws://` on loopback).
    pub url: String,
    /// Extra PEM certificate(s) to trust, for a hub with a self-signed certificate.
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub url: String,
    pub door_id: String,
    /// The door's secret; only ever written into `hello`.
    pub secret: String,
    pub software: String,
    /// Extra PEM certificate(s) to trust, for a hub with a self-signed certificate.
    pub ca_file: Option<std::path::PathBuf>,
    /// How often the door pings the hub; the link is dropped after [`DEAD_AFTER_KEEPALIVES`]
    /// of these without any frame from the hub (`hub.keepalive_secs`).
    pub keepalive: Duration,
    /// Reconnect policy (the default everywhere but in benchmarks).
    pub backoff: Backoff,
}

#[derive(Debug)]
pub enum LinkEvent {
    /// The hub accepted our hello.
    Up {
        door_name: String,
        ice_servers: Vec<IceServer>,
    },
    Message(HubToDoor),
    /// The connection is gone (the task is already retrying).
    Down {
        reason: String,
    },
    /// The hub refused our credentials or version, or `hub.ca_file` is unusable: retrying
    /// will not help until the config is fixed, but we keep retrying slowly in case the hub's
    /// database is being restored.
    Refused {
        reason: LinkError,
    },
}

/// Sender half for the daemon.
#[derive(Clone)]
pub struct LinkHandle {
    outbound: mpsc::Sender<DoorToHub>,
}

impl LinkHandle {
    /// Queue a message for the hub. Never blocks the caller: if the queue is full the link is
    /// stuck and the message would be stale by the time it went out anyway.
    pub fn send(&self, message: DoorToHub) {
        if let Err(e) = self.outbound.try_send(message) {
            tracing::warn!("hub link queue full or closed, message dropped: {e}");
        }
    }
}

pub fn spawn(
    config: LinkConfig,
    events: mpsc::Sender<LinkEvent>,
    shutdown: CancellationToken,
) -> (LinkHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let task = tokio::spawn(run(config, rx, events, shutdown));
    (LinkHandle { outbound: tx }, task)
}

enum Ended {
    Shutdown,
    Lost(String),
    Refused(LinkError),
}

async fn run(
    config: LinkConfig,
    mut outbound: mpsc::Receiver<DoorToHub>,
    events: mpsc::Sender<LinkEvent>,
    shutdown: CancellationToken,
) {
    let mut backoff = config.backoff.clone();
    loop {
        // Set when the hub accepts our hello: only time spent connected counts as stable.
        let mut up_since = None;
        let ended = tokio::select! {
            _ = shutdown.cancelled() => Ended::Shutdown,
            ended = session(&config, &mut outbound, &events, &shutdown, &mut up_since) => ended,
        };
        let event = match ended {
            Ended::Shutdown => return,
            Ended::Lost(reason) => LinkEvent::Down { reason },
            Ended::Refused(reason) => LinkEvent::Refused { reason },
        };
        if events.send(event).await.is_err() {
            return;
        }
        backoff.connection_ended(
            up_since.map_or(Duration::ZERO, |t: tokio::time::Instant| t.elapsed()),
        );
        let delay = backoff.next_delay(&mut rand::rng());
        tracing::info!("reconnecting to the hub in {:.1} s", delay.as_secs_f64());
        // Messages queued while disconnected are about calls that are already over.
        while outbound.try_recv().is_ok() {}
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection, from handshake until it is lost.
async fn session(
    config: &LinkConfig,
    outbound: &mut mpsc::Receiver<DoorToHub>,
    events: &mpsc::Sender<LinkEvent>,
    shutdown: &CancellationToken,
    up_since: &mut Option<tokio::time::Instant>,
) -> Ended {
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_message_size = Some(MAX_MESSAGE_BYTES);
    ws_config.max_frame_size = Some(MAX_MESSAGE_BYTES);
    ws_config.read_buffer_size = READ_BUFFER_BYTES;
    let connector = match tls_connector(config) {
        Ok(connector) => connector,
        Err(e) => return Ended::Refused(e),
    };
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        &config.url,
        Some(ws_config),
        true,
        Some(connector),
    );
    let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return Ended::Lost(format!("cannot connect to {}: {e}", config.url)),
        Err(_) => return Ended::Lost(format!("connecting to {} timed out", config.url)),
    };

    let hello = DoorToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        door_id: doorbell_protocol::DoorId::new(&config.door_id),
        secret: config.secret.clone(),
        software: config.software.clone(),
    };
    if let Err(e) = send(&mut ws, &hello).await {
        return Ended::Lost(e);
    }

    let welcome = tokio::time::timeout(WELCOME_TIMEOUT, next_message(&mut ws)).await;
    match welcome {
        Ok(Ok(HubToDoor::Welcome {
            door_name,
            ice_servers,
            ..
        })) => {
            tracing::info!(door = %config.door_id, "connected to the hub as {door_name:?}");
            *up_since = Some(tokio::time::Instant::now());
            if events
                .send(LinkEvent::Up {
                    door_name,
                    ice_servers,
                })
                .await
                .is_err()
            {
                return Ended::Shutdown;
            }
        }
        Ok(Ok(HubToDoor::Error(body))) => {
            return Ended::Refused(LinkError::Refused {
                code: body.code,
                message: body.message,
            })
        }
        Ok(Ok(other)) => return Ended::Lost(format!("expected welcome, got {other:?}")),
        Ok(Err(e)) => return Ended::Lost(e),
        Err(_) => return Ended::Lost("hub did not answer hello in time".into()),
    }

    let keepalive = config.keepalive.max(Duration::from_millis(100));
    let dead_after = keepalive * DEAD_AFTER_KEEPALIVES;
    let mut last_heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(last_heard + keepalive, keepalive);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = ws.close(None).await;
                return Ended::Shutdown;
            }
            // Writes are bounded too: on a dead route a full socket buffer must not stall the
            // loop past the point where the link counts as dead.
            message = outbound.recv() => {
                let Some(message) = message else { return Ended::Shutdown };
                match tokio::time::timeout(dead_after, send(&mut ws, &message)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Ended::Lost(e),
                    Err(_) => return Ended::Lost("sending to the hub stalled".into()),
                }
            }
            _ = ping.tick() => {
                let ping = ws.send(Message::Ping(Default::default()));
                match tokio::time::timeout(dead_after, ping).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Ended::Lost(format!("ping to hub failed: {e}")),
                    Err(_) => return Ended::Lost("sending to the hub stalled".into()),
                }
            }
            _ = tokio::time::sleep_until(last_heard + dead_after) => {
                return Ended::Lost(format!(
                    "no frame from the hub for {:.1} s",
                    dead_after.as_secs_f64()
                ));
            }
            // `next` is cancel-safe: a frame is either returned or stays buffered.
            frame = ws.next() => {
                last_heard = tokio::time::Instant::now();
                match decode_frame(frame) {
                    Frame::Message(message) => {
                        if events.send(LinkEvent::Message(message)).await.is_err() {
                            return Ended::Shutdown;
                        }
                    }
                    // Pings are answered by tungstenite; any frame proves the hub is there.
                    Frame::Other => {}
                    Frame::Lost(e) => return Ended::Lost(e),
                }
            }
        }
    }
}

/// TLS settings for `wss://`: the public web roots, plus the hub's own certificate when it is
/// self-signed (`hub.ca_file`).
fn tls_connector(config: &LinkConfig) -> Result<tokio_tungstenite::Connector, LinkError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &config.ca_file {
        let ca_file = |problem: String| LinkError::CaFile {
            path: path.clone(),
            problem,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ca_file(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_file("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_file(e.to_string()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LinkError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
        tls,
    )))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, message: &DoorToHub) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| format!("cannot encode: {e}"))?;
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("send to hub failed: {e}"))
}

enum Frame {
    Message(HubToDoor),
    /// A control frame, or a message we cannot decode (logged).
    Other,
    Lost(String),
}

/// What one WebSocket frame means to the link. A frame we cannot decode is logged and skipped
/// (a newer hub may send a message this door does not know yet).
fn decode_frame(frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Frame {
    match frame {
        None => Frame::Lost("hub closed the connection".into()),
        Some(Err(e)) => Frame::Lost(format!("hub connection error: {e}")),
        Some(Ok(Message::Text(text))) => match serde_json::from_str::<HubToDoor>(&text) {
            Ok(message) => Frame::Message(message),
            Err(e) => {
                tracing::warn!("ignoring a message from the hub we cannot decode: {e}");
                Frame::Other
            }
        },
        Some(Ok(Message::Close(frame))) => {
            Frame::Lost(format!("hub closed the connection: {frame:?}"))
        }
        Some(Ok(_)) => Frame::Other,
    }
}

/// Next protocol message, skipping control frames.
async fn next_message(ws: &mut Ws) -> Result<HubToDoor, String> {
    loop {
        match decode_frame(ws.next().await) {
            Frame::Message(message) => return Ok(message),
            Frame::Other => {}
            Frame::Lost(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A hub that accepts one door, welcomes it, then either keeps reading (so tungstenite
    /// answers the door's pings) or goes silent (holds the socket and never reads: a dead
    /// route). Returns the URL.
    async fn fake_hub(answer_pings: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let _hello = ws.next().await;
            let welcome = HubToDoor::Welcome {
                protocol_version: PROTOCOL_VERSION,
                door_name: "Front door".into(),
                ice_servers: Vec::new(),
            };
            let text = serde_json::to_string(&welcome).unwrap();
            ws.send(Message::text(text)).await.unwrap();
            if answer_pings {
                while let Some(Ok(_)) = ws.next().await {}
            } else {
                std::future::pending::<()>().await;
            }
        });
        url
    }

    /// The link, up; keep the handle (dropping it ends the link).
    async fn start_link(url: String) -> (mpsc::Receiver<LinkEvent>, CancellationToken, LinkHandle) {
        let (tx, mut rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let config = LinkConfig {
            url,
            door_id: "d-front".into(),
            secret: "s".into(),
            software: "test".into(),
            ca_file: None,
            keepalive: Duration::from_millis(100),
            backoff: Backoff::default(),
        };
        let (handle, _task) = spawn(config, tx, shutdown.clone());
        let up = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(up, Ok(Some(LinkEvent::Up { .. }))), "{up:?}");
        (rx, shutdown, handle)
    }

    #[tokio::test]
    async fn a_silent_hub_is_dropped_by_the_keepalive() {
        let (mut events, shutdown, _link) = start_link(fake_hub(false).await).await;
        let down = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
        match down {
            Ok(Some(LinkEvent::Down { reason })) => {
                assert!(reason.contains("no frame"), "{reason}")
            }
            other => panic!("expected the link to be declared dead, got {other:?}"),
        }
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_quiet_but_healthy_hub_is_kept() {
        let (mut events, shutdown, _link) = start_link(fake_hub(true).await).await;
        // Ten keepalive intervals with no protocol message at all: the pongs keep it alive.
        let quiet = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
        assert!(quiet.is_err(), "the link should stay up, got {quiet:?}");
        shutdown.cancel();
    }
}
