//! Keyframe requests reaching the one encoder, rate-limited.
//!
//! A phone that lost a keyframe's packet sends PLI (or FIR); rtpbin turns it into an upstream
//! force-key-unit event, which the RTP tee passes from every session to the one encoder. Each
//! rtpsession already ignores repeats within two round trips of its own, but several phones
//! (ring previews, live views) on a lossy link can still ask in turn, and every keyframe is
//! several times a P-frame: on a capped link a storm of them is itself the congestion.
//!
//! The limit sits on the RTP tee's input, which only the phones' requests cross: the door's
//! own (a session connected, `Session::request_keyframe`) go straight to the encoder and are
//! paced by the core, which defers rather than drops them.

use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one keyframe per this interval, whoever asks: long enough that a burst of PLIs
/// from several phones costs one keyframe, short enough that a phone that missed one gets the
/// next within a fraction of a second (the encoder also makes one every two seconds).
pub(crate) const MIN_KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// Asks the encoder named `encoder` in `pipeline` for a keyframe with its headers (SPS/PPS),
/// straight at its source pad (past the limit below). Whether the encoder exists and took
/// the request.
pub(crate) fn force(pipeline: &gst::Pipeline, encoder: &str) -> bool {
    let Some(src) = pipeline.by_name(encoder).and_then(|e| e.static_pad("src")) else {
        return false;
    };
    let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    src.send_event(event)
}

/// Drops force-key-unit requests crossing `tee`'s sink pad upstream within
/// [`MIN_KEYFRAME_INTERVAL`] of the last one let through.
pub(super) fn limit(tee: &gst::Element) {
    let Some(pad) = tee.static_pad("sink") else {
        return;
    };
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(event) = info.event() else {
            return gst::PadProbeReturn::Ok;
        };
        if !gstreamer_video::ForceKeyUnitEvent::is(event) {
            return gst::PadProbeReturn::Ok;
        }
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < MIN_KEYFRAME_INTERVAL) {
            tracing::trace!("keyframe request dropped: one was made less than 500 ms ago");
            return gst::PadProbeReturn::Drop;
        }
        *last = Some(now);
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_burst_of_requests_makes_one_keyframe() {
        gst::init().unwrap();
        let pipeline =
            gst::parse::launch("fakesrc name=src is-live=true ! identity name=tee ! fakesink")
                .unwrap()
                .downcast::<gst::Pipeline>()
                .unwrap();
        let tee = pipeline.by_name("tee").unwrap();
        limit(&tee);
        let passed = Arc::new(AtomicUsize::new(0));
        let counted = passed.clone();
        let source = pipeline.by_name("src").unwrap();
        source.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::EVENT_UPSTREAM,
            move |_, info| {
                if info
                    .event()
                    .is_some_and(|e| gstreamer_video::ForceKeyUnitEvent::is(e))
                {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                gst::PadProbeReturn::Ok
            },
        );
        pipeline.set_state(gst::State::Playing).unwrap();
        let src = tee.static_pad("src").unwrap();
        for _ in 0..3 {
            let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder().build();
            src.send_event(event);
        }
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(
            passed.load(Ordering::SeqCst),
            1,
            "three PLIs at once: one keyframe"
        );
    }
}
