//! The visitor's snapshots over HTTP: the door's upload (`POST /api/snapshots`), the
//! capability URL (`GET /api/snapshots/cap/<token>`, no header, expires, may wait briefly for
//! an upload on its way) and the phone's own access (`GET /api/snapshots/<id>` with its token).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorbell_protocol::{CallId, DoorId};
use serde::{Deserialize, Serialize};

use super::{bearer_token, internal_error, json_error, phone_auth};
use crate::snapshots::{is_jpeg, CapabilityError, SnapshotKey, Snapshots, MAX_SNAPSHOT_BYTES};
use crate::state::AppState;
use crate::store::{now_ms, StoredSnapshot};

/// Longest call id accepted in an upload (the door's are ~20 characters).
pub(crate) const MAX_CALL_ID_CHARS: usize = 128;
/// How long a browser may keep a served snapshot: the bytes of one snapshot never change.
const SNAPSHOT_CACHE_CONTROL: &str = "private, max-age=3600";

/// Why an upload was refused; `code` is the JSON error's `code`.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("send Authorization: Bearer <door_id>:<secret>")]
    NoCredentials,
    #[error("unknown door or wrong secret")]
    BadCredentials,
    #[error("give exactly one of call_id or missed_at_ms")]
    BadTarget,
    #[error("{0}")]
    BadTime(String),
    #[error("the snapshot is larger than {MAX_SNAPSHOT_BYTES} bytes")]
    TooLarge,
    #[error("the body is not a JPEG (it must start with FF D8 FF and end with FF D9)")]
    NotJpeg,
    #[error("cannot read the body: {0}")]
    Body(String),
}

impl UploadError {
    fn code(&self) -> &'static str {
        match self {
            UploadError::NoCredentials | UploadError::BadCredentials => "unauthorized",
            UploadError::BadTarget => "bad_target",
            UploadError::BadTime(_) => "invalid_timestamp",
            UploadError::TooLarge => "too_large",
            UploadError::NotJpeg => "not_jpeg",
            UploadError::Body(_) => "bad_body",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            UploadError::NoCredentials | UploadError::BadCredentials => StatusCode::UNAUTHORIZED,
            UploadError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
            code: &'static str,
        }
        let body = Body {
            error: self.to_string(),
            code: self.code(),
        };
        (self.status(), Json(body)).into_response()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadQuery {
    /// The call whose ring this press was.
    call_id: Option<String>,
    /// The `at_ms` of the `missed_ring` this press was reported as.
    missed_at_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Uploaded {
    snapshot_id: i64,
}

/// The door's id and secret from `Authorization: Bearer <door_id>:<secret>`.
fn door_credentials(headers: &HeaderMap) -> Option<(DoorId, String)> {
    let credential = bearer_token(headers)?;
    let (door, secret) = credential.split_once(':')?;
    Some((DoorId::new(door), secret.to_owned()))
}

/// `POST /api/snapshots?call_id=<id>` or `?missed_at_ms=<ms>`, body: one JPEG.
pub(super) async fn upload(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match store_upload(&app, &headers, query, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn store_upload(
    app: &AppState,
    headers: &HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, UploadError> {
    let (door_id, secret) = door_credentials(headers).ok_or(UploadError::NoCredentials)?;
    let key = match query.map(|q| q.0) {
        Ok(UploadQuery {
            call_id: Some(call),
            missed_at_ms: None,
        }) if !call.is_empty()
            && call.len() <= MAX_CALL_ID_CHARS
            && !call.chars().any(char::is_control) =>
        {
            SnapshotKey::Call(CallId::new(call))
        }
        Ok(UploadQuery {
            call_id: None,
            missed_at_ms: Some(at),
        }) => SnapshotKey::MissedRing(
            crate::router::check_missed_ring_time(at, now_ms()).map_err(UploadError::BadTime)?,
        ),
        _ => return Err(UploadError::BadTarget),
    };
    let auth = {
        let door_id = door_id.clone();
        app.hub
            .store
            .call(move |store| store.authenticate_door(&door_id, &secret))
            .await
    };
    match auth {
        Ok(Some(_)) => {}
        Ok(None) => return Err(UploadError::BadCredentials),
        Err(e) => return Ok(internal_error(&e)),
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            UploadError::TooLarge
        } else {
            UploadError::Body(e.body_text())
        }
    })?;
    if !is_jpeg(&body) {
        return Err(UploadError::NotJpeg);
    }
    let file = Snapshots::file_name(&door_id, &key);
    let written = {
        let (hub, file) = (app.hub.clone(), file.clone());
        let bytes = body.clone();
        tokio::task::spawn_blocking(move || hub.snapshots.write(&file, &bytes)).await
    };
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(?written, "could not write a snapshot file");
        return Ok(json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "hub could not store the snapshot; retry",
        ));
    }
    let limits = app.hub.config.history;
    let stored = {
        let (door_id, key) = (door_id.clone(), key.clone());
        let size = body.len();
        app.hub
            .store
            .call(move |store| {
                let now = now_ms();
                let id = store.put_snapshot(&door_id, &key, &file, size, now)?;
                // Pruned here too, so a door uploading in a loop cannot pass max_bytes.
                Ok((id, store.prune(&limits, now)?))
            })
            .await
    };
    let (snapshot_id, pruned) = match stored {
        Ok(stored) => stored,
        Err(e) => return Ok(internal_error(&e)),
    };
    super::history::remove_files(app, pruned).await;
    app.hub.snapshots.notify_uploaded();
    if let SnapshotKey::Call(call_id) = &key {
        let url = capability_url(app, &door_id, &key);
        app.hub
            .switchboard
            .snapshot_ready(&door_id, call_id.clone(), url);
    }
    tracing::info!(door = %door_id.as_str(), key = %key.encode(), bytes = body.len(), "snapshot stored");
    Ok((StatusCode::CREATED, Json(Uploaded { snapshot_id })).into_response())
}

/// A capability URL for `key` at `door_id`, valid for the configured time from now.
pub(crate) fn capability_url(app: &AppState, door_id: &DoorId, key: &SnapshotKey) -> String {
    let ttl = i64::try_from(app.hub.timings.snapshot_url_ttl.as_millis()).unwrap_or(i64::MAX);
    app.hub
        .snapshots
        .capabilities
        .url(door_id, key, now_ms().saturating_add(ttl))
}

/// `GET /api/snapshots/cap/<token>`: the snapshot the token names, waiting up to
/// `snapshot_wait` for one whose upload has not arrived yet.
pub(super) async fn by_capability(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let (door_id, key) = match app.hub.snapshots.capabilities.check(&token, now_ms()) {
        Ok(named) => named,
        Err(e @ CapabilityError::Expired) => return json_error(StatusCode::GONE, e.to_string()),
        Err(e @ CapabilityError::Invalid) => {
            return json_error(StatusCode::NOT_FOUND, e.to_string())
        }
    };
    // Subscribed before the first look, so an upload between the look and the wait wakes us.
    let mut uploads = app.hub.snapshots.watch_uploads();
    let deadline = tokio::time::Instant::now() + app.hub.timings.snapshot_wait;
    loop {
        let found = {
            let (door_id, key) = (door_id.clone(), key.clone());
            app.hub
                .store
                .call(move |store| store.snapshot_by_key(&door_id, &key))
                .await
        };
        match found {
            Ok(Some(snapshot)) => return serve(&app, &snapshot).await,
            Ok(None) => {}
            Err(e) => return internal_error(&e),
        }
        match tokio::time::timeout_at(deadline, uploads.changed()).await {
            Ok(Ok(())) => continue,
            _ => {
                return json_error(
                    StatusCode::NOT_FOUND,
                    "no snapshot for this ring (the door has not sent one)",
                )
            }
        }
    }
}

/// `GET /api/snapshots/<id>` with `Authorization: Bearer <phone token>`: a snapshot of a door
/// this phone is paired with (`404` for any other).
pub(super) async fn by_id(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return json_error(StatusCode::BAD_REQUEST, "the snapshot id must be a number");
    };
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    let found = app
        .hub
        .store
        .call(move |store| store.snapshot_for_phone(&phone.phone_id, id))
        .await;
    match found {
        Ok(Some(snapshot)) => serve(&app, &snapshot).await,
        Ok(None) => json_error(
            StatusCode::NOT_FOUND,
            "no such snapshot among this phone's doors",
        ),
        Err(e) => internal_error(&e),
    }
}

async fn serve(app: &AppState, snapshot: &StoredSnapshot) -> Response {
    match tokio::fs::read(app.hub.snapshots.path(&snapshot.file)).await {
        Ok(jpeg) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, SNAPSHOT_CACHE_CONTROL),
            ],
            jpeg,
        )
            .into_response(),
        // Pruned between the row and the read.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json_error(StatusCode::NOT_FOUND, "this snapshot was deleted")
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read a snapshot file");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hub could not read the snapshot",
            )
        }
    }
}
