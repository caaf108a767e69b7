//! `GET /api/events` (the history, paged), `DELETE /api/events/<id>` and
//! `DELETE /api/events?door_id=`: phone-token authenticated, limited to the phone's doors.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorbell_protocol::DoorId;
use serde::Deserialize;

use super::{internal_error, json_error, phone_auth, MAX_CREDENTIAL_CHARS};
use crate::snapshots::{MediaKind, SnapshotKey};
use crate::state::AppState;
use crate::store::{now_ms, EventKind, HistoryEvent, HistoryPage};

/// Events returned by `GET /api/events` without paging parameters: a screenful of history.
pub(crate) const EVENTS_LIMIT: u32 = 50;
/// Largest `limit` of a paged `GET /api/events`: a long screen; more is a bulk export, which
/// this API is not.
pub(crate) const MAX_PAGE: u32 = 200;
/// Missed rings this recent are always in `GET /api/events`, however many calls came after
/// (the phone app lists a week's worth).
pub(crate) const MISSED_RINGS_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only events with an id below this (the previous page's `next_before`).
    before: Option<i64>,
    /// Page size, 1..=[`MAX_PAGE`].
    limit: Option<u32>,
}

/// `GET /api/events[?before=<id>&limit=<n>]` with `Authorization: Bearer <phone token>`.
/// Without parameters: the newest [`EVENTS_LIMIT`] events plus the recent missed rings (what
/// it always returned); with either: one page and `next_before` for the next one.
pub(super) async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if query.limit.is_some_and(|l| l == 0 || l > MAX_PAGE) {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_PAGE}"),
        );
    }
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    // Make sure events recorded so far are visible.
    app.hub.switchboard.recorder().flush().await;
    let paged = query.before.is_some() || query.limit.is_some();
    let limit = query.limit.unwrap_or(EVENTS_LIMIT);
    let phone_id = phone.phone_id;
    let result = app
        .hub
        .store
        .call(move |store| {
            if paged {
                store.history_page(&phone_id, query.before, limit)
            } else {
                store.events_for_phone(&phone_id, limit, now_ms() - MISSED_RINGS_KEPT_MS)
            }
        })
        .await;
    let mut events = match result {
        Ok(events) => events,
        Err(e) => return internal_error(&e),
    };
    let expires = now_ms().saturating_add(ttl_ms(&app));
    for event in &mut events {
        event.snapshot = media_url(&app, MediaKind::Snapshot, event, expires);
        event.voice = media_url(&app, MediaKind::Voice, event, expires);
    }
    let next_before = if paged && events.len() == limit as usize {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Json(HistoryPage {
        events,
        next_before,
    })
    .into_response()
}

fn ttl_ms(app: &AppState) -> i64 {
    i64::try_from(app.hub.timings.snapshot_url_ttl.as_millis()).unwrap_or(i64::MAX)
}

/// A capability URL for the event's snapshot or voice message, if it has one.
fn media_url(
    app: &AppState,
    kind: MediaKind,
    event: &HistoryEvent,
    expires_ms: i64,
) -> Option<String> {
    match kind {
        MediaKind::Snapshot => event.snapshot_id?,
        MediaKind::Voice => event.voice_id?,
    };
    let e = &event.event;
    let key = match (e.kind, &e.call_id) {
        (EventKind::Ring, Some(call)) => SnapshotKey::Call(call.clone()),
        (EventKind::MissedRing, _) => SnapshotKey::MissedRing(e.at),
        _ => return None,
    };
    Some(
        app.hub
            .snapshots
            .capabilities
            .media_url(kind, &e.door_id, &key, expires_ms),
    )
}

/// `DELETE /api/events/<id>`: the event (for a call: all of its events) and its snapshot.
pub(super) async fn delete_one(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return json_error(StatusCode::BAD_REQUEST, "the event id must be a number");
    };
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    app.hub.switchboard.recorder().flush().await;
    let result = app
        .hub
        .store
        .call(move |store| store.delete_event(&phone.phone_id, id))
        .await;
    deleted(&app, result, "no such event among this phone's doors").await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteDoorQuery {
    door_id: String,
}

/// `DELETE /api/events?door_id=<id>`: every event and snapshot of a door.
pub(super) async fn delete_door(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DeleteDoorQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) if q.0.door_id.len() <= MAX_CREDENTIAL_CHARS => q,
        Ok(_) => return json_error(StatusCode::BAD_REQUEST, "door_id is too long"),
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let phone = match phone_auth(&app, &headers).await {
        Ok(phone) => phone,
        Err(response) => return response,
    };
    app.hub.switchboard.recorder().flush().await;
    let door = DoorId::new(query.door_id);
    let result = app
        .hub
        .store
        .call(move |store| store.delete_door_history(&phone.phone_id, &door))
        .await;
    deleted(&app, result, "this phone is not paired with that door").await
}

/// Deletes snapshot files on the blocking pool (a door's whole history can be thousands of
/// files), before the response: a `204` means the pictures are gone from the disk.
pub(super) async fn remove_files(app: &AppState, files: Vec<String>) {
    if !files.is_empty() {
        let hub = app.hub.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || hub.snapshots.remove(&files)).await {
            tracing::warn!(error = %e, "deleting snapshot files did not finish");
        }
    }
}

/// `204` after deleting the files of the deleted snapshots, `404` when nothing was the
/// phone's to delete.
async fn deleted(
    app: &AppState,
    result: Result<Option<Vec<String>>, crate::store::StoreCallError>,
    not_found: &str,
) -> Response {
    match result {
        Ok(Some(files)) => {
            remove_files(app, files).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(None) => json_error(StatusCode::NOT_FOUND, not_found),
        Err(e) => internal_error(&e),
    }
}
