//! The `[gpio]` section: which backend drives the door's hardware, and the pins and polarity
//! of the call button, door-strike relay, status LED and optional PIR motion sensor.
//!
//! The defaults are the reference wiring in `hw/pinout.toml` (BCM numbers); a test below keeps
//! the two in step.

use super::ConfigError;
use serde::{Deserialize, Serialize};

choice!(GpioBackend {
    /// rppal on a Raspberry Pi, the simulated backend anywhere else.
    Auto = "auto",
    /// The Pi's GPIO through rppal (`/dev/gpiochip0`); refused at start-up off a Pi.
    Rppal = "rppal",
    /// No pins: Enter / `doorbelld press` is the button, the log is the LED and the relay.
    Simulated = "simulated",
});

choice!(ButtonEdge {
    /// Ring when the button goes down (the usual doorbell feel).
    Press = "press",
    /// Ring when the button is let go.
    Release = "release",
});

/// The longest a door strike may be energised by one unlock, in milliseconds. Cheap 12 V
/// strikes are rated for intermittent duty and overheat when held; a door left unlocked is
/// also the very failure a doorbell must not cause. The relay driver enforces the same limit
/// ([`crate::gpio::MAX_PULSE`]), so a config mistake cannot exceed it either.
pub const MAX_RELAY_PULSE_MS: u64 = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GpioConfig {
    pub backend: GpioBackend,
    /// BCM number of the call-button input.
    pub button_pin: u8,
    /// The button pulls the pin low when pressed (internal pull-up enabled); false: pulls high
    /// (internal pull-down).
    pub button_active_low: bool,
    /// Which edge rings: pressing the button or letting it go.
    pub button_edge: ButtonEdge,
    /// Kernel debounce period: the line must be stable this long before an edge is reported.
    pub button_debounce_ms: u64,
    /// Minimum time between two rings, so a bouncing, held or hammered button rings once.
    pub button_min_interval_ms: u64,
    /// BCM number of the output that energises the door strike.
    pub relay_pin: u8,
    /// The relay module energises on a low input (many opto-isolated boards do).
    pub relay_active_low: bool,
    /// How long one unlock energises the strike.
    pub relay_pulse_ms: u64,
    /// BCM number of the status LED output.
    pub led_pin: u8,
    /// The LED is wired from 3.3 V to the pin (lit when low).
    pub led_active_low: bool,
    /// Whether a PIR motion sensor is fitted.
    pub pir_enabled: bool,
    /// BCM number of the PIR sensor's output.
    pub pir_pin: u8,
    /// The sensor pulls its output low on motion (HC-SR501 drives it high: false).
    pub pir_active_low: bool,
}

impl Default for GpioConfig {
    fn default() -> Self {
        // Keep in step with hw/pinout.toml (tested).
        Self {
            backend: GpioBackend::Auto,
            button_pin: 17,
            button_active_low: true,
            button_edge: ButtonEdge::Press,
            button_debounce_ms: 20,
            button_min_interval_ms: 2_000,
            relay_pin: 27,
            relay_active_low: false,
            relay_pulse_ms: 3_000,
            led_pin: 22,
            led_active_low: false,
            pir_enabled: false,
            pir_pin: 23,
            pir_active_low: false,
        }
    }
}

/// BCM pins that the reference build gives to something else: 0/1 are the HAT ID EEPROM bus,
/// 18-21 are I2S (microphone and amplifier). Anything above 27 is not on the header.
fn reserved(pin: u8) -> Option<&'static str> {
    match pin {
        0 | 1 => Some("reserved for the HAT ID EEPROM (ID_SD/ID_SC)"),
        18..=21 => Some("used by I2S audio (microphone and amplifier, see hw/config.txt)"),
        28.. => Some("not on the 40-pin header (BCM 2-27 are)"),
        _ => None,
    }
}

impl GpioConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key, problem: String, fix: String| ConfigError::Invalid { key, problem, fix };
        let mut used: Vec<(&'static str, u8)> = vec![
            ("gpio.button_pin", self.button_pin),
            ("gpio.relay_pin", self.relay_pin),
            ("gpio.led_pin", self.led_pin),
        ];
        if self.pir_enabled {
            used.push(("gpio.pir_pin", self.pir_pin));
        }
        for (i, (key, pin)) in used.iter().enumerate() {
            if let Some(why) = reserved(*pin) {
                return Err(invalid(
                    key,
                    format!("BCM {pin} is {why}"),
                    "pick a free BCM pin between 2 and 27 (defaults and wiring: hw/pinout.toml)"
                        .into(),
                ));
            }
            if let Some((other, _)) = used[..i].iter().find(|(_, p)| p == pin) {
                return Err(invalid(
                    key,
                    format!("BCM {pin} is already used by `{other}`"),
                    "give every input and output its own pin (hw/pinout.toml)".into(),
                ));
            }
        }
        if !(1..=100).contains(&self.button_debounce_ms) {
            return Err(invalid(
                "gpio.button_debounce_ms",
                format!("{} is outside 1-100", self.button_debounce_ms),
                "use 20 (push buttons settle within 5-20 ms)".into(),
            ));
        }
        if !(200..=60_000).contains(&self.button_min_interval_ms) {
            return Err(invalid(
                "gpio.button_min_interval_ms",
                format!("{} is outside 200-60000", self.button_min_interval_ms),
                "use 2000 (one ring per press, even for an impatient visitor)".into(),
            ));
        }
        if !(100..=MAX_RELAY_PULSE_MS).contains(&self.relay_pulse_ms) {
            return Err(invalid(
                "gpio.relay_pulse_ms",
                format!(
                    "{} is outside 100-{MAX_RELAY_PULSE_MS}",
                    self.relay_pulse_ms
                ),
                format!("use 3000; strikes must not be held longer than {MAX_RELAY_PULSE_MS} ms"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Pin {
        bcm: u8,
        header: u8,
        active_low: Option<bool>,
    }

    #[derive(Deserialize)]
    struct Pinout {
        button: Pin,
        relay: Pin,
        led: Pin,
        pir: Pin,
        i2s: std::collections::BTreeMap<String, Pin>,
    }

    const PINOUT: &str = include_str!("../../hw/pinout.toml");
    const HW_README: &str = include_str!("../../hw/README.md");

    fn pinout() -> Pinout {
        toml::from_str(PINOUT).expect("hw/pinout.toml parses")
    }

    #[test]
    fn pinout_toml_matches_config_defaults() {
        let p = pinout();
        let d = GpioConfig::default();
        assert_eq!(
            (p.button.bcm, p.button.active_low),
            (d.button_pin, Some(d.button_active_low))
        );
        assert_eq!(
            (p.relay.bcm, p.relay.active_low),
            (d.relay_pin, Some(d.relay_active_low))
        );
        assert_eq!(
            (p.led.bcm, p.led.active_low),
            (d.led_pin, Some(d.led_active_low))
        );
        assert_eq!(
            (p.pir.bcm, p.pir.active_low),
            (d.pir_pin, Some(d.pir_active_low))
        );
        for (name, pin) in &p.i2s {
            assert!(reserved(pin.bcm).is_some(), "i2s.{name} must be reserved");
        }
        let with_pir = GpioConfig {
            pir_enabled: true,
            ..d
        };
        with_pir.validate().expect("the reference wiring is valid");
    }

    /// hw/README.md's pin table has a row `| name | BCM | header | ...` for every pin.
    #[test]
    fn pin_table_matches_pinout_toml() {
        let p = pinout();
        let mut rows = vec![
            ("button", &p.button),
            ("relay", &p.relay),
            ("led", &p.led),
            ("pir", &p.pir),
        ];
        for (name, pin) in &p.i2s {
            rows.push((name.as_str(), pin));
        }
        for (name, pin) in rows {
            let row = format!("| `{name}` | {} | {} |", pin.bcm, pin.header);
            assert!(
                HW_README.contains(&row),
                "hw/README.md has no row starting {row:?}"
            );
        }
    }

    #[test]
    fn reserved_and_shared_pins_name_the_key() {
        let err = GpioConfig {
            relay_pin: 18,
            ..GpioConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("gpio.relay_pin") && err.contains("I2S"),
            "{err}"
        );
        let err = GpioConfig {
            led_pin: 17,
            ..GpioConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("gpio.led_pin") && err.contains("gpio.button_pin"),
            "{err}"
        );
        let err = GpioConfig {
            relay_pulse_ms: 60_000,
            ..GpioConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("gpio.relay_pulse_ms") && err.contains("fix:"),
            "{err}"
        );
    }
}
