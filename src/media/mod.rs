//! GStreamer media: start-up checks, source and encoder selection, one `webrtcbin` session
//! per call.
//!
//! - [`probe`]: which elements exist, which camera/microphone/speaker/encoder to use.
//! - [`session`]: the per-call pipeline, its events and its teardown guard.
//! - [`dtls`]: the door's own DTLS certificate in webrtcbin.
//! - [`snapshot`]: the visitor's JPEG from the session's video (a tee branch).

pub mod dtls;
pub mod probe;
pub mod session;
pub mod snapshot;

pub use dtls::DtlsCertificate;
pub use probe::{check_installation, plan, MediaPlan, ProbeError};
pub use session::{
    aec_fragment, Counters, IceSettings, MediaEvent, MediaEventKind, Session, SessionError,
    SessionStats, AEC_CAPS,
};
pub use snapshot::{SnapshotError, SnapshotGrab, MAX_SNAPSHOT_WIDTH};
