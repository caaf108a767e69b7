//! The Raspberry Pi's pins through rppal. Thin on purpose: pins are opened, the kernel does
//! the debouncing and timestamps the edges, and everything that decides anything lives in
//! [`super::edges`], [`super::strike`] and [`super::led`].

use super::edges::{instant_from_kernel, Edge, EdgeFilter};
use super::{
    ms, DoorStrike, GpioError, Hardware, Motion, OutputLine, PatternLed, Polarity, Press,
    PressSource, MOTION_MIN_INTERVAL,
};
use crate::config::{ButtonEdge, GpioConfig};
use crate::core::LedState;
use rppal::gpio::{Event, Gpio, InputPin, OutputPin, Trigger};
use tokio::sync::mpsc;

impl OutputLine for OutputPin {
    fn set_high(&mut self, high: bool) {
        if high {
            OutputPin::set_high(self)
        } else {
            OutputPin::set_low(self)
        }
    }
}

/// Kernel debounce for the PIR output: it is a clean push-pull signal, a little filtering
/// only hides noise picked up on a long cable.
const PIR_DEBOUNCE_MS: u64 = 50;

pub fn open(
    config: &GpioConfig,
    presses: mpsc::Sender<Press>,
    motion: mpsc::Sender<Motion>,
) -> Result<Hardware, GpioError> {
    let gpio = Gpio::new().map_err(|e| GpioError::NotAPi(e.to_string()))?;
    let pin_error = |key: &'static str, pin: u8| {
        move |e: rppal::gpio::Error| GpioError::Pin {
            key,
            pin,
            detail: e.to_string(),
        }
    };

    // Outputs first, so the relay is off before anything can happen (fail-secure).
    let relay = gpio
        .get(config.relay_pin)
        .map_err(pin_error("gpio.relay_pin", config.relay_pin))?;
    let relay_polarity = Polarity::from_active_low(config.relay_active_low);
    // Start at the inactive level: no glitch on the strike while the pin becomes an output.
    let relay = if relay_polarity.level(false) {
        relay.into_output_high()
    } else {
        relay.into_output_low()
    };
    let strike = DoorStrike::new(Box::new(relay), relay_polarity);

    let led = gpio
        .get(config.led_pin)
        .map_err(pin_error("gpio.led_pin", config.led_pin))?
        .into_output();
    let led = PatternLed::start(
        Box::new(led),
        Polarity::from_active_low(config.led_active_low),
        LedState::HubUnreachable,
    );

    let mut inputs: Vec<InputPin> = Vec::new();
    let button = gpio
        .get(config.button_pin)
        .map_err(pin_error("gpio.button_pin", config.button_pin))?;
    // Bias towards the resting level so an unconnected button reads "not pressed".
    let mut button = if config.button_active_low {
        button.into_input_pullup()
    } else {
        button.into_input_pulldown()
    };
    let mut filter = EdgeFilter::new(
        config.button_edge == ButtonEdge::Press,
        ms(config.button_min_interval_ms),
    );
    let active_low = config.button_active_low;
    // Both edges: the filter needs the release to know a held button is still held.
    button
        .set_async_interrupt(
            Trigger::Both,
            Some(ms(config.button_debounce_ms)),
            move |event: Event| {
                if let Some(edge) = to_edge(event, active_low) {
                    if filter.accept(edge) {
                        let press = Press {
                            at: instant_from_kernel(edge.at),
                            source: PressSource::Gpio,
                        };
                        if presses.try_send(press).is_err() {
                            tracing::warn!("button press dropped: call task busy");
                        }
                    }
                }
            },
        )
        .map_err(pin_error("gpio.button_pin", config.button_pin))?;
    inputs.push(button);

    if config.pir_enabled {
        let mut pir = gpio
            .get(config.pir_pin)
            .map_err(pin_error("gpio.pir_pin", config.pir_pin))?
            .into_input();
        let mut filter = EdgeFilter::new(true, MOTION_MIN_INTERVAL);
        let active_low = config.pir_active_low;
        pir.set_async_interrupt(
            Trigger::Both,
            Some(ms(PIR_DEBOUNCE_MS)),
            move |event: Event| {
                if let Some(edge) = to_edge(event, active_low) {
                    if filter.accept(edge) {
                        let _ = motion.try_send(Motion {
                            at: instant_from_kernel(edge.at),
                        });
                    }
                }
            },
        )
        .map_err(pin_error("gpio.pir_pin", config.pir_pin))?;
        inputs.push(pir);
    }

    tracing::info!(
        button = config.button_pin,
        relay = config.relay_pin,
        led = config.led_pin,
        pir = config.pir_enabled.then_some(config.pir_pin),
        "GPIO: rppal"
    );
    Ok(Hardware {
        backend: "rppal",
        led: Box::new(led),
        strike,
        inputs: Box::new(inputs),
    })
}

/// A kernel event as an [`Edge`]: `active` when the line went to its active level.
fn to_edge(event: Event, active_low: bool) -> Option<Edge> {
    let went_high = match event.trigger {
        Trigger::RisingEdge => true,
        Trigger::FallingEdge => false,
        Trigger::Disabled | Trigger::Both => return None,
    };
    Some(Edge {
        at: event.timestamp,
        active: went_high != active_low,
    })
}
