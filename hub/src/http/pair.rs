//! `POST /api/pair` with a code the door made: the hub relays the phone's proof to the door
//! ([`crate::pairing`]) and admits the phone only if the door accepted it.

use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::Response;
use doorbell_protocol::pairing::PairRefusal;
use doorbell_protocol::{DoorId, PhoneId};
use serde::Deserialize;

use super::{internal_error, json_error, paired_response, wrong_code, MAX_CREDENTIAL_CHARS};
use crate::pairing::{DoorAnswer, RelayError, Request};
use crate::secrets;
use crate::state::AppState;
use crate::store::now_ms;

/// The fields of a door-made code's redemption (all or none).
#[derive(Debug, Default, Deserialize)]
pub(super) struct DoorMade {
    #[serde(default)]
    door_id: Option<String>,
    #[serde(default)]
    code_id: Option<String>,
    /// The phone's persistent DTLS certificate's SHA-256 fingerprint.
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    proof: Option<String>,
}

impl DoorMade {
    pub(super) fn is_present(&self) -> bool {
        self.code_id.is_some()
    }
}

/// Redeems a door-made code: relay, wait for the door, then pair as the door said.
pub(super) async fn door_made(
    app: &AppState,
    client: IpAddr,
    req: DoorMade,
    token: Option<String>,
    name: Option<String>,
) -> Response {
    let field = |v: Option<String>| v.filter(|v| !v.is_empty() && v.len() <= MAX_CREDENTIAL_CHARS);
    let (Some(door_id), Some(code_id), Some(fingerprint), Some(proof)) = (
        field(req.door_id),
        field(req.code_id),
        field(req.fingerprint),
        field(req.proof),
    ) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "a door-made code needs door_id, code_id, fingerprint and proof",
        );
    };
    let door_id = DoorId::new(door_id);
    // The id the door will pin: this phone's, if it has a token, else a fresh one.
    let known = match token.clone() {
        Some(token) => match app
            .hub
            .store
            .call(move |store| store.phone_of_token(&token))
            .await
        {
            Ok(id) => id,
            Err(e) => return internal_error(&e),
        },
        None => None,
    };
    let phone_id = match known {
        Some(id) => id,
        None => match secrets::random_hex(secrets::ID_BYTES) {
            Ok(hex) => PhoneId::new(format!("p-{hex}")),
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a phone id");
                return json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        },
    };
    let answer = app
        .hub
        .door_pairing
        .ask(Request {
            door_id: door_id.clone(),
            code_id,
            phone_id: phone_id.clone(),
            fingerprint,
            proof,
        })
        .await;
    let access = match answer {
        Ok(DoorAnswer::Accepted(access)) => access,
        Ok(DoorAnswer::Refused(reason)) => {
            tracing::info!(door = %door_id, ?reason, "the door refused a pairing");
            return wrong_code(app, client, refusal_text(reason));
        }
        Err(e @ (RelayError::DoorOffline | RelayError::Timeout)) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("door_offline: {e}"),
            )
        }
        Err(e @ RelayError::Busy) => {
            return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    };
    let result = app
        .hub
        .store
        .call(move |store| {
            store.pair_door_approved(
                &door_id,
                access,
                token.as_deref(),
                name.as_deref(),
                &phone_id,
                now_ms(),
            )
        })
        .await;
    match result {
        Ok(paired) => paired_response(app, paired),
        Err(e) => {
            tracing::error!(error = %e, "pairing a phone the door accepted failed");
            internal_error(&e)
        }
    }
}

/// The `error` of a `403`: the refusal's wire name first (for programs), then a sentence.
pub(super) fn refusal_text(reason: PairRefusal) -> String {
    let (code, why) = match reason {
        PairRefusal::UnknownCode => (
            "unknown_code",
            "the door made no such code (or restarted since)",
        ),
        PairRefusal::Used => ("used", "this pairing link was used already"),
        PairRefusal::Expired => ("expired", "this pairing link expired"),
        PairRefusal::BadProof => ("bad_proof", "the proof does not match the door's code"),
        PairRefusal::BadFingerprint => ("bad_fingerprint", "not a certificate fingerprint"),
        PairRefusal::Full => ("full", "the door pins as many phones as it can; remove one"),
        PairRefusal::UnknownPhone => ("unknown_phone", "the door never pinned that phone"),
        PairRefusal::NotPinned => (
            "not_pinned",
            "the door pins another certificate for this phone; pair again with a link from the door",
        ),
        PairRefusal::NotOwner => (
            "not_owner",
            "only an owner the door pinned can invite; pair again with a link from the door",
        ),
    };
    format!("{code}: the door refused: {why}")
}
