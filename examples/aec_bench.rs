//! How many dB of echo the door's canceller removes, measured on a synthetic echo.
//!
//! ```text
//! cargo run --release --example aec_bench
//! ```
//!
//! ```text
//!  far end (pink noise, live) ─► tee ─► queue ─► webrtcechoprobe ─► fakesink sync   ("speaker")
//!                                 └──► queue ─► volume 0.5 ─► +40 ms timestamps ─┐ ("room echo")
//!  near end (silence, live) ──────────────────────────────────────► audiomixer ◄┘
//!                                                                      └─► webrtcdsp ─► fakesink
//! ```
//!
//! The near-end talker is silent, so everything entering webrtcdsp is echo: the power at its
//! output over the power at its input is the echo left. Power is measured after the canceller
//! has converged (the first 5 s are skipped). Each configuration runs twice, echo-cancel on and
//! off, so the rest of the chain (high-pass filter, noise suppression, gain control) is not
//! counted as cancellation:
//! - "canceller alone": noise suppression and gain control off (they would treat stationary
//!   pink noise as noise and remove it whatever the canceller does);
//! - "as shipped": the exact fragment the session uses (`doorbelld::media::aec_fragment`).

use doorbelld::media::{aec_fragment, AEC_CAPS};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The room: what the microphone hears of the speaker, this late and this loud.
const ECHO_DELAY: gst::ClockTime = gst::ClockTime::from_mseconds(40);
const ECHO_GAIN: f64 = 0.5;
/// The canceller adapts for this long before anything is measured.
const CONVERGE: Duration = Duration::from_secs(5);
const RUN: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("GStreamer could not start: {0}\n  fix: install libgstreamer1.0-0 (scripts/install-deps.sh)")]
    Init(String),
    #[error("cannot build the bench pipeline: {0}\n  fix: apt-get install gstreamer1.0-plugins-bad (webrtcdsp) gstreamer1.0-plugins-base")]
    Build(String),
    #[error("cannot start the bench pipeline: {0}\n  fix: run `gst-inspect-1.0 webrtcdsp` to check the plugin loads")]
    Start(String),
    #[error(
        "the bench pipeline failed: {0}\n  fix: rerun with GST_DEBUG=3 to see which element failed"
    )]
    Runtime(String),
    #[error("no {0} samples were measured after {CONVERGE:?}\n  fix: the pipeline did not run in real time; check the load on the machine")]
    NoSamples(&'static str),
}

/// Running mean square of S16 samples seen after the convergence time.
#[derive(Default)]
struct Power {
    sum_sq: f64,
    samples: u64,
}

impl Power {
    fn dbfs(&self) -> Option<f64> {
        (self.samples > 0).then(|| {
            let ms = self.sum_sq / self.samples as f64;
            10.0 * (ms.max(1e-20)).log10()
        })
    }
}

fn measure(pad: &gst::Pad, start: Instant, power: Arc<Mutex<Power>>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if start.elapsed() < CONVERGE {
            return gst::PadProbeReturn::Ok;
        }
        if let Some(buffer) = info.buffer() {
            if let Ok(map) = buffer.map_readable() {
                let mut p = power.lock().unwrap_or_else(|e| e.into_inner());
                for s in map.as_slice().chunks_exact(2) {
                    let v = f64::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0;
                    p.sum_sq += v * v;
                    p.samples += 1;
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// One run: the dsp's input and output power in dBFS.
fn run(label: &str, echo_cancel: bool, shipped: bool) -> Result<(f64, f64), BenchError> {
    // A unique probe name per run: the plugin's probe list is process-wide.
    let probe = format!("bench-probe-{label}-{echo_cancel}").replace(' ', "-");
    let dsp = aec_fragment("dsp", &probe, echo_cancel, shipped);
    let description = format!(
        "audiotestsrc is-live=true wave=pink-noise volume=0.5 ! {AEC_CAPS} ! tee name=far \
         far. ! queue ! webrtcechoprobe name={probe} ! fakesink sync=true \
         far. ! queue ! volume name=echo volume={ECHO_GAIN} ! mix. \
         audiotestsrc is-live=true wave=silence ! {AEC_CAPS} ! mix. \
         audiomixer name=mix ! {dsp} ! fakesink sync=true"
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| BenchError::Build(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| BenchError::Build("description did not make a pipeline".into()))?;
    let element = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| BenchError::Build(format!("no element {name}")))
    };
    // The room's delay, as a timestamp offset: the mixer then lines the echo up 40 ms after
    // the far-end signal the probe saw, exactly as a speaker-to-microphone path would.
    element("echo")?
        .static_pad("src")
        .ok_or_else(|| BenchError::Build("volume has no src pad".into()))?
        .add_probe(gst::PadProbeType::BUFFER, |_, info| {
            if let Some(buffer) = info.buffer_mut() {
                let buffer = buffer.make_mut();
                if let Some(pts) = buffer.pts() {
                    buffer.set_pts(pts + ECHO_DELAY);
                }
            }
            gst::PadProbeReturn::Ok
        });
    let start = Instant::now();
    let input = Arc::new(Mutex::new(Power::default()));
    let output = Arc::new(Mutex::new(Power::default()));
    let dsp = element("dsp")?;
    for (pad, power) in [("sink", &input), ("src", &output)] {
        let pad = dsp
            .static_pad(pad)
            .ok_or_else(|| BenchError::Build(format!("webrtcdsp has no {pad} pad")))?;
        measure(&pad, start, power.clone());
    }

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| BenchError::Start(e.to_string()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| BenchError::Build("pipeline has no bus".into()))?;
    // Run for RUN, bounded: stop early on the first error.
    let failure = loop {
        let left = RUN.saturating_sub(start.elapsed());
        if left.is_zero() {
            break None;
        }
        let wait = gst::ClockTime::from_mseconds(left.as_millis() as u64);
        if let Some(message) = bus.timed_pop_filtered(wait, &[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = message.view() {
                break Some(format!(
                    "{} ({})",
                    err.error(),
                    err.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(why) = failure {
        return Err(BenchError::Runtime(why));
    }
    let input = input.lock().unwrap_or_else(|e| e.into_inner()).dbfs();
    let output = output.lock().unwrap_or_else(|e| e.into_inner()).dbfs();
    Ok((
        input.ok_or(BenchError::NoSamples("input"))?,
        output.ok_or(BenchError::NoSamples("output"))?,
    ))
}

fn main() -> Result<(), BenchError> {
    gst::init().map_err(|e| BenchError::Init(e.to_string()))?;
    println!(
        "synthetic echo: pink noise, {} ms late, gain {ECHO_GAIN}; silent near end; \
         {}s runs, first {}s skipped",
        ECHO_DELAY.mseconds(),
        RUN.as_secs(),
        CONVERGE.as_secs()
    );
    for (label, shipped) in [("canceller alone", false), ("as shipped", true)] {
        let (in_on, out_on) = run(label, true, shipped)?;
        let (in_off, out_off) = run(label, false, shipped)?;
        // Echo removed by the canceller: the on-run's drop, less what the rest of the chain
        // drops on its own (the off-run).
        let chain = in_off - out_off;
        let removed = (in_on - out_on) - chain;
        println!(
            "{label}: echo removed: {removed:.1} dB (input {in_on:.1} dBFS, output {out_on:.1} dBFS; \
             echo-cancel off: input {in_off:.1} dBFS, output {out_off:.1} dBFS)"
        );
    }
    Ok(())
}
