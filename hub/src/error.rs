//! Errors of [`crate::Hub`] as a whole (each module has its own; these wrap them).

use std::net::SocketAddr;

use crate::store::StoreError;
use crate::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot start the event recorder thread: {0}")]
    Recorder(std::io::Error),
    #[error("refusing plain HTTP on {0}: phones need HTTPS for camera and microphone, and tokens would cross the network in clear text. Listen on 127.0.0.1, or use TLS (--self-signed, or --tls-cert and --tls-key)")]
    PlainHttpNotLoopback(SocketAddr),
    #[error(transparent)]
    Snapshots(#[from] crate::snapshots::SnapshotError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error("cannot read the listener's local address: {0}")]
    LocalAddr(std::io::Error),
    #[error("invalid public URL {0:?}: it must start with http:// or https:// and name a host")]
    BadPublicUrl(String),
}
