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

/// Resolves once every watched GStreamer object has been released: its last reference
/// dropped, on whichever thread (a stopped session's `webrtcbin` may be released from a helper
/// thread once ICE gathering ends, see `media::gathering`). GObject's weak-reference
/// notifications fire as the object is disposed, just before it is finalised.
#[allow(dead_code)] // Not every test crate that includes this module waits for teardown.
pub struct Finalised(Vec<tokio::sync::oneshot::Receiver<()>>);

#[allow(dead_code)]
impl Finalised {
    /// `pipeline` itself and every element inside it, bins included, at any depth.
    pub fn pipeline(pipeline: &gstreamer::Pipeline) -> Finalised {
        use gstreamer::prelude::*;
        let mut objects: Vec<gstreamer::glib::Object> = vec![pipeline.clone().upcast()];
        objects.extend(
            pipeline
                .iterate_recurse()
                .into_iter()
                .filter_map(Result::ok)
                .map(|element| element.upcast()),
        );
        Finalised::objects(&objects)
    }

    pub fn objects(objects: &[gstreamer::glib::Object]) -> Finalised {
        use gstreamer::glib::prelude::*;
        Finalised(
            objects
                .iter()
                .map(|object| {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    // The handle only serves to disconnect early; dropping it keeps the notify.
                    let _ = object.add_weak_ref_notify(move || {
                        let _ = tx.send(());
                    });
                    rx
                })
                .collect(),
        )
    }

    pub fn and(mut self, other: Finalised) -> Finalised {
        self.0.extend(other.0);
        self
    }

    /// Waits up to `limit` for all of them; how many are still alive if some are.
    pub async fn within(self, limit: std::time::Duration) -> Result<(), usize> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut alive = 0;
        for finalised in self.0 {
            // `timeout_at` polls the receiver before the deadline: past it, the ones already
            // finalised still count as such.
            if tokio::time::timeout_at(deadline, finalised).await.is_err() {
                alive += 1;
            }
        }
        if alive == 0 {
            Ok(())
        } else {
            Err(alive)
        }
    }
}
