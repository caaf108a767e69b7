//! The door's own chime: a ding-dong on the door's speaker.
//!
//! Played when the button is pressed but the hub is unreachable, so the visitor still hears
//! that the bell works (the phones cannot ring; the door reports the missed ring later).
//! It goes to the same speaker as the answering person's voice, which is free then: the
//! door only chimes when no call is up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;

/// Two falling tones (E5 then C5), 0.4 s and 0.6 s: the classic two-note door chime.
const TONES: [(f64, u32); 2] = [(659.3, 20), (523.3, 30)];
/// 20 ms buffers at 48 kHz.
const SAMPLES_PER_BUFFER: u32 = 960;
/// Longest a 1 s chime may take to play out before it is given up.
const PLAY_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ChimeError {
    #[error("cannot build the chime pipeline: {0}")]
    Build(String),
    #[error("the speaker refused the chime: {0}")]
    Play(String),
}

/// The `gst-launch` description of the chime ending in `sink` (the plan's speaker).
fn describe(sink: &str) -> String {
    let tones: String = TONES
        .iter()
        .map(|(freq, buffers)| {
            format!(
                " audiotestsrc wave=sine freq={freq} volume=0.5 num-buffers={buffers} \
                 samplesperbuffer={SAMPLES_PER_BUFFER} ! audio/x-raw,rate=48000,channels=1 ! c."
            )
        })
        .collect();
    format!("concat name=c ! audioconvert ! audioresample ! {sink}{tones}")
}

/// How much chime reached the speaker, filled in from a probe on its input.
#[derive(Default)]
struct Heard(AtomicU64);

/// Start the chime on `sink`. The returned task ends when it has played, with how much audio
/// reached the speaker, or with the speaker's error.
pub fn play(
    sink: &str,
) -> Result<tokio::task::JoinHandle<Result<Duration, ChimeError>>, ChimeError> {
    let pipeline = gst::parse::launch(&describe(sink))
        .map_err(|e| ChimeError::Build(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| ChimeError::Build("description did not make a pipeline".into()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| ChimeError::Build("pipeline without a bus".into()))?;
    let heard = Arc::new(Heard::default());
    let speaker_input = pipeline
        .iterate_sinks()
        .into_iter()
        .flatten()
        .next()
        .and_then(|sink| sink.static_pad("sink"))
        .ok_or_else(|| ChimeError::Build("no speaker in the chime pipeline".into()))?;
    let counter = heard.clone();
    speaker_input.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(duration) = info.buffer().and_then(|b| b.duration()) {
            counter.0.fetch_add(duration.nseconds(), Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(ChimeError::Play(e.to_string()));
    }
    Ok(tokio::spawn(async move {
        let mut messages = bus.stream();
        let mut result = Err(ChimeError::Play(format!(
            "the speaker did not finish within {} s",
            PLAY_LIMIT.as_secs()
        )));
        // A speaker that neither finishes nor fails must not keep the chime (and the
        // speaker) forever: later presses would never chime again.
        let deadline = tokio::time::sleep(PLAY_LIMIT);
        tokio::pin!(deadline);
        while let Some(message) = tokio::select! {
            message = messages.next() => message,
            _ = &mut deadline => None,
        } {
            match message.view() {
                gst::MessageView::Eos(_) => {
                    result = Ok(Duration::from_nanos(heard.0.load(Ordering::Relaxed)));
                    break;
                }
                gst::MessageView::Error(e) => {
                    result = Err(ChimeError::Play(e.error().to_string()));
                    break;
                }
                _ => {}
            }
        }
        let _ = pipeline.set_state(gst::State::Null);
        if let Err(e) = &result {
            tracing::warn!("the door's chime stopped: {e}");
        }
        result
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_chime_plays_both_tones_to_the_speaker_and_ends() {
        gst::init().unwrap();
        let played = play("fakesink sync=false").unwrap().await.unwrap().unwrap();
        // 0.4 s + 0.6 s, every buffer of both tones.
        assert_eq!(played, Duration::from_secs(1), "{played:?}");
    }

    #[test]
    fn the_description_has_both_tones_in_order() {
        let description = describe("fakesink");
        let high = description.find("freq=659.3").unwrap();
        let low = description.find("freq=523.3").unwrap();
        assert!(high < low, "{description}");
    }

    #[tokio::test]
    async fn a_missing_speaker_element_is_an_error_not_a_hang() {
        gst::init().unwrap();
        let err = play("no_such_sink_element").unwrap_err();
        assert!(matches!(err, ChimeError::Build(_)), "{err}");
    }
}
