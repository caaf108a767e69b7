//! The door's hardware edge: call button, door-strike relay, status LED and an optional PIR
//! motion sensor, behind small traits.
//!
//! ```text
//!  pins (rppal or simulated)        logic (pure, tested with fake pins)      call task
//!  button edges ─────────────────► EdgeFilter (min interval, held=once) ──► Press  ─┐
//!  PIR edges ────────────────────► EdgeFilter ───────────────────────────► Motion ─┤ bounded
//!  relay line ◄──────────────────── DoorStrike (pulse ≤ MAX_PULSE, guards) ◄─ unlock│ channels
//!  LED line ◄────────────────────── blinker task (pattern per LedState) ◄─ SetLed ──┘
//! ```
//!
//! - [`line`](mod@line): the pin layer ([`OutputLine`], [`Polarity`]): the only thing a backend provides
//!   for outputs, and what the tests fake.
//! - [`edges`]: kernel edge events -> one press per ring (minimum interval, held button).
//! - [`strike`]: the door-strike relay and its fail-secure guards.
//! - [`led`]: the blink pattern for each [`LedState`].
//! - [`presence`]: three presses within 10 s -> a short pairing window (physical presence).
//! - `simulated`: keyboard/control-socket button, logged LED and relay (demo and tests).
//! - `rppal_backend`: the Raspberry Pi's pins (Linux only), thin on purpose.

pub mod edges;
pub mod led;
pub mod line;
pub mod presence;
#[cfg(target_os = "linux")]
mod rppal_backend;
mod simulated;
pub mod strike;
#[cfg(test)]
mod tests;

pub use edges::{Edge, EdgeFilter};
pub use led::{pattern, PatternLed};
pub use line::{OutputLine, Polarity};
pub use simulated::{LoggedLed, SimulatedLine, StdinButton};
pub use strike::{DoorStrike, PulseOutcome, RelayState, MAX_PULSE};

use crate::config::{GpioBackend, GpioConfig};
use crate::core::LedState;
use std::time::{Duration, Instant};
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

/// The PIR sensor saw movement (one event per activation, rate-limited like the button).
#[derive(Debug, Clone, Copy)]
pub struct Motion {
    pub at: Instant,
}

/// Presses waiting for the call task. A visitor cannot press meaningfully faster than the
/// call task handles them; 8 absorbs bounces that got past debouncing.
pub const PRESS_QUEUE: usize = 8;
/// Motion events waiting for the call task; they are only logged and counted, and the filter
/// lets at most one through per [`MOTION_MIN_INTERVAL`].
pub const MOTION_QUEUE: usize = 4;
/// A PIR sensor re-triggers continuously while someone stands in front of it; one event per
/// 10 s is plenty for a log and a counter.
pub const MOTION_MIN_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    #[error("cannot start the button backend: {0}")]
    Start(String),
    #[error("configuration key `gpio.backend`: \"rppal\" needs a Raspberry Pi, and this machine is not one ({0})\n  fix: set gpio.backend = \"auto\" (rppal on a Pi, simulated elsewhere) or \"simulated\"")]
    NotAPi(String),
    #[error("configuration key `{key}`: cannot use BCM pin {pin}: {detail}\n  fix: check the wiring against hw/README.md, and that the daemon's user may open /dev/gpiochip0 (hw/99-doorbell.rules, group gpio)")]
    Pin {
        key: &'static str,
        pin: u8,
        detail: String,
    },
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

/// The door's hardware, opened from `[gpio]`. Owned by the call task.
pub struct Hardware {
    /// `"rppal"` or `"simulated"`, for `doorbelld status` and the log.
    pub backend: &'static str,
    pub led: Box<dyn StatusLed>,
    pub strike: DoorStrike,
    /// Input pins with their interrupt threads; dropping this stops them (rppal joins them).
    pub inputs: Box<dyn Send>,
}

/// Open the configured backend. Button presses and motion go into the given channels; the
/// relay starts de-energised (fail-secure). Call from inside the tokio runtime (the LED
/// blinker is a task).
pub fn open(
    config: &GpioConfig,
    presses: mpsc::Sender<Press>,
    motion: mpsc::Sender<Motion>,
) -> Result<Hardware, GpioError> {
    let use_rppal = match config.backend {
        GpioBackend::Simulated => false,
        GpioBackend::Rppal => true,
        GpioBackend::Auto => on_a_pi(),
    };
    if use_rppal {
        #[cfg(target_os = "linux")]
        return rppal_backend::open(config, presses, motion);
        #[cfg(not(target_os = "linux"))]
        return Err(GpioError::NotAPi("not Linux".into()));
    }
    let _ = (presses, motion); // the simulated button is started by the daemon (stdin)
    Ok(Hardware {
        backend: "simulated",
        led: Box::new(LoggedLed::default()),
        strike: DoorStrike::new(
            Box::new(SimulatedLine::new("door strike")),
            Polarity::ActiveHigh,
        ),
        inputs: Box::new(()),
    })
}

fn on_a_pi() -> bool {
    #[cfg(target_os = "linux")]
    return rppal::system::DeviceInfo::new().is_ok();
    #[cfg(not(target_os = "linux"))]
    return false;
}

/// Milliseconds from config as a `Duration`.
pub(crate) fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}
