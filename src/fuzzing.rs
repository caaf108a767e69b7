//! Entry points of the door's fuzz targets in `fuzz/` (cargo-fuzz, nightly) and of the corpus
//! replay in `tests/fuzz_corpora.rs` (stable, every `cargo test`): each takes arbitrary bytes
//! and runs them through a decoder of outside input exactly as the door does. A decoder may
//! refuse anything; it must never panic, hang or allocate without bound. Not an API.

use std::sync::OnceLock;

use doorbell_protocol::PhoneId;
use gstreamer as gst;
use gstreamer_sdp as gst_sdp;

use crate::core::pins::{self, Pins};
use crate::media::dtls::{fix_fingerprints, DtlsCertificate};

/// A phone's SDP answer as the door reads it: the fingerprint pin check, the fingerprints the
/// media layer compares with the DTLS handshake, GStreamer's SDP parser and the door's rewrite
/// of its own fingerprint lines.
pub fn sdp_answer(data: &[u8]) {
    // An answer reaches the door inside a JSON string, so it is always UTF-8. (Bytes that are
    // not made gstreamer-sdp 0.25's `SDPAttribute::key()` panic on the first fuzzing run:
    // fuzz/regressions/sdp_answer/. The door reads attribute keys only of its own offers.)
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let phone = PhoneId::new("p-fuzz");
    let pinned = Pins::new([(phone.clone(), FINGERPRINT.to_owned(), true)]);
    let _ = pins::check(&pinned, &phone, text);
    let _ = pins::sdp_sha256_fingerprints(text);
    static GST: OnceLock<bool> = OnceLock::new();
    if !*GST.get_or_init(|| gst::init().is_ok()) {
        return;
    }
    if let Ok(mut message) = gst_sdp::SDPMessage::parse_buffer(text.as_bytes()) {
        fix_fingerprints(&mut message, certificate());
        let _ = message.as_text();
    }
}

/// One line of the control socket.
pub fn control_socket(data: &[u8]) {
    let _ = crate::control::parse_request(&String::from_utf8_lossy(data));
}

/// A configuration file (`/etc/doorbell/doorbell.toml`), parsed and checked.
pub fn door_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = crate::config::Config::from_toml(text) {
            let _ = config.validate_hub();
        }
    }
}

const FINGERPRINT: &str = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";

/// A DTLS certificate made once (ECDSA key generation is too slow to repeat per input).
fn certificate() -> &'static DtlsCertificate {
    static CERT: OnceLock<DtlsCertificate> = OnceLock::new();
    CERT.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["doorbell".into()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        DtlsCertificate::from_pem(&format!("{}{}", cert.pem(), key.serialize_pem())).expect("pem")
    })
}
