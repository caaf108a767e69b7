//! The household API (docs/PROTOCOL.md "Household"): owners list a door's phones, rename
//! them, set their role and permissions, remove them and make invites; any phone may leave a
//! door. Phone-token authenticated; a phone only ever acts on doors it belongs to.
//!
//! | route | who |
//! |---|---|
//! | `GET /api/doors/{door_id}/phones` | the door's owners |
//! | `PATCH /api/doors/{door_id}/phones/{phone_id}` | the door's owners |
//! | `DELETE /api/doors/{door_id}/phones/{phone_id}` | the door's owners; any phone for itself (leave) |
//! | `POST /api/doors/{door_id}/invites` | the door's owners |
//! | `POST /api/doors/{door_id}/phones/me/repin` | any phone of the door, for itself |

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use doorbell_protocol::{Access, DoorId, PhoneId, Role};
use serde::{Deserialize, Serialize};

use super::{internal_error, json_error, phone_auth, MAX_CREDENTIAL_CHARS, PAIR_BODY_LIMIT};
use crate::state::AppState;
use crate::store::{now_ms, Member, MemberPatch, PhoneAuth, StoreCallError, StoreError};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/doors/{door_id}/phones", get(list))
        .route(
            "/api/doors/{door_id}/phones/{phone_id}",
            patch(update)
                .delete(remove)
                .layer(DefaultBodyLimit::max(PAIR_BODY_LIMIT)),
        )
        .route(
            "/api/doors/{door_id}/phones/{phone_id}/grant",
            post(grant).layer(DefaultBodyLimit::max(PAIR_BODY_LIMIT)),
        )
        .route(
            "/api/doors/{door_id}/phones/me/repin",
            post(repin).layer(DefaultBodyLimit::max(PAIR_BODY_LIMIT)),
        )
        .route(
            "/api/doors/{door_id}/invites",
            post(invite).layer(DefaultBodyLimit::max(PAIR_BODY_LIMIT)),
        )
}

/// The caller, and its access at the door in the path; a `401` for a bad token, a `404` for a
/// door it does not belong to (the same answer as for a door that does not exist, so a phone
/// cannot probe other households).
async fn caller_at(
    app: &AppState,
    headers: &HeaderMap,
    door_id: &str,
) -> Result<(PhoneAuth, DoorId, Access), Response> {
    let phone = phone_auth(app, headers).await?;
    let door_id = DoorId::new(door_id);
    match phone.access.get(&door_id).copied() {
        Some(access) => Ok((phone, door_id, access)),
        None => Err(json_error(
            StatusCode::NOT_FOUND,
            "no such door among this phone's doors",
        )),
    }
}

/// The `403` for a caller that is not an owner of the door, if it is not.
fn unless_owner(access: &Access) -> Option<Response> {
    (access.role != Role::Owner)
        .then(|| json_error(StatusCode::FORBIDDEN, "only the door's owners can do this"))
}

fn path_ok(ids: &[&str]) -> bool {
    ids.iter()
        .all(|id| !id.is_empty() && id.len() <= MAX_CREDENTIAL_CHARS)
}

/// A store refusal as the status a client can act on.
fn store_error(e: StoreCallError) -> Response {
    match e {
        StoreCallError::Store(e @ StoreError::NotPaired) => {
            json_error(StatusCode::NOT_FOUND, e.to_string())
        }
        StoreCallError::Store(e @ StoreError::LastOwner) => {
            json_error(StatusCode::CONFLICT, e.to_string())
        }
        StoreCallError::Store(e @ (StoreError::InvalidAccess(_) | StoreError::InvalidName(_))) => {
            json_error(StatusCode::BAD_REQUEST, e.to_string())
        }
        e => internal_error(&e),
    }
}

#[derive(Debug, Serialize)]
struct MemberList {
    phones: Vec<Member>,
}

/// `GET /api/doors/{door_id}/phones`.
async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(door)) = path else {
        return json_error(StatusCode::BAD_REQUEST, "bad door id");
    };
    let (_, door_id, access) = match caller_at(&app, &headers, &door).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = unless_owner(&access) {
        return r;
    }
    match app.hub.store.call(move |s| s.members(&door_id)).await {
        Ok(phones) => Json(MemberList { phones }).into_response(),
        Err(e) => store_error(e),
    }
}

/// `PATCH /api/doors/{door_id}/phones/{phone_id}` with a [`MemberPatch`]; answers the
/// phone's access afterwards.
async fn update(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<MemberPatch>, JsonRejection>,
) -> Response {
    let Ok(Path((door, phone))) = path else {
        return json_error(StatusCode::BAD_REQUEST, "bad door or phone id");
    };
    if !path_ok(&[&door, &phone]) {
        return json_error(StatusCode::BAD_REQUEST, "bad door or phone id");
    }
    let (_, door_id, access) = match caller_at(&app, &headers, &door).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = unless_owner(&access) {
        return r;
    }
    let Json(patch) = match body {
        Ok(body) => body,
        Err(rejection) => return json_error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let phone_id = PhoneId::new(phone);
    let result = app
        .hub
        .store
        .call(move |s| s.update_member(&door_id, &phone_id, &patch))
        .await;
    app.hub.household_wake.notify_one();
    match result {
        Ok(access) => Json(access).into_response(),
        Err(e) => store_error(e),
    }
}

/// `DELETE /api/doors/{door_id}/phones/{phone_id}`: an owner removes a phone, or a phone
/// leaves (its own id). `204` once done; the phone's connections close within
/// [`crate::household::POLL`] (at once, in practice: this wakes the follower).
async fn remove(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((door, phone))) = path else {
        return json_error(StatusCode::BAD_REQUEST, "bad door or phone id");
    };
    if !path_ok(&[&door, &phone]) {
        return json_error(StatusCode::BAD_REQUEST, "bad door or phone id");
    }
    let (caller, door_id, access) = match caller_at(&app, &headers, &door).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let phone_id = PhoneId::new(phone);
    if phone_id != caller.phone_id {
        if let Some(r) = unless_owner(&access) {
            return r;
        }
    }
    let result = app
        .hub
        .store
        .call(move |s| s.remove_member(&door_id, &phone_id))
        .await;
    app.hub.household_wake.notify_one();
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e),
    }
}

/// What an invite grants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteRequest {
    role: Role,
    #[serde(default = "yes")]
    may_unlock: bool,
    #[serde(default = "yes")]
    may_view: bool,
    /// A guest's end, Unix ms.
    #[serde(default)]
    until_ms: Option<u64>,
    /// An invite the owner's phone made for the door (with `auth`): relayed to the door,
    /// which alone decides (docs/PROTOCOL.md "Pairing"). Without it the hub makes the code,
    /// which the door will not accept for calls.
    #[serde(default)]
    code_id: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
struct Invite {
    /// The one-time code; the link is `<hub>/#pair=<code>&door=<name>`.
    code: String,
    /// The link, on the base URL the hub knows itself by.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// When the code stops working, Unix ms.
    expires_at: i64,
}

/// An invite the owner's phone made: the door checks it and keeps the code; the answer is
/// `{"code_id", "expires_at"}` (the phone builds the link: only it knows the code's secret).
async fn door_invite(
    app: &AppState,
    owner: PhoneId,
    door_id: DoorId,
    code_id: String,
    auth: String,
    grant: Access,
) -> Response {
    if code_id.len() > MAX_CREDENTIAL_CHARS || auth.len() > MAX_CREDENTIAL_CHARS {
        return json_error(StatusCode::BAD_REQUEST, "malformed code_id or auth");
    }
    if let Err(e) = crate::store::check_access(&grant, now_ms()) {
        return store_error(StoreCallError::Store(e));
    }
    let answer = app
        .hub
        .door_pairing
        .invite(crate::pairing::Invite {
            door_id,
            phone_id: owner,
            code_id: code_id.clone(),
            access: grant,
            auth,
        })
        .await;
    match answer {
        Ok(crate::pairing::DoorAnswer::Accepted(_)) => Json(DoorInvite {
            code_id,
            expires_at: now_ms() + crate::store::PAIRING_CODE_TTL.as_millis() as i64,
        })
        .into_response(),
        Ok(crate::pairing::DoorAnswer::Refused(reason)) => {
            json_error(StatusCode::FORBIDDEN, super::pair::refusal_text(reason))
        }
        Err(e) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("door_offline: {e}"),
        ),
    }
}

/// An owner's grant: the phone's whole access after the raise, and the owner's MAC of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantRequest {
    role: Role,
    may_unlock: bool,
    may_view: bool,
    #[serde(default)]
    until_ms: Option<u64>,
    auth: String,
}

/// `POST /api/doors/{door_id}/phones/{phone_id}/grant`: relay an owner's grant to the door,
/// which applies it to its pin of that phone if the owner's MAC holds (`204`), else `403`.
async fn grant(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<GrantRequest>, JsonRejection>,
) -> Response {
    let Ok(Path((door, phone))) = path else {
        return json_error(StatusCode::BAD_REQUEST, "bad door or phone id");
    };
    if !path_ok(&[&door, &phone]) {
        return json_error(StatusCode::BAD_REQUEST, "bad door or phone id");
    }
    let (caller, door_id, access) = match caller_at(&app, &headers, &door).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = unless_owner(&access) {
        return r;
    }
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return json_error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    if req.auth.len() > MAX_CREDENTIAL_CHARS {
        return json_error(StatusCode::BAD_REQUEST, "malformed auth");
    }
    let access = Access {
        role: req.role,
        may_unlock: req.may_unlock,
        may_view: req.may_view,
        until_ms: req.until_ms,
    };
    let answer = app
        .hub
        .door_pairing
        .grant(
            &door_id,
            caller.phone_id,
            PhoneId::new(phone),
            access,
            req.auth,
        )
        .await;
    door_said(answer)
}

/// A phone renewed its certificate: the old and new fingerprints and its MAC of both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepinBody {
    old_fingerprint: String,
    new_fingerprint: String,
    proof: String,
}

/// `POST /api/doors/{door_id}/phones/me/repin`: relay the caller's re-pin to the door, which
/// moves its pin if the phone's MAC holds and the old fingerprint is the pinned one (`204`),
/// else `403`; `503` while the door is offline (the phone retries on a later start).
async fn repin(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<RepinBody>, JsonRejection>,
) -> Response {
    let Ok(Path(door)) = path else {
        return json_error(StatusCode::BAD_REQUEST, "bad door id");
    };
    if !path_ok(&[&door]) {
        return json_error(StatusCode::BAD_REQUEST, "bad door id");
    }
    let (caller, door_id, _) = match caller_at(&app, &headers, &door).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return json_error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let fields = [&req.old_fingerprint, &req.new_fingerprint, &req.proof];
    if fields.iter().any(|f| f.len() > MAX_CREDENTIAL_CHARS) {
        return json_error(StatusCode::BAD_REQUEST, "malformed fingerprint or proof");
    }
    let answer = app
        .hub
        .door_pairing
        .repin(
            &door_id,
            caller.phone_id,
            req.old_fingerprint,
            req.new_fingerprint,
            req.proof,
        )
        .await;
    door_said(answer)
}

/// The door's answer to a relayed request that has no body on success.
fn door_said(answer: Result<crate::pairing::DoorAnswer, crate::pairing::RelayError>) -> Response {
    match answer {
        Ok(crate::pairing::DoorAnswer::Accepted(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(crate::pairing::DoorAnswer::Refused(reason)) => {
            json_error(StatusCode::FORBIDDEN, super::pair::refusal_text(reason))
        }
        Err(e) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("door_offline: {e}"),
        ),
    }
}

#[derive(Debug, Serialize)]
struct DoorInvite {
    code_id: String,
    /// When the door forgets the code, Unix ms (the door's 10 minutes, as the hub sees them).
    expires_at: i64,
}

/// `POST /api/doors/{door_id}/invites`: a one-time pairing code granting what the body asks.
async fn invite(
    State(app): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<InviteRequest>, JsonRejection>,
) -> Response {
    let Ok(Path(door)) = path else {
        return json_error(StatusCode::BAD_REQUEST, "bad door id");
    };
    let (caller, door_id, access) = match caller_at(&app, &headers, &door).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = unless_owner(&access) {
        return r;
    }
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return json_error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let grant = Access {
        role: req.role,
        may_unlock: req.may_unlock,
        may_view: req.may_view,
        until_ms: req.until_ms.filter(|_| req.role == Role::Guest),
    };
    if let (Some(code_id), Some(auth)) = (req.code_id, req.auth) {
        return door_invite(&app, caller.phone_id, door_id, code_id, auth, grant).await;
    }
    let result = app
        .hub
        .store
        .call(move |s| {
            let (code, expires_at) = s.create_invite(&door_id, &grant, now_ms())?;
            let name = s.find_door(door_id.as_str())?.map(|(_, name)| name);
            Ok((code, expires_at, s.base_url()?, name))
        })
        .await;
    match result {
        Ok((code, expires_at, base, name)) => Json(Invite {
            url: base.map(|b| crate::link::pairing_url(&b, &code, name.as_deref().unwrap_or(""))),
            code,
            expires_at,
        })
        .into_response(),
        Err(e) => store_error(e),
    }
}
