//! Opus's in-band FEC sized by the loss the phones report.
//!
//! opusenc adds forward error correction in proportion to the loss it is told to expect
//! (`packet-loss-percentage`), and none at 0. The phones' RTCP receiver reports say how much
//! of the door's audio they lose; webrtcbin's `get-stats` exposes that as the
//! `remote-inbound-rtp` report's `fraction-lost`. This polls it and sets the encoder to the
//! worst loss among the sessions that receive the door's audio.

use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Receiver reports arrive about once a second; polling every two is fresh enough for a
/// setting that only changes how much redundancy the next packets carry.
const POLL: Duration = Duration::from_secs(2);
/// The expected loss never goes below this: FEC must stay on for the first loss burst, which
/// arrives before any report says so (`congestion::START_LOSS_PERCENT` is where it starts).
const FLOOR_PERCENT: u32 = 2;
/// opusenc's maximum.
const CEILING_PERCENT: u32 = 100;

/// Follows the phones' reported audio loss into the encoder `aenc` of `pipeline`, until the
/// pipeline is gone (or the task is aborted).
pub(super) fn follow(pipeline: &gst::Pipeline) -> tokio::task::JoinHandle<()> {
    let weak = pipeline.downgrade();
    tokio::spawn(async move {
        // The worst loss reported in the current poll round.
        let round: Arc<Mutex<(u64, u32)>> = Arc::new(Mutex::new((0, 0)));
        let mut tick = tokio::time::interval(POLL);
        for number in 1.. {
            tick.tick().await;
            let Some(pipeline) = weak.upgrade() else {
                break;
            };
            let Some(encoder) = pipeline.by_name("aenc") else {
                break;
            };
            for webrtc in webrtcbins(&pipeline) {
                let encoder = encoder.downgrade();
                let round = round.clone();
                let promise = gst::Promise::with_change_func(move |reply| {
                    let (Ok(Some(stats)), Some(encoder)) = (reply, encoder.upgrade()) else {
                        return;
                    };
                    let Some(lost) = audio_loss_percent(stats) else {
                        return;
                    };
                    let mut round = round.lock().unwrap_or_else(|p| p.into_inner());
                    if round.0 != number {
                        *round = (number, 0);
                    }
                    round.1 = round.1.max(lost);
                    let expected = round.1.clamp(FLOOR_PERCENT, CEILING_PERCENT);
                    if encoder.property::<i32>("packet-loss-percentage") != expected as i32 {
                        tracing::debug!(expected, "Opus FEC sized for the reported loss");
                        encoder.set_property("packet-loss-percentage", expected as i32);
                    }
                });
                webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
            }
        }
    })
}

fn webrtcbins(pipeline: &gst::Pipeline) -> Vec<gst::Element> {
    pipeline
        .iterate_recurse()
        .into_iter()
        .flatten()
        .filter(|e| e.factory().is_some_and(|f| f.name() == "webrtcbin"))
        .collect()
}

/// The audio `remote-inbound-rtp` report's loss, in percent (rounded up: 0.4 % is 1).
fn audio_loss_percent(stats: &gst::StructureRef) -> Option<u32> {
    stats
        .iter()
        .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
        .filter(|s| s.name() == "remote-inbound-rtp")
        .filter(|s| s.get::<&str>("kind").is_ok_and(|k| k == "audio"))
        .filter_map(|s| s.get::<f64>("fraction-lost").ok())
        .map(|fraction| (fraction.clamp(0.0, 1.0) * 100.0).ceil() as u32)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audio_report_gives_the_loss() {
        gst::init().unwrap();
        let report = |kind: &str, lost: f64| {
            gst::Structure::builder("remote-inbound-rtp")
                .field("kind", kind)
                .field("fraction-lost", lost)
                .build()
        };
        let stats = gst::Structure::builder("application/x-webrtc-stats")
            .field("remote-inbound-rtp_video", report("video", 0.3))
            .field("remote-inbound-rtp_audio", report("audio", 0.043))
            .build();
        assert_eq!(audio_loss_percent(&stats), Some(5));
        let none = gst::Structure::builder("application/x-webrtc-stats").build();
        assert_eq!(audio_loss_percent(&none), None);
    }
}
