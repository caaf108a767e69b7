//! The media counters a test or `doorbelld status` reads while a call runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters a test or `doorbelld status` can read while the call runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Encoded H.264 frames sent towards the phone.
    pub video_frames_sent: AtomicU64,
    /// Decoded audio buffers of the phone's voice that reached the speaker.
    pub audio_buffers_received: AtomicU64,
    /// Door audio RTP packets that passed a preview's valve (0 until someone answers in one).
    pub audio_rtp_sent: AtomicU64,
    /// Video encoders in the pipeline, counted when a session or preview starts or ends.
    pub video_encoders: AtomicU64,
    /// Encoded VP8 frames (for phones without H.264; 0 while only H.264 phones watch).
    pub vp8_frames_sent: AtomicU64,
    /// Congestion control: the last bandwidth estimate of a session (kbit/s, 0 before any).
    pub bandwidth_estimate_kbps: AtomicU64,
    /// The bitrate the video encoder was last given (kbit/s; 0 without congestion control).
    pub video_target_kbps: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> SessionStats {
        SessionStats {
            video_frames_sent: self.video_frames_sent.load(Ordering::Relaxed),
            audio_buffers_received: self.audio_buffers_received.load(Ordering::Relaxed),
            audio_rtp_sent: self.audio_rtp_sent.load(Ordering::Relaxed),
            video_encoders: self.video_encoders.load(Ordering::Relaxed),
            vp8_frames_sent: self.vp8_frames_sent.load(Ordering::Relaxed),
            bandwidth_estimate_kbps: self.bandwidth_estimate_kbps.load(Ordering::Relaxed),
            video_target_kbps: self.video_target_kbps.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SessionStats {
    pub video_frames_sent: u64,
    pub audio_buffers_received: u64,
    pub audio_rtp_sent: u64,
    pub video_encoders: u64,
    pub vp8_frames_sent: u64,
    pub bandwidth_estimate_kbps: u64,
    pub video_target_kbps: u64,
}
