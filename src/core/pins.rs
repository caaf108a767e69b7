//! Which phone certificates this door accepts: the pins made at pairing
//! ([`crate::pairing`]), and the check of a phone's SDP answer against them. Pure: the SDP
//! is parsed here, so match, mismatch and unpinned are unit-tested.
//!
//! The SDP's `a=fingerprint` is what webrtcbin's DTLS handshake is bound to (the peer must
//! hold the key of that certificate), so a hub that relays an answer with a pinned
//! fingerprint still needs that phone's private key to complete the call.

use doorbell_protocol::PhoneId;
use std::collections::BTreeMap;

/// The pinned phones: id -> (certificate fingerprint, door-granted unlock permission).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    phones: BTreeMap<PhoneId, (String, bool)>,
}

impl Pins {
    pub fn new(phones: impl IntoIterator<Item = (PhoneId, String, bool)>) -> Pins {
        Pins {
            phones: phones
                .into_iter()
                .filter_map(|(id, fp, may_unlock)| Some((id, (normalise(&fp)?, may_unlock))))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.phones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phones.is_empty()
    }
}

/// What the door makes of a phone's SDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    /// The answer names exactly the pinned certificate; `may_unlock` is the door's own grant.
    Pinned { may_unlock: bool },
    /// The door never pinned this phone (paired through the hub alone, or before pinning).
    Unpinned,
    /// The answer names another certificate than the pinned one (another browser, or someone
    /// in the middle).
    Mismatch,
    /// The answer has no SHA-256 fingerprint, or one of another algorithm (which would let a
    /// weaker hash stand in for the pin).
    NoFingerprint,
}

/// A fingerprint as the door stores it: 32 colon-separated uppercase hex bytes; `None` if
/// `text` is not one.
pub fn normalise(text: &str) -> Option<String> {
    let upper = text.trim().to_ascii_uppercase();
    let bytes: Vec<&str> = upper.split(':').collect();
    let ok = bytes.len() == 32
        && bytes
            .iter()
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    ok.then_some(upper)
}

/// Every `a=fingerprint:` of `sdp` as (algorithm lowercased, value).
fn fingerprints(sdp: &str) -> Vec<(String, String)> {
    sdp.lines()
        .filter_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))
        .filter_map(|rest| {
            let (alg, value) = rest.trim().split_once(' ')?;
            Some((alg.to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}

/// The `sha-256` fingerprints `sdp` names, normalised (for the media layer's check of the
/// certificate actually presented in the DTLS handshake).
pub fn sdp_sha256_fingerprints(sdp: &str) -> Vec<String> {
    fingerprints(sdp)
        .into_iter()
        .filter(|(alg, _)| alg == "sha-256")
        .filter_map(|(_, value)| normalise(&value))
        .collect()
}

/// Checks `phone_id`'s answer `sdp` against `pins`.
pub fn check(pins: &Pins, phone_id: &PhoneId, sdp: &str) -> PinCheck {
    let Some((pinned, may_unlock)) = pins.phones.get(phone_id) else {
        return PinCheck::Unpinned;
    };
    let found = fingerprints(sdp);
    if found.is_empty() || found.iter().any(|(alg, _)| alg != "sha-256") {
        return PinCheck::NoFingerprint;
    }
    if found
        .iter()
        .all(|(_, value)| normalise(value).as_ref() == Some(pinned))
    {
        PinCheck::Pinned {
            may_unlock: *may_unlock,
        }
    } else {
        PinCheck::Mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP_A: &str = "3B:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01";
    const FP_B: &str = "00:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C:A9:32:87:5E:D4:10:6B:C8:2F:93:E7:01";

    fn answer(lines: &[&str]) -> String {
        let mut sdp =
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
                .to_owned();
        for line in lines {
            sdp.push_str(line);
            sdp.push_str("\r\n");
        }
        sdp
    }

    fn pins() -> Pins {
        Pins::new([
            (PhoneId::new("p-a"), FP_A.to_lowercase(), true),
            (PhoneId::new("p-m"), FP_B.into(), false),
        ])
    }

    #[test]
    fn the_pinned_certificate_passes_with_the_doors_own_permission() {
        let sdp = answer(&[&format!("a=fingerprint:sha-256 {FP_A}")]);
        assert_eq!(
            check(&pins(), &PhoneId::new("p-a"), &sdp),
            PinCheck::Pinned { may_unlock: true }
        );
        let lower = answer(&[&format!("a=fingerprint:SHA-256 {}", FP_B.to_lowercase())]);
        assert_eq!(
            check(&pins(), &PhoneId::new("p-m"), &lower),
            PinCheck::Pinned { may_unlock: false }
        );
    }

    #[test]
    fn another_certificate_is_a_mismatch_even_for_one_media_section() {
        let other = answer(&[&format!("a=fingerprint:sha-256 {FP_B}")]);
        assert_eq!(
            check(&pins(), &PhoneId::new("p-a"), &other),
            PinCheck::Mismatch
        );
        // One right and one wrong section: not the pinned phone.
        let mixed = answer(&[
            &format!("a=fingerprint:sha-256 {FP_A}"),
            &format!("a=fingerprint:sha-256 {FP_B}"),
        ]);
        assert_eq!(
            check(&pins(), &PhoneId::new("p-a"), &mixed),
            PinCheck::Mismatch
        );
    }

    #[test]
    fn an_unpinned_phone_or_a_missing_or_weaker_fingerprint_is_refused() {
        let sdp = answer(&[&format!("a=fingerprint:sha-256 {FP_A}")]);
        assert_eq!(
            check(&pins(), &PhoneId::new("p-x"), &sdp),
            PinCheck::Unpinned
        );
        assert_eq!(
            check(&Pins::default(), &PhoneId::new("p-a"), &sdp),
            PinCheck::Unpinned
        );
        assert_eq!(
            check(&pins(), &PhoneId::new("p-a"), &answer(&[])),
            PinCheck::NoFingerprint
        );
        let sha1 = answer(&[
            &format!("a=fingerprint:sha-256 {FP_A}"),
            "a=fingerprint:sha-1 3B:7A:0C:55:91:DE:4F:20:8B:11:C3:9A:76:E2:05:B8:44:1D:F0:6C",
        ]);
        assert_eq!(
            check(&pins(), &PhoneId::new("p-a"), &sha1),
            PinCheck::NoFingerprint
        );
    }

    #[test]
    fn only_real_fingerprints_are_pinned() {
        assert_eq!(normalise(&FP_A.to_lowercase()).as_deref(), Some(FP_A));
        assert_eq!(normalise("AA:BB"), None);
        assert_eq!(normalise(&FP_A.replace(':', "")), None);
        assert_eq!(normalise(&FP_A.replacen("3B", "ZZ", 1)), None);
        let pins = Pins::new([(PhoneId::new("p"), "nonsense".into(), true)]);
        assert!(pins.is_empty());
    }
}
