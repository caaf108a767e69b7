//! Messages on the call's WebRTC data channel `"control"`, between the phone that answered
//! and the door. They never pass through the hub.
//!
//! The door creates the channel before its offer, so it is negotiated with the call; DTLS
//! authenticates it to exactly the phone whose answer the door accepted. Every message is one
//! JSON text message carrying [`CONTROL_VERSION`]:
//!
//! ```text
//!  phone ── {"version":1,"type":"unlock","request_id":7} ──────────────────────► door
//!  phone ◄── {"version":1,"type":"unlocked","request_id":7,"pulse_ms":3000} ───── door
//!        ◄── {"version":1,"type":"error","request_id":7,"code":"not_in_call",…} ─
//! ```
//!
//! `docs/PROTOCOL.md` ("Data channel") is the human reference.

use serde::{Deserialize, Serialize};

/// Version of the data-channel messages. A message with another version gets
/// `error{code:"unsupported_version"}`.
pub const CONTROL_VERSION: u32 = 1;

/// The data channel's label.
pub const CONTROL_LABEL: &str = "control";

/// A data-channel message longer than this is refused unread (`bad_message`): real ones are
/// under 100 bytes.
pub const MAX_CONTROL_MESSAGE_BYTES: usize = 4096;

/// Phone -> door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PhoneToDoor {
    /// Open the door: pulse the strike once.
    Unlock {
        version: u32,
        /// Chosen by the phone, echoed in the reply so it can match them.
        request_id: u32,
    },
}

/// Door -> phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DoorToPhone {
    /// The strike is energised for `pulse_ms` (or already was, from an earlier unlock).
    Unlocked {
        version: u32,
        request_id: u32,
        pulse_ms: u64,
    },
    Error {
        version: u32,
        /// The request this answers, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<u32>,
        code: ControlErrorCode,
        /// Human-readable detail; not for matching.
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlErrorCode {
    /// Not JSON, not an object, unknown `type`, missing field, or too long.
    BadMessage,
    /// `version` is not [`CONTROL_VERSION`].
    UnsupportedVersion,
    /// The call is not (or no longer) in progress: the door only unlocks during a call.
    NotInCall,
    /// This phone may not unlock this door (an owner turned its unlock permission off).
    NotAllowed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlock_and_replies_have_pinned_json() {
        let unlock = PhoneToDoor::Unlock {
            version: 1,
            request_id: 7,
        };
        let text = r#"{"type":"unlock","version":1,"request_id":7}"#;
        assert_eq!(serde_json::to_string(&unlock).unwrap(), text);
        assert_eq!(serde_json::from_str::<PhoneToDoor>(text).unwrap(), unlock);
        let ok = DoorToPhone::Unlocked {
            version: 1,
            request_id: 7,
            pulse_ms: 3000,
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"type":"unlocked","version":1,"request_id":7,"pulse_ms":3000}"#
        );
        let refused = DoorToPhone::Error {
            version: 1,
            request_id: None,
            code: ControlErrorCode::NotInCall,
            message: "no call".into(),
        };
        assert_eq!(
            serde_json::to_string(&refused).unwrap(),
            r#"{"type":"error","version":1,"code":"not_in_call","message":"no call"}"#
        );
    }
}
