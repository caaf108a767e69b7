//! `doorbelld`: the door side of the doorbell.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`config`] | layered configuration, validation with errors that name the key |
//! | [`call`] | the call state machine: pure, no I/O, time is an input |
//! | [`media`] | GStreamer: start-up checks, device/encoder probing, one `webrtcbin` session per call |
//! | [`link`] | the WebSocket link to the hub: auth, message pump, reconnect with jittered backoff |
//! | [`gpio`] | button, door strike, status LED and PIR behind small traits; rppal and simulated backends |
//! | [`unlock`] | who may open the door: data-channel messages from the answering phone |
//! | [`control`] | the local Unix socket behind `doorbelld press` / `status` / `hangup` |
//! | [`daemon`] | the one task that owns call state and executes the machine's actions |
//! | [`demo`] | local-first mode: the hub embedded in this process |
//! | [`cli`] | command-line definition |
//!
//! Data flows one way into the call task: every thread (GStreamer, rppal interrupts, stdin, sockets) turns what
//! it sees into a typed message on a bounded channel; nothing else holds call state.

pub mod call;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod gpio;
pub mod link;
pub mod media;
pub mod unlock;

/// Reported to the hub in `hello`.
pub const SOFTWARE: &str = concat!("doorbelld ", env!("CARGO_PKG_VERSION"));
