//! The visitor's snapshots and voice messages over HTTP: the door's upload (`POST
//! /api/snapshots`, `POST /api/voice`), the capability URL (`GET /api/snapshots/cap/<token>`,
//! `GET /api/voice/cap/<token>`: no header, expires, may wait briefly for an upload on its
//! way) and the phone's own access (`GET /api/snapshots/<id>`, `GET /api/voice/<id>` with its
//! token). One code path for both kinds ([`MediaKind`]); they differ in limits, the check of
//! the body and who is told.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorbell_protocol::{CallId, DoorId};
use serde::{Deserialize, Serialize};

use super::{bearer_token, internal_error, json_error, phone_auth};
use crate::snapshots::{
    is_jpeg, CapabilityError, MediaKind, SnapshotKey, Snapshots, MAX_SNAPSHOT_BYTES,
};
use crate::state::AppState;
use crate::store::{now_ms, StoredSnapshot};
use crate::voice::{ogg_opus_ms, VoiceError, MAX_VOICE_BYTES};

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
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body is not a JPEG (it must start with FF D8 FF and end with FF D9)")]
    NotJpeg,
    #[error(transparent)]
    Voice(#[from] VoiceError),
    #[error("cannot read the body: {0}")]
    Body(String),
}

impl UploadError {
    fn code(&self) -> &'static str {
        match self {
            UploadError::NoCredentials | UploadError::BadCredentials => "unauthorized",
            UploadError::BadTarget => "bad_target",
            UploadError::BadTime(_) => "invalid_timestamp",
            UploadError::TooLarge(_) => "too_large",
            UploadError::NotJpeg => "not_jpeg",
            UploadError::Voice(VoiceError::NotOggOpus) => "not_ogg_opus",
            UploadError::Voice(VoiceError::TooLong(_)) => "too_long",
            UploadError::Voice(VoiceError::Empty) => "empty",
            UploadError::Body(_) => "bad_body",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            UploadError::NoCredentials | UploadError::BadCredentials => StatusCode::UNAUTHORIZED,
            UploadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    voice_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
}

impl MediaKind {
    fn max_bytes(self) -> usize {
        match self {
            MediaKind::Snapshot => MAX_SNAPSHOT_BYTES,
            MediaKind::Voice => MAX_VOICE_BYTES,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            MediaKind::Snapshot => "image/jpeg",
            MediaKind::Voice => "audio/ogg",
        }
    }

    /// Checks the body; a voice message's length in milliseconds.
    fn check(self, body: &[u8]) -> Result<Option<u64>, UploadError> {
        match self {
            MediaKind::Snapshot if is_jpeg(body) => Ok(None),
            MediaKind::Snapshot => Err(UploadError::NotJpeg),
            MediaKind::Voice => Ok(Some(ogg_opus_ms(body)?)),
        }
    }
}

/// The door's id and secret from `Authorization: Bearer <door_id>:<secret>`.
pub(super) fn door_credentials(headers: &HeaderMap) -> Option<(DoorId, String)> {
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
    match store_upload(&app, MediaKind::Snapshot, &headers, query, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// `POST /api/voice?call_id=<id>` or `?missed_at_ms=<ms>`, body: one Ogg Opus file.
pub(super) async fn upload_voice(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match store_upload(&app, MediaKind::Voice, &headers, query, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn store_upload(
    app: &AppState,
    kind: MediaKind,
    headers: &HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, UploadError> {
    let (door_id, secret) = door_credentials(headers).ok_or(UploadError::NoCredentials)?;
    let key = match query.map(|q| q.0) {
        Ok(UploadQuery {
            call_id: Some(call),
            missed_at_ms: None,
        }) if doorbell_protocol::limits::check_id(&call).is_ok() => {
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
            UploadError::TooLarge(kind.max_bytes())
        } else {
            UploadError::Body(e.body_text())
        }
    })?;
    if body.len() > kind.max_bytes() {
        return Err(UploadError::TooLarge(kind.max_bytes()));
    }
    let duration_ms = kind.check(&body)?;
    let file = Snapshots::media_file_name(kind, &door_id, &key);
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
                let id = store.put_media(kind, &door_id, &key, &file, size, now)?;
                // Pruned here too, so a door uploading in a loop cannot pass max_bytes.
                Ok((id, store.prune(&limits, now)?))
            })
            .await
    };
    let (id, pruned) = match stored {
        Ok(stored) => stored,
        Err(e) => return Ok(internal_error(&e)),
    };
    super::history::remove_files(app, pruned).await;
    app.hub.snapshots.notify_uploaded();
    let url = media_capability_url(app, kind, &door_id, &key);
    match (kind, &key) {
        (MediaKind::Snapshot, SnapshotKey::Call(call_id)) => {
            app.hub
                .switchboard
                .snapshot_ready(&door_id, call_id.clone(), url)
        }
        (MediaKind::Snapshot, SnapshotKey::MissedRing(_)) => {}
        (MediaKind::Voice, _) => app.hub.notify.notifier().voice_message(&door_id, &key, url),
    }
    tracing::info!(door = %door_id.as_str(), key = %kind.stored_key(&key), bytes = body.len(), ?duration_ms, "press media stored");
    let uploaded = match kind {
        MediaKind::Snapshot => Uploaded {
            snapshot_id: Some(id),
            voice_id: None,
            duration_ms: None,
        },
        MediaKind::Voice => Uploaded {
            snapshot_id: None,
            voice_id: Some(id),
            duration_ms,
        },
    };
    Ok((StatusCode::CREATED, Json(uploaded)).into_response())
}

/// A capability URL for the `kind` of `key` at `door_id`, valid for the configured time from now.
fn media_capability_url(
    app: &AppState,
    kind: MediaKind,
    door_id: &DoorId,
    key: &SnapshotKey,
) -> String {
    let ttl = i64::try_from(app.hub.timings.snapshot_url_ttl.as_millis()).unwrap_or(i64::MAX);
    app.hub
        .snapshots
        .capabilities
        .media_url(kind, door_id, key, now_ms().saturating_add(ttl))
}

/// `GET /api/snapshots/cap/<token>`: the snapshot the token names, waiting up to
/// `snapshot_wait` for one whose upload has not arrived yet.
pub(super) async fn by_capability(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    media_by_capability(app, MediaKind::Snapshot, token).await
}

/// `GET /api/voice/cap/<token>`: the voice message the token names.
pub(super) async fn voice_by_capability(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    media_by_capability(app, MediaKind::Voice, token).await
}

async fn media_by_capability(app: AppState, kind: MediaKind, token: String) -> Response {
    let checked = app
        .hub
        .snapshots
        .capabilities
        .check_media(kind, &token, now_ms());
    let (door_id, key) = match checked {
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
                .call(move |store| store.media_by_key(kind, &door_id, &key))
                .await
        };
        match found {
            Ok(Some(snapshot)) => return serve(&app, kind, &snapshot).await,
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
    media_by_id(app, MediaKind::Snapshot, headers, id).await
}

/// `GET /api/voice/<id>` with `Authorization: Bearer <phone token>`: as [`by_id`].
pub(super) async fn voice_by_id(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    media_by_id(app, MediaKind::Voice, headers, id).await
}

async fn media_by_id(
    app: AppState,
    kind: MediaKind,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return json_error(StatusCode::BAD_REQUEST, "the id must be a number");
    };
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    let found = app
        .hub
        .store
        .call(move |store| store.media_for_phone(kind, &phone.phone_id, id))
        .await;
    match found {
        Ok(Some(snapshot)) => serve(&app, kind, &snapshot).await,
        Ok(None) => json_error(
            StatusCode::NOT_FOUND,
            "no such snapshot among this phone's doors",
        ),
        Err(e) => internal_error(&e),
    }
}

async fn serve(app: &AppState, kind: MediaKind, snapshot: &StoredSnapshot) -> Response {
    match tokio::fs::read(app.hub.snapshots.path(&snapshot.file)).await {
        Ok(jpeg) => (
            [
                (header::CONTENT_TYPE, kind.content_type()),
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
