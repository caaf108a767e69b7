//! One call's media: a GStreamer pipeline ending in `webrtcbin`.
//!
//! ```text
//!  camera ─► convert/scale ─► H.264 (constrained baseline) ─► rtph264pay ─┐ video: sendonly
//!  mic ────► webrtcdsp ─► opusenc ───────────────────────► rtpopuspay ──┤
//!              ▲ (far end)                                                ├─► webrtcbin ◄─► ICE/DTLS
//!  speaker ◄─ webrtcechoprobe ◄─ opusdec ◄─ rtpopusdepay ◄───────────────┘ audio: sendrecv
//! ```
//!
//! The camera also feeds a tee branch that makes one JPEG per press (`super::snapshot`).
//!
//! Audio is the offer's first m-line; VP8 follows H.264 for phones without it (`super::vp8`).
//!
//! With `media.echo_cancel` (the default) the microphone goes through `webrtcdsp` (echo
//! cancellation, noise suppression, gain control) and the phone's voice passes a
//! `webrtcechoprobe` just before the speaker, so the canceller knows what the speaker played
//! and removes it from what the microphone hears.
//!
//! The session is built and set PLAYING when the door starts ringing, and it creates its offer
//! right away, so the encoder has caps and ICE is gathering by the time a phone answers.
//! The session also creates the `control` data channel before the offer (so it is in the SDP):
//! the answering phone's Unlock requests arrive on it as [`MediaEventKind::ControlMessage`] and
//! the door's replies leave through [`Session::send_control`].
//!
//! GStreamer callbacks never touch call state: they `try_send` a [`MediaEvent`] to the daemon's
//! one owner task. Dropping the [`Session`] sets the pipeline to NULL (the guard), on every path.

use super::gathering::GatheringWatch;
use super::pipeline::{configure_ice, configure_servers, count_buffers, describe};
use super::pipeline::{next_probe_name, set_directions, AEC_CAPS};
use super::probe::MediaPlan;
use super::vp8::{VideoInput, Vp8Video};
use doorbell_protocol::{CallId, IceServer};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::dtls::DtlsCertificate;
use tokio::sync::mpsc;

pub use crate::core::{MediaEvent, MediaEventKind};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot build the media pipeline: {0}")]
    Build(String),
    #[error("cannot start the media pipeline: {0}")]
    Start(String),
    #[error("the phone's SDP answer is not valid SDP")]
    BadSdp,
    #[error("cannot send on the control data channel: {0}")]
    Control(String),
}

pub use super::counters::{Counters, SessionStats};

/// Network settings for one session.
#[derive(Debug, Clone, Default)]
pub struct IceSettings {
    pub servers: Vec<IceServer>,
    /// Restrict host candidates to these addresses (empty: every interface).
    pub local_addresses: Vec<String>,
}

/// Bounded queue from GStreamer threads to the owner task. A call produces a few dozen events
/// (candidates, state changes); 256 absorbs a burst without ever blocking a streaming thread.
pub const MEDIA_EVENT_QUEUE: usize = 256;

/// The call's own `webrtcbin` in congestion control (previews go by their session id).
pub const CALL_LABEL: &str = "call";

pub struct Session {
    call_id: CallId,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    /// The `control` data channel (unlock requests from the answering phone); set right
    /// after the pipeline leaves NULL, before the offer.
    control: Option<gst_webrtc::WebRTCDataChannel>,
    counters: Arc<Counters>,
    /// The encoder's bitrate decision (`None`: a fixed bitrate).
    congestion: Option<super::Controller>,
    bus_task: tokio::task::JoinHandle<()>,
    /// Sizes Opus's FEC by the phones' reported loss (`super::audio_loss`).
    loss_task: tokio::task::JoinHandle<()>,
    gathering: GatheringWatch,
    /// VP8 offered (`media.vp8`); the phone's video from the VP8 tee once it answers VP8.
    vp8: Vp8Video,
}

impl Session {
    /// Build the pipeline, start it and begin creating the offer.
    pub fn start(
        call_id: CallId,
        plan: &MediaPlan,
        ice: &IceSettings,
        events: mpsc::Sender<MediaEvent>,
    ) -> Result<Session, SessionError> {
        let probe = plan.echo_cancel.then(next_probe_name);
        let description = describe(plan, probe.as_deref());
        tracing::debug!(%call_id, %description, "building media pipeline");
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| SessionError::Build(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| SessionError::Build("description did not make a pipeline".into()))?;
        let webrtc = pipeline
            .by_name("webrtc")
            .ok_or_else(|| SessionError::Build("no webrtcbin in pipeline".into()))?;
        let counters = Arc::new(Counters::default());

        configure_ice(&webrtc, ice);
        let gathering = GatheringWatch::attach(&webrtc);
        if let Some(certificate) = &plan.dtls {
            super::dtls::use_certificate(&webrtc, certificate);
        }
        set_directions(&webrtc)?;
        let congestion = plan.bitrate.and_then(|range| {
            let encoder = pipeline.by_name("venc")?;
            super::Controller::new(&encoder, &plan.encoder, range, counters.clone())
        });
        if let Some(congestion) = &congestion {
            congestion.attach(&webrtc, CALL_LABEL);
        }
        if let Some(tee) = pipeline.by_name(super::preview::VIDEO_TEE) {
            super::keyframes::limit(&tee);
        }
        count_buffers(&pipeline, "venc", counters.clone(), |c| {
            &c.video_frames_sent
        });
        connect_signals(
            &webrtc,
            &pipeline,
            &call_id,
            &events,
            &counters,
            &plan.audio_sink,
            probe.as_deref(),
        );
        let bus_task = super::bus::watch_bus(&pipeline, &call_id, events.clone())?;
        let loss_task = super::audio_loss::follow(&pipeline);

        let vp8 = Vp8Video::new(plan.vp8_plan(), &pipeline);
        // From here on the guard (Drop) owns cleanup, so every error path below tears down.
        let mut session = Session {
            call_id: call_id.clone(),
            pipeline,
            webrtc,
            control: None,
            counters,
            congestion,
            bus_task,
            loss_task,
            gathering,
            vp8,
        };
        // webrtcbin makes data channels only once it is out of NULL; READY moves no data, and
        // the channel must exist before the offer so its m-line is negotiated with the call.
        session
            .pipeline
            .set_state(gst::State::Ready)
            .map_err(|e| SessionError::Start(e.to_string()))?;
        let forward = {
            let (events, call_id) = (events.clone(), call_id.clone());
            move |text: String| {
                let kind = MediaEventKind::ControlMessage(text);
                let event = MediaEvent {
                    call_id: call_id.clone(),
                    kind,
                };
                if events.try_send(event).is_err() {
                    tracing::warn!("media event queue full; data-channel message dropped");
                }
            }
        };
        session.control = Some(create_control_channel(&session.webrtc, forward)?);
        // Watch for caps before anything flows, so no CAPS event can slip past the probes.
        session.create_offer_once_negotiated(events, plan.dtls.clone(), plan.vp8);
        session
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| SessionError::Start(e.to_string()))?;
        Ok(session)
    }

    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    /// The visitor's snapshot from this session's video, to take on a blocking thread.
    pub fn snapshot(&self) -> Result<super::SnapshotGrab, super::SnapshotError> {
        super::SnapshotGrab::of(&self.pipeline)
    }

    /// The pipeline, for inspection (tests check that it is freed after the session).
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// Congestion control of this call's one encoder (previews attach to it).
    pub fn congestion(&self) -> Option<&super::Controller> {
        self.congestion.as_ref()
    }

    pub fn stats(&self) -> SessionStats {
        self.counters.snapshot()
    }

    /// The live counters, for readers outside the call task (`doorbelld status`).
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Create the offer as soon as both of webrtcbin's inputs carry their final caps.
    ///
    /// webrtcbin 1.22 does not always wait: when the encoder is already warm (second call) it
    /// may build the offer from a caps *query*, which lacks `packetization-mode=1` and the
    /// H.264 profile, and Chromium then negotiates a broken session. Waiting for the CAPS
    /// event on each sink pad (a few ms to 1.3 s on two cores) makes the offer the same every
    /// time; this is why the session starts while the phones are still ringing.
    fn create_offer_once_negotiated(
        &self,
        events: mpsc::Sender<MediaEvent>,
        dtls: Option<DtlsCertificate>,
        vp8: bool,
    ) {
        let pads = self.webrtc.sink_pads();
        let waiting = Arc::new(AtomicU64::new(pads.len() as u64));
        let webrtc = self.webrtc.downgrade();
        let call_id = self.call_id.clone();
        let start = Arc::new(std::sync::Mutex::new(Some(move || {
            if let Some(webrtc) = webrtc.upgrade() {
                create_offer(&webrtc, call_id, events, dtls, vp8);
            }
        })));
        for pad in pads {
            let waiting = waiting.clone();
            let start = start.clone();
            let seen = std::sync::atomic::AtomicBool::new(false);
            // `notify::caps` fires after webrtcbin's own event handler has stored the caps it
            // will offer; a pad probe would run before that handler and race with it.
            pad.connect_notify(Some("caps"), move |pad, _| {
                if pad.current_caps().is_none() || seen.swap(true, Ordering::AcqRel) {
                    return;
                }
                tracing::trace!(pad = %pad.name(), "webrtcbin input has caps");
                if waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
                    // Last input negotiated: take the closure so the offer is made once.
                    let start = start.lock().ok().and_then(|mut s| s.take());
                    if let Some(start) = start {
                        start();
                    }
                }
            });
        }
    }
}

/// Ask webrtcbin for an offer and report it. It is not yet the local description: that
/// starts ICE gathering, which waits for [`Session::start_ice`] so that the TURN credentials
/// the hub mints for this call (in `ringing`, or `answered` from an older hub) are
/// configured first.
fn create_offer(
    webrtc: &gst::Element,
    call_id: CallId,
    events: mpsc::Sender<MediaEvent>,
    dtls: Option<DtlsCertificate>,
    vp8: bool,
) {
    {
        // The promise must not keep the element alive (it would outlive the session's guard).
        let weak = webrtc.downgrade();
        let promise = gst::Promise::with_change_func(move |reply| {
            let fail = |why: String| {
                let _ = events.try_send(MediaEvent {
                    call_id: call_id.clone(),
                    kind: MediaEventKind::Failed(why),
                });
            };
            if weak.upgrade().is_none() {
                return;
            }
            let offer = match reply {
                Ok(Some(reply)) => match reply.get::<gst_webrtc::WebRTCSessionDescription>("offer")
                {
                    Ok(offer) => offer,
                    Err(e) => return fail(format!("create-offer gave no offer: {e}")),
                },
                Ok(None) => return fail("create-offer gave an empty reply".into()),
                Err(e) => return fail(format!("create-offer failed: {e:?}")),
            };
            // The SDP reported here is what `start_ice` sets as the local description.
            let mut message = offer.sdp().to_owned();
            if let Some(certificate) = &dtls {
                super::dtls::fix_fingerprints(&mut message, certificate);
            }
            if vp8 {
                super::vp8::sdp::offer_vp8(&mut message);
            }
            let sdp = match message.as_text() {
                Ok(text) => text.to_string(),
                Err(e) => return fail(format!("offer SDP cannot be written: {e}")),
            };
            let _ = events.try_send(MediaEvent {
                call_id,
                kind: MediaEventKind::OfferReady(sdp),
            });
        });
        webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    }
}

impl Session {
    /// Adds this call's STUN/TURN `servers` (from the hub's `ringing` or `answered`, with
    /// credentials minted for this call) and sets `offer_sdp` (from
    /// [`MediaEventKind::OfferReady`]) as the local description, which starts ICE gathering
    /// with them.
    ///
    /// webrtcbin (1.22) applies TURN servers when gathering starts, not to a running
    /// gathering, hence the offer is held until the servers are known (while ringing).
    pub fn start_ice(&self, offer_sdp: &str, servers: &[IceServer]) -> Result<(), SessionError> {
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
        let input = VideoInput::of(&self.pipeline, None);
        self.vp8
            .follow_answer(&self.pipeline, input, &mut message, &self.counters);
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&answer, &None::<gst::Promise>]);
        Ok(())
    }

    pub fn add_remote_candidate(&self, mline: u32, candidate: &str) {
        // An empty candidate is the browser's end-of-candidates marker: nothing to add.
        let candidate = candidate.trim().trim_start_matches("a=");
        if candidate.is_empty() {
            return;
        }
        self.webrtc
            .emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
    }

    /// Ask the encoder for a keyframe with SPS/PPS, so the phone's decoder starts at once
    /// instead of waiting up to a GOP.
    pub fn request_keyframe(&self) {
        if !super::keyframes::force(&self.pipeline, "venc") {
            tracing::debug!(call_id = %self.call_id, "encoder ignored the keyframe request");
        }
        super::vp8::request_keyframe(&self.pipeline);
    }
}

impl Session {
    /// Send a text message to the phone on the `control` data channel. Fails (for the log)
    /// when the channel is not open.
    pub fn send_control(&self, text: &str) -> Result<(), SessionError> {
        self.control
            .as_ref()
            .ok_or_else(|| SessionError::Control("no data channel".into()))?
            .send_string_full(Some(text))
            .map_err(|e| SessionError::Control(e.to_string()))
    }
}

/// Create the `control` data channel (ordered, reliable: an unlock must arrive once) and
/// `forward` what the phone sends on it (to the call task). Also used by previews.
pub(super) fn create_control_channel(
    webrtc: &gst::Element,
    forward: impl Fn(String) + Clone + Send + Sync + 'static,
) -> Result<gst_webrtc::WebRTCDataChannel, SessionError> {
    use doorbell_protocol::control::{CONTROL_LABEL, MAX_CONTROL_MESSAGE_BYTES};
    let channel = webrtc
        .emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>(
            "create-data-channel",
            &[&CONTROL_LABEL, &None::<gst::Structure>],
        )
        .ok_or_else(|| {
            SessionError::Build(
                "webrtcbin refused to create the control data channel (is sctpenc installed?)"
                    .into(),
            )
        })?;
    let on_text = forward.clone();
    channel.connect_on_message_string(move |_, text| {
        // An oversized message is passed on truncated past the limit so the decision still
        // sees (and refuses) it, without copying megabytes into the queue.
        let text = text.unwrap_or_default();
        let cut = text.len().min(MAX_CONTROL_MESSAGE_BYTES + 1);
        let cut = (0..=cut)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        on_text(text[..cut].to_owned());
    });
    // Binary messages are not part of the protocol: let the decision refuse them as such.
    channel.connect_on_message_data(move |_, _| forward("<binary message>".to_owned()));
    Ok(channel)
}

impl Drop for Session {
    fn drop(&mut self) {
        self.bus_task.abort();
        self.vp8.stop();
        self.loss_task.abort();
        super::teardown::flush_for_teardown(&self.webrtc);
        if let Err(e) = self.pipeline.set_state(gst::State::Null) {
            tracing::warn!(call_id = %self.call_id, "pipeline did not stop cleanly: {e}");
        }
        let keep = (self.pipeline.clone(), self.webrtc.clone());
        let label = format!("call {}", self.call_id);
        self.gathering
            .clone()
            .release_when_quiet(&self.webrtc, keep, &label);
        tracing::debug!(call_id = %self.call_id, stats = ?self.stats(), "media session torn down");
    }
}

fn connect_signals(
    webrtc: &gst::Element,
    pipeline: &gst::Pipeline,
    call_id: &CallId,
    events: &mpsc::Sender<MediaEvent>,
    counters: &Arc<Counters>,
    audio_sink: &str,
    aec_probe: Option<&str>,
) {
    let send = {
        let events = events.clone();
        let call_id = call_id.clone();
        move |kind: MediaEventKind| {
            if events
                .try_send(MediaEvent {
                    call_id: call_id.clone(),
                    kind,
                })
                .is_err()
            {
                tracing::warn!("media event queue full or closed; event dropped");
            }
        }
    };

    let on_candidate = send.clone();
    webrtc.connect("on-ice-candidate", false, move |values| {
        let mline = values.get(1).and_then(|v| v.get::<u32>().ok());
        let candidate = values.get(2).and_then(|v| v.get::<String>().ok());
        if let (Some(mline), Some(candidate)) = (mline, candidate) {
            on_candidate(MediaEventKind::LocalCandidate { mline, candidate });
        }
        None
    });

    let on_state = send.clone();
    webrtc.connect_notify(Some("connection-state"), move |webrtc, _| {
        use gst_webrtc::WebRTCPeerConnectionState as S;
        let state = webrtc.property::<S>("connection-state");
        tracing::debug!(?state, "peer connection state");
        match state {
            // Only the certificate the answer named (the pinned one) may be on the other end.
            S::Connected => on_state(match super::dtls::verify_peer(webrtc) {
                Ok(()) => MediaEventKind::Connected,
                Err(why) => MediaEventKind::Failed(why),
            }),
            S::Failed => on_state(MediaEventKind::Failed("ICE/DTLS connection failed".into())),
            _ => {}
        }
    });

    // The phone's voice: decode and play it, counting decoded buffers. With echo cancellation
    // it passes the session's (pre-created) echo probe right before the speaker chain.
    let pipeline_weak = pipeline.downgrade();
    let counters = counters.clone();
    let sink_description = audio_sink.to_owned();
    let probe_name = aec_probe.map(str::to_owned);
    let on_error = send;
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let is_audio = pad
            .current_caps()
            .and_then(|caps| {
                caps.structure(0)
                    .and_then(|s| s.get::<String>("media").ok())
            })
            .is_some_and(|media| media == "audio");
        // The probe takes one stream. A second audio pad (a renegotiation) would find it
        // linked: that stream is played without the probe rather than dropped.
        let probe = probe_name
            .as_deref()
            .filter(|_| is_audio)
            .and_then(|name| pipeline.by_name(name))
            .filter(|probe| probe.static_pad("sink").is_some_and(|p| !p.is_linked()));
        let description = match (is_audio, &probe) {
            (true, Some(_)) => format!(
                "rtpopusdepay ! opusdec name=adec plc=true ! audioconvert ! audioresample \
                 ! {AEC_CAPS} ! queue max-size-time=200000000 leaky=downstream"
            ),
            (true, None) => format!(
                "rtpopusdepay ! opusdec name=adec plc=true ! audioconvert ! audioresample \
                 ! queue max-size-time=200000000 leaky=downstream ! {sink_description}"
            ),
            (false, _) => "fakesink sync=false".to_owned(),
        };
        let linked = (|| -> Result<(), String> {
            let bin =
                gst::parse::bin_from_description(&description, true).map_err(|e| e.to_string())?;
            pipeline.add(&bin).map_err(|e| e.to_string())?;
            if is_audio {
                count_buffers(&bin, "adec", counters.clone(), |c| {
                    &c.audio_buffers_received
                });
            }
            if let Some(probe) = &probe {
                // decoded voice ─► probe ─► convert/resample ─► speaker. The speaker side is
                // started first, so no buffer ever reaches an element that is not playing.
                let play = gst::parse::bin_from_description(
                    &format!("audioconvert ! audioresample ! {sink_description}"),
                    true,
                )
                .map_err(|e| e.to_string())?;
                pipeline.add(&play).map_err(|e| e.to_string())?;
                play.sync_state_with_parent().map_err(|e| e.to_string())?;
                probe.link(&play).map_err(|e| e.to_string())?;
                bin.link(probe).map_err(|e| e.to_string())?;
            }
            bin.sync_state_with_parent().map_err(|e| e.to_string())?;
            let sink = bin.static_pad("sink").ok_or("bin has no sink pad")?;
            pad.link(&sink).map_err(|e| format!("{e:?}"))?;
            Ok(())
        })();
        if let Err(e) = linked {
            on_error(MediaEventKind::Failed(format!(
                "cannot play the phone's audio: {e}"
            )));
        }
    });
}
