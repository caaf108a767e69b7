//! The door's hardware edge: call button and status LED behind small traits.
//!
//! This release ships the simulated backends (they drive the demo and the tests): Enter on
//! standard input presses the button, `doorbelld press` presses it through the control
//! socket, and the LED is a log line. The rppal backend for a real Pi implements the same
//! traits.

mod simulated;

pub use simulated::{LoggedLed, StdinButton};

use crate::call::LedState;
use std::time::Instant;
use tokio::sync::mpsc;

/// One debounced press of the call button.
#[derive(Debug, Clone, Copy)]
pub struct Press {
    pub at: Instant,
    /// Where the press came from, for the log.
    pub source: PressSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PressSource {
    Stdin,
    ControlSocket,
    Gpio,
}

/// Presses waiting for the call task. A visitor cannot press meaningfully faster than the
/// call task handles them; 8 absorbs bounces that got past debouncing.
pub const PRESS_QUEUE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("cannot start the button backend: {0}")]
    Start(String),
}

/// A source of call-button presses.
pub trait Button: Send {
    /// Start delivering presses into `presses` until the daemon exits.
    fn start(self: Box<Self>, presses: mpsc::Sender<Press>) -> Result<(), GpioError>;
}

/// The status LED (or LEDs) on the door.
pub trait StatusLed: Send {
    fn show(&mut self, state: LedState);
}
