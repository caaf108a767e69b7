//! The accept loop: TCP (optionally TLS) connections served by hyper with the axum router,
//! and the drain procedure when shutdown is requested.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::http;
use crate::limits::{AddrKey, AddressSlot, IdleTimeoutBody, Refusal, REFUSAL_SUMMARY_INTERVAL};
use crate::state::{AppState, Client, HubState};
use crate::store::now_ms;

/// A TLS handshake that takes longer is a stalled or malicious client.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the history is pruned by the `[history]` limits (also at start). Limits are in
/// days and thousands of events; an hour's overshoot does not matter. Uploads prune too.
pub(crate) const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
pub(crate) const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) async fn run(
    hub: Arc<HubState>,
    listener: TcpListener,
    shutdown_signal: impl Future<Output = ()> + Send + 'static,
) {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let app = http::router(AppState {
        hub: hub.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    });
    tracker.spawn(prune_history(hub.clone(), shutdown.clone()));
    tracker.spawn(summarise_refusals(hub.clone(), shutdown.clone()));
    // Past the cap new sockets are closed at once, so a flood cannot exhaust descriptors.
    let tcp_slots = Arc::new(Semaphore::new(hub.limits.caps.connections));
    tokio::pin!(shutdown_signal);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown_signal => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = tcp_slots.clone().try_acquire_owned() else {
            hub.limits.refusals.record(Refusal::Connections);
            continue;
        };
        // A trusted proxy carries many clients; they are told apart per request instead.
        let address_slot = if hub.limits.is_trusted_proxy(peer.ip()) {
            None
        } else {
            match hub.limits.per_address.try_take(AddrKey::of(peer.ip())) {
                Some(slot) => Some(slot),
                None => {
                    hub.limits.refusals.record(Refusal::Address);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(
            stream,
            peer,
            app.clone(),
            hub.clone(),
            shutdown.clone(),
            (permit, address_slot),
        ));
    }

    hub.limits.refusals.flush();
    tracing::info!("shutting down: closing connections");
    drop(listener);
    shutdown.cancel();
    tracker.close();
    if timeout(hub.timings.drain, tracker.wait()).await.is_err() {
        tracing::warn!(
            remaining = tracker.len(),
            "connections still open after {:?}; stopping anyway",
            hub.timings.drain
        );
    }
}

/// Places a connection holds until it closes: one of the global cap, one of its address's.
type Slots = (OwnedSemaphorePermit, Option<AddressSlot>);

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    hub: Arc<HubState>,
    shutdown: CancellationToken,
    slots: Slots,
) {
    let slots: Arc<dyn std::any::Any + Send + Sync> = Arc::new(slots);
    match hub.tls.clone() {
        None => serve_http(stream, peer, app, &hub, slots, shutdown).await,
        Some(tls) => {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)) => accepted,
            };
            match accepted {
                // A CA's TLS-ALPN-01 validation: the handshake was the whole exchange.
                Ok(Ok(stream)) if crate::acme::is_challenge_connection(stream.get_ref().1) => {}
                Ok(Ok(stream)) => serve_http(stream, peer, app, &hub, slots, shutdown).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    app: axum::Router,
    hub: &Arc<HubState>,
    slots: Arc<dyn std::any::Any + Send + Sync>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let request_timeout = hub.limits.request_timeout;
    let limits_of = hub.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let client = Client {
            ip: limits_of.limits.client_of(peer.ip(), request.headers()),
            slots: slots.clone(),
        };
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        parts.extensions.insert(client);
        let body = axum::body::Body::new(IdleTimeoutBody::new(body, request_timeout));
        app.clone().oneshot(hyper::Request::from_parts(parts, body))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            // Finish the request in flight, then close; the caller bounds the wait.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Writes one line about refused connections every [`REFUSAL_SUMMARY_INTERVAL`] (if any).
async fn summarise_refusals(hub: Arc<HubState>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(REFUSAL_SUMMARY_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => hub.limits.refusals.flush(),
        }
    }
}

/// Prunes events and snapshots by the `[history]` limits now and every [`PRUNE_INTERVAL`],
/// until the hub shuts down.
async fn prune_history(hub: Arc<HubState>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let limits = hub.config.history;
        match hub
            .store
            .call(move |store| store.prune(&limits, now_ms()))
            .await
        {
            Ok(files) => {
                if !files.is_empty() {
                    tracing::info!(snapshots = files.len(), "history pruned");
                }
                let snapshots = hub.clone();
                let _ =
                    tokio::task::spawn_blocking(move || snapshots.snapshots.remove(&files)).await;
            }
            Err(e) => tracing::warn!(error = %e, "could not prune the history"),
        }
    }
}
