//! The certificate the TLS acceptor serves under ACME: the current one, replaced atomically
//! when a renewal lands (connections already open keep theirs), and the TLS-ALPN-01 challenge
//! certificates, served only to a client that asks for nothing but `acme-tls/1` (RFC 8737).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::AcmeError;

/// The ALPN protocol of TLS-ALPN-01 validation connections.
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Debug, Default)]
pub(crate) struct CertResolver {
    /// What every ordinary handshake gets; `None` until the first certificate is obtained
    /// (handshakes fail meanwhile: there is nothing trustworthy to offer).
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// Challenge certificates by lowercase DNS name, present only while an order is validated.
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl CertResolver {
    pub(crate) fn set_current(&self, certified: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(certified);
    }

    /// Serves a challenge certificate for `domain` until the returned guard is dropped.
    pub(crate) fn add_challenge(
        &self,
        domain: &str,
        digest: &[u8],
    ) -> Result<ChallengeGuard<'_>, AcmeError> {
        let certified = challenge_certificate(domain, digest)?;
        let domain = domain.to_ascii_lowercase();
        self.challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(domain.clone(), Arc::new(certified));
        Ok(ChallengeGuard {
            resolver: self,
            domain,
        })
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if is_challenge_hello(&hello) {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self
                .challenges
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&name)
                .cloned();
        }
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A validation handshake offers exactly one protocol, `acme-tls/1`. A client offering it among
/// others would be handed `http/1.1` by the acceptor, so it must get the real certificate.
fn is_challenge_hello(hello: &ClientHello<'_>) -> bool {
    let Some(mut offered) = hello.alpn() else {
        return false;
    };
    offered.next() == Some(ACME_TLS_ALPN) && offered.next().is_none()
}

/// True for a finished TLS-ALPN-01 validation handshake: the connection carries no HTTP and is
/// closed at once (RFC 8737 §3).
pub(crate) fn is_challenge_connection(conn: &rustls::ServerConnection) -> bool {
    conn.alpn_protocol() == Some(ACME_TLS_ALPN)
}

/// Removes its challenge certificate when the order is done, failed or abandoned.
pub(crate) struct ChallengeGuard<'a> {
    resolver: &'a CertResolver,
    domain: String,
}

impl Drop for ChallengeGuard<'_> {
    fn drop(&mut self) {
        self.resolver
            .challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.domain);
    }
}

/// RFC 8737 §3: a self-signed certificate naming only `domain`, with the critical
/// acmeIdentifier extension holding SHA-256 of the key authorization.
fn challenge_certificate(domain: &str, digest: &[u8]) -> Result<CertifiedKey, AcmeError> {
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(AcmeError::ChallengeKey)?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_certificates_live_as_long_as_their_guard() {
        let resolver = CertResolver::default();
        {
            let _guard = resolver
                .add_challenge("Hub.Example.NET", &[7; 32])
                .expect("challenge");
            let challenges = resolver.challenges.read().expect("lock");
            let cert = challenges.get("hub.example.net").expect("lowercase key");
            let (_, parsed) =
                x509_parser::parse_x509_certificate(cert.cert[0].as_ref()).expect("parse");
            let ext = parsed
                .extensions()
                .iter()
                .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
                .expect("acmeIdentifier extension");
            assert!(ext.critical, "RFC 8737 requires it critical");
            // OCTET STRING (0x04), 32 bytes, the digest.
            assert_eq!(&ext.value[..2], &[0x04, 32]);
            assert_eq!(&ext.value[2..], &[7; 32]);
        }
        assert!(resolver.challenges.read().expect("lock").is_empty());
    }
}
