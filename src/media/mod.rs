//! GStreamer media: start-up checks, source and encoder selection, one `webrtcbin` session
//! per call.
//!
//! - [`probe`]: which elements exist, which camera/microphone/speaker/encoder to use.
//! - [`session`]: the per-call pipeline, its events and its teardown guard.
//! - [`pipeline`]: the session's launch string and ICE (STUN/TURN) configuration.
//! - [`preview`]: a ringing phone's preview session, a branch fed by the call's one encoder.
//! - [`counters`]: what a session counts (frames, audio both ways, encoders) for status and tests.
//! - [`dtls`]: the door's own DTLS certificate in webrtcbin.
//! - `teardown`: a webrtcbin is flushed before NULL (GStreamer 1.22 deadlock on pad blocks).
//! - `gathering`: a stopped session is released only once ICE gathering has ended (GStreamer 1.22 crash).
//! - [`snapshot`]: the visitor's JPEG from the session's video (a tee branch).
//! - `vp8`: VP8 in the offer, and its encoder (a tee branch) while a phone without H.264 watches.

pub mod counters;
pub mod dtls;
mod gathering;
pub mod pipeline;
pub mod preview;
pub mod probe;
pub mod session;
pub mod snapshot;
mod teardown;
mod vp8;

pub use dtls::DtlsCertificate;
pub use pipeline::{aec_fragment, AEC_CAPS};
pub use preview::{video_encoders, PreviewBranch};
pub use probe::{check_installation, plan, MediaPlan, ProbeError};
pub use session::{
    Counters, IceSettings, MediaEvent, MediaEventKind, Session, SessionError, SessionStats,
};
pub use snapshot::{SnapshotError, SnapshotGrab, MAX_SNAPSHOT_WIDTH};
