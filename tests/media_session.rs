//! The media session with real GStreamer test sources: the offer is what phones expect, and
//! the pipeline is torn down on drop.

mod common;

use doorbell_protocol::CallId;
use doorbelld::config::{EncoderKind, MediaConfig};
use doorbelld::media::{self, IceSettings, MediaEventKind, Session};
use std::time::Duration;
use tokio::sync::mpsc;

fn test_config(encoder: EncoderKind) -> MediaConfig {
    common::test_media(encoder)
}

async fn offer_for(encoder: EncoderKind) -> (String, Session) {
    offer_with(test_config(encoder)).await
}

async fn offer_with(config: MediaConfig) -> (String, Session) {
    media::check_installation().expect("GStreamer installation");
    let plan = media::plan(&config).expect("plan");
    let (tx, mut rx) = mpsc::channel(64);
    let ice = IceSettings {
        servers: vec![],
        local_addresses: vec!["127.0.0.1".into()],
    };
    let session = Session::start(CallId::new("c-test-1"), &plan, &ice, tx).expect("session starts");
    let sdp = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = rx.recv().await.expect("event channel open");
            assert_eq!(event.call_id, CallId::new("c-test-1"));
            match event.kind {
                MediaEventKind::OfferReady(sdp) => return sdp,
                MediaEventKind::Failed(why) => panic!("media failed: {why}"),
                _ => {}
            }
        }
    })
    .await
    .expect("offer within 20 s");
    (sdp, session)
}

/// The offer must carry the encoder's negotiated caps: packetization-mode=1 (FU-A, what
/// rtph264pay sends) and a baseline profile (42...), never High (64...), which phone browsers
/// refuse. An offer built before the caps arrive says packetization-mode=0 with no profile,
/// and Chromium then sets up a session that never connects.
fn assert_h264_fmtp_is_final(video: &str) {
    assert!(video.contains("packetization-mode=1"), "{video}");
    let at = video
        .find("profile-level-id=")
        .unwrap_or_else(|| panic!("no profile-level-id: {video}"));
    assert_eq!(
        &video[at + 17..at + 19],
        "42",
        "constrained baseline: {video}"
    );
}

fn media_sections(sdp: &str) -> Vec<String> {
    sdp.split("\r\nm=")
        .skip(1)
        .map(|s| format!("m={s}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_has_sendonly_h264_baseline_sendrecv_opus_and_a_data_channel() {
    let (sdp, session) = offer_for(EncoderKind::Auto).await;
    let sections = media_sections(&sdp);
    assert_eq!(sections.len(), 3, "three m-lines expected:\n{sdp}");
    // Audio first: BUNDLE's tag, so a phone that rejects the video keeps the bundle.
    let audio = &sections[0];
    assert!(audio.starts_with("m=audio 9 "), "{audio}");
    assert!(audio.to_lowercase().contains("opus/48000"), "{audio}");
    assert!(audio.contains("a=sendrecv"), "{audio}");
    assert!(!audio.contains("a=bundle-only"), "{audio}");
    let video = &sections[1];
    assert!(video.starts_with("m=video"), "{video}");
    assert!(video.contains("H264/90000"), "{video}");
    assert_h264_fmtp_is_final(video);
    assert!(video.contains("a=sendonly"), "{video}");
    // VP8 too, after H.264 (the first format is the preferred one).
    let formats: Vec<&str> = video.lines().next().unwrap().split(' ').skip(3).collect();
    let pt_of = |codec: &str| {
        video
            .lines()
            .find_map(|l| {
                l.strip_prefix("a=rtpmap:")?
                    .strip_suffix(&format!(" {codec}/90000"))
            })
            .unwrap_or_else(|| panic!("no {codec}: {video}"))
    };
    assert_eq!(formats[0], pt_of("H264"), "{video}");
    assert!(formats.contains(&pt_of("VP8")), "{video}");
    // The control data channel (unlock), created before the offer so it is negotiated.
    let data = &sections[2];
    assert!(data.starts_with("m=application"), "{data}");
    assert!(data.contains("webrtc-datachannel"), "{data}");
    let mid = |section: &str| {
        section
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .map(str::to_owned)
    };
    let group = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=group:BUNDLE "))
        .expect("bundled");
    assert_eq!(
        group.split(' ').next().map(str::to_owned),
        mid(audio),
        "audio tags the bundle: {sdp}"
    );
    // Warmed: the encoder is already producing frames while the phone would be ringing.
    tokio::time::timeout(Duration::from_secs(10), async {
        while session.stats().video_frames_sent == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("encoder produces frames");
    drop(session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openh264_fallback_also_produces_an_offer() {
    let (sdp, _session) = offer_for(EncoderKind::Openh264enc).await;
    assert!(sdp.contains("H264/90000"));
}

/// The second session starts with every plugin loaded and the encoder warm; its offer used to
/// be built from a caps query before negotiation finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_sessions_offer_the_negotiated_caps() {
    for _ in 0..3 {
        let (sdp, session) = offer_for(EncoderKind::Auto).await;
        assert_h264_fmtp_is_final(&media_sections(&sdp)[1]);
        drop(session);
    }
}

/// Dropping a session must free its pipeline: a reference cycle through a signal closure
/// would keep every call's encoder, buffers and sockets alive (several MiB per call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_session_frees_its_pipeline() {
    use gstreamer::prelude::*;
    let (_sdp, session) = offer_for(EncoderKind::Auto).await;
    let pipeline = session.pipeline().downgrade();
    let webrtc = session
        .pipeline()
        .by_name("webrtc")
        .expect("webrtcbin")
        .downgrade();
    let every_element = common::Finalised::pipeline(session.pipeline());
    drop(session);
    // The bus watcher is aborted on drop; give the runtime a moment to drop its future.
    tokio::task::yield_now().await;
    assert!(
        webrtc.upgrade().is_none(),
        "webrtcbin still referenced after the session ended"
    );
    assert!(
        pipeline.upgrade().is_none(),
        "pipeline still referenced after the session ended"
    );
    // And every element that was in it (tests/media_preview.rs checks the same after a
    // connected call, where webrtcbin has also asked the door for its congestion controller).
    if let Err(alive) = every_element.within(Duration::from_secs(10)).await {
        panic!("{alive} elements of the ended session still alive");
    }
}

/// `media.vp8 = false`: H.264 only, as before VP8 was offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_vp8_the_offer_has_h264_only() {
    let config = MediaConfig {
        vp8: false,
        ..test_config(EncoderKind::Auto)
    };
    let (sdp, _session) = offer_with(config).await;
    assert!(sdp.contains("H264/90000"), "{sdp}");
    assert!(!sdp.contains("VP8"), "{sdp}");
}

/// Congestion control and loss recovery are negotiated: transport-wide CC (the header
/// extension and its feedback) on both media, NACK with an RTX stream on video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_asks_for_congestion_feedback_and_retransmission() {
    let (sdp, session) = offer_for(EncoderKind::Auto).await;
    let sections = media_sections(&sdp);
    // Audio first (BUNDLE's tag), then video.
    let (audio, video) = (&sections[0], &sections[1]);
    for section in [video, audio] {
        assert!(
            section.contains(&format!(
                "a=extmap:{} {}",
                media::congestion::TWCC_ID,
                media::congestion::TWCC_URI
            )),
            "no TWCC header extension:\n{section}"
        );
    }
    assert!(video.contains("transport-cc"), "no TWCC feedback:\n{video}");
    assert!(video.contains("a=rtcp-fb:96 nack\r\n"), "no NACK:\n{video}");
    assert!(video.contains("rtx/90000"), "no RTX stream:\n{video}");
    drop(session);
}

/// `media.congestion_control = "off"`: today's fixed bitrate, no TWCC in the offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_bitrate_offer_has_no_transport_cc() {
    media::check_installation().expect("GStreamer installation");
    let mut config = test_config(EncoderKind::Auto);
    config.congestion_control = doorbelld::config::CongestionControl::Off;
    let plan = media::plan(&config).expect("plan");
    assert_eq!(plan.bitrate, None);
    let (tx, mut rx) = mpsc::channel(64);
    let ice = IceSettings {
        servers: vec![],
        local_addresses: vec!["127.0.0.1".into()],
    };
    let session = Session::start(CallId::new("c-fixed"), &plan, &ice, tx).expect("session starts");
    assert!(session.congestion().is_none());
    let sdp = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rx.recv().await.expect("event channel open").kind {
                MediaEventKind::OfferReady(sdp) => return sdp,
                MediaEventKind::Failed(why) => panic!("media failed: {why}"),
                _ => {}
            }
        }
    })
    .await
    .expect("offer within 20 s");
    assert!(!sdp.contains(media::congestion::TWCC_URI), "{sdp}");
    drop(session);
}
