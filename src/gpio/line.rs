//! The pin layer between the logic (debounce, pulse, blink) and the hardware. A backend only
//! has to set a level; everything that decides *when* lives above this trait, so tests drive
//! it with a fake line and virtual time.

/// One digital output.
pub trait OutputLine: Send + 'static {
    /// Drive the pin high (`true`) or low (`false`).
    fn set_high(&mut self, high: bool);
}

/// How "active" (pressed, energised, lit) maps to a pin level, from config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    ActiveHigh,
    ActiveLow,
}

impl Polarity {
    pub fn from_active_low(active_low: bool) -> Self {
        if active_low {
            Polarity::ActiveLow
        } else {
            Polarity::ActiveHigh
        }
    }

    /// The pin level that means `active`.
    pub fn level(self, active: bool) -> bool {
        match self {
            Polarity::ActiveHigh => active,
            Polarity::ActiveLow => !active,
        }
    }
}

/// An output plus its polarity: callers speak of on/off, never of high/low.
pub struct ActiveLine {
    line: Box<dyn OutputLine>,
    polarity: Polarity,
}

impl ActiveLine {
    pub fn new(line: Box<dyn OutputLine>, polarity: Polarity) -> Self {
        Self { line, polarity }
    }

    pub fn set_active(&mut self, active: bool) {
        self.line.set_high(self.polarity.level(active));
    }
}
