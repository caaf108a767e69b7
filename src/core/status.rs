//! What the core knows for `doorbelld status`, as enums (the shell adds the media counters,
//! the relay and the GPIO backend).

use super::{Outcome, State};
use doorbell_protocol::CallId;
use serde::Serialize;

/// The call phase, as `doorbelld status` prints it (`"idle"`, `"ringing"`, `"connecting"`,
/// `"in_call"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallPhase {
    #[default]
    Idle,
    Ringing,
    Connecting,
    InCall,
}

impl From<&State> for CallPhase {
    fn from(state: &State) -> Self {
        match state {
            State::Idle => CallPhase::Idle,
            State::Ringing { .. } => CallPhase::Ringing,
            State::Connecting { .. } => CallPhase::Connecting,
            State::InCall { .. } => CallPhase::InCall,
        }
    }
}

/// The door strike: `"on"` (energised, door open) or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relay {
    #[default]
    Off,
    On,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoorStatus {
    pub phase: CallPhase,
    pub call_id: Option<CallId>,
    pub hub_connected: bool,
    pub door_name: String,
    /// Phones the hub said are ringing for the current call.
    pub phones_ringing: u32,
    /// Call attempts that have ended since start-up.
    pub calls_ended: u64,
    pub last_call: Option<(CallId, Outcome)>,
    /// Unlocks that pulsed the door strike since start-up.
    pub unlocks: u64,
    /// PIR motion events since start-up.
    pub motion_events: u64,
    /// Presses while the hub was unreachable, waiting to be reported.
    pub missed_rings_pending: usize,
    /// Presses reported to the hub as `missed_ring` since start-up.
    pub missed_rings_reported: u64,
    /// Live views open now.
    pub viewers: usize,
    /// What the status LED shows (`viewing` while someone watches without a call).
    pub led: Option<super::LedState>,
}
