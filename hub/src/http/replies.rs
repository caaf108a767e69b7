//! Quick replies over HTTP (docs/PROTOCOL.md "Quick replies"): a phone records a clip
//! (`POST /api/replies`), lists its door's (`GET /api/replies?door_id=`), deletes one; the door
//! fetches the one a phone sent it (`GET /api/replies/<id>` with its own credentials). Errors
//! are `{"error", "code"}`; a refused upload keeps nothing.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use doorbell_protocol::DoorId;
use serde::{Deserialize, Serialize};

use super::{internal_error, phone_auth};
use crate::state::AppState;
use crate::store::{now_ms, NewReply, ReplyInfo, ReplyQuota};
use crate::voice::{ogg_opus_ms, webm::webm_opus_ms, VoiceError};

/// Largest clip: 30 s of Opus at MediaRecorder's default ~32-64 kbit/s fits.
pub(crate) const MAX_REPLY_BYTES: usize = 256 * 1024;
/// Longest clip: a quick reply is a sentence or two.
pub(crate) const MAX_REPLY_MS: u64 = 30_000;
/// Per household (door): enough for a handful of prepared replies and recent recorded ones,
/// small enough that phones cannot fill the hub's disk.
pub(crate) const REPLY_QUOTA: ReplyQuota = ReplyQuota {
    max_count: 16,
    max_bytes: 2 * 1024 * 1024,
};
/// Longest label ("Leave it at the door" and the like).
pub(crate) const MAX_LABEL_CHARS: usize = 40;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/replies",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_REPLY_BYTES)),
        )
        .route("/api/replies/{id}", get(fetch).delete(remove))
}

fn refuse(status: StatusCode, code: &'static str, error: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        error: String,
        code: &'static str,
    }
    (
        status,
        Json(Body {
            error: error.into(),
            code,
        }),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    door_id: String,
    label: String,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    door_id: String,
}

/// A refusal before it becomes a response (small, for `Result`s).
type Refusal = (StatusCode, &'static str, String);

/// The container and length of a clip: Ogg or WebM, Opus inside, at most [`MAX_REPLY_MS`].
fn check_clip(body: &[u8]) -> Result<(&'static str, u64), Refusal> {
    let measured = if body.starts_with(b"OggS") {
        ogg_opus_ms(body).map(|ms| ("audio/ogg", ms))
    } else {
        webm_opus_ms(body).map(|ms| ("audio/webm", ms))
    };
    let too_long = |ms| {
        (
            StatusCode::BAD_REQUEST,
            "too_long",
            format!("the clip is {ms} ms long; at most {MAX_REPLY_MS} ms"),
        )
    };
    match measured {
        Ok((_, ms)) if ms > MAX_REPLY_MS => Err(too_long(ms)),
        Ok(found) => Ok(found),
        // The Ogg check has its own (longer) limit for voice messages.
        Err(VoiceError::TooLong(ms)) => Err(too_long(ms)),
        Err(e @ VoiceError::Empty) => Err((StatusCode::BAD_REQUEST, "empty", e.to_string())),
        Err(e @ VoiceError::NotOggOpus) => {
            Err((StatusCode::BAD_REQUEST, "not_opus", e.to_string()))
        }
    }
}

/// `POST /api/replies?door_id=<door>&label=<label>`, phone token, body: Opus in Ogg or WebM.
async fn upload(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(refused) => return refused,
    };
    let Ok(Query(query)) = query else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "give door_id and label",
        );
    };
    let label = query.label.trim().to_owned();
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_CHARS
        || label.chars().any(char::is_control)
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_label",
            format!("label: 1 to {MAX_LABEL_CHARS} characters, no control characters"),
        );
    }
    let body = match body {
        Ok(body) if body.len() <= MAX_REPLY_BYTES => body,
        Err(e) if e.status() != StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
        }
        _ => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the clip is larger than {MAX_REPLY_BYTES} bytes"),
            )
        }
    };
    let (content_type, duration_ms) = match check_clip(&body) {
        Ok(found) => found,
        Err((status, code, error)) => return refuse(status, code, error),
    };
    let name = match crate::secrets::random_hex(16) {
        Ok(hex) => hex,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    let extension = if content_type == "audio/ogg" {
        "ogg"
    } else {
        "webm"
    };
    let reply = NewReply {
        door_id: DoorId::new(query.door_id),
        label,
        content_type,
        duration_ms,
        bytes: body.len(),
        file: format!("reply-{name}.{extension}"),
    };
    // The row (and the quota) first: a refused clip never touches the disk.
    let stored = {
        let (phone_id, reply) = (phone.phone_id.clone(), reply.clone());
        app.hub
            .store
            .call(move |s| s.add_reply(&phone_id, &reply, REPLY_QUOTA, now_ms()))
            .await
    };
    let id = match stored {
        Ok(Ok(Some(id))) => id,
        Ok(Ok(None)) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "unknown_door",
                "this phone is not paired with that door",
            )
        }
        Ok(Err(())) => {
            return refuse(
                StatusCode::CONFLICT,
                "over_quota",
                format!(
                    "this door's quick replies are full ({} clips, {} bytes); delete one first",
                    REPLY_QUOTA.max_count, REPLY_QUOTA.max_bytes
                ),
            )
        }
        Err(e) => return internal_error(&e),
    };
    let written = {
        let (hub, file) = (app.hub.clone(), reply.file.clone());
        tokio::task::spawn_blocking(move || hub.snapshots.write(&file, &body)).await
    };
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(?written, "could not write a quick reply");
        let phone_id = phone.phone_id.clone();
        let _ = app
            .hub
            .store
            .call(move |s| s.delete_reply(&phone_id, id))
            .await;
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "could not store the clip; retry",
        );
    }
    tracing::info!(phone = %phone.phone_id, door = %reply.door_id, id, duration_ms, "quick reply stored");
    #[derive(Serialize)]
    struct Created {
        reply_id: i64,
        duration_ms: u64,
    }
    (
        StatusCode::CREATED,
        Json(Created {
            reply_id: id,
            duration_ms,
        }),
    )
        .into_response()
}

/// `GET /api/replies?door_id=<door>`: the door's replies, oldest first.
async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(refused) => return refused,
    };
    let Ok(Query(query)) = query else {
        return refuse(StatusCode::BAD_REQUEST, "bad_query", "give door_id");
    };
    let door_id = DoorId::new(query.door_id);
    match app
        .hub
        .store
        .call(move |s| s.replies_for_phone(&phone.phone_id, &door_id))
        .await
    {
        Ok(Some(replies)) => {
            #[derive(Serialize)]
            struct Listed {
                replies: Vec<ReplyInfo>,
            }
            Json(Listed { replies }).into_response()
        }
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            "unknown_door",
            "this phone is not paired with that door",
        ),
        Err(e) => internal_error(&e),
    }
}

/// `GET /api/replies/<id>`: the clip, for a phone of its door or the door itself.
async fn fetch(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return refuse(StatusCode::BAD_REQUEST, "bad_id", "the id must be a number");
    };
    // A door says `Bearer <door_id>:<secret>`; anything else is a phone token.
    let door = match super::snapshots::door_credentials(&headers) {
        Some((door_id, secret)) => {
            let checked = {
                let door_id = door_id.clone();
                app.hub
                    .store
                    .call(move |s| s.authenticate_door(&door_id, &secret))
                    .await
            };
            match checked {
                Ok(Some(_)) => door_id,
                Ok(None) => {
                    return refuse(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "unknown door or wrong secret",
                    )
                }
                Err(e) => return internal_error(&e),
            }
        }
        None => {
            let phone = match phone_auth(&app, &headers).await {
                Ok(phone) => phone,
                Err(refused) => return refused,
            };
            match app
                .hub
                .store
                .call(move |s| s.reply_door_for_phone(&phone.phone_id, id))
                .await
            {
                Ok(Some(door)) => door,
                Ok(None) => {
                    return refuse(StatusCode::NOT_FOUND, "not_found", "no such quick reply")
                }
                Err(e) => return internal_error(&e),
            }
        }
    };
    let found = app
        .hub
        .store
        .call(move |s| s.reply_of_door(&door, id))
        .await;
    let (file, content_type) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, "not_found", "no such quick reply"),
        Err(e) => return internal_error(&e),
    };
    match tokio::fs::read(app.hub.snapshots.path(&file)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read a quick reply");
            refuse(StatusCode::NOT_FOUND, "not_found", "the clip is gone")
        }
    }
}

/// `DELETE /api/replies/<id>`: `204`, or `404` if it is not one of this phone's doors'.
async fn remove(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return refuse(StatusCode::BAD_REQUEST, "bad_id", "the id must be a number");
    };
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(refused) => return refused,
    };
    match app
        .hub
        .store
        .call(move |s| s.delete_reply(&phone.phone_id, id))
        .await
    {
        Ok(Some(file)) => {
            app.hub.snapshots.remove(&[file]);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(None) => refuse(StatusCode::NOT_FOUND, "not_found", "no such quick reply"),
        Err(e) => internal_error(&e),
    }
}
