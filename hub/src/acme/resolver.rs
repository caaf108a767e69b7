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
    use rustls::pki_types::ServerName;

    type Cert<'a> = rustls::pki_types::CertificateDer<'a>;
    type Dss = rustls::DigitallySignedStruct;
    type Signature = Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error>;

    /// Accepts any server certificate: these tests look at which one the resolver picked.
    #[derive(Debug)]
    struct AnyCert;

    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &Cert<'_>,
            _: &[Cert<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(&self, _: &[u8], _: &Cert<'_>, _: &Dss) -> Signature {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(&self, _: &[u8], _: &Cert<'_>, _: &Dss) -> Signature {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    /// An in-memory handshake offering `alpn`; the leaf the server sent, or `None` if the
    /// handshake failed.
    fn served_leaf(resolver: Arc<CertResolver>, alpn: &[&[u8]]) -> Option<Vec<u8>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        server_config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        let mut client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
        client_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from("hub.example.net").expect("name");
        let mut client =
            rustls::ClientConnection::new(Arc::new(client_config), name).expect("client");
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).expect("server");
        // A TLS 1.3 handshake needs two round trips; a few more rounds cost nothing.
        for _ in 0..8 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).expect("client out");
            server.read_tls(&mut wire.as_slice()).expect("server in");
            if server.process_new_packets().is_err() {
                return None;
            }
            let mut wire = Vec::new();
            server.write_tls(&mut wire).expect("server out");
            client.read_tls(&mut wire.as_slice()).expect("client in");
            if client.process_new_packets().is_err() {
                return None;
            }
        }
        client.peer_certificates().map(|c| c[0].to_vec())
    }

    #[test]
    fn only_a_pure_acme_tls_hello_gets_the_challenge_certificate() {
        let resolver = Arc::new(CertResolver::default());
        assert!(
            served_leaf(resolver.clone(), &[b"http/1.1"]).is_none(),
            "nothing yet"
        );
        let current = rcgen::generate_simple_self_signed(vec!["hub.example.net".to_owned()])
            .expect("certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(current.signing_key.serialize_der().into());
        resolver.set_current(Arc::new(CertifiedKey::new(
            vec![current.cert.der().clone()],
            rustls::crypto::ring::sign::any_supported_type(&key).expect("key"),
        )));
        let real = current.cert.der().to_vec();
        let _guard = resolver
            .add_challenge("hub.example.net", &[1; 32])
            .expect("challenge");
        let challenge = served_leaf(resolver.clone(), &[ACME_TLS_ALPN]).expect("validation");
        assert_ne!(challenge, real);
        // A client that also speaks HTTP would be handed HTTP/1.1: it gets the real one.
        let mixed = [ACME_TLS_ALPN, b"http/1.1".as_slice()];
        assert_eq!(served_leaf(resolver.clone(), &mixed), Some(real.clone()));
        assert_eq!(served_leaf(resolver.clone(), &[]), Some(real.clone()));
        assert_eq!(served_leaf(resolver.clone(), &[b"http/1.1"]), Some(real));
    }

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
