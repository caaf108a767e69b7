//! Keeps a torn-down `webrtcbin` alive until libnice has finished gathering candidates.
//!
//! Why: GStreamer 1.22's ICE stream (`nicestream.c`, the library Debian 12 and Raspberry Pi OS
//! ship) handles libnice's `candidate-gathering-done` by walking its list of transports; when
//! the last one of that list has already been finalised, it removes it and then steps to the
//! next element of a NULL link, on libnice's thread: SIGSEGV. Tearing a session down while its
//! gathering is still under way (a phone that hangs up within a second of the offer, a ring
//! preview closed because another phone answered, while a STUN or TURN server has not
//! answered yet) crashed the door exactly there (`webrtc:ice` thread, core dumps of the e2e
//! suite). Later GStreamer releases fixed the loop; the door must not crash on the one it runs.
//!
//! How: [`GatheringWatch`] listens (after GStreamer's own handler) for the agent's
//! `candidate-gathering-done`. At teardown the media is stopped at once (the pipeline goes to
//! NULL first: no audio or video leaves after a hang-up), and the last references are only
//! dropped once gathering has finished, so GStreamer's handler never meets a dead transport.
//! If gathering never started (no local description) they are dropped at once.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The longest a stopped session is kept waiting for gathering to end. libnice gives up on a
/// silent STUN or TURN server well within this (its retransmission timers total about 10 s
/// for a Binding and a TURN Allocate); past it the pipeline is released anyway, so a bug in
/// the agent costs one stopped pipeline's memory for a minute, not forever.
const MAX_WAIT_FOR_GATHERING: Duration = Duration::from_secs(60);

/// Whether a `webrtcbin`'s ICE agent has finished gathering, shared with libnice's thread.
#[derive(Clone)]
pub(crate) struct GatheringWatch {
    finished: Arc<(Mutex<bool>, Condvar)>,
}

impl GatheringWatch {
    /// Start watching `webrtc`'s agent. Call it before the offer (gathering starts with the
    /// local description).
    pub(crate) fn attach(webrtc: &gst::Element) -> Self {
        let watch = GatheringWatch {
            finished: Arc::new((Mutex::new(false), Condvar::new())),
        };
        let ice = webrtc.property::<gst_webrtc::WebRTCICE>("ice-agent");
        if ice.find_property("agent").is_none() {
            // Not libnice (another ICE implementation): nothing to wait for.
            watch.mark_finished();
            return watch;
        }
        let nice = ice.property::<gst::glib::Object>("agent");
        let on_done = watch.clone();
        // `after`: runs once GStreamer's own handlers for this emission have returned.
        nice.connect("candidate-gathering-done", true, move |_| {
            on_done.mark_finished();
            None
        });
        watch
    }

    fn mark_finished(&self) {
        let (finished, changed) = &*self.finished;
        *finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
        changed.notify_all();
    }

    fn is_finished(&self) -> bool {
        *self.finished.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drop `keep` (the references that hold the stopped `webrtc` alive) once it is safe: now
    /// if gathering never started or has finished, else from a helper thread when it finishes.
    /// `webrtc` must already be in NULL (its signalling thread stopped, so no description can
    /// still be applied behind this check).
    pub(crate) fn release_when_quiet<T: Send + 'static>(
        self,
        webrtc: &gst::Element,
        keep: T,
        label: &str,
    ) {
        let started = webrtc
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
            .is_some();
        if !started || self.is_finished() {
            drop(keep);
            return;
        }
        tracing::debug!(%label, "stopped; released once ICE gathering has finished");
        let label = label.to_owned();
        let spawned = std::thread::Builder::new()
            .name("ice-gather-wait".into())
            .spawn(move || {
                let (finished, changed) = &*self.finished;
                let guard = finished.lock().unwrap_or_else(|e| e.into_inner());
                let (guard, timeout) = changed
                    .wait_timeout_while(guard, MAX_WAIT_FOR_GATHERING, |done| !*done)
                    .unwrap_or_else(|e| e.into_inner());
                drop(guard);
                if timeout.timed_out() {
                    tracing::warn!(%label, "ICE gathering never finished; released anyway");
                } else {
                    tracing::debug!(%label, "ICE gathering finished; released");
                }
                drop(keep);
                crate::release_freed_memory();
            });
        if let Err(e) = spawned {
            // The references went down with the closure: the old crash risk, nothing worse.
            tracing::warn!("cannot start a thread to wait for ICE gathering: {e}");
        }
    }
}
