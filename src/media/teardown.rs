//! Unblocks a `webrtcbin` before it is set to NULL.
//!
//! Why: GStreamer 1.22's webrtcbin holds data at pad blocks until its transport connects.
//! A webrtcbin that never connected (the call's own offer, unused when a phone answered in
//! its preview session; a preview closed before it connected) can have a streaming thread
//! parked at such a block while holding its pad's stream lock; the NULL transition then waits
//! for that lock forever (seen about once in 200 calls of `tests/e2e/bench_soak.mjs`: the
//! door's call loop stuck in `gst_pad_stop_task` under webrtcbin's change_state, the queue
//! threads parked in `gst_pad_push`). A FLUSH_START sent into webrtcbin's inputs (send
//! side) and out of its ICE sources (receive side) marks every pad on the way flushing,
//! which wakes parked threads, before the state change asks for their locks.

use gstreamer as gst;
use gstreamer::prelude::*;

/// Send FLUSH_START through `webrtc` from both ends. Only for teardown: no FLUSH_STOP follows.
pub(crate) fn flush_for_teardown(webrtc: &gst::Element) {
    for pad in webrtc.sink_pads() {
        let _ = pad.send_event(gst::event::FlushStart::new());
    }
    let Some(bin) = webrtc.downcast_ref::<gst::Bin>() else {
        return;
    };
    for element in bin.iterate_recurse().into_iter().flatten() {
        let is_ice_source = element
            .factory()
            .is_some_and(|factory| factory.name() == "nicesrc");
        if is_ice_source {
            for pad in element.src_pads() {
                let _ = pad.push_event(gst::event::FlushStart::new());
            }
        }
    }
}
