//! The visitor's snapshot: one JPEG from the call's running video, no second camera open.
//!
//! The session's raw video goes through a `tee`; besides the encoder it feeds a small branch
//! that scales to at most [`MAX_SNAPSHOT_WIDTH`] px wide and encodes JPEG into an `appsink`.
//! A `valve` in front of the scaler closes after the first picture is taken, so the branch
//! costs one JPEG encode per press, not one per frame.
//!
//! ```text
//!  camera ─► tee ─► queue ─► H.264 ...                                 (the call)
//!             └──► queue(1, leaky) ─► valve ─► videoscale ─► jpegenc ─► appsink "snap"
//! ```

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Widest snapshot: enough to recognise a face on a phone's notification and lock screen;
/// a 640-px JPEG is 30-80 KiB, well under the hub's upload limit.
pub const MAX_SNAPSHOT_WIDTH: u32 = 640;
/// JPEG quality: 80 keeps faces clear at a third of quality 95's size.
const JPEG_QUALITY: u32 = 80;
/// Name of the tee the video source feeds.
pub(crate) const TEE: &str = "vtee";

/// The snapshot size for a `width` x `height` camera: at most [`MAX_SNAPSHOT_WIDTH`] wide,
/// same aspect ratio, even dimensions (as encoders like).
pub fn snapshot_size(width: u32, height: u32) -> (u32, u32) {
    scaled_to_width(width, height, MAX_SNAPSHOT_WIDTH)
}

/// `width` x `height` scaled down to at most `max_width` wide, same aspect ratio, even
/// height (as encoders like). Also the VP8 branch's size (`super::vp8`).
pub(crate) fn scaled_to_width(width: u32, height: u32, max_width: u32) -> (u32, u32) {
    if width <= max_width || width == 0 {
        return (width, height);
    }
    let h = (u64::from(height) * u64::from(max_width) / u64::from(width)) as u32;
    (max_width, (h & !1).max(2))
}

/// The branch of the session's description that starts at the tee.
pub(crate) fn branch(width: u32, height: u32) -> String {
    let (w, h) = snapshot_size(width, height);
    format!(
        " {TEE}. ! queue max-size-buffers=1 leaky=downstream ! valve name=snapvalve \
         ! videoscale ! videoconvert ! video/x-raw,format=I420,width={w},height={h} \
         ! jpegenc quality={JPEG_QUALITY} \
         ! appsink name=snap max-buffers=1 drop=true sync=false async=false emit-signals=false"
    )
}

/// A snapshot when no call is running (a press while the hub is unreachable): opens the
/// camera just for one picture, so still one camera user at a time. Blocking.
pub fn grab_once(
    video_source: &str,
    width: u32,
    height: u32,
    timeout: Duration,
) -> Result<Vec<u8>, SnapshotError> {
    let description = format!("{video_source} ! tee name={TEE}{}", branch(width, height));
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| SnapshotError::Pipeline(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| SnapshotError::Pipeline("not a pipeline".into()))?;
    // Whatever happens below, the camera is released.
    let guard = PipelineGuard(pipeline);
    guard
        .0
        .set_state(gst::State::Playing)
        .map_err(|e| SnapshotError::Pipeline(e.to_string()))?;
    SnapshotGrab::of(&guard.0)?.take(timeout)
}

/// Sets its pipeline to NULL when dropped.
struct PipelineGuard(gst::Pipeline);

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Why no snapshot was taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the pipeline has no snapshot branch")]
    NoBranch,
    #[error("no picture within {0:?} (the camera gave no frame)")]
    Timeout(Duration),
    #[error("the snapshot buffer cannot be read")]
    Unreadable,
    #[error("cannot run the snapshot pipeline: {0}")]
    Pipeline(String),
}

/// One pending picture of a running session; taken on a blocking thread.
pub struct SnapshotGrab {
    sink: gst_app::AppSink,
    valve: gst::Element,
}

impl SnapshotGrab {
    /// The snapshot branch of `pipeline`.
    pub fn of(pipeline: &gst::Pipeline) -> Result<SnapshotGrab, SnapshotError> {
        let sink = pipeline
            .by_name("snap")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or(SnapshotError::NoBranch)?;
        let valve = pipeline
            .by_name("snapvalve")
            .ok_or(SnapshotError::NoBranch)?;
        Ok(SnapshotGrab { sink, valve })
    }

    /// Waits up to `timeout` for the first JPEG, then closes the branch. Blocking.
    pub fn take(self, timeout: Duration) -> Result<Vec<u8>, SnapshotError> {
        let sample = self
            .sink
            .try_pull_sample(gst::ClockTime::from_nseconds(
                u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
            ))
            .ok_or(SnapshotError::Timeout(timeout));
        // One picture per press: stop encoding whatever happened.
        self.valve.set_property("drop", true);
        let sample = sample?;
        let buffer = sample.buffer().ok_or(SnapshotError::Unreadable)?;
        let map = buffer
            .map_readable()
            .map_err(|_| SnapshotError::Unreadable)?;
        Ok(map.as_slice().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_at_most_640_wide_with_the_cameras_aspect() {
        assert_eq!(snapshot_size(1280, 720), (640, 360));
        assert_eq!(snapshot_size(1920, 1080), (640, 360));
        assert_eq!(snapshot_size(640, 480), (640, 480));
        assert_eq!(snapshot_size(320, 240), (320, 240));
        assert_eq!(snapshot_size(1000, 333), (640, 212));
    }

    #[test]
    fn a_one_shot_grab_gives_a_jpeg_without_a_call() {
        if gst::init().is_err() || gst::ElementFactory::find("jpegenc").is_none() {
            eprintln!("skipping: GStreamer or jpegenc missing");
            return;
        }
        let source = "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1";
        let jpeg = grab_once(source, 320, 240, Duration::from_secs(5)).expect("a picture");
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) && jpeg.ends_with(&[0xFF, 0xD9]));
    }

    #[test]
    fn a_test_pattern_session_gives_one_jpeg() {
        if gst::init().is_err() || gst::ElementFactory::find("jpegenc").is_none() {
            eprintln!("skipping: GStreamer or jpegenc missing");
            return;
        }
        let description = format!(
            "videotestsrc is-live=true ! video/x-raw,width=1280,height=720,framerate=15/1 ! tee name={TEE} \
             {TEE}. ! queue ! fakesink{}",
            branch(1280, 720)
        );
        let pipeline = gst::parse::launch(&description)
            .expect("launch")
            .downcast::<gst::Pipeline>()
            .expect("pipeline");
        pipeline.set_state(gst::State::Playing).expect("play");
        let grab = SnapshotGrab::of(&pipeline).expect("branch");
        let jpeg = grab.take(Duration::from_secs(5)).expect("a picture");
        pipeline.set_state(gst::State::Null).expect("stop");
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "not a JPEG");
        assert!(jpeg.ends_with(&[0xFF, 0xD9]), "not a whole JPEG");
        assert!(jpeg.len() < 256 * 1024, "{} bytes", jpeg.len());
    }
}
