//! The pinned phones, kept in `<state_dir>/phones.json` (mode 0600): who may call and unlock
//! this door, by certificate. Only [`super::Pairing::redeem`] adds to it.

use doorbell_protocol::pairing::PairRefusal;
use doorbell_protocol::{Access, PhoneId};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const PINS_FILE: &str = "phones.json";
/// Pinned phones per door: a household, with room for guests; bounds the file and the
/// per-call lookup.
const MAX_PINNED: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedPhone {
    pub phone_id: PhoneId,
    /// SHA-256 of the phone's DTLS certificate, colon-separated uppercase hex.
    pub fingerprint: String,
    /// The role and permissions the door granted at pairing.
    pub access: Access,
    pub paired_at_ms: u64,
    /// Hex; the key this phone and the door share since pairing (an owner authorises its
    /// invites with it). Secret: the file is 0600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    phones: Vec<PinnedPhone>,
}

const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("cannot read the pinned phones {path}: {source}\n  fix: restore the file, or remove it and pair every phone again")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the pinned phones file {path} is damaged: {source}\n  fix: restore the file, or remove it and pair every phone again")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

pub(super) fn load(path: &Path) -> Result<Vec<PinnedPhone>, RosterError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(RosterError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let file: File = serde_json::from_str(&text).map_err(|source| RosterError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    Ok(file.phones)
}

pub(super) fn save(path: &Path, phones: &[PinnedPhone]) -> std::io::Result<()> {
    let file = File {
        version: VERSION,
        phones: phones.to_vec(),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    doorbell_common::files::write_private_file(path, &text, 0o600)
}

/// Pins `phone`: a phone id pinned before gets the new certificate (it paired again).
pub(super) fn pin(phones: &mut Vec<PinnedPhone>, phone: PinnedPhone) -> Result<(), PairRefusal> {
    phones.retain(|p| p.phone_id != phone.phone_id);
    if phones.len() >= MAX_PINNED {
        return Err(PairRefusal::Full);
    }
    phones.push(phone);
    Ok(())
}
