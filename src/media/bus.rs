//! The call pipeline's bus: errors and end-of-stream become the call's `Failed` event.

use super::session::{MediaEvent, MediaEventKind};
use doorbell_protocol::CallId;
use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::mpsc;

use super::session::SessionError;

/// Exactly one consumer of the bus: errors and EOS become `Failed` events.
pub(super) fn watch_bus(
    pipeline: &gst::Pipeline,
    call_id: &CallId,
    events: mpsc::Sender<MediaEvent>,
) -> Result<tokio::task::JoinHandle<()>, SessionError> {
    use futures_util::StreamExt;
    let bus = pipeline
        .bus()
        .ok_or_else(|| SessionError::Build("pipeline has no bus".into()))?;
    let mut messages = bus.stream();
    let call_id = call_id.clone();
    Ok(tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            use gst::MessageView;
            let failure = match message.view() {
                // The data channel's SCTP association ends with an error when the phone closes
                // its peer connection (Chromium aborts it), which races with the hub's
                // `hang_up`. Losing the data channel costs Unlock, not the call: the call
                // still ends on hang-up, ICE failure or the timeouts.
                MessageView::Error(err) if from_sctp(err.src()) => {
                    tracing::info!(%call_id, "data channel closed: {}", err.error());
                    let _ = events.try_send(MediaEvent {
                        call_id: call_id.clone(),
                        kind: MediaEventKind::ControlClosed,
                    });
                    None
                }
                MessageView::Error(err) => Some(format!(
                    "{} ({})",
                    err.error(),
                    err.debug().map(|d| d.to_string()).unwrap_or_default()
                )),
                MessageView::Eos(_) => Some("media source ended".into()),
                MessageView::Warning(w) => {
                    tracing::warn!(%call_id, "GStreamer: {}", w.error());
                    None
                }
                _ => None,
            };
            if let Some(why) = failure {
                let _ = events
                    .send(MediaEvent {
                        call_id: call_id.clone(),
                        kind: MediaEventKind::Failed(why),
                    })
                    .await;
                break;
            }
        }
    }))
}

/// Whether a bus message comes from webrtcbin's data-channel (SCTP) elements.
fn from_sctp(source: Option<&gst::Object>) -> bool {
    source
        .and_then(|o| o.downcast_ref::<gst::Element>())
        .and_then(|e| e.factory())
        .is_some_and(|f| matches!(f.name().as_str(), "sctpenc" | "sctpdec"))
}
