//! GStreamer for voice messages: play an Ogg Opus clip on the door's speaker (the prompt; the
//! same path decodes a phone's quick reply), and record the door's microphone as Ogg Opus.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Longest a clip may take to play out (the prompt is ~5 s; a quick reply at most 30 s).
pub const PLAY_LIMIT: Duration = Duration::from_secs(40);
/// Opus bitrate of a recorded message: speech is clear at 24 kbit/s, and 60 s stay under
/// 200 KiB (the hub takes 512 KiB).
pub const RECORD_BITRATE: u32 = 24_000;
/// How long the encoder may take to flush after the end of a recording.
const FLUSH_LIMIT: Duration = Duration::from_secs(3);
/// How often a recording looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum VoiceMediaError {
    #[error("cannot build the pipeline: {0}")]
    Build(String),
    #[error("the pipeline failed: {0}")]
    Failed(String),
    #[error("the clip did not finish playing within {0:?}")]
    TooSlow(Duration),
    #[error("the recording holds no audio")]
    Empty,
}

/// The bus messages of `pipeline` until EOS (`Ok`) or an error, waiting at most `limit`;
/// `stop` ends the wait early (`Ok`: the caller asked for it).
fn wait_eos(
    pipeline: &gst::Pipeline,
    limit: Duration,
    stop: &AtomicBool,
) -> Result<(), VoiceMediaError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| VoiceMediaError::Build("pipeline without a bus".into()))?;
    let deadline = Instant::now() + limit;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= deadline {
            return Err(VoiceMediaError::TooSlow(limit));
        }
        let Some(message) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(STOP_POLL.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                return Err(VoiceMediaError::Failed(e.error().to_string()))
            }
            _ => {}
        }
    }
    Ok(())
}

fn launch(description: &str) -> Result<gst::Pipeline, VoiceMediaError> {
    gst::parse::launch(description)
        .map_err(|e| VoiceMediaError::Build(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| VoiceMediaError::Build("description did not make a pipeline".into()))
}

/// Sets the pipeline to NULL when dropped, on every path.
struct Stopped(gst::Pipeline);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Plays `clip` (Opus in Ogg, or in WebM as a phone's MediaRecorder makes it) on `sink` (a
/// `gst-launch` fragment, the plan's speaker) and returns how many decoded samples (counted at
/// 48 kHz) reached it; `stop` cuts it short. Blocking: run it on a blocking thread.
pub fn play_opus(clip: &[u8], sink: &str, stop: &AtomicBool) -> Result<u64, VoiceMediaError> {
    let (caps, demux) = if clip.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        ("video/webm", "matroskademux")
    } else {
        ("application/ogg", "oggdemux")
    };
    let pipeline = launch(&format!(
        "appsrc name=clip caps={caps} format=bytes ! {demux} ! opusdec \
         ! audioconvert ! audioresample ! {sink}"
    ))?;
    let pipeline = Stopped(pipeline);
    let samples = Arc::new(AtomicU64::new(0));
    let speaker = pipeline
        .0
        .iterate_sinks()
        .into_iter()
        .flatten()
        .next()
        .and_then(|s| s.static_pad("sink"))
        .ok_or_else(|| VoiceMediaError::Build("no speaker in the pipeline".into()))?;
    let counter = samples.clone();
    // Counted as time (every decoded buffer has a duration) and reported in 48 kHz samples,
    // whatever rate the speaker takes.
    speaker.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(duration) = info.buffer().and_then(|b| b.duration()) {
            counter.fetch_add(duration.nseconds(), Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    let src = pipeline
        .0
        .by_name("clip")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| VoiceMediaError::Build("no appsrc".into()))?;
    pipeline
        .0
        .set_state(gst::State::Playing)
        .map_err(|e| VoiceMediaError::Failed(e.to_string()))?;
    src.push_buffer(gst::Buffer::from_slice(clip.to_vec()))
        .map_err(|e| VoiceMediaError::Failed(e.to_string()))?;
    src.end_of_stream()
        .map_err(|e| VoiceMediaError::Failed(e.to_string()))?;
    wait_eos(&pipeline.0, PLAY_LIMIT, stop)?;
    Ok(samples.load(Ordering::Relaxed) * 48_000 / 1_000_000_000)
}

/// Records `source` (the plan's microphone fragment) as Opus in Ogg for `length`, or until
/// `stop` is set. Blocking: run it on a blocking thread.
pub fn record_ogg_opus(
    source: &str,
    length: Duration,
    stop: &AtomicBool,
) -> Result<Vec<u8>, VoiceMediaError> {
    let pipeline = launch(&format!(
        "{source} ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 \
         ! opusenc bitrate={RECORD_BITRATE} ! oggmux ! appsink name=out sync=false"
    ))?;
    let pipeline = Stopped(pipeline);
    let sink = pipeline
        .0
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| VoiceMediaError::Build("no appsink".into()))?;
    pipeline
        .0
        .set_state(gst::State::Playing)
        .map_err(|e| VoiceMediaError::Failed(e.to_string()))?;
    let mut ogg = Vec::new();
    let end = Instant::now() + length;
    let pull = |timeout: gst::ClockTime, ogg: &mut Vec<u8>| -> bool {
        match sink.try_pull_sample(timeout) {
            Some(sample) => {
                if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                    ogg.extend_from_slice(map.as_slice());
                }
                true
            }
            None => false,
        }
    };
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        pull(
            gst::ClockTime::from_nseconds(STOP_POLL.as_nanos() as u64),
            &mut ogg,
        );
    }
    // EOS makes oggmux write its last page; everything before it is in the appsink.
    pipeline.0.send_event(gst::event::Eos::new());
    let flush_end = Instant::now() + FLUSH_LIMIT;
    while !sink.is_eos() && Instant::now() < flush_end {
        pull(
            gst::ClockTime::from_nseconds(STOP_POLL.as_nanos() as u64),
            &mut ogg,
        );
    }
    while pull(gst::ClockTime::ZERO, &mut ogg) {}
    if ogg.is_empty() {
        return Err(VoiceMediaError::Empty);
    }
    Ok(ogg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_decodes_and_reaches_the_speaker() {
        gst::init().unwrap();
        let samples = play_opus(
            super::super::PROMPT,
            "fakesink sync=false",
            &AtomicBool::new(false),
        )
        .unwrap();
        // The spoken sentence and the tone: several seconds at 48 kHz.
        assert!(samples > 48_000 * 3, "{samples} samples");
    }

    #[test]
    fn a_recording_is_ogg_opus_of_about_the_asked_length_and_plays_back() {
        gst::init().unwrap();
        let stop = AtomicBool::new(false);
        let ogg = record_ogg_opus(
            "audiotestsrc is-live=true wave=sine freq=440",
            Duration::from_millis(600),
            &stop,
        )
        .unwrap();
        assert!(ogg.starts_with(b"OggS"), "an Ogg stream");
        assert!(ogg.windows(8).any(|w| w == b"OpusHead"), "of Opus");
        let samples = play_opus(&ogg, "fakesink sync=false", &stop).unwrap();
        assert!(
            (48_000 * 4 / 10..=48_000 * 12 / 10).contains(&samples),
            "about 0.6 s decoded: {samples}"
        );
    }

    #[test]
    fn a_webm_clip_from_a_browser_plays_too() {
        gst::init().unwrap();
        let webm = include_bytes!("../../tests/fixtures/voice/tone-1s.webm");
        let samples = play_opus(webm, "fakesink sync=false", &AtomicBool::new(false)).unwrap();
        assert!((40_000..=52_000).contains(&samples), "about 1 s: {samples}");
    }

    #[test]
    fn a_stop_ends_a_recording_and_a_playback_at_once() {
        gst::init().unwrap();
        let stop = AtomicBool::new(true);
        let started = Instant::now();
        let recorded = record_ogg_opus("audiotestsrc is-live=true", Duration::from_secs(30), &stop);
        // Stopped before any audio: nothing, or a header-only stream; either way, no 30 s wait.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        drop(recorded);
        let played = play_opus(super::super::PROMPT, "fakesink sync=true", &stop);
        assert!(started.elapsed() < Duration::from_secs(5), "{played:?}");
    }

    #[test]
    fn a_clip_that_is_not_ogg_opus_is_an_error_not_a_hang() {
        gst::init().unwrap();
        let err = play_opus(
            b"not a clip at all",
            "fakesink sync=false",
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(matches!(err, VoiceMediaError::Failed(_)), "{err}");
    }
}
