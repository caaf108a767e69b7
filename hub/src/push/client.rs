//! Outgoing HTTP for Web Push and ntfy: hyper's pooled client over rustls (`ring`, Mozilla's
//! root certificates), with a time limit on every request.
//!
//! The push client resolves names itself and drops every address that is not public
//! ([`PublicResolver`]), so an endpoint whose name points into the hub's own network (set up
//! that way, or changed after the phone subscribed) is never connected to. The hub connects
//! to exactly the addresses that passed, so a second lookup cannot swap them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::config::PushConfig;
use super::endpoint::ip_is_public;

/// TCP connect limit: a push service answers in milliseconds; one that does not is down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole request limit (connect, TLS, request, response): a ring lasts about 30 s, so a send
/// stuck longer than this is better retried on a fresh connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Response body bytes read (for the log line on an error); the rest is discarded.
pub const MAX_RESPONSE_BODY: usize = 4 * 1024;
/// Idle pooled connections kept per push service: rings come in bursts (one per phone).
const POOL_IDLE_PER_HOST: usize = 8;
/// How long an idle pooled connection is kept (push services close theirs after a minute or two).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A client whose names are resolved by `R`.
pub(crate) type HttpClient<R> = Client<HttpsConnector<HttpConnector<R>>, Full<Bytes>>;
/// For push endpoints (public addresses only).
pub(crate) type PushClient = HttpClient<PublicResolver>;
/// For the operator's own services (ntfy), which may well be on the LAN.
pub(crate) type PlainClient = HttpClient<GaiResolver>;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

/// A response, read.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The start of the body, for logs.
    pub body: String,
}

fn build<R>(mut http: HttpConnector<R>) -> Result<HttpClient<R>, rustls::Error>
where
    HttpsConnector<HttpConnector<R>>: Connect + Clone + Send + Sync + 'static,
{
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(https))
}

/// The client for push endpoints under `config`.
pub(crate) fn push_client(config: &PushConfig) -> Result<PushClient, rustls::Error> {
    build(HttpConnector::new_with_resolver(PublicResolver {
        config: Arc::new(config.clone()),
    }))
}

/// The client for ntfy.
pub(crate) fn plain_client() -> Result<PlainClient, rustls::Error> {
    build(HttpConnector::new())
}

/// Sends `request` and reads the response (body capped), all within [`REQUEST_TIMEOUT`].
pub(crate) async fn send<C>(
    client: &Client<C, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Response, RequestError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| RequestError::Failed(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        // Read (a bounded part of) the body so the connection can go back to the pool.
        let body = match Limited::new(body, MAX_RESPONSE_BODY).collect().await {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            Err(_) => String::new(),
        };
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| RequestError::Timeout(REQUEST_TIMEOUT))?
}

/// An error and its causes on one line ("client error (Connect): ... refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `Retry-After` as a delay from `now`: delta-seconds or an HTTP date (RFC 9110 10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Resolves names with the system resolver and keeps only public addresses (plus loopback
/// for the hosts in `[push] allow_insecure_endpoints`).
#[derive(Clone)]
pub(crate) struct PublicResolver {
    config: Arc<PushConfig>,
}

/// The addresses a push may go to.
pub(crate) fn allowed_addresses(
    addrs: impl Iterator<Item = SocketAddr>,
    loopback_ok: bool,
) -> Vec<SocketAddr> {
    addrs
        .filter(|a| ip_is_public(a.ip()) || loopback_ok && a.ip().is_loopback())
        .collect()
}

impl tower_service::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let loopback_ok = self.config.insecure_allowed(name.as_str());
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed = allowed_addresses(found, loopback_ok);
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{name} resolves only to non-public addresses; not sending there"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_survive_resolution() {
        let addrs: Vec<SocketAddr> = [
            "127.0.0.1:0",
            "10.0.0.1:0",
            "93.184.216.34:0",
            "[fe80::1]:0",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let kept = allowed_addresses(addrs.iter().copied(), false);
        assert_eq!(kept, [addrs[2]]);
        let kept = allowed_addresses(addrs.iter().copied(), true);
        assert_eq!(kept, [addrs[0], addrs[2]]);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            http::header::RETRY_AFTER,
            httpdate::fmt_http_date(now + Duration::from_secs(30))
                .parse()
                .unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        use tower_service::Service;
        let mut resolver = PublicResolver {
            config: Arc::new(PushConfig::default()),
        };
        let e = resolver
            .call("localhost".parse().unwrap())
            .await
            .expect_err("localhost is not public");
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    }
}
