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
}

impl Controller {
    /// A controller for `encoder` (named `encoder_name`, the plan's), or `None` when the
    /// encoder cannot change its bitrate or `rtpgccbwe` is missing: then the door sends at
    /// the start bitrate, as with `media.congestion_control = "off"`.
    pub(super) fn new(
        encoder: &gst::Element,
        encoder_name: &str,
        range: BitrateRange,
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
            // The signal returns an element: "none" must be a null element, not `None`
            // (glib-rs panics on a missing return value, inside GStreamer's thread).
            let no_sender = || Some(None::<gst::Element>.to_value());
            let Some(inner) = inner.upgrade() else {
                return no_sender();
            };
            let bwe = match gst::ElementFactory::make("rtpgccbwe").build() {
                Ok(bwe) => bwe,
                Err(e) => {
                    tracing::warn!("no rtpgccbwe for {label}: {e}");
                    return no_sender();
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
            // webrtcbin sinks the aux sender it gets, as if it were a new element made in C
            // (floating). One made in Rust is not floating, so that sink took a reference of
            // its own that nobody dropped: every session leaked its rtpgccbwe and the packet
            // history in it (the media tests' check that a call frees every element found it).
            // SAFETY: `bwe` is a valid GObject; only its floating flag changes, and the one
            // reference handed to webrtcbin in the returned value is the one it sinks. Nothing
            // may wrap `bwe` again after this (a new Rust reference would sink the flag).
            unsafe {
                gst::glib::gobject_ffi::g_object_force_floating(
                    bwe.as_ptr().cast::<gst::glib::gobject_ffi::GObject>(),
                );
            }
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
        self.lock().estimates.insert(label.to_owned(), estimate);
        self.counters
            .bandwidth_estimate_kbps
            .store((estimate / 1000).into(), Ordering::Relaxed);
        self.decide();
    }

    /// Pick the video bitrate from the estimates and hand it to the encoder.
    fn decide(&self) {
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
        let controller = Controller::new(&encoder, "x264enc", RANGE, counters).unwrap();
        (controller, encoder)
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
