//! The door's one-time pairing codes and the check of a phone's proof. Pure: times are
//! passed in, so every refusal is unit-tested.

use doorbell_protocol::{Access, PairRefusal, Role};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::time::Duration;

/// How long a code works: long enough to walk to the phone and scan, short enough that a
/// forgotten link is soon worthless.
pub const PAIR_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Codes pending at once. A person makes one at a time; this bounds what a stuck script
/// that keeps asking can pile up (the oldest is dropped).
const MAX_CODES: usize = 16;
/// The code id: 64 random bits, enough to be unique among a door's pending codes and not
/// guessable as a route; it is no secret (the hub sees it).
const CODE_ID_BYTES: usize = 8;
/// The code secret: 128 bits, the key of the phone's proof. Only the link carries it.
const SECRET_BYTES: usize = 16;
/// Domain separation: a proof for pairing is never valid as any other MAC we may add.
const PROOF_LABEL: &str = "doorbell-pair-v1";

/// A code as `doorbelld pair` hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    pub code_id: String,
    /// Hex; the link's fragment carries it, nothing else ever does.
    pub secret_hex: String,
}

#[derive(Debug, thiserror::Error)]
#[error("no randomness for a pairing code")]
pub struct CodeError;

#[derive(Debug)]
struct Code {
    id: String,
    key: hmac::Key,
    expires_ms: u64,
    access: Access,
    used: bool,
}

#[derive(Debug, Default)]
pub(super) struct Codes {
    pending: Vec<Code>,
}

const MEMBER: Access = Access {
    role: Role::Member,
    may_unlock: true,
    may_view: true,
    until_ms: None,
};

impl Codes {
    /// A new code; `first`: no phone is pinned yet, so this one makes the owner.
    pub(super) fn make(&mut self, now_ms: u64, first: bool) -> Result<NewCode, CodeError> {
        let rng = SystemRandom::new();
        let mut id = [0u8; CODE_ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill(&mut id).map_err(|_| CodeError)?;
        rng.fill(&mut secret).map_err(|_| CodeError)?;
        Ok(self.insert(now_ms, first, hex(&id), &secret))
    }

    fn insert(&mut self, now_ms: u64, first: bool, id: String, secret: &[u8]) -> NewCode {
        self.pending.retain(|c| c.expires_ms > now_ms && !c.used);
        if self.pending.len() >= MAX_CODES {
            self.pending.remove(0);
        }
        let access = if first {
            Access {
                role: Role::Owner,
                ..MEMBER
            }
        } else {
            MEMBER
        };
        self.pending.push(Code {
            id: id.clone(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            expires_ms: now_ms + PAIR_CODE_TTL.as_millis() as u64,
            access,
            used: false,
        });
        NewCode {
            code_id: id,
            secret_hex: hex(secret),
        }
    }

    /// Checks `proof` (hex) for `fingerprint` (normalised) under code `code_id`, and
    /// consumes the code. The proof is checked before the code's state is told, so a caller
    /// that does not know the secret learns nothing but "no".
    pub(super) fn redeem(
        &mut self,
        now_ms: u64,
        door_id: &str,
        code_id: &str,
        fingerprint: &str,
        proof: &str,
    ) -> Result<Access, PairRefusal> {
        let code = self
            .pending
            .iter_mut()
            .find(|c| c.id == code_id)
            .ok_or(PairRefusal::UnknownCode)?;
        let tag = unhex(proof).ok_or(PairRefusal::BadProof)?;
        hmac::verify(
            &code.key,
            message(door_id, code_id, fingerprint).as_bytes(),
            &tag,
        )
        .map_err(|_| PairRefusal::BadProof)?;
        if code.used {
            return Err(PairRefusal::Used);
        }
        if now_ms >= code.expires_ms {
            return Err(PairRefusal::Expired);
        }
        code.used = true;
        Ok(code.access)
    }

    #[cfg(test)]
    pub(super) fn insert_for_test(&mut self, now_ms: u64, first: bool, id: &str, secret: &[u8]) {
        self.insert(now_ms, first, id.to_owned(), secret);
    }
}

fn message(door_id: &str, code_id: &str, fingerprint: &str) -> String {
    format!("{PROOF_LABEL}\n{door_id}\n{code_id}\n{fingerprint}")
}

/// The proof a phone sends (hex HMAC-SHA256), as `web/pairing-proof.js` computes it.
pub fn proof_hex(secret: &[u8], door_id: &str, code_id: &str, fingerprint: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hex(hmac::sign(&key, message(door_id, code_id, fingerprint).as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
