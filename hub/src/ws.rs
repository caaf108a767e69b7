//! One WebSocket connection: upgrade limits, the `hello` handshake, then a loop that reads
//! frames into the switchboard, writes the peer's outgoing queue, pings, and closes on idle,
//! slow consumption, or shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use doorbell_protocol::{
    DoorId, DoorToHub, ErrorBody, ErrorCode, HubToPhone, PhoneToHub, MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
};
use futures_util::future::BoxFuture;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

mod hello;

use self::hello::{parse_hello, Hello};
use crate::limits::PendingTicket;
use crate::ratelimit::TokenBucket;
use crate::router::ConnId;
use crate::state::{AppState, Client, HubState};
use crate::store::{now_ms, StoreCallError};
use crate::switchboard::{Outbound, PeerHandle, OUTBOUND_QUEUE};

/// Initial read buffer of every idle door (a ring fits; a longer message grows it as it is read).
pub(crate) const READ_BUFFER: usize = 256;
/// Bytes buffered before a write goes to the socket. Every send flushes anyway, so this only
/// batches within one message.
pub(crate) const WRITE_BUFFER: usize = 8 * 1024;
/// Upper bound of the write buffer when the socket is not accepting data: one full message
/// plus the batch above; past this the send fails and the connection ends.
pub(crate) const MAX_WRITE_BUFFER: usize = WRITE_BUFFER + 2 * MAX_MESSAGE_BYTES;
/// A single socket write that takes longer than this means the peer stopped reading; the
/// connection is dropped instead of holding its task forever.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// After sending a close frame, how long to wait for the peer's close reply.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Messages a peer may send in a burst, and the sustained rate. A call is a ring, an SDP and a
/// few dozen ICE candidates; more than this is a bug or abuse, answered with `rate_limited`.
pub(crate) const MESSAGE_BURST: u32 = 200;
pub(crate) const MESSAGES_PER_SECOND: u32 = 50;

/// Close codes (RFC 6455 section 7.4.1).
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INTERNAL: u16 = 1011;
const CLOSE_TRY_AGAIN: u16 = 1013;

/// `GET /ws`.
pub(crate) async fn upgrade(
    State(app): State<AppState>,
    Extension(Client { ip, slots }): Extension<Client>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    if app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down").into_response();
    }
    // Through a trusted proxy the TCP connection is the proxy's: the client's address share
    // is taken here instead.
    let client_slot = match app.hub.limits.admit_proxied_websocket(peer.ip(), ip) {
        Ok(slot) => slot,
        Err(why) => return (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    };
    // Until its hello, the socket holds a place in the small pending pool only.
    let pending = match app.hub.limits.admit_upgrade(ip) {
        Ok(pending) => pending,
        Err(why) => return (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    };
    // Tracked from now on, so shutdown waits for this connection too.
    let tracked = app.tracker.token();
    let hub = app.hub.clone();
    let shutdown = app.shutdown.clone();
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _held = (tracked, slots, client_slot);
            run(hub, socket, shutdown, pending).await;
        })
}

/// Both `HubToDoor::Error` and `HubToPhone::Error` serialize to this same object, so before
/// the peer's role is known either type will do.
fn error_text(code: ErrorCode, message: &str) -> String {
    let msg = HubToPhone::Error(ErrorBody {
        code,
        message: message.to_owned(),
        call_id: None,
    });
    serde_json::to_string(&msg).unwrap_or_default()
}

/// Sends one frame, giving up after [`SEND_TIMEOUT`].
async fn send(socket: &mut WebSocket, msg: Message) -> Result<(), ()> {
    match timeout(SEND_TIMEOUT, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Sends a close frame, waits briefly for the reply. Boxed: inline it would grow every task.
fn close<'a>(socket: &'a mut WebSocket, code: u16, reason: &'static str) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        if send(socket, Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let _ = timeout(CLOSE_GRACE, async {
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    })
}

/// The result of a blocking authentication, or None after refusing the connection because
/// the check could not run (database error, or the blocking task failed). Wrong credentials
/// are not decided here: the caller refuses those with its own message.
async fn auth_ran<T>(
    socket: &mut WebSocket,
    conn: ConnId,
    who: &'static str,
    outcome: Result<T, StoreCallError>,
) -> Option<T> {
    let e = match outcome {
        Ok(value) => return Some(value),
        Err(e) => e,
    };
    tracing::error!(conn, "{who} authentication failed: {e}");
    refuse(
        socket,
        ErrorCode::Internal,
        e.client_message(),
        "internal error",
    )
    .await;
    None
}

async fn refuse(
    socket: &mut WebSocket,
    code: ErrorCode,
    message: &str,
    close_reason: &'static str,
) {
    if send(socket, Message::Text(error_text(code, message).into()))
        .await
        .is_ok()
    {
        let close_code = if code == ErrorCode::Internal {
            CLOSE_INTERNAL
        } else {
            CLOSE_POLICY
        };
        close(socket, close_code, close_reason).await;
    }
}

/// How tungstenite's "message or frame too big" error (`Error::Capacity`) displays. axum wraps
/// that error without re-exporting its type, so its text is what there is to recognise; the
/// test `oversized_frame_closes_that_connection_only` in `hub/tests/signaling.rs` (close code
/// 1009) fails if an upgrade changes it.
const TOO_BIG_DISPLAY: &str = "Space limit exceeded";

/// Whether a read error is tungstenite refusing an oversized message or frame.
fn is_too_big(err: &axum::Error) -> bool {
    err.to_string().starts_with(TOO_BIG_DISPLAY)
}

/// The peer's role once authenticated.
enum Role {
    Door(DoorId),
    Phone,
}

/// The reply to a frame that did not decode: `invalid_id` / `invalid_text` when a field broke
/// the protocol's limits, else `bad_message`.
fn decode_error_text(error: &serde_json::Error, what: &str) -> String {
    let message = error.to_string();
    let code = ErrorCode::for_decode_error(&message);
    error_text(code, &format!("{what}: {message}"))
}

async fn run(
    hub: Arc<HubState>,
    mut socket: WebSocket,
    shutdown: CancellationToken,
    pending: PendingTicket,
) {
    let conn = hub.switchboard.next_conn_id();
    // --- handshake ---
    let first = tokio::select! {
        _ = shutdown.cancelled() => {
            close(&mut socket, CLOSE_GOING_AWAY, "hub shutting down").await;
            return;
        }
        _ = pending.evicted.cancelled() => {
            tracing::debug!(conn, "no hello yet and the pending pool is full; closing");
            close(&mut socket, CLOSE_TRY_AGAIN, "too many connections without hello").await;
            return;
        }
        first = timeout(hub.timings.handshake, first_frame(&mut socket)) => first,
    };
    let text = match first {
        Err(_elapsed) => {
            tracing::debug!(conn, "no hello in time");
            refuse(
                &mut socket,
                ErrorCode::HelloRequired,
                "no hello in time",
                "hello timeout",
            )
            .await;
            return;
        }
        Ok(None) => return,
        Ok(Some(text)) => text,
    };
    let hello = parse_hello(&text);
    // A door or phone hello takes a WebSocket slot, held until this function returns.
    let authenticating = matches!(hello, Hello::Door { .. } | Hello::Phone { .. });
    let slot = authenticating.then(|| hub.limits.take_websocket());
    if slot.as_ref().is_some_and(Option::is_none) {
        let why = "the hub is full; try again later";
        refuse(&mut socket, ErrorCode::Internal, why, "hub full").await;
        return;
    }
    let role = match hello {
        Hello::Other => {
            refuse(
                &mut socket,
                ErrorCode::HelloRequired,
                "the first message must be a door or phone hello",
                "hello required",
            )
            .await;
            return;
        }
        Hello::Invalid(code, message) => {
            refuse(&mut socket, code, &message, "invalid hello").await;
            return;
        }
        Hello::WrongVersion(v) => {
            let message = format!(
                "protocol version {v} is not supported; this hub speaks {PROTOCOL_VERSION}"
            );
            refuse(
                &mut socket,
                ErrorCode::UnsupportedVersion,
                &message,
                "unsupported version",
            )
            .await;
            return;
        }
        Hello::Door {
            door_id,
            secret,
            software,
        } => {
            let id = door_id.clone();
            let auth = hub
                .store
                .call(move |store| store.authenticate_door(&id, &secret))
                .await;
            let Some(auth) = auth_ran(&mut socket, conn, "door", auth).await else {
                return;
            };
            match auth {
                Some(name) => {
                    tracing::info!(conn, door = %door_id, %software, "door connected");
                    hub.switchboard
                        .recorder()
                        .door_seen(door_id.clone(), software, now_ms());
                    let (peer, rx, kick) = peer_handle();
                    hub.door_pairing
                        .door_connected(conn, door_id.clone(), peer.tx.clone());
                    hub.switchboard
                        .door_connected(conn, peer, door_id.clone(), name);
                    (Role::Door(door_id), rx, kick)
                }
                None => {
                    tracing::info!(conn, door = %door_id, "door hello with unknown id or wrong secret");
                    refuse(
                        &mut socket,
                        ErrorCode::Unauthorized,
                        "unknown door or wrong secret",
                        "unauthorized",
                    )
                    .await;
                    return;
                }
            }
        }
        Hello::Phone { token } => {
            let auth = hub
                .store
                .call(move |store| store.authenticate_phone(&token))
                .await;
            let Some(auth) = auth_ran(&mut socket, conn, "phone", auth).await else {
                return;
            };
            match auth {
                Some(phone) => {
                    tracing::info!(conn, phone = %phone.phone_id, "phone connected");
                    hub.switchboard
                        .recorder()
                        .phone_seen(phone.phone_id.clone(), now_ms());
                    let (peer, rx, kick) = peer_handle();
                    hub.switchboard.phone_connected(
                        conn,
                        peer,
                        phone.phone_id,
                        phone.doors,
                        phone.access,
                    );
                    (Role::Phone, rx, kick)
                }
                None => {
                    tracing::info!(conn, "phone hello with unknown token");
                    refuse(
                        &mut socket,
                        ErrorCode::Unauthorized,
                        "unknown phone token; pair again",
                        "unauthorized",
                    )
                    .await;
                    return;
                }
            }
        }
    };
    let (role, rx, kick) = role;
    drop(pending);
    // From here on the switchboard knows this connection; the guard tells it when we are gone,
    // whichever way this function ends.
    let _registered = Registered {
        hub: hub.clone(),
        conn,
    };
    pump(&hub, conn, role, &mut socket, rx, kick, shutdown).await;
}

/// Tells the switchboard that a connection ended, on drop.
struct Registered {
    hub: Arc<HubState>,
    conn: ConnId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.hub.door_pairing.disconnected(self.conn);
        self.hub.switchboard.disconnected(self.conn);
    }
}

fn peer_handle() -> (PeerHandle, mpsc::Receiver<Outbound>, CancellationToken) {
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let kick = CancellationToken::new();
    (
        PeerHandle {
            tx,
            kick: kick.clone(),
        },
        rx,
        kick,
    )
}

/// Waits for the first text frame; `None` if the peer closed, sent binary, or failed.
async fn first_frame(socket: &mut WebSocket) -> Option<String> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return Some(text.to_string()),
            // Pings before hello are answered by tungstenite and otherwise ignored.
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            // Binary first: not a hello; the caller answers hello_required.
            Ok(Message::Binary(_)) => return Some(String::new()),
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// The authenticated connection's main loop.
async fn pump(
    hub: &HubState,
    conn: ConnId,
    role: Role,
    socket: &mut WebSocket,
    mut rx: mpsc::Receiver<Outbound>,
    kick: CancellationToken,
    shutdown: CancellationToken,
) {
    let timings = hub.timings;
    let mut ping = tokio::time::interval_at(
        Instant::now() + timings.ping_interval,
        timings.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = tokio::time::sleep(timings.idle);
    tokio::pin!(idle);
    let mut bucket = TokenBucket::new(
        MESSAGE_BURST,
        MESSAGES_PER_SECOND,
        std::time::Instant::now(),
    );

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                close(socket, CLOSE_GOING_AWAY, "hub shutting down").await;
                return;
            }
            _ = kick.cancelled() => {
                tracing::info!(conn, "disconnecting a peer that does not read its messages");
                close(socket, CLOSE_POLICY, "not reading messages").await;
                return;
            }
            out = rx.recv() => match out {
                Some(Outbound::Text(text)) => {
                    if send(socket, Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    close(socket, code, reason).await;
                    return;
                }
                None => return,
            },
            _ = &mut idle => {
                tracing::info!(conn, "no frames from the peer for {:?}; dropping it", timings.idle);
                close(socket, CLOSE_GOING_AWAY, "idle timeout").await;
                return;
            }
            _ = ping.tick() => {
                if send(socket, Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            frame = socket.recv() => {
                idle.as_mut().reset(Instant::now() + timings.idle);
                let text = match frame {
                    None => return,
                    Some(Err(e)) => {
                        if is_too_big(&e) {
                            tracing::info!(conn, "peer sent a message over {MAX_MESSAGE_BYTES} bytes; closing");
                            close(socket, CLOSE_TOO_BIG, "message too big").await;
                        }
                        return;
                    }
                    Some(Ok(Message::Close(_))) => {
                        // tungstenite queued the close reply; flush it before we drop the socket.
                        let _ = timeout(CLOSE_GRACE, socket.flush()).await;
                        return;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => None,
                    Some(Ok(Message::Text(text))) => Some(text),
                };
                if !bucket.try_take(std::time::Instant::now()) {
                    let reply = error_text(ErrorCode::RateLimited, "too many messages; slow down");
                    if send(socket, Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                    continue;
                }
                let reply = match (text, &role) {
                    (None, _) => Some(error_text(ErrorCode::BadMessage, "binary frames are not accepted; send JSON text")),
                    (Some(text), Role::Door(door_id)) => match serde_json::from_str::<DoorToHub>(&text) {
                        Ok(DoorToHub::Hello { .. }) => Some(error_text(ErrorCode::AlreadyAuthenticated, "already authenticated")),
                        Ok(DoorToHub::Ring { call_id }) => {
                            // Who is quiet and who push reaches is in the store; read it
                            // before routing (this door's next message waits, in order).
                            match Box::pin(crate::quiet::roster::load(&hub.store, door_id, now_ms())).await {
                                Ok(roster) => hub.switchboard.door_ring(conn, call_id, roster),
                                Err(e) => {
                                    // Ring the open pages rather than nobody.
                                    tracing::error!(error = %e, "reading the door's phones failed; ringing open pages only");
                                    hub.switchboard.door_message(conn, DoorToHub::Ring { call_id });
                                }
                            }
                            None
                        }
                        Ok(msg @ (DoorToHub::PairAccepted { .. } | DoorToHub::PairRefused { .. })) => {
                            hub.door_pairing.answer(door_id, msg);
                            None
                        }
                        Ok(msg) => {
                            hub.switchboard.door_message(conn, msg);
                            None
                        }
                        Err(e) => Some(decode_error_text(&e, "not a door message")),
                    },
                    (Some(text), Role::Phone) => match serde_json::from_str::<PhoneToHub>(&text) {
                        Ok(PhoneToHub::Hello { .. }) => Some(error_text(ErrorCode::AlreadyAuthenticated, "already authenticated")),
                        Ok(msg) => {
                            hub.switchboard.phone_message(conn, msg);
                            None
                        }
                        Err(e) => Some(decode_error_text(&e, "not a phone message")),
                    },
                };
                if let Some(reply) = reply {
                    if send(socket, Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the text `is_too_big` matches to the error axum hands back for an oversized
    /// message (tungstenite through the dev-dependency, the version axum uses).
    #[test]
    fn an_oversized_message_is_recognised_from_axums_error() {
        use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
        let too_big = Error::Capacity(CapacityError::MessageTooLong {
            size: MAX_MESSAGE_BYTES + 1,
            max_size: MAX_MESSAGE_BYTES,
        });
        assert!(is_too_big(&axum::Error::new(too_big)));
        assert!(!is_too_big(&axum::Error::new(Error::ConnectionClosed)));
    }
}
