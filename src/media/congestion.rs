//! Congestion control: the encoder's bitrate follows Google Congestion Control's estimate.
//!
//! ```text
//!  encoder ─► payloader (TWCC header extension) ─► webrtcbin ─► rtpbin ─► rtpgccbwe ─► DTLS/ICE
//!     ▲                                                                       │ estimated-bitrate
//!     └──────────── Controller (clamped to media.video_min/max_kbps) ◄───────┘
//! ```
//!
//! Every `webrtcbin` of the call (its own and each preview's) asks for an "aux sender" when its
//! transport is made; it gets an `rtpgccbwe` (gst-plugins-rs, registered in-process because
//! Debian 12 does not package it). The phone reports the arrival time of every packet in
//! transport-wide CC feedback; `rtpgccbwe` turns that into an estimate and paces the packets.
//! The payloaders carry the TWCC header extension because the RTP caps name it (`extmap-1`),
//! which is also how it gets into the offer.
//!
//! One encoder feeds every session, so there is one bitrate: the answering phone's estimate
//! once a call is answered ([`Controller::follow`]); before that, the lowest estimate among
//! the phones watching, so no preview is flooded.

use super::counters::Counters;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

/// Transport-wide congestion control, draft-holmer-rmcat-transport-wide-cc-extensions-01:
/// what Chromium and Firefox send feedback for.
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Opus's expected loss before the first receiver report: enough that in-band FEC is on
/// from the first packet (opusenc adds FEC only when it expects loss).
pub const START_LOSS_PERCENT: u32 = 5;
/// Its RTP header extension id in the offer (webrtcbin adds no extension of its own).
pub const TWCC_ID: u32 = 1;
/// The estimate covers everything the door sends: Opus at 32 kbit/s plus RTP/SRTP/UDP
/// headers (50 packets a second) is kept out of the video's share.
const AUDIO_SHARE_BPS: u32 = 48_000;
/// The encoder is given this share (percent) of what the estimate leaves for video: x264 and
/// the Pi's encoder overshoot their target for a second after a scene change, and NACKed
/// packets are sent again on top; without the margin each overshoot fills the bottleneck's
/// queue and costs a freeze (3 in 15 s under a 1 Mbit/s cap in `tests/nat/bench_network.mjs`).
const HEADROOM_PERCENT: u32 = 85;
/// The capsfilter in front of a software encoder that the ladder resizes (`pipeline.rs`).
pub const LADDER: &str = "vladder";
/// Below this many bits per pixel (per frame) the picture goes to half its width and height:
/// 0.038 is 350 kbit/s at 640x480@30, where x264 already runs at its coarsest quantiser and
/// still overshoots a noisy picture (`bench_network.mjs`, 500 kbit/s cap).
const HALF_BELOW_BITS_PER_PIXEL: f64 = 0.038;
/// Back to full size above this (650 kbit/s at 640x480@30): apart from the line above, so an
/// estimate hovering near one does not resize the picture every second.
const FULL_ABOVE_BITS_PER_PIXEL: f64 = 0.07;
/// ... and only once the estimate stayed above it this long. GCC probes past the link's
/// capacity every few seconds; a resize up is a full-size keyframe, which on a link that only
/// seemed faster froze the picture for 2.7 s (500 kbit/s cap, before this hold).
const FULL_AFTER: std::time::Duration = std::time::Duration::from_secs(8);
/// Smaller changes do not reach the encoder: x264 restarts its rate control on every change,
/// and the estimate moves by a few percent every feedback interval.
const MIN_CHANGE_PERCENT: u32 = 4;

/// `media.video_min_kbps` ≤ `media.video_bitrate_kbps` (the start) ≤ `media.video_max_kbps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BitrateRange {
    pub min_kbps: u32,
    pub start_kbps: u32,
    pub max_kbps: u32,
}

/// The caps fields that put the TWCC header extension on a payloader and into the offer.
pub(super) fn caps_fields() -> String {
    format!(",extmap-{TWCC_ID}=(string){TWCC_URI}")
}

/// Registers `rtpgccbwe` (and the rest of gst-plugins-rs's RTP plugin, all at rank NONE, so
/// nothing autoplugs them) once per process.
fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = gstrsrtp::plugin_register_static() {
            tracing::warn!("cannot register rtpgccbwe: {e}; the door sends at a fixed bitrate");
        }
    });
}

/// How the encoder takes a bitrate.
#[derive(Debug, Clone, Copy)]
enum Setter {
    /// `bitrate` in kbit/s.
    X264,
    /// `bitrate` in bit/s.
    OpenH264,
    /// `extra-controls` `video_bitrate` in bit/s (the V4L2 M2M encoder of the Pi).
    V4l2,
}

impl Setter {
    fn for_encoder(name: &str) -> Option<Setter> {
        match name {
            "x264enc" => Some(Setter::X264),
            "openh264enc" => Some(Setter::OpenH264),
            "v4l2h264enc" => Some(Setter::V4l2),
            _ => None,
        }
    }

    fn apply(self, encoder: &gst::Element, bps: u32) {
        match self {
            Setter::X264 => encoder.set_property("bitrate", bps / 1000),
            Setter::OpenH264 => encoder.set_property("bitrate", bps),
            Setter::V4l2 => {
                // The whole structure is set again: the driver applies what it holds on
                // every restart, so the other controls must stay in it.
                let mut controls = encoder
                    .property::<Option<gst::Structure>>("extra-controls")
                    .unwrap_or_else(|| gst::Structure::new_empty("controls"));
                controls.set("video_bitrate", i32::try_from(bps).unwrap_or(i32::MAX));
                encoder.set_property("extra-controls", controls);
            }
        }
    }
}

/// One call pipeline's bitrate decision (cheap to clone: one shared state).
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

struct Inner {
    encoder: gst::glib::WeakRef<gst::Element>,
    ladder: Option<Ladder>,
    setter: Setter,
    range: BitrateRange,
    counters: Arc<Counters>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Each session's last estimate (bit/s), by label; a session appears with its first
    /// feedback-driven change, so one that never connected holds nothing down.
    estimates: HashMap<String, u32>,
    /// The session the phone answered in.
    leader: Option<String>,
    /// The video bitrate last given to the encoder (bit/s).
    applied: u32,
    /// The ladder's step: the picture at half size.
    half: bool,
    /// Since when the estimate has called for full size while at half (see [`FULL_AFTER`]).
    full_since: Option<std::time::Instant>,
}

/// The resolution step of a low estimate: the capsfilter before the encoder and the full
/// picture size (`media.width` x `media.height` at `media.framerate`).
pub(super) struct Ladder {
    pub filter: gst::Element,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
}

impl Ladder {
    fn pixels_per_second(&self) -> f64 {
        f64::from(self.width) * f64::from(self.height) * f64::from(self.framerate)
    }

    /// Whether `bps` calls for half size, given the step now (`half`).
    fn wants_half(&self, bps: u32, half: bool) -> bool {
        let bits_per_pixel = f64::from(bps) / self.pixels_per_second();
        if half {
            bits_per_pixel <= FULL_ABOVE_BITS_PER_PIXEL
        } else {
            bits_per_pixel < HALF_BELOW_BITS_PER_PIXEL
        }
    }

    fn resize(&self, half: bool) {
        // Even sizes: the encoders take 4:2:0 pictures.
        let (width, height) = if half {
            ((self.width / 2) & !1, (self.height / 2) & !1)
        } else {
            (self.width, self.height)
        };
        let caps = gst::Caps::builder("video/x-raw")
            .field("width", i32::try_from(width).unwrap_or(i32::MAX))
            .field("height", i32::try_from(height).unwrap_or(i32::MAX))
            .build();
        tracing::info!(width, height, "video size follows the estimate");
        self.filter.set_property("caps", caps);
    }
}

impl Controller {
    /// A controller for `encoder` (named `encoder_name`, the plan's), or `None` when the
    /// encoder cannot change its bitrate or `rtpgccbwe` is missing: then the door sends at
    /// the start bitrate, as with `media.congestion_control = "off"`.
    pub(super) fn new(
        encoder: &gst::Element,
        encoder_name: &str,
        range: BitrateRange,
        ladder: Option<Ladder>,
        counters: Arc<Counters>,
    ) -> Option<Controller> {
        register();
        let setter = Setter::for_encoder(encoder_name)?;
        gst::ElementFactory::find("rtpgccbwe")?;
        counters
            .video_target_kbps
            .store(range.start_kbps.into(), Ordering::Relaxed);
        Some(Controller {
            inner: Arc::new(Inner {
                encoder: encoder.downgrade(),
                ladder,
                setter,
                range,
                counters,
                state: Mutex::new(State {
                    applied: range.start_kbps * 1000,
                    ..State::default()
                }),
            }),
        })
    }

    /// Give `webrtc`'s transport an `rtpgccbwe`, whose estimate is reported as `label`'s.
    pub(super) fn attach(&self, webrtc: &gst::Element, label: &str) {
        let inner = Arc::downgrade(&self.inner);
        let label = label.to_owned();
        webrtc.connect("request-aux-sender", false, move |_| {
            let inner = inner.upgrade()?;
            let bwe = match gst::ElementFactory::make("rtpgccbwe").build() {
                Ok(bwe) => bwe,
                Err(e) => {
                    tracing::warn!("no rtpgccbwe for {label}: {e}");
                    return None;
                }
            };
            let range = inner.range;
            bwe.set_property("min-bitrate", range.min_kbps * 1000 + AUDIO_SHARE_BPS);
            bwe.set_property("max-bitrate", range.max_kbps * 1000 + AUDIO_SHARE_BPS);
            bwe.set_property(
                "estimated-bitrate",
                range.start_kbps * 1000 + AUDIO_SHARE_BPS,
            );
            // Connected after the start value is set: only feedback-driven changes count.
            let weak: Weak<Inner> = Arc::downgrade(&inner);
            let reported = label.clone();
            bwe.connect_notify(Some("estimated-bitrate"), move |bwe, _| {
                if let Some(inner) = weak.upgrade() {
                    inner.update(&reported, bwe.property::<u32>("estimated-bitrate"));
                }
            });
            tracing::debug!(%label, "congestion control on this session");
            Some(bwe.to_value())
        });
    }

    /// The phone answered in the session `label`: the encoder follows its estimate only.
    pub fn follow(&self, label: &str) {
        self.inner.lock().leader = Some(label.to_owned());
        self.inner.decide();
    }

    /// The session `label` is gone.
    pub fn forget(&self, label: &str) {
        {
            let mut state = self.inner.lock();
            state.estimates.remove(label);
            if state.leader.as_deref() == Some(label) {
                state.leader = None;
            }
        }
        self.inner.decide();
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, label: &str, estimate: u32) {
        self.update_at(label, estimate, std::time::Instant::now());
    }

    fn update_at(&self, label: &str, estimate: u32, now: std::time::Instant) {
        self.lock().estimates.insert(label.to_owned(), estimate);
        self.counters
            .bandwidth_estimate_kbps
            .store((estimate / 1000).into(), Ordering::Relaxed);
        self.decide_at(now);
    }

    fn decide(&self) {
        self.decide_at(std::time::Instant::now());
    }

    /// Pick the video bitrate (and the ladder's step) from the estimates and hand it to the
    /// encoder.
    fn decide_at(&self, now: std::time::Instant) {
        let mut state = self.lock();
        let leading = state
            .leader
            .as_ref()
            .and_then(|l| state.estimates.get(l))
            .copied();
        let Some(estimate) = leading.or_else(|| state.estimates.values().min().copied()) else {
            return;
        };
        let target = video_share(estimate, self.range);
        if let Some(ladder) = &self.ladder {
            let half = ladder.wants_half(target, state.half);
            let since = match (state.half, half) {
                (true, false) => *state.full_since.get_or_insert(now),
                _ => {
                    state.full_since = None;
                    now
                }
            };
            if half != state.half && (half || now.duration_since(since) >= FULL_AFTER) {
                state.half = half;
                state.full_since = None;
                ladder.resize(half);
            }
        }
        let change = target.abs_diff(state.applied);
        if change * 100 < state.applied * MIN_CHANGE_PERCENT {
            return;
        }
        state.applied = target;
        drop(state);
        self.counters
            .video_target_kbps
            .store((target / 1000).into(), Ordering::Relaxed);
        if let Some(encoder) = self.encoder.upgrade() {
            tracing::debug!(kbps = target / 1000, "video bitrate follows the estimate");
            self.setter.apply(&encoder, target);
        }
    }
}

/// The video's part of a total estimate, clamped to the configured range (bit/s).
fn video_share(estimate: u32, range: BitrateRange) -> u32 {
    let share =
        u64::from(estimate.saturating_sub(AUDIO_SHARE_BPS)) * u64::from(HEADROOM_PERCENT) / 100;
    u32::try_from(share)
        .unwrap_or(u32::MAX)
        .clamp(range.min_kbps * 1000, range.max_kbps * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: BitrateRange = BitrateRange {
        min_kbps: 150,
        start_kbps: 1200,
        max_kbps: 2500,
    };

    #[test]
    fn video_gets_the_estimate_minus_audio_within_the_range() {
        assert_eq!(video_share(1_000_000, RANGE), 809_200);
        assert_eq!(video_share(50_000, RANGE), 150_000);
        assert_eq!(video_share(9_000_000, RANGE), 2_500_000);
    }

    fn controller() -> (Controller, gst::Element) {
        gst::init().unwrap();
        let encoder = gst::ElementFactory::make("x264enc").build().unwrap();
        let counters = Arc::new(Counters::default());
        let controller = Controller::new(&encoder, "x264enc", RANGE, None, counters).unwrap();
        (controller, encoder)
    }

    #[test]
    fn a_low_estimate_halves_the_picture_and_a_recovered_one_restores_it() {
        gst::init().unwrap();
        let encoder = gst::ElementFactory::make("x264enc").build().unwrap();
        let filter = gst::ElementFactory::make("capsfilter").build().unwrap();
        let ladder = Ladder {
            filter: filter.clone(),
            width: 640,
            height: 480,
            framerate: 30,
        };
        let counters = Arc::new(Counters::default());
        let controller =
            Controller::new(&encoder, "x264enc", RANGE, Some(ladder), counters).unwrap();
        let width = || {
            filter
                .property::<Option<gst::Caps>>("caps")
                .and_then(|c| c.structure(0).and_then(|s| s.get::<i32>("width").ok()))
        };
        let start = std::time::Instant::now();
        let at = |secs| start + std::time::Duration::from_secs(secs);
        let inner = &controller.inner;
        inner.update_at("call", 1_000_000, at(0));
        assert_eq!(width(), None, "full size: the filter is left alone");
        inner.update_at("call", 400_000, at(1)); // 299 kbit/s of video
        assert_eq!(width(), Some(320), "half at once");
        inner.update_at("call", 700_000, at(2)); // 554: between the lines, stays half
        assert_eq!(width(), Some(320));
        inner.update_at("call", 900_000, at(3)); // 724: above, but only just now
        inner.update_at("call", 950_000, at(9));
        assert_eq!(
            width(),
            Some(320),
            "a probe past the line is not a recovery"
        );
        inner.update_at("call", 400_000, at(10));
        inner.update_at("call", 900_000, at(11));
        inner.update_at("call", 950_000, at(19));
        assert_eq!(width(), Some(640), "back up after 8 s above the line");
    }

    #[test]
    fn the_encoder_follows_the_slowest_phone_then_the_answering_one() {
        let (controller, encoder) = controller();
        let inner = &controller.inner;
        inner.update("preview a", 2_048_000);
        inner.update("preview b", 748_000);
        assert_eq!(
            encoder.property::<u32>("bitrate"),
            595,
            "the slowest preview"
        );
        controller.follow("preview a");
        assert_eq!(
            encoder.property::<u32>("bitrate"),
            1700,
            "the answering phone"
        );
        controller.forget("preview a");
        assert_eq!(encoder.property::<u32>("bitrate"), 595);
        assert_eq!(
            inner.counters.video_target_kbps.load(Ordering::Relaxed),
            595
        );
    }

    #[test]
    fn small_changes_do_not_reconfigure_the_encoder() {
        let (controller, encoder) = controller();
        controller.inner.update("call", 1_000_000);
        assert_eq!(encoder.property::<u32>("bitrate"), 809);
        controller.inner.update("call", 1_010_000);
        assert_eq!(encoder.property::<u32>("bitrate"), 809);
    }
}
