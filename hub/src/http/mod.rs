//! HTTP routes: the phone app's files, `POST /api/pair`, Web Push subscriptions (in [`push`]),
//! quiet hours (`/api/quiet`, in [`quiet`]), the history (`/api/events`, in [`history`]), the snapshots (`/api/snapshots`, in
//! [`snapshots`]), `GET /healthz`, and `GET /ws` (handed to [`crate::ws`]). Every response
//! carries the security headers.

mod fuzz_bodies;
mod guard;
mod history;
mod household;
mod pair;
mod push;
mod quiet;
mod replies;
mod snapshots;
pub(crate) use fuzz_bodies::fuzz_pair_body;

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::assets;
use crate::state::{AppState, Client};
use crate::store::{now_ms, PhoneAuth, StoreCallError, StoreError};

/// Largest `POST /api/pair` body: a code, a token and a name fit in a few hundred bytes.
pub(crate) const PAIR_BODY_LIMIT: usize = 4 * 1024;
/// Longest pairing code or token accepted before even hashing it.
pub(crate) const MAX_CREDENTIAL_CHARS: usize = 256;

/// Content-Security-Policy for everything served: only our own scripts and styles, requests
/// and the WebSocket only to ourselves (`'self'` covers `ws:`/`wss:` to the same host), `blob:`
/// media for the call video, and no framing by other sites (clickjacking an "open door").
pub(crate) const CSP: &str = "default-src 'self'; connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// HSTS, sent only with a certificate browsers trust (a self-signed one would then lock phones
/// out: HSTS forbids clicking through a warning). A year, the usual value.
pub(crate) const HSTS: &str = "max-age=31536000";

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/ws", get(crate::ws::upgrade))
        .route(
            "/api/pair",
            post(pair).layer(DefaultBodyLimit::max(PAIR_BODY_LIMIT)),
        )
        .route(
            "/api/events",
            get(history::list).delete(history::delete_door),
        )
        .route("/api/events/{id}", delete(history::delete_one))
        .route(
            "/api/snapshots",
            post(snapshots::upload)
                .layer(DefaultBodyLimit::max(crate::snapshots::MAX_SNAPSHOT_BYTES)),
        )
        .route("/api/snapshots/cap/{token}", get(snapshots::by_capability))
        .route("/api/snapshots/{id}", get(snapshots::by_id))
        .route(
            "/api/voice",
            post(snapshots::upload_voice)
                .layer(DefaultBodyLimit::max(crate::voice::MAX_VOICE_BYTES)),
        )
        .route(
            "/api/voice/cap/{token}",
            get(snapshots::voice_by_capability),
        )
        .route("/api/voice/{id}", get(snapshots::voice_by_id))
        .merge(push::routes())
        .merge(household::routes())
        .merge(quiet::routes())
        .merge(replies::routes())
        .fallback(static_file)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::host_and_origin,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

async fn security_headers(State(app): State<AppState>, mut response: Response) -> Response {
    let h = response.headers_mut();
    if app.hub.tls.as_ref().is_some_and(|tls| tls.trusted) {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn static_file(request: Request) -> Response {
    if request.method() != axum::http::Method::GET && request.method() != axum::http::Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    match assets::find(request.uri().path()) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                // Always revalidate: a new hub version must reach phones at once.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The credential of `Authorization: Bearer <credential>`, if present and of a sane length.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_CREDENTIAL_CHARS)
        .map(str::to_owned)
}

/// The phone whose token is in `Authorization: Bearer <token>`, or the `401`/`500` to send.
async fn phone_auth(app: &AppState, headers: &HeaderMap) -> Result<PhoneAuth, Response> {
    let Some(token) = bearer_token(headers) else {
        return Err(json_error(
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer <phone token>",
        ));
    };
    match app
        .hub
        .store
        .call(move |store| store.authenticate_phone(&token))
        .await
    {
        Ok(Some(phone)) => Ok(phone),
        Ok(None) => Err(json_error(
            StatusCode::UNAUTHORIZED,
            "unknown phone token; pair again",
        )),
        Err(e) => Err(internal_error(&e)),
    }
}

fn internal_error(e: &StoreCallError) -> Response {
    tracing::error!(error = %e, "database call failed");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, e.client_message())
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        error: String,
    }
    (
        status,
        Json(Body {
            error: message.into(),
        }),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct PairRequest {
    /// A hub-made code (`create_pairing_code`, an app invite): admits the phone to the hub's
    /// household only; a door refuses its calls until it pairs with a door-made code.
    #[serde(default)]
    code: String,
    /// A door-made code (`doorbelld pair`): relayed to that door, which decides.
    #[serde(flatten)]
    door_made: pair::DoorMade,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct PairResponse {
    token: String,
    phone_id: String,
    /// The door the code was for, so a phone can keep what the link said about that door
    /// (its pinned DTLS fingerprint).
    door_id: String,
}

/// Tells the door's phones and the router about a new pairing; the phone's token reply.
fn paired_response(app: &AppState, paired: crate::store::Paired) -> Response {
    tracing::info!(phone = %paired.phone_id, door = %paired.door_id, new = paired.new_phone, "phone paired");
    if paired.joined {
        app.hub
            .switchboard
            .phone_joined(&paired.phone_id, &paired.door_id, &paired.phone_name);
    }
    let door_id = paired.door_id.clone();
    app.hub.switchboard.pairing_added(
        &paired.phone_id,
        paired.door_id,
        paired.door_name,
        paired.access,
    );
    Json(PairResponse {
        token: paired.token,
        phone_id: paired.phone_id.0,
        door_id: door_id.0,
    })
    .into_response()
}

/// The answer to a wrong pairing code from `client`: counted; `429` once over the limit.
fn wrong_code(app: &AppState, client: IpAddr, why: String) -> Response {
    let limiter = &app.hub.pair_failures;
    let now = Instant::now();
    if limiter.has_used_up(client, now) {
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many wrong pairing codes; wait a minute",
        );
    }
    limiter.record_failure(client, now);
    json_error(StatusCode::FORBIDDEN, why)
}

/// `POST /api/pair`: redeem a one-time code for a phone token.
///
/// The code is checked first: a valid one always pairs, whatever others sharing the address
/// got wrong. A wrong one counts against the client's address (its /64); past the limit the
/// answer is `429` instead of `403`.
async fn pair(
    State(app): State<AppState>,
    Extension(Client { ip: client, .. }): Extension<Client>,
    body: Result<Json<PairRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return json_error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let too_long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_CREDENTIAL_CHARS);
    if req.door_made.is_present() {
        if too_long(&req.token) {
            return json_error(StatusCode::BAD_REQUEST, "malformed token");
        }
        return pair::door_made(&app, client, req.door_made, req.token, req.name).await;
    }
    if req.code.trim().is_empty() || req.code.len() > MAX_CREDENTIAL_CHARS || too_long(&req.token) {
        return json_error(StatusCode::BAD_REQUEST, "missing or malformed pairing code");
    }
    let result = app
        .hub
        .store
        .call(move |store| {
            store.redeem_pairing_code(
                &req.code,
                req.token.as_deref(),
                req.name.as_deref(),
                now_ms(),
            )
        })
        .await;
    match result {
        Ok(paired) => paired_response(&app, paired),
        Err(StoreCallError::Store(
            e @ (StoreError::PairingCodeUnknown
            | StoreError::PairingCodeUsed
            | StoreError::PairingCodeExpired),
        )) => wrong_code(&app, client, e.to_string()),
        Err(e) => {
            tracing::error!(error = %e, "pairing failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, e.client_message())
        }
    }
}
