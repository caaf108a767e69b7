//! Uploads the visitor's snapshot to the hub: `POST /api/snapshots` with the door's id and
//! secret (docs/PROTOCOL.md "Snapshots and history"), over the hub URL's own TLS trust
//! (`hub.ca_file` or the system roots). One request per press on a fresh connection: presses
//! are rare, and a pooled connection would only go stale between them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use doorbell_protocol::CallId;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The whole upload (connect, TLS, send, answer). A snapshot that takes longer on a home
/// link is no longer news for the ringing screen; a missed ring's is retried later.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest error body read back from the hub (it sends a short JSON error).
const MAX_ERROR_BODY: usize = 4096;

/// What is sent: the press's picture or the visitor's voice message (uploads), or a phone's
/// quick reply (fetched: `GET /api/replies/<id>`).
#[derive(Debug, Clone, Copy)]
enum Upload {
    Snapshot,
    Voice,
    FetchReply(u64),
}

/// Largest quick reply read back (the hub stores at most 256 KiB).
const MAX_REPLY_BODY: usize = 512 * 1024;

/// Which press a snapshot belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotTarget {
    /// The ring of this call.
    Call(CallId),
    /// A press reported as `missed_ring { at_ms }`.
    MissedRing(u64),
}

impl SnapshotTarget {
    fn query(&self) -> String {
        match self {
            SnapshotTarget::Call(call) => {
                // Call ids are the door's own `c-<hex>-<n>`; encode anyway.
                let id: String = call
                    .as_str()
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("call_id={id}")
            }
            SnapshotTarget::MissedRing(at_ms) => format!("missed_at_ms={at_ms}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("hub URL {0:?} is not ws://, wss://, http:// or https:// with a host")]
    BadUrl(String),
    #[error("cannot reach the hub: {0}")]
    Connect(String),
    #[error("the upload did not finish within {UPLOAD_TIMEOUT:?}")]
    Timeout,
    /// The hub refused this snapshot (bad credentials, too large, not a JPEG, a bad time):
    /// sending it again will not help.
    #[error("the hub refused the snapshot ({status}): {body}")]
    Refused { status: u16, body: String },
    /// The hub failed (5xx) or the connection broke: worth another try later.
    #[error("the hub could not take the snapshot ({0}); try again later")]
    Transient(String),
}

impl UploadError {
    /// Whether a later attempt may succeed (a missed ring's snapshot is kept for it).
    pub fn is_transient(&self) -> bool {
        !matches!(self, UploadError::Refused { .. } | UploadError::BadUrl(_))
    }
}

/// Where and as whom snapshots are uploaded.
#[derive(Clone)]
pub struct SnapshotUploader {
    tls: bool,
    host: String,
    port: u16,
    door_id: String,
    secret: String,
    client_tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for SnapshotUploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotUploader")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("door_id", &self.door_id)
            .finish_non_exhaustive()
    }
}

impl SnapshotUploader {
    /// For the hub at `hub_url` (the link's `wss://host[:port]/ws`, or an `https://` base).
    pub fn new(
        hub_url: &str,
        door_id: &str,
        secret: &str,
        client_tls: Arc<rustls::ClientConfig>,
    ) -> Result<SnapshotUploader, UploadError> {
        let bad = || UploadError::BadUrl(hub_url.to_owned());
        let (tls, rest) = if let Some(rest) = hub_url.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = hub_url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = hub_url.strip_prefix("ws://") {
            (false, rest)
        } else if let Some(rest) = hub_url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let authority = rest.split(['/', '?', '#']).next().ok_or_else(bad)?;
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or_else(bad)?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse().map_err(|_| bad())?,
                    None => default_port,
                };
                (host.to_owned(), port)
            }
            None => match authority.rsplit_once(':') {
                Some((host, p)) => (host.to_owned(), p.parse().map_err(|_| bad())?),
                None => (authority.to_owned(), default_port),
            },
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(SnapshotUploader {
            tls,
            host,
            port,
            door_id: door_id.to_owned(),
            secret: secret.to_owned(),
            client_tls,
        })
    }

    /// Uploads `jpeg` for `target`, bounded by [`UPLOAD_TIMEOUT`].
    pub async fn upload(&self, target: &SnapshotTarget, jpeg: Vec<u8>) -> Result<(), UploadError> {
        self.upload_to(Upload::Snapshot, target, jpeg).await
    }

    /// Uploads the visitor's voice message (Opus in Ogg) of `target` (`POST /api/voice`).
    pub async fn upload_voice(
        &self,
        target: &SnapshotTarget,
        ogg: Vec<u8>,
    ) -> Result<(), UploadError> {
        self.upload_to(Upload::Voice, target, ogg).await
    }

    /// Fetches quick reply `reply_id` (a phone sent it in this door's call) with the door's
    /// credentials.
    pub async fn fetch_reply(&self, reply_id: u64) -> Result<Vec<u8>, UploadError> {
        let target = SnapshotTarget::MissedRing(0); // unused by a fetch
        tokio::time::timeout(
            UPLOAD_TIMEOUT,
            self.upload_unbounded(Upload::FetchReply(reply_id), &target, Vec::new()),
        )
        .await
        .map_err(|_| UploadError::Timeout)?
    }

    async fn upload_to(
        &self,
        kind: Upload,
        target: &SnapshotTarget,
        body: Vec<u8>,
    ) -> Result<(), UploadError> {
        tokio::time::timeout(UPLOAD_TIMEOUT, self.upload_unbounded(kind, target, body))
            .await
            .map_err(|_| UploadError::Timeout)?
            .map(drop)
    }

    async fn upload_unbounded(
        &self,
        kind: Upload,
        target: &SnapshotTarget,
        jpeg: Vec<u8>,
    ) -> Result<Vec<u8>, UploadError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| UploadError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        if !self.tls {
            return self.send(tcp, kind, target, jpeg).await;
        }
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|_| UploadError::BadUrl(self.host.clone()))?;
        let stream = tokio_rustls::TlsConnector::from(self.client_tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| UploadError::Connect(format!("TLS: {e}")))?;
        self.send(stream, kind, target, jpeg).await
    }

    async fn send<S>(
        &self,
        stream: S,
        kind: Upload,
        target: &SnapshotTarget,
        jpeg: Vec<u8>,
    ) -> Result<Vec<u8>, UploadError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UploadError::Connect(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let authority = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let (method, uri, content_type) = match kind {
            Upload::Snapshot => (
                hyper::Method::POST,
                format!("/api/snapshots?{}", target.query()),
                "image/jpeg",
            ),
            Upload::Voice => (
                hyper::Method::POST,
                format!("/api/voice?{}", target.query()),
                "audio/ogg",
            ),
            Upload::FetchReply(id) => (
                hyper::Method::GET,
                format!("/api/replies/{id}"),
                "application/octet-stream",
            ),
        };
        let request = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, authority)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}:{}", self.door_id, self.secret),
            )
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(jpeg)))
            .map_err(|e| UploadError::Transient(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| UploadError::Transient(e.to_string()));
        let result = match response {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    let body = http_body_util::Limited::new(response.into_body(), MAX_REPLY_BODY)
                        .collect()
                        .await
                        .map_err(|e| UploadError::Transient(e.to_string()))?;
                    Ok(body.to_bytes().to_vec())
                } else {
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let body = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)])
                        .into_owned();
                    let code = status.as_u16();
                    if status.is_server_error() || code == 408 || code == 429 {
                        Err(UploadError::Transient(format!("{code}: {body}")))
                    } else {
                        Err(UploadError::Refused { status: code, body })
                    }
                }
            }
            Err(e) => Err(e),
        };
        driver.abort();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls() -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    #[test]
    fn the_hub_url_gives_the_upload_origin() {
        let cases = [
            ("wss://hub.example:8443/ws", true, "hub.example", 8443),
            ("wss://hub.example/ws", true, "hub.example", 443),
            ("ws://127.0.0.1:9000/ws", false, "127.0.0.1", 9000),
            ("https://[::1]:8443", true, "::1", 8443),
        ];
        for (url, is_tls, host, port) in cases {
            let u = SnapshotUploader::new(url, "d", "s", tls()).expect(url);
            assert_eq!(
                (u.tls, u.host.as_str(), u.port),
                (is_tls, host, port),
                "{url}"
            );
        }
        for bad in ["ftp://x", "wss://", "wss://h:port/ws", "hub"] {
            assert!(
                SnapshotUploader::new(bad, "d", "s", tls()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn targets_become_the_documented_query() {
        assert_eq!(
            SnapshotTarget::Call(CallId::new("c-1a_2")).query(),
            "call_id=c-1a_2"
        );
        assert_eq!(
            SnapshotTarget::Call(CallId::new("a b&")).query(),
            "call_id=a%20b%26"
        );
        assert_eq!(SnapshotTarget::MissedRing(17).query(), "missed_at_ms=17");
    }
}
