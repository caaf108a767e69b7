//! `[view]`: live view (a phone with `may_view` watches the door without a ring).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewConfig {
    /// Most phones that see the door's video at once, ring previews and live views together
    /// (1-8). Each costs the door an SRTP stream of the one encoder's video in its uplink.
    pub max_viewers: u64,
    /// Longest live view in seconds (10-3600); the door then closes it (`time_limit`).
    pub max_secs: u64,
    /// Whether a viewer hears the door's microphone. Off by default: a live view is video
    /// only. The phone's audio is never played at the door in a view, whatever this says.
    pub door_audio: bool,
}

impl Default for ViewConfig {
    fn default() -> Self {
        let limits = crate::core::ViewLimits::default();
        ViewConfig {
            max_viewers: limits.max_sessions as u64,
            max_secs: limits.max_view.as_secs(),
            door_audio: limits.door_audio,
        }
    }
}

impl ViewConfig {
    /// The core's view of it (`validate` checked the ranges).
    pub fn limits(&self) -> crate::core::ViewLimits {
        crate::core::ViewLimits {
            max_sessions: self.max_viewers as usize,
            max_view: std::time::Duration::from_secs(self.max_secs),
            door_audio: self.door_audio,
        }
    }
}
