//! The hub's `error` replies: their codes and constructors.

use crate::{limits, CallId, ErrorBody, HubToDoor, HubToPhone};
use serde::{Deserialize, Serialize};

/// Machine-readable error codes. The `message` next to a code is for humans and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known message for this direction.
    BadMessage,
    /// `hello` carried a protocol version the hub does not speak. The connection closes.
    UnsupportedVersion,
    /// Wrong door secret or phone token. The connection closes.
    Unauthorized,
    /// A message other than `hello` arrived before `hello`. The connection closes.
    HelloRequired,
    /// `hello` arrived twice.
    AlreadyAuthenticated,
    /// The call id is not a call this peer may act on (unknown, over, or another door's).
    UnknownCall,
    /// The call was already answered by another phone.
    AlreadyAnswered,
    /// The message is not allowed in the call's current state (e.g. SDP before answer).
    InvalidState,
    /// The door already has a call in progress.
    Busy,
    /// The sender is sending faster than the hub accepts.
    RateLimited,
    /// Something went wrong in the hub; the message may be retried.
    Internal,
    /// A timestamp (`missed_ring.at_ms`) is in the future beyond the allowed clock skew, or
    /// older than the hub accepts: usually a door whose clock is not set yet.
    InvalidTimestamp,
    /// The phone's household permissions do not allow this (`view` without `may_view`).
    Forbidden,
    /// An id (`call_id`, `door_id`, `session_id`, ...) is empty, longer than
    /// [`limits::MAX_ID_LEN`] or holds a character outside [`limits::is_id_char`]. Nothing
    /// of the message was used.
    InvalidId,
    /// A text field (`software`) is too long or holds control characters. Nothing of the
    /// message was used.
    InvalidText,
}

impl ErrorCode {
    /// The code to answer a message that did not decode with: `invalid_id` or `invalid_text`
    /// when an id or text rule of [`limits`] refused it, else `bad_message`. Takes the decode
    /// error's message (serde_json's `Display`), as this crate does not depend on serde_json.
    pub fn for_decode_error(message: &str) -> ErrorCode {
        if message.starts_with(limits::INVALID_ID) {
            ErrorCode::InvalidId
        } else if message.starts_with(limits::INVALID_TEXT) {
            ErrorCode::InvalidText
        } else {
            ErrorCode::BadMessage
        }
    }
}

impl HubToDoor {
    pub fn error(code: ErrorCode, message: impl Into<String>, call_id: Option<CallId>) -> Self {
        Self::Error(ErrorBody {
            code,
            message: message.into(),
            call_id,
        })
    }
}

impl HubToPhone {
    pub fn error(code: ErrorCode, message: impl Into<String>, call_id: Option<CallId>) -> Self {
        Self::Error(ErrorBody {
            code,
            message: message.into(),
            call_id,
        })
    }
}
