//! GPIO logic against a fake pin layer, in virtual time: no hardware, no sleeps.

use super::led::run_blinker;
use super::line::ActiveLine;
use super::*;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;

/// A fake output that records every level it is set to, with the (virtual) time.
#[derive(Clone, Default)]
struct FakeLine(Arc<Mutex<Vec<(TokioInstant, bool)>>>);

impl OutputLine for FakeLine {
    fn set_high(&mut self, high: bool) {
        self.0.lock().unwrap().push((TokioInstant::now(), high));
    }
}

impl FakeLine {
    fn high(&self) -> bool {
        self.0.lock().unwrap().last().is_some_and(|(_, high)| *high)
    }
    fn log(&self) -> Vec<(TokioInstant, bool)> {
        self.0.lock().unwrap().clone()
    }
    /// How long the line was high each time it went high (None: still high).
    fn high_spans(&self) -> Vec<Option<Duration>> {
        let log = self.log();
        let mut spans = Vec::new();
        let mut since = None;
        for (at, high) in log {
            match (high, since) {
                (true, None) => since = Some(at),
                (false, Some(start)) => {
                    spans.push(Some(at - start));
                    since = None;
                }
                _ => {}
            }
        }
        if since.is_some() {
            spans.push(None);
        }
        spans
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn edges(filter: &mut EdgeFilter, sequence: &[(u64, bool)]) -> Vec<u64> {
    sequence
        .iter()
        .filter(|(at, active)| {
            filter.accept(Edge {
                at: ms(*at),
                active: *active,
            })
        })
        .map(|(at, _)| *at)
        .collect()
}

#[test]
fn bounce_sequence_rings_once() {
    let mut f = EdgeFilter::new(true, ms(2000));
    // Contact bounce on press and release that got past the kernel's debounce.
    let bounce = [
        (1000, true),
        (1001, false),
        (1002, true),
        (1004, false),
        (1005, true),
        (1180, false),
        (1181, true),
        (1183, false),
    ];
    assert_eq!(edges(&mut f, &bounce), vec![1000]);
    // A real second press after the interval rings again.
    assert_eq!(edges(&mut f, &[(3100, true), (3300, false)]), vec![3100]);
}

#[test]
fn held_button_rings_once() {
    let mut f = EdgeFilter::new(true, ms(2000));
    // Pressed at 0 and held for a minute: the kernel reports no further edge until release;
    // a glitch while held (active again without a release) must not ring either.
    assert_eq!(
        edges(&mut f, &[(0, true), (30_000, true), (60_000, false)]),
        vec![0]
    );
}

#[test]
fn release_edge_rings_on_let_go() {
    let mut f = EdgeFilter::new(false, ms(2000));
    assert_eq!(
        edges(
            &mut f,
            &[(0, true), (400, false), (401, true), (402, false)]
        ),
        vec![400]
    );
}

#[test]
fn presses_closer_than_the_interval_ring_once() {
    let mut f = EdgeFilter::new(true, ms(2000));
    let hammering: Vec<(u64, bool)> = (0..10)
        .flat_map(|i| [(i * 300, true), (i * 300 + 150, false)])
        .collect();
    // 0 rings; 300..1950 are too close; 2100 is 2.1 s after the first ring.
    assert_eq!(edges(&mut f, &hammering), vec![0, 2100]);
}

#[tokio::test(start_paused = true)]
async fn relay_starts_off_and_pulse_is_capped_at_the_maximum() {
    let line = FakeLine::default();
    let mut strike = DoorStrike::new(Box::new(line.clone()), Polarity::ActiveHigh);
    assert_eq!(line.log().len(), 1, "de-energised at start-up");
    assert!(!line.high());

    assert_eq!(
        strike.pulse(Duration::from_secs(3600)),
        PulseOutcome::Started(MAX_PULSE)
    );
    assert!(line.high());
    assert_eq!(
        strike.pulse(ms(500)),
        PulseOutcome::AlreadyOpen,
        "not extended"
    );
    tokio::time::sleep(MAX_PULSE + ms(1)).await;
    assert!(!line.high());
    assert_eq!(line.high_spans(), vec![Some(MAX_PULSE)]);

    assert_eq!(strike.pulse(ms(3000)), PulseOutcome::Started(ms(3000)));
    tokio::time::sleep(ms(3001)).await;
    assert_eq!(line.high_spans(), vec![Some(MAX_PULSE), Some(ms(3000))]);
    let state = strike.state();
    assert_eq!(state.pulses.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert!(!state.energised.load(std::sync::atomic::Ordering::Relaxed));
}

#[tokio::test(start_paused = true)]
async fn active_low_relay_rests_high() {
    let line = FakeLine::default();
    let mut strike = DoorStrike::new(Box::new(line.clone()), Polarity::ActiveLow);
    assert!(line.high(), "active-low relay is off when the pin is high");
    strike.pulse(ms(1000));
    assert!(!line.high());
    tokio::time::sleep(ms(1001)).await;
    assert!(line.high());
}

#[tokio::test(start_paused = true)]
async fn relay_is_off_after_a_panic_in_its_owner() {
    let line = FakeLine::default();
    let fake = line.clone();
    let owner = tokio::spawn(async move {
        let mut strike = DoorStrike::new(Box::new(fake), Polarity::ActiveHigh);
        strike.pulse(ms(5000));
        panic!("a bug in the call task");
    });
    let result = owner.await;
    assert!(result.is_err_and(|e| e.is_panic()));
    assert!(
        !line.high(),
        "unwinding dropped the strike, which switched it off"
    );
    assert_eq!(line.high_spans(), vec![Some(Duration::ZERO)]);
}

#[tokio::test(start_paused = true)]
async fn relay_is_off_after_its_owner_is_cancelled() {
    let line = FakeLine::default();
    let fake = line.clone();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let owner = tokio::spawn(async move {
        let mut strike = DoorStrike::new(Box::new(fake), Polarity::ActiveHigh);
        strike.pulse(ms(5000));
        let _ = started_tx.send(());
        std::future::pending::<()>().await;
    });
    tokio::time::timeout(Duration::from_secs(1), started)
        .await
        .expect("owner pulses within 1 s")
        .expect("owner alive");
    tokio::time::sleep(ms(1000)).await;
    assert!(line.high());
    owner.abort();
    assert!(owner.await.is_err_and(|e| e.is_cancelled()));
    assert!(!line.high());
    assert_eq!(line.high_spans(), vec![Some(ms(1000))]);
}

#[tokio::test(start_paused = true)]
async fn relay_is_off_when_the_runtime_drops_the_pulse_timer() {
    // The timer task alone (owner leaked): cancelling it, as runtime shutdown does, still
    // de-energises through its guard.
    let line = FakeLine::default();
    let mut strike = DoorStrike::new(Box::new(line.clone()), Polarity::ActiveHigh);
    strike.pulse(ms(5000));
    let timer = strike.timer.take().expect("a pulse has a timer");
    std::mem::forget(strike);
    timer.abort();
    assert!(timer.await.is_err_and(|e| e.is_cancelled()));
    assert!(!line.high());
}

#[test]
fn every_led_state_has_its_own_pattern() {
    let states = [
        LedState::Idle,
        LedState::Ringing,
        LedState::InCall,
        LedState::HubUnreachable,
        LedState::Fault,
        LedState::Viewing,
    ];
    for (i, a) in states.iter().enumerate() {
        assert!(!pattern(*a).is_empty());
        for b in &states[i + 1..] {
            assert_ne!(pattern(*a), pattern(*b), "{a:?} and {b:?} look the same");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn blinker_plays_the_pattern_of_each_state() {
    let line = FakeLine::default();
    let (tx, rx) = watch::channel(LedState::Ringing);
    let blinker = tokio::spawn(run_blinker(
        ActiveLine::new(Box::new(line.clone()), Polarity::ActiveHigh),
        rx,
    ));
    // Ringing: 125 ms on, 125 ms off. Sample in the middle of each step.
    tokio::time::sleep(ms(60)).await;
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(line.high());
        tokio::time::sleep(ms(125)).await;
    }
    assert_eq!(seen, [true, false, true, false, true, false, true, false]);

    // Idle: steady on, no more transitions.
    tx.send(LedState::Idle).unwrap();
    tokio::time::sleep(ms(10)).await;
    let settled = line.log().len();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(line.high());
    assert_eq!(line.log().len(), settled, "idle is steady");

    // Hub unreachable: double blink, 2 s period: 4 level changes per period.
    tx.send(LedState::HubUnreachable).unwrap();
    tokio::time::sleep(ms(10)).await;
    let before = line.log().len();
    tokio::time::sleep(ms(2000)).await;
    let during: Vec<bool> = line.log()[before..].iter().map(|(_, h)| *h).collect();
    assert_eq!(during, [false, true, false, true]);

    // The sender going away (daemon exit) leaves the LED off.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), blinker)
        .await
        .expect("blinker ends when its sender is dropped")
        .expect("blinker does not panic");
    assert!(!line.high());
}

#[tokio::test]
async fn simulated_backend_opens_anywhere_and_rppal_is_refused_off_a_pi() {
    use crate::config::{GpioBackend, GpioConfig};
    let (press_tx, _p) = mpsc::channel(PRESS_QUEUE);
    let (motion_tx, _m) = mpsc::channel(MOTION_QUEUE);
    let config = GpioConfig {
        backend: GpioBackend::Simulated,
        ..GpioConfig::default()
    };
    let hw = open(&config, press_tx.clone(), motion_tx.clone()).expect("simulated opens");
    assert_eq!(hw.backend, "simulated");
    if !on_a_pi() {
        let config = GpioConfig {
            backend: GpioBackend::Rppal,
            ..GpioConfig::default()
        };
        let err = open(&config, press_tx, motion_tx)
            .err()
            .expect("refused off a Pi");
        let text = err.to_string();
        assert!(
            text.contains("gpio.backend") && text.contains("fix:"),
            "{text}"
        );
    }
}
