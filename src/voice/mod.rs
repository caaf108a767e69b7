//! The visitor's voice message at the door: when nobody answers (the core's
//! `RecordVoiceMessage`), play the spoken prompt on the speaker, record the microphone for up
//! to `call.voice_message_secs` as Opus in Ogg, and upload it (`POST /api/voice`); a message
//! the hub cannot take now is kept on disk ([`kept`]) and uploaded when the hub is back. Each
//! message runs in a task of its own; a new call's media stops a recording in progress.
//!
//! - [`media`]: the GStreamer pipelines (play an Ogg Opus clip, record one);
//! - [`kept`]: the bounded on-disk queue.

pub mod kept;
pub mod media;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::core::SnapshotOf;
use crate::media::MediaPlan;
use crate::snapshot_upload::{SnapshotTarget, SnapshotUploader};
use kept::KeptVoice;

/// The prompt: "Nobody can come to the door right now. Please leave a message after the
/// tone." and a tone, Opus in Ogg (made offline by `scripts/make-voice-prompt.sh`).
pub const PROMPT: &[u8] = include_bytes!("prompt.ogg");

/// What `doorbelld status` reports about voice messages (a test hook as much as a figure).
#[derive(Debug, Default)]
pub struct VoiceCounters {
    /// Decoded samples (48 kHz) of prompts that reached the speaker.
    pub prompt_samples: AtomicU64,
    /// Messages recorded.
    pub recorded: AtomicU64,
    /// Messages the hub took.
    pub uploaded: AtomicU64,
    /// Quick replies played.
    pub replies_played: AtomicU64,
    /// Decoded samples (48 kHz) of quick replies that reached the speaker.
    pub reply_samples: AtomicU64,
}

/// The real voice messages: the plan's speaker and microphone, the hub of the link.
pub struct DoorVoice {
    /// `None` when the hub URL cannot take uploads (logged at start): nothing is recorded.
    pub uploader: Option<SnapshotUploader>,
    pub plan: MediaPlan,
    pub kept: KeptVoice,
    pub counters: Arc<VoiceCounters>,
    /// Set to end the recording in progress.
    pub stop: Option<Arc<AtomicBool>>,
}

/// A stopping daemon must not wait for a recording (the runtime joins blocking threads).
impl Drop for DoorVoice {
    fn drop(&mut self) {
        self.stop_recording();
    }
}

fn target(of: &SnapshotOf) -> SnapshotTarget {
    match of {
        SnapshotOf::Call(call) => SnapshotTarget::Call(call.clone()),
        SnapshotOf::MissedRing(at) => SnapshotTarget::MissedRing(*at),
    }
}

impl DoorVoice {
    /// Plays the prompt, records up to `secs` and uploads (or keeps) the message of `of`.
    pub fn record(&mut self, of: &SnapshotOf, secs: u32) {
        let Some(uploader) = self.uploader.clone() else {
            return;
        };
        self.stop_recording();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = Some(stop.clone());
        let (speaker, microphone) = (self.plan.audio_sink.clone(), self.plan.audio_source.clone());
        let (kept, counters, target) = (self.kept.clone(), self.counters.clone(), target(of));
        tokio::spawn(async move {
            let recorded = {
                let counters = counters.clone();
                tokio::task::spawn_blocking(move || {
                    match media::play_opus(PROMPT, &speaker, &stop) {
                        Ok(samples) => {
                            counters
                                .prompt_samples
                                .fetch_add(samples, Ordering::Relaxed);
                        }
                        // The visitor may still speak; the recording goes ahead.
                        Err(e) => tracing::warn!("the voice-message prompt did not play: {e}"),
                    }
                    if stop.load(Ordering::Relaxed) {
                        return Err(media::VoiceMediaError::Empty);
                    }
                    media::record_ogg_opus(&microphone, Duration::from_secs(secs.into()), &stop)
                })
                .await
            };
            let ogg = match recorded {
                Ok(Ok(ogg)) => ogg,
                Ok(Err(e)) => return tracing::warn!(?target, "no voice message: {e}"),
                Err(e) => return tracing::warn!(?target, "voice message task failed: {e}"),
            };
            counters.recorded.fetch_add(1, Ordering::Relaxed);
            let bytes = ogg.len();
            match uploader.upload_voice(&target, ogg.clone()).await {
                Ok(()) => {
                    counters.uploaded.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(?target, bytes, "voice message uploaded");
                }
                Err(e) if e.is_transient() => match kept.save(&target, &ogg) {
                    Ok(()) => tracing::warn!(?target, "voice message kept for later: {e}"),
                    Err(keep) => tracing::warn!(?target, "voice message lost: {e}; {keep}"),
                },
                Err(e) => tracing::warn!(?target, "voice message refused, dropped: {e}"),
            }
        });
    }

    /// Ends a recording in progress (a new call needs the microphone); what it has is kept.
    pub fn stop_recording(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.store(true, Ordering::Relaxed);
        }
    }

    /// A phone sent quick reply `reply_id` in this call: fetch it and play it on the speaker.
    pub fn play_reply(&mut self, reply_id: u64) {
        let Some(uploader) = self.uploader.clone() else {
            return;
        };
        let (speaker, counters) = (self.plan.audio_sink.clone(), self.counters.clone());
        tokio::spawn(async move {
            let clip = match uploader.fetch_reply(reply_id).await {
                Ok(clip) => clip,
                Err(e) => return tracing::warn!(reply_id, "cannot fetch the quick reply: {e}"),
            };
            let played = tokio::task::spawn_blocking(move || {
                media::play_opus(&clip, &speaker, &AtomicBool::new(false))
            })
            .await;
            match played {
                Ok(Ok(samples)) => {
                    counters.replies_played.fetch_add(1, Ordering::Relaxed);
                    counters.reply_samples.fetch_add(samples, Ordering::Relaxed);
                    tracing::info!(reply_id, samples, "quick reply played");
                }
                Ok(Err(e)) => tracing::warn!(reply_id, "the quick reply did not play: {e}"),
                Err(e) => tracing::warn!(reply_id, "quick reply task failed: {e}"),
            }
        });
    }

    /// The hub is back: upload the kept messages, oldest first.
    pub fn upload_kept(&mut self) {
        let (Some(uploader), kept, counters) = (
            self.uploader.clone(),
            self.kept.clone(),
            self.counters.clone(),
        ) else {
            return;
        };
        tokio::spawn(async move {
            for target in kept.pending() {
                let Ok(ogg) = kept.read(&target) else {
                    kept.remove(&target);
                    continue;
                };
                match uploader.upload_voice(&target, ogg).await {
                    Ok(()) => {
                        counters.uploaded.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(?target, "kept voice message uploaded");
                        kept.remove(&target);
                    }
                    Err(e) if e.is_transient() => {
                        return tracing::warn!(?target, "kept voice message not uploaded: {e}")
                    }
                    Err(e) => {
                        tracing::warn!(?target, "kept voice message refused, dropped: {e}");
                        kept.remove(&target);
                    }
                }
            }
        });
    }
}
