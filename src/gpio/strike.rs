//! The door-strike relay: energised only for a bounded pulse, and de-energised on every way
//! out.
//!
//! Fail-secure means the door stays locked whatever goes wrong, so the relay is switched off:
//! - at start-up ([`DoorStrike::new`]): a crash mid-pulse must not leave it on after restart;
//! - when the pulse's timer fires, on a timer task of its own, so a busy call task cannot
//!   stretch a pulse beyond [`MAX_PULSE`];
//! - when that timer task is cancelled (runtime shutdown): its guard's `Drop`;
//! - when the [`DoorStrike`] is dropped (daemon exit, or unwinding from a panic in the call
//!   task that owns it): its `Drop`.
//!
//! Only the call task owns a `DoorStrike`, and it pulses it only for an authorised unlock
//! (`crate::core::unlock`).

use super::line::{ActiveLine, OutputLine, Polarity};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The longest one unlock may energise the strike. Cheap 12 V strikes are rated for
/// intermittent duty and overheat when held, and a door held unlocked is the failure this
/// module exists to prevent; 10 s is long enough to push any door open. Same number as
/// [`crate::config::MAX_RELAY_PULSE_MS`], which bounds the configured pulse.
pub const MAX_PULSE: Duration = Duration::from_millis(crate::config::MAX_RELAY_PULSE_MS);

/// What `doorbelld status` shows of the relay; updated by whoever switches it.
#[derive(Debug, Default)]
pub struct RelayState {
    /// The strike is energised right now.
    pub energised: AtomicBool,
    /// Pulses since start-up (each one an authorised unlock).
    pub pulses: AtomicU64,
}

struct Shared {
    line: Mutex<ActiveLine>,
    state: Arc<RelayState>,
}

impl Shared {
    /// The line, even if a panic elsewhere poisoned the lock: switching off must always work.
    fn line(&self) -> MutexGuard<'_, ActiveLine> {
        self.line
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn switch(&self, on: bool) {
        self.line().set_active(on);
        let was = self.state.energised.swap(on, Ordering::AcqRel);
        if on && !was {
            self.state.pulses.fetch_add(1, Ordering::Relaxed);
            tracing::info!("door strike energised");
        } else if !on && was {
            tracing::info!("door strike released");
        }
    }
}

/// De-energises when dropped: held by the pulse timer task.
struct OffGuard(Arc<Shared>);

impl Drop for OffGuard {
    fn drop(&mut self) {
        self.0.switch(false);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PulseOutcome {
    /// The strike is energised for this long (the request, capped at [`MAX_PULSE`]).
    Started(Duration),
    /// A pulse is already running; it is not extended (a second tap must not keep the door
    /// open longer).
    AlreadyOpen,
}

pub struct DoorStrike {
    shared: Arc<Shared>,
    pub(super) timer: Option<tokio::task::JoinHandle<()>>,
}

impl DoorStrike {
    /// Take the relay line and de-energise it at once.
    pub fn new(line: Box<dyn OutputLine>, polarity: Polarity) -> Self {
        let shared = Arc::new(Shared {
            line: Mutex::new(ActiveLine::new(line, polarity)),
            state: Arc::new(RelayState::default()),
        });
        shared.line().set_active(false);
        Self {
            shared,
            timer: None,
        }
    }

    /// Energise for `length` (at most [`MAX_PULSE`]). Must run inside the tokio runtime.
    pub fn pulse(&mut self, length: Duration) -> PulseOutcome {
        if self.shared.state.energised.load(Ordering::Acquire) {
            return PulseOutcome::AlreadyOpen;
        }
        let length = length.min(MAX_PULSE);
        if let Some(old) = self.timer.take() {
            old.abort();
        }
        // The guard exists before the line goes on, so no path leaves it on.
        let guard = OffGuard(self.shared.clone());
        self.shared.switch(true);
        self.timer = Some(tokio::spawn(async move {
            tokio::time::sleep(length).await;
            drop(guard);
        }));
        PulseOutcome::Started(length)
    }

    /// Shared counters for `doorbelld status`.
    pub fn state(&self) -> Arc<RelayState> {
        self.shared.state.clone()
    }
}

impl Drop for DoorStrike {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
        self.shared.switch(false);
    }
}
