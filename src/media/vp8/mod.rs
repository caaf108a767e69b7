//! VP8 for phones without H.264, encoded only while such a phone watches.
//!
//! ```text
//!  camera ─► tee vtee ─┬─► H.264 encoder ─► rtph264pay ─► tee vrtp ─► every session (as offered)
//!                      └─► queue(1, leaky) ─► valve ─► scale/rate ─► vp8enc ─► rtpvp8pay ─► tee vp8rtp
//!                                                                         └─► sessions that answered VP8
//! ```
//!
//! Every offer lists VP8 after H.264 ([`sdp::offer_vp8`]). A session whose phone answers VP8
//! only ([`sdp::AnsweredVideo::Vp8`]) has its video input moved from the H.264 tee to the VP8
//! tee ([`Vp8Feed::attach`]); the branch is built the first time, and its valve closes when the
//! last such session goes, so a call between Chromium and the door never runs `vp8enc`.
//! The VP8 payloader sends with the H.264 payloader's SSRC (the one the offer's `a=ssrc` names),
//! so the phone's demultiplexing sees the stream it was told about.

pub(crate) mod sdp;

use super::session::{Counters, SessionError};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// RTP leaves a queue as buffers or buffer lists.
const DATA: gst::PadProbeType = gst::PadProbeType::BUFFER.union(gst::PadProbeType::BUFFER_LIST);

/// The tee after the VP8 payloader, a child of the call's pipeline (so that sessions' bins
/// can link to it like to `vrtp`).
const VP8_TEE: &str = "vp8rtp";
/// The branch's encoder (keyframe requests go to it as to `venc`).
pub(crate) const VP8_ENCODER: &str = "vp8enc";
const VP8_VALVE: &str = "vp8valve";
const VP8_PAYLOADER: &str = "vp8pay";
/// A Raspberry Pi encodes VP8 in software only (its hardware encoder is H.264): 640 px wide
/// at most, whatever the camera gives the H.264 encoder…
const VP8_MAX_WIDTH: u32 = 640;
/// …and 15 frames per second at most, half the default rate and so half the encoding cost.
const VP8_MAX_FRAMERATE: u32 = 15;
/// Target bitrate (bit/s): half the H.264 default (`media.video_bitrate_kbps` 1200) for half
/// its frame rate.
const VP8_BITRATE: u32 = 600_000;
/// libvpx speed in realtime mode (`deadline=1`): higher is faster and coarser. 640x480@15 of
/// the test pattern cost 0.36-0.40 s of CPU per 10 s of video at 12 (x264 ultrafast at
/// 640x480@30: 0.57 s) on the 2-core test machine.
const VP8_CPU_USED: i32 = 12;
/// One encoder thread: with two, libvpx's threads spin-wait on each other and the same encode
/// took 3-4 s of CPU per 10 s on a busy 2-core machine (a Pi has other work on its cores).
const VP8_THREADS: u32 = 1;

/// Where a session takes its video: the pad a tee links to, and the source pad of the queue
/// in front of its `webrtcbin` (packets already queued leave there).
pub(crate) struct VideoInput {
    pub link: gst::Pad,
    pub queue_src: gst::Pad,
}

impl VideoInput {
    /// The input of a session whose video queue is named `vcaps`, linked at `link` (the
    /// queue's own sink pad, or the ghost pad of the bin it is in).
    pub(crate) fn of(bin: &impl IsA<gst::Bin>, link: Option<gst::Pad>) -> Option<VideoInput> {
        let queue = bin.as_ref().by_name("vcaps")?;
        Some(VideoInput {
            link: link.or_else(|| queue.static_pad("sink"))?,
            queue_src: queue.static_pad("src")?,
        })
    }
}

/// A session's video input fed from the VP8 tee; dropping it moves nothing back but releases
/// the tee pad, and closes the branch's valve when it was the last.
pub(crate) struct Vp8Feed {
    pipeline: gst::Pipeline,
    tee_pad: gst::Pad,
}

impl Vp8Feed {
    /// Feed `input` (a session's video queue, now fed by the H.264 tee) from the VP8 tee
    /// with payload type `pt`, building the VP8 branch the first time.
    pub(crate) fn attach(
        pipeline: &gst::Pipeline,
        input: &VideoInput,
        pt: u32,
        plan: &Vp8Plan,
        counters: &Arc<Counters>,
    ) -> Result<Vp8Feed, SessionError> {
        let tee = match pipeline.by_name(VP8_TEE) {
            Some(tee) => tee,
            None => build_branch(pipeline, pt, plan, counters)?,
        };
        let payloader_pt = pipeline
            .by_name(VP8_PAYLOADER)
            .map(|pay| pay.property::<u32>("pt"));
        if payloader_pt != Some(pt) {
            return Err(SessionError::Build(format!(
                "the VP8 branch sends payload type {payloader_pt:?}, this answer wants {pt}"
            )));
        }
        // H.264 packets still queued for the session must not follow: they carry the same
        // SSRC with other sequence numbers, and SRTP refuses such a "replay" with an error
        // that ends the call. Only VP8 passes from here on.
        // (A non-blocking probe: it also sees the packet the hold blocked, once released.)
        input.queue_src.add_probe(DATA, move |_, info| {
            let first = match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => Some(buffer.as_ref()),
                // A payloader pushes a fragmented frame as one list, all of one stream.
                Some(gst::PadProbeData::BufferList(list)) => list.get(0),
                _ => return gst::PadProbeReturn::Ok,
            };
            let payload_type = first
                .and_then(|buffer| buffer.map_readable().ok())
                .and_then(|map| map.get(1).map(|b| u32::from(b & 0x7f)));
            if payload_type == Some(pt) {
                gst::PadProbeReturn::Ok
            } else {
                gst::PadProbeReturn::Drop
            }
        });
        let input = &input.link;
        // Off the H.264 tee…
        if let Some(old) = input.peer() {
            let _ = old.unlink(input);
            if let Some(h264_tee) = old.parent_element() {
                h264_tee.release_request_pad(&old);
            }
        }
        // …onto the VP8 one.
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| SessionError::Build("the VP8 tee gave no pad".into()))?;
        tee_pad
            .link(input)
            .map_err(|e| SessionError::Build(format!("cannot feed VP8: {e:?}")))?;
        // Open (again) only now that someone watches: a failed attach leaves it as it was.
        if let Some(valve) = pipeline.by_name(VP8_VALVE) {
            valve.set_property("drop", false);
        }
        // The phone's decoder starts at a keyframe; a running encoder's next one may be seconds away.
        request_keyframe(pipeline);
        Ok(Vp8Feed {
            pipeline: pipeline.clone(),
            tee_pad,
        })
    }
}

impl Drop for Vp8Feed {
    fn drop(&mut self) {
        if let Some(peer) = self.tee_pad.peer() {
            let _ = self.tee_pad.unlink(&peer);
        }
        let Some(tee) = self.tee_pad.parent_element() else {
            return;
        };
        tee.release_request_pad(&self.tee_pad);
        if tee.src_pads().is_empty() {
            // Nobody watches VP8 any more: stop encoding it.
            if let Some(valve) = self.pipeline.by_name(VP8_VALVE) {
                valve.set_property("drop", true);
            }
        }
    }
}

/// One session's VP8 state: offered or not, the hold on its video until the answer, the feed.
pub(crate) struct Vp8Video {
    plan: Option<Vp8Plan>,
    /// Holds the session's video at its queue's output until the answer says which codec it
    /// gets: an H.264 packet that reached `webrtcbin` before a switch to VP8 carries the SSRC
    /// the VP8 stream takes over with other sequence numbers, and SRTP ends the call on that
    /// "replay" (libsrtp `replay_old`). A block, not a drop: the leaky queue keeps its newest
    /// packets meanwhile, so an H.264 phone still gets them at once when it connects (as when
    /// `webrtcbin` itself held them); a VP8 phone's filter drops them when the block goes.
    /// Before the answer nothing can be sent anyway.
    hold: Mutex<Option<(gst::Pad, gst::PadProbeId)>>,
    feed: Mutex<Option<Vp8Feed>>,
}

impl Vp8Video {
    /// For a session whose video queue (`vcaps`) is in `bin`; `plan` is `None` without VP8,
    /// and then nothing changes for the session.
    pub(crate) fn new(plan: Option<Vp8Plan>, bin: &impl IsA<gst::Bin>) -> Vp8Video {
        let hold = plan.and_then(|_| {
            let pad = bin.as_ref().by_name("vcaps")?.static_pad("src")?;
            let id = pad.add_probe(gst::PadProbeType::BLOCK | DATA, |_, _| {
                gst::PadProbeReturn::Ok
            })?;
            Some((pad, id))
        });
        Vp8Video {
            plan,
            hold: Mutex::new(hold),
            feed: Mutex::new(None),
        }
    }

    /// Whether the offer lists VP8.
    pub(crate) fn offered(&self) -> bool {
        self.plan.is_some()
    }

    /// Prepare the session for the phone's `answer`: fill in its rejected lines for webrtcbin
    /// ([`sdp::fill_rejected_lines`]) and, if it chose VP8, move the session's video (`input`)
    /// to the VP8 tee; otherwise the session keeps H.264 (or sends no video: a rejected line
    /// needs nothing more from the door). The hold is released either way.
    pub(crate) fn follow_answer(
        &self,
        pipeline: &gst::Pipeline,
        input: Option<VideoInput>,
        answer: &mut gstreamer_sdp::SDPMessageRef,
        counters: &Arc<Counters>,
    ) {
        if sdp::fill_rejected_lines(answer) > 0 {
            tracing::info!("the phone rejected a line of the offer (no codec in common): audio and Unlock go on");
        }
        if let sdp::AnsweredVideo::Vp8(pt) = sdp::answered_video(answer) {
            match (self.plan, input) {
                (Some(plan), Some(input)) => {
                    match Vp8Feed::attach(pipeline, &input, pt, &plan, counters) {
                        Ok(feed) => {
                            tracing::info!(pt, "the phone decodes no H.264: sending it VP8");
                            *lock(&self.feed) = Some(feed);
                        }
                        Err(e) => tracing::warn!("the phone wants VP8 and gets no video: {e}"),
                    }
                }
                _ => tracing::warn!("the phone answered VP8, which the door did not offer"),
            }
        }
        // After the VP8 filter is in place (attach), so no H.264 packet slips through.
        if let Some((pad, id)) = lock(&self.hold).take() {
            pad.remove_probe(id);
        }
    }

    /// Stop feeding VP8 (the session ends).
    pub(crate) fn stop(&self) {
        lock(&self.feed).take();
    }
}

/// A poisoned lock only means a panic elsewhere; the pads it guards are still valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ask the VP8 encoder, if there is one, for a keyframe.
pub(crate) fn request_keyframe(pipeline: &gst::Pipeline) {
    // No VP8 encoder (no phone without H.264 watches) is the common case, not a failure.
    let _ = super::keyframes::force(pipeline, VP8_ENCODER);
}

/// What the VP8 branch is made from: the camera's size and rate.
#[derive(Debug, Clone, Copy)]
pub struct Vp8Plan {
    width: u32,
    height: u32,
    framerate: u32,
}

impl super::MediaPlan {
    /// The VP8 branch's plan when VP8 is offered (`media.vp8`).
    pub fn vp8_plan(&self) -> Option<Vp8Plan> {
        self.vp8.then_some(Vp8Plan {
            width: self.width,
            height: self.height,
            framerate: self.framerate,
        })
    }
}

impl Vp8Plan {
    /// The encoded size and rate: at most [`VP8_MAX_WIDTH`] wide (same aspect, even sizes)
    /// and [`VP8_MAX_FRAMERATE`].
    fn output(&self) -> (u32, u32, u32) {
        let (w, h) = super::snapshot::scaled_to_width(self.width, self.height, VP8_MAX_WIDTH);
        (w, h, self.framerate.clamp(1, VP8_MAX_FRAMERATE))
    }
}

/// The launch description of the branch between the raw video tee and the VP8 tee.
fn describe(pt: u32, ssrc: Option<u32>, plan: &Vp8Plan) -> String {
    let (w, h, fps) = plan.output();
    let ssrc = ssrc.map(|s| format!(" ssrc={s}")).unwrap_or_default();
    format!(
        "queue max-size-buffers=1 leaky=downstream ! valve name={VP8_VALVE} \
         ! videoscale ! videorate drop-only=true ! videoconvert \
         ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 \
         ! {VP8_ENCODER} name={VP8_ENCODER} deadline=1 cpu-used={VP8_CPU_USED} end-usage=cbr \
           target-bitrate={VP8_BITRATE} keyframe-max-dist={kf} lag-in-frames=0 threads={VP8_THREADS} \
         ! rtpvp8pay name={VP8_PAYLOADER} pt={pt}{ssrc} picture-id-mode=15-bit",
        kf = fps * 2,
    )
}

/// Build the VP8 branch in `pipeline` (a bin from the raw video tee up to the VP8 tee, which
/// is the pipeline's own child), start it, and return the VP8 tee.
fn build_branch(
    pipeline: &gst::Pipeline,
    pt: u32,
    plan: &Vp8Plan,
    counters: &Arc<Counters>,
) -> Result<gst::Element, SessionError> {
    let build = |e: String| SessionError::Build(format!("VP8 branch: {e}"));
    let raw = pipeline
        .by_name(super::snapshot::TEE)
        .ok_or_else(|| build("no raw video tee".into()))?;
    let h264 = pipeline
        .by_name(super::preview::VIDEO_TEE)
        .and_then(|t| t.static_pad("sink"))
        .and_then(|p| p.current_caps());
    // The offer's `a=ssrc` is the H.264 payloader's; the VP8 stream takes its place.
    let ssrc = h264
        .as_ref()
        .and_then(|c| c.structure(0).and_then(|s| s.get::<u32>("ssrc").ok()));
    let bin = gst::parse::bin_from_description(&describe(pt, ssrc, plan), true)
        .map_err(|e| build(e.to_string()))?;
    let tee = gst::ElementFactory::make("tee")
        .name(VP8_TEE)
        .property("allow-not-linked", true)
        .build()
        .map_err(|e| build(e.to_string()))?;
    pipeline
        .add_many([bin.upcast_ref::<gst::Element>(), &tee])
        .map_err(|e| build(e.to_string()))?;
    let started = (|| -> Result<(), String> {
        let caps = rtp_caps(pt, h264.as_ref());
        bin.link_filtered(&tee, &caps).map_err(|e| e.to_string())?;
        tee.sync_state_with_parent().map_err(|e| e.to_string())?;
        bin.sync_state_with_parent().map_err(|e| e.to_string())?;
        let counted = counters.clone();
        if let Some(pad) = bin.by_name(VP8_ENCODER).and_then(|e| e.static_pad("src")) {
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counted.vp8_frames_sent.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
        let src = raw
            .request_pad_simple("src_%u")
            .ok_or("the raw video tee gave no pad")?;
        let sink = bin.static_pad("sink").ok_or("no branch input")?;
        src.link(&sink).map_err(|e| format!("{e:?}"))?;
        Ok(())
    })();
    if let Err(e) = started {
        let _ = bin.set_state(gst::State::Null);
        let _ = tee.set_state(gst::State::Null);
        let _ = pipeline.remove_many([bin.upcast_ref::<gst::Element>(), &tee]);
        return Err(build(e));
    }
    tracing::info!(pt, ?ssrc, "VP8 encoder started for a phone without H.264");
    Ok(tee)
}

/// The VP8 RTP caps, with the H.264 stream's RTP header extensions (`extmap-N` fields, e.g.
/// transport-wide congestion control's): the payloader adds what its downstream caps name,
/// so the VP8 stream carries the same extensions the offer announced for the video line.
fn rtp_caps(pt: u32, h264: Option<&gst::Caps>) -> gst::Caps {
    let mut caps = gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("encoding-name", "VP8")
        .field("payload", pt as i32)
        .build();
    let extensions = h264.and_then(|c| c.structure(0)).into_iter().flat_map(|s| {
        s.iter()
            .filter(|(name, _)| name.starts_with("extmap-"))
            .map(|(name, value)| (name.to_owned(), value.clone()))
            .collect::<Vec<_>>()
    });
    if let Some(structure) = caps.make_mut().structure_mut(0) {
        for (name, value) in extensions {
            structure.set_value(name.as_str(), value);
        }
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_rtp_takes_the_h264_streams_header_extensions() {
        gst::init().unwrap();
        let h264: gst::Caps = "application/x-rtp,media=video,encoding-name=H264,payload=96,ssrc=(uint)7,\
            extmap-3=(string)http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            .parse()
            .unwrap();
        let caps = rtp_caps(98, Some(&h264));
        let s = caps.structure(0).unwrap();
        assert_eq!(s.get::<&str>("encoding-name").unwrap(), "VP8");
        assert_eq!(s.get::<i32>("payload").unwrap(), 98);
        assert!(s
            .get::<&str>("extmap-3")
            .unwrap()
            .contains("transport-wide-cc"));
        assert!(
            !s.has_field("ssrc"),
            "the payloader's ssrc property sets it"
        );
        let plain = rtp_caps(98, None);
        assert_eq!(plain.structure(0).unwrap().n_fields(), 3);
    }

    #[test]
    fn vp8_is_encoded_at_most_640_wide_and_15_fps() {
        let plan = Vp8Plan {
            width: 1280,
            height: 720,
            framerate: 30,
        };
        assert_eq!(plan.output(), (640, 360, 15));
        let small = Vp8Plan {
            width: 320,
            height: 240,
            framerate: 10,
        };
        assert_eq!(small.output(), (320, 240, 10));
        let text = describe(98, Some(1234), &plan);
        assert!(
            text.contains("width=640,height=360,framerate=15/1"),
            "{text}"
        );
        assert!(text.contains("pt=98 ssrc=1234"), "{text}");
        assert!(text.contains("deadline=1"), "{text}");
        gst::init().unwrap();
        gst::parse::bin_from_description(&text, true).unwrap_or_else(|e| panic!("{e}: {text}"));
    }
}
