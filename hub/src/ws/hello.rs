//! The first frame of a WebSocket: a door's or a phone's `hello`, another protocol version, a
//! hello the protocol refuses, or not a hello at all.

use doorbell_protocol::{DoorId, DoorToHub, ErrorCode, PhoneToHub, PROTOCOL_VERSION};

/// What the first frame turned out to be.
#[derive(Debug, PartialEq)]
pub(super) enum Hello {
    Door {
        door_id: DoorId,
        secret: String,
        software: String,
    },
    Phone {
        token: String,
    },
    WrongVersion(u64),
    /// A door's hello with an id or text the protocol refuses (`invalid_id`, `invalid_text`).
    Invalid(ErrorCode, String),
    /// Not a hello at all (or a hello of neither shape).
    Other,
}

/// Classifies the first text frame. A `hello` with another protocol version is recognised by
/// its `protocol_version` alone, since a future version may change the other fields.
pub(super) fn parse_hello(text: &str) -> Hello {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Hello::Other;
    };
    if value.get("type").and_then(|t| t.as_str()) != Some("hello") {
        return Hello::Other;
    }
    match value.get("protocol_version").and_then(|v| v.as_u64()) {
        Some(v) if v != u64::from(PROTOCOL_VERSION) => return Hello::WrongVersion(v),
        _ => {}
    }
    match serde_json::from_value::<DoorToHub>(value.clone()) {
        Ok(DoorToHub::Hello {
            door_id,
            secret,
            software,
            ..
        }) => {
            return Hello::Door {
                door_id,
                secret,
                software,
            }
        }
        Err(e) if value.get("door_id").is_some() => {
            let message = e.to_string();
            let code = ErrorCode::for_decode_error(&message);
            if code != ErrorCode::BadMessage {
                return Hello::Invalid(code, message);
            }
        }
        _ => {}
    }
    if let Ok(PhoneToHub::Hello { token, .. }) = serde_json::from_value::<PhoneToHub>(value) {
        return Hello::Phone { token };
    }
    Hello::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_classification() {
        assert!(matches!(
            parse_hello(
                r#"{"type":"hello","protocol_version":1,"door_id":"d-1","secret":"s","software":"x"}"#
            ),
            Hello::Door { .. }
        ));
        assert_eq!(
            parse_hello(r#"{"type":"hello","protocol_version":1,"token":"t"}"#),
            Hello::Phone { token: "t".into() }
        );
        assert_eq!(
            parse_hello(r#"{"type":"hello","protocol_version":2,"whatever":true}"#),
            Hello::WrongVersion(2)
        );
        assert_eq!(
            parse_hello(r#"{"type":"ring","call_id":"c"}"#),
            Hello::Other
        );
        assert_eq!(parse_hello("not json"), Hello::Other);
        assert_eq!(
            parse_hello(r#"{"type":"hello","protocol_version":1}"#),
            Hello::Other
        );
    }
}
