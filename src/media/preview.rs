//! Preview sessions: one more `webrtcbin` per ringing phone, fed by the call's one encoder.
//!
//! ```text
//!  … ─► H.264 encoder ─► rtph264pay ─► tee vrtp ─┬─► queue ─► call's webrtcbin
//!                                                 └─► queue vcaps ─► preview webrtcbin (sendonly)
//!  … ─► opusenc ─► rtpopuspay ──────► tee artp ─┬─► queue ─► call's webrtcbin
//!                                                └─► queue ─► valve acaps (drop) ─► preview webrtcbin
//!  preview webrtcbin ─► valve (drop) ─► opusdec adec ─► speaker
//! ```
//!
//! Nothing is encoded twice: a preview adds an RTP queue, SRTP and ICE, never an encoder.
//! Audio is negotiated from the start (so answering needs no new handshake) but both valves
//! drop it until [`PreviewBranch::open_talk`]: no door audio leaves and no phone audio is
//! played before the phone answers. The valves forward sticky events (caps), so the offer
//! still describes the audio stream.
//!
//! Each branch is a bin of its own in the call's pipeline; dropping the [`PreviewBranch`]
//! unlinks it from the tees and sets it to NULL (the guard).

use super::gathering::GatheringWatch;
use super::pipeline::{configure_ice, configure_servers, count_buffers, set_directions};
use super::session::{Counters, IceSettings, SessionError};
use super::vp8::{VideoInput, Vp8Plan, Vp8Video};
use super::DtlsCertificate;
use crate::core::{MediaEvent, MediaEventKind, SessionMediaEvent};
use doorbell_protocol::{CallId, SessionId};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The tees the call's pipeline puts after its RTP payloaders (see `pipeline::describe`).
pub(super) const VIDEO_TEE: &str = "vrtp";
pub(super) const AUDIO_TEE: &str = "artp";

/// What a preview needs from its call's session and configuration.
pub struct PreviewSetup<'a> {
    pub ice: &'a IceSettings,
    pub dtls: Option<&'a DtlsCertificate>,
    /// Where the phone's voice plays once it answers (the plan's speaker).
    pub audio_sink: &'a str,
    /// The call session's counters (outbound audio, decoded phone audio).
    pub counters: Arc<Counters>,
    /// The call's congestion control, which this preview's transport reports to.
    pub congestion: Option<&'a super::Controller>,
    pub events: mpsc::Sender<MediaEvent>,
    /// VP8 offered too (`MediaPlan::vp8_plan`).
    pub vp8: Option<Vp8Plan>,
}

/// One phone's preview: its bin in the call's pipeline and the tee pads feeding it.
pub struct PreviewBranch {
    session_id: SessionId,
    pipeline: gst::Pipeline,
    bin: gst::Bin,
    webrtc: gst::Element,
    tee_pads: Vec<gst::Pad>,
    /// Set by [`PreviewBranch::open_talk`]. The phone's audio pad usually appears only after
    /// Answer (the phone adds its microphone then), so its valve is created open or closed
    /// by this flag.
    talking: Arc<AtomicBool>,
    /// The session's `control` data channel: the answering phone's unlocks, once it talks.
    control: gst_webrtc::WebRTCDataChannel,
    /// The call's congestion control: follows this session once the phone answers in it.
    congestion: Option<super::Controller>,
    gathering: GatheringWatch,
    /// VP8 offered; the video from the VP8 tee once the phone answered VP8 (`super::vp8`).
    vp8: Vp8Video,
    counters: Arc<Counters>,
}

fn build_error(e: impl std::fmt::Display) -> SessionError {
    SessionError::Build(e.to_string())
}

impl PreviewBranch {
    /// Add a preview to `pipeline` (a running call session's) and start creating its offer.
    pub fn open(
        pipeline: &gst::Pipeline,
        call_id: &CallId,
        session_id: &SessionId,
        setup: PreviewSetup<'_>,
    ) -> Result<PreviewBranch, SessionError> {
        let PreviewSetup {
            ice,
            dtls,
            audio_sink,
            counters,
            congestion,
            events,
            vp8,
        } = setup;
        let bin = gst::parse::bin_from_description(
            // Audio first: BUNDLE's tag, so a rejected video line leaves the bundle intact
            // (see `pipeline::describe`).
            "webrtcbin name=webrtc bundle-policy=max-bundle latency=50 \
             queue name=aq max-size-buffers=50 leaky=downstream \
             ! valve name=acaps drop=true drop-mode=forward-sticky-events ! webrtc. \
             queue name=vcaps max-size-buffers=60 leaky=downstream ! webrtc.",
            false,
        )
        .map_err(build_error)?;
        let webrtc = bin
            .by_name("webrtc")
            .ok_or_else(|| build_error("no webrtcbin"))?;
        configure_ice(&webrtc, ice);
        let gathering = GatheringWatch::attach(&webrtc);
        if let Some(certificate) = dtls {
            super::dtls::use_certificate(&webrtc, certificate);
        }
        set_directions(&webrtc)?;
        if let Some(congestion) = congestion {
            congestion.attach(&webrtc, session_id.as_str());
        }
        // Door audio leaving: counted after the valve, so 0 until Answer is the privacy rule.
        count_buffers(&bin, "acaps", counters.clone(), |c| &c.audio_rtp_sent);
        for (name, element) in [("video", "vcaps"), ("audio", "aq")] {
            let target = bin
                .by_name(element)
                .and_then(|e| e.static_pad("sink"))
                .ok_or_else(|| build_error("branch input missing"))?;
            let ghost = gst::GhostPad::builder_with_target(&target)
                .map_err(build_error)?
                .name(name)
                .build();
            bin.add_pad(&ghost).map_err(build_error)?;
        }
        let send = sender(call_id, session_id, events);
        let talking = Arc::new(AtomicBool::new(false));
        connect_signals(
            &webrtc,
            &bin,
            audio_sink,
            counters.clone(),
            talking.clone(),
            send.clone(),
        );
        let vp8 = Vp8Video::new(vp8, &bin);
        create_offer_once_negotiated(&webrtc, dtls.cloned(), vp8.offered(), send.clone());

        pipeline.add(&bin).map_err(build_error)?;
        // webrtcbin makes data channels only out of NULL, and the channel must exist before
        // the offer (which waits for the caps that linking the tees brings).
        if let Err(e) = bin.sync_state_with_parent() {
            let _ = pipeline.remove(&bin);
            return Err(build_error(e));
        }
        let forward = send.clone();
        let control = super::session::create_control_channel(&webrtc, move |text| {
            forward(SessionMediaEvent::ControlMessage(text))
        });
        let control = match control {
            Ok(control) => control,
            Err(e) => {
                let _ = bin.set_state(gst::State::Null);
                let _ = pipeline.remove(&bin);
                return Err(e);
            }
        };
        let mut branch = PreviewBranch {
            session_id: session_id.clone(),
            pipeline: pipeline.clone(),
            bin,
            webrtc,
            tee_pads: Vec::new(),
            talking,
            control,
            congestion: congestion.cloned(),
            gathering,
            vp8,
            counters,
        };
        for (tee, input) in [(VIDEO_TEE, "video"), (AUDIO_TEE, "audio")] {
            let tee = pipeline
                .by_name(tee)
                .ok_or_else(|| build_error(format!("the call's pipeline has no {tee} tee")))?;
            let src = tee
                .request_pad_simple("src_%u")
                .ok_or_else(|| build_error("tee gave no pad"))?;
            branch.tee_pads.push(src.clone());
            let sink = branch
                .bin
                .static_pad(input)
                .ok_or_else(|| build_error("no branch input"))?;
            src.link(&sink).map_err(|e| build_error(format!("{e:?}")))?;
        }
        Ok(branch)
    }

    /// Same as `Session::start_ice`, for this session's `webrtcbin`.
    pub fn start_ice(
        &self,
        offer_sdp: &str,
        servers: &[doorbell_protocol::IceServer],
    ) -> Result<(), SessionError> {
        let message = gst_sdp::SDPMessage::parse_buffer(offer_sdp.as_bytes())
            .map_err(|_| SessionError::BadSdp)?;
        configure_servers(&self.webrtc, servers);
        let offer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, message);
        self.webrtc
            .emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
        Ok(())
    }

    pub fn set_answer(&self, sdp: &str) -> Result<(), SessionError> {
        let mut message =
            gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).map_err(|_| SessionError::BadSdp)?;
        let input = VideoInput::of(&self.bin, self.bin.static_pad("video"));
        self.vp8
            .follow_answer(&self.pipeline, input, &mut message, &self.counters);
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&answer, &None::<gst::Promise>]);
        Ok(())
    }

    pub fn add_remote_candidate(&self, mline: u32, candidate: &str) {
        let candidate = candidate.trim().trim_start_matches("a=");
        if !candidate.is_empty() {
            self.webrtc
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
        }
    }

    /// The phone answered in this session: let its audio through both ways.
    pub fn open_talk(&self) {
        // The flag first: a valve created from now on starts open (see `connect_signals`).
        self.talking.store(true, Ordering::SeqCst);
        // The one encoder now serves this phone: its link sets the bitrate.
        if let Some(congestion) = &self.congestion {
            congestion.follow(self.session_id.as_str());
        }
        for valve in self.valves() {
            valve.set_property("drop", false);
        }
        tracing::info!(session_id = %self.session_id, "preview upgraded: audio both ways");
    }

    /// A live view: the door's voice out to this phone (`view.door_audio`), or held again.
    /// The phone's voice stays blocked (only [`PreviewBranch::open_talk`] opens it).
    pub fn door_audio(&self, on: bool) {
        if let Some(valve) = self.bin.by_name("acaps") {
            valve.set_property("drop", !on);
        }
        tracing::info!(session_id = %self.session_id, on, "live view: door audio");
    }

    /// The audio valves: the door's voice out, and (once the phone's audio pad appeared)
    /// the phone's voice in.
    fn valves(&self) -> Vec<gst::Element> {
        self.bin
            .iterate_recurse()
            .into_iter()
            .flatten()
            .filter(|e| e.factory().is_some_and(|f| f.name() == "valve"))
            .collect()
    }

    /// Send on the session's `control` data channel (replies to the answering phone).
    pub fn send_control(&self, text: &str) -> Result<(), SessionError> {
        self.control
            .send_string_full(Some(text))
            .map_err(|e| SessionError::Control(e.to_string()))
    }

    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }
}

impl Drop for PreviewBranch {
    fn drop(&mut self) {
        self.vp8.stop();
        if let Some(congestion) = &self.congestion {
            congestion.forget(self.session_id.as_str());
        }
        for src in self.tee_pads.drain(..) {
            if let Some(peer) = src.peer() {
                let _ = src.unlink(&peer);
            }
            if let Some(tee) = src.parent_element() {
                tee.release_request_pad(&src);
            }
        }
        super::teardown::flush_for_teardown(&self.webrtc);
        if let Err(e) = self.bin.set_state(gst::State::Null) {
            tracing::warn!(session_id = %self.session_id, "preview did not stop cleanly: {e}");
        }
        let _ = self.pipeline.remove(&self.bin);
        let label = format!("preview {}", self.session_id);
        self.gathering
            .clone()
            .release_when_quiet(&self.webrtc, self.bin.clone(), &label);
        tracing::debug!(session_id = %self.session_id, "preview torn down");
    }
}

type Send = Arc<dyn Fn(SessionMediaEvent) + std::marker::Send + Sync>;

fn sender(call_id: &CallId, session_id: &SessionId, events: mpsc::Sender<MediaEvent>) -> Send {
    let call_id = call_id.clone();
    let session_id = session_id.clone();
    Arc::new(move |event| {
        let event = MediaEvent {
            call_id: call_id.clone(),
            kind: MediaEventKind::Session(session_id.clone(), event),
        };
        if events.try_send(event).is_err() {
            tracing::warn!("media event queue full or closed; preview event dropped");
        }
    })
}

fn connect_signals(
    webrtc: &gst::Element,
    bin: &gst::Bin,
    audio_sink: &str,
    counters: Arc<Counters>,
    talking: Arc<AtomicBool>,
    send: Send,
) {
    let on_candidate = send.clone();
    webrtc.connect("on-ice-candidate", false, move |values| {
        let mline = values.get(1).and_then(|v| v.get::<u32>().ok());
        let candidate = values.get(2).and_then(|v| v.get::<String>().ok());
        if let (Some(mline), Some(candidate)) = (mline, candidate) {
            on_candidate(SessionMediaEvent::LocalCandidate { mline, candidate });
        }
        None
    });
    let on_state = send.clone();
    webrtc.connect_notify(Some("connection-state"), move |webrtc, _| {
        use gst_webrtc::WebRTCPeerConnectionState as S;
        match webrtc.property::<S>("connection-state") {
            // Only the certificate the answer named (the pinned one) may be on the other end.
            S::Connected => on_state(match super::dtls::verify_peer(webrtc) {
                Ok(()) => SessionMediaEvent::Connected,
                Err(why) => SessionMediaEvent::Failed(why),
            }),
            S::Failed => on_state(SessionMediaEvent::Failed(
                "ICE/DTLS connection failed".into(),
            )),
            _ => {}
        }
    });
    // The phone's voice: blocked by a valve until Answer, then decoded and played.
    let bin_weak = bin.downgrade();
    let sink_description = audio_sink.to_owned();
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Some(bin) = bin_weak.upgrade() else {
            return;
        };
        let is_audio = pad
            .current_caps()
            .and_then(|caps| caps.structure(0).and_then(|s| s.get::<String>("media").ok()))
            .is_some_and(|media| media == "audio");
        let description = if is_audio {
            format!(
                "valve name=arx drop=true ! rtpopusdepay ! opusdec name=adec plc=true ! audioconvert \
                 ! audioresample ! queue max-size-time=200000000 leaky=downstream ! {sink_description}"
            )
        } else {
            "fakesink sync=false".to_owned()
        };
        let linked = (|| -> Result<(), String> {
            let play =
                gst::parse::bin_from_description(&description, true).map_err(|e| e.to_string())?;
            bin.add(&play).map_err(|e| e.to_string())?;
            if is_audio {
                count_buffers(&play, "adec", counters.clone(), |c| &c.audio_buffers_received);
            }
            // Checked after the valve is in the bin: `open_talk` sets the flag before it looks
            // for valves, so one of the two opens it.
            if let Some(valve) = play.by_name("arx") {
                valve.set_property("drop", !talking.load(Ordering::SeqCst));
            }
            play.sync_state_with_parent().map_err(|e| e.to_string())?;
            let sink = play.static_pad("sink").ok_or("no sink pad")?;
            pad.link(&sink).map_err(|e| format!("{e:?}"))?;
            Ok(())
        })();
        if let Err(e) = linked {
            send(SessionMediaEvent::Failed(format!("cannot take the phone's audio: {e}")));
        }
    });
}

/// Create the offer once both inputs carry caps (see `Session::create_offer_once_negotiated`
/// for why the caps event, not a query, must come first).
fn create_offer_once_negotiated(
    webrtc: &gst::Element,
    dtls: Option<DtlsCertificate>,
    vp8: bool,
    send: Send,
) {
    let pads = webrtc.sink_pads();
    let waiting = Arc::new(AtomicUsize::new(pads.len()));
    let weak = webrtc.downgrade();
    let start = Arc::new(std::sync::Mutex::new(Some(move || {
        let Some(webrtc) = weak.upgrade() else {
            return;
        };
        let weak = webrtc.downgrade();
        let promise = gst::Promise::with_change_func(move |reply| {
            if weak.upgrade().is_none() {
                return;
            }
            let offer = match reply {
                Ok(Some(reply)) => reply.get::<gst_webrtc::WebRTCSessionDescription>("offer"),
                _ => return send(SessionMediaEvent::Failed("create-offer failed".into())),
            };
            let Ok(offer) = offer else {
                return send(SessionMediaEvent::Failed(
                    "create-offer gave no offer".into(),
                ));
            };
            let mut message = offer.sdp().to_owned();
            if let Some(certificate) = &dtls {
                super::dtls::fix_fingerprints(&mut message, certificate);
            }
            if vp8 {
                super::vp8::sdp::offer_vp8(&mut message);
            }
            match message.as_text() {
                Ok(text) => send(SessionMediaEvent::OfferReady(text.to_string())),
                Err(e) => send(SessionMediaEvent::Failed(format!("offer SDP: {e}"))),
            }
        });
        webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    })));
    for pad in pads {
        let waiting = waiting.clone();
        let start = start.clone();
        let seen = std::sync::atomic::AtomicBool::new(false);
        pad.connect_notify(Some("caps"), move |pad, _| {
            if pad.current_caps().is_none() || seen.swap(true, Ordering::AcqRel) {
                return;
            }
            if waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
                let start = start.lock().ok().and_then(|mut s| s.take());
                if let Some(start) = start {
                    start();
                }
            }
        });
    }
}

/// Video encoders in `pipeline` (every bin included): one, however many phones watch.
pub fn video_encoders(pipeline: &gst::Pipeline) -> usize {
    count_recursively(pipeline.upcast_ref(), |e| {
        e.factory()
            .is_some_and(|f| f.klass().contains("Encoder") && f.klass().contains("Video"))
    })
}

/// The elements of `bin` (at any depth) for which `counts` is true.
///
/// A bin's iterator starts over when the bin changes under it (a session's bin added or
/// removed on another thread); counting across such a restart counted an encoder twice
/// (`doorbelld status` said 3 while two phones rang). Only a pass without one counts.
fn count_recursively(bin: &gst::Bin, mut counts: impl FnMut(&gst::Element) -> bool) -> usize {
    let mut elements = bin.iterate_recurse();
    loop {
        match elements.fold(0, |n, e| Ok(n + usize::from(counts(&e)))) {
            Ok(n) => return n,
            Err(gst::IteratorError::Resync) => elements.resync(),
            Err(gst::IteratorError::Error) => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bin_changed_while_counting_is_counted_once() {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        for _ in 0..3 {
            bin.add(&gst::ElementFactory::make("identity").build().unwrap())
                .unwrap();
        }
        // The first look adds an element, as another thread adding a session's bin would.
        let mut added = false;
        let identities = count_recursively(&bin, |e| {
            if !added {
                added = true;
                bin.add(&gst::ElementFactory::make("queue").build().unwrap())
                    .unwrap();
            }
            e.factory().is_some_and(|f| f.name() == "identity")
        });
        assert!(added);
        assert_eq!(identities, 3);
    }
}
