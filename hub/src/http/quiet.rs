//! `GET /api/quiet` and `PUT /api/quiet`: a phone's quiet hours and do-not-disturb switch
//! (see `docs/PROTOCOL.md`, "Quiet hours"). Errors are JSON: `{"error", "code", "field"?}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::phone_auth;
use crate::quiet::QuietSettings;
use crate::state::AppState;
use crate::store::now_ms;

/// Largest body read: [`crate::quiet::MAX_WINDOWS`] windows of ~60 bytes fit many times over.
pub(crate) const QUIET_BODY_LIMIT: usize = 8 * 1024;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/quiet",
        get(read)
            .put(write)
            .layer(DefaultBodyLimit::max(QUIET_BODY_LIMIT)),
    )
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

fn refuse(
    status: StatusCode,
    code: &'static str,
    error: String,
    field: Option<String>,
) -> Response {
    (status, Json(ErrorBody { error, code, field })).into_response()
}

/// The settings as stored, with `quiet_now`: whether the phone would be left out of a ring now.
#[derive(Debug, Serialize)]
struct Answer {
    #[serde(flatten)]
    settings: QuietSettings,
    quiet_now: bool,
}

fn answer(settings: QuietSettings) -> Response {
    let quiet_now = settings.is_quiet(now_ms());
    Json(Answer {
        settings,
        quiet_now,
    })
    .into_response()
}

/// `GET /api/quiet`: the phone's settings (all off if it never stored any).
async fn read(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(refused) => return refused,
    };
    let phone_id = phone.phone_id.clone();
    match app
        .hub
        .store
        .call(move |s| s.quiet_settings(&phone_id))
        .await
    {
        Ok(stored) => answer(
            stored
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default(),
        ),
        Err(e) => super::internal_error(&e),
    }
}

/// `PUT /api/quiet`: replaces the phone's settings; answers like `GET`.
async fn write(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(refused) => return refused,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is over {QUIET_BODY_LIMIT} bytes"),
                None,
            )
        }
        Err(rejection) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_body",
                rejection.body_text(),
                None,
            )
        }
    };
    let settings: QuietSettings = match serde_json::from_slice(&body) {
        Ok(settings) => settings,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("not quiet-hours settings: {e}"),
                None,
            )
        }
    };
    let now = now_ms();
    if let Err(e) = settings.validate(now) {
        return refuse(
            StatusCode::BAD_REQUEST,
            e.code(),
            e.to_string(),
            Some(e.field()),
        );
    }
    let json = match serde_json::to_string(&settings) {
        Ok(json) => json,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e.to_string(),
                None,
            )
        }
    };
    let phone_id = phone.phone_id.clone();
    match app
        .hub
        .store
        .call(move |s| s.set_quiet_settings(&phone_id, &json, now))
        .await
    {
        Ok(()) => {
            tracing::info!(phone = %phone.phone_id, quiet_now = settings.is_quiet(now), "quiet hours updated");
            answer(settings)
        }
        Err(e) => super::internal_error(&e),
    }
}
