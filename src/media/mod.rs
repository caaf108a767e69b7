//! GStreamer media: start-up checks, source and encoder selection, one `webrtcbin` session
//! per call.
//!
//! - [`probe`]: which elements exist, which camera/microphone/speaker/encoder to use.
//! - [`session`]: the per-call pipeline, its events and its teardown guard.
//! - [`pipeline`]: the session's launch string and ICE (STUN/TURN) configuration.
//! - [`dtls`]: the door's own DTLS certificate in webrtcbin.

pub mod dtls;
pub mod pipeline;
pub mod probe;
pub mod session;

pub use dtls::DtlsCertificate;
pub use pipeline::{aec_fragment, AEC_CAPS};
pub use probe::{check_installation, plan, MediaPlan, ProbeError};
pub use session::{
    Counters, IceSettings, MediaEvent, MediaEventKind, Session, SessionError, SessionStats,
};
