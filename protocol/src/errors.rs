//! Constructors of the hub's `error` replies.

use crate::{CallId, ErrorBody, ErrorCode, HubToDoor, HubToPhone};

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
