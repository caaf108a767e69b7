//! `GET /api/push/key`, `POST /api/push/subscription`, `DELETE /api/push/subscription`
//! (see `docs/PROTOCOL.md`, "Web Push"). Errors are JSON: `{"error", "code", "field"}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use doorbell_protocol::PhoneId;
use serde::Serialize;

use super::bearer_token;
use crate::push::endpoint::ip_is_public;
use crate::push::subscription::{self, ApiErrorCode, FieldError, NewSubscription};
use crate::state::AppState;
use crate::store::{now_ms, Store, StoreError};

/// Largest subscription body read: the endpoint ([`subscription::MAX_ENDPOINT_CHARS`]) and
/// two keys fit several times over; anything bigger is not a subscription.
pub const SUBSCRIPTION_BODY_LIMIT: usize = 16 * 1024;
/// How long the API waits for DNS when checking an endpoint's name. The answer is only
/// advisory (sends check again), so a slow resolver must not hold up the phone.
pub const ENDPOINT_DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/push/key", get(key)).route(
        "/api/push/subscription",
        axum::routing::post(subscribe)
            .delete(unsubscribe)
            .layer(DefaultBodyLimit::max(SUBSCRIPTION_BODY_LIMIT)),
    )
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    code: ApiErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

/// A refusal: its status and JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl ApiError {
    fn new(status: StatusCode, code: ApiErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: message.into(),
                code,
                field: None,
            },
        }
    }

    fn unauthorized(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ApiErrorCode::Unauthorized,
            message,
        )
    }

    fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorCode::Internal,
            "hub fault; retry",
        )
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                error: e.message,
                code: e.code,
                field: Some(e.field),
            },
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        ApiError {
            status: rejection.status(),
            body: ErrorBody {
                error: format!("body: {}", rejection.body_text()),
                code: ApiErrorCode::BodyTooLarge,
                field: Some("body"),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct KeyResponse {
    vapid_public_key: String,
}

/// `GET /api/push/key`: the `applicationServerKey` for `PushManager.subscribe`.
async fn key(State(app): State<AppState>) -> Response {
    Json(KeyResponse {
        vapid_public_key: app.hub.notify.vapid_public_key().to_owned(),
    })
    .into_response()
}

/// Runs `job` with the store on the blocking pool.
async fn with_store<T: Send + 'static>(
    store: &Store,
    job: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    store
        .call(job)
        .await
        .map_err(|e| ApiError::internal("push subscription storage failed", e))
}

/// The phone presenting `Authorization: Bearer <token>`.
async fn phone(app: &AppState, headers: &HeaderMap) -> Result<PhoneId, ApiError> {
    let token = bearer_token(headers)
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <phone token>"))?;
    match with_store(&app.hub.store, move |s| s.authenticate_phone(&token)).await? {
        Some(phone) => Ok(phone.phone_id),
        None => Err(ApiError::unauthorized("unknown phone token; pair again")),
    }
}

/// Refuses a named endpoint whose every address is non-public. Only a hint at subscription
/// time (DNS may change; every send checks again), so a lookup that fails or is slow passes.
async fn check_endpoint_dns(app: &AppState, sub: &NewSubscription) -> Result<(), FieldError> {
    let Some(host) = sub
        .endpoint
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
    else {
        return Ok(());
    };
    if host.starts_with('[')
        || host.parse::<std::net::IpAddr>().is_ok()
        || app.hub.notify.push_config().insecure_allowed(&host)
    {
        return Ok(());
    }
    let lookup = tokio::net::lookup_host(format!("{host}:443"));
    let resolved = tokio::time::timeout(ENDPOINT_DNS_TIMEOUT, lookup).await;
    match resolved {
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            if !addrs.is_empty() && !addrs.iter().any(|a| ip_is_public(a.ip())) {
                return Err(FieldError {
                    field: "endpoint",
                    code: ApiErrorCode::ForbiddenHost,
                    message: format!(
                        "endpoint: host {host:?} resolves only to non-public addresses"
                    ),
                });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `POST /api/push/subscription`: save the browser's `PushSubscription.toJSON()`.
async fn subscribe(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let phone_id = phone(&app, &headers).await?;
    let body = body?;
    let now = now_ms();
    let sub = subscription::parse_subscription(&body, app.hub.notify.push_config(), now)?;
    check_endpoint_dns(&app, &sub).await?;
    let owner = phone_id.clone();
    let dropped = with_store(&app.hub.store, move |s| {
        s.save_push_subscription(&owner, &sub, now)
    })
    .await?;
    tracing::info!(phone = %phone_id, dropped, "push subscription saved");
    Ok(StatusCode::CREATED)
}

/// `DELETE /api/push/subscription`: forget one of this phone's endpoints (204 whether or not
/// it was there, so the call is safe to repeat).
async fn unsubscribe(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let phone_id = phone(&app, &headers).await?;
    let endpoint = subscription::parse_unsubscribe(&body?)?;
    with_store(&app.hub.store, move |s| {
        s.delete_push_subscription(&phone_id, &endpoint)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
