//! Pairing that the hub cannot subvert: what the hub relays to a door, which alone admits a
//! phone, keeps an owner's invite, or applies an owner's grant (docs/PROTOCOL.md "Pairing").
//! Each is a `HubToDoor` variant (`pair_request`, `invite_request`, `grant_request`,
//! `repin_request`); the door answers `pair_accepted` or `pair_refused`.

use crate::{Access, PhoneId};
use serde::{Deserialize, Serialize};

/// Why a door refused a `pair_request` (docs/PROTOCOL.md "Pairing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairRefusal {
    /// The door made no such code (or restarted since: codes live in its memory).
    UnknownCode,
    /// The code was redeemed already.
    Used,
    /// The code is older than its 10 minutes.
    Expired,
    /// The proof is not the MAC of this fingerprint under the code's secret: whoever sent it
    /// does not know the code (a hub that forges pairings), or the fingerprint was changed.
    BadProof,
    /// The fingerprint is not a SHA-256 certificate fingerprint.
    BadFingerprint,
    /// The door keeps as many pinned phones as it can; remove one first.
    Full,
    /// An invite's phone is not an owner pinned at this door (or paired before owners had a
    /// key with the door): it cannot authorise invites.
    NotOwner,
    /// A grant names a phone this door never pinned.
    UnknownPhone,
    /// A re-pin's old fingerprint is not the one the door pinned for that phone.
    NotPinned,
}

/// A phone redeems a pairing code the door made (`POST /api/pair` with `code_id`): the door
/// checks `proof` = HMAC-SHA256(code secret, …fingerprint) and, if it holds, pins
/// `fingerprint` for `phone_id` and answers `pair_accepted`; else `pair_refused`. The hub
/// never sees the code's secret, so it cannot make a proof of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRequest {
    /// Chosen by the hub; echoed in the reply.
    pub request_id: u64,
    pub code_id: String,
    /// The id the hub will give the phone if the door accepts.
    pub phone_id: PhoneId,
    /// The phone's persistent DTLS certificate: `sha-256` fingerprint, colon-separated hex.
    pub fingerprint: String,
    /// Hex HMAC-SHA256.
    pub proof: String,
}

/// An owner's phone made an invite (`POST /api/doors/{door}/invites` with `code_id` and
/// `auth`): the door checks `auth` with the key it shares with that owner since pairing and,
/// if it holds, keeps a code with `access` whose secret it derives from the same key. The hub
/// does not have the key, so it cannot mint invites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRequest {
    pub request_id: u64,
    /// The owner's phone that made the invite.
    pub phone_id: PhoneId,
    pub code_id: String,
    pub access: Access,
    /// Hex HMAC-SHA256 under the owner's key.
    pub auth: String,
}

/// An owner raised a phone's permissions in the app: the door applies `access` to its pin of
/// `target` only if `auth` (the owner's MAC, as for invites) holds. Reductions need no grant
/// (the hub can always deny); raises do, so the hub cannot grant unlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRequest {
    pub request_id: u64,
    /// The owner's phone that made the grant.
    pub phone_id: PhoneId,
    pub target: PhoneId,
    pub access: Access,
    /// Hex HMAC-SHA256 under the owner's key.
    pub auth: String,
}

/// A phone renewed its persistent DTLS certificate (a month before the old one ends): the
/// door replaces its pin of `phone_id` from `old_fingerprint` to `new_fingerprint` only if
/// `proof` is the phone's MAC of both under the key they share since pairing, and the old one
/// is what it pinned. The hub does not have the key, so it cannot swap a phone's pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepinRequest {
    pub request_id: u64,
    /// The phone asking (the hub's authenticated caller).
    pub phone_id: PhoneId,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    /// Hex HMAC-SHA256 under the phone's key.
    pub proof: String,
}
