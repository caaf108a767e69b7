//! Start-up checks and hardware probing: which GStreamer elements exist, which camera,
//! microphone, speaker and H.264 encoder this door will use.
//!
//! The result is a [`MediaPlan`]: the pipeline fragments every call's session is built from.
//! Probing happens once at start-up so a call never waits on it.

use crate::config::{CameraKind, EncoderKind, MediaConfig, MicrophoneKind, SpeakerKind};
use gstreamer::prelude::*;

/// An element the daemon cannot work without, and where it comes from.
struct Requirement {
    element: &'static str,
    debian: &'static str,
    yocto: &'static str,
}

const REQUIRED: &[Requirement] = &[
    req(
        "webrtcbin",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-bad-webrtc",
    ),
    req("nicesrc", "gstreamer1.0-nice", "libnice"),
    req("nicesink", "gstreamer1.0-nice", "libnice"),
    req(
        "dtlssrtpenc",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-bad-dtls",
    ),
    req(
        "srtpenc",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-bad-srtp",
    ),
    req(
        "sctpenc",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-bad-sctp",
    ),
    req(
        "rtpbin",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-good-rtpmanager",
    ),
    req(
        "rtph264pay",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-good-rtp",
    ),
    req(
        "rtpopuspay",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-good-rtp",
    ),
    req(
        "rtpopusdepay",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-good-rtp",
    ),
    req(
        "opusenc",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-opus",
    ),
    req(
        "opusdec",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-opus",
    ),
    req(
        "videoconvert",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-videoconvertscale",
    ),
    req(
        "videoscale",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-videoconvertscale",
    ),
    req(
        "jpegenc",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-good-jpeg",
    ),
    req(
        "appsink",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-app",
    ),
    req(
        "videorate",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-videorate",
    ),
    req(
        "audioconvert",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-audioconvert",
    ),
    req(
        "audioresample",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-audioresample",
    ),
    req(
        "videotestsrc",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-videotestsrc",
    ),
    req(
        "audiotestsrc",
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-base-audiotestsrc",
    ),
    // Echo cancellation (`media.echo_cancel`, on by default): the canceller and the probe
    // that feeds it the speaker's signal. Both come from the same plugin.
    req(
        "webrtcdsp",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-bad-webrtcdsp",
    ),
    req(
        "webrtcechoprobe",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-bad-webrtcdsp",
    ),
    req(
        "h264parse",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-plugins-bad-videoparsersbad",
    ),
];

const fn req(element: &'static str, debian: &'static str, yocto: &'static str) -> Requirement {
    Requirement {
        element,
        debian,
        yocto,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("missing GStreamer elements:\n{}\n  fix: install the packages named above (Debian: apt-get install ...; Yocto: add them to IMAGE_INSTALL)", .0.join("\n"))]
    Missing(Vec<String>),
    #[error("configuration key `{key}` asks for `{element}`, which is not installed\n  fix: install {package}, or set {key} = \"auto\"")]
    Unavailable {
        key: &'static str,
        element: &'static str,
        package: &'static str,
    },
    #[error("no H.264 encoder found (tried v4l2h264enc, x264enc, openh264enc)\n  fix: apt-get install gstreamer1.0-plugins-ugly (x264enc) or gstreamer1.0-plugins-bad (openh264enc)")]
    NoEncoder,
}

/// The pipeline fragments chosen for this machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MediaPlan {
    /// Source up to and including raw video at the configured size and rate.
    pub video_source: String,
    pub encoder: String,
    /// Encoder element with its low-latency settings (named `venc`).
    pub encoder_fragment: String,
    pub audio_source: String,
    pub audio_sink: String,
    /// Route the microphone through `webrtcdsp` and the speaker through `webrtcechoprobe`.
    pub echo_cancel: bool,
    /// Offer VP8 too (`media.vp8`, and `vp8enc` and `rtpvp8pay` installed).
    pub vp8: bool,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    /// Congestion control's bitrate range; `None`: a fixed bitrate (`media.congestion_control`).
    pub bitrate: Option<super::BitrateRange>,
    /// The door's DTLS certificate and key from its identity; `None`: GStreamer's own
    /// per-process RSA key (tests that do not care which key a call uses).
    #[serde(skip)]
    pub dtls: Option<super::DtlsCertificate>,
}

/// VP8 comes from `gstreamer1.0-plugins-good` (libvpx); without it the door offers H.264 only.
fn vp8_installed() -> bool {
    let installed = exists("vp8enc") && exists("rtpvp8pay");
    if !installed {
        tracing::warn!("media.vp8: vp8enc or rtpvp8pay is missing (gstreamer1.0-plugins-good); phones without H.264 get no video");
    }
    installed
}

fn exists(element: &str) -> bool {
    gstreamer::ElementFactory::find(element).is_some()
}

/// Initialise GStreamer and name every missing element with the package that provides it.
pub fn check_installation() -> Result<(), ProbeError> {
    crate::skip_openssl_exit_cleanup();
    gstreamer::init().map_err(|e| ProbeError::Init(e.to_string()))?;
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|r| !exists(r.element))
        .map(|r| {
            format!(
                "  - {} (Debian: {}, Yocto: {})",
                r.element, r.debian, r.yocto
            )
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ProbeError::Missing(missing))
    }
}

/// Quote a value for a `gst-launch` style description.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Devices GStreamer's device monitor sees for one class ("Video/Source", "Audio/Source"...),
/// as (api, path-or-name) pairs, e.g. ("v4l2", "/dev/video0").
fn devices(class: &str) -> Vec<(String, String)> {
    let monitor = gstreamer::DeviceMonitor::new();
    monitor.add_filter(Some(class), None);
    if monitor.start().is_err() {
        return Vec::new();
    }
    let found = monitor
        .devices()
        .iter()
        .map(|d| {
            let props = d.properties();
            let get = |key: &str| {
                props
                    .as_ref()
                    .and_then(|p| p.get::<String>(key).ok())
                    .unwrap_or_default()
            };
            let api = get("device.api");
            let path = match api.as_str() {
                "v4l2" => get("api.v4l2.path"),
                _ => get("device.path"),
            };
            (
                api,
                if path.is_empty() {
                    d.display_name().to_string()
                } else {
                    path
                },
            )
        })
        .collect();
    monitor.stop();
    found
}

pub fn plan(config: &MediaConfig) -> Result<MediaPlan, ProbeError> {
    let size = format!(
        "video/x-raw,width={},height={},framerate={}/1",
        config.width, config.height, config.framerate
    );
    // Real cameras offer whatever formats they have: convert, scale and rate-adapt to ours.
    let adapt = format!("videoconvert ! videoscale ! videorate ! {size}");
    let test_video = format!(
        "videotestsrc is-live=true pattern={} ! {size}",
        config.test_pattern
    );
    let video_source = match config.camera {
        CameraKind::Test => test_video,
        CameraKind::Libcamera => {
            need(
                "media.camera",
                "libcamerasrc",
                "gstreamer1.0-libcamera (Yocto: libcamera-gst)",
            )?;
            libcamera_source(&config.camera_device, &adapt)
        }
        CameraKind::V4l2 => {
            need("media.camera", "v4l2src", "gstreamer1.0-plugins-good")?;
            v4l2_source(&config.camera_device, &adapt)
        }
        CameraKind::Auto => {
            let cameras = devices("Video/Source");
            if let Some((_, name)) = cameras.iter().find(|(api, _)| api == "libcamera") {
                libcamera_source(name, &adapt)
            } else if let Some((_, path)) = cameras.iter().find(|(api, _)| api == "v4l2") {
                v4l2_source(path, &adapt)
            } else {
                test_video
            }
        }
    };

    let (encoder, encoder_fragment) = choose_encoder(config)?;

    let test_audio = "audiotestsrc is-live=true wave=sine freq=523 volume=0.1".to_owned();
    let with_device = |element: &str, device: &str| {
        if device.is_empty() {
            element.to_owned()
        } else {
            format!("{element} device={}", quoted(device))
        }
    };
    let audio_source = match config.microphone {
        MicrophoneKind::Test => test_audio,
        MicrophoneKind::Alsa => {
            need("media.microphone", "alsasrc", "gstreamer1.0-alsa")?;
            with_device("alsasrc", &config.microphone_device)
        }
        MicrophoneKind::Pulse => {
            need("media.microphone", "pulsesrc", "gstreamer1.0-pulseaudio")?;
            with_device("pulsesrc", &config.microphone_device)
        }
        MicrophoneKind::Auto => {
            if devices("Audio/Source").is_empty() {
                test_audio
            } else {
                "autoaudiosrc".to_owned()
            }
        }
    };

    let null_sink = "fakesink sync=false".to_owned();
    let audio_sink = match config.speaker {
        SpeakerKind::None => null_sink,
        SpeakerKind::Alsa => {
            need("media.speaker", "alsasink", "gstreamer1.0-alsa")?;
            with_device("alsasink", &config.speaker_device)
        }
        SpeakerKind::Pulse => {
            need("media.speaker", "pulsesink", "gstreamer1.0-pulseaudio")?;
            with_device("pulsesink", &config.speaker_device)
        }
        SpeakerKind::Auto => {
            if devices("Audio/Sink").is_empty() {
                null_sink
            } else {
                "autoaudiosink".to_owned()
            }
        }
    };

    Ok(MediaPlan {
        video_source,
        encoder: encoder.to_owned(),
        encoder_fragment,
        audio_source,
        audio_sink,
        echo_cancel: config.echo_cancel,
        vp8: config.vp8 && vp8_installed(),
        width: config.width,
        height: config.height,
        framerate: config.framerate,
        bitrate: config.bitrate_range(),
        dtls: None,
    })
}

fn need(key: &'static str, element: &'static str, package: &'static str) -> Result<(), ProbeError> {
    if exists(element) {
        Ok(())
    } else {
        Err(ProbeError::Unavailable {
            key,
            element,
            package,
        })
    }
}

fn libcamera_source(camera: &str, adapt: &str) -> String {
    if camera.is_empty() {
        format!("libcamerasrc ! {adapt}")
    } else {
        format!("libcamerasrc camera-name={} ! {adapt}", quoted(camera))
    }
}

fn v4l2_source(device: &str, adapt: &str) -> String {
    if device.is_empty() {
        format!("v4l2src ! {adapt}")
    } else {
        format!("v4l2src device={} ! {adapt}", quoted(device))
    }
}

/// Hardware encoder first (it costs the Pi almost no CPU), then x264, then openh264.
/// All are set up for real-time: no B-frames, a keyframe every two seconds, constrained
/// baseline (the only H.264 profile every phone browser decodes).
fn choose_encoder(config: &MediaConfig) -> Result<(&'static str, String), ProbeError> {
    let gop = config.framerate * 2;
    let kbps = config.video_bitrate_kbps;
    let fragment = |name: &'static str| -> String {
        match name {
            "v4l2h264enc" => format!(
                "v4l2h264enc name=venc extra-controls=\"controls,repeat_sequence_header=1,video_bitrate={},h264_i_frame_period={gop},video_bitrate_mode=0\" ! video/x-h264,level=(string)4",
                kbps * 1000
            ),
            "x264enc" => format!(
                "x264enc name=venc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} threads=2"
            ),
            _ => format!(
                "openh264enc name=venc usage-type=camera complexity=low rate-control=bitrate bitrate={} gop-size={gop}",
                kbps * 1000
            ),
        }
    };
    let wanted: &[&'static str] = match config.encoder {
        EncoderKind::Auto => &["v4l2h264enc", "x264enc", "openh264enc"],
        EncoderKind::V4l2h264enc => &["v4l2h264enc"],
        EncoderKind::X264enc => &["x264enc"],
        EncoderKind::Openh264enc => &["openh264enc"],
    };
    for name in wanted {
        if exists(name) {
            return Ok((name, fragment(name)));
        }
    }
    match config.encoder {
        EncoderKind::Auto => Err(ProbeError::NoEncoder),
        EncoderKind::V4l2h264enc => Err(ProbeError::Unavailable {
            key: "media.encoder",
            element: "v4l2h264enc",
            package: "gstreamer1.0-plugins-good on a Pi with a hardware encoder (not Pi 5)",
        }),
        EncoderKind::X264enc => Err(ProbeError::Unavailable {
            key: "media.encoder",
            element: "x264enc",
            package: "gstreamer1.0-plugins-ugly",
        }),
        EncoderKind::Openh264enc => Err(ProbeError::Unavailable {
            key: "media.encoder",
            element: "openh264enc",
            package: "gstreamer1.0-plugins-bad",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_check_passes_on_a_provisioned_machine() {
        check_installation().expect("run scripts/install-deps.sh");
    }

    #[test]
    fn test_sources_and_software_encoder_are_planned() {
        check_installation().unwrap();
        let config = MediaConfig {
            camera: CameraKind::Test,
            microphone: MicrophoneKind::Test,
            speaker: SpeakerKind::None,
            encoder: EncoderKind::X264enc,
            ..MediaConfig::default()
        };
        let plan = plan(&config).unwrap();
        assert!(plan.video_source.starts_with("videotestsrc is-live=true"));
        assert!(plan
            .video_source
            .contains("width=640,height=480,framerate=30/1"));
        assert_eq!(plan.encoder, "x264enc");
        assert!(plan.encoder_fragment.contains("key-int-max=60"));
        assert_eq!(plan.audio_sink, "fakesink sync=false");
    }

    #[test]
    fn unavailable_hardware_encoder_names_key_and_package() {
        check_installation().unwrap();
        if exists("v4l2h264enc") {
            return; // a Pi with a hardware encoder: nothing to refuse
        }
        let config = MediaConfig {
            encoder: EncoderKind::V4l2h264enc,
            camera: CameraKind::Test,
            ..MediaConfig::default()
        };
        let err = plan(&config).unwrap_err().to_string();
        assert!(
            err.contains("media.encoder") && err.contains("v4l2h264enc"),
            "{err}"
        );
    }
}
