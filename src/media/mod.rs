//! GStreamer media: start-up checks, source and encoder selection, one `webrtcbin` session
//! per call.
//!
//! - [`probe`]: which elements exist, which camera/microphone/speaker/encoder to use.
//! - [`session`]: the per-call pipeline, its events and its teardown guard.
//! - [`dtls`]: the door's own DTLS certificate in webrtcbin.

pub mod dtls;
pub mod probe;
pub mod session;

pub use dtls::DtlsCertificate;
pub use probe::{check_installation, plan, MediaPlan, ProbeError};
pub use session::{
    aec_fragment, Counters, IceSettings, MediaEvent, MediaEventKind, Session, SessionError,
    SessionStats, AEC_CAPS,
};
