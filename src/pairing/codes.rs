//! The door's one-time pairing codes and the check of a phone's proof. Pure: times are
//! passed in, so every refusal is unit-tested.

use doorbell_protocol::pairing::PairRefusal;
use doorbell_protocol::{Access, Role};
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
/// The key a phone and the door share from pairing on (for the owner's invites).
const PHONE_KEY_LABEL: &str = "doorbell-phone-key-v1";
/// An owner's authorisation of an invite.
const INVITE_LABEL: &str = "doorbell-invite-v1";
/// The secret of an invite's code, derived from the owner's key.
const INVITE_KEY_LABEL: &str = "doorbell-invite-key-v1";
/// An owner's authorisation of a raised permission.
const GRANT_LABEL: &str = "doorbell-grant-v1";
/// A phone's proof that it renewed its own certificate.
const REPIN_LABEL: &str = "doorbell-repin-v1";

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
    /// Kept to derive the phone's key at redemption.
    secret: Vec<u8>,
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
        self.add(now_ms, id.clone(), secret, access);
        NewCode {
            code_id: id,
            secret_hex: hex(secret),
        }
    }

    fn add(&mut self, now_ms: u64, id: String, secret: &[u8], access: Access) {
        self.pending.push(Code {
            id,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            secret: secret.to_vec(),
            expires_ms: now_ms + PAIR_CODE_TTL.as_millis() as u64,
            access,
            used: false,
        });
    }

    /// An owner's invite: `auth` must be the owner's MAC (under `owner_key`) of exactly this
    /// code id and access; then the door keeps a code whose secret it derives from the same
    /// key, as the owner's phone did for the link.
    pub(super) fn invite(
        &mut self,
        now_ms: u64,
        door_id: &str,
        owner_key: &[u8],
        code_id: &str,
        access: Access,
        auth: &str,
    ) -> Result<Access, PairRefusal> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, owner_key);
        let tag = unhex(auth).ok_or(PairRefusal::BadProof)?;
        hmac::verify(
            &key,
            invite_message(door_id, code_id, &access).as_bytes(),
            &tag,
        )
        .map_err(|_| PairRefusal::BadProof)?;
        let well_formed =
            code_id.len() == 2 * CODE_ID_BYTES && code_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed || self.pending.iter().any(|c| c.id == code_id) {
            return Err(PairRefusal::UnknownCode);
        }
        self.pending.retain(|c| c.expires_ms > now_ms && !c.used);
        if self.pending.len() >= MAX_CODES {
            self.pending.remove(0);
        }
        let secret = invite_secret(owner_key, code_id);
        self.add(now_ms, code_id.to_owned(), &secret, access);
        Ok(access)
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
    ) -> Result<(Access, Vec<u8>), PairRefusal> {
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
        Ok((code.access, phone_key(&code.secret)))
    }

    #[cfg(test)]
    pub(super) fn insert_for_test(&mut self, now_ms: u64, first: bool, id: &str, secret: &[u8]) {
        self.insert(now_ms, first, id.to_owned(), secret);
    }
}

/// The key the door and a phone share from pairing on: both derive it from the code's secret.
pub fn phone_key(secret: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, PHONE_KEY_LABEL.as_bytes())
        .as_ref()
        .to_vec()
}

/// What an owner's invite authorisation covers: the door, the code, every permission.
fn invite_message(door_id: &str, code_id: &str, access: &Access) -> String {
    owner_message(INVITE_LABEL, door_id, code_id, access)
}

/// `label`, the door, the code (an invite) or phone (a grant) it is about, every permission.
fn owner_message(label: &str, door_id: &str, about: &str, access: &Access) -> String {
    let role = match access.role {
        Role::Owner => "owner",
        Role::Member => "member",
        Role::Guest => "guest",
    };
    let until = access.until_ms.map(|ms| ms.to_string()).unwrap_or_default();
    format!(
        "{label}\n{door_id}\n{about}\n{role}\n{}\n{}\n{until}",
        u8::from(access.may_unlock),
        u8::from(access.may_view)
    )
}

/// An invite code's secret: the first 128 bits of the owner's MAC of its id.
pub fn invite_secret(owner_key: &[u8], code_id: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, owner_key);
    let tag = hmac::sign(&key, format!("{INVITE_KEY_LABEL}\n{code_id}").as_bytes());
    tag.as_ref()[..SECRET_BYTES].to_vec()
}

/// The owner's authorisation of an invite (hex), as `web/pairing-proof.js` computes it.
pub fn invite_auth_hex(owner_key: &[u8], door_id: &str, code_id: &str, access: &Access) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, owner_key);
    hex(hmac::sign(&key, invite_message(door_id, code_id, access).as_bytes()).as_ref())
}

/// The owner's authorisation of `access` for phone `target` (hex), as `web/pairing-proof.js`
/// computes it.
pub fn grant_auth_hex(owner_key: &[u8], door_id: &str, target: &str, access: &Access) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, owner_key);
    hex(hmac::sign(
        &key,
        owner_message(GRANT_LABEL, door_id, target, access).as_bytes(),
    )
    .as_ref())
}

/// Whether `auth` is the owner's authorisation of `access` for `target`.
pub(super) fn grant_holds(
    owner_key: &[u8],
    door_id: &str,
    target: &str,
    access: &Access,
    auth: &str,
) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, owner_key);
    let message = owner_message(GRANT_LABEL, door_id, target, access);
    unhex(auth).is_some_and(|tag| hmac::verify(&key, message.as_bytes(), &tag).is_ok())
}

/// What a phone's re-pin proof covers: the door, the phone, the old and the new fingerprint
/// (normalised), so it cannot be replayed for another door, phone or certificate.
fn repin_message(door_id: &str, phone_id: &str, old_fp: &str, new_fp: &str) -> String {
    format!("{REPIN_LABEL}\n{door_id}\n{phone_id}\n{old_fp}\n{new_fp}")
}

/// A phone's re-pin proof (hex) under the key it shares with the door, as
/// `web/pairing-proof.js` computes it.
pub fn repin_proof_hex(
    phone_key: &[u8],
    door_id: &str,
    phone_id: &str,
    old_fp: &str,
    new_fp: &str,
) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, phone_key);
    let message = repin_message(door_id, phone_id, old_fp, new_fp);
    hex(hmac::sign(&key, message.as_bytes()).as_ref())
}

/// Whether `proof` is the phone's re-pin proof (checked in constant time by `ring`).
pub(super) fn repin_holds(
    phone_key: &[u8],
    door_id: &str,
    phone_id: &str,
    old_fp: &str,
    new_fp: &str,
    proof: &str,
) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, phone_key);
    let message = repin_message(door_id, phone_id, old_fp, new_fp);
    unhex(proof).is_some_and(|tag| hmac::verify(&key, message.as_bytes(), &tag).is_ok())
}

fn message(door_id: &str, code_id: &str, fingerprint: &str) -> String {
    format!("{PROOF_LABEL}\n{door_id}\n{code_id}\n{fingerprint}")
}

/// The proof a phone sends (hex HMAC-SHA256), as `web/pairing-proof.js` computes it.
pub fn proof_hex(secret: &[u8], door_id: &str, code_id: &str, fingerprint: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hex(hmac::sign(&key, message(door_id, code_id, fingerprint).as_bytes()).as_ref())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
