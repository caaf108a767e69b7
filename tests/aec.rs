//! Echo cancellation in a real session (GStreamer, test sources): with `media.echo_cancel`
//! the microphone goes through `webrtcdsp` and audio comes out of it; without, neither the
//! canceller nor its probe is in the pipeline.

mod common;

use doorbell_protocol::CallId;
use doorbelld::config::{EncoderKind, MediaConfig};
use doorbelld::media::{self, IceSettings, Session};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn start(call: &str, echo_cancel: bool) -> (Session, mpsc::Receiver<media::MediaEvent>) {
    media::check_installation().expect("GStreamer installation (scripts/install-deps.sh)");
    let config = MediaConfig {
        echo_cancel,
        ..common::test_media(EncoderKind::Auto)
    };
    let plan = media::plan(&config).expect("plan");
    let (tx, rx) = mpsc::channel(media::session::MEDIA_EVENT_QUEUE);
    let ice = IceSettings {
        servers: vec![],
        local_addresses: vec!["127.0.0.1".into()],
    };
    let session = Session::start(CallId::new(call), &plan, &ice, tx).expect("session starts");
    (session, rx)
}

/// Every element of `factory` anywhere in the pipeline (webrtcbin's internals included).
fn elements_of(pipeline: &gst::Pipeline, factory: &str) -> Vec<gst::Element> {
    pipeline
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.factory().is_some_and(|f| f.name() == factory))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_cancel_on_puts_webrtcdsp_on_the_microphone_and_audio_passes() {
    let (session, mut rx) = start("c-aec-on", true);
    let dsps = elements_of(session.pipeline(), "webrtcdsp");
    assert_eq!(dsps.len(), 1, "one canceller expected");
    let probes = elements_of(session.pipeline(), "webrtcechoprobe");
    assert_eq!(probes.len(), 1, "one echo probe expected");
    // The canceller is bound to this session's probe by name, not to "the first one".
    let dsp = &dsps[0];
    assert_eq!(dsp.property::<String>("probe"), probes[0].name().as_str());
    assert!(dsp.property::<bool>("echo-cancel"));

    // 10 ms buffers: 20 of them is 200 ms of microphone audio through the canceller. The
    // probe reports the 20th buffer itself, so the test waits on that event, not a timer.
    const ENOUGH: u64 = 20;
    let after_dsp = Arc::new(AtomicU64::new(0));
    let count = after_dsp.clone();
    let (enough_tx, enough) = tokio::sync::oneshot::channel::<()>();
    let enough_tx = std::sync::Mutex::new(Some(enough_tx));
    dsp.static_pad("src").expect("webrtcdsp src pad").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, _| {
            if count.fetch_add(1, Ordering::Relaxed) + 1 == ENOUGH {
                if let Some(tx) = enough_tx.lock().ok().and_then(|mut t| t.take()) {
                    let _ = tx.send(());
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
    let failed = async {
        while let Some(event) = rx.recv().await {
            if let media::MediaEventKind::Failed(why) = event.kind {
                return why;
            }
        }
        std::future::pending().await
    };
    tokio::time::timeout(Duration::from_secs(15), async {
        tokio::select! {
            _ = enough => {}
            why = failed => panic!("media failed: {why}"),
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "microphone audio did not pass webrtcdsp within 15 s ({} buffers)",
            after_dsp.load(Ordering::Relaxed)
        )
    });
    drop(session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_cancel_off_leaves_no_canceller_or_probe() {
    let (session, _rx) = start("c-aec-off", false);
    assert!(elements_of(session.pipeline(), "webrtcdsp").is_empty());
    assert!(elements_of(session.pipeline(), "webrtcechoprobe").is_empty());
}
