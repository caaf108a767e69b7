//! `media.congestion_control` and the video bitrate range it moves in.

use super::{ConfigError, MediaConfig};
use serde::{Deserialize, Serialize};

choice!(CongestionControl {
    /// Google Congestion Control (`rtpgccbwe`) over transport-wide CC feedback: the video
    /// bitrate follows what the phone's link carries.
    Gcc = "gcc",
    /// A fixed video bitrate (`media.video_bitrate_kbps`), the behaviour before congestion
    /// control; kept to compare against (`tests/nat/bench_network.mjs`).
    Off = "off",
});

/// The range every bitrate key must be in (kbit/s): below 100 H.264 at 320x240 is mush, above
/// 10000 no door camera gains anything.
const KBPS: std::ops::RangeInclusive<u32> = 100..=10_000;

impl MediaConfig {
    /// The adaptive range, or `None` for a fixed bitrate (`validate_bitrates` checked it).
    /// The start is clamped into the range: a configuration written before congestion control
    /// (say `video_bitrate_kbps = 3000`) still starts.
    pub fn bitrate_range(&self) -> Option<crate::media::BitrateRange> {
        (self.congestion_control == CongestionControl::Gcc).then(|| crate::media::BitrateRange {
            min_kbps: self.video_min_kbps,
            start_kbps: self
                .video_bitrate_kbps
                .clamp(self.video_min_kbps, self.video_max_kbps),
            max_kbps: self.video_max_kbps,
        })
    }

    pub(super) fn validate_bitrates(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("media.video_bitrate_kbps", self.video_bitrate_kbps),
            ("media.video_min_kbps", self.video_min_kbps),
            ("media.video_max_kbps", self.video_max_kbps),
        ] {
            if !KBPS.contains(&value) {
                return Err(ConfigError::Invalid {
                    key,
                    problem: format!("{value} is outside 100-10000"),
                    fix: "use 1200 for 640x480 (range: 150 to 2500)".into(),
                });
            }
        }
        if self.video_min_kbps > self.video_max_kbps {
            return Err(ConfigError::Invalid {
                key: "media.video_min_kbps",
                problem: format!(
                    "{} is above media.video_max_kbps ({})",
                    self.video_min_kbps, self.video_max_kbps
                ),
                fix: "keep video_min_kbps <= video_max_kbps".into(),
            });
        }
        // Goes into a pipeline description: a word, as videotestsrc's patterns are.
        let pattern = &self.test_pattern;
        if pattern.is_empty()
            || !pattern
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ConfigError::Invalid {
                key: "media.test_pattern",
                problem: format!("{pattern:?} is not a pattern name"),
                fix: "use \"ball\" or \"snow\" (`gst-inspect-1.0 videotestsrc` lists them)".into(),
            });
        }
        Ok(())
    }
}
