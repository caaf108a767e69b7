//! Set-up shared by the media tests.

use doorbelld::config::{CameraKind, EncoderKind, MediaConfig, MicrophoneKind, SpeakerKind};

/// GStreamer's test camera and microphone at a small size, no speaker, host candidates on
/// loopback only (so ICE never leaves the machine).
pub fn test_media(encoder: EncoderKind) -> MediaConfig {
    MediaConfig {
        camera: CameraKind::Test,
        microphone: MicrophoneKind::Test,
        speaker: SpeakerKind::None,
        encoder,
        width: 320,
        height: 240,
        framerate: 15,
        ice_local_addresses: vec!["127.0.0.1".into()],
        ..MediaConfig::default()
    }
}
