//! Who may open the door: the decision on a data-channel message, kept pure so every refusal
//! is unit-tested.
//!
//! The only way to energise the strike is an `unlock` on the `control` data channel of the
//! call in progress. That channel is DTLS-authenticated to the phone whose answer the door
//! accepted, so "authorised" means: the message arrived on the current call's channel, and
//! that call is `InCall` (media connected). A message that is malformed, of another version,
//! or arrives while ringing, connecting, after hang-up or on an old call's channel gets a
//! typed error reply and never touches the relay.

use super::call::State;
use doorbell_protocol::control::{
    ControlErrorCode, DoorToPhone, PhoneToDoor, CONTROL_VERSION, MAX_CONTROL_MESSAGE_BYTES,
};
use doorbell_protocol::CallId;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Pulse the strike, then reply with [`unlocked`].
    Unlock { request_id: u32 },
    /// Send this error back; the relay is not touched.
    Refuse(DoorToPhone),
}

/// Decide on `text`, received on the data channel of call `channel_call`, while the call
/// machine is in `state`; `may_unlock` is the answering phone's household permission (from
/// the hub's `answered`).
pub fn decide(state: &State, channel_call: &CallId, may_unlock: bool, text: &str) -> Decision {
    let refuse = |request_id, code, message: String| {
        Decision::Refuse(DoorToPhone::Error {
            version: CONTROL_VERSION,
            request_id,
            code,
            message,
        })
    };
    if text.len() > MAX_CONTROL_MESSAGE_BYTES {
        return refuse(
            None,
            ControlErrorCode::BadMessage,
            format!("message longer than {MAX_CONTROL_MESSAGE_BYTES} bytes"),
        );
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => {
            return refuse(
                None,
                ControlErrorCode::BadMessage,
                "not a JSON object".into(),
            )
        }
        Err(e) => return refuse(None, ControlErrorCode::BadMessage, format!("not JSON: {e}")),
    };
    let request_id = value
        .get("request_id")
        .and_then(serde_json::Value::as_u64)
        .and_then(|id| u32::try_from(id).ok());
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(CONTROL_VERSION) => {}
        other => {
            return refuse(
                request_id,
                ControlErrorCode::UnsupportedVersion,
                format!("version {other:?}; this door speaks {CONTROL_VERSION}"),
            )
        }
    }
    let message: PhoneToDoor = match serde_json::from_value(value) {
        Ok(message) => message,
        Err(e) => return refuse(request_id, ControlErrorCode::BadMessage, e.to_string()),
    };
    match message {
        PhoneToDoor::Unlock { request_id, .. } => match state {
            State::InCall { call_id, .. } if call_id == channel_call && !may_unlock => refuse(
                Some(request_id),
                ControlErrorCode::NotAllowed,
                "this phone may not unlock this door (ask an owner)".into(),
            ),
            State::InCall { call_id, .. } if call_id == channel_call => {
                Decision::Unlock { request_id }
            }
            other => refuse(
                Some(request_id),
                ControlErrorCode::NotInCall,
                format!(
                    "the door unlocks only during a call (call {channel_call} is not in progress; door is {})",
                    other.name()
                ),
            ),
        },
    }
}

/// The reply to an accepted unlock.
pub fn unlocked(request_id: u32, pulse: Duration) -> DoorToPhone {
    DoorToPhone::Unlocked {
        version: CONTROL_VERSION,
        request_id,
        pulse_ms: u64::try_from(pulse.as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const UNLOCK: &str = r#"{"version":1,"type":"unlock","request_id":3}"#;

    fn call(n: u32) -> CallId {
        CallId::new(format!("c-test-{n}"))
    }

    fn code(decision: Decision) -> ControlErrorCode {
        match decision {
            Decision::Refuse(DoorToPhone::Error { code, .. }) => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn unlock_during_the_call_is_accepted() {
        let now = Instant::now();
        let state = State::InCall {
            call_id: call(1),
            since: now,
            deadline: now,
        };
        assert_eq!(
            decide(&state, &call(1), true, UNLOCK),
            Decision::Unlock { request_id: 3 }
        );
    }

    #[test]
    fn unlock_from_a_phone_without_permission_is_refused() {
        let now = Instant::now();
        let state = State::InCall {
            call_id: call(1),
            since: now,
            deadline: now,
        };
        assert_eq!(
            code(decide(&state, &call(1), false, UNLOCK)),
            ControlErrorCode::NotAllowed
        );
    }

    #[test]
    fn unlock_outside_in_call_is_refused() {
        let now = Instant::now();
        let states = [
            State::Idle,
            State::Ringing {
                call_id: call(1),
                deadline: now,
            },
            State::Connecting {
                call_id: call(1),
                deadline: now,
            },
            // In a call, but the message came on an older call's channel.
            State::InCall {
                call_id: call(2),
                since: now,
                deadline: now,
            },
        ];
        for state in states {
            let decision = decide(&state, &call(1), true, UNLOCK);
            let Decision::Refuse(DoorToPhone::Error {
                code, request_id, ..
            }) = decision
            else {
                panic!("{state:?}: unlocked");
            };
            assert_eq!(code, ControlErrorCode::NotInCall, "{state:?}");
            assert_eq!(request_id, Some(3));
        }
    }

    #[test]
    fn bad_messages_get_typed_errors_not_panics() {
        let now = Instant::now();
        let state = State::InCall {
            call_id: call(1),
            since: now,
            deadline: now,
        };
        let huge = format!(
            r#"{{"version":1,"type":"unlock","request_id":1,"x":"{}"}}"#,
            "a".repeat(5000)
        );
        for (text, expected) in [
            ("", ControlErrorCode::BadMessage),
            ("not json", ControlErrorCode::BadMessage),
            ("[1,2]", ControlErrorCode::BadMessage),
            (
                r#"{"type":"unlock","request_id":1}"#,
                ControlErrorCode::UnsupportedVersion,
            ),
            (
                r#"{"version":2,"type":"unlock","request_id":1}"#,
                ControlErrorCode::UnsupportedVersion,
            ),
            (
                r#"{"version":1,"type":"open_sesame"}"#,
                ControlErrorCode::BadMessage,
            ),
            (
                r#"{"version":1,"type":"unlock"}"#,
                ControlErrorCode::BadMessage,
            ),
            (
                r#"{"version":1,"type":"unlock","request_id":-1}"#,
                ControlErrorCode::BadMessage,
            ),
            (huge.as_str(), ControlErrorCode::BadMessage),
        ] {
            assert_eq!(
                code(decide(&state, &call(1), true, text)),
                expected,
                "{text:.60}"
            );
        }
    }
}
