//! Random identifiers and secrets, and the one-way hashes kept instead of them.
//!
//! Secrets (door secrets, phone tokens, pairing codes) come from the operating system's CSPRNG
//! and are only ever stored as SHA-256 digests, so a copy of the database does not let anyone
//! impersonate a door or a phone.

use rand::{rngs::OsRng, TryRngCore};

/// Bytes of randomness in a door secret: 128 bits, as the protocol requires.
pub const DOOR_SECRET_BYTES: usize = 16;
/// Bytes of randomness in a phone token: 256 bits; it lives for years in `localStorage`.
pub const PHONE_TOKEN_BYTES: usize = 32;
/// Bytes of randomness in a pairing code: 96 bits. Codes live 10 minutes, work once and bad
/// guesses are rate limited, so this is far beyond guessable while keeping links short.
pub const PAIRING_CODE_BYTES: usize = 12;
/// Bytes of randomness in door and phone ids ("d-1a2b3c4d"). Ids are not secrets; 32 bits
/// keeps them readable, and a collision is detected and retried at insert.
pub const ID_BYTES: usize = 4;

/// The operating system's random source failed (no `getrandom`, no `/dev/urandom`).
#[derive(Debug, thiserror::Error)]
#[error("the operating system random number generator failed: {0}")]
pub struct RandomError(String);

/// `bytes` random bytes from the OS CSPRNG, hex encoded.
pub fn random_hex(bytes: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; bytes];
    OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| RandomError(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

/// Compares two digests without an early exit, so timing does not reveal how many leading
/// characters matched. (Both sides are hashes already, so this is belt and braces.)
pub fn digests_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of a DER certificate as colon-separated uppercase hex (`AB:CD:...`), the form
/// browsers show and SDP's `a=fingerprint:sha-256` carries.
pub fn cert_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_requested_length_and_differs() {
        let a = random_hex(DOOR_SECRET_BYTES).expect("rng");
        let b = random_hex(DOOR_SECRET_BYTES).expect("rng");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digests_equal(&sha256_hex(b"x"), &sha256_hex(b"x")));
        assert!(!digests_equal(&sha256_hex(b"x"), &sha256_hex(b"y")));
        assert!(!digests_equal("ab", "abc"));
    }

    #[test]
    fn fingerprint_is_colon_separated_uppercase_sha256() {
        let fp = cert_fingerprint(b"abc");
        assert!(fp.starts_with("BA:78:16:BF:"), "{fp}");
        assert_eq!(fp.len(), 32 * 3 - 1);
    }
}
