//! The HTTPS client the ACME protocol runs over: one HTTP/1.1 connection per request (an
//! issuance is a dozen requests every few weeks, so pooling buys nothing), rustls with `ring`,
//! every request bounded in time and size. instant-acme's own client has no timeout, and a CA
//! that stalls must not stall renewal.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::task::AbortOnDropHandle;

use super::AcmeError;

/// Connect, TLS, request and the whole response. ACME replies are small and immediate; a slow
/// validation is polled, not waited for in one request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response read. A certificate chain is a few KiB; a directory or an order less.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;

type Error = instant_acme::Error;

#[derive(Clone)]
pub(crate) struct HttpsClient {
    tls: TlsConnector,
}

impl HttpsClient {
    /// Trusts the roots in `ca_file` (PEM), or Mozilla's roots (built in, so a device without
    /// a CA bundle can still reach Let's Encrypt).
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<HttpsClient, AcmeError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                let ca_err = |reason: String| AcmeError::CaFile {
                    path: path.to_owned(),
                    reason,
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| ca_err(e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(ca_err("no usable PEM certificate in it".into()));
                }
            }
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeError::CaFile {
            path: ca_file.unwrap_or(Path::new("(built-in roots)")).to_owned(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpsClient {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    async fn send(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Result<BytesResponse, Error> {
        let (mut parts, body) = request.into_parts();
        if parts.uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(Error::Str("the ACME server must be reached over https://"));
        }
        let authority = parts
            .uri
            .authority()
            .ok_or(Error::Str("URL without a host"))?
            .clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(443);
        let name = ServerName::try_from(host.to_owned()).map_err(|e| Error::Other(e.into()))?;
        let tcp = TcpStream::connect((host, port)).await.map_err(other)?;
        let _ = tcp.set_nodelay(true);
        let tls = self.tls.connect(name, tcp).await.map_err(other)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(other)?;
        // Drives the connection; dropped (and so closed) with this request.
        let _conn = AbortOnDropHandle::new(tokio::spawn(conn));
        // HTTP/1.1 wants origin-form and a Host header.
        parts.uri = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e: http::uri::InvalidUri| Error::Other(e.into()))?;
        let host_header =
            http::HeaderValue::from_str(authority.as_str()).map_err(|e| Error::Other(e.into()))?;
        parts.headers.insert(http::header::HOST, host_header);
        let response = sender
            .send_request(http::Request::from_parts(parts, body))
            .await
            .map_err(other)?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(Error::Other)?
            .to_bytes();
        Ok(BytesResponse {
            parts,
            body: Box::new(body),
        })
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Other(Box::new(e))
}

impl instant_acme::HttpClient for HttpsClient {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let client = self.clone();
        Box::pin(async move {
            tokio::time::timeout(REQUEST_TIMEOUT, client.send(request))
                .await
                .unwrap_or(Err(Error::Str("the ACME server did not answer in time")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = HttpsClient::new(Some(&path)).err().expect("refused");
        assert!(err.to_string().contains("--acme-ca-file"), "{err}");
        let err = HttpsClient::new(Some(&dir.path().join("missing.pem")))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        assert!(HttpsClient::new(None).is_ok(), "built-in roots");
    }
}
