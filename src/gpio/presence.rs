//! Physical presence: three presses of the call button within [`GESTURE_WINDOW`] open a short
//! pairing window, so pairing the first phone of a freshly flashed door needs someone standing
//! at it (issue 13: no default password, nothing to pair from the network alone).
//!
//! Sans-IO like [`super::EdgeFilter`]: the detector sees the presses the filter let through,
//! with their timestamps, and says when the gesture is complete and whether a window is open;
//! it owns no clock, task or LED. The caller opens the window (the hub's pairing code, the LED's
//! pairing pattern) when [`PresenceGesture::press`] returns [`Gesture::OpenWindow`] and closes
//! it when [`PresenceGesture::window_open`] turns false. Not wired into the daemon yet: pairing
//! is being reworked (door-made codes, `doorbelld pair`), and this is the hook for it.
//!
//! With the default `gpio.button_min_interval_ms` (2 s) three presses take at least 4 s, well
//! inside the window; a longer configured interval above 5 s makes the gesture impossible,
//! which [`gesture_possible`] reports so the configuration check can say so.

use std::time::{Duration, Instant};

/// Presses that make the gesture. Three: one press rings, two happen when a visitor is
/// impatient; three deliberate presses within the window are rare by accident.
pub const GESTURE_PRESSES: usize = 3;
/// The time the presses must fall within (first to last).
pub const GESTURE_WINDOW: Duration = Duration::from_secs(10);
/// How long pairing stays open after the gesture: enough to scan a code on the phone, short
/// enough that a window opened by accident closes before anyone else could use it.
pub const PAIRING_WINDOW: Duration = Duration::from_secs(120);

/// What one press meant for the gesture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gesture {
    /// Not (yet) the gesture: the press is an ordinary ring.
    None,
    /// The third press within the window: open (or reopen) pairing until `until`.
    OpenWindow { until: Instant },
}

/// Counts recent presses; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct PresenceGesture {
    /// The last presses, oldest first, at most [`GESTURE_PRESSES`].
    recent: Vec<Instant>,
    open_until: Option<Instant>,
}

impl PresenceGesture {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a press at `at` (presses arrive in time order).
    pub fn press(&mut self, at: Instant) -> Gesture {
        self.recent
            .retain(|&earlier| at.saturating_duration_since(earlier) <= GESTURE_WINDOW);
        self.recent.push(at);
        if self.recent.len() < GESTURE_PRESSES {
            return Gesture::None;
        }
        // A fourth quick press must not reopen at once: the gesture starts over.
        self.recent.clear();
        let until = at + PAIRING_WINDOW;
        self.open_until = Some(until);
        Gesture::OpenWindow { until }
    }

    /// Whether the pairing window is open at `now`.
    pub fn window_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now < until)
    }

    /// Closes the window early (a phone paired, or the owner cancelled).
    pub fn close(&mut self) {
        self.open_until = None;
    }
}

/// Whether [`GESTURE_PRESSES`] presses spaced by the button's minimum interval fit in the window.
pub fn gesture_possible(min_interval: Duration) -> bool {
    min_interval * (GESTURE_PRESSES as u32 - 1) <= GESTURE_WINDOW
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn three_presses_within_ten_seconds_open_the_window() {
        let t0 = Instant::now();
        let mut g = PresenceGesture::new();
        assert_eq!(g.press(t0), Gesture::None);
        assert_eq!(g.press(t0 + secs(2.0)), Gesture::None);
        assert!(!g.window_open(t0 + secs(3.0)));
        let third = t0 + secs(9.9);
        assert_eq!(
            g.press(third),
            Gesture::OpenWindow {
                until: third + PAIRING_WINDOW
            }
        );
        assert!(g.window_open(third + PAIRING_WINDOW - secs(0.1)));
        assert!(!g.window_open(third + PAIRING_WINDOW));
    }

    #[test]
    fn presses_spread_over_more_than_ten_seconds_do_not() {
        let t0 = Instant::now();
        let mut g = PresenceGesture::new();
        for s in [0.0, 6.0, 12.0, 18.0] {
            assert_eq!(g.press(t0 + secs(s)), Gesture::None, "press at {s} s");
        }
        assert!(!g.window_open(t0 + secs(18.0)));
        // ...but the last three of a longer series count once they fit.
        assert!(matches!(
            g.press(t0 + secs(20.0)),
            Gesture::OpenWindow { .. }
        ));
    }

    #[test]
    fn the_gesture_starts_over_after_opening_and_close_ends_the_window() {
        let t0 = Instant::now();
        let mut g = PresenceGesture::new();
        for s in [0.0, 1.0, 2.0] {
            g.press(t0 + secs(s));
        }
        assert!(g.window_open(t0 + secs(3.0)));
        assert_eq!(g.press(t0 + secs(3.0)), Gesture::None, "a fourth press");
        g.close();
        assert!(!g.window_open(t0 + secs(4.0)));
    }

    #[test]
    fn the_default_ring_interval_allows_the_gesture() {
        assert!(gesture_possible(Duration::from_millis(2_000)));
        assert!(gesture_possible(Duration::from_millis(5_000)));
        assert!(!gesture_possible(Duration::from_millis(5_001)));
    }
}
