//! The session's pipeline description and ICE configuration: the launch string (camera,
//! encoder, microphone with the echo canceller), STUN/TURN servers and webrtcbin's ICE agent.

use super::probe::MediaPlan;
use super::session::{Counters, IceSettings, SessionError};
use doorbell_protocol::IceServer;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The audio format the canceller works in: webrtcdsp takes S16LE interleaved (its F32 caps
/// are non-interleaved only) at 8/16/32/48 kHz. 48 kHz mono is what Opus carries anyway, so
/// the microphone is resampled once; the probe's side uses the same so both streams match.
pub const AEC_CAPS: &str = "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=1";

/// The canceller as a launch fragment, shared by the session and `examples/aec_bench.rs` so the
/// figure measured there is the configuration that ships.
///
/// - `probe`: webrtcdsp otherwise binds to the *first* probe in the process (the probe list is
///   global, not per pipeline), which would be another call's in a test or after a quick
///   re-ring; naming it binds this session's canceller to this session's speaker.
/// - `delay-agnostic=true`: the speaker-to-microphone delay on the door (ALSA buffers, I2S
///   amplifier, the room) is not known in advance; the delay estimator finds it.
/// - `extended-filter=true`: a longer echo tail (a porch, a hallway). On the synthetic echo of
///   `aec_bench` the canceller alone removed 2.6 dB with neither option, 6.3 dB with
///   delay-agnostic, 11.5 dB with both.
/// - `voice`: noise suppression and gain control, for the door (its microphone is outdoors and
///   far from the mouth); the benchmark turns them off to measure the canceller alone.
pub fn aec_fragment(name: &str, probe: &str, echo_cancel: bool, voice: bool) -> String {
    format!(
        "{AEC_CAPS} ! webrtcdsp name={name} probe={probe} echo-cancel={echo_cancel} \
         delay-agnostic=true extended-filter=true noise-suppression={voice} gain-control={voice} high-pass-filter=true"
    )
}

/// A process-unique probe name (see [`aec_fragment`] for why it must be unique).
pub(super) fn next_probe_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "doorbell-aec-probe-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The session's pipeline. With echo cancellation the probe is created here, unlinked, and
/// joined to the speaker chain when the phone's audio arrives: webrtcdsp looks its probe up
/// once, when it starts, and fails the pipeline ("No echo probe with name ... found") if the
/// probe does not exist yet. An unlinked probe simply reports silence until then.
///
/// The RTP tees after the payloaders feed the call's `webrtcbin` and every preview
/// (`super::preview`). Each branch's queue is leaky: a `webrtcbin` that does not take its
/// input yet (the call's, before its ICE starts) must not stall the one encoder, and with it
/// every phone's preview.
pub(super) fn describe(plan: &MediaPlan, probe: Option<&str>) -> String {
    // Mic chain: `{audio} ! audioconvert ! audioresample ! {dsp} ! audioconvert ! ...`; the
    // probe is a separate, unlinked element in the same pipeline.
    let (dsp, probe) = match probe {
        Some(probe) => (
            format!(
                "{} ! audioconvert ! audioresample ! ",
                aec_fragment("aec", probe, true, true)
            ),
            format!(" webrtcechoprobe name={probe}"),
        ),
        None => (String::new(), String::new()),
    };
    // Audio is linked first, so it is the first m-line and BUNDLE's tag: a phone that rejects
    // the video line (no codec in common) still bundles audio and the data channel with it.
    format!(
        "webrtcbin name=webrtc bundle-policy=max-bundle latency=50 \
         {audio} ! audioconvert ! audioresample ! {dsp}queue max-size-time=100000000 leaky=downstream \
         ! opusenc bitrate=32000 frame-size=20 ! rtpopuspay pt=111 \
         ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! tee name={atee} allow-not-linked=true \
         ! queue name=acaps leaky=downstream ! webrtc. \
         {video} ! tee name={tee} ! queue max-size-buffers=2 leaky=downstream ! {encoder} \
         ! video/x-h264,profile=constrained-baseline ! h264parse \
         ! rtph264pay config-interval=-1 aggregate-mode=zero-latency pt=96 \
         ! application/x-rtp,media=video,encoding-name=H264,payload=96 ! tee name={vtee} allow-not-linked=true \
         ! queue name=vcaps leaky=downstream ! webrtc.{probe}{snapshot}",
        vtee = super::preview::VIDEO_TEE,
        atee = super::preview::AUDIO_TEE,
        tee = super::snapshot::TEE,
        snapshot = super::snapshot::branch(plan.width, plan.height),
        video = plan.video_source,
        encoder = plan.encoder_fragment,
        audio = plan.audio_source,
    )
}

pub(super) fn configure_servers(webrtc: &gst::Element, servers: &[IceServer]) {
    for server in servers {
        for url in &server.urls {
            if let Some(rest) = url.strip_prefix("stun:") {
                webrtc.set_property("stun-server", format!("stun://{rest}"));
            } else if let Some(turn) = turn_uri(url, server) {
                if !webrtc.emit_by_name::<bool>("add-turn-server", &[&turn]) {
                    tracing::warn!(url, "webrtcbin refused a TURN server");
                }
            }
        }
    }
}

/// Interval between libnice's connectivity checks (RFC 8445's Ta; its minimum is 5 ms).
const ICE_PACING_MS: u32 = 5;

pub(super) fn configure_ice(webrtc: &gst::Element, ice: &IceSettings) {
    configure_servers(webrtc, &ice.servers);
    let agent = webrtc.property::<gst_webrtc::WebRTCICE>("ice-agent");
    if agent.find_property("ice-tcp").is_some() {
        // Doorbells talk UDP; TCP candidates only slow gathering down.
        agent.set_property("ice-tcp", false);
    }
    for address in &ice.local_addresses {
        let _ = agent.emit_by_name::<bool>("add-local-ip-address", &[address]);
    }
    // libnice paces connectivity checks 20 ms apart; a call across two NATs has about nine
    // candidate pairs and the relayed one, lowest in priority, is checked last. RFC 8445 allows
    // pacing down to 5 ms, and it took about 130 ms off Answer -> first frame through TURN at
    // 50 ms RTT (`tests/nat/bench_turn.mjs`). A doorbell has one stream, so the extra STUN
    // burst is a handful of small packets. The agent is libnice's, reached through webrtcbin.
    if agent.find_property("agent").is_some() {
        let nice = agent.property::<gst::glib::Object>("agent");
        if nice.find_property("stun-pacing-timer").is_some() {
            nice.set_property("stun-pacing-timer", ICE_PACING_MS);
        }
        // libnice asks the router over UPnP-IGD to forward a port, per call, by default: a
        // doorbell must not open holes in its home's router (STUN/TURN do the traversal), and
        // the discovery costs each call a thread and SSDP multicast on the LAN.
        if nice.find_property("upnp").is_some() {
            nice.set_property("upnp", false);
        }
    }
}

/// `turn:host:port?transport=udp` + username/credential -> `turn://user:pass@host:port?...`,
/// percent-encoding the TURN REST username (`expiry:id`) and password.
fn turn_uri(url: &str, server: &IceServer) -> Option<String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("turn:") {
        ("turn", rest)
    } else if let Some(rest) = url.strip_prefix("turns:") {
        ("turns", rest)
    } else {
        return None;
    };
    let user = percent_encode(server.username.as_deref()?);
    let pass = percent_encode(server.credential.as_deref()?);
    Some(format!("{scheme}://{user}:{pass}@{rest}"))
}

/// RFC 3986 unreserved characters stay, everything else in the userinfo is percent-encoded.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, USERINFO).to_string()
}

/// Request pads' transceivers default to sendrecv: the door sends video only, and sends and
/// receives audio.
pub(super) fn set_directions(webrtc: &gst::Element) -> Result<(), SessionError> {
    for pad in webrtc.sink_pads() {
        let upstream = pad
            .peer()
            .and_then(|p| p.parent_element())
            .map(|e| e.name().to_string())
            .unwrap_or_default();
        let transceiver = pad.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        let direction = match upstream.as_str() {
            "vcaps" => gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
            "acaps" => gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv,
            other => {
                return Err(SessionError::Build(format!(
                    "unexpected webrtcbin input {other}"
                )))
            }
        };
        transceiver.set_direction(direction);
    }
    Ok(())
}

/// Count buffers leaving `element`'s src pad into one of the counters.
pub(super) fn count_buffers(
    bin: &impl IsA<gst::Bin>,
    element: &str,
    counters: Arc<Counters>,
    field: fn(&Counters) -> &AtomicU64,
) {
    let Some(pad) = bin.by_name(element).and_then(|e| e.static_pad("src")) else {
        return;
    };
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        field(&counters).fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_are_percent_encoded() {
        let server = IceServer {
            urls: vec!["turn:turn.example.net:3478?transport=udp".into()],
            username: Some("1767225600:d-front".into()),
            credential: Some("a/b+c=".into()),
        };
        assert_eq!(
            turn_uri(&server.urls[0], &server).unwrap(),
            "turn://1767225600%3Ad-front:a%2Fb%2Bc%3D@turn.example.net:3478?transport=udp"
        );
        assert_eq!(turn_uri("stun:x:1", &server), None);
    }
}
