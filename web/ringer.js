// @ts-check
// The ringtone (a two-tone chime made with WebAudio, no sound file) and vibration while a call
// rings.

/** One "ring-ring" every this long. */
const RING_EVERY_MS = 2500;
/** Vibration pattern of one ring (ms on, off, on). */
const VIBRATE_PATTERN = [400, 200, 400];
/** A burst's oscillators are done well before this; then its gain node is released. */
const BURST_CLEANUP_MS = 1500;
/** [frequency Hz, start s] of the tones in one burst. */
const TONES = [
  [880, 0.0],
  [660, 0.25],
  [880, 0.7],
  [660, 0.95],
];

export class Ringer {
  /** @type {AudioContext | null} */
  #ctx = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #ringTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #vibrateTimer;

  /** @returns {AudioContext | null} */
  #audio() {
    if (!this.#ctx) {
      const w = /** @type {any} */ (window);
      const Ctx = w.AudioContext || w.webkitAudioContext;
      if (!Ctx) return null;
      try {
        this.#ctx = new Ctx();
      } catch {
        return null;
      }
    }
    return this.#ctx;
  }

  // One "ring-ring": two short bursts of a two-tone chime.
  #burst() {
    const ctx = this.#audio();
    if (!ctx) return;
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    const t0 = ctx.currentTime + 0.02;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    for (const [freq, at] of TONES) {
      const osc = ctx.createOscillator();
      osc.type = "sine";
      osc.frequency.value = freq;
      osc.connect(gain);
      const s = t0 + at;
      gain.gain.setValueAtTime(0, s);
      gain.gain.linearRampToValueAtTime(0.25, s + 0.02);
      gain.gain.setValueAtTime(0.25, s + 0.2);
      gain.gain.linearRampToValueAtTime(0, s + 0.24);
      osc.start(s);
      osc.stop(s + 0.25);
    }
    setTimeout(() => gain.disconnect(), BURST_CLEANUP_MS);
  }

  start() {
    this.stop();
    const ring = () => {
      try {
        this.#burst();
      } catch {}
    };
    ring();
    this.#ringTimer = setInterval(ring, RING_EVERY_MS);
    if (navigator.vibrate) {
      const buzz = () => {
        try {
          navigator.vibrate(VIBRATE_PATTERN);
        } catch {}
      };
      buzz();
      this.#vibrateTimer = setInterval(buzz, RING_EVERY_MS);
    }
  }

  stop() {
    clearInterval(this.#ringTimer);
    clearInterval(this.#vibrateTimer);
    this.#ringTimer = this.#vibrateTimer = undefined;
    try {
      if (navigator.vibrate) navigator.vibrate(0);
    } catch {}
  }

  // Browsers allow audio only after a user gesture: the first tap unlocks it so a later ring
  // can be heard.
  unlockAudio() {
    const ctx = this.#audio();
    if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
  }
}
