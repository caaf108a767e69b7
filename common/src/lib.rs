//! What both `doorbelld` and `doorbell-hub` need, and nothing that pulls in a web server,
//! a database or a TURN server: a door that dials a remote hub builds with this alone.
//!
//! - [`secrets`]: random ids and secrets from the OS, SHA-256 digests, certificate fingerprints.
//! - [`files`]: writing a file only its owner may read, atomically.

pub mod files;
pub mod secrets;

pub use files::write_private_file;
pub use secrets::{cert_fingerprint, digests_equal, random_hex, sha256_hex, RandomError};
