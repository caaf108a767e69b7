//! Simulated hardware: the keyboard is the button, the log is the LED and the relay.

use super::{Button, GpioError, OutputLine, Press, PressSource, StatusLed};
use crate::core::LedState;
use std::io::BufRead;
use std::time::Instant;
use tokio::sync::mpsc;

/// Each line on standard input (Enter) is one press. Ends quietly at end of input, so a
/// daemon started with `/dev/null` as stdin (systemd, tests) just has no keyboard button.
pub struct StdinButton;

impl Button for StdinButton {
    fn start(self: Box<Self>, presses: mpsc::Sender<Press>) -> Result<(), GpioError> {
        std::thread::Builder::new()
            .name("stdin-button".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                for line in stdin.lock().lines() {
                    if line.is_err() {
                        break;
                    }
                    let press = Press {
                        at: Instant::now(),
                        source: PressSource::Stdin,
                    };
                    if presses.blocking_send(press).is_err() {
                        break;
                    }
                }
            })
            .map(|_| ())
            .map_err(|e| GpioError::Start(e.to_string()))
    }
}

/// Logs LED changes; what a real LED would show, visible in the journal.
#[derive(Default)]
pub struct LoggedLed {
    current: Option<LedState>,
}

impl StatusLed for LoggedLed {
    fn show(&mut self, state: LedState) {
        if self.current != Some(state) {
            tracing::info!(led = ?state, "status LED");
            self.current = Some(state);
        }
    }
}

/// An output that only logs its level: the simulated door strike. What `doorbelld status`
/// reports about the relay comes from the [`super::DoorStrike`] above it, exactly as on a Pi.
pub struct SimulatedLine {
    name: &'static str,
    high: Option<bool>,
}

impl SimulatedLine {
    pub fn new(name: &'static str) -> Self {
        Self { name, high: None }
    }
}

impl OutputLine for SimulatedLine {
    fn set_high(&mut self, high: bool) {
        if self.high != Some(high) {
            tracing::debug!(line = self.name, high, "simulated output");
            self.high = Some(high);
        }
    }
}
