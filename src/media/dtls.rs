//! The door's own DTLS certificate in webrtcbin.
//!
//! webrtcbin 1.22 has no property for a certificate, and two of its internals get in the way:
//!
//! - Each transport's `dtlssrtpdec` owns the DTLS connection; its sibling `dtlssrtpenc` takes
//!   that connection from a process-wide table when it goes from NULL to READY. A `pem` set
//!   after that makes a new connection the encoder never sees, and the handshake then uses
//!   GStreamer's per-process RSA key. [`use_certificate`] sets `pem` as the transport's bins
//!   are added to webrtcbin, before webrtcbin brings them to its own state.
//! - The offer's `a=fingerprint` is a hash of every base64 line of the `pem` property, which
//!   for a certificate *with its key* is not the certificate's fingerprint, so the phone would
//!   refuse the handshake ("certificate unknown"). [`fix_fingerprints`] writes the right one.
//! - webrtcbin does not check that the certificate the peer presents in the DTLS handshake is
//!   the one the peer's SDP names (RFC 8842 §5.1), so an answer relayed with a pinned
//!   fingerprint but made by someone else would connect. [`verify_peer`] checks it when the
//!   connection comes up, before the core hears "connected" (tests/e2e/trust_door.test.mjs).

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and its private key (PEM, certificate first, as GStreamer reads them) and the
/// certificate's SHA-256 fingerprint. Debug never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct DtlsCertificate {
    pem: Arc<str>,
    /// Colon-separated uppercase hex, as in SDP's `a=fingerprint:sha-256`.
    sha256: Arc<str>,
}

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl DtlsCertificate {
    /// Parse a PEM holding a certificate followed by its private key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let cert = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("no certificate in it ({e})"))?;
        PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("no private key in it ({e})"))?;
        let begin_cert = pem.find("-----BEGIN CERTIFICATE-----");
        let begin_key = pem.find("PRIVATE KEY-----");
        if begin_cert > begin_key {
            // GStreamer reads the certificate, then the key, from one stream.
            return Err("the private key comes before the certificate".into());
        }
        Ok(Self {
            pem: pem.into(),
            sha256: doorbell_common::cert_fingerprint(cert.as_ref()).into(),
        })
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// Make every DTLS transport that `webrtc` creates use `certificate`.
pub fn use_certificate(webrtc: &gst::Element, certificate: &DtlsCertificate) {
    let Some(bin) = webrtc.downcast_ref::<gst::Bin>() else {
        return;
    };
    let pem = certificate.pem.clone();
    // Emitted for every element of a bin added anywhere below webrtcbin. webrtcbin adds a
    // transport's send and receive bins and only then syncs their state with its own.
    bin.connect_deep_element_added(move |_, _, element| {
        let is_dtls_decoder = element
            .factory()
            .is_some_and(|factory| factory.name() == "dtlssrtpdec");
        if is_dtls_decoder {
            element.set_property("pem", &*pem);
        }
    });
}

/// Make every `a=fingerprint:` attribute of `sdp` (session or media level) name
/// `certificate`'s SHA-256 fingerprint. For the door's own offers (webrtcbin's text): the
/// attribute keys must be UTF-8, or gstreamer-sdp's `key()` panics (found by fuzzing).
pub fn fix_fingerprints(sdp: &mut gst_sdp::SDPMessageRef, certificate: &DtlsCertificate) {
    let value = format!("sha-256 {}", certificate.sha256);
    let fingerprint = || gst_sdp::SDPAttribute::new("fingerprint", Some(&value));
    let at_session: Vec<u32> = (0..sdp.attributes_len())
        .filter(|&i| sdp.attribute(i).is_some_and(|a| a.key() == "fingerprint"))
        .collect();
    for i in at_session {
        // In range: the index was just read from this message.
        let _ = sdp.replace_attribute(i, fingerprint());
    }
    for media in sdp.medias_mut() {
        let in_media: Vec<u32> = (0..media.attributes_len())
            .filter(|&i| media.attribute(i).is_some_and(|a| a.key() == "fingerprint"))
            .collect();
        for i in in_media {
            let _ = media.replace_attribute(i, fingerprint());
        }
    }
}

/// Whether every certificate a peer presented in `webrtc`'s DTLS handshakes is one the
/// remote description names (`a=fingerprint:sha-256`). Called once the connection is up.
pub fn verify_peer(webrtc: &gst::Element) -> Result<(), String> {
    let remote = webrtc
        .property::<Option<gstreamer_webrtc::WebRTCSessionDescription>>("remote-description")
        .ok_or("no remote description")?;
    let sdp = remote
        .sdp()
        .as_text()
        .map_err(|e| format!("remote description: {e}"))?;
    let named = crate::core::pins::sdp_sha256_fingerprints(&sdp);
    if named.is_empty() {
        return Err("the remote description names no SHA-256 certificate fingerprint".into());
    }
    let Some(bin) = webrtc.downcast_ref::<gst::Bin>() else {
        return Err("webrtcbin is not a bin".into());
    };
    let mut presented = 0;
    for element in bin.iterate_recurse().into_iter().flatten() {
        let is_decoder = element
            .factory()
            .is_some_and(|factory| factory.name() == "dtlssrtpdec");
        if !is_decoder {
            continue;
        }
        // Unused transports (bundled away) never saw a handshake.
        let Some(pem) = element.property::<Option<String>>("peer-pem") else {
            continue;
        };
        let cert = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("the peer's DTLS certificate does not parse: {e}"))?;
        let fingerprint = doorbell_common::cert_fingerprint(cert.as_ref());
        if !named.contains(&fingerprint) {
            return Err(format!(
                "the peer's DTLS certificate {fingerprint} is not the one its answer names"
            ));
        }
        presented += 1;
    }
    if presented == 0 {
        return Err("no DTLS peer certificate to check".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> (DtlsCertificate, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["door".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        let expected = doorbell_common::cert_fingerprint(cert.der());
        (DtlsCertificate::from_pem(&pem).unwrap(), expected)
    }

    #[test]
    fn fingerprint_is_of_the_certificate_alone() {
        let (certificate, expected) = certificate();
        assert_eq!(certificate.sha256(), expected);
        assert!(!format!("{certificate:?}").contains("PRIVATE"));
    }

    #[test]
    fn every_fingerprint_line_is_rewritten_and_nothing_else() {
        let (certificate, expected) = certificate();
        let sdp = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 00:11\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\nm=audio 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\na=fingerprint:sha-256 CC:DD\r\n";
        gst::init().unwrap();
        let mut message = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).unwrap();
        fix_fingerprints(&mut message, &certificate);
        let fixed = message.as_text().unwrap();
        let want = format!("a=fingerprint:sha-256 {expected}\r\n");
        assert_eq!(fixed.matches(&want).count(), 3, "{fixed}");
        assert_eq!(fixed.matches("a=fingerprint:").count(), 3, "{fixed}");
        assert!(fixed.contains("a=setup:actpass\r\n"));
        assert!(fixed.contains("m=audio 9 UDP/TLS/RTP/SAVPF 97\r\n"));
    }

    #[test]
    fn a_pem_without_key_or_in_the_wrong_order_is_refused() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["door".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(DtlsCertificate::from_pem(&cert.pem()).is_err());
        let reversed = format!("{}{}", key.serialize_pem(), cert.pem());
        assert!(DtlsCertificate::from_pem(&reversed).is_err());
    }
}
