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
use crate::state::{AppState, HubState, MAX_WS_CONNECTIONS};
use crate::tls::TlsSetup;

/// Open TCP connections (HTTP and WebSocket together). WebSockets are limited separately
/// ([`MAX_WS_CONNECTIONS`]); the headroom is for page loads and pairing. Past this,
/// new sockets are closed at once so a flood cannot exhaust file descriptors.
pub(crate) const MAX_TCP_CONNECTIONS: usize = MAX_WS_CONNECTIONS + 256;
/// A TLS handshake that takes longer is a stalled or malicious client.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a client to send its request headers (slowloris protection).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
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
    let tcp_slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
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
            tracing::warn!(%peer, "connection limit reached; closing a new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(
            stream,
            peer,
            app.clone(),
            hub.tls.clone(),
            shutdown.clone(),
            permit,
        ));
    }

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

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    tls: Option<TlsSetup>,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    match tls {
        None => serve_http(stream, peer, app, shutdown).await,
        Some(tls) => {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)) => accepted,
            };
            match accepted {
                // A CA's TLS-ALPN-01 validation: the handshake was the whole exchange.
                Ok(Ok(stream)) if crate::acme::is_challenge_connection(stream.get_ref().1) => {}
                Ok(Ok(stream)) => serve_http(stream, peer, app, shutdown).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<S>(stream: S, peer: SocketAddr, app: axum::Router, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
