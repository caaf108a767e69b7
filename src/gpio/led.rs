//! Status LED patterns: one LED, six states a visitor (or installer) can tell apart.
//!
//! | state | pattern | why |
//! |---|---|---|
//! | idle | steady on | the button is lit and ready |
//! | ringing | fast blink, 4 Hz | "calling…" |
//! | in call | long on, short off (1.8 s / 0.2 s) | someone is listening, and it looks alive |
//! | hub unreachable | double blink every 2 s | presses only chime locally |
//! | fault | off with a short flash every 3 s | needs an installer (camera or pipeline broken) |
//! | viewing | slow breathing blink (1 s on / 1 s off) | someone watches the camera (live view) |
//!
//! A blinker task owns the line; [`PatternLed`] (the call task's [`StatusLed`]) only sends it
//! the state over a watch channel, so the call task never waits on an LED.

use super::line::{ActiveLine, OutputLine, Polarity};
use super::StatusLed;
use crate::core::LedState;
use std::time::Duration;
use tokio::sync::watch;

/// One step of a pattern: LED on or off for this long. A one-step pattern is steady.
pub type Step = (bool, Duration);

const fn ms(on: bool, millis: u64) -> Step {
    (on, Duration::from_millis(millis))
}

/// The repeating pattern for `state`.
pub fn pattern(state: LedState) -> &'static [Step] {
    const IDLE: &[Step] = &[ms(true, 1000)];
    const RINGING: &[Step] = &[ms(true, 125), ms(false, 125)];
    const IN_CALL: &[Step] = &[ms(true, 1800), ms(false, 200)];
    const HUB_UNREACHABLE: &[Step] = &[
        ms(true, 150),
        ms(false, 150),
        ms(true, 150),
        ms(false, 1550),
    ];
    const FAULT: &[Step] = &[ms(true, 100), ms(false, 2900)];
    const VIEWING: &[Step] = &[ms(true, 1000), ms(false, 1000)];
    match state {
        LedState::Idle => IDLE,
        LedState::Ringing => RINGING,
        LedState::InCall => IN_CALL,
        LedState::HubUnreachable => HUB_UNREACHABLE,
        LedState::Fault => FAULT,
        LedState::Viewing => VIEWING,
    }
}

/// Switches the LED off when the blinker ends, however it ends.
struct OffOnDrop(ActiveLine);

impl Drop for OffOnDrop {
    fn drop(&mut self) {
        self.0.set_active(false);
    }
}

/// Play the pattern of the current state until the sender is dropped.
pub async fn run_blinker(line: ActiveLine, mut states: watch::Receiver<LedState>) {
    let mut led = OffOnDrop(line);
    loop {
        let steps = pattern(*states.borrow_and_update());
        if let [(on, _)] = steps {
            led.0.set_active(*on);
            if states.changed().await.is_err() {
                return;
            }
            continue;
        }
        'pattern: loop {
            for (on, length) in steps {
                led.0.set_active(*on);
                tokio::select! {
                    changed = states.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break 'pattern;
                    }
                    _ = tokio::time::sleep(*length) => {}
                }
            }
        }
    }
}

/// A real LED driven by a blinker task.
pub struct PatternLed {
    states: watch::Sender<LedState>,
    task: tokio::task::JoinHandle<()>,
}

impl PatternLed {
    /// Start blinking `line`; must run inside the tokio runtime.
    pub fn start(line: Box<dyn OutputLine>, polarity: Polarity, initial: LedState) -> Self {
        let (states, receiver) = watch::channel(initial);
        let task = tokio::spawn(run_blinker(ActiveLine::new(line, polarity), receiver));
        Self { states, task }
    }
}

impl StatusLed for PatternLed {
    fn show(&mut self, state: LedState) {
        self.states.send_if_modified(|current| {
            let changed = *current != state;
            if changed {
                tracing::debug!(led = ?state, "status LED");
                *current = state;
            }
            changed
        });
    }
}

impl Drop for PatternLed {
    fn drop(&mut self) {
        // Aborting drops the blinker's future, whose guard switches the LED off.
        self.task.abort();
    }
}
