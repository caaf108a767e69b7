//! The `Host` and `Origin` checks in front of every route (the rules are in
//! `crate::limits`'s `HostPolicy`): a name the hub does not answer to gets `421`, a browser
//! page from another origin opening `/ws` gets `403`.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::limits::Refusal;
use crate::state::AppState;

pub(super) async fn host_and_origin(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = &app.hub.limits;
    let headers = request.headers();
    // A request without Host (HTTP/1.0, some probes) carries no name to rebind.
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if host.is_some_and(|host| !limits.hosts.host_allowed(host)) {
        limits.refusals.record(Refusal::Host);
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this hub does not answer to that host name (see [limits] allowed_hosts)",
        )
            .into_response();
    }
    if request.uri().path() == "/ws" {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|origin| limits.hosts.origin_allowed(origin, host));
            if !allowed {
                limits.refusals.record(Refusal::Origin);
                return (
                    StatusCode::FORBIDDEN,
                    "WebSockets only from the hub's own pages (see [limits] allowed_origins)",
                )
                    .into_response();
            }
        }
    }
    next.run(request).await
}
