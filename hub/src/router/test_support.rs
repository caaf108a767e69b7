//! The fixture the router's unit tests share: a front door with two phones, and a phone of
//! another door.

use std::time::{Duration, Instant, UNIX_EPOCH};

use doorbell_protocol::{
    CallId, DoorId, DoorToHub, ErrorCode, HubToDoor, HubToPhone, PhoneId, SessionEndReason,
    SessionId,
};

use super::{ConnId, Now, Out, Router};

pub(crate) const DOOR: ConnId = 1;
pub(crate) const A: ConnId = 10;
pub(crate) const B: ConnId = 11;
pub(crate) const OTHER: ConnId = 12;
/// The hub's wall clock in these tests (2026-01-01).
pub(crate) const NOW_MS: i64 = 1_767_225_600_000;

/// The time of an input at the wall clock `wall_ms`.
pub(crate) fn now_at(wall_ms: i64) -> Now {
    Now {
        mono: Instant::now(),
        wall: UNIX_EPOCH + Duration::from_millis(wall_ms as u64),
    }
}

/// The time of an input at [`NOW_MS`].
pub(crate) fn now() -> Now {
    now_at(NOW_MS)
}

/// The message that tells the door its session `session_id` ended for `reason`.
pub(crate) fn closed_at_door(session_id: SessionId, reason: SessionEndReason) -> Out {
    Out::Door(DOOR, HubToDoor::SessionClosed { session_id, reason })
}

/// The message that tells the phone on `conn` its session `session_id` ended for `reason`.
pub(crate) fn closed_at_phone(
    conn: ConnId,
    session_id: SessionId,
    reason: SessionEndReason,
) -> Out {
    Out::Phone(conn, HubToPhone::SessionClosed { session_id, reason })
}

pub(crate) fn door_id() -> DoorId {
    DoorId::new("d-front")
}

pub(crate) fn call() -> CallId {
    CallId::new("c1")
}

/// Router with the front door online and phones A and B paired with it, plus OTHER paired
/// only with the back door.
pub(crate) fn setup() -> Router {
    setup_with(Router::new(vec![]))
}

/// [`setup`] on a given (e.g. TURN-enabled) router.
pub(crate) fn setup_with(mut r: Router) -> Router {
    r.door_connected(DOOR, door_id(), "Front".into());
    r.phone_connected(
        now(),
        A,
        PhoneId::new("p-a"),
        vec![(door_id(), "Front".into())],
        Default::default(),
    );
    r.phone_connected(
        now(),
        B,
        PhoneId::new("p-b"),
        vec![(door_id(), "Front".into())],
        Default::default(),
    );
    r.phone_connected(
        now(),
        OTHER,
        PhoneId::new("p-o"),
        vec![(DoorId::new("d-back"), "Back".into())],
        Default::default(),
    );
    r
}

pub(crate) fn error_code(out: &[Out]) -> Option<ErrorCode> {
    out.iter().find_map(|o| match o {
        Out::Door(_, HubToDoor::Error(e)) | Out::Phone(_, HubToPhone::Error(e)) => Some(e.code),
        _ => None,
    })
}

/// The messages in `out` for `conn`, as debug strings.
pub(crate) fn to(out: &[Out], conn: ConnId) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Out::Door(c, m) if *c == conn => Some(format!("{m:?}")),
            Out::Phone(c, m) if *c == conn => Some(format!("{m:?}")),
            _ => None,
        })
        .collect()
}

/// The front door rings with call [`call`].
pub(crate) fn ring(r: &mut Router) -> Vec<Out> {
    r.door_message(now(), DOOR, DoorToHub::Ring { call_id: call() })
}
