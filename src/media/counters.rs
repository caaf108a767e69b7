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
}

impl Counters {
    pub fn snapshot(&self) -> SessionStats {
        SessionStats {
            video_frames_sent: self.video_frames_sent.load(Ordering::Relaxed),
            audio_buffers_received: self.audio_buffers_received.load(Ordering::Relaxed),
            audio_rtp_sent: self.audio_rtp_sent.load(Ordering::Relaxed),
            video_encoders: self.video_encoders.load(Ordering::Relaxed),
            vp8_frames_sent: self.vp8_frames_sent.load(Ordering::Relaxed),
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
}
