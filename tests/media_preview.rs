//! Preview sessions with real GStreamer: three in-process "phones" (webrtcbin answerers on
//! loopback) watch one call's pipeline. Each decodes video while no door audio leaves and no
//! phone audio is decoded at the door; one encoder feeds them all; answering in one session
//! opens its audio both ways without a new offer.

mod common;

use doorbell_protocol::{CallId, SessionId};
use doorbelld::config::{EncoderKind, MediaConfig};
use doorbelld::core::SessionMediaEvent;
use doorbelld::media::preview::PreviewSetup;
use doorbelld::media::{self, video_encoders, IceSettings, MediaEventKind, PreviewBranch, Session};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PHONES: usize = 3;
/// Frames each phone must decode before the preview counts as working (the bar).
const FRAMES: u64 = 10;

fn config() -> MediaConfig {
    common::test_media(EncoderKind::Auto)
}

enum PhoneEvent {
    Answer(usize, String),
    Candidate(usize, u32, String),
}

/// A phone: a webrtcbin that answers the door's offer, sends a tone and decodes what comes.
struct Phone {
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    video_frames: Arc<AtomicU64>,
    audio_buffers: Arc<AtomicU64>,
}

impl Phone {
    fn new(index: usize, events: mpsc::UnboundedSender<PhoneEvent>) -> Phone {
        let pipeline = gst::parse::launch(
            "webrtcbin name=phone bundle-policy=max-bundle latency=50 \
             audiotestsrc is-live=true ! audioconvert ! audioresample ! opusenc \
             ! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! phone.",
        )
        .expect("phone pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let webrtc = pipeline.by_name("phone").expect("webrtcbin");
        let agent = webrtc.property::<gst_webrtc::WebRTCICE>("ice-agent");
        agent.set_property("ice-tcp", false);
        // As the door does (media::pipeline::configure_ice): no UPnP-IGD, whose discovery
        // starts threads per agent and multicasts on the LAN.
        agent
            .property::<gst::glib::Object>("agent")
            .set_property("upnp", false);
        let _ = agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
        let tx = events.clone();
        webrtc.connect("on-ice-candidate", false, move |values| {
            let mline = values[1].get::<u32>().expect("mline");
            let candidate = values[2].get::<String>().expect("candidate");
            let _ = tx.send(PhoneEvent::Candidate(index, mline, candidate));
            None
        });
        let video_frames = Arc::new(AtomicU64::new(0));
        let audio_buffers = Arc::new(AtomicU64::new(0));
        let weak = pipeline.downgrade();
        let (video, audio) = (video_frames.clone(), audio_buffers.clone());
        webrtc.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let media = pad
                .current_caps()
                .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
                .unwrap_or_default();
            let (description, counter) = match media.as_str() {
                "video" => (
                    "rtph264depay ! avdec_h264 name=dec ! fakesink sync=false",
                    video.clone(),
                ),
                _ => (
                    "rtpopusdepay ! opusdec name=dec ! fakesink sync=false",
                    audio.clone(),
                ),
            };
            let bin = gst::parse::bin_from_description(description, true).expect("decoder");
            let decoder = bin.by_name("dec").expect("decoder element");
            decoder.static_pad("src").expect("src").add_probe(
                gst::PadProbeType::BUFFER,
                move |_, _| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
            pipeline.add(&bin).expect("add decoder");
            bin.sync_state_with_parent().expect("decoder plays");
            pad.link(&bin.static_pad("sink").expect("sink"))
                .expect("link decoder");
        });
        pipeline
            .set_state(gst::State::Playing)
            .expect("phone plays");
        Phone {
            pipeline,
            webrtc,
            video_frames,
            audio_buffers,
        }
    }

    /// Take the door's offer and report the answer (as the app does with `session_answer`).
    fn answer(&self, index: usize, offer: &str, events: mpsc::UnboundedSender<PhoneEvent>) {
        let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).expect("offer SDP");
        let offer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp);
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&offer, &None::<gst::Promise>]);
        let weak = self.webrtc.downgrade();
        let promise = gst::Promise::with_change_func(move |reply| {
            let Some(webrtc) = weak.upgrade() else { return };
            let answer = reply
                .expect("create-answer replied")
                .expect("a reply")
                .get::<gst_webrtc::WebRTCSessionDescription>("answer")
                .expect("an answer");
            webrtc.emit_by_name::<()>("set-local-description", &[&answer, &None::<gst::Promise>]);
            let text = answer.sdp().as_text().expect("answer SDP text");
            let _ = events.send(PhoneEvent::Answer(index, text));
        });
        self.webrtc
            .emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn session_id(i: usize) -> SessionId {
    SessionId::new(format!("s-{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_phones_preview_one_encoder_no_audio_until_one_answers_in_its_session() {
    media::check_installation().expect("GStreamer installation");
    let plan = media::plan(&config()).expect("plan");
    let ice = IceSettings {
        servers: vec![],
        local_addresses: vec!["127.0.0.1".into()],
    };
    let call_id = CallId::new("c-preview-1");
    let (door_tx, mut door_rx) = mpsc::channel(1024);
    let session = Session::start(call_id.clone(), &plan, &ice, door_tx.clone()).expect("session");
    let counters = session.counters();

    let (phone_tx, mut phone_rx) = mpsc::unbounded_channel();
    let mut branches = Vec::new();
    let mut phones = Vec::new();
    for i in 0..PHONES {
        let setup = PreviewSetup {
            ice: &ice,
            dtls: plan.dtls.as_ref(),
            audio_sink: &plan.audio_sink,
            counters: counters.clone(),
            congestion: session.congestion(),
            events: door_tx.clone(),
            vp8: plan.vp8_plan(),
        };
        branches.push(
            PreviewBranch::open(session.pipeline(), &call_id, &session_id(i), setup)
                .expect("preview opens"),
        );
        phones.push(Phone::new(i, phone_tx.clone()));
    }
    assert_eq!(
        video_encoders(session.pipeline()),
        1,
        "one encoder for {PHONES} previews"
    );

    let index_of = |s: &SessionId| (0..PHONES).find(|i| session_id(*i) == *s);
    let all_decoding = |phones: &[Phone]| {
        phones
            .iter()
            .all(|p| p.video_frames.load(Ordering::Relaxed) > FRAMES)
    };
    // Signaling, as the hub would relay it, until every phone decoded more than FRAMES.
    tokio::time::timeout(Duration::from_secs(60), async {
        while !all_decoding(&phones) {
            tokio::select! {
                Some(event) = door_rx.recv() => match event.kind {
                    MediaEventKind::Session(s, SessionMediaEvent::OfferReady(sdp)) => {
                        let i = index_of(&s).expect("a known session");
                        branches[i].start_ice(&sdp, &[]).expect("offer is SDP");
                        phones[i].answer(i, &sdp, phone_tx.clone());
                    }
                    MediaEventKind::Session(s, SessionMediaEvent::LocalCandidate { mline, candidate }) => {
                        let i = index_of(&s).expect("a known session");
                        phones[i].webrtc.emit_by_name::<()>("add-ice-candidate", &[&mline, &candidate]);
                    }
                    MediaEventKind::Session(s, SessionMediaEvent::Failed(why)) => panic!("{s}: {why}"),
                    MediaEventKind::Failed(why) => panic!("the call's pipeline failed: {why}"),
                    _ => {}
                },
                Some(event) = phone_rx.recv() => match event {
                    PhoneEvent::Answer(i, sdp) => branches[i].set_answer(&sdp).expect("answer is SDP"),
                    PhoneEvent::Candidate(i, mline, candidate) => branches[i].add_remote_candidate(mline, &candidate),
                },
                // The frame counters are atomics bumped by pad probes: no event says "more
                // than FRAMES", so the loop also wakes every 50 ms to re-read them (bounded by
                // the 60 s timeout around it).
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        let frames: Vec<u64> = phones.iter().map(|p| p.video_frames.load(Ordering::Relaxed)).collect();
        panic!("every phone should decode more than {FRAMES} frames within 60 s; decoded {frames:?}")
    });

    // The privacy rule, at the door: nothing of the audio went through before Answer.
    let stats = session.stats();
    assert_eq!(stats.audio_rtp_sent, 0, "door audio left before Answer");
    assert_eq!(
        stats.audio_buffers_received, 0,
        "phone audio decoded before Answer"
    );
    for (i, phone) in phones.iter().enumerate() {
        assert_eq!(
            phone.audio_buffers.load(Ordering::Relaxed),
            0,
            "phone {i} heard the door"
        );
    }
    assert_eq!(video_encoders(session.pipeline()), 1);

    // Everything this test made must be finalised before it returns (checked at the end).
    let finalised = phones
        .iter()
        .map(|phone| common::Finalised::pipeline(&phone.pipeline))
        .fold(
            common::Finalised::pipeline(session.pipeline()),
            common::Finalised::and,
        );

    // Phone 1 answers in its session: the others go, its audio opens both ways.
    let talking = branches.remove(1);
    branches.clear();
    let phone = phones.remove(1);
    phones.clear();
    talking.open_talk();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let stats = session.stats();
            if stats.audio_rtp_sent > 0
                && stats.audio_buffers_received > 0
                && phone.audio_buffers.load(Ordering::Relaxed) > 0
            {
                break;
            }
            // Counters again (session stats and a pad-probe atomic): polled, bounded by the
            // timeout around this loop.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "audio both ways after Answer: door {:?}, phone heard {}",
            session.stats(),
            phone.audio_buffers.load(Ordering::Relaxed)
        )
    });
    assert_eq!(video_encoders(session.pipeline()), 1);
    // Again now: the talk branch and the phone's audio decoder were made since.
    let finalised = finalised
        .and(common::Finalised::pipeline(session.pipeline()))
        .and(common::Finalised::pipeline(&phone.pipeline));
    drop(talking);
    drop(session);
    drop(phone);
    // A stopped call releases every element, on a helper thread if ICE gathering was still
    // under way (each session's rtpgccbwe once stayed alive: a reference count mismatch with
    // webrtcbin, see media::congestion).
    if let Err(alive) = finalised.within(Duration::from_secs(30)).await {
        panic!("{alive} GStreamer objects still alive 30 s after the call and its phones ended");
    }
}
