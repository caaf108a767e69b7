//! Pairing that the hub cannot subvert, the door's side: the door makes every pairing code,
//! checks each phone's proof itself and pins the phone's certificate (docs/SECURITY-MODEL.md).
//!
//! - `doorbelld pair` asks [`Pairing::new_code`] for a code: an id (routed by the hub) and a
//!   128-bit secret that only the link carries, in its fragment (never sent to the hub).
//! - The phone proves its persistent DTLS certificate with
//!   `HMAC-SHA256(secret, "doorbell-pair-v1\n" door_id "\n" code_id "\n" FINGERPRINT)`; the hub
//!   relays it as `pair_request`, and [`Pairing::redeem`] checks it (constant time), consumes
//!   the code and pins `{phone_id, fingerprint, role, permissions}` in `phones.json` (0600).
//! - The core ([`crate::core::pins`]) accepts media and unlock only from a pinned certificate.
//!
//! Codes live in memory only: a restart voids them (a fresh `doorbelld pair` is one command).

mod codes;
mod roster;

pub use codes::CodeError;
pub use codes::{
    grant_auth_hex, invite_auth_hex, invite_secret, phone_key, proof_hex, repin_proof_hex, NewCode,
    PAIR_CODE_TTL,
};
pub use roster::{PinnedPhone, RosterError, PINS_FILE};

use crate::core::pins::Pins;
use doorbell_protocol::pairing::PairRefusal;
use doorbell_protocol::{Access, DoorToHub, PhoneId};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The door's pairing state: pending codes and the pinned phones. Shared between the
/// control socket (which makes codes) and the call task (which redeems them).
pub type SharedPairing = Arc<Mutex<Pairing>>;

#[derive(Debug)]
pub struct Pairing {
    door_id: String,
    file: PathBuf,
    codes: codes::Codes,
    phones: Vec<PinnedPhone>,
}

impl Pairing {
    /// Loads the pinned phones from `state_dir` (none yet: an empty roster).
    pub fn load(state_dir: &Path, door_id: &str) -> Result<Pairing, roster::RosterError> {
        let file = state_dir.join(PINS_FILE);
        Ok(Pairing {
            door_id: door_id.to_owned(),
            phones: roster::load(&file)?,
            file,
            codes: codes::Codes::default(),
        })
    }

    pub fn shared(self) -> SharedPairing {
        Arc::new(Mutex::new(self))
    }

    /// A new one-time code (owner if no phone is pinned yet, else member), valid for
    /// [`PAIR_CODE_TTL`].
    pub fn new_code(&mut self, now_ms: u64) -> Result<NewCode, codes::CodeError> {
        let first = self.phones.is_empty();
        self.codes.make(now_ms, first)
    }

    /// Checks a relayed `pair_request`; on success pins the phone (and saves the roster).
    pub fn redeem(
        &mut self,
        now_ms: u64,
        code_id: &str,
        phone_id: &PhoneId,
        fingerprint: &str,
        proof: &str,
    ) -> Result<Access, PairRefusal> {
        let fingerprint =
            crate::core::pins::normalise(fingerprint).ok_or(PairRefusal::BadFingerprint)?;
        let (access, key) =
            self.codes
                .redeem(now_ms, &self.door_id, code_id, &fingerprint, proof)?;
        roster::pin(
            &mut self.phones,
            PinnedPhone {
                phone_id: phone_id.clone(),
                fingerprint,
                access,
                paired_at_ms: now_ms,
                key: Some(codes::hex(&key)),
            },
        )?;
        if let Err(e) = roster::save(&self.file, &self.phones) {
            // Pinned in memory for this run; say loudly that a restart forgets it.
            tracing::error!(file = %self.file.display(), "cannot save the pinned phones: {e}");
        }
        Ok(access)
    }

    /// Checks a relayed `grant_request`: owner `phone_id` raised `target`'s access; on success
    /// the pin of `target` gets `access` (and the roster is saved).
    pub fn grant(
        &mut self,
        phone_id: &PhoneId,
        target: &PhoneId,
        access: Access,
        auth: &str,
    ) -> Result<Access, PairRefusal> {
        let owner_key = self.owner_key(phone_id)?;
        if !codes::grant_holds(&owner_key, &self.door_id, target.as_str(), &access, auth) {
            return Err(PairRefusal::BadProof);
        }
        let pin = self
            .phones
            .iter_mut()
            .find(|p| p.phone_id == *target)
            .ok_or(PairRefusal::UnknownPhone)?;
        pin.access = access;
        if let Err(e) = roster::save(&self.file, &self.phones) {
            tracing::error!(file = %self.file.display(), "cannot save the pinned phones: {e}");
        }
        Ok(access)
    }

    /// Checks a relayed `repin_request`: phone `phone_id` renewed its certificate. On success
    /// its pin moves from `old_fp` to `new_fp` (and the roster is saved). The proof is checked
    /// first, so a caller without the phone's key learns nothing about what is pinned.
    pub fn repin(
        &mut self,
        phone_id: &PhoneId,
        old_fp: &str,
        new_fp: &str,
        proof: &str,
    ) -> Result<Access, PairRefusal> {
        let old_fp = crate::core::pins::normalise(old_fp).ok_or(PairRefusal::BadFingerprint)?;
        let new_fp = crate::core::pins::normalise(new_fp).ok_or(PairRefusal::BadFingerprint)?;
        let pin = self
            .phones
            .iter_mut()
            .find(|p| p.phone_id == *phone_id)
            .ok_or(PairRefusal::UnknownPhone)?;
        // A phone paired before phones had a key with the door cannot prove anything: it
        // pairs again.
        let key = pin
            .key
            .as_deref()
            .and_then(codes::unhex)
            .ok_or(PairRefusal::BadProof)?;
        let id = phone_id.as_str();
        if !codes::repin_holds(&key, &self.door_id, id, &old_fp, &new_fp, proof) {
            return Err(PairRefusal::BadProof);
        }
        if pin.fingerprint != old_fp {
            // Already moved (a retried request whose answer was lost) is a success.
            if pin.fingerprint == new_fp {
                return Ok(pin.access);
            }
            return Err(PairRefusal::NotPinned);
        }
        pin.fingerprint = new_fp;
        let access = pin.access;
        if let Err(e) = roster::save(&self.file, &self.phones) {
            tracing::error!(file = %self.file.display(), "cannot save the pinned phones: {e}");
        }
        Ok(access)
    }

    /// The key of `phone_id` if it is an owner the door pinned.
    fn owner_key(&self, phone_id: &PhoneId) -> Result<Vec<u8>, PairRefusal> {
        self.phones
            .iter()
            .find(|p| p.phone_id == *phone_id && p.access.role == doorbell_protocol::Role::Owner)
            .and_then(|p| p.key.as_deref())
            .and_then(codes::unhex)
            .ok_or(PairRefusal::NotOwner)
    }

    /// Checks a relayed `invite_request` from owner `phone_id`; on success keeps the code.
    pub fn invite(
        &mut self,
        now_ms: u64,
        phone_id: &PhoneId,
        code_id: &str,
        access: Access,
        auth: &str,
    ) -> Result<Access, PairRefusal> {
        let owner_key = self.owner_key(phone_id)?;
        self.codes
            .invite(now_ms, &self.door_id, &owner_key, code_id, access, auth)
    }

    /// What the core checks calls against.
    pub fn pins(&self) -> Pins {
        Pins::new(self.phones.iter().map(|p| {
            (
                p.phone_id.clone(),
                p.fingerprint.clone(),
                p.access.may_unlock,
            )
        }))
    }

    pub fn pinned(&self) -> &[PinnedPhone] {
        &self.phones
    }
}

/// The link a phone opens: `<base>/#pair=<door_id>.<code_id>.<secret>&door=<name>&fp=<door fp>`.
/// Everything after `#` stays on the phone: the hub never sees the secret. The door id rides
/// in the code, so a code pasted alone still says which door to ask.
pub fn pairing_link(
    base_url: &str,
    code: &NewCode,
    door_name: &str,
    door_id: &str,
    door_fp: &str,
) -> String {
    format!(
        "{}/#pair={}.{}.{}&door={}&fp={}",
        base_url.trim_end_matches('/'),
        percent_encoding::utf8_percent_encode(door_id, COMPONENT),
        code.code_id,
        code.secret_hex,
        percent_encoding::utf8_percent_encode(door_name, COMPONENT),
        door_fp
    )
}

/// Like JavaScript's `encodeURIComponent`: all but RFC 3986's unreserved characters.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The hub's base URL for phones, from the door's `hub.url` (`wss://h/ws` -> `https://h`).
pub fn base_url_of(hub_ws_url: &str) -> String {
    let url = hub_ws_url.trim();
    let url = if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    };
    url.strip_suffix("/ws")
        .unwrap_or(&url)
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests;

/// Everything `doorbelld pair` needs to make a link, and the shared state it makes codes in.
#[derive(Clone)]
pub struct PairLinks {
    pub pairing: SharedPairing,
    /// The hub's URL as phones reach it.
    pub base_url: String,
    /// The door's name for the phone's question: the configured one until the hub's
    /// `welcome` names it (what the phones see).
    pub door_name: Arc<Mutex<String>>,
    pub door_id: String,
    /// The door's own DTLS fingerprint, which the phone pins.
    pub door_fp: String,
}

impl PairLinks {
    /// A new one-time pairing link.
    pub fn new_link(&self) -> Result<String, String> {
        let code = lock(&self.pairing)
            .new_code(crate::missed::now_unix_ms())
            .map_err(|e| e.to_string())?;
        let door_name = self.door_name.lock().map(|n| n.clone()).unwrap_or_default();
        Ok(pairing_link(
            &self.base_url,
            &code,
            &door_name,
            &self.door_id,
            &self.door_fp,
        ))
    }

    /// Answers the hub's `invite_request`.
    pub fn answer_invite(
        &self,
        request_id: u64,
        phone_id: &PhoneId,
        code_id: &str,
        access: Access,
        auth: &str,
    ) -> DoorToHub {
        let result = lock(&self.pairing).invite(
            crate::missed::now_unix_ms(),
            phone_id,
            code_id,
            access,
            auth,
        );
        match result {
            Ok(access) => {
                tracing::info!(owner = %phone_id, ?access, "an owner made an invite");
                DoorToHub::PairAccepted { request_id, access }
            }
            Err(reason) => {
                tracing::warn!(phone = %phone_id, ?reason, "invite refused");
                DoorToHub::PairRefused { request_id, reason }
            }
        }
    }

    /// Answers the hub's `grant_request`; with the new pins when the grant held.
    pub fn answer_grant(
        &self,
        request_id: u64,
        phone_id: &PhoneId,
        target: &PhoneId,
        access: Access,
        auth: &str,
    ) -> (DoorToHub, Option<Pins>) {
        let mut pairing = lock(&self.pairing);
        match pairing.grant(phone_id, target, access, auth) {
            Ok(access) => {
                tracing::info!(owner = %phone_id, phone = %target, ?access, "an owner raised a phone's permissions");
                (
                    DoorToHub::PairAccepted { request_id, access },
                    Some(pairing.pins()),
                )
            }
            Err(reason) => {
                tracing::warn!(owner = %phone_id, phone = %target, ?reason, "grant refused");
                (DoorToHub::PairRefused { request_id, reason }, None)
            }
        }
    }

    /// Answers the hub's `repin_request`; with the new pins when the phone's pin moved.
    pub fn answer_repin(
        &self,
        r: &doorbell_protocol::pairing::RepinRequest,
    ) -> (DoorToHub, Option<Pins>) {
        let mut pairing = lock(&self.pairing);
        let request_id = r.request_id;
        match pairing.repin(
            &r.phone_id,
            &r.old_fingerprint,
            &r.new_fingerprint,
            &r.proof,
        ) {
            Ok(access) => {
                tracing::info!(phone = %r.phone_id, fingerprint = %r.new_fingerprint, "a phone renewed its certificate: the new one is pinned");
                (
                    DoorToHub::PairAccepted { request_id, access },
                    Some(pairing.pins()),
                )
            }
            Err(reason) => {
                tracing::warn!(phone = %r.phone_id, ?reason, "re-pin refused");
                (DoorToHub::PairRefused { request_id, reason }, None)
            }
        }
    }

    /// Answers the hub's `pair_request`; with the new pins when a phone was pinned.
    pub fn answer(
        &self,
        request_id: u64,
        code_id: &str,
        phone_id: &PhoneId,
        fingerprint: &str,
        proof: &str,
    ) -> (DoorToHub, Option<Pins>) {
        let mut pairing = lock(&self.pairing);
        match pairing.redeem(
            crate::missed::now_unix_ms(),
            code_id,
            phone_id,
            fingerprint,
            proof,
        ) {
            Ok(access) => {
                tracing::info!(phone = %phone_id, ?access, fingerprint, "phone paired: its certificate is pinned");
                (
                    DoorToHub::PairAccepted { request_id, access },
                    Some(pairing.pins()),
                )
            }
            Err(reason) => {
                tracing::warn!(phone = %phone_id, ?reason, "pairing refused");
                (DoorToHub::PairRefused { request_id, reason }, None)
            }
        }
    }

    pub fn pins(&self) -> Pins {
        lock(&self.pairing).pins()
    }

    /// The hub says `phone_id` left the household: forget its pin. The new pins, if it had one.
    pub fn unpin(&self, phone_id: &PhoneId) -> Option<Pins> {
        let mut pairing = lock(&self.pairing);
        let before = pairing.phones.len();
        pairing.phones.retain(|p| p.phone_id != *phone_id);
        if pairing.phones.len() == before {
            return None;
        }
        if let Err(e) = roster::save(&pairing.file, &pairing.phones) {
            tracing::error!(file = %pairing.file.display(), "cannot save the pinned phones: {e}");
        }
        tracing::info!(phone = %phone_id, "phone removed: its certificate is no longer pinned");
        Some(pairing.pins())
    }

    /// The hub's `welcome` named the door.
    pub fn set_door_name(&self, name: &str) {
        if let Ok(mut current) = self.door_name.lock() {
            name.clone_into(&mut current);
        }
    }
}

fn lock(pairing: &SharedPairing) -> std::sync::MutexGuard<'_, Pairing> {
    pairing.lock().unwrap_or_else(|p| p.into_inner())
}
